//! The set and map elements the containers add: their ports, MACs and
//! addresses, gathered once and handed to the tables that hold them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use cordon_ruleset::names::{bridge as B, Dispatch};
use cordon_ruleset::nft::smallvec;
use cordon_ruleset::nft::*;
use cordon_ruleset::PolicyKey;

/// Set and map elements gathered from the containers.
#[derive(Default)]
pub(super) struct Elements {
    pub(super) ports: BTreeSet<Name>,
    /// Each bound port, in container order: the bridge table's per-port
    /// sets are laid out from these one set at a time ([`Elements::port_mac`],
    /// [`Elements::bind`], [`Elements::nd`]), so each set's elements sit
    /// together in memory, which every later walk of them (the install's
    /// checks, its JSON and its netlink encoding) reads much faster than
    /// elements interleaved with a dozen other sets'.
    bound: Vec<Bound>,
    pub(super) known_mac: BTreeSet<Name>,
    pub(super) known: [Vec<IpNet>; 2],
    pub(super) maps: BTreeMap<String, Vec<Element>>,
    pub(super) members: BTreeMap<String, [Vec<IpNet>; 2]>,
    pub(super) dns_clients: [Vec<IpNet>; 2],
    /// Containers whose policy has server-name rules: `l7_clients4/6`.
    pub(super) l7_clients: [Vec<IpNet>; 2],
    /// Their `l7_nat4/6` elements: address → the policy's nat chain.
    pub(super) l7_nat: [Vec<Element>; 2],
}

/// One container port as [`Elements::bind_port`] saw it.
struct Bound {
    port: Name,
    /// Its MAC, lower case.
    mac: Option<Name>,
    /// The MAC's octets, when it parses.
    octets: Option<[u8; 6]>,
    addrs: Vec<IpAddr>,
}

fn fam_idx(a: &IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 0,
        IpAddr::V6(_) => 1,
    }
}

impl Elements {
    pub(super) fn bind_port(&mut self, port: &str, mac: Option<&str>, addrs: &[IpAddr]) {
        let port = Name::from(port);
        self.ports.insert(port.clone());
        let mac = mac.map(|m| Name::from(m.to_ascii_lowercase()));
        if let Some(mac) = &mac {
            self.known_mac.insert(mac.clone());
        }
        for a in addrs {
            self.known[fam_idx(a)].push(IpNet::from(*a));
        }
        self.bound.push(Bound {
            port,
            octets: mac.as_deref().and_then(mac_octets),
            mac,
            addrs: addrs.to_vec(),
        });
    }

    /// `port . MAC` of each port with a MAC.
    pub(super) fn port_mac(&self) -> Vec<Element> {
        self.bound
            .iter()
            .filter_map(|b| {
                let mac = b.mac.as_ref()?;
                Some(Element {
                    key: smallvec![Value::Ifname(b.port.clone()), Value::Mac(mac.clone())],
                    verdict: None,
                })
            })
            .collect()
    }

    /// `port . MAC . address` of family index `fam` (0: IPv4, 1: IPv6):
    /// each port's addresses, and in IPv6 first its link-local address.
    /// Without a MAC there is no binding: the port's frames drop.
    pub(super) fn bind(&self, fam: usize) -> Vec<Element> {
        let el = |b: &Bound, mac: &Name, a: IpAddr| Element {
            key: smallvec![
                Value::Ifname(b.port.clone()),
                Value::Mac(mac.clone()),
                Value::Net(IpNet::from(a)),
            ],
            verdict: None,
        };
        let mut out = Vec::new();
        for b in &self.bound {
            let Some(mac) = &b.mac else { continue };
            if let (1, Some(octets)) = (fam, b.octets) {
                out.push(el(b, mac, IpAddr::V6(link_local(octets))));
            }
            for a in b.addrs.iter().filter(|a| fam_idx(a) == fam) {
                out.push(el(b, mac, *a));
            }
        }
        out
    }

    /// Each port's link-local address (EUI-64 of its MAC), bound like its
    /// other addresses in the bridge table only.
    pub(super) fn link_local(&self) -> Vec<IpNet> {
        self.bound
            .iter()
            .filter_map(|b| Some(IpNet::from(IpAddr::V6(link_local(b.octets?)))))
            .collect()
    }

    /// The words of each port's own addresses and MAC in neighbour
    /// discovery set `set` (one of the bridge table's `ND_SETS`): `port .
    /// WORD`, the word as `meta mark` holds it after `meta mark set
    /// @th,…,32` (the packet's bytes, host byte order).
    pub(super) fn nd(&self, set: &str) -> Vec<Element> {
        let word = |port: &Name, bytes: &[u8]| Element {
            key: smallvec![
                Value::Ifname(port.clone()),
                Value::Mark(u32::from_ne_bytes(bytes.try_into().expect("four bytes"))),
            ],
            verdict: None,
        };
        let global = B::ND_GLOBAL.iter().position(|g| *g == set);
        let mut out = Vec::new();
        for b in &self.bound {
            if let Some(i) = global {
                if b.mac.is_none() {
                    continue;
                }
                for a in &b.addrs {
                    if let IpAddr::V6(v6) = a {
                        out.push(word(&b.port, &v6.octets()[4 * i..4 * i + 4]));
                    }
                }
                continue;
            }
            let Some(octets) = b.octets else { continue };
            let ll = link_local(octets).octets();
            let bytes = match set {
                s if s == B::ND_LL3 => &ll[8..12],
                s if s == B::ND_LL4 => &ll[12..16],
                s if s == B::ND_MAC1 => &octets[0..4],
                s if s == B::ND_MAC2 => &octets[2..6],
                _ => continue,
            };
            out.push(word(&b.port, bytes));
        }
        out
    }

    /// Address `a` of a container of policy `key` (whose policy restricts
    /// ingress when `ingress`): one element in each direction's map.
    pub(super) fn classify(&mut self, a: IpAddr, key: &PolicyKey, ingress: bool) {
        let fam = if a.is_ipv4() { 4 } else { 6 };
        for dispatch in Dispatch::ALL {
            let chain = dispatch.entry().policy_chain(key);
            let verdict = match dispatch {
                // The forwarded egress chain is entered by goto: its
                // `return` (an allow) goes back to the `forward` base chain.
                Dispatch::Egress => Verdict::Goto(chain.into()),
                Dispatch::Ingress if ingress => Verdict::Jump(chain.into()),
                // No ingress rules: nothing restricts it, but the element
                // is there all the same (a miss means "not a known
                // container", and it counts the container's packets).
                Dispatch::Ingress => Verdict::Accept,
            };
            self.maps
                .entry(dispatch.map(fam))
                .or_default()
                .push(Element {
                    key: smallvec![Value::Net(IpNet::from(a))],
                    verdict: Some(verdict),
                });
        }
    }

    pub(super) fn dns_client(&mut self, a: IpAddr) {
        self.dns_clients[fam_idx(&a)].push(IpNet::from(a));
    }

    /// A container whose policy (`key`) has server-name rules.
    pub(super) fn l7_client(&mut self, a: IpAddr, key: &PolicyKey) {
        let i = fam_idx(&a);
        self.l7_clients[i].push(IpNet::from(a));
        self.l7_nat[i].push(Element {
            key: smallvec![Value::Net(IpNet::from(a))],
            verdict: Some(Verdict::Jump(cordon_ruleset::names::l7_chain(key).into())),
        });
    }

    pub(super) fn member(&mut self, policy: &str, a: IpAddr) {
        self.members.entry(policy.to_string()).or_default()[fam_idx(&a)].push(IpNet::from(a));
    }

    pub(super) fn members(&self, policy: &str, fam: u8) -> Vec<Element> {
        let idx = if fam == 4 { 0 } else { 1 };
        self.members
            .get(policy)
            .map(|m| net_elements(&m[idx]))
            .unwrap_or_default()
    }

    /// The elements of verdict map `map`, copied: the copy sits together
    /// in memory (the gathered ones are interleaved with the other maps'),
    /// which the install's walks of them read faster than it costs.
    pub(super) fn map_elements(&self, map: &str) -> Vec<Element> {
        self.maps.get(map).cloned().unwrap_or_default()
    }
}

/// The six octets of `aa:bb:cc:dd:ee:ff`.
fn mac_octets(mac: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

/// The link-local address the kernel gives an interface with this MAC
/// (`addr_gen_mode` 0, the default in a container's namespace): fe80::/64
/// and the modified EUI-64 interface identifier.
pub(super) fn link_local(mac: [u8; 6]) -> std::net::Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..16].copy_from_slice(&[
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]);
    std::net::Ipv6Addr::from(o)
}

pub(super) fn net_elements(nets: &[IpNet]) -> Vec<Element> {
    nets.iter()
        .map(|n| Element {
            key: smallvec![Value::Net(*n)],
            verdict: None,
        })
        .collect()
}
