//! CIS section 2: Docker daemon configuration. The configured value comes
//! from the daemon's command line and `daemon.json`; the value in effect
//! from `/info`, the default bridge network and the process table.

use super::{automated, manual, manual_with, Check, Meta};
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
fn flag_must_be_true(
    flag: &'static str,
    key: &'static str,
    default: bool,
) -> impl Fn(&Facts) -> Vec<Outcome> + Send + Sync + 'static {
    move |f: &Facts| {
        let (on, conf) = boolean(f.daemon.as_ref(), &[flag], key, default);
        vec![Outcome::verdict(
            Object::daemon(),
            on,
            format!("{key} {conf}"),
        )]
    }
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
            |f: &Facts| {
                if security_options(f).iter().any(|o| o.contains("name=rootless")) {
                    "the daemon runs rootless".into()
                } else {
                    "the daemon runs as root".into()
                }
            },
        ),
        automated(
            2,
            Severity::Medium,
            Meta {
                id: "2.2",
                title: "Ensure network traffic is restricted between containers on the default bridge",
                source: "--icc / \"icc\"; in effect: /networks/bridge option com.docker.network.bridge.enable_icc",
                remediation: "dockerd --icc=false (\"icc\": false in daemon.json), or use cordon policies",
            },
            |f: &Facts| {
                let (want, conf) = boolean(f.daemon.as_ref(), &["--icc"], "icc", true);
                let eff = f
                    .default_bridge
                    .as_ref()
                    .and_then(|n| n.options.as_ref())
                    .and_then(|o| o.get("com.docker.network.bridge.enable_icc").cloned());
                let on = eff.as_deref().map_or(want, |v| v != "false");
                let out = Outcome::verdict(
                    Object::daemon(),
                    !on,
                    if on { "containers on the default bridge can talk to each other" } else { "inter-container traffic on the default bridge is off" },
                );
                let mismatch = f.daemon.is_some() && eff.is_some() && on != want;
                out.compare(conf, eff.map_or("unknown (no default bridge)".into(), |v| format!("enable_icc={v}")), mismatch).into_vec()
            },
        ),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.3",
                title: "Ensure the logging level is set to 'info'",
                source: "--log-level / \"log-level\"; in effect: /info Debug",
                remediation: "dockerd --log-level=info (\"log-level\": \"info\")",
            },
            |f: &Facts| {
                let (set, conf) = configured(f.daemon.as_ref(), &["--log-level", "-l"], "log-level");
                let debug_flag = f.daemon.as_ref().and_then(|c| c.boolean(&["-D", "--debug"], "debug")).is_some_and(|b| b.0);
                let level = set.map(|s| s.value).unwrap_or_else(|| if debug_flag { "debug".into() } else { "info".into() });
                let debug = f.info.debug.unwrap_or(false);
                let ok = level == "info" && !debug;
                let mismatch = f.daemon.is_some() && (level == "debug") != debug;
                Outcome::verdict(Object::daemon(), ok, format!("log level {level}"))
                    .compare(conf, format!("Debug={debug}"), mismatch)
                    .into_vec()
            },
        ),
        automated(
            2,
            Severity::Medium,
            Meta {
                id: "2.4",
                title: "Ensure Docker is allowed to make changes to iptables",
                source: "--iptables / \"iptables\"",
                remediation: "remove --iptables=false (\"iptables\": false); cordon masquerades for such daemons but Docker's isolation rules are missing",
            },
            flag_must_be_true("--iptables", "iptables", true),
        ),
        automated(
            2,
            Severity::Medium,
            Meta {
                id: "2.5",
                title: "Ensure insecure registries are not used",
                source: "--insecure-registry / \"insecure-registries\"; in effect: /info RegistryConfig",
                remediation: "remove --insecure-registry (\"insecure-registries\") and use TLS registries",
            },
            |f: &Facts| {
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
                    .as_ref()
                    .map(|c| c.all(&["--insecure-registry"], "insecure-registries").into_iter().map(|s| s.value).collect())
                    .unwrap_or_default();
                let eff = if insecure.is_empty() { "none".to_string() } else { insecure.join(", ") };
                Outcome::verdict(Object::daemon(), insecure.is_empty(), format!("insecure registries: {eff}"))
                    .compare(if conf.is_empty() { "none".into() } else { conf.join(", ") }, eff, false)
                    .into_vec()
            },
        ),
        automated(
            2,
            Severity::Medium,
            Meta {
                id: "2.6",
                title: "Ensure aufs storage driver is not used",
                source: "/info Driver",
                remediation: "dockerd --storage-driver=overlay2",
            },
            |f: &Facts| {
                let d = f.info.driver.clone().unwrap_or_default();
                vec![Outcome::verdict(Object::daemon(), d != "aufs", format!("storage driver {d}"))]
            },
        ),
        automated(
            2,
            Severity::Critical,
            Meta {
                id: "2.7",
                title: "Ensure TLS authentication for Docker daemon is configured",
                source: "-H / \"hosts\", --tlsverify / \"tlsverify\"",
                remediation: "listen on TCP only with --tlsverify --tlscacert --tlscert --tlskey, or only on the unix socket",
            },
            |f: &Facts| {
                let Some(c) = f.daemon.as_ref() else {
                    return vec![Outcome::new(Object::daemon(), Status::NotApplicable, "dockerd not identified: listen addresses unknown")];
                };
                let tcp: Vec<String> = c
                    .all(&["-H", "--host"], "hosts")
                    .into_iter()
                    .map(|s| s.value)
                    .filter(|h| h.starts_with("tcp://"))
                    .collect();
                if tcp.is_empty() {
                    return vec![Outcome::new(Object::daemon(), Status::NotApplicable, "the daemon listens on no TCP address")];
                }
                let verify = c.boolean(&["--tlsverify"], "tlsverify").is_some_and(|b| b.0);
                vec![Outcome::verdict(
                    Object::daemon(),
                    verify,
                    format!("listens on {} with tlsverify={verify}", tcp.join(", ")),
                )]
            },
        ),
        manual(2, Meta { id: "2.8", title: "Ensure the default ulimit is configured appropriately", source: "--default-ulimit", remediation: "dockerd --default-ulimit nofile=1024:4096 where needed" }),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.9",
                title: "Enable user namespace support",
                source: "--userns-remap / \"userns-remap\"; in effect: /info SecurityOptions name=userns",
                remediation: "dockerd --userns-remap=default",
            },
            |f: &Facts| {
                let (set, conf) = configured(f.daemon.as_ref(), &["--userns-remap"], "userns-remap");
                let on = security_options(f).iter().any(|o| o.contains("name=userns"));
                let mismatch = f.daemon.is_some() && set.is_some() != on;
                Outcome::verdict(Object::daemon(), on, if on { "user namespace remapping in effect" } else { "containers' root is the host's root" })
                    .compare(conf, if on { "name=userns" } else { "no userns in SecurityOptions" }, mismatch)
                    .into_vec()
            },
        ),
        manual(2, Meta { id: "2.10", title: "Ensure the default cgroup usage has been confirmed", source: "--cgroup-parent", remediation: "leave --cgroup-parent at its default unless needed" }),
        manual(2, Meta { id: "2.11", title: "Ensure base device size is not changed until needed", source: "--storage-opt dm.basesize", remediation: "do not set dm.basesize unless needed" }),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.12",
                title: "Ensure that authorization for Docker client commands is enabled",
                source: "--authorization-plugin / \"authorization-plugins\"; in effect: /info Plugins.Authorization",
                remediation: "dockerd --authorization-plugin=PLUGIN",
            },
            |f: &Facts| {
                let eff = f.info.plugins.as_ref().and_then(|p| p.authorization.clone()).unwrap_or_default();
                let (_, conf) = configured(f.daemon.as_ref(), &["--authorization-plugin"], "authorization-plugins");
                Outcome::verdict(
                    Object::daemon(),
                    !eff.is_empty(),
                    if eff.is_empty() { "no authorization plugin".to_string() } else { format!("authorization plugins: {}", eff.join(", ")) },
                )
                .compare(conf, if eff.is_empty() { "none".into() } else { eff.join(", ") }, false)
                .into_vec()
            },
        ),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.13",
                title: "Ensure centralized and remote logging is configured",
                source: "--log-driver / \"log-driver\"; in effect: /info LoggingDriver",
                remediation: "dockerd --log-driver=syslog (or journald, fluentd, gelf …) with a remote collector",
            },
            |f: &Facts| {
                let d = f.info.logging_driver.clone().unwrap_or_default();
                let (set, conf) = configured(f.daemon.as_ref(), &["--log-driver"], "log-driver");
                let local = matches!(d.as_str(), "" | "json-file" | "local" | "none");
                let mismatch = set.is_some_and(|s| s.value != d);
                Outcome::verdict(Object::daemon(), !local, format!("logging driver {d}"))
                    .compare(conf, d.clone(), mismatch)
                    .into_vec()
            },
        ),
        automated(
            2,
            Severity::Medium,
            Meta {
                id: "2.14",
                title: "Ensure containers are restricted from acquiring new privileges",
                source: "--no-new-privileges / \"no-new-privileges\"",
                remediation: "dockerd --no-new-privileges (\"no-new-privileges\": true)",
            },
            flag_must_be_true("--no-new-privileges", "no-new-privileges", false),
        ),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.15",
                title: "Ensure live restore is enabled",
                source: "--live-restore / \"live-restore\"; in effect: /info LiveRestoreEnabled",
                remediation: "dockerd --live-restore (\"live-restore\": true)",
            },
            |f: &Facts| {
                let (want, conf) = boolean(f.daemon.as_ref(), &["--live-restore"], "live-restore", false);
                let eff = f.info.live_restore_enabled.unwrap_or(false);
                Outcome::verdict(Object::daemon(), eff, format!("live restore {eff}"))
                    .compare(conf, format!("LiveRestoreEnabled={eff}"), f.daemon.is_some() && want != eff)
                    .into_vec()
            },
        ),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.16",
                title: "Ensure Userland Proxy is Disabled",
                source: "--userland-proxy / \"userland-proxy\"; in effect: docker-proxy processes in /proc",
                remediation: "dockerd --userland-proxy=false (\"userland-proxy\": false)",
            },
            |f: &Facts| {
                let (want, conf) = boolean(f.daemon.as_ref(), &["--userland-proxy"], "userland-proxy", true);
                let n = f.host.docker_proxies;
                let mismatch = f.daemon.is_some() && !want && n > 0;
                Outcome::verdict(Object::daemon(), !want && n == 0, format!("userland proxy {want}, {n} docker-proxy process(es)"))
                    .compare(conf, format!("{n} docker-proxy process(es)"), mismatch)
                    .into_vec()
            },
        ),
        automated(
            2,
            Severity::High,
            Meta {
                id: "2.17",
                title: "Ensure that a daemon-wide custom seccomp profile is applied if appropriate",
                source: "--seccomp-profile / \"seccomp-profile\"; in effect: /info SecurityOptions name=seccomp",
                remediation: "do not set --seccomp-profile=unconfined; keep the default profile or a stricter one",
            },
            |f: &Facts| {
                let (_, conf) = configured(f.daemon.as_ref(), &["--seccomp-profile"], "seccomp-profile");
                let eff = daemon_seccomp(f);
                Outcome::verdict(
                    Object::daemon(),
                    eff.is_some(),
                    match &eff {
                        Some(o) => format!("seccomp enabled ({o})"),
                        None => "seccomp is not enabled daemon-wide".into(),
                    },
                )
                .compare(conf, eff.unwrap_or_else(|| "none".into()), false)
                .into_vec()
            },
        ),
        automated(
            2,
            Severity::Low,
            Meta {
                id: "2.18",
                title: "Ensure that experimental features are not implemented in production",
                source: "--experimental / \"experimental\"; in effect: /info ExperimentalBuild",
                remediation: "remove --experimental (\"experimental\": true)",
            },
            |f: &Facts| {
                let (want, conf) = boolean(f.daemon.as_ref(), &["--experimental"], "experimental", false);
                let eff = f.info.experimental_build.unwrap_or(false);
                Outcome::verdict(Object::daemon(), !eff, format!("experimental {eff}"))
                    .compare(conf, format!("ExperimentalBuild={eff}"), f.daemon.is_some() && want != eff)
                    .into_vec()
            },
        ),
    ]
}
