//! Ending the connections the policy in force does not allow.
//!
//! cordon's base chains let `ct state established,related` through before
//! any policy. While cordon's tables were gone (deleted or flushed by hand,
//! a host that ran without them), a container could open connections its
//! policy forbids; once the tables are back, those would go on as
//! established. So whenever the engine repairs the kernel, every tracked
//! connection is judged as its first packet would be judged now (the
//! evaluator of `cordon verify`, with the DNS answers the kernel holds and
//! the host's own addresses), and the entries the policy does not allow are
//! deleted. The next packet of such a connection meets the policy as a new
//! connection and is dropped.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_compiler::evaluate::{Connection, Evaluator, Facts, Proto};
use cordon_compiler::SetOverrides;
use cordon_dataplane::conntrack::{self, Tracked};
use cordon_dataplane::Nft;
use cordon_inventory::Inventory;
use cordon_policy::PolicyFile;
use cordon_ruleset::{DNS_PROXY_PORT, L7_PROXY_PORT};

/// The connection a conntrack entry stands for, as the policy judges it:
/// opened by the original source, towards the real destination (the reply
/// direction's source, after Docker's DNAT), except for DNS that cordon's
/// own redirect sent to its proxy, and TCP it sent to its L7 proxy, which
/// the policy judges by the address and port the container asked for.
pub fn connection_of(t: &Tracked) -> Connection {
    let proto = match t.proto {
        6 => Some(Proto::Tcp),
        17 => Some(Proto::Udp),
        1 | 58 => Some(Proto::Icmp),
        _ => None,
    };
    let to_proxy = matches!(proto, Some(Proto::Tcp | Proto::Udp))
        && t.orig.dport == 53
        && t.reply.sport == DNS_PROXY_PORT
        && t.reply.src != t.orig.dst;
    let to_l7 = proto == Some(Proto::Tcp)
        && t.reply.sport == L7_PROXY_PORT
        && t.orig.dport != L7_PROXY_PORT
        && t.reply.src != t.orig.dst;
    let (dst, port) = if to_proxy || to_l7 {
        (t.orig.dst, t.orig.dport)
    } else {
        (t.reply.src, t.reply.sport)
    };
    Connection {
        src: t.orig.src,
        dst,
        proto,
        port,
    }
}

/// Deletes the conntrack entries (of the calling thread's network
/// namespace) that `policy` does not allow for `inventory`, reading the
/// DNS answers cordon's tables hold from `nft` and the host's addresses
/// from the kernel. Returns how many were deleted.
///
/// # Errors
/// When the tables, the host's addresses or the conntrack table cannot be
/// read.
pub fn end_disallowed(
    policy: &PolicyFile,
    inventory: &Inventory,
    overrides: &SetOverrides,
    nft: &Nft,
) -> Result<usize, String> {
    end_disallowed_assigned(policy, inventory, overrides, None, nft)
}

/// [`end_disallowed`] with the assignments of the current compile of
/// `policy`, `inventory` and `overrides` (the engine's), so the evaluator
/// does not compile them again
/// ([`Evaluator::with_assignments`]).
///
/// # Errors
/// As [`end_disallowed`].
pub fn end_disallowed_assigned(
    policy: &PolicyFile,
    inventory: &Inventory,
    overrides: &SetOverrides,
    assigned: Option<&[cordon_compiler::Assignment]>,
    nft: &Nft,
) -> Result<usize, String> {
    let learned: BTreeMap<String, Vec<IpAddr>> =
        cordon_verify::facts::learned(policy, nft).map_err(|e| e.to_string())?;
    let host: Vec<IpAddr> = cordon_verify::facts::host_addresses()
        .map_err(|e| format!("cannot list the host's addresses: {e}"))?
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let facts = Facts {
        policy,
        inventory,
        overrides,
        learned: &learned,
        host: &host,
    };
    let ev = match assigned {
        Some(a) => Evaluator::with_assignments(facts, a),
        None => Evaluator::new(facts),
    };
    conntrack::forget_where(|t| ev.connection(&connection_of(t)).is_some_and(|e| !e.allowed))
        .map_err(|e| format!("cannot end the connections the policy does not allow: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_dataplane::conntrack::Tuple;

    fn tuple(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
        Tuple {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport,
            dport,
        }
    }

    #[test]
    fn a_dnatted_connection_is_judged_by_its_real_destination() {
        // 198.51.100.7 -> host:8080, DNATed to the container's port 80.
        let t = Tracked {
            proto: 6,
            orig: tuple("198.51.100.7", 40000, "198.51.100.1", 8080),
            reply: tuple("172.17.0.2", 80, "198.51.100.7", 40000),
        };
        let c = connection_of(&t);
        assert_eq!(c.src, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(c.dst, "172.17.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((c.proto, c.port), (Some(Proto::Tcp), 80));
    }

    #[test]
    fn a_masqueraded_connection_keeps_its_destination() {
        let t = Tracked {
            proto: 17,
            orig: tuple("172.17.0.2", 5000, "198.51.100.2", 7),
            reply: tuple("198.51.100.2", 7, "198.51.100.1", 5000),
        };
        let c = connection_of(&t);
        assert_eq!(c.dst, "198.51.100.2".parse::<IpAddr>().unwrap());
        assert_eq!((c.proto, c.port), (Some(Proto::Udp), 7));
    }

    #[test]
    fn dns_redirected_to_the_proxy_is_judged_as_asked() {
        let t = Tracked {
            proto: 17,
            orig: tuple("172.17.0.2", 5000, "198.51.100.53", 53),
            reply: tuple("172.17.0.1", DNS_PROXY_PORT, "172.17.0.2", 5000),
        };
        let c = connection_of(&t);
        assert_eq!(c.dst, "198.51.100.53".parse::<IpAddr>().unwrap());
        assert_eq!(c.port, 53);
        // Not a redirect: a server really on the proxy's port.
        let t = Tracked {
            proto: 17,
            orig: tuple("172.17.0.2", 5000, "172.17.0.1", DNS_PROXY_PORT),
            reply: tuple("172.17.0.1", DNS_PROXY_PORT, "172.17.0.2", 5000),
        };
        assert_eq!(connection_of(&t).port, DNS_PROXY_PORT);
    }

    #[test]
    fn tcp_redirected_to_the_l7_proxy_is_judged_as_asked() {
        let t = Tracked {
            proto: 6,
            orig: tuple("172.17.0.2", 5000, "198.51.100.9", 443),
            reply: tuple("172.17.0.1", L7_PROXY_PORT, "172.17.0.2", 5000),
        };
        let c = connection_of(&t);
        assert_eq!(c.dst, "198.51.100.9".parse::<IpAddr>().unwrap());
        assert_eq!(c.port, 443);
        // A direct connection to the proxy's port is judged as it is.
        let t = Tracked {
            proto: 6,
            orig: tuple("172.17.0.2", 5000, "172.17.0.1", L7_PROXY_PORT),
            reply: tuple("172.17.0.1", L7_PROXY_PORT, "172.17.0.2", 5000),
        };
        assert_eq!(connection_of(&t).port, L7_PROXY_PORT);
    }

    #[test]
    fn other_protocols_are_not_modelled() {
        let t = Tracked {
            proto: 47,
            orig: tuple("172.17.0.2", 0, "198.51.100.2", 0),
            reply: tuple("198.51.100.2", 0, "198.51.100.1", 0),
        };
        assert_eq!(connection_of(&t).proto, None);
        let icmp6 = Tracked { proto: 58, ..t };
        assert_eq!(connection_of(&icmp6).proto, Some(Proto::Icmp));
    }
}
