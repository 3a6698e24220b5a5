//! The constant address ranges behind the words `internet`, `private` and
//! `metadata`.

use ipnet::IpNet;

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter()
        .map(|s| s.parse().expect("constant range parses"))
        .collect()
}

/// `private`: the spec's private, carrier-grade NAT, loopback and link-local
/// ranges.
pub fn private() -> Vec<IpNet> {
    nets(&[
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    ])
}

/// `metadata`: the cloud metadata endpoints (inside `private`).
pub fn metadata() -> Vec<IpNet> {
    nets(&["169.254.169.254/32", "fd00:ec2::254/128"])
}

/// Everything that is *not* `internet`: `private` plus the addresses that
/// are not unicast or not routable on the internet (this network,
/// multicast, reserved and broadcast; unspecified, IPv4-mapped, multicast
/// IPv6). `internet` is the complement of this set.
pub fn nonpublic() -> Vec<IpNet> {
    let mut v = private();
    v.extend(nets(&[
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::ffff:0:0/96",
        "ff00::/8",
    ]));
    v
}

/// Splits addresses by family and merges overlapping and adjacent prefixes,
/// as nftables interval sets require.
pub fn split_aggregate(nets: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    let v4: Vec<IpNet> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V4(_)))
        .map(|n| n.trunc())
        .collect();
    let v6: Vec<IpNet> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)))
        .map(|n| n.trunc())
        .collect();
    (IpNet::aggregate(&v4), IpNet::aggregate(&v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_merges_overlaps_per_family() {
        let input: Vec<IpNet> = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "2001:db8::/32",
            "2001:db8:1::/48",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let (v4, v6) = split_aggregate(&input);
        assert_eq!(v4, vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        assert_eq!(v6, vec!["2001:db8::/32".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn metadata_is_inside_private() {
        let private = private();
        for m in metadata() {
            assert!(private.iter().any(|p| p.contains(&m)), "{m}");
        }
    }
}
