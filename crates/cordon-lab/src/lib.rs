//! cordon's test lab: throw-away network namespaces with veth pairs, lab
//! servers, Docker networks and containers from a local busybox image.
//!
//! One [`Lab`] value owns everything a test creates and removes it when
//! dropped, also while a failed test unwinds. Tests share the host's single
//! cordon tables and Docker's bridges, so a lab holds a host-wide lock for
//! its lifetime: lab tests run one at a time, whatever the test harness does.
//!
//! Rules the lab keeps: traffic only to hosts it created; simulated internet
//! in 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32; a simulated LAN in
//! a 10.x subnet; never this machine's uplink or resolver.

mod docker;
pub mod image;
mod netns;

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Output};

pub use docker::{Ctr, Run};
pub use netns::Ns;

/// The local image lab containers run.
pub const IMAGE: &str = "cordon-test-bb:latest";

/// Why lab tests cannot run here (not root, no nft, no Docker), if so.
pub fn skip_reason(need_docker: bool) -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("lab tests need root".into());
    }
    for (cmd, pkg) in [("nft", "nftables"), ("ip", "iproute2"), ("socat", "socat")] {
        if Command::new(cmd).arg("-V").output().is_err() {
            return Some(format!("lab tests need {cmd} (apt-get install {pkg})"));
        }
    }
    if need_docker && !docker::reachable() {
        return Some("lab tests need a running dockerd (scripts/test starts one)".into());
    }
    None
}

/// Starts a lab test or skips it: without root, nft or Docker it prints one
/// `skipped:` line and returns; under CI (`CI=true`) that is a failure.
#[macro_export]
macro_rules! lab_or_skip {
    ($cordon:expr) => {
        match $crate::skip_reason(true) {
            Some(reason) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("lab test cannot run under CI: {reason}");
                }
                // Straight to stderr: the harness would hide eprintln!.
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "skipped: {reason}");
                return;
            }
            None => $crate::Lab::new($cordon),
        }
    };
}

/// Everything one lab test created.
#[derive(Default)]
struct Owned {
    children: Vec<Child>,
    containers: Vec<String>,
    networks: Vec<String>,
    netns: Vec<String>,
    host_ifaces: Vec<String>,
    v6_forwarding: Option<String>,
}

/// A lab: owns what it creates, removes it on drop.
pub struct Lab {
    cordon: PathBuf,
    state: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    docker: bollard::Docker,
    owned: RefCell<Owned>,
    tag: String,
    _lock: File,
}

impl Lab {
    /// A new lab; `cordon` is the binary under test. Waits for the
    /// host-wide lab lock, then removes any cordon tables left over.
    pub fn new(cordon: &str) -> Lab {
        let lock = File::create("/run/cordon-lab.lock").expect("create /run/cordon-lab.lock");
        // SAFETY: flock on an open descriptor we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock /run/cordon-lab.lock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("lab runtime");
        let docker = rt.block_on(docker::connect());
        rt.block_on(image::ensure(&docker, IMAGE))
            .unwrap_or_else(|e| panic!("{e}"));
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag = format!(
            "{}{}",
            std::process::id() % 10000,
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let lab = Lab {
            cordon: PathBuf::from(cordon),
            state: tempfile::tempdir().expect("state dir"),
            rt,
            docker,
            owned: RefCell::default(),
            tag,
            _lock: lock,
        };
        let _ = lab.cordon(&["down"]);
        lab
    }

    /// A short unique suffix for names this lab creates.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Runs the cordon binary with the lab's own state directory.
    pub fn cordon(&self, args: &[&str]) -> Output {
        Command::new(&self.cordon)
            .args(args)
            .env("CORDON_STATE_DIR", self.state.path())
            .output()
            .expect("run cordon")
    }

    /// Starts a long-running cordon command (the daemon), stopped when the
    /// lab drops.
    pub fn spawn_cordon(&self, args: &[&str]) {
        self.spawn(
            Command::new(&self.cordon)
                .args(args)
                .env("CORDON_STATE_DIR", self.state.path()),
        );
    }

    /// Runs cordon and insists it succeeds; returns its stdout.
    pub fn cordon_ok(&self, args: &[&str]) -> String {
        let out = self.cordon(args);
        assert!(
            out.status.success(),
            "cordon {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A file in the lab's temporary directory with this content.
    pub fn file(&self, name: &str, content: &str) -> String {
        let p = self.state.path().join(name);
        std::fs::write(&p, content).expect("write lab file");
        p.display().to_string()
    }

    /// Starts a long-running process, killed when the lab drops.
    pub fn spawn(&self, cmd: &mut Command) {
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn lab process");
        self.owned.borrow_mut().children.push(child);
    }

    /// A TCP server on the host itself, bound to `addr`, answering each
    /// connection with `banner`.
    pub fn serve_host(&self, addr: &str, port: u16, banner: &str) {
        self.spawn(Command::new("socat").args([
            &format!("TCP-LISTEN:{port},bind={addr},fork,reuseaddr"),
            &format!("SYSTEM:echo {banner}"),
        ]));
        wait_listening(None, port);
    }

    /// The full `nft list ruleset` of the host.
    pub fn ruleset(&self) -> String {
        sh("nft", &["list", "ruleset"])
    }
}

/// Runs a command, insisting it succeeds; returns stdout.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until something listens on TCP `port` (in namespace `ns`).
fn wait_listening(ns: Option<&str>, port: u16) {
    let pat = format!(":{port} ");
    for _ in 0..100 {
        let out = match ns {
            Some(ns) => Command::new("ip")
                .args(["netns", "exec", ns, "ss", "-Hltn"])
                .output(),
            None => Command::new("ss").args(["-Hltn"]).output(),
        };
        if let Ok(o) = out {
            if String::from_utf8_lossy(&o.stdout).contains(&pat) {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} in {ns:?}");
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.cordon(&["down"]);
        let mut owned = std::mem::take(&mut *self.owned.borrow_mut());
        for c in &mut owned.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.rt.block_on(docker::remove(
            &self.docker,
            &owned.containers,
            &owned.networks,
        ));
        for ns in &owned.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if let Some(old) = &owned.v6_forwarding {
            let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", old.trim());
        }
        for i in &owned.host_ifaces {
            let _ = Command::new("ip")
                .args(["link", "del", i])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
