//! `cordon sandbox` in the lab: output, identity, filesystem, network,
//! limits and verdicts, attacks that must fail (each next to a positive
//! control where one makes sense), the lockdown probe, the default profile
//! against the created container's inspect, and the HTTP API with its pool.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use cordon_lab::{ContainerOpts, TestContainer, TEST_IMAGE};
use serde_json::Value;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The host state of the tests' runs (uid locks, work directories): one
/// directory shared by every test process (slots are taken with `flock`,
/// work directories carry the process id), so that runs do not accumulate
/// directories.
fn state_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join("cordon-sbx-test");
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// A finished `cordon sandbox run -o json`.
struct Ran {
    code: Option<i32>,
    v: Value,
    stderr: String,
}

impl Ran {
    fn status(&self) -> &str {
        self.v["status"].as_str().unwrap_or("?")
    }
    fn stdout(&self) -> &str {
        self.v["stdout"].as_str().unwrap_or("")
    }
    fn err(&self) -> &str {
        self.v["stderr"].as_str().unwrap_or("")
    }
}

fn cordon_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(CORDON);
    c.args(args).env("CORDON_SANDBOX_STATE", state_dir());
    c
}

/// `cordon sandbox run -o json OPTS IMAGE -- sh -c SCRIPT` with `stdin`.
fn run_with(opts: &[&str], stdin: &str, script: &str) -> Ran {
    let mut args = vec!["sandbox", "run", "-o", "json"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[TEST_IMAGE, "--", "sh", "-c", script]);
    let mut child = cordon_cmd(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cordon");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    parse(out)
}

fn parse(out: Output) -> Ran {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON verdict ({e}); exit {:?}, stderr: {stderr}, stdout: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        )
    });
    Ran {
        code: out.status.code(),
        v,
        stderr,
    }
}

fn run(opts: &[&str], script: &str) -> Ran {
    run_with(opts, "", script)
}

/// Containers of the sandbox (label `cordon.sandbox`) that still exist,
/// and work directories still mounted.
fn leftovers() -> Vec<String> {
    use bollard::query_parameters::ListContainersOptionsBuilder;
    let d = cordon_lab::docker::client();
    let filters = HashMap::from([("label", vec!["cordon.sandbox"])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let mut found: Vec<String> = cordon_lab::docker::block_on(d.list_containers(Some(opts)))
        .unwrap_or_default()
        .into_iter()
        .map(|c| format!("container {:?}", c.names))
        .collect();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let work = state_dir().join("work").display().to_string();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&work))
            .map(|l| format!("mount {l}")),
    );
    found
}

/// Sets up a sandbox lab test and, when dropped, checks that nothing of
/// the sandbox was left behind.
struct Clean;

impl Drop for Clean {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // Docker removes a container asynchronously, and the server
            // removes a used pool container after the verdict: on a loaded
            // host that can take seconds. Left behind means still there
            // after 15 s.
            let mut left = leftovers();
            for _ in 0..75 {
                if left.is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
                left = leftovers();
            }
            assert_eq!(left, Vec::<String>::new(), "left behind");
        }
    }
}

/// The skip check, then the lab lock for the whole test, the image, and
/// the leftover check (which drops first, while the lock is still held).
/// `None` (after one `skipped:` line) when the lab cannot run here.
fn lab() -> Option<(Clean, cordon_lab::LabLock)> {
    if let Some(reason) = cordon_lab::require_root_docker_nft() {
        cordon_lab::skip::skip(&reason);
        return None;
    }
    let lock = cordon_lab::lock();
    cordon_lab::ensure_test_image();
    Some((Clean, lock))
}

/// The lockdown probe, built statically (so that it runs in the busybox
/// image) once per test process.
fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("probe");
        let triple = "x86_64-unknown-linux-gnu";
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "cordon-probe",
                "--release",
                "--target",
                triple,
            ])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
            .env("CARGO_PROFILE_RELEASE_STRIP", "true")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cannot build cordon-probe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join(triple).join("release/cordon-probe")
    })
}

#[test]
fn output_stdin_and_files_pass_through() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prog.sh");
    std::fs::write(&src, "echo from-file; cat data/in.txt\n").unwrap();
    let data = dir.path().join("in.txt");
    std::fs::write(&data, "nested\n").unwrap();
    let f1 = format!("prog.sh={}", src.display());
    let f2 = format!("data/in.txt={}", data.display());
    let r = run_with(
        &["--file", &f1, "--file", &f2],
        "from-stdin\n",
        "cat; sh prog.sh; echo to-stderr >&2",
    );
    assert_eq!(r.status(), "ok", "{}", r.stderr);
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout(), "from-stdin\nfrom-file\nnested\n");
    assert_eq!(r.err(), "to-stderr\n");
    assert_eq!(r.v["exit_code"], 0);
    assert!(r.v["peak_memory"].as_u64().is_some_and(|m| m > 0));

    let r = run(&[], "echo out; exit 3");
    assert_eq!(r.status(), "runtime_error");
    assert_eq!(r.v["exit_code"], 3);
    assert_eq!(r.code, Some(1), "a non-OK verdict exits 1");
    assert!(r.stderr.contains("RUNTIME_ERROR"), "{}", r.stderr);

    let r = run(&[], "kill -SEGV $$");
    assert_eq!((r.status(), &r.v["signal"]), ("signal", &Value::from(11)));

    // Text mode streams the output and ends with the table on stderr.
    let out = cordon_cmd(&["sandbox", "run", TEST_IMAGE, "--", "echo", "streamed"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "streamed\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("status       OK"));
}

#[test]
fn code_runs_as_a_non_root_uid_unique_per_concurrent_run() {
    let Some(_lab) = lab() else { return };
    let spawn = || {
        cordon_cmd(&[
            "sandbox",
            "run",
            "-o",
            "json",
            TEST_IMAGE,
            "--",
            "sh",
            "-c",
            "id -u; sleep 2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let a = parse(a.wait_with_output().unwrap());
    let b = parse(b.wait_with_output().unwrap());
    let uid = |r: &Ran| r.stdout().trim().parse::<u32>().unwrap();
    assert!(uid(&a) >= 100_000 && uid(&b) >= 100_000);
    assert_ne!(uid(&a), uid(&b), "concurrent runs share a uid");
    assert_eq!(uid(&a), a.v["uid"].as_u64().unwrap() as u32);
}

#[test]
fn root_filesystem_is_read_only_and_tmp_is_noexec() {
    let Some(_lab) = lab() else { return };
    let r = run(
        &[],
        "touch /work/w && echo work-ok; touch /tmp/t && echo tmp-ok; \
         touch /bin/x || echo root-ro; touch /etc/x || echo etc-ro; \
         cat /bin/busybox > /work/true && chmod 700 /work/true && /work/true && echo work-exec; \
         cat /bin/busybox > /tmp/true && chmod 700 /tmp/true && /tmp/true || echo tmp-noexec",
    );
    let out = r.stdout();
    // Positive controls: the writable places are writable, /work runs code.
    for want in ["work-ok", "tmp-ok", "work-exec"] {
        assert!(out.contains(want), "{want} missing: {out} / {}", r.err());
    }
    for want in ["root-ro", "etc-ro", "tmp-noexec"] {
        assert!(out.contains(want), "{want} missing: {out} / {}", r.err());
    }
    assert!(r.err().contains("Read-only file system"), "{}", r.err());
}

#[test]
fn there_is_no_network() {
    let Some(_lab) = lab() else { return };
    // Positive control: a plain container has an interface and a route out.
    let plain = TestContainer::run(ContainerOpts::new("sbx-plain"));
    let p = plain.exec(&["sh", "-c", "ls /sys/class/net; ip route"]);
    assert!(
        p.stdout.contains("eth0") && p.stdout.contains("default"),
        "{}",
        p.output()
    );
    let r = run(&[], "ls /sys/class/net; ip route; echo end");
    assert_eq!(
        r.stdout().split_whitespace().collect::<Vec<_>>(),
        ["lo", "end"]
    );
    let gw = plain.inspect().network_settings.unwrap().networks.unwrap()["bridge"]
        .gateway
        .clone()
        .unwrap();
    let r = run(
        &[],
        &format!("nc -w 1 {gw} 9 </dev/null && echo reached || echo unreachable"),
    );
    assert!(r.stdout().contains("unreachable"), "{}", r.stdout());
}

#[test]
fn an_infinite_loop_ends_with_a_time_limit() {
    let Some(_lab) = lab() else { return };
    let r = run(&["--wall", "2", "--cpu", "30"], "while :; do :; done");
    assert_eq!(r.status(), "time_limit", "{}", r.stderr);
    assert_eq!(r.v["signal"], 9);
    let r = run(&["--wall", "30", "--cpu", "1"], "while :; do :; done");
    assert_eq!(r.status(), "time_limit", "{}", r.stderr);
    // RLIMIT_CPU and the cgroup count at tick granularity.
    assert!(r.v["cpu_time"].as_f64().unwrap() >= 0.9, "{}", r.v);
    // Positive control: a sleeper uses no CPU and is stopped by wall time.
    let r = run(&["--wall", "1", "--cpu", "30"], "sleep 60");
    assert_eq!(r.status(), "time_limit");
}

#[test]
fn a_memory_bomb_gets_the_memory_verdict() {
    let Some(_lab) = lab() else { return };
    let bomb = "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done";
    let r = run(&["--memory", "32m", "--wall", "30"], bomb);
    assert_eq!(r.status(), "memory_limit", "{}", r.stderr);
    let peak = r.v["peak_memory"].as_u64().unwrap();
    // The parent cgroup's watermark may exceed the limit by a few pages.
    assert!(peak > 16 << 20 && peak <= 33 << 20, "peak {peak}");
    // Positive control: a small string is fine.
    let r = run(&["--memory", "32m"], "x=aaaa; x=$x$x; echo ${#x}");
    assert_eq!((r.status(), r.stdout()), ("ok", "8\n"));
}

#[test]
fn a_fork_bomb_is_contained_by_the_pids_limit() {
    let Some(_lab) = lab() else { return };
    // A subshell starts the sleepers (a failed fork ends it, not the
    // script); then only shell builtins count the processes in /proc.
    let spawn40 = "(i=0; while [ $i -lt 40 ]; do sleep 20 & i=$((i+1)); done) 2>/dev/null; \
                   n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n";
    // Positive control: with room, all 40 sleepers start.
    let r = run(&["--pids", "64"], spawn40);
    let n: u32 = r.stdout().trim().parse().unwrap();
    assert!(n > 40, "{n}");
    let r = run(&["--pids", "16"], spawn40);
    let n: u32 = r.stdout().trim().parse().unwrap();
    assert!(n <= 16, "{n} processes under a limit of 16");
    // The bomb's shell then waits in a builtin loop: a `sleep` there would
    // need a fork, which the exhausted pids limit may refuse, ending the
    // run early with an error instead of at its time limit.
    let r = run(&["--wall", "3"], "b() { b | b & }; b; while :; do :; done");
    assert_eq!(r.status(), "time_limit", "{}", r.stderr);
    // The host and the next run are fine.
    assert_eq!(run(&[], "echo alive").stdout(), "alive\n");
}

#[test]
fn a_disk_fill_is_contained() {
    let Some(_lab) = lab() else { return };
    let size = |r: &Ran| -> u64 { r.stdout().trim().parse().unwrap() };
    // Positive control: 8 MiB fit.
    let r = run(
        &[],
        "dd if=/dev/zero of=/work/f bs=1M count=8 2>/dev/null; wc -c < /work/f",
    );
    assert_eq!(size(&r), 8 << 20);
    for dir in ["/work", "/tmp"] {
        let r = run(
            &["--memory", "512m"],
            &format!("dd if=/dev/zero of={dir}/f bs=1M count=200 2>/dev/null; wc -c < {dir}/f"),
        );
        assert!(size(&r) <= 64 << 20, "{dir}: {}", size(&r));
    }
}

#[test]
fn an_output_flood_is_cut_at_the_limit() {
    let Some(_lab) = lab() else { return };
    let r = run(
        &["--max-output", "64k"],
        "while :; do echo yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done",
    );
    assert_eq!(r.status(), "output_limit", "{}", r.stderr);
    assert_eq!(r.stdout().len(), 64 << 10);
    assert_eq!(r.v["output_truncated"], true);
    // Positive control: output under the limit is complete.
    let r = run(&["--max-output", "64k"], "seq 1000");
    assert_eq!((r.status(), r.stdout().lines().count()), ("ok", 1000));
}

#[test]
fn escapes_fail_where_a_plain_container_succeeds() {
    let Some(_lab) = lab() else { return };
    // Positive controls in an unconfined container.
    let plain = TestContainer::run(
        ContainerOpts::new("sbx-unconfined")
            .security_opt("seccomp=unconfined")
            .cap_add("SYS_ADMIN"),
    );
    let p = plain.exec(&["sh", "-c", "unshare -U id -u"]);
    assert!(
        p.success(),
        "unshare -U in an unconfined container: {}",
        p.output()
    );
    let p = plain.exec(&["sh", "-c", "mount -t tmpfs x /tmp && echo mounted"]);
    assert!(p.stdout.contains("mounted"), "{}", p.output());
    assert!(
        Path::new("/var/run/docker.sock").exists(),
        "the host has the socket"
    );

    let r = run(&[], "unshare -U id -u && echo UNSHARED");
    assert!(!r.stdout().contains("UNSHARED"), "{}", r.stdout());
    assert!(r.err().contains("Operation not permitted"), "{}", r.err());
    let r = run(&[], "mount -t tmpfs x /tmp && echo MOUNTED");
    assert!(!r.stdout().contains("MOUNTED"), "{}", r.stdout());
    let r = run(&[], "echo h > /proc/sysrq-trigger && echo WROTE");
    assert!(!r.stdout().contains("WROTE"), "{}", r.stdout());
    let r = run(
        &[],
        "ls /var/run/docker.sock /run/docker.sock 2>&1; nc -U /var/run/docker.sock </dev/null && echo REACHED",
    );
    assert!(!r.stdout().contains("REACHED"), "{}", r.stdout());
    assert!(r.stdout().contains("No such file"), "{}", r.stdout());
}

#[test]
fn the_lockdown_probe_finds_zero_escape_vectors() {
    let Some(_lab) = lab() else { return };
    let probe = probe();
    // Positive control: on the host (root, every capability, no seccomp)
    // the probe finds plenty.
    let host = Command::new(probe).output().unwrap();
    let host: Value = serde_json::from_slice(&host.stdout).unwrap();
    let vectors = host["escape_vectors"].as_array().unwrap();
    assert!(vectors.iter().any(|v| v == "runs as root"), "{vectors:?}");
    assert!(vectors
        .iter()
        .any(|v| v.as_str().unwrap().starts_with("CapEff")));

    let spec = format!("probe={}", probe.display());
    let out = cordon_cmd(&[
        "sandbox", "run", "-o", "json", "--file", &spec, TEST_IMAGE, "--", "./probe",
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let r = parse(out);
    assert_eq!(r.status(), "ok", "{} {}", r.stderr, r.err());
    assert_locked_down(&serde_json::from_str(r.stdout()).unwrap());
}

/// The probe's report `p` shows no escape vector, no successful dangerous
/// call and no namespace shared with the host but the user namespace
/// (Docker has no per-container user namespaces without a daemon-wide
/// remap; the unique non-root uid and empty capability sets stand in).
fn assert_locked_down(p: &Value) {
    assert_eq!(p["escape_vectors"], serde_json::json!([]), "{p:#}");
    assert_eq!(p["caps"]["CapBnd"], "0000000000000000");
    assert_eq!(p["seccomp"], "2");
    assert_eq!(p["no_new_privs"], true);
    for (call, ok) in p["calls"].as_object().unwrap() {
        assert_eq!(ok, false, "{call} succeeded in the sandbox");
    }
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "uts"] {
        let hosts = std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .display()
            .to_string();
        assert!(p["namespaces"][ns].as_str().is_some_and(|s| !s.is_empty()));
        assert_ne!(
            p["namespaces"][ns],
            hosts.as_str(),
            "{ns} namespace is the host's"
        );
    }
}

#[test]
fn a_pooled_run_is_locked_down_like_a_cold_one() {
    let Some(_lab) = lab() else { return };
    let probe = std::fs::read(probe()).unwrap();
    let hex: String = probe.iter().map(|b| format!("{b:02x}")).collect();
    let srv = Server::start(&["--pool", "1", "--pool-image", TEST_IMAGE]);
    let req = serde_json::json!({
        "image": TEST_IMAGE,
        "cmd": ["./probe"],
        "files": [{"name": "probe", "content": hex, "encoding": "hex", "executable": true}],
    });
    let (code, v) = http(&srv.sock, "POST", "/api/v2/execute", &req.to_string());
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["verdict"]["pooled"], true, "{v}");
    assert_eq!(v["run"]["status"], "ok", "{v}");
    assert_locked_down(&serde_json::from_str(v["run"]["stdout"].as_str().unwrap()).unwrap());
}

#[test]
fn the_default_profile_is_what_the_container_gets() {
    use cordon_sandbox::container::Prepared;
    use cordon_sandbox::{Network, Profile};
    let Some(_lab) = lab() else { return };
    std::env::set_var("CORDON_SANDBOX_STATE", state_dir());
    let profile = Profile::default();
    let l = &profile.limits;
    let d = cordon_lab::docker::client();
    let sb = cordon_lab::docker::block_on(cordon_sandbox::Sandbox::connect()).unwrap();
    let cmd = vec!["true".to_string()];
    let p = cordon_lab::docker::block_on(Prepared::create(
        d,
        sb.cgroupfs(),
        TEST_IMAGE,
        &cmd,
        &profile,
        false,
    ))
    .unwrap();
    let i = cordon_lab::docker::block_on(d.inspect_container(&p.name, None)).unwrap();
    let uid = p.uid.get();
    cordon_lab::docker::block_on(p.remove());
    let h = i.host_config.unwrap();
    let c = i.config.unwrap();
    assert_eq!(profile.network, Network::None);
    assert_eq!(h.network_mode.as_deref(), Some("none"));
    assert_eq!(h.readonly_rootfs, Some(profile.read_only_root));
    let tmp = &h.tmpfs.unwrap()["/tmp"];
    assert!(
        tmp.contains("noexec") && tmp.contains(&format!("size={}", l.tmp_size)),
        "{tmp}"
    );
    let mounts = h.mounts.unwrap();
    assert_eq!(mounts[0].target.as_deref(), Some(profile.work_dir.as_str()));
    assert_eq!(c.user, Some(format!("{uid}:{uid}")));
    assert!(uid >= cordon_sandbox::uid::FIRST_UID);
    assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
    let so = h.security_opt.unwrap();
    assert!(so.contains(&"no-new-privileges:true".to_string()), "{so:?}");
    let seccomp = so.iter().find_map(|s| s.strip_prefix("seccomp=")).unwrap();
    let seccomp: Value = serde_json::from_str(seccomp).unwrap();
    assert_eq!(seccomp, cordon_sandbox::seccomp::profile());
    assert_eq!(
        h.cgroupns_mode,
        Some(bollard::models::HostConfigCgroupnsModeEnum::PRIVATE)
    );
    assert_eq!(h.ipc_mode.as_deref(), Some("private"));
    assert_eq!(h.pids_limit, Some(l.pids));
    assert_eq!(h.memory, Some(l.memory as i64));
    assert_eq!(h.memory_swap, Some(l.memory as i64));
    assert_eq!(h.cpu_quota, Some((l.cpus * 100_000.0) as i64));
    assert_eq!(h.cpu_period, Some(100_000));
    let ulimits: HashMap<String, (i64, i64)> = h
        .ulimits
        .unwrap()
        .into_iter()
        .map(|u| (u.name.unwrap(), (u.soft.unwrap(), u.hard.unwrap())))
        .collect();
    assert_eq!(ulimits["core"], (0, 0));
    assert_eq!(
        ulimits["nofile"],
        (l.open_files as i64, l.open_files as i64)
    );
    assert_eq!(ulimits["fsize"], (l.file_size as i64, l.file_size as i64));
    assert_eq!(h.init, Some(true));
    assert_eq!(h.log_config.unwrap().typ.as_deref(), Some("none"));
    assert_eq!(
        i.image.as_deref().map(|s| s.starts_with("sha256:")),
        Some(true)
    );
}

#[test]
fn images_are_pinned_and_runtimes_checked() {
    let Some(_lab) = lab() else { return };
    let d = cordon_lab::docker::client();
    let id = cordon_lab::docker::block_on(d.inspect_image(TEST_IMAGE))
        .unwrap()
        .id
        .unwrap();
    let ok = cordon_cmd(&["sandbox", "run", &id, "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = format!("{TEST_IMAGE}@sha256:{}", "0".repeat(64));
    let bad = cordon_cmd(&["sandbox", "run", &wrong, "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let rt = cordon_cmd(&[
        "sandbox",
        "run",
        "--runtime",
        "no-such-rt",
        TEST_IMAGE,
        "--",
        "true",
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(rt.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&rt.stderr);
    assert!(
        msg.contains("runtime no-such-rt is not configured"),
        "{msg}"
    );
}

/// One HTTP/1.1 request over a unix socket; (status, JSON body).
fn http(sock: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A `cordon sandbox serve` child, stopped with SIGTERM on drop.
struct Server {
    child: std::process::Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("sandbox.sock");
        let mut args = vec!["sandbox", "serve", "--socket", sock.to_str().unwrap()];
        args.extend_from_slice(extra);
        let child = cordon_cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // From here on the guard stops the child, also when this panics.
        let srv = Server {
            child,
            sock,
            _dir: dir,
        };
        for _ in 0..300 {
            if srv.sock.exists() {
                return srv;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("cordon sandbox serve did not listen");
    }

    fn stop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn the_http_api_runs_code_with_a_pool_and_a_bounded_queue() {
    let Some(_lab) = lab() else { return };
    let lang = format!("sh={TEST_IMAGE}");
    let mut srv = Server::start(&[
        "--pool",
        "1",
        "--pool-image",
        TEST_IMAGE,
        "--concurrency",
        "1",
        "--queue",
        "0",
        "--language",
        &lang,
    ]);
    assert_eq!(http(&srv.sock, "GET", "/api/v2/health", "").0, 200);
    let req = serde_json::json!({
        "language": "sh",
        "files": [{"name": "main.sh", "content": "cat; echo \"args $*\"; id -u"}],
        "stdin": "in",
        "args": ["a", "b"],
    });
    let (code, v) = http(&srv.sock, "POST", "/api/v2/execute", &req.to_string());
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["run"]["status"], "ok", "{v}");
    let out = v["run"]["stdout"].as_str().unwrap();
    assert!(out.starts_with("inargs a b\n1"), "{out}");
    // The first request took the warm container; a limit the pool was
    // not made with runs cold.
    assert_eq!(v["verdict"]["pooled"], true, "{v}");
    let cold = serde_json::json!({"image": TEST_IMAGE, "cmd": ["sh", "-c", "while :; do :; done"],
        "run_timeout": 1000, "run_memory_limit": 64 << 20});
    let (code, v) = http(&srv.sock, "POST", "/api/v2/execute", &cold.to_string());
    assert_eq!(
        (code, &v["run"]["status"]),
        (200, &Value::from("time_limit")),
        "{v}"
    );
    assert_eq!(v["verdict"]["pooled"], false);

    // Bounded: one run at once, no queue: a second request gets 503.
    let sock = srv.sock.clone();
    let busy = std::thread::spawn(move || {
        let slow = serde_json::json!({"image": TEST_IMAGE, "cmd": ["sleep", "3"]});
        http(&sock, "POST", "/api/v2/execute", &slow.to_string()).0
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    let quick = serde_json::json!({"image": TEST_IMAGE, "cmd": ["true"]});
    let (code, v) = http(&srv.sock, "POST", "/api/v2/execute", &quick.to_string());
    assert_eq!(code, 503, "{v}");
    assert_eq!(busy.join().unwrap(), 200);
    let (code, _) = http(
        &srv.sock,
        "POST",
        "/api/v2/execute",
        r#"{"language":"cobol"}"#,
    );
    assert_eq!(code, 400);
    srv.stop();
    assert!(!srv.sock.exists(), "the socket is removed on exit");
}

#[test]
fn policy_networking_needs_the_daemon_and_bad_options_exit_2() {
    // No Docker needed: these are refused before anything is created.
    let out = cordon_cmd(&[
        "sandbox", "run", "--policy", "web", TEST_IMAGE, "--", "true",
    ])
    .env("CORDON_SOCKET", "/nonexistent/cordon.sock")
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("--policy web needs cordon's daemon"), "{msg}");
    for bad in [
        &["--memory", "lots"][..],
        &["--wall", "0"],
        &["--file", "no-equals-sign"],
    ] {
        let mut args = vec!["sandbox", "run"];
        args.extend_from_slice(bad);
        args.extend_from_slice(&[TEST_IMAGE, "--", "true"]);
        let out = cordon_cmd(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{bad:?}"
        );
    }
}

/// A throw-away image with busybox as `/bin/sh` and the probe as
/// `/bin/probe-suid`, owned by root with the setuid bit; removed on drop.
struct SuidImage(String);

impl SuidImage {
    fn build() -> SuidImage {
        use bollard::query_parameters::CreateImageOptionsBuilder;
        use futures_util::StreamExt;
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        };
        add("bin/", tar::EntryType::Directory, 0o755, b"");
        add("tmp/", tar::EntryType::Directory, 0o1777, b"");
        let busybox = std::fs::read("/bin/busybox").unwrap();
        add("bin/sh", tar::EntryType::Regular, 0o755, &busybox);
        let probe = std::fs::read(probe()).unwrap();
        add("bin/probe-suid", tar::EntryType::Regular, 0o4755, &probe);
        let tar = b.into_inner().unwrap();
        let name = format!("cordon-sbx-suid:{}", std::process::id());
        let (repo, tag) = name.split_once(':').unwrap();
        let opts = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .build();
        let d = cordon_lab::docker::client();
        cordon_lab::docker::block_on(async {
            let mut progress =
                d.create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
            while let Some(item) = progress.next().await {
                item.expect("import the setuid image");
            }
        });
        SuidImage(name)
    }
}

impl Drop for SuidImage {
    fn drop(&mut self) {
        let d = cordon_lab::docker::client();
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(true)
            .build();
        if let Err(e) = cordon_lab::docker::block_on(d.remove_image(&self.0, Some(opts), None)) {
            eprintln!("cannot remove image {}: {e}", self.0);
        }
    }
}

#[test]
fn a_setuid_root_binary_gains_nothing() {
    let Some(_lab) = lab() else { return };
    let image = SuidImage::build();
    // Positive control: the same profile without no-new-privileges makes
    // the setuid binary run with euid 0.
    std::env::set_var("CORDON_SANDBOX_STATE", state_dir());
    let profile = cordon_sandbox::Profile {
        no_new_privileges: false,
        ..Default::default()
    };
    let req = cordon_sandbox::RunRequest {
        image: image.0.clone(),
        cmd: vec!["/bin/probe-suid".into()],
        files: Vec::new(),
        profile,
    };
    let sb = cordon_lab::docker::block_on(cordon_sandbox::Sandbox::connect()).unwrap();
    let v = cordon_lab::docker::block_on(sb.run(&req, None, None)).unwrap();
    let p: Value = serde_json::from_str(&v.stdout).unwrap_or_else(|_| panic!("{v:?}"));
    assert_eq!(p["euid"], 0, "{p}");

    let out = cordon_cmd(&[
        "sandbox",
        "run",
        "-o",
        "json",
        &image.0,
        "--",
        "/bin/probe-suid",
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let r = parse(out);
    assert_eq!(r.status(), "ok", "{}", r.stderr);
    let p: Value = serde_json::from_str(r.stdout()).unwrap();
    assert_eq!(p["euid"], r.v["uid"], "{p}");
    assert_locked_down(&p);
}

#[test]
fn a_policy_run_is_held_to_its_cordon_policy() {
    // The lab holds the lock (so no `lab()` here: one lock per process).
    let lab = cordon_lab::lab_or_skip!(CORDON);
    let _clean = Clean;
    let (_inet, _lan) = lab.internet_and_lan("sbx", 128);
    let policy = lab.file(
        "sbx.yaml",
        "version: 1\npolicies:\n  - name: sbx\n    egress:\n      - to: [10.128.0.0/24]\n        ports: [80/tcp]\n",
    );
    // Positive controls: a plain container on the same bridge reaches both.
    let plain = lab.run(cordon_lab::Run::named("sbxctl"));
    assert!(lab.reaches(&plain, "10.128.0.2", 80, "hello-lan"));
    assert!(lab.reaches(&plain, "198.51.100.2", 80, "hello-inet"));

    let _daemon = lab.start_daemon(&["-c", &policy]);
    // Policy sbx allows the LAN server and nothing else: the opposite of
    // the default (internet, not the LAN), so the outcome shows which
    // policy held the run. Fail closed until the daemon has installed it:
    // retry the allowed target, then try the internet.
    let script = "i=0; until echo | nc -w 1 10.128.0.2 80 | grep -q hello-lan; do i=$((i+1)); [ $i -gt 20 ] && break; sleep 0.2; done; echo | nc -w 1 10.128.0.2 80; echo ---; echo | nc -w 2 198.51.100.2 80; echo end";
    let out = cordon_cmd(&[
        "sandbox",
        "run",
        "-o",
        "json",
        "--policy",
        "sbx",
        "--network",
        "bridge",
        TEST_IMAGE,
        "--",
        "sh",
        "-c",
        script,
    ])
    .env("CORDON_SOCKET", lab.socket())
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let ran = parse(out);
    let stdout = ran.stdout();
    assert!(stdout.contains("end"), "{stdout} {}", ran.stderr);
    let (lan_part, inet_part) = stdout.split_once("---").unwrap();
    assert!(
        lan_part.contains("hello-lan"),
        "the policy's LAN server: {stdout}"
    );
    assert!(!inet_part.contains("hello-inet"), "nothing else: {stdout}");
}

#[test]
fn a_gvisor_run_gets_gvisors_kernel_and_the_same_lockdown() {
    let Some(_lab) = lab() else { return };
    let d = cordon_lab::docker::client();
    let info = cordon_lab::docker::block_on(d.info()).unwrap();
    if !info.runtimes.is_some_and(|r| r.contains_key("runsc")) {
        cordon_lab::skip::skip(
            "needs Docker with gVisor registered as runtime `runsc` (apt-get install runsc; the dockerd scripts/test starts registers it)",
        );
        return;
    }
    let script = "cat /proc/version; id -u; touch /x 2>/dev/null && echo ROOT-WRITABLE; true";
    let host = std::fs::read_to_string("/proc/version").unwrap();
    // Positive control: runc shares the host's kernel, so the host's
    // /proc/version shows through.
    let plain = run(&[], script);
    assert_eq!(plain.status(), "ok", "{}", plain.stderr);
    assert!(plain.stdout().contains(host.trim()), "{}", plain.stdout());
    // Under gVisor the code talks to gVisor's kernel, not the host's, and
    // keeps the profile: a non-root uid, a read-only root.
    let g = run(&["--runtime", "runsc"], script);
    assert_eq!(g.status(), "ok", "{} {}", g.err(), g.stderr);
    let out = g.stdout();
    assert!(!out.contains(host.trim()), "the host's kernel shows: {out}");
    assert!(out.starts_with("Linux version"), "{out}");
    let uid: u32 = out.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(uid >= 100_000, "{out}");
    assert!(!out.contains("ROOT-WRITABLE"), "{out}");
    // The pids limit still holds the code's processes under gVisor (whose
    // own host tasks the cgroup also counts): 40 sleepers with room for
    // 64, not with room for 16.
    let spawn40 = "(i=0; while [ $i -lt 40 ]; do sleep 20 & i=$((i+1)); done) 2>/dev/null; \
                   n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n";
    let r = run(
        &["--runtime", "runsc", "--pids", "64", "--wall", "5"],
        spawn40,
    );
    let n: u32 = r.stdout().trim().parse().unwrap_or(0);
    assert!(n > 40, "room for 64: {n} ({} {})", r.stdout(), r.stderr);
    let r = run(
        &["--runtime", "runsc", "--pids", "16", "--wall", "5"],
        spawn40,
    );
    // gVisor's own tasks need room too: at the limit either the count
    // stays small, or gVisor cannot grow and the run ends as a runtime
    // error. Either way the processes were held and the host is fine.
    match r.stdout().trim().parse::<u32>() {
        Ok(n) => assert!(n <= 24, "{n} processes under a limit of 16"),
        Err(_) => assert_eq!(r.status(), "runtime_error", "{}", r.stderr),
    }
    let next = run(&["--runtime", "runsc"], "echo alive");
    assert_eq!(next.stdout(), "alive\n", "{}", next.stderr);
}
