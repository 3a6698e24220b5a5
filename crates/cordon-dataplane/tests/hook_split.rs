//! The one egress map and the one ingress map per family are looked up in
//! two hooks each; the policy's forwarded chain they enter splits the
//! host's own hook off with `meta oif 0` (input: a packet to the host has
//! no output interface) and `meta iif 0` (output: the host's own packet
//! has no input interface). Shown here with real packets through real
//! hooks: a "host" namespace with a bridge, a "container" namespace on it
//! and an "outside" namespace routed behind the host, TCP listeners in all
//! three.
//!
//! Needs root and nft; without them the test prints one `skipped:` line,
//! except under CI (CI=true), where that is a failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use cordon_compiler::{compile, SetOverrides};
use cordon_dataplane::Nft;
use cordon_inventory::{Container, Endpoint, Inventory, Network};

#[macro_use]
mod support;

use support::Ns;

const PORT: u16 = 8080;
const HOST_BR: &str = "10.77.255.1";
const HOST_OUT: &str = "10.78.0.1";
const CONTAINER: &str = "10.77.0.2";
const OUTSIDE: &str = "10.78.0.2";
const MAC: &str = "02:42:0a:4d:00:02";

/// `fwd` allows 10.0.0.0/8 (the host's own addresses included) on 8080/tcp
/// both ways, but not `host`; `local` allows only the host, both ways.
const POLICY: &str = r#"
version: 1
policies:
  - name: fwd
    select: { label: { app: fwd } }
    ingress:
      - from: [10.0.0.0/8]
        ports: [8080/tcp]
    egress:
      - to: [10.0.0.0/8]
        ports: [8080/tcp]
  - name: local
    select: { label: { app: local } }
    ingress:
      - from: [host]
        ports: [8080/tcp]
    egress:
      - to: [host]
        ports: [8080/tcp]
"#;

fn inventory(app: &str) -> Inventory {
    let mut c = Container {
        id: "c".repeat(64),
        name: "c0".into(),
        image: "busybox".into(),
        ..Default::default()
    };
    c.labels.insert("app".into(), app.into());
    c.endpoints.push(Endpoint {
        network: "lab".into(),
        ipv4: Some(CONTAINER.parse().unwrap()),
        mac: Some(MAC.into()),
        host_iface: Some("vc0".into()),
        bridge: Some("br-lab".into()),
        ..Default::default()
    });
    Inventory {
        version: 1,
        networks: vec![Network {
            id: "n".repeat(64),
            name: "lab".into(),
            driver: "bridge".into(),
            bridge: Some("br-lab".into()),
            subnets: vec!["10.77.0.0/16".parse().unwrap()],
            ..Default::default()
        }],
        containers: vec![c],
    }
}

/// Moves the calling thread into network namespace `name`.
fn enter(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
    // SAFETY: setns on a descriptor we own; it moves only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns");
}

/// A TCP listener on every address of `ns` that greets each connection
/// with `banner` (its thread lives as long as the test process).
fn serve(ns: &Ns, banner: &'static str) {
    let name = ns.0.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        enter(&name);
        let l = TcpListener::bind(("0.0.0.0", PORT)).expect("bind");
        tx.send(()).unwrap();
        for s in l.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(banner.as_bytes());
        }
    });
    rx.recv().expect("listening");
}

/// True when a connection from `ns` to `addr` gets `banner` back.
fn reaches(ns: &Ns, addr: &str, banner: &str) -> bool {
    let name = ns.0.clone();
    let to: SocketAddr = format!("{addr}:{PORT}").parse().unwrap();
    let want = banner.to_string();
    std::thread::spawn(move || {
        enter(&name);
        let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_millis(800)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(800)));
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        got == want
    })
    .join()
    .unwrap()
}

#[test]
fn the_host_split_of_the_shared_maps_holds_in_real_hooks() {
    need_root_nft!();
    let host = Ns::add("chs");
    let ctr = Ns::add("chs");
    let out = Ns::add("chs");
    let sh = |ns: &Ns, cmd: &str| ns.sh(&cmd.split(' ').collect::<Vec<_>>());
    for cmd in [
        "ip link set lo up",
        "sysctl -qw net.ipv4.ip_forward=1",
        "ip link add br-lab type bridge",
        "ip addr add 10.77.255.1/16 dev br-lab",
        "ip link set br-lab up",
        "ip link add vc0 type veth peer name eth0c",
        "ip link set vc0 master br-lab",
        "ip link set vc0 up",
        "ip link add vo0 type veth peer name eth0o",
        "ip addr add 10.78.0.1/24 dev vo0",
        "ip link set vo0 up",
    ] {
        sh(&host, cmd);
    }
    sh(&host, &format!("ip link set eth0c netns {}", ctr.0));
    sh(&host, &format!("ip link set eth0o netns {}", out.0));
    for cmd in [
        "ip link set lo up",
        &format!("ip link set eth0c address {MAC}"),
        "ip addr add 10.77.0.2/16 dev eth0c",
        "ip link set eth0c up",
        "ip route add default via 10.77.255.1",
    ] {
        sh(&ctr, cmd);
    }
    for cmd in [
        "ip link set lo up",
        "ip addr add 10.78.0.2/24 dev eth0o",
        "ip link set eth0o up",
        "ip route add default via 10.78.0.1",
    ] {
        sh(&out, cmd);
    }
    serve(&host, "hello-host");
    serve(&ctr, "hello-container");
    serve(&out, "hello-outside");

    // Every way, without cordon: the positive control.
    let ways = |expect: [bool; 5], what: &str| {
        let got = [
            reaches(&ctr, OUTSIDE, "hello-outside"),
            reaches(&ctr, HOST_BR, "hello-host"),
            reaches(&ctr, HOST_OUT, "hello-host"),
            reaches(&out, CONTAINER, "hello-container"),
            reaches(&host, CONTAINER, "hello-container"),
        ];
        assert_eq!(
            got, expect,
            "{what}: container->outside (forward), container->host on the bridge and \
             on the uplink (input), outside->container (forward), host->container (output)"
        );
    };
    ways([true; 5], "control, without cordon");

    let policy = cordon_policy::parse("t.yaml", POLICY).expect("policy");
    let nft = Nft::in_netns(&host.0);
    let fwd = compile(&policy, &inventory("fwd"), &SetOverrides::default()).ruleset;
    nft.install(&fwd).unwrap();
    // A forwarded allow covering the host's addresses does not open the
    // host (the input hook goes to eg_host_fwd), and the host is not one
    // of the sources its forwarded ingress allows (the output hook goes to
    // in_local_fwd).
    ways([true, false, false, true, false], "policy fwd");

    let to_host = compile(&policy, &inventory("local"), &SetOverrides::default()).ruleset;
    nft.install(&to_host).unwrap();
    // And the other way round: `host` opens the host, nothing forwarded.
    ways([false, true, true, false, true], "policy local");
}
