//! CIS section 5: container runtime. Each container is judged on what
//! was configured (container inspect) and on what is in effect (its main
//! process in `/proc`: status, namespaces, mounts, cgroup limits); when the
//! two disagree the result fails and says both.

use bollard::models::{LocalNodeState, RestartPolicyNameEnum};

use super::daemon::daemon_seccomp;
use super::{automated, by_hand, container_object, per_container, Check, Meta};
use crate::caps;
use crate::facts::{ContainerFacts, Facts};
use crate::model::{Object, Outcome, Severity, Status};
use crate::procfs::unlimited;

/// Host directories that must not be mounted into containers.
const SENSITIVE: [&str; 8] = [
    "/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr",
];

fn opts(c: &ContainerFacts) -> Vec<String> {
    c.host_config().security_opt.clone().unwrap_or_default()
}

/// `--security-opt seccomp=unconfined` (either separator).
fn seccomp_unconfined(c: &ContainerFacts) -> bool {
    opts(c)
        .iter()
        .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined")
}

/// `--security-opt no-new-privileges[:true|=true]`.
fn nnp_option(c: &ContainerFacts) -> Option<bool> {
    opts(c).iter().find_map(|o| {
        let rest = o.strip_prefix("no-new-privileges")?;
        match rest {
            "" | ":true" | "=true" => Some(true),
            ":false" | "=false" => Some(false),
            _ => None,
        }
    })
}

fn not_running(c: &ContainerFacts) -> String {
    format!("{} is not running: nothing in effect to compare", c.name())
}

/// A namespace check: configured mode `host` vs the process sharing the
/// host's namespace.
fn namespace_check(f: &Facts, c: &ContainerFacts, kind: &str, mode: Option<&str>) -> Outcome {
    let mode = mode.unwrap_or("");
    let configured = mode == "host";
    let inherited = mode.starts_with("container:");
    let effective = c.proc.as_ref().and_then(|p| p.shares_ns(&f.host, kind));
    let shared = effective.unwrap_or(configured);
    let out = Outcome::verdict(
        container_object(c),
        !shared,
        if shared {
            format!("shares the host's {kind} namespace")
        } else {
            format!("own {kind} namespace")
        },
    );
    match effective {
        Some(e) => out.compare(
            if mode.is_empty() {
                "private (default)".to_string()
            } else {
                mode.to_string()
            },
            if e {
                format!("{kind} namespace is the host's")
            } else {
                format!("{kind} namespace differs from the host's")
            },
            !inherited && e != configured,
        ),
        None => out,
    }
}

/// An automated section-5 check judged per container.
fn each(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    source: &'static str,
    remediation: &'static str,
    judge: fn(&Facts, &ContainerFacts) -> Outcome,
) -> Check {
    let meta = Meta {
        id,
        title,
        source,
        remediation,
    };
    automated(5, severity, meta, move |f: &Facts| per_container(f, judge))
}

const NS_SOURCE: &str = "container inspect HostConfig; in effect: /proc/<pid>/ns/* vs the host's";

/// Section 5's checks.
pub fn checks() -> Vec<Check> {
    vec![
        automated(
            5,
            Severity::Low,
            Meta {
                id: "5.1",
                title: "Ensure swarm mode is not Enabled, if not needed",
                source: "/info Swarm.LocalNodeState",
                remediation: "docker swarm leave --force, if swarm is not needed",
            },
            swarm,
        ),
        each(
            "5.2",
            Severity::Medium,
            "Ensure that, if applicable, an AppArmor Profile is enabled",
            "container inspect AppArmorProfile; in effect: /proc/<pid>/attr/current",
            "docker run --security-opt apparmor=docker-default (or your profile)",
            apparmor,
        ),
        each(
            "5.3",
            Severity::Low,
            "Ensure that, if applicable, SELinux security options are set",
            "/info SecurityOptions; container inspect HostConfig.SecurityOpt",
            "dockerd --selinux-enabled; docker run --security-opt label=...",
            selinux,
        ),
        each(
            "5.4",
            Severity::High,
            "Ensure that Linux kernel capabilities are restricted within containers",
            "container inspect HostConfig.CapAdd/CapDrop/Privileged; in effect: /proc/<pid>/status CapBnd, CapEff",
            "docker run --cap-drop ALL --cap-add only what is needed; never --cap-add SYS_ADMIN",
            capabilities,
        ),
        each(
            "5.5",
            Severity::Critical,
            "Ensure that privileged containers are not used",
            "container inspect HostConfig.Privileged; in effect: CapBnd",
            "drop --privileged; add the single capability or device actually needed",
            privileged,
        ),
        each(
            "5.6",
            Severity::High,
            "Ensure sensitive host system directories are not mounted on containers",
            "container inspect Mounts",
            "do not bind-mount /, /boot, /dev, /etc, /lib, /proc, /sys or /usr; mount only the files needed, read-only",
            sensitive_mounts,
        ),
        each(
            "5.7",
            Severity::Medium,
            "Ensure sshd is not run within containers",
            "processes in the container's pid namespace (/proc/*/ns/pid, comm)",
            "remove sshd; use docker exec",
            sshd,
        ),
        each(
            "5.8",
            Severity::Low,
            "Ensure privileged ports are not mapped within containers",
            "container inspect HostConfig.PortBindings",
            "publish on host ports above 1023",
            privileged_ports,
        ),
        by_hand(
            5,
            "5.9",
            "Ensure that only needed ports are open on the container",
            "container inspect NetworkSettings.Ports (a person decides what is needed)",
            "publish only the ports the service needs",
        ),
        each(
            "5.10",
            Severity::High,
            "Ensure that the host's network namespace is not shared",
            NS_SOURCE,
            "do not use --network host",
            |f, c| namespace_check(f, c, "net", c.host_config().network_mode.as_deref()),
        ),
        each(
            "5.11",
            Severity::Medium,
            "Ensure that the memory usage for containers is limited",
            "container inspect HostConfig.Memory; in effect: the cgroup's memory.max / memory.limit_in_bytes",
            "docker run --memory=SIZE",
            |_, c| {
                let effective = c.proc.as_ref().and_then(|p| p.memory_max.clone());
                limit_check(c, "memory", c.host_config().memory.unwrap_or(0), effective)
            },
        ),
        each(
            "5.12",
            Severity::Low,
            "Ensure that CPU priority is set appropriately on the container",
            "container inspect HostConfig.CpuShares",
            "docker run --cpu-shares=N (other than 1024)",
            cpu_shares,
        ),
        each(
            "5.13",
            Severity::Medium,
            "Ensure that the container's root filesystem is mounted as read only",
            "container inspect HostConfig.ReadonlyRootfs; in effect: the / mount flags in /proc/<pid>/mountinfo",
            "docker run --read-only (with --tmpfs for scratch space)",
            read_only_root,
        ),
        each(
            "5.14",
            Severity::Low,
            "Ensure that incoming container traffic is bound to a specific host interface",
            "container inspect HostConfig.PortBindings HostIp",
            "publish with -p IP:HOSTPORT:PORT (and restrict sources with cordon ingress)",
            bound_ports,
        ),
        each(
            "5.15",
            Severity::Low,
            "Ensure that the 'on-failure' container restart policy is set to '5'",
            "container inspect HostConfig.RestartPolicy",
            "docker run --restart=on-failure:5",
            restart_policy,
        ),
        each(
            "5.16",
            Severity::High,
            "Ensure that the host's process namespace is not shared",
            NS_SOURCE,
            "do not use --pid host",
            |f, c| namespace_check(f, c, "pid", c.host_config().pid_mode.as_deref()),
        ),
        each(
            "5.17",
            Severity::High,
            "Ensure that the host's IPC namespace is not shared",
            NS_SOURCE,
            "do not use --ipc host",
            |f, c| namespace_check(f, c, "ipc", c.host_config().ipc_mode.as_deref()),
        ),
        each(
            "5.18",
            Severity::Medium,
            "Ensure that host devices are not directly exposed to containers",
            "container inspect HostConfig.Devices",
            "drop --device unless required, and then with minimal permissions (r)",
            devices,
        ),
        by_hand(
            5,
            "5.19",
            "Ensure that the default ulimit is overwritten at runtime if needed",
            "container inspect HostConfig.Ulimits",
            "docker run --ulimit only where needed",
        ),
        each(
            "5.20",
            Severity::Medium,
            "Ensure mount propagation mode is not set to shared",
            "container inspect Mounts[].Propagation",
            "mount volumes with private or rprivate propagation",
            shared_propagation,
        ),
        each(
            "5.21",
            Severity::Medium,
            "Ensure that the host's UTS namespace is not shared",
            NS_SOURCE,
            "do not use --uts host",
            |f, c| namespace_check(f, c, "uts", c.host_config().uts_mode.as_deref()),
        ),
        each(
            "5.22",
            Severity::High,
            "Ensure the default seccomp profile is not Disabled",
            "container inspect HostConfig.SecurityOpt/Privileged, /info SecurityOptions; in effect: /proc/<pid>/status Seccomp",
            "drop --security-opt seccomp=unconfined (and --privileged)",
            seccomp,
        ),
        by_hand(
            5,
            "5.23",
            "Ensure that docker exec commands are not used with the privileged option",
            "the audit log of the daemon",
            "never docker exec --privileged",
        ),
        by_hand(
            5,
            "5.24",
            "Ensure that docker exec commands are not used with the user=root option",
            "the audit log of the daemon",
            "never docker exec --user=root",
        ),
        each(
            "5.25",
            Severity::Low,
            "Ensure that cgroup usage is confirmed",
            "container inspect HostConfig.CgroupParent",
            "leave --cgroup-parent unset unless needed",
            cgroup_parent,
        ),
        each(
            "5.26",
            Severity::Medium,
            "Ensure that the container is restricted from acquiring additional privileges",
            "container inspect HostConfig.SecurityOpt, daemon --no-new-privileges; in effect: /proc/<pid>/status NoNewPrivs",
            "docker run --security-opt no-new-privileges",
            no_new_privileges,
        ),
        each(
            "5.27",
            Severity::Low,
            "Ensure that container health is checked at runtime",
            "container inspect Config.Healthcheck, State.Health",
            "docker run --health-cmd ... (or HEALTHCHECK in the image)",
            health,
        ),
        by_hand(
            5,
            "5.28",
            "Ensure that Docker commands always make use of the latest version of their image",
            "a person",
            "pull before run; pin by digest",
        ),
        each(
            "5.29",
            Severity::Medium,
            "Ensure that the PIDs cgroup limit is used",
            "container inspect HostConfig.PidsLimit; in effect: the cgroup's pids.max",
            "docker run --pids-limit=N",
            |_, c| {
                let effective = c.proc.as_ref().and_then(|p| p.pids_max.clone());
                limit_check(c, "pids", c.host_config().pids_limit.unwrap_or(0), effective)
            },
        ),
        each(
            "5.30",
            Severity::Low,
            "Ensure that Docker's default bridge \"docker0\" is not used",
            "container inspect HostConfig.NetworkMode, NetworkSettings.Networks",
            "run containers on user-defined networks (docker network create)",
            default_bridge,
        ),
        each(
            "5.31",
            Severity::High,
            "Ensure that the host's user namespaces are not shared",
            "container inspect HostConfig.UsernsMode; in effect: /proc/<pid>/ns/user",
            "do not use --userns host",
            user_namespace,
        ),
        each(
            "5.32",
            Severity::Critical,
            "Ensure that the Docker socket is not mounted inside any containers",
            "container inspect Mounts; in effect: /proc/<pid>/mountinfo",
            "do not mount docker.sock (or /run, /var/run) into containers",
            docker_socket,
        ),
    ]
}

fn swarm(f: &Facts) -> Vec<Outcome> {
    let st = f.info.swarm.as_ref().and_then(|s| s.local_node_state);
    let active = st == Some(LocalNodeState::ACTIVE);
    let shown = st.map_or("unknown".into(), |s| s.to_string());
    Outcome::verdict(Object::daemon(), !active, format!("swarm state {shown}")).into_vec()
}

fn apparmor(f: &Facts, c: &ContainerFacts) -> Outcome {
    if !f.host.apparmor {
        let why = "AppArmor is not enabled on this host";
        return Outcome::new(container_object(c), Status::NotApplicable, why);
    }
    let conf = c.inspect.app_armor_profile.clone().unwrap_or_default();
    let eff = c.proc.as_ref().and_then(|p| p.security_label.clone());
    let confined_conf = !conf.is_empty() && conf != "unconfined";
    let confined_eff = eff
        .as_deref()
        .map(|l| !l.is_empty() && !l.starts_with("unconfined"));
    let ok = confined_eff.unwrap_or(confined_conf);
    let shown = if conf.is_empty() { "none" } else { &conf };
    let out = Outcome::verdict(container_object(c), ok, format!("AppArmor profile {shown}"));
    match eff {
        Some(e) => out.compare(conf.clone(), e, confined_eff != Some(confined_conf)),
        None => out,
    }
}

fn selinux(f: &Facts, c: &ContainerFacts) -> Outcome {
    let options = f.info.security_options.clone().unwrap_or_default();
    if !options.iter().any(|o| o.contains("name=selinux")) {
        let why = "SELinux is not enabled in the daemon";
        return Outcome::new(container_object(c), Status::NotApplicable, why);
    }
    let labelled = opts(c).iter().any(|o| o.starts_with("label"));
    let ev = if labelled {
        "SELinux label options set"
    } else {
        "no SELinux label options"
    };
    Outcome::verdict(container_object(c), labelled, ev)
}

fn capabilities(f: &Facts, c: &ContainerFacts) -> Outcome {
    let every = f.host.cap_bnd;
    let hc = c.host_config();
    let add = hc.cap_add.clone().unwrap_or_default();
    let drop = hc.cap_drop.clone().unwrap_or_default();
    let want = caps::configured(hc.privileged.unwrap_or(false), &add, &drop, every);
    let have = c.proc.as_ref().and_then(|p| p.cap_bnd).map(|b| b & every);
    let set = have.unwrap_or(want);
    let extra = set & !caps::mask(&caps::DOCKER_DEFAULT);
    let ev = if extra == 0 {
        format!(
            "capabilities within Docker's default ({})",
            caps::describe(set, every)
        )
    } else {
        format!(
            "capabilities beyond Docker's default: {}",
            caps::describe(extra, every)
        )
    };
    let out = Outcome::verdict(container_object(c), extra == 0, ev);
    match (&c.proc, have) {
        (Some(p), Some(h)) => {
            let eff = p.cap_eff.map_or("?".into(), |e| caps::describe(e, every));
            out.compare(
                format!(
                    "add [{}] drop [{}]: {}",
                    add.join(","),
                    drop.join(","),
                    caps::describe(want, every)
                ),
                format!("CapBnd {}; CapEff {eff}", caps::describe(h, every)),
                h != want,
            )
        }
        _ => out,
    }
}

fn privileged(f: &Facts, c: &ContainerFacts) -> Outcome {
    let every = f.host.cap_bnd;
    let hc = c.host_config();
    let privileged = hc.privileged.unwrap_or(false);
    let conf = format!("Privileged={privileged}");
    let out = Outcome::verdict(container_object(c), !privileged, conf.clone());
    match c.proc.as_ref().and_then(|p| p.cap_bnd) {
        Some(b) => {
            // Every capability is what privileged gives (so does
            // --cap-add ALL, which 5.4 judges): a disagreement is the
            // kernel's set differing from the configuration's in that.
            let add = hc.cap_add.clone().unwrap_or_default();
            let drop = hc.cap_drop.clone().unwrap_or_default();
            let want_full = caps::configured(privileged, &add, &drop, every) == every;
            let full = b & every == every;
            let eff = format!("CapBnd {}", caps::describe(b & every, every));
            out.compare(conf, eff, full != want_full)
        }
        None => out,
    }
}

/// `SRC:DST:rw|ro` of the mounts whose source matches.
fn mounts_where(c: &ContainerFacts, matches: impl Fn(&str) -> bool) -> Vec<String> {
    c.inspect
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let src = m.source.clone().unwrap_or_default();
            let dst = m.destination.clone().unwrap_or_default();
            let rw = if m.rw == Some(false) { "ro" } else { "rw" };
            matches(&src).then(|| format!("{src}:{dst}:{rw}"))
        })
        .collect()
}

fn sensitive_mounts(_: &Facts, c: &ContainerFacts) -> Outcome {
    let hits = mounts_where(c, |src| {
        SENSITIVE
            .iter()
            .any(|d| src == *d || (*d != "/" && src.starts_with(&format!("{d}/"))))
    });
    let ev = if hits.is_empty() {
        "no sensitive host directory mounted".into()
    } else {
        format!("mounts {}", hits.join(", "))
    };
    Outcome::verdict(container_object(c), hits.is_empty(), ev)
}

fn sshd(_: &Facts, c: &ContainerFacts) -> Outcome {
    match &c.proc {
        None => Outcome::new(container_object(c), Status::NotApplicable, not_running(c)),
        Some(p) => {
            let sshd = p.commands.iter().any(|x| x == "sshd");
            let ev = if sshd {
                "sshd runs in the container"
            } else {
                "no sshd process"
            };
            Outcome::verdict(container_object(c), !sshd, ev)
        }
    }
}

fn privileged_ports(_: &Facts, c: &ContainerFacts) -> Outcome {
    let low: Vec<String> = bindings(c)
        .into_iter()
        .filter(|(_, _, hp)| hp.parse::<u32>().is_ok_and(|p| p > 0 && p < 1024))
        .map(|(k, _, hp)| format!("{hp}->{k}"))
        .collect();
    let ev = if low.is_empty() {
        "no host port below 1024".into()
    } else {
        format!("host ports below 1024: {}", low.join(", "))
    };
    Outcome::verdict(container_object(c), low.is_empty(), ev)
}

fn cpu_shares(_: &Facts, c: &ContainerFacts) -> Outcome {
    let s = c.host_config().cpu_shares.unwrap_or(0);
    Outcome::verdict(
        container_object(c),
        s != 0 && s != 1024,
        format!("CpuShares={s}"),
    )
}

fn read_only_root(_: &Facts, c: &ContainerFacts) -> Outcome {
    let conf = c.host_config().readonly_rootfs.unwrap_or(false);
    let eff = c.proc.as_ref().and_then(|p| p.root_readonly);
    let ro = eff.unwrap_or(conf);
    let ev = if ro {
        "root filesystem read-only"
    } else {
        "root filesystem writable"
    };
    let out = Outcome::verdict(container_object(c), ro, ev);
    match eff {
        Some(e) => {
            let mounted = format!("/ mounted {}", if e { "ro" } else { "rw" });
            out.compare(format!("ReadonlyRootfs={conf}"), mounted, e != conf)
        }
        None => out,
    }
}

fn bound_ports(_: &Facts, c: &ContainerFacts) -> Outcome {
    let any: Vec<String> = bindings(c)
        .into_iter()
        .filter(|(_, ip, _)| matches!(ip.as_str(), "" | "0.0.0.0" | "::"))
        .map(|(k, _, hp)| format!("*:{hp}->{k}"))
        .collect();
    let ev = if any.is_empty() {
        "every published port is bound to one address".into()
    } else {
        format!("published on all addresses: {}", any.join(", "))
    };
    Outcome::verdict(container_object(c), any.is_empty(), ev)
}

fn restart_policy(_: &Facts, c: &ContainerFacts) -> Outcome {
    let rp = c.host_config().restart_policy.clone().unwrap_or_default();
    let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
    let n = rp.maximum_retry_count.unwrap_or(0);
    let ok = match name {
        RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => false,
        RestartPolicyNameEnum::ON_FAILURE => n > 0 && n <= 5,
        _ => true,
    };
    let shown = match name {
        RestartPolicyNameEnum::ON_FAILURE => format!("on-failure:{n}"),
        RestartPolicyNameEnum::EMPTY => "no".into(),
        other => other.to_string(),
    };
    Outcome::verdict(container_object(c), ok, format!("restart policy {shown}"))
}

fn devices(_: &Facts, c: &ContainerFacts) -> Outcome {
    let d: Vec<String> = c
        .host_config()
        .devices
        .iter()
        .flatten()
        .map(|d| d.path_on_host.clone().unwrap_or_default())
        .collect();
    let ev = if d.is_empty() {
        "no host device".into()
    } else {
        format!("host devices: {}", d.join(", "))
    };
    Outcome::verdict(container_object(c), d.is_empty(), ev)
}

fn shared_propagation(_: &Facts, c: &ContainerFacts) -> Outcome {
    let shared: Vec<String> = c
        .inspect
        .mounts
        .iter()
        .flatten()
        .filter(|m| matches!(m.propagation.as_deref(), Some("shared" | "rshared")))
        .map(|m| m.destination.clone().unwrap_or_default())
        .collect();
    let ev = if shared.is_empty() {
        "no shared mount propagation".into()
    } else {
        format!("shared propagation on {}", shared.join(", "))
    };
    Outcome::verdict(container_object(c), shared.is_empty(), ev)
}

fn seccomp(f: &Facts, c: &ContainerFacts) -> Outcome {
    let daemon = daemon_seccomp(f).is_some();
    let privileged = c.host_config().privileged.unwrap_or(false);
    let unconfined = seccomp_unconfined(c);
    let want = daemon && !privileged && !unconfined;
    let eff = c.proc.as_ref().and_then(|p| p.seccomp);
    let on = eff.map_or(want, |s| s != 0);
    let ev = if on {
        "seccomp filter in effect"
    } else {
        "no seccomp filter"
    };
    let out = Outcome::verdict(container_object(c), on, ev);
    let conf = if unconfined {
        "seccomp=unconfined"
    } else if privileged {
        "privileged (no seccomp)"
    } else if daemon {
        "default profile"
    } else {
        "daemon has no seccomp"
    };
    match eff {
        Some(s) => out.compare(conf, format!("Seccomp: {s}"), on != want),
        None => out,
    }
}

fn cgroup_parent(_: &Facts, c: &ContainerFacts) -> Outcome {
    let p = c.host_config().cgroup_parent.clone().unwrap_or_default();
    let ev = if p.is_empty() {
        "default cgroup parent".into()
    } else {
        format!("cgroup parent {p}")
    };
    Outcome::verdict(container_object(c), p.is_empty(), ev)
}

fn no_new_privileges(f: &Facts, c: &ContainerFacts) -> Outcome {
    let daemon = f
        .daemon
        .as_ref()
        .and_then(|d| d.boolean(&["--no-new-privileges"], "no-new-privileges"))
        .is_some_and(|b| b.0);
    let opt = nnp_option(c);
    let want = opt.unwrap_or(daemon);
    let eff = c.proc.as_ref().and_then(|p| p.no_new_privs);
    let on = eff.unwrap_or(want);
    let ev = if on {
        "no-new-privileges in effect"
    } else {
        "the process can gain privileges (setuid)"
    };
    let out = Outcome::verdict(container_object(c), on, ev);
    let conf = match opt {
        Some(v) => format!("no-new-privileges:{v}"),
        None => format!("unset (daemon default {daemon})"),
    };
    match eff {
        Some(e) => out.compare(conf, format!("NoNewPrivs: {}", u8::from(e)), e != want),
        None => out,
    }
}

fn health(_: &Facts, c: &ContainerFacts) -> Outcome {
    let health = c
        .inspect
        .state
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status);
    let ev = match health {
        Some(h) => format!("health {h}"),
        None => "no health check".into(),
    };
    Outcome::verdict(container_object(c), health.is_some(), ev)
}

fn default_bridge(_: &Facts, c: &ContainerFacts) -> Outcome {
    let nets: Vec<String> = c
        .inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    let mode = c.host_config().network_mode.clone().unwrap_or_default();
    let on_bridge = nets.iter().any(|n| n == "bridge") || mode == "default" || mode == "bridge";
    let shown = if nets.is_empty() {
        mode
    } else {
        nets.join(", ")
    };
    Outcome::verdict(
        container_object(c),
        !on_bridge,
        format!("networks: {shown}"),
    )
}

fn user_namespace(f: &Facts, c: &ContainerFacts) -> Outcome {
    let mode = c.host_config().userns_mode.clone().unwrap_or_default();
    let host = mode == "host";
    let shown = if mode.is_empty() { "default" } else { &mode };
    let out = Outcome::verdict(container_object(c), !host, format!("UsernsMode={shown}"));
    // Without daemon remapping every container is in the host's user
    // namespace: evidence, not a disagreement.
    match c.proc.as_ref().and_then(|p| p.shares_ns(&f.host, "user")) {
        Some(e) => {
            let eff = if e {
                "user namespace is the host's"
            } else {
                "own user namespace"
            };
            out.compare(shown.to_string(), eff, host && !e)
        }
        None => out,
    }
}

fn docker_socket(f: &Facts, c: &ContainerFacts) -> Outcome {
    let sock = f
        .host
        .docker_socket
        .clone()
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    // The socket itself, or a directory that holds it.
    let whole_dirs = ["/run", "/var/run", "/run/docker", "/var/run/docker"];
    let conf = mounts_where(c, |src| {
        src == sock || src.ends_with("/docker.sock") || whole_dirs.contains(&src)
    });
    let eff: Option<Vec<String>> = c.proc.as_ref().map(|p| {
        p.mount_points
            .iter()
            .filter(|m| m.ends_with("/docker.sock"))
            .cloned()
            .collect()
    });
    let mounted = !conf.is_empty() || eff.as_ref().is_some_and(|e| !e.is_empty());
    let ev = if mounted {
        format!("Docker socket mounted: {}", conf.join(", "))
    } else {
        "no Docker socket mount".into()
    };
    let out = Outcome::verdict(container_object(c), !mounted, ev);
    match eff {
        Some(e) => {
            // A mounted directory holding the socket shows no socket mount point.
            let only_sockets = conf.iter().all(|x| x.contains("docker.sock:"));
            let mismatch = conf.is_empty() != e.is_empty() && only_sockets;
            let shown = |v: &[String], none: &str| {
                if v.is_empty() {
                    none.to_string()
                } else {
                    v.join(", ")
                }
            };
            out.compare(
                shown(&conf, "none"),
                shown(&e, "no docker.sock mount point"),
                mismatch,
            )
        }
        None => out,
    }
}

/// Published ports: (container port, host ip, host port).
fn bindings(c: &ContainerFacts) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (k, v) in c.host_config().port_bindings.clone().unwrap_or_default() {
        for b in v.unwrap_or_default() {
            out.push((
                k.clone(),
                b.host_ip.unwrap_or_default(),
                b.host_port.unwrap_or_default(),
            ));
        }
    }
    out.sort();
    out
}

/// A resource limit: configured (`> 0`) vs the cgroup's value.
fn limit_check(
    c: &ContainerFacts,
    what: &str,
    configured: i64,
    effective: Option<String>,
) -> Outcome {
    let conf = configured > 0;
    let eff = effective.as_deref().map(|v| !unlimited(v));
    let limited = eff.unwrap_or(conf);
    let out = Outcome::verdict(
        container_object(c),
        limited,
        if limited {
            format!("{what} limited")
        } else {
            format!("no {what} limit")
        },
    );
    match effective {
        Some(v) => out.compare(
            if conf {
                configured.to_string()
            } else {
                "unlimited (0)".into()
            },
            format!("cgroup {what} limit {v}"),
            eff != Some(conf),
        ),
        None => out,
    }
}
