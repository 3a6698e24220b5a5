//! Removing what a killed `cordon sandbox` process left behind: its
//! containers, work directory mounts and cgroups (all named or labelled
//! with the creating process's id).

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;

use crate::config::SANDBOX_LABEL;

fn dead(pid: &str) -> bool {
    pid.parse::<u32>()
        .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
}

/// The pid in a run name `cordon-sbx-<pid>-<n>`.
fn pid_of(name: &str) -> Option<&str> {
    name.strip_prefix("cordon-sbx-")?.split('-').next()
}

/// Removes leftovers of sandbox processes that no longer exist; errors are
/// logged, never raised.
pub async fn sweep(docker: &Docker) {
    let filters = HashMap::from([("label", vec![SANDBOX_LABEL])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker.list_containers(Some(opts)).await.unwrap_or_default() {
        let owner = c.labels.as_ref().and_then(|l| l.get(SANDBOX_LABEL));
        if let (Some(pid), Some(id)) = (owner, c.id.as_deref()) {
            if dead(pid) {
                tracing::warn!("removing sandbox container {id} left by process {pid}");
                let opts = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = docker.remove_container(id, Some(opts)).await;
            }
        }
    }
    let work = crate::state_dir().join("work");
    for e in std::fs::read_dir(&work).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if pid_of(&name).is_some_and(dead) {
            let path = e.path();
            if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
                // SAFETY: a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
            let _ = std::fs::remove_dir(&path);
        }
    }
    for ctl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let mut dirs = vec![ctl.path().join("cordon-sandbox")];
        if ctl.file_name() == "cordon-sandbox" {
            dirs = vec![ctl.path()];
        }
        for d in dirs {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if pid_of(&name).is_some_and(dead) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_pid() {
        assert_eq!(pid_of("cordon-sbx-123-4"), Some("123"));
        assert_eq!(pid_of("other-1-2"), None);
        assert!(!dead(&std::process::id().to_string()));
    }
}
