//! What the evaluation needs from the host's kernel: the addresses cordon's
//! DNS proxy opened, and the host's own addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_dataplane::{Nft, NftError};
use cordon_policy::{Body, Peer, PolicyFile};
use cordon_ruleset::{names, PolicyKey};

/// The contents of every `dns_<policy>_<rule>_<4|6>` timeout set of `inet
/// cordon` the policy file declares, by set name: the addresses the DNS
/// proxy learned and holds open now.
///
/// # Errors
/// When nft cannot list a set (the table is not installed).
pub fn learned(policy: &PolicyFile, nft: &Nft) -> Result<BTreeMap<String, Vec<IpAddr>>, NftError> {
    let mut out = BTreeMap::new();
    let bodies = policy
        .policies
        .iter()
        .map(|p| (PolicyKey::Named(p.name.clone()), &p.body))
        .chain([(PolicyKey::Default, &policy.default)]);
    for (key, body) in bodies {
        for idx in dns_rules(body) {
            for net in nft.list_set(&names::dns_set_stem(&key, idx))? {
                let addr = net.addr();
                let fam = if addr.is_ipv4() { 4 } else { 6 };
                out.entry(names::dns_set(&key, idx, fam))
                    .or_insert_with(Vec::new)
                    .push(addr);
            }
        }
    }
    Ok(out)
}

/// The indices of the egress rules that name DNS names.
fn dns_rules(body: &Body) -> impl Iterator<Item = usize> + '_ {
    body.egress.iter().enumerate().filter_map(|(i, r)| {
        r.peers
            .iter()
            .any(|p| matches!(p, Peer::Dns(_) | Peer::DnsWildcard(_)))
            .then_some(i)
    })
}

/// The host's own addresses with their interface names (in the calling
/// thread's network namespace: the host's).
///
/// # Errors
/// When the kernel does not list them.
pub fn host_addresses() -> nix::Result<Vec<(String, IpAddr)>> {
    Ok(nix::ifaddrs::getifaddrs()?
        .filter_map(|i| {
            let a = i.address?;
            let ip = a
                .as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))?;
            Some((i.interface_name, ip))
        })
        .collect())
}
