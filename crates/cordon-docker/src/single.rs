//! One container at a time, for the daemon's event handling: inspecting a
//! single container is far cheaper than collecting the whole inventory.

use bollard::Docker;
use cordon_inventory::{Container, Network};

use crate::error::{status_of, DockerError};
use crate::inventory::{container_from, mark_image_labels};
use crate::veth::find_host_ifaces;

/// Inspects container `id` and finds its endpoints' host-side veths, with
/// `networks` as the known networks. `None` when it does not exist or is
/// not running.
pub async fn container(
    docker: &Docker,
    id: &str,
    networks: &[Network],
) -> Result<Option<Container>, DockerError> {
    let resp = match docker.inspect_container(id, None).await {
        Ok(r) => r,
        Err(e) if status_of(&e) == Some(404) => return Ok(None),
        Err(e) => return Err(DockerError::api(format!("inspect container {id}"), &e)),
    };
    let Some(mut c) = container_from(&resp, networks) else {
        return Ok(None);
    };
    mark_image_labels(docker, resp.image.as_deref().unwrap_or(""), &mut c).await?;
    let mut one = vec![c];
    let one = tokio::task::spawn_blocking(move || find_host_ifaces(&mut one).map(|()| one))
        .await
        .map_err(|e| DockerError::HostLinks {
            reason: format!("the interface lookup failed: {e}"),
        })??;
    Ok(one.into_iter().next())
}
