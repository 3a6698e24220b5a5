//! The lab's own tests: each path the end-to-end tests rely on works
//! without cordon (positive controls), probes fail cleanly where nothing
//! answers, and nothing is left behind, also after a panic.
//!
//! Needs root, nft and Docker; without them each test prints one
//! `skipped:` line (and fails under CI=true).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cordon_lab::{
    lab_or_skip, lock, nft_or_skip, ContainerOpts, Dnsmasq, LabLock, Netns, Run, SysctlGuard,
    TcpServer, TestContainer, TestNetwork, UdpEcho, Uplink,
};

#[track_caller]
fn assert_clean() {
    let left = cordon_lab::leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn internet_namespace_answers_a_container_on_the_default_bridge() {
    lab_or_skip!();
    let _lock = lock();
    {
        let inet = Netns::new("inet");
        let _up = Uplink::to_host(&inet, "198.51.100.1/24", "198.51.100.2/24");
        let _web = TcpServer::banner(&inet, 80, "hello-inet");
        let _echo = UdpEcho::start(&inet, 7);
        let _dns = Dnsmasq::start(&inet, "198.51.100.2", &[("lab.test", "198.51.100.2")]);
        let _host = TcpServer::on_host("198.51.100.1", 8081, "hello-host");
        let c = TestContainer::run(ContainerOpts::new("probe").dns("198.51.100.2"));
        assert!(c.name.starts_with("cl-probe-"), "{}", c.name);
        assert!(
            c.ip4.starts_with("172."),
            "default bridge address {}",
            c.ip4
        );
        assert!(c.pid > 0);

        assert_eq!(
            c.tcp_banner("198.51.100.2", 80, 2).as_deref(),
            Some("hello-inet")
        );
        assert!(c.reaches("198.51.100.2", 80, "hello-inet"));
        assert!(
            !c.reaches("198.51.100.2", 80, "hello-other"),
            "a probe succeeds only on its own banner"
        );
        assert!(!c.tcp_connect("198.51.100.2", 81, 2), "refused");
        assert!(c.ping("198.51.100.2"));
        assert!(c.udp_echo("198.51.100.2", 7));
        assert!(!c.udp_echo("198.51.100.2", 8), "no UDP server there");
        assert!(c.reaches("198.51.100.1", 8081, "hello-host"), "the host");
        assert_eq!(
            c.resolve("lab.test", "198.51.100.2"),
            vec!["198.51.100.2".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(c.resolve("unknown.test", "198.51.100.2").is_empty());

        // Where nothing answers a probe is a clean, short timeout.
        let start = Instant::now();
        assert!(!c.tcp_connect("198.51.100.99", 80, 2));
        assert!(!c.ping("198.51.100.99"));
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{:?}",
            start.elapsed()
        );

        let r = c.sh("echo out; echo err >&2; exit 3");
        assert_eq!(
            (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        let r = c.exec_timeout(&["sleep", "5"], Duration::from_millis(300));
        assert!(r.timed_out && !r.success());

        // The namespace's own probes.
        assert!(inet.reaches("198.51.100.1", 8081, "hello-host"));
        assert!(inet.ping("198.51.100.1"));
        assert_eq!(
            inet.resolve("lab.test", "198.51.100.2"),
            vec!["198.51.100.2".parse::<std::net::IpAddr>().unwrap()]
        );
    }
    assert_clean();
}

#[test]
fn user_defined_network_reaches_internet_lan_and_neighbours() {
    lab_or_skip!();
    let _lock = lock();
    {
        let inet = Netns::new("inet");
        let _up = Uplink::to_host(&inet, "198.51.100.1/24", "198.51.100.2/24");
        let _web = TcpServer::banner(&inet, 80, "hello-inet");
        let lan = Netns::new("lan");
        let _lan_up = Uplink::to_host(&lan, "10.200.0.1/24", "10.200.0.2/24");
        let _lan_web = TcpServer::banner(&lan, 80, "hello-lan");
        let net = TestNetwork::create("app", "10.201.0.0/24", None);
        assert_eq!(net.gateway4(), Some("10.201.0.1"));
        let a = TestContainer::run(
            ContainerOpts::new("a")
                .network(&net)
                .ip4("10.201.0.50")
                .label("app", "probe"),
        );
        let b = TestContainer::run(
            ContainerOpts::new("b")
                .network(&net)
                .serve_tcp(80, "hello-b")
                .serve_tcp(81, "hello-b81"),
        );
        assert_eq!(a.ip4, "10.201.0.50");
        assert_eq!(a.network, net.name());

        assert!(a.reaches("198.51.100.2", 80, "hello-inet"));
        assert!(a.reaches("10.200.0.2", 80, "hello-lan"));
        assert!(a.reaches(&b.ip4, 80, "hello-b"));
        assert!(a.reaches(&b.ip4, 81, "hello-b81"));
        assert!(a.ping(&b.ip4));

        // The container's port on the host is a port of the network's bridge.
        let port = a.host_iface();
        let master =
            std::fs::read_link(format!("/sys/class/net/{port}/master")).expect("a bridge port");
        assert_eq!(
            master.file_name().unwrap().to_string_lossy(),
            net.bridge(),
            "{port}"
        );
        let labels = a
            .inspect()
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default();
        assert_eq!(labels.get("app").map(String::as_str), Some("probe"));
    }
    assert_clean();
}

#[test]
fn ipv6_network_reaches_a_2001_db8_namespace_and_back() {
    lab_or_skip!();
    let _lock = lock();
    {
        let inet6 = Netns::new("inet6");
        let up = Uplink::to_host(&inet6, "198.51.100.1/24", "198.51.100.2/24")
            .with("2001:db8:51::1/64", "2001:db8:51::2/64");
        assert_eq!(up.ns_ip6().unwrap().to_string(), "2001:db8:51::2");
        assert_eq!(
            cordon_lab::sysctl::read("net.ipv6.conf.all.forwarding").unwrap(),
            "1"
        );
        let _web = TcpServer::banner(&inet6, 80, "hello-v6");
        let _echo = UdpEcho::start(&inet6, 7);
        let net = TestNetwork::create("v6", "10.202.0.0/24", Some("2001:db8:202::/64"));
        let c = TestContainer::run(
            ContainerOpts::new("v6")
                .network(&net)
                .serve_tcp(8080, "hello-ctr6"),
        );
        let ip6 = c.ip6.clone().expect("an IPv6 address");
        assert!(ip6.starts_with("2001:db8:202:"), "{ip6}");

        assert!(c.reaches("2001:db8:51::2", 80, "hello-v6"));
        assert!(c.ping("2001:db8:51::2"));
        assert!(c.udp_echo("2001:db8:51::2", 7));
        assert!(c.reaches("198.51.100.2", 80, "hello-v6"), "and IPv4");
        // No NAT for IPv6: the namespace reaches the container directly,
        // through its default route via the host.
        assert!(inet6.reaches(&ip6, 8080, "hello-ctr6"));
    }
    assert_clean();
}

#[test]
fn office_reaches_a_published_port_through_the_hosts_lab_address() {
    lab_or_skip!();
    let _lock = lock();
    {
        let office = Netns::new("office");
        let _up = Uplink::to_host(&office, "198.18.0.1/24", "198.18.0.10/24");
        let _admin = TestContainer::run(
            ContainerOpts::new("admin")
                .serve_tcp(8080, "hello-admin")
                .publish(8080, 28080)
                .publish_on("198.18.0.1", 8080, 28081),
        );
        assert!(office.reaches("198.18.0.1", 28080, "hello-admin"));
        assert!(office.reaches("198.18.0.1", 28081, "hello-admin"));
        assert!(
            !office.tcp_connect("198.18.0.1", 28082),
            "nothing published"
        );
    }
    assert_clean();
}

#[test]
fn guards_clean_up_while_a_test_panics() {
    lab_or_skip!();
    let _lock = lock();
    let names = Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let ns = Netns::new("boom");
        let up = Uplink::to_host(&ns, "198.51.100.1/24", "198.51.100.2/24");
        let _web = TcpServer::banner(&ns, 80, "hello-boom");
        let net = TestNetwork::create("boom", "10.203.0.0/24", None);
        let c = TestContainer::run(ContainerOpts::new("boom").network(&net));
        names.lock().unwrap().extend([
            ns.name().to_string(),
            up.host_if().to_string(),
            c.id.clone(),
            net.id().to_string(),
        ]);
        assert!(!cordon_lab::leftovers().is_empty());
        panic!("a failing test");
    });
    assert!(result.is_err());
    assert_eq!(names.lock().unwrap().len(), 4);
    assert_clean();
}

#[test]
fn namespaces_and_the_host_reach_each_other_without_docker() {
    nft_or_skip!();
    let _lock = lock();
    {
        let _again = lock();
        assert!(LabLock::held(), "the lock is re-entrant on one thread");
        let a = Netns::new("a");
        let up_a = Uplink::to_host(&a, "198.51.100.1/24", "198.51.100.2/24")
            .with("2001:db8:51::1/64", "2001:db8:51::2/64");
        assert!(up_a.host_if().len() <= 15);
        assert_eq!(up_a.ns_if(), "eth0");
        let out = a.exec_ok(&["ip", "-br", "addr"]);
        assert!(out.contains("198.51.100.2/24"), "{out}");

        // The namespace reaches the host's own services.
        let _host = TcpServer::on_host("198.51.100.1", 8082, "hello-host");
        let _host6 = TcpServer::on_host("2001:db8:51::1", 8082, "hello-host6");
        let _host_echo = UdpEcho::on_host("198.51.100.1", 7007);
        assert!(a.reaches("198.51.100.1", 8082, "hello-host"));
        assert!(a.reaches("2001:db8:51::1", 8082, "hello-host6"));
        assert!(a.udp_echo("198.51.100.1", 7007));
        assert!(a.ping("198.51.100.1"));
        assert!(a.ping("2001:db8:51::1"));
        assert!(!a.tcp_connect("198.51.100.1", 8083), "refused");

        // The host reaches the namespace, also an address behind it.
        let _web = TcpServer::banner(&a, 80, "hello-a");
        let _echo = UdpEcho::start(&a, 7);
        assert!(cordon_lab::host_reaches("198.51.100.2", 80, "hello-a"));
        assert!(cordon_lab::host_reaches("2001:db8:51::2", 80, "hello-a"));
        assert!(cordon_lab::host_udp_echo("2001:db8:51::2", 7));
        let b = Netns::new("b");
        let up_b = Uplink::to_host(&b, "198.18.0.1/28", "198.18.0.10/28");
        assert_eq!(up_b.ns_ip4().unwrap().to_string(), "198.18.0.10");
        b.add_address("198.18.0.77/32");
        up_b.route_to_ns("198.18.0.77/32");
        let _extra = TcpServer::banner_on(&b, "198.18.0.77", 8080, "hello-extra");
        assert!(cordon_lab::host_reaches("198.18.0.77", 8080, "hello-extra"));
        assert!(!cordon_lab::host_reaches(
            "198.18.0.10",
            8080,
            "hello-extra"
        ));

        // A sysctl guard restores the old value with its last holder.
        let key = format!("net.ipv4.conf.{}.accept_local", up_b.host_if());
        let before = cordon_lab::sysctl::read(&key).unwrap();
        let g1 = SysctlGuard::set(&key, "1");
        let g2 = SysctlGuard::set(&key, "1");
        drop(g1);
        assert_eq!(cordon_lab::sysctl::read(&key).unwrap(), "1");
        drop(g2);
        assert_eq!(cordon_lab::sysctl::read(&key).unwrap(), before);

        // A spawned process dies with its guard.
        let mut p = a.spawn(&["sleep", "60"]);
        assert!(p.is_running());
        let pid = p.pid();
        drop(p);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        // And one left running dies with its namespace.
        let p = b.spawn(&["sleep", "60"]);
        let pid = p.pid();
        std::mem::forget(p);
        drop(b);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z ")),
            "killed with its namespace"
        );
    }
    let left = cordon_lab::leftovers();
    assert!(
        !left
            .iter()
            .any(|l| l.starts_with("netns") || l.starts_with("link")),
        "{left:?}"
    );
}

/// The panic message of `f`, or `None` when it returns.
fn refusal(f: impl FnOnce()) -> Option<String> {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
}

#[test]
fn the_guard_refuses_the_hosts_resolver_and_gateway_before_building() {
    nft_or_skip!();
    let _lock = lock();
    // Read independently of the guard.
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolver = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(str::trim)
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .expect("an IPv4 nameserver in /etc/resolv.conf")
        .to_string();
    let route = cordon_lab::sh("ip", &["-4", "route", "show", "default"]);
    let gateway = route
        .split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .expect("an IPv4 default gateway")
        .to_string();
    let octets = |ip: &str| ip.rsplit_once('.').unwrap().0.to_string();
    let nets = [octets(&resolver), octets(&gateway)];
    // The host's routes into the refused ranges.
    let routes = || -> Vec<String> {
        cordon_lab::sh("ip", &["route"])
            .lines()
            .filter(|l| nets.iter().any(|n| l.contains(&format!("{n}."))))
            .map(String::from)
            .collect()
    };
    let routes_before = routes();
    {
        let ns = Netns::new("guard");
        // Positive control: a clean range builds.
        let up = Uplink::to_host(&ns, "198.51.100.1/24", "198.51.100.2/24");
        assert_eq!(up.ns_ip4().unwrap().to_string(), "198.51.100.2");
        for ip in [&resolver, &gateway] {
            let net = octets(ip);
            let msg = refusal(|| {
                Uplink::to_host(&ns, &format!("{net}.1/24"), &format!("{net}.2/24"));
            })
            .unwrap_or_else(|| panic!("an uplink over {ip} was built"));
            eprintln!("{msg}");
            assert!(msg.starts_with("cordon-lab refuses lab range"), "{msg}");
            assert!(msg.contains(ip.as_str()) && !msg.contains('\n'), "{msg}");
            let msg = refusal(|| ns.add_address(&format!("{ip}/32"))).expect("refused");
            assert!(msg.contains("refuses"), "{msg}");
            let msg = refusal(|| up.route_to_ns(&format!("{net}.0/24"))).expect("refused");
            assert!(msg.contains("refuses"), "{msg}");
        }
        // Refused before anything was built: one veth (the clean one).
        let links = cordon_lab::leftovers()
            .into_iter()
            .filter(|l| l.starts_with("link"))
            .count();
        assert_eq!(links, 1);
        let addrs = ns.exec_ok(&["ip", "-br", "addr"]);
        assert!(!addrs.contains(&octets(&resolver)), "{addrs}");
    }
    assert_eq!(routes(), routes_before);
    assert_clean();
}

#[test]
fn the_all_in_one_lab_owns_and_removes_everything() {
    // `true` stands in for the cordon binary.
    let lab = lab_or_skip!("/bin/true");
    let inet = lab.netns(
        "inet",
        "198.51.100.1",
        "198.51.100.2",
        Some(("2001:db8:51::1", "2001:db8:51::2")),
    );
    lab.serve(&inet, 80, "hello-inet");
    lab.dns_server(&inet, "lab.test", "198.51.100.2");
    lab.serve_host("198.51.100.1", 8081, "hello-host");
    let net = lab.network("all", "10.204.0.0/24", Some("2001:db8:204::/64"));
    let c = lab.run(Run::named("c").on(&net).dns(&inet.ip4).serve(80, "hello-c"));
    let d = lab.run(Run::named("d").on(&net));
    assert!(lab.reaches(&d, "198.51.100.2", 80, "hello-inet"));
    assert!(lab.reaches(&d, "2001:db8:51::2", 80, "hello-inet"));
    assert!(lab.reaches(&d, &c.ip4, 80, "hello-c"));
    assert!(lab.reaches(&d, "198.51.100.1", 8081, "hello-host"));
    assert!(lab.resolves(&c, "lab.test", "198.51.100.2"));
    assert!(lab.ns_reaches(&inet, "198.51.100.1", 8081, "hello-host"));
    let (code, out) = lab.exec(&c, "id -u");
    assert_eq!((code, out.trim()), (0, "0"));
    drop(lab);
    assert_clean();
}
