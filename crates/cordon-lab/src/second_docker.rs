//! A second dockerd beside the host's own, with its own socket, data and
//! exec roots, pidfile, config file and default bridge, for tests that need
//! a daemon started with other flags (`--iptables=false`,
//! `--authorization-plugin=...`). A guard stops it and removes everything
//! it made, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;

use crate::docker::block_on;

/// A second dockerd. Dropping it removes
/// its containers and networks, stops it and deletes its directories and
/// its default bridge.
///
/// It gets a bridge of its own (`-b`), not `--bridge=none`: a dockerd
/// without a default bridge deletes the host's `docker0` as it starts
/// (libnetwork's `removeDefaultBridgeInterface`), which would cut off the
/// host's own dockerd.
pub struct SecondDocker {
    child: Option<Child>,
    docker: Option<Docker>,
    bridge: Option<String>,
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    log: PathBuf,
}

impl SecondDocker {
    /// Starts dockerd listening on unix socket `socket`, with a default
    /// bridge of its own addressed `bridge_addr` (e.g. `10.132.0.1/24`),
    /// the vfs storage driver, its own containerd namespaces, and `args`
    /// (e.g. `--iptables=false`); waits until it answers.
    ///
    /// # Panics
    /// When the [`guard`](crate::guard) refuses `bridge_addr`, something
    /// already listens on `socket`, or dockerd exits or does not answer
    /// within 60 s.
    pub fn start(socket: &str, bridge_addr: &str, args: &[&str]) -> SecondDocker {
        crate::guard::ensure_clear(&[bridge_addr]);
        let tag = format!(
            "cordon-test-docker-{}-{}",
            std::process::id(),
            crate::next_seq()
        );
        let data_root = PathBuf::from(format!("/var/lib/{tag}"));
        let exec_root = PathBuf::from(format!("/run/{tag}"));
        let config = PathBuf::from(format!("/run/{tag}.json"));
        let pidfile = PathBuf::from(format!("/run/{tag}.pid"));
        let mut me = SecondDocker {
            child: None,
            docker: None,
            bridge: None,
            dirs: vec![data_root.clone(), exec_root.clone()],
            files: vec![config.clone(), pidfile.clone(), PathBuf::from(socket)],
            log: PathBuf::new(),
        };
        assert!(
            !Path::new(socket).exists() || std::os::unix::net::UnixStream::connect(socket).is_err(),
            "a daemon already listens on {socket}"
        );
        let _ = std::fs::remove_file(socket);
        let bridge = format!("cl-sd{}", std::process::id());
        crate::sh("ip", &["link", "add", &bridge, "type", "bridge"]);
        me.bridge = Some(bridge.clone());
        crate::sh("ip", &["addr", "add", bridge_addr, "dev", &bridge]);
        crate::sh("ip", &["link", "set", &bridge, "up"]);
        // Its own file, so the host's /etc/docker/daemon.json is not read.
        std::fs::write(&config, "{\"log-level\": \"warn\"}\n").expect("write daemon.json");
        let log = std::fs::File::create(format!("/run/{tag}.log")).expect("dockerd log");
        me.log = PathBuf::from(format!("/run/{tag}.log"));
        me.files.push(PathBuf::from(format!("/run/{tag}.log")));
        let child = Command::new("dockerd")
            .args(["-H", &format!("unix://{socket}")])
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--config-file")
            .arg(&config)
            .args(["--bridge", &bridge])
            .args(args)
            .args([
                "--storage-driver=vfs",
                "--containerd-namespace=cordon-test",
                "--containerd-plugins-namespace=cordon-test-plugins",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        me.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let docker = loop {
            let ready = Path::new(socket).exists().then(|| {
                Docker::connect_with_unix(socket, 30, bollard::API_DEFAULT_VERSION)
                    .ok()
                    .filter(|d| block_on(d.ping()).is_ok())
            });
            if let Some(Some(d)) = ready {
                break d;
            }
            if let Some(Ok(Some(status))) = me.child.as_mut().map(Child::try_wait) {
                panic!(
                    "the second dockerd exited ({status}): {}",
                    std::fs::read_to_string(format!("/run/{tag}.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the second dockerd did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let docker = block_on(docker.negotiate_version()).expect("API version");
        me.docker = Some(docker);
        me
    }

    /// What dockerd logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client of it (API version negotiated).
    pub fn client(&self) -> &Docker {
        self.docker.as_ref().expect("connected")
    }
}

impl Drop for SecondDocker {
    fn drop(&mut self) {
        if let Some(d) = &self.docker {
            block_on(async {
                let all = ListContainersOptionsBuilder::new().all(true).build();
                for c in d.list_containers(Some(all)).await.unwrap_or_default() {
                    if let Some(id) = c.id {
                        let force = RemoveContainerOptionsBuilder::new().force(true).build();
                        let _ = d.remove_container(&id, Some(force)).await;
                    }
                }
                for n in d.list_networks(None).await.unwrap_or_default() {
                    if matches!(n.name.as_deref(), Some("bridge" | "host" | "none")) {
                        continue;
                    }
                    if let Some(id) = n.id {
                        if let Err(e) = d.remove_network(&id).await {
                            eprintln!("cannot remove network {id} of the second dockerd: {e}");
                        }
                    }
                }
            });
        }
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we have not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("the second dockerd ignored SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Whatever it left mounted under its directories (deepest first).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mine: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| self.dirs.iter().any(|d| Path::new(m).starts_with(d)))
            .collect();
        mine.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mine {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        if let Some(bridge) = self.bridge.take() {
            let _ = Command::new("ip").args(["link", "del", &bridge]).status();
        }
        for d in &self.dirs {
            if d.exists() {
                if let Err(e) = std::fs::remove_dir_all(d) {
                    eprintln!("cannot remove {}: {e}", d.display());
                }
            }
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}
