//! From YAML text to a validated [`PolicyFile`], collecting every error.
//!
//! The YAML is loaded with saphyr's span-carrying nodes and decoded by
//! hand, so one pass finds all mistakes (serde would stop at the first) and
//! each is located at the node that is wrong. saphyr itself rejects
//! duplicate mapping keys.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::ast::*;
use crate::peers::{parse_net, parse_peer, parse_port, valid_name, RESERVED, RESERVED_NAMES};

type Node<'a> = MarkedYaml<'a>;

struct Ctx<'f> {
    file: &'f str,
    diags: Vec<Diagnostic>,
    sets: HashMap<String, usize>,
    policies: HashMap<String, usize>,
}

fn loc(n: &Node) -> Loc {
    Loc {
        line: n.span.start.line().max(1),
        col: n.span.start.col() + 1,
    }
}

/// A scalar's text: strings as they are, numbers and booleans as written.
fn scalar(n: &Node) -> Option<String> {
    match &n.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        _ => None,
    }
}

fn kind(n: &Node) -> &'static str {
    match &n.data {
        YamlData::Value(Scalar::Null) => "empty",
        YamlData::Value(_) => "a single value",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        _ => "an unsupported YAML node",
    }
}

impl Ctx<'_> {
    fn err(&mut self, at: Loc, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            loc: at,
            message: message.into(),
        });
    }

    /// The entries of a mapping whose keys are among `allowed`; reports
    /// the others.
    fn entries<'n, 'a>(
        &mut self,
        n: &'n Node<'a>,
        what: &str,
        allowed: &[&str],
    ) -> Vec<(String, &'n Node<'a>, &'n Node<'a>)> {
        let YamlData::Mapping(map) = &n.data else {
            if !matches!(&n.data, YamlData::Value(Scalar::Null)) {
                self.err(loc(n), format!("{what} must be a mapping, not {}", kind(n)));
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = scalar(k) else {
                self.err(loc(k), format!("keys of {what} must be plain words"));
                continue;
            };
            if allowed.contains(&key.as_str()) {
                out.push((key, k, v));
            } else {
                self.err(
                    loc(k),
                    format!(
                        "unknown key `{key}` in {what}; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        out
    }

    fn list<'n, 'a>(&mut self, n: &'n Node<'a>, what: &str, example: &str) -> Vec<&'n Node<'a>> {
        match &n.data {
            YamlData::Sequence(items) => items.iter().collect(),
            YamlData::Value(Scalar::Null) => Vec::new(),
            _ => {
                self.err(
                    loc(n),
                    format!("`{what}` must be a list, e.g. `{what}: {example}`"),
                );
                Vec::new()
            }
        }
    }

    fn text(&mut self, n: &Node, what: &str) -> Option<String> {
        let s = scalar(n);
        if s.is_none() {
            self.err(
                loc(n),
                format!("`{what}` must be a single value, not {}", kind(n)),
            );
        }
        s
    }
}

/// Parses and validates a policy file. `file` is the name used in messages.
pub fn parse(file: &str, text: &str) -> Result<PolicyFile, Vec<Diagnostic>> {
    let mut cx = Ctx {
        file,
        diags: Vec::new(),
        sets: HashMap::new(),
        policies: HashMap::new(),
    };
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let m = e.marker();
            cx.err(
                Loc {
                    line: m.line().max(1),
                    col: m.col() + 1,
                },
                format!("YAML syntax error: {}", e.info()),
            );
            return Err(cx.diags);
        }
    };
    let Some(root) = docs.first() else {
        cx.err(
            Loc { line: 1, col: 1 },
            "the file is empty; a policy file starts with `version: 1`",
        );
        return Err(cx.diags);
    };
    if let Some(second) = docs.get(1) {
        cx.err(
            loc(second),
            "only one YAML document is allowed in a policy file",
        );
    }
    let entries = cx.entries(
        root,
        "the policy file",
        &[
            "version",
            "sets",
            "dns",
            "default",
            "policies",
            "trust_image_labels",
            "l7",
        ],
    );
    if !matches!(root.data, YamlData::Mapping(_)) {
        if cx.diags.is_empty() {
            // An empty document (only comments, or a bare anchor).
            cx.err(
                loc(root),
                "the file is empty; a policy file starts with `version: 1`",
            );
        }
        return Err(cx.diags);
    }
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, k, v)| (*k, *v))
    };

    let version = match get("version") {
        None => {
            cx.err(loc(root), "missing `version: 1`");
            1
        }
        Some((_, v)) => match &v.data {
            YamlData::Value(Scalar::Integer(1)) => 1,
            _ => {
                cx.err(
                    loc(v),
                    format!(
                        "unsupported version `{}`; this cordon reads `version: 1`",
                        scalar(v).unwrap_or_default()
                    ),
                );
                1
            }
        },
    };

    // First pass: the names of sets and policies, so words can refer to a
    // policy defined further down (or to the policy itself).
    let set_nodes: Vec<(&Node, &Node)> = match get("sets") {
        Some((_, v)) => match &v.data {
            YamlData::Mapping(m) => m.iter().collect(),
            YamlData::Value(Scalar::Null) => Vec::new(),
            _ => {
                cx.err(
                    loc(v),
                    format!(
                        "`sets` must be a mapping of names to address lists, not {}",
                        kind(v)
                    ),
                );
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let mut names: HashMap<String, Loc> = HashMap::new();
    let mut declare = |cx: &mut Ctx, name: &str, at: Loc, what: &str| -> bool {
        if !valid_name(name) {
            cx.err(at, format!("{what} name `{name}` must start with a lower-case letter and contain only a-z, 0-9, `-` and `_` (at most 32)"));
            return false;
        }
        if RESERVED.contains(&name) {
            cx.err(
                at,
                format!("`{name}` is a reserved word and cannot name a {what}"),
            );
            return false;
        }
        if RESERVED_NAMES.contains(&name) {
            cx.err(
                at,
                format!("`{name}` is reserved for cordon's fail-closed rules (its logs would read as theirs) and cannot name a {what}"),
            );
            return false;
        }
        if let Some(first) = names.get(name) {
            cx.err(at, format!("duplicate name `{name}` (first defined at line {}); sets and policies share one namespace", first.line));
            return false;
        }
        names.insert(name.to_string(), at);
        true
    };
    for (i, (k, _)) in set_nodes.iter().enumerate() {
        if let Some(name) = scalar(k) {
            if declare(&mut cx, &name, loc(k), "set") {
                cx.sets.insert(name, i);
            }
        } else {
            cx.err(loc(k), "set names must be plain words");
        }
    }
    let policy_nodes: Vec<&Node> = match get("policies") {
        Some((_, v)) => cx.list(v, "policies", "[{name: web, ...}]"),
        None => Vec::new(),
    };
    let mut policy_names: Vec<Option<(String, Loc)>> = Vec::new();
    for (i, p) in policy_nodes.iter().enumerate() {
        let name = match &p.data {
            YamlData::Mapping(m) => m
                .iter()
                .find(|(k, _)| scalar(k).as_deref() == Some("name"))
                .map(|(_, v)| v),
            _ => None,
        };
        match name.and_then(|n| scalar(n).map(|s| (s, loc(n)))) {
            Some((s, at)) => {
                if declare(&mut cx, &s, at, "policy") {
                    cx.policies.insert(s.clone(), i);
                }
                policy_names.push(Some((s, at)));
            }
            None => {
                if matches!(p.data, YamlData::Mapping(_)) {
                    cx.err(loc(p), "a policy needs a `name`");
                }
                policy_names.push(None);
            }
        }
    }

    // Second pass: contents.
    let mut sets = Vec::new();
    for (k, v) in &set_nodes {
        let Some(name) = scalar(k) else { continue };
        let mut addrs = Vec::new();
        for item in cx.list(v, &format!("sets.{name}"), "[203.0.113.0/26]") {
            if let Some(s) = cx.text(item, "address") {
                match parse_net(&s) {
                    Ok(n) => addrs.push(n),
                    Err(m) => cx.err(loc(item), m),
                }
            }
        }
        sets.push(NamedSet {
            name,
            addrs,
            loc: loc(k),
        });
    }

    let dns = get("dns")
        .map(|(_, v)| dns_config(&mut cx, v))
        .unwrap_or_default();

    let l7 = get("l7")
        .map(|(_, v)| l7_config(&mut cx, v))
        .unwrap_or_default();

    let trust_image_labels = match get("trust_image_labels") {
        None => false,
        Some((_, v)) => match &v.data {
            YamlData::Value(Scalar::Boolean(b)) => *b,
            _ => {
                cx.err(
                    loc(v),
                    format!(
                        "trust_image_labels must be `true` or `false`, not `{}`",
                        scalar(v).unwrap_or_else(|| kind(v).to_string())
                    ),
                );
                false
            }
        },
    };

    let default = match get("default") {
        Some((_, v)) => body(&mut cx, v, "`default`", &[]).0,
        None if file == crate::EMBEDDED_SOURCE => Body::default(),
        None => crate::embedded_default().default,
    };

    let mut policies = Vec::new();
    for (p, name) in policy_nodes.iter().zip(policy_names) {
        if !matches!(p.data, YamlData::Mapping(_)) {
            cx.err(
                loc(p),
                format!(
                    "each policy must be a mapping with `name`, `select`, …, not {}",
                    kind(p)
                ),
            );
            continue;
        }
        let (body, extra) = body(&mut cx, p, "a policy", &["name", "select"]);
        let mut select = Selector::default();
        for (key, _, v) in extra {
            if key == "select" {
                select = selector(&mut cx, v);
            }
        }
        if let Some((name, at)) = name {
            policies.push(Policy {
                name,
                select,
                body,
                loc: at,
            });
        }
    }

    if cx.diags.is_empty() {
        Ok(PolicyFile {
            source: file.to_string(),
            version,
            sets,
            dns,
            l7,
            default,
            policies,
            trust_image_labels,
        })
    } else {
        cx.diags.sort();
        cx.diags.dedup();
        Err(cx.diags)
    }
}

/// Parses `mode`, `ingress`, `egress` and returns the entries of `extra`
/// keys for the caller.
/// `dns:`.
fn dns_config(cx: &mut Ctx, v: &Node) -> DnsConfig {
    let mut dns = DnsConfig::default();
    let keys = [
        "upstream",
        "min_ttl",
        "max_ttl",
        "max_addresses",
        "refuse_with",
        "query_rate",
        "query_burst",
        "cache",
    ];
    let mut ttl_at = None;
    for (key, _, val) in cx.entries(v, "`dns`", &keys) {
        match key.as_str() {
            "upstream" => {
                for item in cx.list(val, "upstream", "[203.0.113.53]") {
                    if let Some(s) = cx.text(item, "upstream") {
                        match s.parse::<IpAddr>() {
                            Ok(a) => dns.upstream.push(a),
                            Err(_) => cx.err(
                                loc(item),
                                format!(
                                    "`{s}` is not an IP address (dns.upstream takes addresses)"
                                ),
                            ),
                        }
                    }
                }
            }
            "min_ttl" | "max_ttl" => {
                let Some(s) = cx.text(val, &key) else {
                    continue;
                };
                match parse_duration(&s) {
                    Ok(d) if d.is_zero() || d > MAX_TTL => cx.err(
                        loc(val),
                        format!("dns.{key} must be between 1s and 7d, not `{s}`"),
                    ),
                    Ok(d) => {
                        ttl_at = Some(loc(val));
                        if key == "min_ttl" {
                            dns.min_ttl = d;
                        } else {
                            dns.max_ttl = d;
                        }
                    }
                    Err(m) => cx.err(loc(val), format!("dns.{key}: {m}")),
                }
            }
            "max_addresses" => {
                let Some(s) = cx.text(val, "max_addresses") else {
                    continue;
                };
                match s.parse::<usize>() {
                    Ok(n) if (1..=4096).contains(&n) => dns.max_addresses = n,
                    _ => cx.err(
                        loc(val),
                        format!(
                            "dns.max_addresses must be a whole number from 1 to 4096, not `{s}`"
                        ),
                    ),
                }
            }
            "query_rate" | "query_burst" | "cache" => {
                let Some(s) = cx.text(val, &key) else {
                    continue;
                };
                let off = s == "off" && key != "query_burst";
                let (lo, hi) = match key.as_str() {
                    "cache" => (0, 1_000_000),
                    _ => (1, 1_000_000),
                };
                match s.parse::<u32>() {
                    _ if off => {
                        if key == "cache" {
                            dns.cache = 0;
                        } else {
                            dns.query_rate = None;
                        }
                    }
                    Ok(n) if (lo..=hi).contains(&n) => match key.as_str() {
                        "cache" => dns.cache = n as usize,
                        "query_rate" => dns.query_rate = Some(n),
                        _ => dns.query_burst = n,
                    },
                    _ => {
                        let or_off = if key == "query_burst" {
                            ""
                        } else {
                            " or `off`"
                        };
                        cx.err(
                            loc(val),
                            format!(
                                "dns.{key} must be a whole number from {lo} to {hi}{or_off}, not `{s}`"
                            ),
                        )
                    }
                }
            }
            _ => {
                let Some(s) = cx.text(val, "refuse_with") else {
                    continue;
                };
                match s.as_str() {
                    "refused" => dns.nxdomain = false,
                    "nxdomain" => dns.nxdomain = true,
                    _ => cx.err(
                        loc(val),
                        format!("dns.refuse_with must be `refused` or `nxdomain`, not `{s}`"),
                    ),
                }
            }
        }
    }
    if let Some(at) = ttl_at {
        if dns.min_ttl > dns.max_ttl {
            cx.err(
                at,
                format!(
                    "dns.min_ttl ({}s) is longer than dns.max_ttl ({}s)",
                    dns.min_ttl.as_secs(),
                    dns.max_ttl.as_secs()
                ),
            );
        }
    }
    dns
}

/// `l7:`.
fn l7_config(cx: &mut Ctx, v: &Node) -> L7Config {
    let mut l7 = L7Config::default();
    for (_, _, val) in cx.entries(v, "`l7`", &["max_connections_per_container"]) {
        let Some(s) = cx.text(val, "max_connections_per_container") else {
            continue;
        };
        match s.parse::<usize>() {
            Ok(n) if (1..=L7Config::MAX_PER_CONTAINER).contains(&n) => {
                l7.max_connections_per_container = n
            }
            _ => cx.err(
                loc(val),
                format!(
                    "l7.max_connections_per_container must be a whole number from 1 to {}, not `{s}`",
                    L7Config::MAX_PER_CONTAINER
                ),
            ),
        }
    }
    l7
}

/// The longest `dns.max_ttl`.
const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A duration: whole seconds (`30`) or a number with a unit (`30s`, `5m`,
/// `1h`, `1d`).
/// A duration in humantime's syntax (`30s`, `5m`, `1h30m`, `1d`); a bare
/// number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration; write e.g. `30s`, `5m`, `1h30m` or `1d`");
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    humantime::parse_duration(s).map_err(|_| bad())
}

fn body<'n, 'a>(
    cx: &mut Ctx,
    n: &'n Node<'a>,
    what: &str,
    extra: &[&str],
) -> (Body, Vec<(String, &'n Node<'a>, &'n Node<'a>)>) {
    let mut allowed = extra.to_vec();
    allowed.extend(["mode", "ingress", "egress"]);
    let mut b = Body::default();
    let mut rest = Vec::new();
    for (key, k, v) in cx.entries(n, what, &allowed) {
        match key.as_str() {
            "mode" => match scalar(v).as_deref() {
                Some("enforce") => b.mode = Mode::Enforce,
                Some("audit") => b.mode = Mode::Audit,
                other => cx.err(
                    loc(v),
                    format!(
                        "`mode` is `enforce` or `audit`, not `{}`",
                        other.unwrap_or(kind(v))
                    ),
                ),
            },
            "egress" => b.egress = rules(cx, v, false),
            "ingress" => b.ingress = Some(rules(cx, v, true)),
            _ => rest.push((key, k, v)),
        }
    }
    (b, rest)
}

fn rules(cx: &mut Ctx, n: &Node, ingress: bool) -> Vec<Rule> {
    let (list_key, want, other) = if ingress {
        ("ingress", "from", "to")
    } else {
        ("egress", "to", "from")
    };
    let mut out = Vec::new();
    let example = format!("[{{{want}: [internet], ports: [443/tcp]}}]");
    for item in cx.list(n, list_key, &example) {
        if !matches!(item.data, YamlData::Mapping(_)) {
            cx.err(loc(item), format!("each {list_key} rule is a mapping like `{{{want}: [...], ports: [...]}}`, not {}", kind(item)));
            continue;
        }
        let mut peers = Vec::new();
        let mut peer_locs = Vec::new();
        let mut ports = Vec::new();
        let mut port_locs = Vec::new();
        let mut ports_at = None;
        let mut server_name = None;
        let mut saw_peers = false;
        let YamlData::Mapping(map) = &item.data else {
            continue;
        };
        for (k, v) in map {
            let key = scalar(k).unwrap_or_default();
            if key == want {
                saw_peers = true;
                let words = cx.list(v, want, "[internet]");
                if words.is_empty()
                    && matches!(
                        v.data,
                        YamlData::Sequence(_) | YamlData::Value(Scalar::Null)
                    )
                {
                    cx.err(loc(v), format!("`{want}` needs at least one word; to allow nothing, leave the rule out"));
                }
                for w in words {
                    let Some(s) = cx.text(w, want) else { continue };
                    let sets = &cx.sets;
                    let policies = &cx.policies;
                    match parse_peer(
                        &s,
                        ingress,
                        |x| sets.contains_key(x),
                        |x| policies.contains_key(x),
                    ) {
                        Ok(p) => {
                            if !peers.contains(&p) {
                                peers.push(p.clone());
                                peer_locs.push((p, loc(w)));
                            }
                        }
                        Err(m) => cx.err(loc(w), m),
                    }
                }
            } else if key == other {
                saw_peers = true;
                cx.err(
                    loc(k),
                    format!("{list_key} rules use `{want}:`, not `{other}:`"),
                );
            } else if key == "ports" {
                ports_at = Some(loc(k));
                if matches!(&v.data, YamlData::Sequence(items) if items.is_empty()) {
                    cx.err(loc(v), "`ports: []` would allow nothing; leave `ports` out to allow every port, or remove the rule");
                }
                for p in cx.list(v, "ports", "[443/tcp]") {
                    let Some(s) = cx.text(p, "ports") else {
                        continue;
                    };
                    match parse_port(&s) {
                        Ok(spec) => {
                            ports.push(spec);
                            port_locs.push((spec, loc(p)));
                        }
                        Err(m) => cx.err(loc(p), m),
                    }
                }
            } else if key == "match" && ingress {
                cx.err(
                    loc(k),
                    "`match` applies to egress rules only: a server name is what a container asks for, not where a connection comes from",
                );
            } else if key == "match" {
                match scalar(v).as_deref() {
                    Some("server-name") => server_name = Some(loc(k)),
                    other => cx.err(
                        loc(v),
                        format!(
                            "`match` is `server-name` (the only kind so far), not `{}`",
                            other.unwrap_or(kind(v))
                        ),
                    ),
                }
            } else {
                let keys = if ingress {
                    format!("{want}, ports")
                } else {
                    format!("{want}, ports, match")
                };
                cx.err(
                    loc(k),
                    format!("unknown key `{key}` in an {list_key} rule; expected one of: {keys}"),
                );
            }
        }
        if !saw_peers {
            cx.err(loc(item), format!("an {list_key} rule needs `{want}:`"));
        }
        if let Some(at) = server_name {
            server_name_rule(cx, at, &peer_locs, &port_locs, ports_at);
        }
        if !peers.is_empty() {
            out.push(Rule {
                peers,
                ports,
                server_name: server_name.is_some(),
                loc: loc(item),
            });
        }
    }
    out
}

/// The checks of a rule with `match: server-name` (at `at`): only DNS
/// names (an address has no server name), and only TCP ports, given
/// explicitly (the name is read from the first bytes of a TCP connection;
/// QUIC to such a rule is dropped).
fn server_name_rule(
    cx: &mut Ctx,
    at: Loc,
    peers: &[(Peer, Loc)],
    ports: &[(PortSpec, Loc)],
    ports_at: Option<Loc>,
) {
    // Every word that is not a name is reported; with no word at all, `to:`
    // itself already was.
    for (p, l) in peers {
        if !matches!(p, Peer::Dns(_) | Peer::DnsWildcard(_)) {
            cx.err(
                *l,
                format!("`{p}` is not a DNS name: a rule with `match: server-name` names only DNS names (an address has no server name to check); put `{p}` in a rule of its own"),
            );
        }
    }
    if ports_at.is_none() {
        cx.err(
            at,
            "`match: server-name` needs `ports:` with TCP ports, e.g. `ports: [443/tcp, 80/tcp]`",
        );
    }
    for (spec, l) in ports {
        if !matches!(spec, PortSpec::Tcp(..)) {
            cx.err(
                *l,
                format!("`{spec}`: a rule with `match: server-name` takes TCP ports only (the name is read from a TCP connection's first bytes; QUIC, 443/udp, to its addresses is dropped so that clients fall back to TCP)"),
            );
        }
    }
}

fn selector(cx: &mut Ctx, n: &Node) -> Selector {
    let mut s = Selector::default();
    for (key, _, v) in cx.entries(n, "`select`", &["label", "name", "image", "compose"]) {
        match key.as_str() {
            "label" => {
                let mut labels = BTreeMap::new();
                if !matches!(v.data, YamlData::Mapping(_)) {
                    cx.err(
                        loc(v),
                        format!(
                            "`label` must be a mapping like `{{app: web}}`, not {}",
                            kind(v)
                        ),
                    );
                }
                for (k, _, lv) in label_entries(v) {
                    if let Some(val) = cx.text(lv, "label value") {
                        labels.insert(k, val);
                    }
                }
                s.labels = labels;
            }
            "name" | "image" => {
                if let Some(g) = cx.text(v, &key) {
                    if g.is_empty() {
                        cx.err(loc(v), format!("`{key}` needs a glob, e.g. `web-*`"));
                    } else if key == "name" {
                        s.name = Some(g.trim_start_matches('/').to_string());
                    } else {
                        s.image = Some(g);
                    }
                }
            }
            _ => {
                for (ck, _, cv) in cx.entries(v, "`select.compose`", &["project", "service"]) {
                    let val = cx.text(cv, &ck);
                    if ck == "project" {
                        s.compose_project = val;
                    } else {
                        s.compose_service = val;
                    }
                }
            }
        }
    }
    s
}

/// All entries of a label mapping (any key is allowed there).
fn label_entries<'n, 'a>(n: &'n Node<'a>) -> Vec<(String, &'n Node<'a>, &'n Node<'a>)> {
    match &n.data {
        YamlData::Mapping(m) => m
            .iter()
            .filter_map(|(k, v)| scalar(k).map(|s| (s, k, v)))
            .collect(),
        _ => Vec::new(),
    }
}
