//! Probe targets: `203.0.113.5:80/tcp`, `203.0.113.5:53/udp`,
//! `203.0.113.5/icmp`, `[2001:db8::5]:80/tcp`, in the spirit of the policy
//! language's ports (`443/tcp`). Without a protocol, `ADDR:PORT` means TCP.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use cordon_compiler::evaluate::{Flow, Proto};

/// One thing to probe: a destination address, a protocol and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(pub Flow);

/// Why a target does not parse (the message names the fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target {text:?} is malformed: {why}; write ADDR:PORT/tcp, ADDR:PORT/udp, ADDR/icmp or [IPV6]:PORT/tcp")]
pub struct TargetError {
    /// The target as given.
    pub text: String,
    /// What is wrong.
    pub why: String,
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Target, TargetError> {
        let err = |why: &str| TargetError {
            text: s.to_string(),
            why: why.to_string(),
        };
        // No protocol means TCP, as for nc and curl.
        let (rest, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            _ => return Err(err("the protocol must be tcp, udp or icmp")),
        };
        let addr = |a: &str| -> Result<IpAddr, TargetError> {
            a.parse()
                .map_err(|_| err("not an IP address (verify never resolves names)"))
        };
        if proto == Proto::Icmp {
            let bare = rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(rest);
            return Ok(Target(Flow {
                dst: addr(bare)?,
                proto,
                port: 0,
            }));
        }
        let inner = rest.strip_prefix('[');
        let split = match inner {
            Some(r) => r.split_once("]:"),
            None => rest.rsplit_once(':'),
        };
        let (host, port) = split.ok_or_else(|| {
            err(match inner {
                Some(_) => "an IPv6 address in brackets needs :PORT",
                None => "no port (ADDR:PORT)",
            })
        })?;
        let host = addr(host)?;
        match (inner.is_some(), host.is_ipv6()) {
            (true, false) => return Err(err("brackets are for IPv6 addresses")),
            (false, true) => return Err(err("put an IPv6 address in brackets: [ADDR]:PORT")),
            _ => {}
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| err("the port must be 1-65535"))?;
        Ok(Target(Flow {
            dst: host,
            proto,
            port,
        }))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Flow { dst, proto, port } = self.0;
        match (proto, dst) {
            (Proto::Icmp, _) => write!(f, "{dst}/icmp"),
            (_, IpAddr::V4(a)) => write!(f, "{a}:{port}/{proto}"),
            (_, IpAddr::V6(a)) => write!(f, "[{a}]:{port}/{proto}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        for t in [
            "203.0.113.5:80/tcp",
            "203.0.113.5:53/udp",
            "203.0.113.5/icmp",
            "[2001:db8::5]:80/tcp",
            "2001:db8::5/icmp",
        ] {
            let parsed: Target = t.parse().expect(t);
            assert_eq!(parsed.to_string(), t);
        }
        let t: Target = "[2001:db8::5]/icmp".parse().unwrap();
        assert_eq!(t.to_string(), "2001:db8::5/icmp");
    }

    #[test]
    fn no_protocol_means_tcp() {
        let t: Target = "198.51.100.10:80".parse().unwrap();
        assert_eq!(t.to_string(), "198.51.100.10:80/tcp");
        let t: Target = "[2001:db8::5]:443".parse().unwrap();
        assert_eq!(t.to_string(), "[2001:db8::5]:443/tcp");
    }

    #[test]
    fn malformed_targets_say_what_is_wrong() {
        for (t, why) in [
            ("203.0.113.5", "no port"),
            ("203.0.113.5:80/sctp", "tcp, udp or icmp"),
            ("example.com:80/tcp", "never resolves names"),
            ("203.0.113.5/tcp", "no port"),
            ("203.0.113.5:0/tcp", "1-65535"),
            ("203.0.113.5:70000/tcp", "1-65535"),
            ("2001:db8::5:80/tcp", "brackets"),
            ("[203.0.113.5]:80/tcp", "brackets are for IPv6"),
        ] {
            let e = t.parse::<Target>().expect_err(t);
            assert!(e.why.contains(why), "{t}: {e}");
            assert!(e.to_string().contains(t), "{e}");
        }
    }
}
