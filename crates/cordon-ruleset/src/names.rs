//! Every chain, set and map name the compiler writes into cordon's tables,
//! built here and read back here, so the compiler and the readers (the
//! dataplane, the DNS proxy, `cordon status`, `cordon set`) cannot drift
//! apart.
//!
//! Address sets come in pairs, one per family: `NAME4` and `NAME6`. A
//! family is written `4` or `6` ([`Fam`]).

use crate::key::PolicyKey;
use crate::prefix::Direction;

/// An address family as the names write it: `4` or `6`.
pub type Fam = u8;

/// Both families, in the order the compiler declares them.
pub const FAMILIES: [Fam; 2] = [4, 6];

/// One of the pair of sets `STEM4` and `STEM6`.
pub fn pair(stem: &str, fam: Fam) -> String {
    format!("{stem}{fam}")
}

/// The base chain of the forward hook: a forwarded packet's egress (by
/// its source) and then its ingress (by its destination), in one chain.
pub const FORWARD: &str = "forward";

/// The four paths a policy judges, each with, per policy key, one policy
/// chain. The two paths of one [`Dispatch`] direction share its dispatch
/// chain and verdict maps: the map's element enters the forwarded path's
/// chain ([`Dispatch::entry`]), whose first rule sends the packets of the
/// host's own hook (input for egress, output for ingress) on to the local
/// path's chain ([`Dispatch::local`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// A container's connections to forwarded destinations.
    EgressFwd,
    /// A container's connections to the host.
    EgressHost,
    /// Forwarded connections to a container.
    IngressFwd,
    /// The host's own connections to a container.
    IngressLocal,
}

impl Path {
    /// The four, in the order the compiler writes them.
    pub const ALL: [Path; 4] = [
        Path::EgressFwd,
        Path::EgressHost,
        Path::IngressFwd,
        Path::IngressLocal,
    ];

    /// The base chain that judges this path: [`FORWARD`] for both forwarded
    /// paths (one hook invocation per forwarded packet: egress, then
    /// ingress), `egress_host` (input) and `ingress_local` (output).
    pub fn base_chain(self) -> &'static str {
        match self {
            Path::EgressFwd | Path::IngressFwd => FORWARD,
            Path::EgressHost => "egress_host",
            Path::IngressLocal => "ingress_local",
        }
    }

    /// The direction whose dispatch chain and verdict maps lead to this
    /// path's policy chains.
    pub fn dispatch(self) -> Dispatch {
        if self.is_egress() {
            Dispatch::Egress
        } else {
            Dispatch::Ingress
        }
    }

    /// The stem of the policy chains of this path (`eg_fwd`, `eg_host`,
    /// `in_fwd`, `in_local`).
    pub fn policy_stem(self) -> &'static str {
        match self {
            Path::EgressFwd => "eg_fwd",
            Path::EgressHost => "eg_host",
            Path::IngressFwd => "in_fwd",
            Path::IngressLocal => "in_local",
        }
    }

    /// The policy chain of `key` on this path (`eg_fwd_web`,
    /// `in_local__default`, ...).
    pub fn policy_chain(self, key: &PolicyKey) -> String {
        format!("{}_{}", self.policy_stem(), key.chain_part())
    }

    /// Reads [`Path::policy_chain`] back.
    pub fn from_policy_chain(name: &str) -> Option<(Path, PolicyKey)> {
        Path::ALL.into_iter().find_map(|p| {
            let part = name.strip_prefix(p.policy_stem())?.strip_prefix('_')?;
            (!part.is_empty()).then(|| (p, PolicyKey::from_chain_part(part)))
        })
    }

    /// The direction the log prefixes of this path's policy chains name.
    pub fn direction(self) -> Direction {
        match self {
            Path::EgressFwd => Direction::Egress,
            Path::EgressHost => Direction::EgressHost,
            Path::IngressFwd => Direction::Ingress,
            Path::IngressLocal => Direction::IngressHost,
        }
    }

    /// True for the paths of a container's own connections.
    pub fn is_egress(self) -> bool {
        matches!(self, Path::EgressFwd | Path::EgressHost)
    }

    /// True for the paths between a container and the host.
    pub fn is_local(self) -> bool {
        matches!(self, Path::EgressHost | Path::IngressLocal)
    }
}

/// The two directions the verdict maps dispatch: a container's own packets
/// (by source address) and the packets to it (by destination). Each has one
/// dispatch chain (the map lookups, then the fail-closed drop), jumped to
/// from the base chains of both its hooks, and one pair of counted verdict
/// maps, one element per container address: the per-container counters of
/// `cordon status`. Every known container has an element in both (an
/// ingress element is `accept` when its policy has no ingress rules), so a
/// miss means "not a known container".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dispatch {
    /// By source address: `egress4`, `egress6`, in the forward and input
    /// hooks.
    Egress,
    /// By destination address: `ingress4`, `ingress6`, in the forward and
    /// output hooks.
    Ingress,
}

impl Dispatch {
    /// Both, in the order the compiler writes them.
    pub const ALL: [Dispatch; 2] = [Dispatch::Egress, Dispatch::Ingress];

    /// The name the chain and maps are built from: `egress`, `ingress`.
    fn stem(self) -> &'static str {
        match self {
            Dispatch::Egress => "egress",
            Dispatch::Ingress => "ingress",
        }
    }

    /// The verdict map of family `fam` (`egress4`, `ingress6`).
    pub fn map(self, fam: Fam) -> String {
        pair(self.stem(), fam)
    }

    /// Reads [`Dispatch::map`] back.
    pub fn from_map(name: &str) -> Option<(Dispatch, Fam)> {
        Dispatch::ALL.into_iter().find_map(|d| {
            let fam = name.strip_prefix(d.stem())?;
            FAMILIES
                .into_iter()
                .find(|f| fam == f.to_string())
                .map(|f| (d, f))
        })
    }

    /// The chain of the verdict-map lookups and the fail-closed drop
    /// (`egress_dispatch`, `ingress_dispatch`).
    pub fn chain(self) -> String {
        format!("{}_dispatch", self.stem())
    }

    /// The path whose policy chain a map element enters: the forwarded
    /// one (`eg_fwd_<policy>`, `in_fwd_<policy>`).
    pub fn entry(self) -> Path {
        match self {
            Dispatch::Egress => Path::EgressFwd,
            Dispatch::Ingress => Path::IngressFwd,
        }
    }

    /// The path the entry chain's first rule hands the host's own hook
    /// to: `eg_host_<policy>` (input hook: `meta oif 0`, the packet has no
    /// output interface), `in_local_<policy>` (output hook: `meta iif 0`).
    pub fn local(self) -> Path {
        match self {
            Dispatch::Egress => Path::EgressHost,
            Dispatch::Ingress => Path::IngressLocal,
        }
    }
}

/// The members of policy `name`, family `fam` (`pol_web4`).
pub fn policy_members(name: &str, fam: Fam) -> String {
    pair(&format!("pol_{name}"), fam)
}

/// The stem of a named set of the policy file: `set_NAME`, whose pair
/// [`named_set`] is; what `cordon set` and the daemon edit.
pub fn named_set_stem(name: &str) -> String {
    format!("set_{name}")
}

/// A named set of the policy file, family `fam` (`set_office4`).
pub fn named_set(name: &str, fam: Fam) -> String {
    pair(&named_set_stem(name), fam)
}

/// The timeout set the DNS proxy fills with the answers for egress rule
/// `idx` of `key`'s policy, family `fam` (`dns_web_0_4`).
pub fn dns_set(key: &PolicyKey, idx: usize, fam: Fam) -> String {
    pair(&dns_set_stem(key, idx), fam)
}

/// The stem of [`dns_set`]'s pair (`dns_web_0_`).
pub fn dns_set_stem(key: &PolicyKey, idx: usize) -> String {
    format!("dns_{}_{idx}_", key.chain_part())
}

/// The constant range sets of the words: `nonpublic`, `private`,
/// `metadata`, and the Docker networks' `subnets`; each a pair.
pub fn range_set(word: &str, fam: Fam) -> String {
    pair(word, fam)
}

/// The stem of the set of everything that is not `internet`.
pub const NONPUBLIC: &str = "nonpublic";
/// The stem of the set of the word `private`.
pub const PRIVATE: &str = "private";
/// The stem of the set of the word `metadata`.
pub const METADATA: &str = "metadata";
/// The stem of the set of the Docker bridge subnets.
pub const SUBNETS: &str = "subnets";

/// The addresses of known containers, family `fam` (`known4`), in the
/// bridge table (its `known6` also holds the ports' link-local addresses).
/// The inet table needs none: the ingress maps hold every known container.
pub fn known(fam: Fam) -> String {
    pair("known", fam)
}

/// The containers whose DNS goes to cordon's proxy (`dns_clients4`).
pub fn dns_clients(fam: Fam) -> String {
    pair("dns_clients", fam)
}

/// The containers whose policy has rules with `match: server-name`
/// (`l7_clients4`): their redirected connections may reach the L7 proxy.
pub fn l7_clients(fam: Fam) -> String {
    pair("l7_clients", fam)
}

/// The nat verdict map of family `fam` (`l7_nat4`): the address of a
/// container whose policy has rules with `match: server-name` → that
/// policy's [`l7_chain`].
pub fn l7_nat(fam: Fam) -> String {
    pair("l7_nat", fam)
}

/// The nat chain redirecting `key`'s server-name rules to the L7 proxy
/// (`l7_web`, `l7__default`).
pub fn l7_chain(key: &PolicyKey) -> String {
    format!("l7_{}", key.chain_part())
}

/// The Docker bridges cordon manages.
pub const BRIDGES: &str = "bridges";
/// The interface names Docker gives its bridges (`br-*`, `docker0`).
pub const DOCKER_BRIDGE_NAMES: &str = "docker_bridge_names";
/// User-defined bridges, for `same-network` (`iif . oif`).
pub const SAME_NET: &str = "same_net";
/// The IPv4 subnets cordon masquerades.
pub const MASQ4: &str = "masq4";
/// The nat chain that masquerades them.
pub const POSTROUTING: &str = "postrouting";
/// The nat chain that redirects DNS to the proxy.
pub const DNS_REDIRECT: &str = "dns_redirect";

/// The names of the `bridge cordon` table (the identity checks).
pub mod bridge {
    use super::{pair, Fam};

    /// Container ports cordon knows.
    pub const PORTS: &str = "ports";
    /// Each port's own MAC (`port . mac`).
    pub const PORT_MAC: &str = "port_mac";
    /// MACs of known containers.
    pub const KNOWN_MAC: &str = "known_mac";

    /// Each port's own MAC and address, family `fam` (`bind4`).
    pub fn bind(fam: Fam) -> String {
        pair("bind", fam)
    }

    /// Bytes 0-3, 4-7, 8-11 and 12-15 of each port's global IPv6 address.
    pub const ND_GLOBAL: [&str; 4] = ["nd_g1", "nd_g2", "nd_g3", "nd_g4"];
    /// Bytes 8-11 of each port's link-local address.
    pub const ND_LL3: &str = "nd_ll3";
    /// Bytes 12-15 of each port's link-local address.
    pub const ND_LL4: &str = "nd_ll4";
    /// Bytes 0-3 of each port's MAC.
    pub const ND_MAC1: &str = "nd_mac1";
    /// Bytes 2-5 of each port's MAC.
    pub const ND_MAC2: &str = "nd_mac2";

    /// The chain checking a neighbour solicitation's target.
    pub const ND_TARGET: &str = "nd_target";
    /// The chain checking a neighbour advertisement's claim.
    pub const ND_CLAIM: &str = "nd_claim";
    /// The chain for packets from a known port.
    pub const KNOWN_PORT: &str = "known_port";
    /// The base chain.
    pub const PREROUTING: &str = "prerouting";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_kernel_holds_them() {
        let web = PolicyKey::Named("web".into());
        assert_eq!(Path::EgressFwd.policy_chain(&web), "eg_fwd_web");
        assert_eq!(
            Path::IngressLocal.policy_chain(&PolicyKey::Default),
            "in_local__default"
        );
        assert_eq!(
            Path::EgressHost.policy_chain(&PolicyKey::Unknown("x".into())),
            "eg_host__unknown"
        );
        assert_eq!(Dispatch::Ingress.map(6), "ingress6");
        assert_eq!(Dispatch::Egress.map(4), "egress4");
        assert_eq!(Path::EgressHost.dispatch().chain(), "egress_dispatch");
        assert_eq!(Path::IngressLocal.dispatch().chain(), "ingress_dispatch");
        assert_eq!(Dispatch::Egress.entry(), Path::EgressFwd);
        assert_eq!(Dispatch::Ingress.local(), Path::IngressLocal);
        assert_eq!(Path::EgressHost.base_chain(), "egress_host");
        assert_eq!(Path::EgressFwd.base_chain(), "forward");
        assert_eq!(Path::IngressFwd.base_chain(), "forward");
        assert_eq!(Path::IngressLocal.base_chain(), "ingress_local");
        assert_eq!(policy_members("web", 4), "pol_web4");
        assert_eq!(named_set("office", 6), "set_office6");
        assert_eq!(dns_set(&PolicyKey::Default, 2, 4), "dns__default_2_4");
        assert_eq!(l7_chain(&web), "l7_web");
        assert_eq!(l7_nat(6), "l7_nat6");
        assert_eq!(known(6), "known6");
        assert_eq!(bridge::bind(4), "bind4");
        assert_eq!(bridge::ND_GLOBAL[2], "nd_g3");
    }

    #[test]
    fn policy_chains_and_maps_read_back() {
        for path in Path::ALL {
            for key in [
                PolicyKey::Named("web".into()),
                PolicyKey::Named("a_b-c".into()),
                PolicyKey::Default,
                PolicyKey::Unknown(String::new()),
            ] {
                assert_eq!(
                    Path::from_policy_chain(&path.policy_chain(&key)),
                    Some((path, key))
                );
            }
            assert_eq!(Path::from_policy_chain(path.base_chain()), None);
            assert_eq!(Path::from_policy_chain(&path.dispatch().chain()), None);
        }
        for d in Dispatch::ALL {
            for fam in FAMILIES {
                assert_eq!(Dispatch::from_map(&d.map(fam)), Some((d, fam)));
                assert_eq!(Path::from_policy_chain(&d.map(fam)), None);
            }
            assert_eq!(d.entry().dispatch(), d);
            assert_eq!(d.local().dispatch(), d);
            assert!(d.local().is_local() && !d.entry().is_local());
        }
        assert_eq!(Dispatch::from_map("egress"), None);
        assert_eq!(Dispatch::from_map("egress_dispatch"), None);
        assert_eq!(Dispatch::from_map("ingress_fwd4"), None);
        assert_eq!(Dispatch::from_map("known4"), None);
    }
}
