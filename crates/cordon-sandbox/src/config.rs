//! A [`Profile`] turned into the Engine API's container configuration.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, Mount,
    MountType, ResourcesUlimits,
};

use crate::profile::{Network, Profile};

/// The label every sandbox container carries (valued with the creating
/// process's id), so that leftovers of a killed process can be found.
pub const SANDBOX_LABEL: &str = "cordon.sandbox";

/// The label cordon's daemon selects a policy by.
pub const POLICY_LABEL: &str = "cordon.policy";

/// CFS period for the CPU quota, in microseconds.
pub const CPU_PERIOD_US: i64 = 100_000;

/// What one container needs besides the profile.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The image id to run.
    pub image_id: &'a str,
    /// The command (or, for a pooled container, its idle command).
    pub cmd: &'a [String],
    /// The run's uid (and gid).
    pub uid: u32,
    /// Host path of the work directory tmpfs.
    pub work_host: &'a str,
    /// `CgroupParent`, if any.
    pub cgroup_parent: Option<String>,
    /// Whether stdin is attached.
    pub stdin: bool,
}

/// Host tasks gVisor runs for itself (sentry, gofer, stubs), measured
/// here: 38 with one application process.
pub const GVISOR_BASE_TASKS: i64 = 48;
/// Host tasks gVisor adds per application process (about 9 measured).
pub const GVISOR_TASKS_PER_PROCESS: i64 = 12;

/// The cgroup's `pids.max` for `pids` application processes. Under gVisor
/// (`runsc`) the cgroup counts gVisor's own host tasks too, so the limit
/// is scaled to still allow `pids` processes of the code, and no more than
/// about that many (a fork bomb is still contained).
pub fn cgroup_pids(pids: i64, runtime: Option<&str>) -> i64 {
    match runtime {
        Some("runsc") => GVISOR_BASE_TASKS + pids * GVISOR_TASKS_PER_PROCESS,
        _ => pids,
    }
}

fn ulimit(name: &str, value: i64) -> ResourcesUlimits {
    ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(value),
        hard: Some(value),
    }
}

/// The container configuration for `profile` placed as `p`.
pub fn container_body(profile: &Profile, p: &Placement<'_>) -> ContainerCreateBody {
    let l = &profile.limits;
    let mut security_opt = Vec::new();
    if profile.no_new_privileges {
        security_opt.push("no-new-privileges:true".to_string());
    }
    if profile.strict_seccomp {
        security_opt.push(crate::seccomp::security_opt());
    }
    let tmp_flags = if profile.tmp_noexec {
        "rw,noexec,nosuid,nodev"
    } else {
        "rw,nosuid,nodev"
    };
    let cpu_secs = l.cpu.as_secs_f64().ceil().max(1.0) as i64;
    let mut ulimits = vec![
        ulimit("nofile", l.open_files as i64),
        ulimit("fsize", l.file_size as i64),
        ResourcesUlimits {
            name: Some("cpu".into()),
            soft: Some(cpu_secs),
            hard: Some(cpu_secs + 1),
        },
    ];
    if profile.no_core_dumps {
        ulimits.push(ulimit("core", 0));
    }
    let mut labels = HashMap::from([(SANDBOX_LABEL.to_string(), std::process::id().to_string())]);
    let network_mode = match &profile.network {
        Network::None => "none".to_string(),
        Network::Policy { policy, network } => {
            labels.insert(POLICY_LABEL.into(), policy.clone());
            network.clone()
        }
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode),
        readonly_rootfs: Some(profile.read_only_root),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            format!("{tmp_flags},size={},mode=1777", l.tmp_size),
        )])),
        mounts: Some(vec![Mount {
            target: Some(profile.work_dir.clone()),
            source: Some(p.work_host.to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(false),
            ..Default::default()
        }]),
        cap_drop: profile.drop_all_caps.then(|| vec!["ALL".to_string()]),
        security_opt: Some(security_opt),
        cgroupns_mode: Some(if profile.private_cgroupns {
            HostConfigCgroupnsModeEnum::PRIVATE
        } else {
            HostConfigCgroupnsModeEnum::HOST
        }),
        ipc_mode: Some(if profile.private_ipc {
            "private".into()
        } else {
            "shareable".into()
        }),
        pids_limit: Some(cgroup_pids(l.pids, profile.runtime.as_deref())),
        memory: Some(l.memory as i64),
        memory_swap: Some(l.memory as i64),
        cpu_period: Some(CPU_PERIOD_US),
        cpu_quota: Some((l.cpus * CPU_PERIOD_US as f64).round() as i64),
        ulimits: Some(ulimits),
        init: Some(profile.init),
        log_config: profile.no_logs.then(|| HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        runtime: profile.runtime.clone(),
        cgroup_parent: p.cgroup_parent.clone(),
        ..Default::default()
    };
    let user = if profile.non_root {
        format!("{0}:{0}", p.uid)
    } else {
        "0:0".into()
    };
    ContainerCreateBody {
        image: Some(p.image_id.to_string()),
        cmd: Some(p.cmd.to_vec()),
        user: Some(user),
        working_dir: Some(profile.work_dir.clone()),
        env: Some(vec![
            format!("HOME={}", profile.work_dir),
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin".into(),
        ]),
        hostname: Some("sandbox".into()),
        labels: Some(labels),
        attach_stdin: Some(p.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(p.stdin),
        stdin_once: Some(p.stdin),
        tty: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_locks_down() {
        let cmd = vec!["true".to_string()];
        let p = Placement {
            image_id: "sha256:abc",
            cmd: &cmd,
            uid: 100_001,
            work_host: "/run/x",
            cgroup_parent: None,
            stdin: false,
        };
        let b = container_body(&Profile::default(), &p);
        let h = b.host_config.unwrap();
        assert_eq!(b.user.as_deref(), Some("100001:100001"));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(h.memory, h.memory_swap);
        assert!(h.tmpfs.unwrap()["/tmp"].contains("noexec"));
        let so = h.security_opt.unwrap();
        assert!(so.iter().any(|s| s == "no-new-privileges:true"));
        assert!(so.iter().any(|s| s.starts_with("seccomp={")));
    }
}
