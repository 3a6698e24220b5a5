//! Writing a [`PolicyFile`] back as YAML that [`crate::parse`] reads to
//! the same policy (locations aside). `cordon suggest` prints its
//! suggestions with it.

use std::fmt::{self, Display, Write as _};

use crate::ast::*;

impl Display for Peer {
    /// The word as the policy language writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Internet => f.write_str("internet"),
            Peer::Private => f.write_str("private"),
            Peer::Metadata => f.write_str("metadata"),
            Peer::Host => f.write_str("host"),
            Peer::SameNetwork => f.write_str("same-network"),
            Peer::Any => f.write_str("any"),
            Peer::Set(n) | Peer::Policy(n) | Peer::Dns(n) => f.write_str(n),
            Peer::Net(n) if n.prefix_len() == n.max_prefix_len() => write!(f, "{}", n.addr()),
            Peer::Net(n) => write!(f, "{n}"),
            Peer::DnsWildcard(n) => write!(f, "*.{n}"),
        }
    }
}

impl Display for PortSpec {
    /// `443/tcp`, `8000-8100/udp`, `icmp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi, proto) = match self {
            PortSpec::Icmp => return f.write_str("icmp"),
            PortSpec::Tcp(lo, hi) => (lo, hi, "tcp"),
            PortSpec::Udp(lo, hi) => (lo, hi, "udp"),
        };
        if lo == hi {
            write!(f, "{lo}/{proto}")
        } else {
            write!(f, "{lo}-{hi}/{proto}")
        }
    }
}

/// A YAML scalar, quoted when the plain form would read differently.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':'))
        && !s.starts_with(['-', ':'])
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_string()
    } else {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            match c {
                '\\' => q.push_str("\\\\"),
                '"' => q.push_str("\\\""),
                // YAML's escapes, so that a control character can neither
                // end the line nor hide.
                c if c.is_control() || ('\u{2000}'..='\u{206f}').contains(&c) => {
                    let _ = write!(q, "\\u{:04x}", c as u32);
                }
                c => q.push(c),
            }
        }
        q.push('"');
        q
    }
}

fn list<T: Display>(items: &[T]) -> String {
    let words: Vec<String> = items.iter().map(|i| scalar(&i.to_string())).collect();
    format!("[{}]", words.join(", "))
}

fn rules(out: &mut String, indent: &str, key: &str, word: &str, rules: &[Rule]) {
    if rules.is_empty() {
        let _ = writeln!(out, "{indent}{key}: []");
        return;
    }
    let _ = writeln!(out, "{indent}{key}:");
    for r in rules {
        let _ = writeln!(out, "{indent}  - {word}: {}", list(&r.peers));
        if !r.ports.is_empty() {
            let _ = writeln!(out, "{indent}    ports: {}", list(&r.ports));
        }
        if r.server_name {
            let _ = writeln!(out, "{indent}    match: server-name");
        }
    }
}

/// Writes `body` (mode, ingress, egress) at `indent`.
pub fn body(out: &mut String, indent: &str, b: &Body) {
    if b.mode == Mode::Audit {
        let _ = writeln!(out, "{indent}mode: audit");
    }
    if let Some(ingress) = &b.ingress {
        rules(out, indent, "ingress", "from", ingress);
    }
    rules(out, indent, "egress", "to", &b.egress);
}

/// Writes `select:` on one line.
pub fn selector(s: &Selector) -> String {
    let mut parts = Vec::new();
    if let Some(n) = &s.name {
        parts.push(format!("name: {}", scalar(n)));
    }
    if let Some(i) = &s.image {
        parts.push(format!("image: {}", scalar(i)));
    }
    if !s.labels.is_empty() {
        let l: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{}: {}", scalar(k), scalar(v)))
            .collect();
        parts.push(format!("label: {{ {} }}", l.join(", ")));
    }
    let mut compose = Vec::new();
    if let Some(p) = &s.compose_project {
        compose.push(format!("project: {}", scalar(p)));
    }
    if let Some(sv) = &s.compose_service {
        compose.push(format!("service: {}", scalar(sv)));
    }
    if !compose.is_empty() {
        parts.push(format!("compose: {{ {} }}", compose.join(", ")));
    }
    format!("{{ {} }}", parts.join(", "))
}

/// The whole file.
pub fn to_yaml(p: &PolicyFile) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "version: {}", p.version);
    if p.trust_image_labels {
        let _ = writeln!(out, "trust_image_labels: true");
    }
    if !p.sets.is_empty() {
        let _ = writeln!(out, "\nsets:");
        for s in &p.sets {
            let addrs: Vec<Peer> = s.addrs.iter().map(|a| Peer::Net(*a)).collect();
            let _ = writeln!(out, "  {}: {}", scalar(&s.name), list(&addrs));
        }
    }
    let d = &p.dns;
    let dflt = DnsConfig::default();
    if *d != dflt {
        let _ = writeln!(out, "\ndns:");
        if !d.upstream.is_empty() {
            let _ = writeln!(out, "  upstream: {}", list(&d.upstream));
        }
        if d.min_ttl != dflt.min_ttl {
            let _ = writeln!(out, "  min_ttl: {}s", d.min_ttl.as_secs());
        }
        if d.max_ttl != dflt.max_ttl {
            let _ = writeln!(out, "  max_ttl: {}s", d.max_ttl.as_secs());
        }
        if d.max_addresses != dflt.max_addresses {
            let _ = writeln!(out, "  max_addresses: {}", d.max_addresses);
        }
        if d.nxdomain {
            let _ = writeln!(out, "  refuse_with: nxdomain");
        }
        if d.query_rate != dflt.query_rate {
            match d.query_rate {
                Some(n) => writeln!(out, "  query_rate: {n}"),
                None => writeln!(out, "  query_rate: off"),
            }
            .ok();
        }
        if d.query_burst != dflt.query_burst {
            let _ = writeln!(out, "  query_burst: {}", d.query_burst);
        }
        if d.cache != dflt.cache {
            let _ = writeln!(out, "  cache: {}", d.cache);
        }
    }
    if p.l7 != L7Config::default() {
        let _ = writeln!(out, "\nl7:");
        let _ = writeln!(
            out,
            "  max_connections_per_container: {}",
            p.l7.max_connections_per_container
        );
    }
    let _ = writeln!(out, "\ndefault:");
    body(&mut out, "  ", &p.default);
    if !p.policies.is_empty() {
        let _ = writeln!(out, "\npolicies:");
        for pol in &p.policies {
            let _ = writeln!(out, "  - name: {}", scalar(&pol.name));
            if !pol.select.is_empty() {
                let _ = writeln!(out, "    select: {}", selector(&pol.select));
            }
            body(&mut out, "    ", &pol.body);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Locations differ between the original and the printed file.
    fn unlocated(mut p: PolicyFile) -> PolicyFile {
        p.source = String::new();
        for s in &mut p.sets {
            s.loc = Loc::default();
        }
        let fix = |b: &mut Body| {
            for r in b.egress.iter_mut().chain(b.ingress.iter_mut().flatten()) {
                r.loc = Loc::default();
            }
        };
        fix(&mut p.default);
        for pol in &mut p.policies {
            pol.loc = Loc::default();
            fix(&mut pol.body);
        }
        p
    }

    #[test]
    fn printed_files_parse_to_the_same_policy() {
        let spec = include_str!("../../cordon-cli/tests/fixtures/spec.yaml");
        for (name, text) in [
            ("spec", spec),
            ("default", crate::EMBEDDED_DEFAULT),
            (
                "odd",
                "version: 1\ndns:\n  min_ttl: 30\n  max_addresses: 4\n  refuse_with: nxdomain\n  query_rate: off\n  query_burst: 50\n  cache: 0\ndefault:\n  mode: audit\n  egress: []\npolicies:\n  - name: x\n    select: { name: \"web-*\", image: \"nginx:1\", label: { \"a b\": \"true\" }, compose: { project: p, service: s } }\n    ingress:\n      - from: [\"2001:db8::/48\", 10.0.0.1]\n        ports: [icmp, 22/tcp, 8000-8100/udp]\n    egress:\n      - to: [\"*.example.org\", api.example.com, same-network, metadata]\n      - to: [\"*.example.org\", api.example.com]\n        ports: [443/tcp, 8080-8090/tcp]\n        match: server-name\nl7:\n  max_connections_per_container: 8\n",
            ),
        ] {
            let p = crate::parse(name, text).unwrap();
            let printed = to_yaml(&p);
            let back = crate::parse(name, &printed)
                .unwrap_or_else(|e| panic!("{name}: {e:?}\n{printed}"));
            assert_eq!(unlocated(back), unlocated(p), "{name}:\n{printed}");
        }
    }

    #[test]
    fn control_characters_in_a_selector_stay_inside_their_quotes() {
        let mut p = crate::parse("p.yaml", "version: 1\n").unwrap();
        let name = "web\npolicies: []\t\u{1b}[2J\u{202e}";
        p.policies.push(Policy {
            name: "x".into(),
            select: Selector {
                name: Some(name.into()),
                labels: [("k\r\n".to_string(), "v\nw".to_string())].into(),
                ..Default::default()
            },
            body: Body::default(),
            loc: Loc::default(),
        });
        let printed = to_yaml(&p);
        assert!(
            !printed.lines().any(|l| l.starts_with("policies: []")),
            "{printed}"
        );
        let back =
            crate::parse("back.yaml", &printed).unwrap_or_else(|e| panic!("{e:?}\n{printed}"));
        assert_eq!(back.policies[0].select.name.as_deref(), Some(name));
        assert_eq!(back.policies[0].select.labels["k\r\n"], "v\nw");
    }
}
