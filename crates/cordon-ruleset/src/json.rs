//! Renders a [`Ruleset`] as one libnftables JSON transaction (`nft -j -f`).
//!
//! [`replace`] and [`replace_text`] first add and then delete each of
//! cordon's tables (so the delete never fails on a fresh host) and then
//! create them anew: the kernel applies it whole or not at all. That is
//! what `cordon plan -o json` shows and the fallback of an install; the
//! install itself replaces the tables in place (see [`crate::inplace`]),
//! because a packet inside a deleted table at the commit can be dropped.

use ipnet::IpNet;
use serde_json::{json, Value as J};

use crate::nft::*;
use crate::text::net_text;

/// The transaction that replaces cordon's tables with `ruleset`, as JSON
/// text. Set elements are written directly rather than built as
/// `serde_json::Value`s: with thousands of containers they are almost all
/// of the document.
pub fn replace_text(ruleset: &Ruleset) -> String {
    let mut head = Vec::new();
    for t in &ruleset.tables {
        let id = json!({"family": t.family.as_str(), "name": t.name});
        head.push(json!({"add": {"table": id.clone()}}));
        head.push(json!({"delete": {"table": id}}));
    }
    render_text(head, ruleset, &|_, _| Write::All)
}

/// [`replace_text`] with only the elements of the sets `with_elements`
/// accepts: what `nft -c` validates before an install whose other sets are
/// filled over netlink (the kernel validates those as they are added).
pub fn replace_text_with(ruleset: &Ruleset, with_elements: &dyn Fn(&Set) -> bool) -> String {
    let mut head = Vec::new();
    for t in &ruleset.tables {
        let id = json!({"family": t.family.as_str(), "name": t.name});
        head.push(json!({"add": {"table": id.clone()}}));
        head.push(json!({"delete": {"table": id}}));
    }
    render_text(head, ruleset, &|ti, si| {
        if with_elements(&ruleset.tables[ti].sets[si]) {
            Write::All
        } else {
            Write::None
        }
    })
}

/// Which of a set's elements a rendered transaction adds.
pub(crate) enum Write<'a> {
    /// Every one.
    All,
    /// None: the kernel holds them all already, or they go another way.
    None,
    /// Those not in the set the kernel already holds.
    Except(&'a std::collections::HashSet<&'a Element>),
}

/// `head`, then the commands that create `ruleset`'s tables (their
/// declarations, rules, and the elements `write` picks for each set, named
/// by its table's and its own index), as one JSON document's text.
pub(crate) fn render_text<'a>(
    head: Vec<J>,
    ruleset: &Ruleset,
    write: &dyn Fn(usize, usize) -> Write<'a>,
) -> String {
    let mut out = String::with_capacity(256 * 1024);
    out.push_str("{\"nftables\":[");
    let mut cmds = head;
    for t in &ruleset.tables {
        table_cmds(t, &mut cmds, false);
    }
    for (i, cmd) in cmds.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cmd.to_string());
    }
    for (ti, t) in ruleset.tables.iter().enumerate() {
        for (si, set) in t.sets.iter().enumerate() {
            let pick = write(ti, si);
            let mut elems = set
                .elements
                .iter()
                .filter(|e| match &pick {
                    Write::All => true,
                    Write::None => false,
                    Write::Except(have) => !have.contains(e),
                })
                .peekable();
            if elems.peek().is_none() {
                continue;
            }
            out.push_str(&format!(
                ",{{\"add\":{{\"element\":{{\"family\":\"{}\",\"table\":{},\"name\":{},\"elem\":[",
                t.family.as_str(),
                J::from(t.name.as_str()),
                J::from(set.name.as_str()),
            ));
            for (i, e) in elems.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_element(&mut out, e);
            }
            out.push_str("]}}}");
        }
    }
    out.push_str("]}");
    out
}

/// Appends one element in the form [`element`] builds, without building it.
pub(crate) fn write_element(out: &mut String, e: &Element) {
    let value = |out: &mut String, v: &Value| match v {
        Value::Net(n) if n.prefix_len() == n.max_prefix_len() => {
            out.push('"');
            out.push_str(&n.addr().to_string());
            out.push('"');
        }
        Value::Net(n) => out.push_str(&net(n).to_string()),
        Value::Ifname(s) | Value::Mac(s) => out.push_str(&J::from(s.as_str()).to_string()),
        Value::Mark(m) => out.push_str(&m.to_string()),
    };
    if e.verdict.is_some() {
        out.push('[');
    }
    if let [single] = &e.key[..] {
        value(out, single);
    } else {
        out.push_str("{\"concat\":[");
        for (i, k) in e.key.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            value(out, k);
        }
        out.push_str("]}");
    }
    if let Some(v) = &e.verdict {
        out.push(',');
        out.push_str(&verdict(v).to_string());
        out.push(']');
    }
}

/// The commands that replace cordon's tables with `ruleset`, as a JSON
/// value (elements included): what `cordon plan -o json` prints.
pub fn replace(ruleset: &Ruleset) -> J {
    replace_with(ruleset, true)
}

fn replace_with(ruleset: &Ruleset, with_elements: bool) -> J {
    let mut cmds = Vec::new();
    for t in &ruleset.tables {
        let id = json!({"family": t.family.as_str(), "name": t.name});
        cmds.push(json!({"add": {"table": id.clone()}}));
        cmds.push(json!({"delete": {"table": id}}));
    }
    for t in &ruleset.tables {
        table_cmds(t, &mut cmds, with_elements);
    }
    json!({ "nftables": cmds })
}

/// The commands that delete the named tables if they exist.
pub fn delete_tables(tables: &[(Family, &str)]) -> J {
    let mut cmds = Vec::new();
    for (family, name) in tables {
        let id = json!({"family": family.as_str(), "name": name});
        cmds.push(json!({"add": {"table": id.clone()}}));
        cmds.push(json!({"delete": {"table": id}}));
    }
    json!({ "nftables": cmds })
}

/// What a chain's declaration says beyond its name, in the words of
/// `nft -j list`: its hook, priority and policy for a base chain, `None`
/// for a regular one. Two chains of one name with equal shapes are the same
/// chain to the kernel; anything else must be deleted and created again.
pub fn chain_shape(c: &Chain) -> Option<J> {
    c.base.map(|b| {
        json!({
            "type": b.kind.as_str(), "hook": b.hook.as_str(),
            "prio": b.priority, "policy": "accept",
        })
    })
}

/// What a set's declaration says beyond its name and elements, in the
/// words of `nft -j list`: key type, map type, flags, per-element counters
/// and comment. The kernel cannot change these on a live set.
pub fn set_shape(s: &Set) -> J {
    let mut flags: Vec<&str> = s.flags();
    flags.sort_unstable();
    json!({
        "map": s.verdict_map.then_some("verdict"),
        "type": key_type(&s.key),
        "flags": flags,
        "counter": s.counter,
        "comment": s.comment,
    })
}

fn table_cmds(t: &Table, cmds: &mut Vec<J>, with_elements: bool) {
    let fam = t.family.as_str();
    cmds.push(json!({"add": {"table": {"family": fam, "name": t.name}}}));
    // Chains first: verdict map elements jump to them.
    for c in &t.chains {
        cmds.push(add_chain(t, c));
    }
    for s in &t.sets {
        cmds.push(add_set(t, s, with_elements));
    }
    for c in &t.chains {
        for r in &c.rules {
            let mut obj = json!({
                "family": fam, "table": t.name, "chain": c.name,
                "expr": r.stmts.iter().map(stmt).collect::<Vec<_>>(),
            });
            if let Some(comment) = &r.comment {
                obj["comment"] = json!(comment);
            }
            cmds.push(json!({"add": {"rule": obj}}));
        }
    }
}

/// `add chain` for `c` of `t` (with its hook, priority and policy when it
/// is a base chain).
pub(crate) fn add_chain(t: &Table, c: &Chain) -> J {
    let mut obj = json!({"family": t.family.as_str(), "table": t.name, "name": c.name});
    if let Some(b) = c.base {
        obj["type"] = json!(b.kind.as_str());
        obj["hook"] = json!(b.hook.as_str());
        obj["prio"] = json!(b.priority);
        obj["policy"] = json!("accept");
    }
    json!({"add": {"chain": obj}})
}

/// `add set` (or `add map`) declaring `s` of `t`, with its elements when
/// `with_elements`.
pub(crate) fn add_set(t: &Table, s: &Set, with_elements: bool) -> J {
    let mut obj = set_id(t, s);
    obj["type"] = key_type(&s.key);
    if s.verdict_map {
        obj["map"] = json!("verdict");
    }
    let flags = s.flags();
    if !flags.is_empty() {
        obj["flags"] = json!(flags);
    }
    if s.counter {
        obj["stmt"] = json!([{"counter": null}]);
    }
    if !s.comment.is_empty() {
        obj["comment"] = json!(s.comment);
    }
    if with_elements && !s.elements.is_empty() {
        obj["elem"] = J::Array(s.elements.iter().map(element).collect());
    }
    json!({"add": {set_kind(s): obj}})
}

/// `set` or `map`, as nft's JSON names `s`'s kind.
pub(crate) fn set_kind(s: &Set) -> &'static str {
    if s.verdict_map {
        "map"
    } else {
        "set"
    }
}

/// The object naming `s` of `t`: family, table and name.
pub(crate) fn set_id(t: &Table, s: &Set) -> J {
    json!({"family": t.family.as_str(), "table": t.name, "name": s.name})
}

fn key_type(key: &[KeyType]) -> J {
    if key.len() == 1 {
        json!(key[0].as_str())
    } else {
        J::Array(key.iter().map(|k| json!(k.as_str())).collect())
    }
}

/// One set element in JSON form (also used by live set edits).
pub fn element(e: &Element) -> J {
    let key = if e.key.len() == 1 {
        value(&e.key[0])
    } else {
        json!({"concat": e.key.iter().map(value).collect::<Vec<_>>()})
    };
    match &e.verdict {
        Some(v) => json!([key, verdict(v)]),
        None => key,
    }
}

fn value(v: &Value) -> J {
    match v {
        Value::Net(n) => net(n),
        Value::Ifname(s) | Value::Mac(s) => json!(s),
        Value::Mark(m) => json!(m),
    }
}

fn net(n: &IpNet) -> J {
    if n.prefix_len() == n.max_prefix_len() {
        json!(net_text(n))
    } else {
        json!({"prefix": {"addr": n.network().to_string(), "len": n.prefix_len()}})
    }
}

fn verdict(v: &Verdict) -> J {
    match v {
        Verdict::Accept => json!({"accept": null}),
        Verdict::Drop => json!({"drop": null}),
        Verdict::Jump(c) => json!({"jump": {"target": c}}),
        Verdict::Goto(c) => json!({"goto": {"target": c}}),
        Verdict::Return => json!({"return": null}),
    }
}

fn stmt(s: &Stmt) -> J {
    match s {
        Stmt::Match {
            left,
            negate,
            right,
        } => {
            // ct state is a bit mask: several states are a flag list with
            // `in`, everything else a lookup with `==`.
            if let (false, [f @ (Field::CtState | Field::CtStatus)], Rhs::Symbols(flags)) =
                (negate, &left[..], right)
            {
                return json!({"match": {"op": "in", "left": field(*f), "right": flags}});
            }
            let op = if *negate { "!=" } else { "==" };
            json!({"match": {"op": op, "left": fields(left), "right": rhs(right)}})
        }
        Stmt::Counter => json!({"counter": null}),
        Stmt::Masquerade => json!({"masquerade": null}),
        Stmt::Redirect(port) => json!({"redirect": {"port": port}}),
        Stmt::Log { prefix, group } => json!({"log": {"prefix": prefix, "group": group}}),
        Stmt::Vmap { key, map } => json!({"vmap": {"key": fields(key), "data": format!("@{map}")}}),
        Stmt::SetMark(value) => json!({"mangle": {
            "key": field(Field::Mark),
            "value": value.map_or(json!(0), field),
        }}),
        Stmt::Verdict(v) => verdict(v),
    }
}

fn fields(f: &[Field]) -> J {
    if f.len() == 1 {
        field(f[0])
    } else {
        json!({"concat": f.iter().map(|x| field(*x)).collect::<Vec<_>>()})
    }
}

fn field(f: Field) -> J {
    let payload = |p: &str, fld: &str| json!({"payload": {"protocol": p, "field": fld}});
    match f {
        Field::Iifname => json!({"meta": {"key": "iifname"}}),
        Field::Oifname => json!({"meta": {"key": "oifname"}}),
        Field::L4proto => json!({"meta": {"key": "l4proto"}}),
        Field::ThDport => payload("th", "dport"),
        Field::CtState => json!({"ct": {"key": "state"}}),
        Field::CtStatus => json!({"ct": {"key": "status"}}),
        Field::FibDaddrType => json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        Field::EtherSaddr => payload("ether", "saddr"),
        Field::EtherType => payload("ether", "type"),
        Field::IpSaddr => payload("ip", "saddr"),
        Field::IpDaddr => payload("ip", "daddr"),
        Field::Ip6Saddr => payload("ip6", "saddr"),
        Field::Ip6Daddr => payload("ip6", "daddr"),
        Field::ArpSaddrIp => payload("arp", "saddr ip"),
        Field::ArpSaddrEther => payload("arp", "saddr ether"),
        Field::Icmpv6Type => payload("icmpv6", "type"),
        Field::Ip6Hoplimit => payload("ip6", "hoplimit"),
        Field::Ip6Nexthdr => payload("ip6", "nexthdr"),
        Field::Ip6Length => payload("ip6", "length"),
        Field::ThSport => payload("th", "sport"),
        Field::Mark => json!({"meta": {"key": "mark"}}),
        Field::Iifkind => json!({"meta": {"key": "iifkind"}}),
        Field::Oifkind => json!({"meta": {"key": "oifkind"}}),
        Field::Iif => json!({"meta": {"key": "iif"}}),
        Field::Oif => json!({"meta": {"key": "oif"}}),
        Field::Th(offset, len) => {
            json!({"payload": {"base": "th", "offset": offset, "len": len}})
        }
    }
}

fn rhs(r: &Rhs) -> J {
    match r {
        Rhs::Set(name) => json!(format!("@{name}")),
        Rhs::Net(n) => net(n),
        Rhs::Nets(ns) => json!({"set": ns.iter().map(net).collect::<Vec<_>>()}),
        Rhs::Ports(ps) => {
            let items: Vec<J> = ps
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        json!(lo)
                    } else {
                        json!({"range": [lo, hi]})
                    }
                })
                .collect();
            if items.len() == 1 {
                items.into_iter().next().unwrap()
            } else {
                json!({ "set": items })
            }
        }
        Rhs::Symbols(s) if s.len() == 1 => json!(s[0]),
        Rhs::Symbols(s) => json!({"set": s}),
        Rhs::Ints(v) if v.len() == 1 => json!(v[0]),
        Rhs::Ints(v) => json!({ "set": v }),
        Rhs::Str(s) => json!(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    /// The fast text rendering says exactly what the value rendering says,
    /// only with elements in separate `add element` commands.
    #[test]
    fn text_rendering_matches_value_rendering() {
        let mut set = Set::new("m", vec![KeyType::Ifname, KeyType::Ipv4], "");
        set.elements = vec![
            Element {
                key: smallvec![
                    Value::Ifname("veth1".into()),
                    Value::Net("10.0.0.1/32".parse().unwrap()),
                ],
                verdict: None,
            },
            Element {
                key: smallvec![
                    Value::Ifname("veth\"2".into()),
                    Value::Net("10.1.0.0/16".parse().unwrap()),
                ],
                verdict: Some(Verdict::Jump("c".into())),
            },
        ];
        for e in &set.elements {
            let mut s = String::new();
            write_element(&mut s, e);
            let parsed: J = serde_json::from_str(&s).unwrap();
            assert_eq!(parsed, element(e));
        }
        let rs = Ruleset {
            tables: vec![Table {
                family: Family::Inet,
                name: "cordon".into(),
                sets: vec![set],
                chains: vec![],
            }],
        };
        let doc: J = serde_json::from_str(&replace_text(&rs)).unwrap();
        let cmds = doc["nftables"].as_array().unwrap();
        let last = &cmds[cmds.len() - 1]["add"]["element"];
        assert_eq!(last["name"], "m");
        assert_eq!(last["elem"].as_array().unwrap().len(), 2);
    }

    /// A goto renders as nft's `goto` object, in rules and map elements,
    /// and the text form says `goto`.
    #[test]
    fn goto_renders_as_nft_writes_it() {
        let g = Verdict::Goto("eg_fwd_web".into());
        assert_eq!(verdict(&g), json!({"goto": {"target": "eg_fwd_web"}}));
        let e = Element {
            key: smallvec![Value::Net("10.0.0.1/32".parse().unwrap())],
            verdict: Some(g.clone()),
        };
        assert_eq!(
            element(&e),
            json!(["10.0.0.1", {"goto": {"target": "eg_fwd_web"}}])
        );
        let mut s = String::new();
        write_element(&mut s, &e);
        assert_eq!(serde_json::from_str::<J>(&s).unwrap(), element(&e));
        let rule = Rule::new(vec![Stmt::Verdict(g)]);
        assert_eq!(crate::text::rule_text(&rule), "goto eg_fwd_web");
    }
}
