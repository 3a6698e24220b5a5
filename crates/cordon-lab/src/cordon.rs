//! Helpers for tests of cordon itself: waiting for the daemon, reading
//! cordon's counters, and the commands a hostile container runs.

use std::time::{Duration, Instant};

/// Polls `ok` every 20 ms for up to `secs`; returns how long it took, or
/// `None` when it never held.
pub fn within(secs: f64, mut ok: impl FnMut() -> bool) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        if ok() {
            return Some(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The sum of the packet counters of `bridge cordon`'s spoof drops.
pub fn spoof_drops() -> u64 {
    crate::sh("nft", &["list", "table", "bridge", "cordon"])
        .lines()
        .filter(|l| l.contains("cordon spoof"))
        .filter_map(|l| {
            l.split("counter packets ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The shell commands (run inside a container with CAP_NET_ADMIN) that
/// take another container's MAC and IPv4 address on `eth0`, with a /24 and
/// a default route via `gateway`.
pub fn take_identity(mac: &str, ip4: &str, gateway: &str) -> String {
    format!(
        "ip link set eth0 down && ip link set eth0 address {mac} && ip link set eth0 up && \
         ip addr flush dev eth0 && ip addr add {ip4}/24 dev eth0 && ip route add default via {gateway}"
    )
}

/// A `cordon daemon` a test started: SIGTERM on drop (a clean stop removes
/// its socket), SIGKILL after 5 s; [`CordonDaemon::kill9`] for crash tests.
pub struct CordonDaemon(std::process::Child);

impl CordonDaemon {
    /// Spawns `cmd` (normally [`crate::Lab::command`] with `daemon …`),
    /// its output discarded.
    pub fn spawn(mut cmd: std::process::Command) -> CordonDaemon {
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start cordon daemon");
        CordonDaemon(child)
    }

    /// The daemon's process id (to stop and continue it).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Spawns `cmd` with its stderr (the daemon's log) appended to `log`.
    pub fn spawn_logged(mut cmd: std::process::Command, log: &std::path::Path) -> CordonDaemon {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the daemon's log file");
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start cordon daemon");
        CordonDaemon(child)
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for CordonDaemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when both of cordon's tables are in the host's ruleset.
pub fn tables_installed() -> bool {
    let t = crate::sh("nft", &["list", "tables"]);
    t.contains("table inet cordon") && t.contains("table bridge cordon")
}

impl crate::Lab {
    /// Starts `cordon daemon ARGS` and waits (30 s at most) until its
    /// admin socket exists and its tables are installed.
    ///
    /// # Panics
    /// When the daemon does not come up in time.
    #[track_caller]
    pub fn start_daemon(&self, args: &[&str]) -> CordonDaemon {
        let mut all = vec!["daemon"];
        all.extend_from_slice(args);
        let d = CordonDaemon::spawn(self.command(&all));
        assert!(
            within(30.0, || self.socket().exists() && tables_installed()).is_some(),
            "the daemon comes up and installs its tables"
        );
        d
    }

    /// [`crate::Lab::start_daemon`] with the daemon's log (its stderr)
    /// appended to `log`, and `env` set.
    ///
    /// # Panics
    /// When the daemon does not come up in time.
    #[track_caller]
    pub fn start_daemon_logged(
        &self,
        args: &[&str],
        log: &std::path::Path,
        env: &[(&str, &str)],
    ) -> CordonDaemon {
        let mut all = vec!["daemon"];
        all.extend_from_slice(args);
        let mut cmd = self.command(&all);
        cmd.envs(env.iter().copied());
        let d = CordonDaemon::spawn_logged(cmd, log);
        assert!(
            within(30.0, || self.socket().exists() && tables_installed()).is_some(),
            "the daemon comes up and installs its tables: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        d
    }
}

/// `nft list ARGS`, or nothing while it fails (e.g. not installed yet):
/// for polling with [`within`].
pub fn nft_list(args: &[&str]) -> String {
    std::process::Command::new("nft")
        .arg("list")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
