//! The one reader of `nft -j list …` output (a table, a set, or the list
//! of tables): the dataplane's reconciliation and in-place install, the
//! daemon's and the CLI's `cordon status`, and `cordon set` all read the
//! kernel through [`Listing`].
//!
//! Set elements are read in the key types of the set cordon declared
//! ([`ListedSet::elements`]): nft lists an address as a string, a prefix as
//! `{"prefix": …}`, an interval that is not a prefix as `{"range": [a, b]}`
//! (read as the prefixes that cover it), an element with a timeout or a
//! counter as `{"elem": {"val": …}}`, a concatenation as `{"concat": […]}`
//! and a verdict map's element as `[key, verdict]`.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use serde_json::Value as J;

use crate::nft::{smallvec, Element, Key, KeyType, Value, Verdict};

/// Packets and bytes of a counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Counter {
    fn read(c: &J) -> Counter {
        Counter {
            packets: c["packets"].as_u64().unwrap_or(0),
            bytes: c["bytes"].as_u64().unwrap_or(0),
        }
    }
}

/// A listed table.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedTable {
    /// `inet`, `bridge`, ...
    pub family: String,
    /// Its name.
    pub name: String,
}

/// A listed chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedChain {
    /// Its name.
    pub name: String,
    /// The chain object as listed (`type`, `hook`, `prio`, `policy` for a
    /// base chain).
    pub body: J,
}

/// A listed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRule {
    /// The chain it is in.
    pub chain: String,
    /// Its counter, when it has one.
    pub counter: Option<Counter>,
    /// The prefix of its `log` statement, when it has one.
    pub log_prefix: Option<String>,
}

/// A listed set or map.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedSet {
    /// Its name.
    pub name: String,
    /// True for a map (`"map"` in the listing), false for a set.
    pub is_map: bool,
    /// The object as listed (`type`, `flags`, `stmt`, `comment`, `elem`,
    /// ...).
    pub body: J,
}

/// An element nft listed that cordon cannot read in the set's key types.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The set.
    pub set: String,
    /// The element as listed.
    pub element: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "set {}: unreadable element {}", self.set, self.element)
    }
}

impl std::error::Error for Unreadable {}

/// A listed element with its own counter (the verdict maps count per
/// element).
#[derive(Debug, Clone, PartialEq)]
pub struct CountedElement {
    /// The element.
    pub element: Element,
    /// Its counter, when listed.
    pub counter: Option<Counter>,
}

impl ListedSet {
    /// True when the set counts the packets of each element.
    pub fn counted(&self) -> bool {
        self.body["stmt"]
            .as_array()
            .is_some_and(|st| st.iter().any(|x| x.get("counter").is_some()))
    }

    fn listed(&self) -> impl Iterator<Item = &J> {
        self.body["elem"].as_array().into_iter().flatten()
    }

    /// The elements, read in the key types `key` (a range becomes the
    /// prefixes that cover it).
    pub fn elements(&self, key: &[KeyType]) -> Result<Vec<Element>, Unreadable> {
        Ok(self
            .counted_elements(key)?
            .into_iter()
            .map(|c| c.element)
            .collect())
    }

    /// [`ListedSet::elements`] with each element's counter.
    pub fn counted_elements(&self, key: &[KeyType]) -> Result<Vec<CountedElement>, Unreadable> {
        let mut out = Vec::new();
        for e in self.listed() {
            let counter = counter_of(e).map(Counter::read);
            let read = parse_element(e, key).ok_or_else(|| Unreadable {
                set: self.name.clone(),
                element: e.to_string(),
            })?;
            out.extend(
                read.into_iter()
                    .map(|element| CountedElement { element, counter }),
            );
        }
        Ok(out)
    }

    /// The elements of an address set, whatever its family.
    pub fn addresses(&self) -> Result<Vec<IpNet>, Unreadable> {
        let mut out = Vec::new();
        for e in self.listed() {
            let nets = parse_nets(unwrap_elem(e)).ok_or_else(|| Unreadable {
                set: self.name.clone(),
                element: e.to_string(),
            })?;
            out.extend(nets);
        }
        Ok(out)
    }
}

/// What one `nft -j list …` printed, by kind of object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Tables.
    pub tables: Vec<ListedTable>,
    /// Chains.
    pub chains: Vec<ListedChain>,
    /// Rules, in listing order.
    pub rules: Vec<ListedRule>,
    /// Sets and maps.
    pub sets: Vec<ListedSet>,
    /// Any other named object (counters, quotas, flowtables, ...): (kind
    /// as `nft -j` names it, name).
    pub others: Vec<(String, String)>,
}

impl Listing {
    /// Reads `nft -j list …` output (objects it does not know by kind are
    /// kept in [`Listing::others`]; `metainfo` and elements are skipped).
    pub fn parse(doc: &J) -> Listing {
        let mut out = Listing::default();
        for obj in doc["nftables"].as_array().into_iter().flatten() {
            let Some((kind, body)) = obj.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            let name = || body["name"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "metainfo" | "element" => {}
                "table" => out.tables.push(ListedTable {
                    family: body["family"].as_str().unwrap_or_default().to_string(),
                    name: name(),
                }),
                "chain" => out.chains.push(ListedChain {
                    name: name(),
                    body: body.clone(),
                }),
                "rule" => {
                    let expr = body["expr"].as_array().map_or(&[][..], Vec::as_slice);
                    out.rules.push(ListedRule {
                        chain: body["chain"].as_str().unwrap_or_default().to_string(),
                        counter: expr
                            .iter()
                            .find_map(|e| e.get("counter"))
                            .map(Counter::read),
                        log_prefix: expr
                            .iter()
                            .find_map(|e| e["log"]["prefix"].as_str())
                            .map(str::to_string),
                    });
                }
                "set" | "map" => out.sets.push(ListedSet {
                    name: name(),
                    is_map: kind == "map",
                    body: body.clone(),
                }),
                other => out.others.push((other.to_string(), name())),
            }
        }
        out
    }

    /// The set or map of this name.
    pub fn set(&self, name: &str) -> Option<&ListedSet> {
        self.sets.iter().find(|s| s.name == name)
    }
}

/// The counter of a listed element, if it has one.
fn counter_of(e: &J) -> Option<&J> {
    let key = e.as_array().and_then(|p| p.first()).unwrap_or(e);
    key.get("elem").and_then(|i| i.get("counter"))
}

/// `{"elem": {"val": X, …}}` → X.
fn unwrap_elem(e: &J) -> &J {
    e.get("elem").map_or(e, |inner| &inner["val"])
}

/// One listed element: a key (maybe a concatenation, maybe wrapped in
/// `{"elem": {"val": …}}`), and for verdict maps `[key, verdict]`. Ranges
/// expand to several elements.
fn parse_element(e: &J, key: &[KeyType]) -> Option<Vec<Element>> {
    if let Some(pair) = e.as_array() {
        let [k, v] = pair.as_slice() else { return None };
        let verdict = parse_verdict(v)?;
        return Some(
            parse_key(k, key)?
                .into_iter()
                .map(|key| Element {
                    key,
                    verdict: Some(verdict.clone()),
                })
                .collect(),
        );
    }
    Some(
        parse_key(e, key)?
            .into_iter()
            .map(|key| Element { key, verdict: None })
            .collect(),
    )
}

fn parse_verdict(v: &J) -> Option<Verdict> {
    if let Some(j) = v.get("jump") {
        return Some(Verdict::Jump(j["target"].as_str()?.into()));
    }
    if let Some(j) = v.get("goto") {
        return Some(Verdict::Goto(j["target"].as_str()?.into()));
    }
    if v.get("accept").is_some() {
        return Some(Verdict::Accept);
    }
    if v.get("drop").is_some() {
        return Some(Verdict::Drop);
    }
    if v.get("return").is_some() {
        return Some(Verdict::Return);
    }
    None
}

fn parse_key(k: &J, key: &[KeyType]) -> Option<Vec<Key>> {
    let k = unwrap_elem(k);
    if let Some(parts) = k.get("concat").and_then(J::as_array) {
        if parts.len() != key.len() {
            return None;
        }
        let mut out = Key::new();
        for (p, t) in parts.iter().zip(key) {
            let vals = parse_value(p, *t)?;
            let [v] = vals.as_slice() else { return None };
            out.push(v.clone());
        }
        return Some(vec![out]);
    }
    let [t] = key else { return None };
    Some(
        parse_value(k, *t)?
            .into_iter()
            .map(|v| smallvec![v])
            .collect(),
    )
}

fn parse_value(v: &J, t: KeyType) -> Option<Vec<Value>> {
    match t {
        KeyType::Ifname => Some(vec![Value::Ifname(v.as_str()?.into())]),
        KeyType::Ether => Some(vec![Value::Mac(v.as_str()?.to_ascii_lowercase().into())]),
        KeyType::Ipv4 | KeyType::Ipv6 => Some(parse_nets(v)?.into_iter().map(Value::Net).collect()),
        KeyType::Mark => Some(vec![Value::Mark(u32::try_from(v.as_u64()?).ok()?)]),
    }
}

fn parse_nets(v: &J) -> Option<Vec<IpNet>> {
    if let Some(s) = v.as_str() {
        return Some(vec![IpNet::from(s.parse::<IpAddr>().ok()?)]);
    }
    if let Some(p) = v.get("prefix") {
        let addr: IpAddr = p["addr"].as_str()?.parse().ok()?;
        return Some(vec![IpNet::new(
            addr,
            u8::try_from(p["len"].as_u64()?).ok()?,
        )
        .ok()?]);
    }
    if let Some(r) = v.get("range").and_then(J::as_array) {
        let [a, b] = r.as_slice() else { return None };
        let a: IpAddr = a.as_str()?.parse().ok()?;
        let b: IpAddr = b.as_str()?.parse().ok()?;
        return match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                Some(Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect())
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                Some(Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect())
            }
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use smallvec::smallvec;

    fn set_of(elem: J) -> ListedSet {
        ListedSet {
            name: "s".into(),
            is_map: false,
            body: json!({ "elem": [elem] }),
        }
    }

    #[test]
    fn reads_plain_concat_map_and_range_elements() {
        let v4 = |s: &str| Value::Net(s.parse().unwrap());
        assert_eq!(
            parse_element(&json!("10.0.0.1"), &[KeyType::Ipv4]).unwrap(),
            vec![Element {
                key: smallvec![v4("10.0.0.1/32")],
                verdict: None
            }]
        );
        let c = parse_element(
            &json!({"concat": ["veth1", "02:42:AC:11:00:02", "172.17.0.2"]}),
            &[KeyType::Ifname, KeyType::Ether, KeyType::Ipv4],
        )
        .unwrap();
        assert_eq!(
            c[0].key.to_vec(),
            vec![
                Value::Ifname("veth1".into()),
                Value::Mac("02:42:ac:11:00:02".into()),
                v4("172.17.0.2/32")
            ]
        );
        let m = parse_element(
            &json!(["2001:db8::2", {"jump": {"target": "eg_fwd_web"}}]),
            &[KeyType::Ipv6],
        )
        .unwrap();
        assert_eq!(m[0].verdict, Some(Verdict::Jump("eg_fwd_web".into())));
        let g = parse_element(
            &json!(["172.17.0.2", {"goto": {"target": "eg_fwd_web"}}]),
            &[KeyType::Ipv4],
        )
        .unwrap();
        assert_eq!(g[0].verdict, Some(Verdict::Goto("eg_fwd_web".into())));
        let ret = parse_element(&json!(["172.17.0.2", {"return": null}]), &[KeyType::Ipv4]);
        assert_eq!(ret.unwrap()[0].verdict, Some(Verdict::Return));
        let r = parse_element(
            &json!({"range": ["10.0.0.0", "10.0.2.255"]}),
            &[KeyType::Ipv4],
        )
        .unwrap();
        assert_eq!(
            r.iter().map(|e| e.key[0].clone()).collect::<Vec<_>>(),
            vec![v4("10.0.0.0/23"), v4("10.0.2.0/24")]
        );
        let t = parse_element(
            &json!({"elem": {"val": "10.0.0.9", "timeout": 30}}),
            &[KeyType::Ipv4],
        )
        .unwrap();
        assert_eq!(t[0].key.to_vec(), vec![v4("10.0.0.9/32")]);
        let nd = parse_element(
            &json!({"concat": ["veth1", 4660]}),
            &[KeyType::Ifname, KeyType::Mark],
        )
        .unwrap();
        assert_eq!(
            nd[0].key.to_vec(),
            vec![Value::Ifname("veth1".into()), Value::Mark(4660)]
        );
        assert!(parse_element(&json!({"weird": 1}), &[KeyType::Ipv4]).is_none());
        assert!(parse_element(
            &json!({"concat": ["a"]}),
            &[KeyType::Ifname, KeyType::Ether]
        )
        .is_none());
    }

    #[test]
    fn reads_the_addresses_of_a_set() {
        let read = |e: J| set_of(e).addresses();
        assert_eq!(
            read(json!("10.0.0.1")).unwrap(),
            vec!["10.0.0.1/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(
            read(json!({"prefix": {"addr": "2001:db8::", "len": 32}})).unwrap(),
            vec!["2001:db8::/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(
            read(json!({"elem": {"val": "10.0.0.2", "timeout": 5}})).unwrap(),
            vec!["10.0.0.2/32".parse::<IpNet>().unwrap()]
        );
        let e = read(json!({"weird": 1})).unwrap_err();
        assert_eq!(e.to_string(), r#"set s: unreadable element {"weird":1}"#);
    }

    #[test]
    fn reads_every_kind_of_object() {
        let doc = json!({"nftables": [
            {"metainfo": {"version": "1.1"}},
            {"table": {"family": "inet", "name": "cordon"}},
            {"chain": {"name": "forward", "type": "filter", "hook": "forward", "prio": -10, "policy": "accept"}},
            {"chain": {"name": "eg_fwd_web"}},
            {"rule": {"chain": "eg_fwd_web", "expr": [{"counter": {"packets": 2, "bytes": 120}}, {"log": {"prefix": "cordon egress web drop ", "group": 100}}, {"drop": null}]}},
            {"rule": {"chain": "eg_fwd_web", "expr": [{"accept": null}]}},
            {"map": {"name": "egress4", "type": "ipv4_addr", "map": "verdict", "stmt": [{"counter": null}], "elem": [
                [{"elem": {"val": "172.17.0.2", "counter": {"packets": 9, "bytes": 540}}}, {"goto": {"target": "eg_fwd_web"}}]
            ]}},
            {"set": {"name": "pol_web4", "type": "ipv4_addr"}},
            {"counter": {"name": "stray", "packets": 0}}
        ]});
        let l = Listing::parse(&doc);
        assert_eq!(
            l.tables,
            vec![ListedTable {
                family: "inet".into(),
                name: "cordon".into()
            }]
        );
        assert_eq!(l.chains.len(), 2);
        assert_eq!(l.chains[0].body["hook"], "forward");
        assert_eq!(
            l.rules[0],
            ListedRule {
                chain: "eg_fwd_web".into(),
                counter: Some(Counter {
                    packets: 2,
                    bytes: 120
                }),
                log_prefix: Some("cordon egress web drop ".into()),
            }
        );
        assert_eq!((l.rules[1].counter, &l.rules[1].log_prefix), (None, &None));
        let map = l.set("egress4").unwrap();
        assert!(map.is_map && map.counted());
        let counted = map.counted_elements(&[KeyType::Ipv4]).unwrap();
        assert_eq!(
            counted[0].counter,
            Some(Counter {
                packets: 9,
                bytes: 540
            })
        );
        assert_eq!(
            counted[0].element.verdict,
            Some(Verdict::Goto("eg_fwd_web".into()))
        );
        assert!(!l.set("pol_web4").unwrap().counted());
        assert!(l
            .set("pol_web4")
            .unwrap()
            .elements(&[KeyType::Ipv4])
            .unwrap()
            .is_empty());
        assert_eq!(l.others, vec![("counter".to_string(), "stray".to_string())]);
    }
}
