//! Renders a [`Ruleset`] in nft's own text syntax, the way `cordon plan`
//! shows it to people. The kernel is fed the JSON rendering instead.

use std::fmt::Write;

use ipnet::IpNet;

use crate::nft::*;

/// The ruleset as `nft -f` would read it.
pub fn render(ruleset: &Ruleset) -> String {
    let mut out = String::new();
    for table in &ruleset.tables {
        render_table(&mut out, table);
    }
    out
}

fn render_table(out: &mut String, t: &Table) {
    let _ = writeln!(out, "table {} {} {{", t.family.as_str(), t.name);
    for set in &t.sets {
        render_set(out, set);
    }
    for chain in &t.chains {
        let _ = writeln!(out, "\tchain {} {{", chain.name);
        if let Some(b) = chain.base {
            let _ = writeln!(
                out,
                "\t\ttype {} hook {} priority {}; policy accept;",
                b.kind.as_str(),
                b.hook.as_str(),
                b.priority
            );
        }
        for rule in &chain.rules {
            let _ = write!(out, "\t\t{}", rule_text(rule));
            out.push('\n');
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
}

fn render_set(out: &mut String, s: &Set) {
    let kind = if s.verdict_map { "map" } else { "set" };
    let key = s
        .key
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" . ");
    let _ = writeln!(out, "\t{kind} {} {{", s.name);
    if s.verdict_map {
        let _ = writeln!(out, "\t\ttype {key} : verdict");
    } else {
        let _ = writeln!(out, "\t\ttype {key}");
    }
    let flags = s.flags();
    if !flags.is_empty() {
        let _ = writeln!(out, "\t\tflags {}", flags.join(","));
    }
    if s.counter {
        let _ = writeln!(out, "\t\tcounter");
    }
    if !s.comment.is_empty() {
        let _ = writeln!(out, "\t\tcomment \"{}\"", s.comment);
    }
    if !s.elements.is_empty() {
        out.push_str("\t\telements = {");
        for (i, e) in s.elements.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ",\n\t\t\t     " });
            let key = e.key.iter().map(value_text).collect::<Vec<_>>().join(" . ");
            out.push_str(&key);
            if let Some(v) = &e.verdict {
                let _ = write!(out, " : {}", verdict_text(v));
            }
        }
        out.push_str(" }\n");
    }
    out.push_str("\t}\n");
}

/// One rule in text form, without indentation.
pub fn rule_text(rule: &Rule) -> String {
    let mut parts: Vec<String> = rule.stmts.iter().map(stmt_text).collect();
    if let Some(c) = &rule.comment {
        parts.push(format!("comment \"{c}\""));
    }
    parts.join(" ")
}

fn stmt_text(s: &Stmt) -> String {
    match s {
        Stmt::Match {
            left,
            negate,
            right,
        } => {
            let l = fields_text(left);
            let op = if *negate { "!= " } else { "" };
            format!("{l} {op}{}", rhs_text(right))
        }
        Stmt::Counter => "counter".into(),
        Stmt::Masquerade => "masquerade".into(),
        Stmt::Redirect(port) => format!("redirect to :{port}"),
        Stmt::Log { prefix, group } => format!("log prefix \"{prefix}\" group {group}"),
        Stmt::Vmap { key, map } => format!("{} vmap @{map}", fields_text(key)),
        Stmt::SetMark(Some(f)) => format!("meta mark set {}", field_text(*f)),
        Stmt::SetMark(None) => "meta mark set 0x0".into(),
        Stmt::Verdict(v) => verdict_text(v),
    }
}

fn fields_text(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| field_text(*f))
        .collect::<Vec<_>>()
        .join(" . ")
}

fn field_text(f: Field) -> String {
    let s = match f {
        Field::Iifname => "iifname",
        Field::Oifname => "oifname",
        Field::L4proto => "meta l4proto",
        Field::ThDport => "th dport",
        Field::CtState => "ct state",
        Field::CtStatus => "ct status",
        Field::FibDaddrType => "fib daddr type",
        Field::EtherSaddr => "ether saddr",
        Field::EtherType => "ether type",
        Field::IpSaddr => "ip saddr",
        Field::IpDaddr => "ip daddr",
        Field::Ip6Saddr => "ip6 saddr",
        Field::Ip6Daddr => "ip6 daddr",
        Field::ArpSaddrIp => "arp saddr ip",
        Field::ArpSaddrEther => "arp saddr ether",
        Field::Icmpv6Type => "icmpv6 type",
        Field::Ip6Hoplimit => "ip6 hoplimit",
        Field::Ip6Nexthdr => "ip6 nexthdr",
        Field::Ip6Length => "ip6 length",
        Field::ThSport => "th sport",
        Field::Mark => "meta mark",
        Field::Iifkind => "meta iifkind",
        Field::Oifkind => "meta oifkind",
        Field::Iif => "meta iif",
        Field::Oif => "meta oif",
        Field::Th(offset, len) => return format!("@th,{offset},{len}"),
    };
    s.to_string()
}

fn rhs_text(r: &Rhs) -> String {
    match r {
        Rhs::Set(name) => format!("@{name}"),
        Rhs::Net(n) => net_text(n),
        Rhs::Nets(ns) => braces(ns.iter().map(net_text)),
        Rhs::Ports(ps) => {
            let items: Vec<String> = ps
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    }
                })
                .collect();
            if items.len() == 1 {
                items[0].clone()
            } else {
                braces(items.into_iter())
            }
        }
        Rhs::Symbols(s) if s.len() == 1 => s[0].to_string(),
        Rhs::Symbols(s) => braces(s.iter().map(|x| x.to_string())),
        Rhs::Ints(v) if v.len() == 1 => int_text(v[0]),
        Rhs::Ints(v) => braces(v.iter().map(|x| int_text(*x))),
        Rhs::Str(s) => format!("\"{s}\""),
    }
}

/// Small numbers in decimal, raw header words in hex.
fn int_text(v: u64) -> String {
    if v < 256 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

fn braces(items: impl Iterator<Item = String>) -> String {
    format!("{{ {} }}", items.collect::<Vec<_>>().join(", "))
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
        Verdict::Return => "return".into(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Net(n) => net_text(n),
        Value::Ifname(s) => format!("\"{s}\""),
        Value::Mac(m) => m.to_string(),
        Value::Mark(m) => format!("{m:#010x}"),
    }
}

/// An address without `/32` or `/128`, a prefix with it.
pub fn net_text(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}
