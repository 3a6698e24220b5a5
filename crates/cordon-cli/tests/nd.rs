//! IPv6 neighbour discovery bound to identity, ND and MLD no covert
//! channel, and Docker bridges cordon has not bound yet fail closed: each
//! attack performed in the lab from a container with Docker's default
//! capabilities (`NET_RAW` is among them), with its positive control
//! (the same attack without cordon succeeds) first.
//!
//! The attacker writes frames with `rawframe` (tests/support/rawframe.c,
//! built statically here), the frames themselves are built by the test.
//! Needs root, nft, gcc and Docker; without them each test prints one
//! `skipped:` line (and fails under CI=true).

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use cordon_lab::{
    host_reaches, lab_or_skip, sh, spoof_drops, within, ContainerOpts, Ctr, Run, TestContainer,
    TestNetwork,
};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// A marker in ICMPv6 bytes 4-7 (or 8-11 of a router advertisement) of
/// every attack packet, so that counters count only those.
const MARK: [u8; 4] = [0xc0, 0xff, 0xee, 0x42];

/// The raw-frame sender, built statically once per test process.
fn rawframe() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rawframe");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rawframe.c");
        let r = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(src)
            .output()
            .expect("run gcc");
        assert!(
            r.status.success(),
            "cannot build rawframe: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        out
    })
    .clone()
}

/// A container with the raw-frame sender at `/rawframe`, Docker's default
/// capabilities.
fn attacker(name: &str, net: &TestNetwork, labels: &[(&str, &str)]) -> TestContainer {
    let mut o = ContainerOpts::new(name)
        .network(net)
        .bind(&format!("{}:/rawframe:ro", rawframe().display()));
    for (k, v) in labels {
        o = o.label(k, v);
    }
    TestContainer::run(o)
}

/// Sends frames from the container's `eth0`.
fn send(c: &TestContainer, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let mut argv = vec!["/rawframe", "eth0"];
    argv.extend(hex.iter().map(String::as_str));
    let r = c.exec(&argv);
    assert!(r.success(), "rawframe: {}", r.output());
}

fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn ip6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

/// The link-local address the kernel derives from a MAC (modified EUI-64).
fn eui64(m: [u8; 6]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..2].copy_from_slice(&[0xfe, 0x80]);
    o[8..].copy_from_slice(&[m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
    Ipv6Addr::from(o)
}

/// An Ethernet frame carrying one ICMPv6 message (checksum computed).
#[allow(clippy::too_many_arguments)]
fn icmpv6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 16],
    dst: [u8; 16],
    hop_limit: u8,
    ty: u8,
    bytes4to7: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv6(src, dst, hop_limit)
        .icmpv6_raw(ty, 0, bytes4to7)
        .write(&mut out, body)
        .expect("build frame");
    out
}

const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

fn all_nodes() -> [u8; 16] {
    ip6("ff02::1")
}

/// Runs a command in the network namespace of a container (from the host:
/// the container itself has no `NET_ADMIN`).
fn in_netns(c: &TestContainer, argv: &[&str]) -> String {
    let ns = format!("--net=/proc/{}/ns/net", c.pid);
    let mut all = vec![ns.as_str()];
    all.extend_from_slice(argv);
    sh("nsenter", &all)
}

/// A counter of ICMPv6 packets carrying [`MARK`] at transport bit offset
/// `offset`, on the input hook of a namespace (`nft -f` run by `run`).
fn probe_table(offset: u16) -> String {
    let mark = u32::from_be_bytes(MARK);
    format!(
        "table inet ndprobe {{\n chain input {{\n  type filter hook input priority -300; policy accept;\n  meta l4proto ipv6-icmp @th,{offset},32 {mark:#x} counter\n }}\n}}\n"
    )
}

fn probe_count(listing: &str) -> u64 {
    listing
        .split("counter packets ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no probe counter in {listing}"))
}

/// A [`TestContainer`] as the lab's probes take it.
fn ctr(c: &TestContainer) -> Ctr {
    Ctr {
        name: c.name.clone(),
        id: c.id.clone(),
        ip4: c.ip4.clone(),
        ip6: c.ip6.clone(),
    }
}

/// The MAC the host's neighbour cache holds for `addr` on `bridge`.
fn host_neighbour(addr: &str, bridge: &str) -> Option<String> {
    let out = sh("ip", &["-6", "neigh", "show", addr, "dev", bridge]);
    out.split("lladdr ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_string)
}

/// True when the host gets an echo reply from `addr` within 3 s (a fresh
/// bridge address may still be tentative for a second or two).
fn host_pings(addr: &str) -> bool {
    within(3.0, || {
        Command::new("busybox")
            .args(["ping", "-6", "-c", "1", "-W", "1", addr])
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .is_some()
}

/// The packets counted by the first rule of `chain` in `inet cordon` whose
/// text contains `needle`.
fn cordon_counter(table: &str, chain: &str, needle: &str) -> u64 {
    let fam = if table == "bridge" { "bridge" } else { "inet" };
    sh("nft", &["list", "chain", fam, "cordon", chain])
        .lines()
        .filter(|l| l.contains(needle))
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

/// An unsolicited neighbour advertisement (override flag) from `from`
/// claiming `target` with `tlla` as its link-layer address, to all nodes.
fn advertisement(from_mac: [u8; 6], from_ip: [u8; 16], target: [u8; 16], tlla: [u8; 6]) -> Vec<u8> {
    let mut body = target.to_vec();
    body.extend([2, 1]);
    body.extend(tlla);
    icmpv6(
        from_mac,
        ALL_NODES_MAC,
        from_ip,
        all_nodes(),
        255,
        136,
        [0x20, 0, 0, 0],
        &body,
    )
}

/// A router advertisement with high preference, a default route (lifetime
/// 1800 s), the prefix 2001:db8:bad::/64 for autoconfiguration and the
/// sender's MAC, from the sender's link-local address to all nodes;
/// [`MARK`] is its reachable time (ICMPv6 bytes 8-11).
fn router_advertisement(from_mac: [u8; 6]) -> Vec<u8> {
    let mut body = MARK.to_vec(); // reachable time
    body.extend([0, 0, 0, 0]); // retrans timer
    body.extend([3, 4, 64, 0xc0]); // prefix information: /64, on-link, autonomous
    body.extend(86400u32.to_be_bytes());
    body.extend(14400u32.to_be_bytes());
    body.extend([0, 0, 0, 0]);
    body.extend(ip6("2001:db8:bad::"));
    body.extend([1, 1]);
    body.extend(from_mac);
    let src = eui64(from_mac).octets();
    // hop limit 64, flags: preference high (01), lifetime 1800 s
    icmpv6(
        from_mac,
        ALL_NODES_MAC,
        src,
        all_nodes(),
        255,
        134,
        [64, 0x08, 0x07, 0x08],
        &body,
    )
}

#[test]
fn spoofed_neighbour_and_router_advertisements_are_dropped() {
    let lab = lab_or_skip!(CORDON);
    let net = TestNetwork::create("nd", "10.128.0.0/24", Some("2001:db8:128::/64"));
    let bridge = net.bridge();
    let atk = attacker("ndatk", &net, &[]);
    let victim = TestContainer::run(ContainerOpts::new("ndvic").network(&net));
    let nb = TestContainer::run(ContainerOpts::new("ndnb").network(&net));
    let atk_mac = mac(atk.mac.as_deref().unwrap());
    let atk_ip = ip6(atk.ip6.as_deref().expect("IPv6 network"));
    let vic_ip6 = victim.ip6.clone().unwrap();
    let vic_mac = victim.mac.clone().unwrap();

    // cordon binds each port's link-local address as the EUI-64 of its MAC.
    for c in [&atk, &victim, &nb] {
        let ll = eui64(mac(c.mac.as_deref().unwrap())).to_string();
        let shown = c.exec(&["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"]);
        assert!(
            shown.stdout.contains(&ll),
            "{} has {ll}: {}",
            c.name,
            shown.stdout
        );
    }

    // Router advertisements reaching the neighbour are counted there.
    let probe = lab.file("probe.nft", &probe_table(64));
    in_netns(&nb, &["nft", "-f", &probe]);
    let ra_seen = || probe_count(&in_netns(&nb, &["nft", "list", "table", "inet", "ndprobe"]));
    let spoof = advertisement(atk_mac, atk_ip, ip6(&vic_ip6), atk_mac);
    let ra = router_advertisement(atk_mac);

    // Positive control, without cordon: the host's neighbour entry for the
    // victim moves to the attacker's MAC, and the neighbour gets the RA.
    assert!(host_pings(&vic_ip6), "control: the host reaches the victim");
    assert_eq!(
        host_neighbour(&vic_ip6, &bridge).as_deref(),
        Some(vic_mac.as_str())
    );
    send(&atk, &[spoof.clone(), ra.clone()]);
    let atk_mac_s = atk.mac.clone().unwrap();
    assert!(
        within(3.0, || host_neighbour(&vic_ip6, &bridge).as_deref()
            == Some(atk_mac_s.as_str()))
        .is_some(),
        "control: without cordon the spoofed advertisement takes the victim's address"
    );
    assert_eq!(
        ra_seen(),
        1,
        "control: without cordon the neighbour gets the RA"
    );

    // With cordon.
    sh("ip", &["-6", "neigh", "flush", "dev", &bridge]);
    lab.cordon_ok(&["apply"]);
    assert!(
        host_pings(&vic_ip6),
        "with cordon the host still reaches the victim"
    );
    assert_eq!(
        host_neighbour(&vic_ip6, &bridge).as_deref(),
        Some(vic_mac.as_str())
    );
    let drops = spoof_drops();
    send(&atk, &[spoof, ra]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        host_neighbour(&vic_ip6, &bridge).as_deref(),
        Some(vic_mac.as_str()),
        "the spoofed advertisement changed nothing"
    );
    assert_eq!(ra_seen(), 1, "the RA did not reach the neighbour");
    assert_eq!(spoof_drops(), drops + 2, "both were dropped as spoofing");
    assert_eq!(cordon_counter("bridge", "nd_target", "nd drop"), 1);
    assert_eq!(
        cordon_counter("bridge", "known_port", "spoof router drop"),
        1
    );

    // Advertising its own address with another MAC is spoofing too; with
    // its own MAC it is ordinary neighbour discovery and passes.
    let victim_mac = mac(&vic_mac);
    send(&atk, &[advertisement(atk_mac, atk_ip, atk_ip, victim_mac)]);
    assert_eq!(spoof_drops(), drops + 3, "another MAC in the option");
    send(&atk, &[advertisement(atk_mac, atk_ip, atk_ip, atk_mac)]);
    assert_eq!(spoof_drops(), drops + 3, "its own address and MAC pass");
    assert!(host_pings(&vic_ip6));
    assert!(host_pings(atk.ip6.as_deref().unwrap()));
}

#[test]
fn neighbour_discovery_and_mld_are_no_covert_channel() {
    let lab = lab_or_skip!(CORDON);
    lab.ipv6_forwarding();
    let inet6 = lab.netns(
        "ndcov",
        "198.51.100.1",
        "198.51.100.2",
        Some(("2001:db8:ff::1", "2001:db8:ff::2")),
    );
    lab.serve(&inet6, 80, "hello-v6");
    let net = TestNetwork::create("ndcov", "10.129.0.0/24", Some("2001:db8:129::/64"));
    let locked = attacker("ndlocked", &net, &[("cordon.policy", "locked")]);
    let open = TestContainer::run(ContainerOpts::new("ndopen").network(&net));
    let policy = lab.file(
        "locked.yaml",
        "version: 1\npolicies:\n  - name: locked\n    egress: []\n",
    );

    // What reaches the internet host with the marker is counted there.
    let probe = lab.file("probe.nft", &probe_table(32));
    sh("ip", &["netns", "exec", &inet6.name, "nft", "-f", &probe]);
    let arrived = || {
        probe_count(&sh(
            "ip",
            &[
                "netns",
                "exec",
                &inet6.name,
                "nft",
                "list",
                "table",
                "inet",
                "ndprobe",
            ],
        ))
    };

    let gw_mac = mac(
        std::fs::read_to_string(format!("/sys/class/net/{}/address", net.bridge()))
            .unwrap()
            .trim(),
    );
    let src_mac = mac(locked.mac.as_deref().unwrap());
    let src = ip6(locked.ip6.as_deref().unwrap());
    let dst = ip6("2001:db8:ff::2");
    // Types 133-136 (ND), 130, 131, 143 (MLD) with hop limit 64, and the ND
    // types once more with 255, each carrying data. The ND messages are
    // well formed and claim only the sender's own address and MAC (a
    // solicitation's target is free: 16 bytes of payload), so the bridge
    // table lets them through and the inet table must judge them; a router
    // advertisement is dropped by the bridge table whatever it carries.
    let payload = b"covert payload 0123456789abcdef";
    let body = |ty: u8| -> Vec<u8> {
        match ty {
            133 => vec![],
            135 => payload[..16].to_vec(),
            136 => src.to_vec(),
            _ => payload.to_vec(),
        }
    };
    let mut frames = Vec::new();
    for (ty, hop) in [
        (133, 64),
        (134, 64),
        (135, 64),
        (136, 64),
        (130, 64),
        (131, 64),
        (143, 64),
        (133, 255),
        (134, 255),
        (135, 255),
        (136, 255),
    ] {
        frames.push(icmpv6(src_mac, gw_mac, src, dst, hop, ty, MARK, &body(ty)));
    }

    // Positive control: without cordon all of them reach the internet host.
    assert!(
        lab.reaches(&ctr(&open), "2001:db8:ff::2", 80, "hello-v6"),
        "control: the IPv6 internet is there"
    );
    send(&locked, &frames);
    assert!(
        within(3.0, || arrived() == frames.len() as u64).is_some(),
        "control: without cordon {} of {} arrive",
        arrived(),
        frames.len()
    );

    lab.cordon_ok(&["apply", "-c", &policy]);
    let before = arrived();
    let logged = cordon_counter("inet", "eg_fwd_locked", "cordon egress locked drop");
    let routers = cordon_counter("bridge", "known_port", "spoof router drop");
    send(&locked, &frames);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        arrived(),
        before,
        "with cordon none reaches the internet host"
    );
    assert_eq!(
        cordon_counter("inet", "eg_fwd_locked", "cordon egress locked drop"),
        logged + 9,
        "the ND and MLD messages are judged by the policy and logged as drops"
    );
    assert_eq!(
        cordon_counter("bridge", "known_port", "spoof router drop"),
        routers + 2,
        "the router advertisements are dropped and logged as spoofing"
    );

    // Legitimate neighbour discovery still works: with its neighbour cache
    // emptied, a container the policy lets out resolves its gateway (and
    // the host resolves it) under cordon and reaches the IPv6 internet.
    in_netns(&open, &["ip", "-6", "neigh", "flush", "all"]);
    sh("ip", &["-6", "neigh", "flush", "dev", &net.bridge()]);
    assert!(
        lab.reaches(&ctr(&open), "2001:db8:ff::2", 80, "hello-v6"),
        "neighbour discovery works under cordon"
    );
}

#[test]
fn a_network_created_while_the_daemon_is_down_is_closed_until_it_returns() {
    let lab = lab_or_skip!(CORDON);
    let (_inet, _lan) = lab.internet_and_lan("ub", 131);
    lab.serve_host("0.0.0.0", 18131, "hello-host");
    let reaches_all = |c: &Ctr, gw: &str| {
        [
            lab.reaches(c, "198.51.100.2", 80, "hello-inet"),
            lab.reaches(c, "10.131.0.2", 80, "hello-lan"),
            lab.reaches(c, gw, 18131, "hello-host"),
        ]
    };

    // Positive control: a container on a network new to everyone reaches
    // the internet, the LAN and the host, and the host reaches its server,
    // without cordon.
    let first = lab.network("ubfirst", "10.132.0.0/24", None);
    let a = lab.run(Run::named("ubfirst").on(&first).serve(8080, "hello-a"));
    assert_eq!(reaches_all(&a, "10.132.0.1"), [true; 3], "control");
    assert!(
        host_reaches(&a.ip4, 8080, "hello-a"),
        "control: host to container"
    );

    // cordon applied, then a network created while no daemon runs.
    lab.cordon_ok(&["apply"]);
    let late = lab.network("ublate", "10.133.0.0/24", None);
    let b = lab.run(Run::named("ublate").on(&late).serve(8080, "hello-b"));
    assert_eq!(
        reaches_all(&b, "10.133.0.1"),
        [false; 3],
        "a bridge cordon has not bound is closed: internet, LAN, host"
    );
    assert!(
        !host_reaches(&b.ip4, 8080, "hello-b"),
        "and the host does not reach into it"
    );
    assert!(cordon_counter("inet", "forward", "egress unbound-bridge") > 0);
    assert!(cordon_counter("inet", "egress_host", "unbound-bridge") > 0);
    assert!(cordon_counter("inet", "ingress_local", "unbound-bridge") > 0);
    assert!(
        host_reaches("198.51.100.2", 80, "hello-inet"),
        "the host still reaches its own namespaces"
    );
    assert!(
        host_reaches(&a.ip4, 8080, "hello-a"),
        "and the containers of bound bridges"
    );

    // The daemon binds it: the container gets the default policy.
    let _daemon = lab.start_daemon(&[]);
    assert!(
        within(10.0, || lab.reaches(&b, "198.51.100.2", 80, "hello-inet")).is_some(),
        "once bound, the default policy lets it out to the internet"
    );
    assert!(
        !lab.reaches(&b, "10.131.0.2", 80, "hello-lan"),
        "but not to the LAN"
    );
}
