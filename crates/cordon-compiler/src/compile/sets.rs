//! The set declarations of `inet cordon` that do not belong to one policy:
//! the words' constant ranges, the Docker bridges, the policy file's named
//! sets, and the helpers every address set is declared with.

use std::collections::BTreeSet;

use cordon_policy::PolicyFile;
use ipnet::IpNet;

use cordon_ruleset::names;
use cordon_ruleset::nft::*;

use super::elements::net_elements;
use crate::words;
use crate::SetOverrides;
use cordon_ruleset::nft::smallvec;

pub(super) fn addr_set(name: String, fam: u8, comment: impl Into<String>) -> Set {
    let key = if fam == 4 {
        KeyType::Ipv4
    } else {
        KeyType::Ipv6
    };
    Set::new(name, vec![key], comment)
}

pub(super) fn interval_set(name: &str, fam: u8, nets: &[IpNet], comment: &str) -> Set {
    let mut s = addr_set(name.to_string(), fam, comment);
    s.interval = true;
    s.elements = net_elements(nets);
    s
}

pub(super) fn constant_sets(
    t: &mut Table,
    bridges: &BTreeSet<String>,
    same_net: &BTreeSet<String>,
    subnets: &[IpNet],
) {
    let consts: [(&str, Vec<IpNet>, &str); 4] = [
        (names::NONPUBLIC, words::nonpublic(), "not internet"),
        (names::PRIVATE, words::private(), "the word private"),
        (names::METADATA, words::metadata(), "the word metadata"),
        (names::SUBNETS, subnets.to_vec(), "Docker bridge subnets"),
    ];
    for (name, nets, comment) in consts {
        let (v4, v6) = words::split_aggregate(&nets);
        t.sets
            .push(interval_set(&names::range_set(name, 4), 4, &v4, comment));
        t.sets
            .push(interval_set(&names::range_set(name, 6), 6, &v6, comment));
    }
    let mut b = Set::new(
        names::BRIDGES,
        vec![KeyType::Ifname],
        "Docker bridges cordon manages",
    );
    b.elements = bridges
        .iter()
        .map(|n| Element {
            key: smallvec![Value::Ifname(n.into())],
            verdict: None,
        })
        .collect();
    t.sets.push(b);
    t.sets.push(docker_bridge_names());
    let mut s = Set::new(
        names::SAME_NET,
        vec![KeyType::Ifname, KeyType::Ifname],
        "user-defined bridges: same-network",
    );
    s.elements = same_net
        .iter()
        .map(|n| Element {
            key: smallvec![Value::Ifname(n.into()), Value::Ifname(n.into())],
            verdict: None,
        })
        .collect();
    t.sets.push(s);
}

pub(super) fn named_sets(t: &mut Table, policy: &PolicyFile, overrides: &SetOverrides) {
    for set in &policy.sets {
        let nets = overrides.effective(&set.name, &set.addrs);
        let (v4, v6) = words::split_aggregate(&nets);
        let comment = format!("set {}", set.name);
        t.sets.push(interval_set(
            &names::named_set(&set.name, 4),
            4,
            &v4,
            &comment,
        ));
        t.sets.push(interval_set(
            &names::named_set(&set.name, 6),
            6,
            &v6,
            &comment,
        ));
    }
}

/// The set of names Docker gives its bridges: `br-` and the network id's
/// first 12 hex digits, and `docker0`. nftables matches a name by prefix at
/// most, so the set holds the 256 prefixes `br-` and two lowercase hex
/// digits (`br-00*` … `br-ff*`), which leaves out names such as `br-lan`,
/// `br-ex` or `br-mgmt`; `meta iifkind bridge` leaves out what is not a
/// Linux bridge (Open vSwitch's `br-int`).
fn docker_bridge_names() -> Set {
    let mut s = Set::new(
        names::DOCKER_BRIDGE_NAMES,
        vec![KeyType::Ifname],
        "names Docker gives its bridges",
    );
    s.interval = true;
    s.elements = (0..=255u8)
        .map(|i| format!("br-{i:02x}*"))
        .chain(std::iter::once("docker0".to_string()))
        .map(|n| Element {
            key: smallvec![Value::Ifname(n.into())],
            verdict: None,
        })
        .collect();
    s
}
