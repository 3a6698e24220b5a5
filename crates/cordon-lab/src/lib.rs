//! cordon's test lab: throw-away network namespaces joined to the host by
//! veth pairs, lab servers (TCP banners, UDP echo, dnsmasq), Docker networks
//! and containers from a local busybox image, and probes whose success is
//! unambiguous.
//!
//! Every object the lab creates is a guard that removes what it created when
//! dropped, also while a failed test unwinds (errors in `Drop` are logged,
//! never raised). End-to-end tests share the host's single `inet cordon` and
//! `bridge cordon` tables and Docker's bridges, so each one holds the
//! host-wide [`lock()`] for its whole duration.
//!
//! Lab rules: traffic only to hosts the test created; a simulated internet
//! in 198.51.100.0/24, 198.18.0.0/15 and 2001:db8::/32 inside namespaces; a
//! simulated LAN in a 10.x subnet of the test's own (never the resolver's);
//! never the documentation range the package registries resolve to on the
//! development machines (docs/design.md names it), never the machine's own uplink
//! subnet nor its resolver, never a real name. The [`guard`] refuses, in
//! one line, to assign or route a range that overlaps the host's resolver,
//! default route or registries. Probes take addresses, not names, and
//! panic when given anything else.
//!
//! ```no_run
//! use cordon_lab::{lab_or_skip, ContainerOpts, Netns, TcpServer, TestContainer, Uplink};
//!
//! #[test]
//! fn container_reaches_the_lab_internet() {
//!     lab_or_skip!();
//!     let _lock = cordon_lab::lock();
//!     let inet = Netns::new("inet");
//!     let _up = Uplink::to_host(&inet, "198.51.100.1/24", "198.51.100.2/24");
//!     let _web = TcpServer::banner(&inet, 80, "hello-inet");
//!     let c = TestContainer::run(ContainerOpts::new("probe"));
//!     assert!(c.reaches("198.51.100.2", 80, "hello-inet"));
//! }
//! ```
//!
//! Locals drop in reverse order: take the lock first so that it is released
//! last, after every guard has cleaned up. [`leftovers()`] lists what this
//! process created that still exists. Set `CORDON_LAB_DEBUG=1` to have
//! failed probes say what they got.
//!
//! Paths through the host: containers reach lab namespaces (Docker
//! masquerades their IPv4; IPv6 is routed, so namespaces also reach
//! containers' IPv6 addresses), namespaces reach published ports through
//! the host's address on their uplink, and the host's own services bound to
//! that address. Docker's `FORWARD` policy is `DROP`, so two namespaces do
//! not reach each other through the host over IPv4.
//!
//! The older all-in-one [`Lab`] value (one owner for everything a test
//! creates, plus the cordon binary under test) is built on the same pieces.

mod cordon;
pub mod distroless;
pub mod docker;
pub mod guard;
pub mod image;
mod lab;
pub mod lock;
pub mod netns;
mod probe;
pub mod recorder;
pub mod second_docker;
pub mod servers;
pub mod skip;
pub mod sysctl;

use std::io::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use cordon::{nft_list, spoof_drops, tables_installed, take_identity, within, CordonDaemon};
pub use distroless::{ensure_distroless_image, DISTROLESS_CMD, DISTROLESS_IMAGE};
pub use docker::{
    ensure_test_image, ContainerOpts, ExecResult, HostKnobs, Publish, TestContainer, TestNetwork,
    TEST_IMAGE,
};
pub use lab::{Ctr, Lab, Ns, Run};
pub use lock::{lock, LabLock};
pub use netns::{Netns, NsProcess, Uplink};
pub use recorder::{Recorder, Transport};
pub use second_docker::SecondDocker;
pub use servers::{Dnsmasq, TcpServer, UdpEcho};
pub use skip::{require_root_docker_nft, require_root_nft, skip_reason};
pub use sysctl::{Forwarding, SysctlGuard};

/// The local image lab containers run (same as [`TEST_IMAGE`]).
pub const IMAGE: &str = TEST_IMAGE;

/// The label every lab container and network carries, valued with the
/// creating process's id: leftovers of a killed test run are found by it.
pub const PID_LABEL: &str = "cordon-lab.pid";

/// The timeout of the lab's probes, in seconds.
pub const PROBE_TIMEOUT_S: u32 = 2;

/// Runs a command, insisting it succeeds; returns its stdout.
///
/// # Panics
/// When the command cannot run or exits unsuccessfully (with its stderr).
#[track_caller]
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and reports a failure on stderr instead of panicking (for
/// cleanup code). True when it succeeded.
pub(crate) fn sh_quiet(cmd: &str, args: &[&str]) -> bool {
    match Command::new(cmd).args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            warn(&format!(
                "{cmd} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            false
        }
        Err(e) => {
            warn(&format!("cannot run {cmd}: {e}"));
            false
        }
    }
}

/// One line on the process's stderr, not captured by the test harness (a
/// cleanup failure must be seen even when the test passes).
pub(crate) fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "cordon-lab: {msg}");
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A process-wide sequence number, for unique names.
pub(crate) fn next_seq() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A unique object name: `cl-<prefix>-<pid>-<n>`.
pub(crate) fn unique_name(prefix: &str) -> String {
    assert!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "lab name prefix must be non-empty [A-Za-z0-9_-]: {prefix:?}"
    );
    format!("cl-{prefix}-{}-{}", std::process::id(), next_seq())
}

/// The process id encoded in a name made by [`unique_name`], if any.
pub(crate) fn pid_of_name(name: &str) -> Option<u32> {
    if !name.starts_with("cl-") {
        return None;
    }
    let mut parts = name.rsplitn(3, '-');
    let n = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    n.parse::<usize>().ok()?;
    pid.parse().ok()
}

/// True while process `pid` exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last parenthesis.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

/// What a TCP server at `ip`:`port` sends to the host itself (e.g. a
/// namespace behind an [`Uplink`]), trimmed; `None` when the connection
/// fails or nothing comes back within 2 s.
#[track_caller]
pub fn host_tcp_banner(ip: &str, port: u16) -> Option<String> {
    let timeout = std::time::Duration::from_secs(PROBE_TIMEOUT_S.into());
    probe::tcp_read(addr(ip), port, timeout)
}

/// True when a TCP connection from the host to `ip`:`port` returns
/// `banner`.
#[track_caller]
pub fn host_reaches(ip: &str, port: u16, banner: &str) -> bool {
    let got = host_tcp_banner(ip, port);
    netns::debug_probe("host", ip, port, banner, &got);
    got.is_some_and(|g| g.contains(banner))
}

/// True when a UDP echo server at `ip`:`port` returns the datagram the
/// host sends.
#[track_caller]
pub fn host_udp_echo(ip: &str, port: u16) -> bool {
    let timeout = std::time::Duration::from_secs(PROBE_TIMEOUT_S.into());
    probe::udp_echo(addr(ip), port, timeout)
}

/// Everything this process created that still exists: namespaces, host
/// veths, containers and networks (each as `kind name`). Empty once every
/// guard has dropped; tests assert it.
pub fn leftovers() -> Vec<String> {
    let pid = std::process::id();
    let mut found = Vec::new();
    for (dir, kind) in [("/run/netns", "netns"), ("/sys/class/net", "link")] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mine = match kind {
                "netns" => pid_of_name(&name) == Some(pid),
                _ => netns::pid_of_iface(&name) == Some(pid),
            };
            if mine {
                found.push(format!("{kind} {name}"));
            }
        }
    }
    found.extend(docker::leftovers());
    found
}

/// Parses a probe target, insisting on an address: lab probes never
/// resolve names.
#[track_caller]
pub(crate) fn addr(ip: &str) -> std::net::IpAddr {
    ip.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .unwrap_or_else(|_| panic!("lab probes take IP addresses, not {ip:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_pid() {
        let n = unique_name("inet");
        assert!(n.starts_with("cl-inet-"));
        assert_eq!(pid_of_name(&n), Some(std::process::id()));
        assert_eq!(pid_of_name(&unique_name("a-b")), Some(std::process::id()));
        assert_eq!(pid_of_name("cl-inet-12340"), None);
        assert_eq!(pid_of_name("other-1-2"), None);
        assert!(pid_alive(std::process::id()));
    }

    #[test]
    fn probes_take_addresses() {
        assert_eq!(addr("198.51.100.2").to_string(), "198.51.100.2");
        assert_eq!(addr("[2001:db8::1]").to_string(), "2001:db8::1");
        assert!(std::panic::catch_unwind(|| addr("example.com")).is_err());
    }
}
