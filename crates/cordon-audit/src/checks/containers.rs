//! CIS section 5: container runtime. Each container is judged on what
//! was configured (container inspect) and on what is in effect (its main
//! process in `/proc`: status, namespaces, mounts, cgroup limits); when the
//! two disagree the result fails and says both.

use bollard::models::{LocalNodeState, RestartPolicyNameEnum};

use super::daemon::daemon_seccomp;
use super::{automated, container_object, manual, per_container, Check, Meta};
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

fn ns(
    id: &'static str,
    title: &'static str,
    kind: &'static str,
    severity: Severity,
    remediation: &'static str,
    mode: fn(&ContainerFacts) -> Option<String>,
) -> Check {
    automated(
        5,
        severity,
        Meta {
            id,
            title,
            source: "container inspect HostConfig; in effect: /proc/<pid>/ns/* vs the host's",
            remediation,
        },
        move |f: &Facts| per_container(f, |f, c| namespace_check(f, c, kind, mode(c).as_deref())),
    )
}

/// Section 5's checks.
pub fn checks() -> Vec<Check> {
    vec![
        automated(
            5,
            Severity::Low,
            Meta { id: "5.1", title: "Ensure swarm mode is not Enabled, if not needed", source: "/info Swarm.LocalNodeState", remediation: "docker swarm leave --force, if swarm is not needed" },
            |f: &Facts| {
                let st = f.info.swarm.as_ref().and_then(|s| s.local_node_state);
                let active = st == Some(LocalNodeState::ACTIVE);
                vec![Outcome::verdict(Object::daemon(), !active, format!("swarm state {}", st.map_or("unknown".into(), |s| s.to_string())))]
            },
        ),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.2", title: "Ensure that, if applicable, an AppArmor Profile is enabled", source: "container inspect AppArmorProfile; in effect: /proc/<pid>/attr/current", remediation: "docker run --security-opt apparmor=docker-default (or your profile)" },
            |f: &Facts| {
                per_container(f, |f, c| {
                    if !f.host.apparmor {
                        return Outcome::new(container_object(c), Status::NotApplicable, "AppArmor is not enabled on this host");
                    }
                    let conf = c.inspect.app_armor_profile.clone().unwrap_or_default();
                    let eff = c.proc.as_ref().and_then(|p| p.security_label.clone());
                    let confined_conf = !conf.is_empty() && conf != "unconfined";
                    let confined_eff = eff.as_deref().map(|l| !l.is_empty() && !l.starts_with("unconfined"));
                    let ok = confined_eff.unwrap_or(confined_conf);
                    let out = Outcome::verdict(container_object(c), ok, format!("AppArmor profile {}", if conf.is_empty() { "none" } else { &conf }));
                    match eff {
                        Some(e) => out.compare(conf, e, confined_eff != Some(confined_conf)),
                        None => out,
                    }
                })
            },
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.3", title: "Ensure that, if applicable, SELinux security options are set", source: "/info SecurityOptions; container inspect HostConfig.SecurityOpt", remediation: "dockerd --selinux-enabled; docker run --security-opt label=..." },
            |f: &Facts| {
                let selinux = f.info.security_options.clone().unwrap_or_default().iter().any(|o| o.contains("name=selinux"));
                per_container(f, |_, c| {
                    if !selinux {
                        return Outcome::new(container_object(c), Status::NotApplicable, "SELinux is not enabled in the daemon");
                    }
                    let labelled = opts(c).iter().any(|o| o.starts_with("label"));
                    Outcome::verdict(container_object(c), labelled, if labelled { "SELinux label options set" } else { "no SELinux label options" })
                })
            },
        ),
        automated(
            5,
            Severity::High,
            Meta { id: "5.4", title: "Ensure that Linux kernel capabilities are restricted within containers", source: "container inspect HostConfig.CapAdd/CapDrop/Privileged; in effect: /proc/<pid>/status CapBnd, CapEff", remediation: "docker run --cap-drop ALL --cap-add only what is needed; never --cap-add SYS_ADMIN" },
            |f: &Facts| {
                let every = f.host.cap_bnd;
                per_container(f, |_, c| {
                    let hc = c.host_config();
                    let add = hc.cap_add.clone().unwrap_or_default();
                    let drop = hc.cap_drop.clone().unwrap_or_default();
                    let want = caps::configured(hc.privileged.unwrap_or(false), &add, &drop, every);
                    let have = c.proc.as_ref().and_then(|p| p.cap_bnd).map(|b| b & every);
                    let set = have.unwrap_or(want);
                    let extra = set & !caps::mask(&caps::DOCKER_DEFAULT);
                    let out = Outcome::verdict(
                        container_object(c),
                        extra == 0,
                        if extra == 0 { format!("capabilities within Docker's default ({})", caps::describe(set, every)) } else { format!("capabilities beyond Docker's default: {}", caps::describe(extra, every)) },
                    );
                    match (&c.proc, have) {
                        (Some(p), Some(h)) => out.compare(
                            format!("add [{}] drop [{}]: {}", add.join(","), drop.join(","), caps::describe(want, every)),
                            format!("CapBnd {}; CapEff {}", caps::describe(h, every), p.cap_eff.map_or("?".into(), |e| caps::describe(e, every))),
                            h != want,
                        ),
                        _ => out,
                    }
                })
            },
        ),
        automated(
            5,
            Severity::Critical,
            Meta { id: "5.5", title: "Ensure that privileged containers are not used", source: "container inspect HostConfig.Privileged; in effect: CapBnd and Seccomp", remediation: "drop --privileged; add the single capability or device actually needed" },
            |f: &Facts| {
                let every = f.host.cap_bnd;
                per_container(f, |_, c| {
                    let privileged = c.host_config().privileged.unwrap_or(false);
                    let out = Outcome::verdict(container_object(c), !privileged, format!("Privileged={privileged}"));
                    match c.proc.as_ref().and_then(|p| p.cap_bnd) {
                        Some(b) => {
                            let full = b & every == every;
                            out.compare(format!("Privileged={privileged}"), format!("CapBnd {}", caps::describe(b & every, every)), full != privileged)
                        }
                        None => out,
                    }
                })
            },
        ),
        automated(
            5,
            Severity::High,
            Meta { id: "5.6", title: "Ensure sensitive host system directories are not mounted on containers", source: "container inspect Mounts", remediation: "do not bind-mount /, /boot, /dev, /etc, /lib, /proc, /sys or /usr; mount only the files needed, read-only" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let hits: Vec<String> = c
                        .inspect
                        .mounts
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|m| {
                            let src = m.source.clone().unwrap_or_default();
                            let sensitive = SENSITIVE.iter().any(|d| src == *d || (*d != "/" && src.starts_with(&format!("{d}/"))));
                            sensitive.then(|| format!("{src}:{}{}", m.destination.clone().unwrap_or_default(), if m.rw == Some(false) { ":ro" } else { ":rw" }))
                        })
                        .collect();
                    Outcome::verdict(container_object(c), hits.is_empty(), if hits.is_empty() { "no sensitive host directory mounted".into() } else { format!("mounts {}", hits.join(", ")) })
                })
            },
        ),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.7", title: "Ensure sshd is not run within containers", source: "processes in the container's pid namespace (/proc/*/ns/pid, comm)", remediation: "remove sshd; use docker exec" },
            |f: &Facts| {
                per_container(f, |_, c| match &c.proc {
                    None => Outcome::new(container_object(c), Status::NotApplicable, not_running(c)),
                    Some(p) => {
                        let sshd = p.commands.iter().any(|x| x == "sshd");
                        Outcome::verdict(container_object(c), !sshd, if sshd { "sshd runs in the container" } else { "no sshd process" })
                    }
                })
            },
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.8", title: "Ensure privileged ports are not mapped within containers", source: "container inspect HostConfig.PortBindings", remediation: "publish on host ports above 1023" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let low: Vec<String> = bindings(c).into_iter().filter(|(_, _, hp)| hp.parse::<u32>().is_ok_and(|p| p > 0 && p < 1024)).map(|(k, _, hp)| format!("{hp}->{k}")).collect();
                    Outcome::verdict(container_object(c), low.is_empty(), if low.is_empty() { "no host port below 1024".into() } else { format!("host ports below 1024: {}", low.join(", ")) })
                })
            },
        ),
        manual(5, Meta { id: "5.9", title: "Ensure that only needed ports are open on the container", source: "container inspect NetworkSettings.Ports (a person decides what is needed)", remediation: "publish only the ports the service needs" }),
        ns("5.10", "Ensure that the host's network namespace is not shared", "net", Severity::High, "do not use --network host", |c| c.host_config().network_mode.clone()),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.11", title: "Ensure that the memory usage for containers is limited", source: "container inspect HostConfig.Memory; in effect: the cgroup's memory.max / memory.limit_in_bytes", remediation: "docker run --memory=SIZE" },
            |f: &Facts| per_container(f, |_, c| limit_check(c, "memory", c.host_config().memory.unwrap_or(0), c.proc.as_ref().and_then(|p| p.memory_max.clone()))),
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.12", title: "Ensure that CPU priority is set appropriately on the container", source: "container inspect HostConfig.CpuShares", remediation: "docker run --cpu-shares=N (other than 1024)" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let s = c.host_config().cpu_shares.unwrap_or(0);
                    Outcome::verdict(container_object(c), s != 0 && s != 1024, format!("CpuShares={s}"))
                })
            },
        ),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.13", title: "Ensure that the container's root filesystem is mounted as read only", source: "container inspect HostConfig.ReadonlyRootfs; in effect: the / mount flags in /proc/<pid>/mountinfo", remediation: "docker run --read-only (with --tmpfs for scratch space)" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let conf = c.host_config().readonly_rootfs.unwrap_or(false);
                    let eff = c.proc.as_ref().and_then(|p| p.root_readonly);
                    let ro = eff.unwrap_or(conf);
                    let out = Outcome::verdict(container_object(c), ro, if ro { "root filesystem read-only" } else { "root filesystem writable" });
                    match eff {
                        Some(e) => out.compare(format!("ReadonlyRootfs={conf}"), format!("/ mounted {}", if e { "ro" } else { "rw" }), e != conf),
                        None => out,
                    }
                })
            },
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.14", title: "Ensure that incoming container traffic is bound to a specific host interface", source: "container inspect HostConfig.PortBindings HostIp", remediation: "publish with -p IP:HOSTPORT:PORT (and restrict sources with cordon ingress)" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let any: Vec<String> = bindings(c).into_iter().filter(|(_, ip, _)| matches!(ip.as_str(), "" | "0.0.0.0" | "::")).map(|(k, _, hp)| format!("*:{hp}->{k}")).collect();
                    Outcome::verdict(container_object(c), any.is_empty(), if any.is_empty() { "every published port is bound to one address".into() } else { format!("published on all addresses: {}", any.join(", ")) })
                })
            },
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.15", title: "Ensure that the 'on-failure' container restart policy is set to '5'", source: "container inspect HostConfig.RestartPolicy", remediation: "docker run --restart=on-failure:5" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let rp = c.host_config().restart_policy.clone().unwrap_or_default();
                    let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
                    let n = rp.maximum_retry_count.unwrap_or(0);
                    let ok = match name {
                        RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => false,
                        RestartPolicyNameEnum::ON_FAILURE => n > 0 && n <= 5,
                        _ => true,
                    };
                    Outcome::verdict(container_object(c), ok, format!("restart policy {}{}", if name.to_string().is_empty() { "no".to_string() } else { name.to_string() }, if name == RestartPolicyNameEnum::ON_FAILURE { format!(":{n}") } else { String::new() }))
                })
            },
        ),
        ns("5.16", "Ensure that the host's process namespace is not shared", "pid", Severity::High, "do not use --pid host", |c| c.host_config().pid_mode.clone()),
        ns("5.17", "Ensure that the host's IPC namespace is not shared", "ipc", Severity::High, "do not use --ipc host", |c| c.host_config().ipc_mode.clone()),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.18", title: "Ensure that host devices are not directly exposed to containers", source: "container inspect HostConfig.Devices", remediation: "drop --device unless required, and then with minimal permissions (r)" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let d: Vec<String> = c.host_config().devices.clone().unwrap_or_default().iter().map(|d| d.path_on_host.clone().unwrap_or_default()).collect();
                    Outcome::verdict(container_object(c), d.is_empty(), if d.is_empty() { "no host device".into() } else { format!("host devices: {}", d.join(", ")) })
                })
            },
        ),
        manual(5, Meta { id: "5.19", title: "Ensure that the default ulimit is overwritten at runtime if needed", source: "container inspect HostConfig.Ulimits", remediation: "docker run --ulimit only where needed" }),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.20", title: "Ensure mount propagation mode is not set to shared", source: "container inspect Mounts[].Propagation", remediation: "mount volumes with private or rprivate propagation" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let shared: Vec<String> = c.inspect.mounts.clone().unwrap_or_default().iter().filter(|m| matches!(m.propagation.as_deref(), Some("shared" | "rshared"))).map(|m| m.destination.clone().unwrap_or_default()).collect();
                    Outcome::verdict(container_object(c), shared.is_empty(), if shared.is_empty() { "no shared mount propagation".into() } else { format!("shared propagation on {}", shared.join(", ")) })
                })
            },
        ),
        ns("5.21", "Ensure that the host's UTS namespace is not shared", "uts", Severity::Medium, "do not use --uts host", |c| c.host_config().uts_mode.clone()),
        automated(
            5,
            Severity::High,
            Meta { id: "5.22", title: "Ensure the default seccomp profile is not Disabled", source: "container inspect HostConfig.SecurityOpt/Privileged, /info SecurityOptions; in effect: /proc/<pid>/status Seccomp", remediation: "drop --security-opt seccomp=unconfined (and --privileged)" },
            |f: &Facts| {
                let daemon = daemon_seccomp(f).is_some();
                per_container(f, |_, c| {
                    let privileged = c.host_config().privileged.unwrap_or(false);
                    let want = daemon && !privileged && !seccomp_unconfined(c);
                    let eff = c.proc.as_ref().and_then(|p| p.seccomp);
                    let on = eff.map_or(want, |s| s != 0);
                    let out = Outcome::verdict(container_object(c), on, if on { "seccomp filter in effect" } else { "no seccomp filter" });
                    let conf = if seccomp_unconfined(c) { "seccomp=unconfined".to_string() } else if privileged { "privileged (no seccomp)".into() } else if daemon { "default profile".into() } else { "daemon has no seccomp".into() };
                    match eff {
                        Some(s) => out.compare(conf, format!("Seccomp: {s}"), on != want),
                        None => out,
                    }
                })
            },
        ),
        manual(5, Meta { id: "5.23", title: "Ensure that docker exec commands are not used with the privileged option", source: "the audit log of the daemon", remediation: "never docker exec --privileged" }),
        manual(5, Meta { id: "5.24", title: "Ensure that docker exec commands are not used with the user=root option", source: "the audit log of the daemon", remediation: "never docker exec --user=root" }),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.25", title: "Ensure that cgroup usage is confirmed", source: "container inspect HostConfig.CgroupParent", remediation: "leave --cgroup-parent unset unless needed" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let p = c.host_config().cgroup_parent.clone().unwrap_or_default();
                    Outcome::verdict(container_object(c), p.is_empty(), if p.is_empty() { "default cgroup parent".into() } else { format!("cgroup parent {p}") })
                })
            },
        ),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.26", title: "Ensure that the container is restricted from acquiring additional privileges", source: "container inspect HostConfig.SecurityOpt, daemon --no-new-privileges; in effect: /proc/<pid>/status NoNewPrivs", remediation: "docker run --security-opt no-new-privileges" },
            |f: &Facts| {
                let daemon = f.daemon.as_ref().and_then(|d| d.boolean(&["--no-new-privileges"], "no-new-privileges")).is_some_and(|b| b.0);
                per_container(f, |_, c| {
                    let opt = nnp_option(c);
                    let want = opt.unwrap_or(daemon);
                    let eff = c.proc.as_ref().and_then(|p| p.no_new_privs);
                    let on = eff.unwrap_or(want);
                    let out = Outcome::verdict(container_object(c), on, if on { "no-new-privileges in effect" } else { "the process can gain privileges (setuid)" });
                    let conf = match opt {
                        Some(v) => format!("no-new-privileges:{v}"),
                        None => format!("unset (daemon default {daemon})"),
                    };
                    match eff {
                        Some(e) => out.compare(conf, format!("NoNewPrivs: {}", u8::from(e)), e != want),
                        None => out,
                    }
                })
            },
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.27", title: "Ensure that container health is checked at runtime", source: "container inspect Config.Healthcheck, State.Health", remediation: "docker run --health-cmd ... (or HEALTHCHECK in the image)" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let health = c.inspect.state.as_ref().and_then(|s| s.health.as_ref()).and_then(|h| h.status);
                    Outcome::verdict(container_object(c), health.is_some(), match health { Some(h) => format!("health {h}"), None => "no health check".into() })
                })
            },
        ),
        manual(5, Meta { id: "5.28", title: "Ensure that Docker commands always make use of the latest version of their image", source: "a person", remediation: "pull before run; pin by digest" }),
        automated(
            5,
            Severity::Medium,
            Meta { id: "5.29", title: "Ensure that the PIDs cgroup limit is used", source: "container inspect HostConfig.PidsLimit; in effect: the cgroup's pids.max", remediation: "docker run --pids-limit=N" },
            |f: &Facts| per_container(f, |_, c| limit_check(c, "pids", c.host_config().pids_limit.unwrap_or(0), c.proc.as_ref().and_then(|p| p.pids_max.clone()))),
        ),
        automated(
            5,
            Severity::Low,
            Meta { id: "5.30", title: "Ensure that Docker's default bridge \"docker0\" is not used", source: "container inspect HostConfig.NetworkMode, NetworkSettings.Networks", remediation: "run containers on user-defined networks (docker network create)" },
            |f: &Facts| {
                per_container(f, |_, c| {
                    let nets: Vec<String> = c.inspect.network_settings.as_ref().and_then(|n| n.networks.as_ref()).map(|n| n.keys().cloned().collect()).unwrap_or_default();
                    let mode = c.host_config().network_mode.clone().unwrap_or_default();
                    let on_bridge = nets.iter().any(|n| n == "bridge") || mode == "default" || mode == "bridge";
                    Outcome::verdict(container_object(c), !on_bridge, format!("networks: {}", if nets.is_empty() { mode } else { nets.join(", ") }))
                })
            },
        ),
        automated(
            5,
            Severity::High,
            Meta { id: "5.31", title: "Ensure that the host's user namespaces are not shared", source: "container inspect HostConfig.UsernsMode; in effect: /proc/<pid>/ns/user", remediation: "do not use --userns host" },
            |f: &Facts| {
                per_container(f, |f, c| {
                    let mode = c.host_config().userns_mode.clone().unwrap_or_default();
                    let host = mode == "host";
                    let out = Outcome::verdict(container_object(c), !host, format!("UsernsMode={}", if mode.is_empty() { "default" } else { &mode }));
                    match c.proc.as_ref().and_then(|p| p.shares_ns(&f.host, "user")) {
                        // Without daemon remapping every container is in the host's user namespace: evidence, not a disagreement.
                        Some(e) => out.compare(if mode.is_empty() { "default".into() } else { mode.clone() }, if e { "user namespace is the host's" } else { "own user namespace" }, host && !e),
                        None => out,
                    }
                })
            },
        ),
        automated(
            5,
            Severity::Critical,
            Meta { id: "5.32", title: "Ensure that the Docker socket is not mounted inside any containers", source: "container inspect Mounts; in effect: /proc/<pid>/mountinfo", remediation: "do not mount docker.sock (or /run, /var/run) into containers" },
            |f: &Facts| {
                let sock = f.host.docker_socket.clone().unwrap_or_else(|| "/var/run/docker.sock".into());
                per_container(f, |_, c| {
                    let conf: Vec<String> = c
                        .inspect
                        .mounts
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|m| {
                            let src = m.source.clone().unwrap_or_default();
                            let hit = src == sock || src.ends_with("/docker.sock") || matches!(src.as_str(), "/run" | "/var/run" | "/run/docker" | "/var/run/docker");
                            hit.then(|| format!("{src}:{}", m.destination.clone().unwrap_or_default()))
                        })
                        .collect();
                    let eff: Option<Vec<String>> = c.proc.as_ref().map(|p| p.mount_points.iter().filter(|m| m.ends_with("/docker.sock")).cloned().collect());
                    let mounted = !conf.is_empty() || eff.as_ref().is_some_and(|e| !e.is_empty());
                    let out = Outcome::verdict(container_object(c), !mounted, if mounted { format!("Docker socket mounted: {}", conf.join(", ")) } else { "no Docker socket mount".into() });
                    match eff {
                        Some(e) => out.compare(
                            if conf.is_empty() { "none".into() } else { conf.join(", ") },
                            if e.is_empty() { "no docker.sock mount point".into() } else { e.join(", ") },
                            conf.is_empty() != e.is_empty() && !conf.iter().any(|x| !x.ends_with("docker.sock")),
                        ),
                        None => out,
                    }
                })
            },
        ),
    ]
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
