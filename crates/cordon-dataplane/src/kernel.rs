//! Reading cordon's tables back from the kernel, for reconciliation: which
//! chains exist with how many rules, and every set's elements, in the types
//! of the desired ruleset's sets.

use std::net::IpAddr;

use cordon_compiler::diff::{Observed, ObservedTable};
use cordon_compiler::nft::{Element, Family, KeyType, Ruleset, Value, Verdict};
use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use serde_json::Value as J;

use crate::nft::NftError;

/// Parses `nft -j list table FAMILY NAME` output into what
/// [`cordon_compiler::diff::against_kernel`] compares. Set elements are read
/// in the key types of `desired`'s set of the same name (a set the desired
/// ruleset does not have is recorded with no elements: its presence alone
/// makes the shapes differ). An interval listed as a range becomes the
/// prefixes that cover it.
pub fn parse_table(
    family: Family,
    listing: &J,
    desired: &Ruleset,
) -> Result<ObservedTable, NftError> {
    let want = desired.tables.iter().find(|t| t.family == family);
    let mut out = ObservedTable::default();
    for obj in listing["nftables"].as_array().into_iter().flatten() {
        if let Some(c) = obj.get("chain") {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            out.chains.entry(name).or_insert(0);
        } else if let Some(r) = obj.get("rule") {
            let name = r["chain"].as_str().unwrap_or_default().to_string();
            *out.chains.entry(name).or_insert(0) += 1;
        } else if let Some(s) = obj.get("set").or_else(|| obj.get("map")) {
            let name = s["name"].as_str().unwrap_or_default().to_string();
            let key = want
                .and_then(|t| t.sets.iter().find(|d| d.name == name))
                .map(|d| d.key.clone());
            let mut elems = Vec::new();
            if let Some(key) = key {
                for e in s["elem"].as_array().into_iter().flatten() {
                    elems.extend(parse_element(e, &key).ok_or_else(|| {
                        NftError::Output(format!("set {name}: unreadable element {e}"))
                    })?);
                }
            }
            let counted = s["stmt"]
                .as_array()
                .is_some_and(|st| st.iter().any(|x| x.get("counter").is_some()));
            if counted {
                out.counted.insert(name.clone());
            }
            out.sets.insert(name, elems);
        }
    }
    Ok(out)
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
        return Some(Verdict::Jump(j["target"].as_str()?.to_string()));
    }
    if v.get("accept").is_some() {
        return Some(Verdict::Accept);
    }
    if v.get("drop").is_some() {
        return Some(Verdict::Drop);
    }
    None
}

fn parse_key(k: &J, key: &[KeyType]) -> Option<Vec<Vec<Value>>> {
    if let Some(inner) = k.get("elem") {
        return parse_key(&inner["val"], key);
    }
    if let Some(parts) = k.get("concat").and_then(J::as_array) {
        if parts.len() != key.len() {
            return None;
        }
        let mut out = Vec::new();
        for (p, t) in parts.iter().zip(key) {
            let vals = parse_value(p, *t)?;
            let [v] = vals.as_slice() else { return None };
            out.push(v.clone());
        }
        return Some(vec![out]);
    }
    let [t] = key else { return None };
    Some(parse_value(k, *t)?.into_iter().map(|v| vec![v]).collect())
}

fn parse_value(v: &J, t: KeyType) -> Option<Vec<Value>> {
    match t {
        KeyType::Ifname => Some(vec![Value::Ifname(v.as_str()?.to_string())]),
        KeyType::Ether => Some(vec![Value::Mac(v.as_str()?.to_ascii_lowercase())]),
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

/// Reads each of `desired`'s tables back from the kernel through `list`,
/// which returns `Ok(None)` for a table that does not exist.
pub fn observe(
    desired: &Ruleset,
    mut list: impl FnMut(Family, &str) -> Result<Option<J>, NftError>,
) -> Result<Observed, NftError> {
    let mut tables = Vec::new();
    for t in &desired.tables {
        if let Some(listing) = list(t.family, &t.name)? {
            tables.push((
                t.family,
                t.name.clone(),
                parse_table(t.family, &listing, desired)?,
            ));
        }
    }
    Ok(Observed { tables })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_plain_concat_map_and_range_elements() {
        let v4 = |s: &str| Value::Net(s.parse().unwrap());
        assert_eq!(
            parse_element(&json!("10.0.0.1"), &[KeyType::Ipv4]).unwrap(),
            vec![Element {
                key: vec![v4("10.0.0.1/32")],
                verdict: None
            }]
        );
        let c = parse_element(
            &json!({"concat": ["veth1", "02:42:AC:11:00:02", "172.17.0.2"]}),
            &[KeyType::Ifname, KeyType::Ether, KeyType::Ipv4],
        )
        .unwrap();
        assert_eq!(
            c[0].key,
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
        assert_eq!(t[0].key, vec![v4("10.0.0.9/32")]);
        let nd = parse_element(
            &json!({"concat": ["veth1", 4660]}),
            &[KeyType::Ifname, KeyType::Mark],
        )
        .unwrap();
        assert_eq!(
            nd[0].key,
            vec![Value::Ifname("veth1".into()), Value::Mark(4660)]
        );
        assert!(parse_element(&json!({"weird": 1}), &[KeyType::Ipv4]).is_none());
        assert!(parse_element(
            &json!({"concat": ["a"]}),
            &[KeyType::Ifname, KeyType::Ether]
        )
        .is_none());
    }
}
