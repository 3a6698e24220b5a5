//! The writable work directory of a run: a size-capped tmpfs mounted on the
//! host and bind-mounted into the container.
//!
//! Docker's tmpfs mounts are created inside the container at start, so the
//! archive API cannot copy files into them beforehand (the files would land
//! in the read-only layer, hidden by the mount). A host tmpfs bind-mounted
//! at the work directory takes the copy, keeps its size cap and belongs to
//! the run's uid; it is unmounted and removed when the guard drops.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// A mounted work directory, unmounted and removed on drop.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    mounted: bool,
}

impl WorkDir {
    /// Mounts a tmpfs of `size` bytes owned by `uid`:`uid`, mode 0700,
    /// `nosuid,nodev`, at `STATE_DIR/work/<name>`.
    pub fn mount(name: &str, size: u64, uid: u32) -> Result<WorkDir, String> {
        let path = crate::state_dir().join("work").join(name);
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut dir = WorkDir {
            path,
            mounted: false,
        };
        let target = c_path(&dir.path)?;
        let data = CString::new(format!("size={size},mode=0700,uid={uid},gid={uid}"))
            .expect("no NUL in mount options");
        // SAFETY: all pointers are valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "cannot mount a tmpfs at {} ({}); cordon sandbox must run as root on the Docker host",
                dir.path.display(),
                std::io::Error::last_os_error()
            ));
        }
        dir.mounted = true;
        Ok(dir)
    }

    /// The host path to bind-mount into the container.
    pub fn host_path(&self) -> &Path {
        &self.path
    }
}

fn c_path(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("path {} contains NUL", p.display()))
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.mounted {
            if let Ok(target) = c_path(&self.path) {
                // SAFETY: valid NUL-terminated path.
                let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
                if rc != 0 {
                    tracing::warn!(
                        "cannot unmount {}: {}",
                        self.path.display(),
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
        if let Err(e) = std::fs::remove_dir(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}
