//! The repair window: connections a locked container opened while cordon's
//! tables were gone must not outlive the repair, while connections the
//! policy allows go on. Needs root, nft and Docker; without them each test
//! prints one `skipped:` line (and fails under CI=true).

use std::time::{Duration, Instant};

use cordon_lab::{lab_or_skip, sh, tables_installed, within, Lab, Run, Transport};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

const POLICY: &str = r#"version: 1
default:
  egress:
    - to: [internet]
policies:
  - name: locked
    select: { label: { app: locked } }
    egress: []
"#;

/// A TCP stream to the lab internet's port 7000, a line every 20 ms,
/// reconnecting every second while it cannot connect. (Its UDP stream is
/// [`udp_stream`]: busybox's nc has no UDP.)
const LOCKED: &str = "\
(while :; do (while :; do echo tcp; sleep 0.02; done) | nc -w 1 198.51.100.2 7000; done) &
sleep 3600";

/// Sends a datagram every 20 ms from one UDP socket in the network
/// namespace `netns` (a container's) to `dst`, until `stop` is set.
fn udp_stream(
    netns: std::path::PathBuf,
    dst: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(netns).expect("container netns");
    let dst: std::net::SocketAddr = dst.parse().expect("addr");
    std::thread::spawn(move || {
        // SAFETY: setns on a descriptor we own, for this thread only.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns");
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = sock.send_to(b"udp", dst);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// One long TCP connection to port 7001, a line every 20 ms.
const OPEN: &str = "(while :; do echo open; sleep 0.02; done) | nc 198.51.100.2 7001; sleep 3600";

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) of the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0, "signal {sig}");
}

/// Milliseconds from `from` to `to` (negative when `to` is earlier).
fn ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1e3
    } else {
        -((from - to).as_secs_f64() * 1e3)
    }
}

/// Stops and joins the UDP stream, also when the test fails.
struct StopOnDrop(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

fn status_ended(lab: &Lab) -> u64 {
    let out = lab.cordon_ok(&["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status is JSON");
    v["daemon"]["connections_ended"].as_u64().unwrap_or(0)
}

#[test]
fn flows_opened_while_the_tables_were_gone_end_at_the_repair() {
    let lab = lab_or_skip!(CORDON);
    let (inet, _lan) = lab.internet_and_lan("", 131);
    let locked_rec = lab.record(&inet, 7000);
    let open_rec = lab.record(&inet, 7001);
    let policy = lab.file("p.yaml", POLICY);
    let daemon = lab.start_daemon(&["-c", &policy]);
    let locked = lab.run(Run::named("locked").label("app", "locked").sh(LOCKED));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _udp = StopOnDrop(
        stop.clone(),
        Some(udp_stream(lab.netns_of(&locked), "198.51.100.2:7000", stop)),
    );
    let _open = lab.run(Run::named("open").sh(OPEN));

    // The allowed stream flows; the locked container's streams do not.
    within(10.0, || open_rec.last(Transport::Tcp).is_some())
        .expect("control: the open container streams to the lab internet");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(locked_rec.last(Transport::Tcp), None, "locked: no TCP");
    assert_eq!(locked_rec.last(Transport::Udp), None, "locked: no UDP");

    // A window held open: the daemon stopped, the policy table deleted.
    signal(daemon.pid(), libc::SIGSTOP);
    sh("nft", &["delete", "table", "inet", "cordon"]);
    let leaked = within(10.0, || {
        locked_rec.last(Transport::Tcp).is_some() && locked_rec.last(Transport::Udp).is_some()
    });
    if leaked.is_none() {
        eprintln!("tables: {}", sh("nft", &["list", "tables"]));
        eprintln!(
            "tcp {:?} udp {:?}",
            locked_rec.last(Transport::Tcp),
            locked_rec.last(Transport::Udp)
        );
        signal(daemon.pid(), libc::SIGCONT);
    }
    leaked
        .expect("control: with the table gone the locked container gets through over TCP and UDP");
    // Both leaked flows are established now; the daemon comes back.
    std::thread::sleep(Duration::from_millis(300));
    signal(daemon.pid(), libc::SIGCONT);
    within(5.0, tables_installed).expect("the daemon restores its table");
    let restored = Instant::now();
    std::thread::sleep(Duration::from_secs(3));

    let grace = restored + Duration::from_secs(1);
    for t in [Transport::Tcp, Transport::Udp] {
        let last = locked_rec.last(t).expect("leaked before");
        eprintln!(
            "held-open window, {t:?}: last leaked read {:+.1} ms from the table seen back",
            ms(restored, last)
        );
        assert!(
            last < grace,
            "{t:?} flow opened during the window outlived the repair: {} reads after it",
            locked_rec.count_since(t, grace)
        );
    }
    assert!(
        open_rec.count_since(Transport::Tcp, grace) > 0,
        "the allowed connection goes on after the repair"
    );
    assert!(
        status_ended(&lab) >= 2,
        "status counts the ended connections"
    );

    // The natural window: the table deleted while the daemon runs. The UDP
    // stream sends every 20 ms, so it may or may not slip through; when it
    // does, it must end at the repair too.
    let deleted = Instant::now();
    sh("nft", &["delete", "table", "inet", "cordon"]);
    within(5.0, tables_installed).expect("the daemon restores its table");
    let back = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    match locked_rec.first_since(Transport::Udp, deleted) {
        Some(first) => {
            let last = locked_rec.last(Transport::Udp).expect("seen");
            eprintln!(
                "natural window: first leaked read {:+.1} ms after the delete, table seen back {:+.1} ms, last leaked read {:+.1} ms after that",
                ms(deleted, first),
                ms(deleted, back),
                ms(back, last)
            );
            assert!(
                last < back + Duration::from_secs(1),
                "a flow opened in the natural window outlived the repair"
            );
        }
        None => eprintln!(
            "natural window: table seen back {:.1} ms after the delete; nothing slipped through",
            ms(deleted, back)
        ),
    }
}
