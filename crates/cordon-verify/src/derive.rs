//! The probe set `cordon verify` uses when given no targets: one probe per
//! egress rule that names a concrete address (a CIDR, an address or a set),
//! at its first port, plus the places a container must normally not reach:
//! the metadata endpoint, a private address and the host (its gateway).

use std::net::{IpAddr, Ipv4Addr};

use cordon_compiler::evaluate::{Flow, Proto};
use cordon_compiler::SetOverrides;
use cordon_policy::{Peer, PolicyFile, PortSpec, Rule};
use ipnet::IpNet;

use crate::target::Target;

/// The derived probe set for a container whose policy has `rules`, whose
/// gateway (the host's address on its bridge) is `gateway`.
pub fn derive(
    rules: &[Rule],
    policy: &PolicyFile,
    overrides: &SetOverrides,
    gateway: Option<IpAddr>,
) -> Vec<Target> {
    let mut out = Vec::new();
    for rule in rules {
        let net = rule.peers.iter().find_map(|p| match p {
            Peer::Net(n) => Some(*n),
            Peer::Set(name) => policy
                .set(name)
                .and_then(|s| overrides.effective(name, &s.addrs).first().copied()),
            _ => None,
        });
        if let Some(net) = net {
            let (proto, port) = first_port(&rule.ports);
            out.push(Target(Flow {
                dst: first_host(net),
                proto,
                port,
            }));
        }
    }
    let fixed = [
        (IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
    ];
    for (dst, port) in fixed.into_iter().chain(gateway.map(|g| (g, 22))) {
        out.push(Target(Flow {
            dst,
            proto: Proto::Tcp,
            port,
        }));
    }
    out.dedup();
    out
}

/// A rule's first port; `80/tcp` for a rule of all ports.
fn first_port(ports: &[PortSpec]) -> (Proto, u16) {
    match ports.first() {
        Some(PortSpec::Tcp(lo, _)) => (Proto::Tcp, *lo),
        Some(PortSpec::Udp(lo, _)) => (Proto::Udp, *lo),
        Some(PortSpec::Icmp) => (Proto::Icmp, 0),
        None => (Proto::Tcp, 80),
    }
}

/// The first host address of a network (the address itself for a single
/// address).
fn first_host(net: IpNet) -> IpAddr {
    let base = net.network();
    if net.prefix_len() + 1 >= net.max_prefix_len() {
        return base;
    }
    match base {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + 1)),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_concrete_rule_then_the_fixed_places() {
        let policy = cordon_policy::parse(
            "p.yaml",
            "version: 1\nsets:\n  office: [203.0.113.0/26]\npolicies:\n  - name: p\n    select: { name: p }\n    egress:\n      - to: [internet]\n        ports: [443/tcp]\n      - to: [198.51.100.7]\n        ports: [53/udp]\n      - to: [office]\n      - to: [\"2001:db8::/64\"]\n        ports: [icmp]\n",
        )
        .unwrap();
        let rules = &policy.policies[0].body.egress;
        let got: Vec<String> = derive(
            rules,
            &policy,
            &SetOverrides::default(),
            Some("172.17.0.1".parse().unwrap()),
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            got,
            [
                "198.51.100.7:53/udp",
                "203.0.113.1:80/tcp",
                "2001:db8::1/icmp",
                "169.254.169.254:80/tcp",
                "10.0.0.1:80/tcp",
                "172.17.0.1:22/tcp",
            ]
        );
    }
}
