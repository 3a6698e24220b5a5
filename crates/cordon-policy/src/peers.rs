//! The words of `to:` / `from:` lists, addresses and ports.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ast::{Peer, PortSpec};

/// Words with a fixed meaning; they cannot name a set or a policy.
pub const RESERVED: [&str; 7] = [
    "internet",
    "private",
    "metadata",
    "host",
    "same-network",
    "any",
    "default",
];

/// Names cordon's logs and counters use for its own fail-closed rules
/// (`cordon egress unknown-source drop`, the `unknown` label of a
/// container whose policy label names no policy). A set or a policy named
/// like one would read back as the built-in rule, so they are refused too.
pub const RESERVED_NAMES: [&str; 5] = [
    "unknown",
    "unknown-source",
    "unknown-destination",
    "unbound-bridge",
    "l7-direct",
];

/// Parses an address or CIDR; an address becomes a /32 or /128.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| format!("`{s}` is not a valid CIDR"))?;
        if net.trunc() != net {
            return Err(format!(
                "`{s}` has host bits set; did you mean `{}`?",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{s}` is not a valid IP address"))
}

fn looks_numeric(s: &str) -> bool {
    s.split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
}

/// Checks a DNS name (without a leading `*.`) and lower-cases it.
fn dns_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(format!("`{s}` is not a valid DNS name"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("`{s}` is not a valid DNS name"));
        }
    }
    Ok(name)
}

/// Parses one word of `to:` (`ingress = false`) or `from:`.
/// `is_set` / `is_policy` resolve bare names.
pub fn parse_peer(
    word: &str,
    ingress: bool,
    is_set: impl Fn(&str) -> bool,
    is_policy: impl Fn(&str) -> bool,
) -> Result<Peer, String> {
    let fixed = match word {
        "internet" => Some(Peer::Internet),
        "private" => Some(Peer::Private),
        "metadata" => Some(Peer::Metadata),
        "host" => Some(Peer::Host),
        "same-network" => Some(Peer::SameNetwork),
        "any" => Some(Peer::Any),
        _ => None,
    };
    if let Some(p) = fixed {
        return Ok(p);
    }
    let dns_in_from = || {
        format!(
            "`{word}`: a DNS name cannot be a source; use a set, an address or a CIDR in `from:`"
        )
    };
    if word.contains('/') || word.contains(':') || looks_numeric(word) {
        return parse_net(word).map(Peer::Net);
    }
    if let Some(suffix) = word.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(format!(
                "`{word}`: only one leading `*.` is allowed in a DNS wildcard"
            ));
        }
        let name = dns_name(suffix)?;
        if ingress {
            return Err(dns_in_from());
        }
        return Ok(Peer::DnsWildcard(name));
    }
    if word.contains('*') {
        return Err(format!(
            "`{word}`: a DNS wildcard must start with `*.`, e.g. `*.example.org`"
        ));
    }
    if word.contains('.') {
        let name = dns_name(word)?;
        if ingress {
            return Err(dns_in_from());
        }
        return Ok(Peer::Dns(name));
    }
    if is_set(word) {
        return Ok(Peer::Set(word.to_string()));
    }
    if is_policy(word) {
        return Ok(Peer::Policy(word.to_string()));
    }
    Err(format!(
        "unknown set or policy `{word}` (words: internet, private, metadata, host, same-network, any)"
    ))
}

/// Parses one element of `ports:`.
pub fn parse_port(s: &str) -> Result<PortSpec, String> {
    let lower = s.trim().to_ascii_lowercase();
    if lower == "icmp" {
        return Ok(PortSpec::Icmp);
    }
    let Some((range, proto)) = lower.split_once('/') else {
        if lower.chars().all(|c| c.is_ascii_digit() || c == '-') && !lower.is_empty() {
            return Err(format!(
                "port `{s}` needs a protocol, e.g. `{s}/tcp` or `{s}/udp`"
            ));
        }
        return Err(format!(
            "`{s}` is not a port; write `443/tcp`, `53/udp`, `8000-8100/tcp` or `icmp`"
        ));
    };
    if proto == "icmp" || range == "icmp" {
        return Err(format!("`{s}`: icmp takes no port; write `icmp`"));
    }
    let num = |p: &str| -> Result<u16, String> {
        let n: u32 = p.parse().map_err(|_| {
            format!("`{s}` is not a port; write `443/tcp`, `53/udp`, `8000-8100/tcp` or `icmp`")
        })?;
        if n == 0 || n > 65535 {
            return Err(format!("port `{p}` in `{s}` is out of range 1-65535"));
        }
        Ok(n as u16)
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(range)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!(
            "port range `{s}` is reversed; write `{hi}-{lo}/{proto}`"
        ));
    }
    match proto {
        "tcp" => Ok(PortSpec::Tcp(lo, hi)),
        "udp" => Ok(PortSpec::Udp(lo, hi)),
        other => Err(format!(
            "unknown protocol `{other}` in `{s}` (tcp, udp or icmp)"
        )),
    }
}

/// True for a valid set or policy name: `[a-z][a-z0-9_-]{0,31}`.
pub fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(w: &str) -> Result<Peer, String> {
        parse_peer(w, false, |s| s == "office", |p| p == "db")
    }

    #[test]
    fn words() {
        assert_eq!(peer("internet"), Ok(Peer::Internet));
        assert_eq!(peer("office"), Ok(Peer::Set("office".into())));
        assert_eq!(peer("db"), Ok(Peer::Policy("db".into())));
        assert_eq!(
            peer("10.0.0.1"),
            Ok(Peer::Net("10.0.0.1/32".parse().unwrap()))
        );
        assert_eq!(
            peer("2001:db8::/32"),
            Ok(Peer::Net("2001:db8::/32".parse().unwrap()))
        );
        assert_eq!(
            peer("API.Example.com."),
            Ok(Peer::Dns("api.example.com".into()))
        );
        assert_eq!(
            peer("*.example.org"),
            Ok(Peer::DnsWildcard("example.org".into()))
        );
        assert!(peer("offcie")
            .unwrap_err()
            .contains("unknown set or policy `offcie`"));
        assert!(peer("10.0.0.1/8")
            .unwrap_err()
            .contains("did you mean `10.0.0.0/8`"));
        assert!(peer("10.0.0.300")
            .unwrap_err()
            .contains("not a valid IP address"));
        assert!(peer("*").unwrap_err().contains("must start with `*.`"));
        assert!(peer("*.*.x").unwrap_err().contains("only one leading"));
        assert!(parse_peer("a.example", true, |_| false, |_| false)
            .unwrap_err()
            .contains("cannot be a source"));
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("443/tcp"), Ok(PortSpec::Tcp(443, 443)));
        assert_eq!(parse_port("53/UDP"), Ok(PortSpec::Udp(53, 53)));
        assert_eq!(parse_port("8000-8100/tcp"), Ok(PortSpec::Tcp(8000, 8100)));
        assert_eq!(parse_port("icmp"), Ok(PortSpec::Icmp));
        assert!(parse_port("22").unwrap_err().contains("needs a protocol"));
        assert!(parse_port("0/tcp").unwrap_err().contains("out of range"));
        assert!(parse_port("70000/tcp")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_port("9-1/tcp").unwrap_err().contains("reversed"));
        assert!(parse_port("22/sctpx")
            .unwrap_err()
            .contains("unknown protocol"));
        assert!(parse_port("icmp/8")
            .unwrap_err()
            .contains("icmp takes no port"));
        assert!(parse_port("http").unwrap_err().contains("is not a port"));
    }

    #[test]
    fn names() {
        assert!(valid_name("office"));
        assert!(valid_name("a-b_c9"));
        assert!(!valid_name("Office"));
        assert!(!valid_name("9lives"));
        assert!(!valid_name(&"a".repeat(33)));
    }
}
