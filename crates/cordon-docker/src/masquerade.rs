//! Does Docker masquerade its bridge networks itself?
//!
//! A dockerd started with `--iptables=false` (or `"iptables": false` in its
//! `daemon.json`) installs no NAT, so its containers cannot reach anything
//! beyond the host; cordon then masquerades their IPv4 traffic itself (see
//! `docs/iptables-false.md`). Docker's API does not report the setting, so
//! it is read from the daemon's command line and `daemon.json`, as
//! [`crate::dockerd`] finds them. A command-line flag wins over the file;
//! neither means Docker's default (`true`).
//!
//! `--ip-masq=false` (`"ip-masq": false`) means the operator wants no
//! masquerading at all, and cordon adds none either. When the daemon cannot
//! be identified, cordon assumes Docker's default (it manages iptables) and
//! masquerades nothing: it never adds NAT it is not sure is missing.

use std::collections::HashMap;

use bollard::Docker;

use crate::dockerd::{self, parse_bool, FileSettings, Flags};

/// The network option that turns Docker's masquerading of one bridge
/// network off.
pub const MASQUERADE_OPTION: &str = "com.docker.network.bridge.enable_ip_masquerade";

/// The NAT-related settings of one dockerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatSettings {
    /// `--iptables`: Docker installs its own iptables rules, NAT included.
    pub iptables: bool,
    /// `--ip-masq`: masquerading is wanted at all.
    pub ip_masq: bool,
}

impl Default for NatSettings {
    fn default() -> Self {
        NatSettings {
            iptables: true,
            ip_masq: true,
        }
    }
}

impl NatSettings {
    /// True when cordon must masquerade for this daemon: it installs no
    /// NAT, yet masquerading is wanted.
    pub fn cordon_masquerades(self) -> bool {
        !self.iptables && self.ip_masq
    }
}

/// The effective settings: a flag wins over the file, either over
/// Docker's default.
pub fn effective(flags: &Flags, file: &FileSettings) -> NatSettings {
    let d = NatSettings::default();
    NatSettings {
        iptables: flags.iptables.or(file.iptables).unwrap_or(d.iptables),
        ip_masq: flags.ip_masq.or(file.ip_masq).unwrap_or(d.ip_masq),
    }
}

/// Whether one bridge network needs cordon's masquerading, given whether
/// its daemon needs it at all: never for other drivers or `internal`
/// networks, nor when the network's own
/// `com.docker.network.bridge.enable_ip_masquerade` is false.
pub fn network_masquerade(
    cordon_masquerades: bool,
    driver: &str,
    internal: bool,
    options: Option<&HashMap<String, String>>,
) -> bool {
    let enabled = options
        .and_then(|o| o.get(MASQUERADE_OPTION))
        .and_then(|v| parse_bool(v.trim()))
        .unwrap_or(true);
    cordon_masquerades && driver == "bridge" && !internal && enabled
}

/// Finds the settings of the daemon `docker` talks to (see the module
/// documentation). `Err` says, in one line, why they could not be known.
pub async fn detect(docker: &Docker) -> Result<NatSettings, String> {
    let d = dockerd::find(docker).await?;
    let s = effective(&d.flags, &d.file);
    tracing::debug!(
        pid = d.pid,
        iptables = s.iptables,
        ip_masq = s.ip_masq,
        "dockerd settings"
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_wins_over_the_file() {
        let file = FileSettings {
            iptables: Some(false),
            ..Default::default()
        };
        assert!(effective(&Flags::default(), &file).cordon_masquerades());
        let flags = Flags {
            iptables: Some(true),
            ..Default::default()
        };
        assert!(!effective(&flags, &file).cordon_masquerades());
        assert_eq!(
            effective(&Flags::default(), &FileSettings::default()),
            NatSettings::default()
        );
        assert!(!NatSettings::default().cordon_masquerades());
        let no_masq = Flags {
            iptables: Some(false),
            ip_masq: Some(false),
            ..Default::default()
        };
        assert!(!effective(&no_masq, &FileSettings::default()).cordon_masquerades());
    }

    #[test]
    fn per_network_masquerade() {
        let off: HashMap<String, String> =
            [(MASQUERADE_OPTION.to_string(), "false".to_string())].into();
        let on: HashMap<String, String> =
            [(MASQUERADE_OPTION.to_string(), "true".to_string())].into();
        assert!(network_masquerade(true, "bridge", false, None));
        assert!(network_masquerade(true, "bridge", false, Some(&on)));
        assert!(!network_masquerade(true, "bridge", false, Some(&off)));
        assert!(!network_masquerade(true, "bridge", true, None), "internal");
        assert!(!network_masquerade(true, "macvlan", false, None));
        assert!(!network_masquerade(false, "bridge", false, None));
    }
}
