//! CIS section 2: Docker daemon configuration. The configured value comes
//! from the daemon's command line and `daemon.json`; the value in effect
//! from `/info`, the default bridge network and the process table.

use super::{automated, by_hand, manual_with, Check, Meta};
use crate::facts::Facts;
use crate::flags::{DaemonConfig, Setting};
use crate::model::{Object, Outcome, Severity, Status};

/// The configuration in words: `false (flag --icc)`, or `unset` when
/// neither the flags nor the file set it.
fn configured(c: Option<&DaemonConfig>, names: &[&str], key: &str) -> (Option<Setting>, String) {
    match c {
        None => (None, "unknown (dockerd not identified)".into()),
        Some(c) => match c.get(names, key) {
            Some(s) => {
                let text = format!("{} ({})", s.value, s.source);
                (Some(s), text)
            }
            None => (None, "unset (Docker's default)".into()),
        },
    }
}

fn boolean(c: Option<&DaemonConfig>, names: &[&str], key: &str, default: bool) -> (bool, String) {
    match c.and_then(|c| c.boolean(names, key)) {
        Some((b, src)) => (b, format!("{b} ({src})")),
        None if c.is_none() => (
            default,
            format!("unknown, assuming Docker's default {default}"),
        ),
        None => (default, format!("unset (Docker's default {default})")),
    }
}

/// A check that a boolean daemon setting (Docker's `default` when unset)
/// is true; configured only, `/info` does not report it.
fn flag_must_be_true(f: &Facts, flag: &str, key: &str, default: bool) -> Outcome {
    let (on, conf) = boolean(f.daemon.as_ref(), &[flag], key, default);
    Outcome::verdict(Object::daemon(), on, format!("{key} {conf}"))
}

/// An automated check of the daemon.
fn daemon(severity: Severity, m: Meta, judge: fn(&Facts) -> Outcome) -> Check {
    automated(2, severity, m, move |f: &Facts| vec![judge(f)])
}

fn security_options(f: &Facts) -> Vec<String> {
    f.info.security_options.clone().unwrap_or_default()
}

/// True when `/info` reports seccomp enabled: `name=seccomp,profile=…`
/// with any profile but `unconfined` (`builtin` and `default` count).
pub fn daemon_seccomp(f: &Facts) -> Option<String> {
    security_options(f)
        .into_iter()
        .find(|o| o.split(',').any(|p| p == "name=seccomp"))
        .filter(|o| !o.contains("profile=unconfined"))
}

/// Section 2's checks.
pub fn checks() -> Vec<Check> {
    vec![
        manual_with(
            2,
            Meta {
                id: "2.1",
                title: "Run the Docker daemon as a non-root user, if possible",
                source: "/info SecurityOptions (name=rootless)",
                remediation: "run Docker in rootless mode (dockerd-rootless-setuptool.sh install)",
            },
            rootless,
        ),
        daemon(
            Severity::Medium,
            Meta {
                id: "2.2",
                title: "Ensure network traffic is restricted between containers on the default bridge",
                source: "--icc / \"icc\"; in effect: /networks/bridge option com.docker.network.bridge.enable_icc",
                remediation: "dockerd --icc=false (\"icc\": false in daemon.json), or use cordon policies",
            },
            icc,
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.3",
                title: "Ensure the logging level is set to 'info'",
                source: "--log-level / \"log-level\"; in effect: /info Debug",
                remediation: "dockerd --log-level=info (\"log-level\": \"info\")",
            },
            log_level,
        ),
        daemon(
            Severity::Medium,
            Meta {
                id: "2.4",
                title: "Ensure Docker is allowed to make changes to iptables",
                source: "--iptables / \"iptables\"",
                remediation: "remove --iptables=false (\"iptables\": false); cordon masquerades for such daemons but Docker's isolation rules are missing",
            },
            |f| flag_must_be_true(f, "--iptables", "iptables", true),
        ),
        daemon(
            Severity::Medium,
            Meta {
                id: "2.5",
                title: "Ensure insecure registries are not used",
                source: "--insecure-registry / \"insecure-registries\"; in effect: /info RegistryConfig",
                remediation: "remove --insecure-registry (\"insecure-registries\") and use TLS registries",
            },
            insecure_registries,
        ),
        daemon(
            Severity::Medium,
            Meta {
                id: "2.6",
                title: "Ensure aufs storage driver is not used",
                source: "/info Driver",
                remediation: "dockerd --storage-driver=overlay2",
            },
            |f| {
                let d = f.info.driver.clone().unwrap_or_default();
                Outcome::verdict(Object::daemon(), d != "aufs", format!("storage driver {d}"))
            },
        ),
        daemon(
            Severity::Critical,
            Meta {
                id: "2.7",
                title: "Ensure TLS authentication for Docker daemon is configured",
                source: "-H / \"hosts\", --tlsverify / \"tlsverify\"",
                remediation: "listen on TCP only with --tlsverify --tlscacert --tlscert --tlskey, or only on the unix socket",
            },
            tls,
        ),
        by_hand(
            2,
            "2.8",
            "Ensure the default ulimit is configured appropriately",
            "--default-ulimit",
            "dockerd --default-ulimit nofile=1024:4096 where needed",
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.9",
                title: "Enable user namespace support",
                source: "--userns-remap / \"userns-remap\"; in effect: /info SecurityOptions name=userns",
                remediation: "dockerd --userns-remap=default",
            },
            userns,
        ),
        by_hand(
            2,
            "2.10",
            "Ensure the default cgroup usage has been confirmed",
            "--cgroup-parent",
            "leave --cgroup-parent at its default unless needed",
        ),
        by_hand(
            2,
            "2.11",
            "Ensure base device size is not changed until needed",
            "--storage-opt dm.basesize",
            "do not set dm.basesize unless needed",
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.12",
                title: "Ensure that authorization for Docker client commands is enabled",
                source: "--authorization-plugin / \"authorization-plugins\"; in effect: /info Plugins.Authorization",
                remediation: "dockerd --authorization-plugin=PLUGIN",
            },
            authorization,
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.13",
                title: "Ensure centralized and remote logging is configured",
                source: "--log-driver / \"log-driver\"; in effect: /info LoggingDriver",
                remediation: "dockerd --log-driver=syslog (or journald, fluentd, gelf …) with a remote collector",
            },
            remote_logging,
        ),
        daemon(
            Severity::Medium,
            Meta {
                id: "2.14",
                title: "Ensure containers are restricted from acquiring new privileges",
                source: "--no-new-privileges / \"no-new-privileges\"",
                remediation: "dockerd --no-new-privileges (\"no-new-privileges\": true)",
            },
            |f| flag_must_be_true(f, "--no-new-privileges", "no-new-privileges", false),
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.15",
                title: "Ensure live restore is enabled",
                source: "--live-restore / \"live-restore\"; in effect: /info LiveRestoreEnabled",
                remediation: "dockerd --live-restore (\"live-restore\": true)",
            },
            |f| {
                let eff = f.info.live_restore_enabled.unwrap_or(false);
                compared_flag(f, "--live-restore", "live-restore", eff, "LiveRestoreEnabled", true)
            },
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.16",
                title: "Ensure Userland Proxy is Disabled",
                source: "--userland-proxy / \"userland-proxy\"; in effect: docker-proxy processes in /proc",
                remediation: "dockerd --userland-proxy=false (\"userland-proxy\": false)",
            },
            userland_proxy,
        ),
        daemon(
            Severity::High,
            Meta {
                id: "2.17",
                title: "Ensure that a daemon-wide custom seccomp profile is applied if appropriate",
                source: "--seccomp-profile / \"seccomp-profile\"; in effect: /info SecurityOptions name=seccomp",
                remediation: "do not set --seccomp-profile=unconfined; keep the default profile or a stricter one",
            },
            seccomp,
        ),
        daemon(
            Severity::Low,
            Meta {
                id: "2.18",
                title: "Ensure that experimental features are not implemented in production",
                source: "--experimental / \"experimental\"; in effect: /info ExperimentalBuild",
                remediation: "remove --experimental (\"experimental\": true)",
            },
            |f| {
                let eff = f.info.experimental_build.unwrap_or(false);
                compared_flag(f, "--experimental", "experimental", eff, "ExperimentalBuild", false)
            },
        ),
    ]
}

/// A boolean setting compared with `/info`'s `field` (`eff`): passes when
/// the value in effect is `good`.
fn compared_flag(f: &Facts, flag: &str, key: &str, eff: bool, field: &str, good: bool) -> Outcome {
    let (want, conf) = boolean(f.daemon.as_ref(), &[flag], key, false);
    let mismatch = f.daemon.is_some() && want != eff;
    Outcome::verdict(Object::daemon(), eff == good, format!("{key} {eff}")).compare(
        conf,
        format!("{field}={eff}"),
        mismatch,
    )
}

fn rootless(f: &Facts) -> String {
    if security_options(f)
        .iter()
        .any(|o| o.contains("name=rootless"))
    {
        "the daemon runs rootless".into()
    } else {
        "the daemon runs as root".into()
    }
}

fn icc(f: &Facts) -> Outcome {
    let (want, conf) = boolean(f.daemon.as_ref(), &["--icc"], "icc", true);
    let eff = f
        .default_bridge
        .as_ref()
        .and_then(|n| n.options.as_ref())
        .and_then(|o| o.get("com.docker.network.bridge.enable_icc").cloned());
    let on = eff.as_deref().map_or(want, |v| v != "false");
    let ev = if on {
        "containers on the default bridge can talk to each other"
    } else {
        "inter-container traffic on the default bridge is off"
    };
    let mismatch = f.daemon.is_some() && eff.is_some() && on != want;
    let shown = eff.map_or("unknown (no default bridge)".into(), |v| {
        format!("enable_icc={v}")
    });
    Outcome::verdict(Object::daemon(), !on, ev).compare(conf, shown, mismatch)
}

fn log_level(f: &Facts) -> Outcome {
    let d = f.daemon.as_ref();
    let (set, conf) = configured(d, &["--log-level", "-l"], "log-level");
    let debug_flag = d
        .and_then(|c| c.boolean(&["-D", "--debug"], "debug"))
        .is_some_and(|b| b.0);
    let level = match set {
        Some(s) => s.value,
        None if debug_flag => "debug".into(),
        None => "info".into(),
    };
    let debug = f.info.debug.unwrap_or(false);
    let ok = level == "info" && !debug;
    let mismatch = d.is_some() && (level == "debug") != debug;
    Outcome::verdict(Object::daemon(), ok, format!("log level {level}")).compare(
        conf,
        format!("Debug={debug}"),
        mismatch,
    )
}

fn insecure_registries(f: &Facts) -> Outcome {
    let reg = f.info.registry_config.clone().unwrap_or_default();
    let mut insecure: Vec<String> = reg
        .insecure_registry_cidrs
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c != "127.0.0.0/8" && c != "::1/128")
        .collect();
    insecure.extend(
        reg.index_configs
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, i)| i.secure == Some(false))
            .map(|(k, _)| k),
    );
    insecure.sort();
    insecure.dedup();
    let conf: Vec<String> = f
        .daemon
        .iter()
        .flat_map(|c| c.all(&["--insecure-registry"], "insecure-registries"))
        .map(|s| s.value)
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let eff = list(&insecure);
    Outcome::verdict(
        Object::daemon(),
        insecure.is_empty(),
        format!("insecure registries: {eff}"),
    )
    .compare(list(&conf), eff, false)
}

fn tls(f: &Facts) -> Outcome {
    let Some(c) = f.daemon.as_ref() else {
        let why = "dockerd not identified: listen addresses unknown";
        return Outcome::new(Object::daemon(), Status::NotApplicable, why);
    };
    let tcp: Vec<String> = c
        .all(&["-H", "--host"], "hosts")
        .into_iter()
        .map(|s| s.value)
        .filter(|h| h.starts_with("tcp://"))
        .collect();
    if tcp.is_empty() {
        let why = "the daemon listens on no TCP address";
        return Outcome::new(Object::daemon(), Status::NotApplicable, why);
    }
    let verify = c
        .boolean(&["--tlsverify"], "tlsverify")
        .is_some_and(|b| b.0);
    let ev = format!("listens on {} with tlsverify={verify}", tcp.join(", "));
    Outcome::verdict(Object::daemon(), verify, ev)
}

fn userns(f: &Facts) -> Outcome {
    let (set, conf) = configured(f.daemon.as_ref(), &["--userns-remap"], "userns-remap");
    let on = security_options(f)
        .iter()
        .any(|o| o.contains("name=userns"));
    let mismatch = f.daemon.is_some() && set.is_some() != on;
    let (ev, eff) = if on {
        ("user namespace remapping in effect", "name=userns")
    } else {
        (
            "containers' root is the host's root",
            "no userns in SecurityOptions",
        )
    };
    Outcome::verdict(Object::daemon(), on, ev).compare(conf, eff, mismatch)
}

fn authorization(f: &Facts) -> Outcome {
    let eff = f
        .info
        .plugins
        .as_ref()
        .and_then(|p| p.authorization.clone())
        .unwrap_or_default();
    let names = ["--authorization-plugin"];
    let (_, conf) = configured(f.daemon.as_ref(), &names, "authorization-plugins");
    let shown = if eff.is_empty() {
        "none".to_string()
    } else {
        eff.join(", ")
    };
    let ev = format!("authorization plugins: {shown}");
    Outcome::verdict(Object::daemon(), !eff.is_empty(), ev).compare(conf, shown, false)
}

fn remote_logging(f: &Facts) -> Outcome {
    let d = f.info.logging_driver.clone().unwrap_or_default();
    let (set, conf) = configured(f.daemon.as_ref(), &["--log-driver"], "log-driver");
    let local = matches!(d.as_str(), "" | "json-file" | "local" | "none");
    let mismatch = set.is_some_and(|s| s.value != d);
    Outcome::verdict(Object::daemon(), !local, format!("logging driver {d}")).compare(
        conf,
        d.clone(),
        mismatch,
    )
}

fn userland_proxy(f: &Facts) -> Outcome {
    let (want, conf) = boolean(
        f.daemon.as_ref(),
        &["--userland-proxy"],
        "userland-proxy",
        true,
    );
    let n = f.host.docker_proxies;
    let mismatch = f.daemon.is_some() && !want && n > 0;
    let ev = format!("userland proxy {want}, {n} docker-proxy process(es)");
    Outcome::verdict(Object::daemon(), !want && n == 0, ev).compare(
        conf,
        format!("{n} docker-proxy process(es)"),
        mismatch,
    )
}

fn seccomp(f: &Facts) -> Outcome {
    let (_, conf) = configured(f.daemon.as_ref(), &["--seccomp-profile"], "seccomp-profile");
    let eff = daemon_seccomp(f);
    let ev = match &eff {
        Some(o) => format!("seccomp enabled ({o})"),
        None => "seccomp is not enabled daemon-wide".into(),
    };
    let shown = eff.clone().unwrap_or_else(|| "none".into());
    Outcome::verdict(Object::daemon(), eff.is_some(), ev).compare(conf, shown, false)
}
