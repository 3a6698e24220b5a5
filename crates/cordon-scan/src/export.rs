//! An image's root filesystem streamed out of the Docker Engine API
//! (`GET /images/NAME/get`, what `docker save` reads): the tar is parsed
//! on a blocking thread as the chunks arrive, through a small bounded
//! channel, so the image is never held in memory or on disk.

use std::collections::BTreeMap;
use std::io::Read;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::ScanError;
use crate::layers::{self, Rootfs};

/// Chunks in flight between the API and the tar reader.
const IN_FLIGHT: usize = 16;

/// A blocking reader over the chunks a channel delivers.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The image's id (`sha256:...`), or [`ScanError::NoImage`].
pub async fn image_id(docker: &Docker, image: &str) -> Result<String, ScanError> {
    match docker.inspect_image(image).await {
        Ok(info) => Ok(info.id.unwrap_or_default()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(ScanError::NoImage(image.to_string())),
        Err(e) => Err(ScanError::Docker(e.to_string())),
    }
}

/// Streams `image` out of Docker and returns the files cordon reads.
pub async fn rootfs(docker: &Docker, image: &str) -> Result<Rootfs, ScanError> {
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let reader = ChannelReader {
        rx,
        chunk: Vec::new(),
        at: 0,
    };
    let parse = tokio::task::spawn_blocking(move || layers::read_export(reader));
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        let item = chunk.map(|b| b.to_vec()).map_err(|e| e.to_string());
        let failed = item.is_err();
        // The reader stops early on a malformed export: stop sending.
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let fs = parse.await.map_err(|e| ScanError::Export {
        image: image.to_string(),
        message: e.to_string(),
    })?;
    fs.map_err(|message| ScanError::Export {
        image: image.to_string(),
        message,
    })
}

/// Running containers by image id: id → (the image as the first
/// container names it, container names).
pub async fn running(
    docker: &Docker,
) -> Result<BTreeMap<String, (String, Vec<String>)>, ScanError> {
    let opts = ListContainersOptionsBuilder::new().all(false).build();
    let list = docker
        .list_containers(Some(opts))
        .await
        .map_err(|e| ScanError::Docker(e.to_string()))?;
    let mut out: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for c in list {
        let (Some(id), Some(names)) = (c.image_id, c.names) else {
            continue;
        };
        let name = names
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let image = c.image.unwrap_or_else(|| id.clone());
        out.entry(id)
            .or_insert_with(|| (image, Vec::new()))
            .1
            .push(name);
    }
    Ok(out)
}
