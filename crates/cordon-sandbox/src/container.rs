//! A created sandbox container with everything it holds on the host (uid,
//! work directory, cgroup), removed together.

use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;

use crate::cgroup::RunCgroup;
use crate::config::{container_body, Placement};
use crate::files::{archive, InputFile};
use crate::profile::Profile;
use crate::uid::Uid;
use crate::workdir::WorkDir;

/// A created (maybe started) container of the sandbox.
///
/// [`Prepared::remove`] removes the container, then unmounts its work
/// directory, removes its cgroup and frees its uid; dropping it without
/// `remove` does the same from a helper thread.
#[derive(Debug)]
pub struct Prepared {
    docker: Docker,
    /// The container's name.
    pub name: String,
    /// The uid it runs as.
    pub uid: Uid,
    /// Its cgroup, when the Docker host uses the cgroupfs driver.
    pub cgroup: Option<RunCgroup>,
    work: Option<WorkDir>,
    removed: bool,
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_name() -> String {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("cordon-sbx-{}-{n}", std::process::id())
}

impl Prepared {
    /// Creates a container running `cmd` from `image_id` under `profile`.
    pub async fn create(
        docker: &Docker,
        cgroupfs: bool,
        image_id: &str,
        cmd: &[String],
        profile: &Profile,
        stdin: bool,
    ) -> Result<Prepared, String> {
        let name = next_name();
        let uid = Uid::allocate()?;
        let work = WorkDir::mount(&name, profile.limits.work_size, uid.get())?;
        let cgroup = cgroupfs.then(|| RunCgroup::new(&name));
        let mut p = Prepared {
            docker: docker.clone(),
            name,
            uid,
            cgroup,
            work: Some(work),
            removed: false,
        };
        let work_host = p
            .work
            .as_ref()
            .expect("mounted")
            .host_path()
            .display()
            .to_string();
        let body = container_body(
            profile,
            &Placement {
                image_id,
                cmd,
                uid: p.uid.get(),
                work_host: &work_host,
                cgroup_parent: p.cgroup.as_ref().map(RunCgroup::parent),
                stdin,
            },
        );
        let opts = CreateContainerOptionsBuilder::new().name(&p.name).build();
        if let Err(e) = docker.create_container(Some(opts), body).await {
            p.removed = true; // nothing to remove
            return Err(format!("cannot create sandbox container {}: {e}", p.name));
        }
        Ok(p)
    }

    /// Copies `files` into the work directory `dest`, owned by the run's uid.
    pub async fn upload(&self, dest: &str, files: &[InputFile]) -> Result<(), String> {
        if files.is_empty() {
            return Ok(());
        }
        let tar = archive(files, self.uid.get())?;
        let opts = UploadToContainerOptionsBuilder::new().path(dest).build();
        self.docker
            .upload_to_container(&self.name, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(|e| format!("cannot copy files into {}: {e}", self.name))
    }

    /// Kills every process of the container (SIGKILL); errors are logged.
    pub async fn kill(&self) {
        let opts = KillContainerOptionsBuilder::new().signal("KILL").build();
        if let Err(e) = self.docker.kill_container(&self.name, Some(opts)).await {
            tracing::debug!("kill {}: {e}", self.name);
        }
    }

    /// Removes the container and releases what it held.
    pub async fn remove(mut self) {
        remove_container(&self.docker, &self.name).await;
        self.removed = true;
    }
}

async fn remove_container(docker: &Docker, name: &str) {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(opts)).await {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => tracing::warn!("cannot remove sandbox container {name}: {e}"),
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.removed {
            // A new connection: this drop may run while the runtime that
            // owns `self.docker`'s pooled connections is shutting down,
            // and a request through them then fails (`SendRequest`),
            // leaving the container behind.
            let docker =
                Docker::connect_with_local_defaults().unwrap_or_else(|_| self.docker.clone());
            let name = self.name.clone();
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(remove_container(&docker, &name));
                }
            });
            let _ = done.join();
        }
        // The work directory and the cgroup go only after the container.
        self.work.take();
        self.cgroup.take();
    }
}
