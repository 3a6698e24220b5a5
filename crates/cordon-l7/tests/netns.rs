//! The proxy on real sockets: a client namespace, a router namespace where
//! an nft `redirect` (table `inet cordon_l7_test`, the test's own) sends
//! port 443 to the proxy, and a server namespace with an echo server.
//! `original_dst` is really exercised: the proxy learns the server's
//! address only from the redirected socket. IPv4 and IPv6.
//!
//! Needs root and nft; without them each test prints one `skipped:` line.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::hello::{big_hello, hello_for};
use common::lab::*;
use cordon_l7::{Event, FirstFlight, Limits};
use cordon_lab::nft_or_skip;

fn names() -> Arc<Names> {
    Arc::new(Names(vec!["allowed.test".into()]))
}

fn server(v6: bool) -> (&'static str, &'static str, SocketAddr) {
    if v6 {
        (
            CLIENT6,
            CLIENT6B,
            SocketAddr::new(SERVER6.parse().unwrap(), REDIRECTED),
        )
    } else {
        (
            CLIENT4,
            CLIENT4B,
            SocketAddr::new(SERVER4.parse().unwrap(), REDIRECTED),
        )
    }
}

/// Bytes that are no first flight, from a fixed xorshift stream.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn an_allowed_name_passes_with_bytes_intact_both_ways() {
    nft_or_skip!();
    let _lock = cordon_lab::lock();
    let lab = L7Lab::new();
    let echo = Echo::start(&lab, REDIRECTED);
    let proxy = RunningProxy::start(&lab, Limits::default(), names());
    lab.redirect(proxy.port);
    for v6 in [false, true] {
        let (src, _, dst) = server(v6);
        let mut sent = hello_for("allowed.test");
        sent.extend(noise(3 << 20, 7 + u64::from(v6)));
        let back = in_ns(&lab.client, || {
            let mut s = connect_from(src, dst).expect("connect");
            round_trip(&mut s, &sent).expect("round trip")
        });
        assert!(
            back == sent,
            "v6={v6}: {} bytes back of {}",
            back.len(),
            sent.len()
        );
        // The proxy connected to the original destination, from the router.
        let peer = *echo
            .peers
            .lock()
            .unwrap()
            .last()
            .expect("the server saw it");
        let router = if v6 { "2001:db8:18::1" } else { "198.51.100.1" };
        assert_eq!(peer.ip().to_string(), router, "not through the proxy");
        let want_src = src.parse::<std::net::IpAddr>().unwrap();
        proxy.events.wait(|e| {
            matches!(e, Event::Passed { source, original_dst, name }
                if source.ip() == want_src && *original_dst == dst
                    && name.as_deref() == Some("allowed.test"))
        });
        let n = sent.len() as u64;
        proxy.events.wait(|e| {
            matches!(e, Event::Closed { source, up, down, .. }
                if source.ip() == want_src && *up == n && *down == n)
        });
    }
}

#[test]
fn a_refused_name_is_reset_and_the_server_never_sees_it() {
    nft_or_skip!();
    let _lock = cordon_lab::lock();
    let lab = L7Lab::new();
    let echo = Echo::start(&lab, REDIRECTED);
    let proxy = RunningProxy::start(&lab, Limits::default(), names());
    lab.redirect(proxy.port);
    for v6 in [false, true] {
        let (src, _, dst) = server(v6);
        // Positive control: the same path with an allowed name reaches the
        // server.
        let before = echo.accepted.load(Ordering::SeqCst);
        let hello = hello_for("allowed.test");
        let ok = in_ns(&lab.client, || {
            round_trip(&mut connect_from(src, dst).expect("connect"), &hello)
        });
        assert_eq!(ok.expect("allowed round trip"), hello);
        assert_eq!(echo.accepted.load(Ordering::SeqCst), before + 1);

        let denied = hello_for("denied.test");
        let reset = in_ns(&lab.client, || {
            let mut s = connect_from(src, dst).expect("connect");
            std::io::Write::write_all(&mut s, &denied).expect("send hello");
            was_reset(&mut s)
        });
        assert!(reset, "v6={v6}: a refused connection is reset");
        proxy.events.wait(|e| {
            matches!(e, Event::Refused { first_flight: FirstFlight::Tls { server_name: Some(n), .. }, original_dst, .. }
                if n == "denied.test" && *original_dst == dst)
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            echo.accepted.load(Ordering::SeqCst),
            before + 1,
            "v6={v6}: the server saw a refused connection"
        );
    }
}

#[test]
fn random_bytes_and_a_64k_hello_are_reset() {
    nft_or_skip!();
    let _lock = cordon_lab::lock();
    let lab = L7Lab::new();
    let echo = Echo::start(&lab, REDIRECTED);
    let proxy = RunningProxy::start(&lab, Limits::default(), names());
    lab.redirect(proxy.port);
    for v6 in [false, true] {
        let (src, _, dst) = server(v6);
        for (what, bytes) in [
            ("random bytes", noise(4096, 99)),
            ("a 64 KiB ClientHello", big_hello("allowed.test", 64 * 1024)),
        ] {
            let reset = in_ns(&lab.client, || {
                let mut s = connect_from(src, dst).expect("connect");
                // The proxy may reset before all is written.
                let _ = std::io::Write::write_all(&mut s, &bytes);
                was_reset(&mut s)
            });
            assert!(reset, "v6={v6}: {what} not reset");
        }
        // Control: an allowed hello on the same path gets through.
        let hello = hello_for("allowed.test");
        let ok = in_ns(&lab.client, || {
            round_trip(&mut connect_from(src, dst).expect("connect"), &hello)
        });
        assert_eq!(ok.expect("allowed round trip"), hello);
    }
    let unknown = proxy
        .events
        .all()
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Refused {
                    first_flight: FirstFlight::Unknown { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(unknown, 4, "{:#?}", proxy.events.all());
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 2, "only the controls");
}

#[test]
fn a_slowloris_is_cut_at_the_deadline_while_others_are_served() {
    nft_or_skip!();
    let _lock = cordon_lab::lock();
    let lab = L7Lab::new();
    let _echo = Echo::start(&lab, REDIRECTED);
    let limits = Limits {
        first_flight_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let proxy = RunningProxy::start(&lab, limits, names());
    lab.redirect(proxy.port);
    let (src, _, dst) = server(false);
    let hello = hello_for("allowed.test");
    std::thread::scope(|sc| {
        // One byte a second: each read is quick, the flight never ends.
        let slow = sc.spawn(|| {
            in_ns(&lab.client, || {
                let mut s = connect_from(src, dst).expect("connect");
                let start = Instant::now();
                for b in &hello {
                    if let Err(e) = std::io::Write::write_all(&mut s, &[*b]) {
                        let reset = e.kind() == std::io::ErrorKind::ConnectionReset;
                        return (start.elapsed(), reset);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    if start.elapsed() > Duration::from_secs(8) {
                        break;
                    }
                }
                (start.elapsed(), was_reset(&mut s))
            })
        });
        // Meanwhile a normal client is served, quickly.
        std::thread::sleep(Duration::from_millis(1500));
        let t = Instant::now();
        let ok = in_ns(&lab.client, || {
            round_trip(&mut connect_from(src, dst).expect("connect"), &hello)
        });
        let served = t.elapsed();
        assert_eq!(ok.expect("normal client"), hello);
        assert!(served < Duration::from_millis(500), "served in {served:?}");
        let (took, reset) = slow.join().expect("slow client");
        assert!(reset, "the slow client is reset");
        assert!(
            took >= Duration::from_millis(2900) && took < Duration::from_millis(5500),
            "cut after {took:?}, the deadline is 3 s"
        );
    });
    proxy.events.wait(
        |e| matches!(e, Event::FirstFlightTimeout { original_dst, .. } if *original_dst == dst),
    );
}

#[test]
fn the_per_source_cap_holds_and_others_are_still_served() {
    nft_or_skip!();
    let _lock = cordon_lab::lock();
    let lab = L7Lab::new();
    let _echo = Echo::start(&lab, REDIRECTED);
    let limits = Limits {
        first_flight_timeout: Duration::from_secs(20),
        ..Limits::default()
    };
    let cap = limits.per_source;
    let proxy = RunningProxy::start(&lab, limits, names());
    lab.redirect(proxy.port);
    for v6 in [false, true] {
        let (src, other, dst) = server(v6);
        let hello = hello_for("allowed.test");
        in_ns(&lab.client, || {
            // Control, and warm-up: the other source is served when nothing
            // is at the cap. (Here the first redirected IPv6 connection from
            // a new source address waits about a second for its SYN-ACK, in
            // the kernel, before the proxy sees it; not what is measured.)
            let back = round_trip(&mut connect_from(other, dst).expect("connect"), &hello);
            assert_eq!(back.expect("other source"), hello);
            // `cap` idle connections from one source (no first flight).
            let idle: Vec<_> = (0..cap)
                .map(|_| connect_from(src, dst).expect("connect"))
                .collect();
            // Wait until the proxy has accepted them all: a connection
            // from the source now is over the cap.
            let mut over = connect_from(src, dst).expect("connect");
            assert!(
                was_reset(&mut over),
                "v6={v6}: connection {} not reset",
                cap + 1
            );
            let want = src.parse::<std::net::IpAddr>().unwrap();
            proxy
                .events
                .wait(|e| matches!(e, Event::OverCap { source, cap: cordon_l7::Cap::Source } if source.ip() == want));
            // Another source is served meanwhile, quickly.
            let t = Instant::now();
            let back = round_trip(&mut connect_from(other, dst).expect("connect"), &hello);
            let served = t.elapsed();
            assert_eq!(back.expect("other source"), hello);
            assert!(
                served < Duration::from_millis(500),
                "v6={v6}: served in {served:?}"
            );
            println!("v6={v6}: another source served in {served:?} with {cap} idle connections at the cap");
            // Closing the idle ones frees the source.
            drop(idle);
            std::thread::sleep(Duration::from_millis(300));
            let back = round_trip(&mut connect_from(src, dst).expect("connect"), &hello);
            assert_eq!(back.expect("the source again"), hello);
        });
    }
}

#[test]
fn the_descriptor_budget_leaves_the_reserve_and_is_given_back() {
    nft_or_skip!();
    let _lock = cordon_lab::lock();
    let lab = L7Lab::new();
    let _echo = Echo::start(&lab, REDIRECTED);
    // Room for exactly `room` connections: the rest of the soft limit is
    // the reserve. The caps are far above `room`, so only the budget can
    // refuse here.
    let room = 20;
    cordon_l7::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    let limits = Limits {
        first_flight_timeout: Duration::from_secs(20),
        reserved_descriptors: Some(soft as usize - 2 * room),
        ..Limits::default()
    };
    assert!(limits.per_source > room + 1 && limits.total > room + 1);
    let proxy = RunningProxy::start(&lab, limits, names());
    lab.redirect(proxy.port);
    let (src, other, dst) = server(false);
    let hello = hello_for("allowed.test");
    in_ns(&lab.client, || {
        // Control: a connection passes, and its descriptors come back.
        let back = round_trip(&mut connect_from(other, dst).expect("connect"), &hello);
        assert_eq!(back.expect("control"), hello);
        proxy.events.wait(|e| matches!(e, Event::Closed { .. }));
        // `room` idle connections (no first flight) fill the budget.
        let mut idle: Vec<_> = (0..room)
            .map(|_| connect_from(src, dst).expect("connect"))
            .collect();
        // One more, from another source, is reset: no room for its sockets.
        let mut over = connect_from(other, dst).expect("connect");
        assert!(was_reset(&mut over), "connection {} not reset", room + 1);
        let want = other.parse::<std::net::IpAddr>().unwrap();
        proxy
            .events
            .wait(|e| matches!(e, Event::OverCap { source, cap: cordon_l7::Cap::Descriptors } if source.ip() == want));
        // One idle connection closes: its two descriptors come back, and
        // a connection passes again.
        drop(idle.pop());
        std::thread::sleep(Duration::from_millis(300));
        let back = round_trip(&mut connect_from(other, dst).expect("connect"), &hello);
        assert_eq!(back.expect("after one closed"), hello);
        drop(idle);
    });
}
