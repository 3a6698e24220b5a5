//! The default lockdown of a sandboxed run, written down in one place.
//!
//! Every field of [`Profile::default()`] and [`Limits::default()`] says
//! which attack it stops; `docs/sandbox.md` repeats them for operators and
//! the lab tests compare each one with the created container's inspect.

use std::time::Duration;

/// Where a sandboxed container's network goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// No network at all (`NetworkMode: none`): only a loopback interface.
    /// Stops exfiltration, spam, scanning the LAN or the cloud metadata
    /// endpoint, and every attack on a network service of the host.
    None,
    /// Attached to Docker network `network` and labelled
    /// `cordon.policy=policy`, so that cordon's daemon enforces that policy
    /// from the host.
    Policy {
        /// The cordon policy name.
        policy: String,
        /// The Docker network to attach to (default `bridge`).
        network: String,
    },
}

/// Hard limits of one run; exceeding one ends the run with a verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock time from start to exit; the container is killed after
    /// it (verdict `time_limit`). Stops code that sleeps or blocks forever.
    pub wall: Duration,
    /// CPU time of all processes of the run (cgroup accounting, and
    /// `RLIMIT_CPU` per process); verdict `time_limit`. Stops busy loops.
    pub cpu: Duration,
    /// Memory in bytes, with swap equal to it (`MemorySwap = Memory`, so no
    /// swap on top); the kernel's OOM killer ends the run (verdict
    /// `memory_limit`). Stops memory bombs starving the host; tmpfs pages
    /// written by the run count too.
    pub memory: u64,
    /// Processes and threads (`PidsLimit`). Stops fork bombs.
    pub pids: i64,
    /// Bytes of stdout plus stderr kept; more ends the run (verdict
    /// `output_limit`). Stops output floods filling the caller's memory.
    pub output: u64,
    /// Size of the `/tmp` tmpfs in bytes. Stops disk fills through `/tmp`.
    pub tmp_size: u64,
    /// Size of the writable work directory (a tmpfs) in bytes. Stops disk
    /// fills through the work directory.
    pub work_size: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`, SIGXFSZ beyond).
    pub file_size: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`). Stops
    /// descriptor exhaustion of the kernel's file table.
    pub open_files: u64,
    /// CPUs the run may use at once (CFS quota over a 100 ms period).
    /// Stops one run starving the others and the host of CPU.
    pub cpus: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(10),
            cpu: Duration::from_secs(5),
            memory: 256 << 20,
            pids: 64,
            output: 1 << 20,
            tmp_size: 64 << 20,
            work_size: 64 << 20,
            file_size: 64 << 20,
            open_files: 256,
            cpus: 1.0,
        }
    }
}

/// The lockdown of a sandboxed container.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// No network by default (see [`Network::None`]).
    pub network: Network,
    /// Read-only root filesystem. Stops tampering with the image's
    /// binaries and libraries (trojaning the compiler for the next user of
    /// a reused container) and writing outside the capped tmpfs mounts.
    pub read_only_root: bool,
    /// `/tmp` is mounted `noexec,nosuid,nodev`. Stops dropping and running
    /// downloaded payloads from the scratch space.
    pub tmp_noexec: bool,
    /// The writable work directory (files are copied there; it allows exec
    /// because compiled programs run from it).
    pub work_dir: String,
    /// Run as a non-root uid and gid unique to the run (allocated from
    /// [`crate::uid::FIRST_UID`]). Stops root-only kernel interfaces and
    /// one run signalling, tracing or reading the files of another.
    pub non_root: bool,
    /// Drop every capability (`CapDrop: ALL`). Stops raw sockets, mounts,
    /// chown/DAC bypass, module loading and the like even if uid 0 is
    /// regained.
    pub drop_all_caps: bool,
    /// `no-new-privileges`. Stops regaining privileges through setuid or
    /// file-capability binaries in the image.
    pub no_new_privileges: bool,
    /// A seccomp allowlist stricter than Docker's default (see
    /// [`crate::seccomp`]): no io_uring, userfaultfd, perf_event_open,
    /// keyrings, bpf, new namespaces, mount, ptrace. Stops the kernel
    /// attack surface most container escapes went through.
    pub strict_seccomp: bool,
    /// A private cgroup namespace. Stops reading and targeting the host's
    /// cgroup tree (release_agent-style escapes need to see it).
    pub private_cgroupns: bool,
    /// A private IPC namespace (`IpcMode: private`, no `/dev/shm` sharing).
    /// Stops reading other runs' shared memory and message queues.
    pub private_ipc: bool,
    /// An init process (`docker-init`) as pid 1. Reaps zombies and passes
    /// signals, so a run cannot leave unkillable orphans behind.
    pub init: bool,
    /// Core dumps disabled (`RLIMIT_CORE` 0). Stops filling the disk with
    /// cores and leaking memory contents into files.
    pub no_core_dumps: bool,
    /// No log driver (`LogConfig: none`): output goes only to the caller,
    /// capped. Stops an output flood filling `/var/lib/docker`.
    pub no_logs: bool,
    /// The OCI runtime, e.g. `runsc` for gVisor (its own kernel in user
    /// space); `None` is Docker's default (runc).
    pub runtime: Option<String>,
    /// Hard limits.
    pub limits: Limits,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            network: Network::None,
            read_only_root: true,
            tmp_noexec: true,
            work_dir: "/work".into(),
            non_root: true,
            drop_all_caps: true,
            no_new_privileges: true,
            strict_seccomp: true,
            private_cgroupns: true,
            private_ipc: true,
            init: true,
            no_core_dumps: true,
            no_logs: true,
            runtime: None,
            limits: Limits::default(),
        }
    }
}
