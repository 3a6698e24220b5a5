//! One run from start to verdict, in a fresh container.

use std::time::Instant;

use bollard::query_parameters::{AttachContainerOptionsBuilder, WaitContainerOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

use crate::container::Prepared;
use crate::files::{check_name, InputFile};
use crate::profile::Profile;
use crate::supervise::{supervise, Attached, OutputSink, Seen, StdinSource};
use crate::verdict::{classify, Verdict};
use crate::Error;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Image name, `name@sha256:DIGEST` or `sha256:ID`.
    pub image: String,
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// Files copied into the work directory first.
    pub files: Vec<InputFile>,
    /// The lockdown and limits.
    pub profile: Profile,
}

/// A connection to Docker and what the sandbox learned about the host.
#[derive(Debug, Clone)]
pub struct Sandbox {
    docker: Docker,
    cgroupfs: bool,
    runtimes: Vec<String>,
}

impl Sandbox {
    /// Connects to the local Docker daemon.
    pub async fn connect() -> Result<Sandbox, Error> {
        let env = |e: String| Error::Env(e);
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| env(format!("cannot reach Docker ({e}); start dockerd")))?;
        let info = docker
            .info()
            .await
            .map_err(|e| env(format!("Docker does not answer ({e}); start dockerd")))?;
        crate::sweep::sweep(&docker).await;
        Ok(Sandbox {
            docker,
            cgroupfs: info
                .cgroup_driver
                .as_ref()
                .is_none_or(|d| matches!(d, bollard::models::SystemInfoCgroupDriverEnum::CGROUPFS)),
            runtimes: info.runtimes.unwrap_or_default().into_keys().collect(),
        })
    }

    /// The Docker client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Whether Docker uses the cgroupfs driver (so CPU time and peak
    /// memory are measured).
    pub fn cgroupfs(&self) -> bool {
        self.cgroupfs
    }

    /// Checks what can be checked before creating anything.
    pub fn validate(&self, req: &RunRequest) -> Result<(), Error> {
        if req.cmd.is_empty() {
            return Err(Error::Invalid("no command given".into()));
        }
        for f in &req.files {
            check_name(&f.name).map_err(Error::Invalid)?;
        }
        if let Some(rt) = &req.profile.runtime {
            if !self.runtimes.contains(rt) {
                return Err(Error::Invalid(format!(
                    "runtime {rt} is not configured in Docker (known: {}); install it (apt-get install runsc) and register it in /etc/docker/daemon.json",
                    self.runtimes.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Runs `req` in a fresh container and returns its verdict; the
    /// container is removed whatever happens.
    pub async fn run(
        &self,
        req: &RunRequest,
        stdin: Option<StdinSource>,
        sink: Option<OutputSink>,
    ) -> Result<Verdict, Error> {
        self.validate(req)?;
        let image_id = crate::image::resolve(&self.docker, &req.image)
            .await
            .map_err(Error::Invalid)?;
        let run = Prepared::create(
            &self.docker,
            self.cgroupfs,
            &image_id,
            &req.cmd,
            &req.profile,
            stdin.is_some(),
        )
        .await
        .map_err(Error::Env)?;
        let result = self.run_prepared(&run, req, stdin, sink).await;
        run.remove().await;
        result
    }

    async fn run_prepared(
        &self,
        run: &Prepared,
        req: &RunRequest,
        stdin: Option<StdinSource>,
        sink: Option<OutputSink>,
    ) -> Result<Verdict, Error> {
        run.upload(&req.profile.work_dir, &req.files)
            .await
            .map_err(Error::Env)?;
        let opts = AttachContainerOptionsBuilder::new()
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let att = self
            .docker
            .attach_container(&run.name, Some(opts))
            .await
            .map_err(|e| Error::Env(format!("cannot attach to {}: {e}", run.name)))?;
        self.docker
            .start_container(&run.name, None)
            .await
            .map_err(|e| Error::Env(format!("cannot start {}: {e}", run.name)))?;
        let t0 = Instant::now();
        let docker = self.docker.clone();
        let name = run.name.clone();
        let exited = Box::pin(async move {
            let opts = WaitContainerOptionsBuilder::new()
                .condition("not-running")
                .build();
            let mut w = docker.wait_container(&name, Some(opts));
            while w.next().await.is_some() {}
        });
        let attached = Attached {
            output: att.output,
            input: att.input,
        };
        let seen = supervise(
            run,
            t0,
            attached,
            stdin,
            sink,
            &req.profile.limits,
            Some(exited),
        )
        .await;
        let state = self
            .docker
            .inspect_container(&run.name, None)
            .await
            .ok()
            .and_then(|i| i.state);
        let exit_code = state.as_ref().and_then(|s| s.exit_code);
        let oom_flag = state.and_then(|s| s.oom_killed).unwrap_or(false);
        Ok(verdict(run, seen, exit_code, oom_flag, false))
    }
}

/// The verdict from what the supervisor saw, the exit code and the
/// cgroup's figures.
pub(crate) fn verdict(
    run: &Prepared,
    seen: Seen,
    exit_code: Option<i64>,
    oom_flag: bool,
    pooled: bool,
) -> Verdict {
    let usage = run.cgroup.as_ref().map(|c| c.usage()).unwrap_or_default();
    let oom = usage.oom_kills + u64::from(oom_flag);
    let (status, signal) = classify(seen.kill, oom, exit_code);
    Verdict {
        status,
        exit_code,
        signal,
        wall_time: seen.wall.as_secs_f64(),
        cpu_time: usage.cpu.map(|c| c.as_secs_f64()),
        peak_memory: usage.peak_memory,
        stdout: String::from_utf8_lossy(&seen.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&seen.stderr).into_owned(),
        output_truncated: seen.truncated,
        uid: run.uid.get(),
        container: run.name.clone(),
        pooled,
    }
}
