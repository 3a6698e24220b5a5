//! A pool of warm containers: created and started ahead, idle, each used by
//! exactly one run and then removed.
//!
//! Starting a container (runtime, namespaces, cgroups, mounts, seccomp) is
//! most of a run's latency. A warm container has done all of that and
//! idles in `sleep`; the run is an exec in it, which inherits the
//! container's whole lockdown (user, capabilities, no-new-privileges,
//! seccomp, namespaces, cgroup limits, read-only root). A pooled container
//! shares nothing with any other run: it is created for one run, gets its
//! own uid, work tmpfs and cgroup, and is removed afterwards, like a cold
//! one. What it costs: the limits fixed at creation (memory, pids, CPUs,
//! tmpfs sizes, ulimits) are the pool's, so only requests asking for
//! exactly those use it; the CPU time counted includes the idle `sleep`
//! (a millisecond or so); a container idles until used or for an hour.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bollard::exec::{CreateExecOptions, StartExecResults};
use tokio::sync::{Mutex, Notify};

use crate::container::Prepared;
use crate::profile::Profile;
use crate::run::{verdict, RunRequest, Sandbox};
use crate::supervise::{supervise, Attached, OutputSink, StdinSource};
use crate::{Error, Verdict};

/// What a warm container idles in (the image needs `sleep`).
pub const IDLE: &[&str] = &["sleep", "3600"];

/// Warm containers of one image and profile.
pub struct Pool {
    sandbox: Sandbox,
    image: String,
    image_id: String,
    profile: Profile,
    size: usize,
    ready: Mutex<VecDeque<Prepared>>,
    wanted: Notify,
    /// Removals of used containers, running after their verdicts; the
    /// drain at shutdown waits for them (a removal cut off by the
    /// runtime's end would leave its container behind).
    removals: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl Pool {
    /// A pool keeping `size` warm containers of `image` under `profile`,
    /// filled by a background task.
    pub async fn start(
        sandbox: Sandbox,
        image: &str,
        profile: Profile,
        size: usize,
    ) -> Result<Arc<Pool>, Error> {
        let image_id = crate::image::resolve(sandbox.docker(), image)
            .await
            .map_err(Error::Invalid)?;
        let pool = Arc::new(Pool {
            sandbox,
            image: image.to_string(),
            image_id,
            profile,
            size,
            ready: Mutex::new(VecDeque::new()),
            wanted: Notify::new(),
            removals: std::sync::Mutex::default(),
        });
        // The first container is made here, so that a broken image or
        // profile fails now rather than in the background.
        let first = pool.warm_one().await?;
        pool.ready.lock().await.push_back(first);
        tokio::spawn(refill(Arc::downgrade(&pool)));
        pool.wanted.notify_one();
        Ok(pool)
    }

    /// Whether `req` can run in this pool's containers: same image, same
    /// profile except the limits the supervisor enforces (wall, CPU,
    /// output).
    pub fn fits(&self, req: &RunRequest) -> bool {
        let mut p = req.profile.clone();
        p.limits.wall = self.profile.limits.wall;
        p.limits.cpu = self.profile.limits.cpu;
        p.limits.output = self.profile.limits.output;
        req.image == self.image && p == self.profile
    }

    /// Takes a warm container, if one is ready.
    pub async fn take(&self) -> Option<Prepared> {
        let got = self.ready.lock().await.pop_front();
        self.wanted.notify_one();
        got
    }

    async fn warm_one(&self) -> Result<Prepared, Error> {
        let idle: Vec<String> = IDLE.iter().map(|s| s.to_string()).collect();
        let p = Prepared::create(
            self.sandbox.docker(),
            self.sandbox.cgroupfs(),
            &self.image_id,
            &idle,
            &self.profile,
            false,
        )
        .await
        .map_err(Error::Env)?;
        self.sandbox
            .docker()
            .start_container(&p.name, None)
            .await
            .map_err(|e| Error::Env(format!("cannot start warm container {}: {e}", p.name)))?;
        Ok(p)
    }

    /// Removes every warm container, and waits for the removals of used
    /// ones still under way.
    pub async fn drain(&self) {
        let all: Vec<Prepared> = self.ready.lock().await.drain(..).collect();
        for p in all {
            p.remove().await;
        }
        let mut removals =
            std::mem::take(&mut *self.removals.lock().unwrap_or_else(|e| e.into_inner()));
        while removals.join_next().await.is_some() {}
    }

    /// Runs `req` (which must [`fits`](Self::fits)) in the warm container
    /// `warm`; the container is removed in the background, after the
    /// verdict is returned (and, should the runtime stop first, by the
    /// container guard's drop).
    pub async fn run(
        &self,
        warm: Prepared,
        req: &RunRequest,
        stdin: Option<StdinSource>,
        sink: Option<OutputSink>,
    ) -> Result<Verdict, Error> {
        let result = exec_run(&self.sandbox, &warm, req, stdin, sink).await;
        {
            let mut removals = self.removals.lock().unwrap_or_else(|e| e.into_inner());
            // Finished removals are reaped here, so the set stays small.
            while removals.try_join_next().is_some() {}
            removals.spawn(warm.remove());
        }
        result
    }
}

async fn refill(pool: std::sync::Weak<Pool>) {
    loop {
        let Some(p) = pool.upgrade() else { return };
        let missing = p.size.saturating_sub(p.ready.lock().await.len());
        if missing == 0 {
            // Wake when a container is taken; look again every second so
            // that the task ends soon after the pool is dropped.
            let wanted = p.wanted.notified();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wanted).await;
            continue;
        }
        match p.warm_one().await {
            Ok(c) => p.ready.lock().await.push_back(c),
            Err(e) => {
                tracing::warn!("sandbox pool: {e}");
                drop(p);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

async fn exec_run(
    sandbox: &Sandbox,
    warm: &Prepared,
    req: &RunRequest,
    stdin: Option<StdinSource>,
    sink: Option<OutputSink>,
) -> Result<Verdict, Error> {
    let docker = sandbox.docker();
    warm.upload(&req.profile.work_dir, &req.files)
        .await
        .map_err(Error::Env)?;
    let user = format!("{0}:{0}", warm.uid.get());
    let exec = docker
        .create_exec(
            &warm.name,
            CreateExecOptions {
                attach_stdin: Some(stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(req.cmd.clone()),
                user: Some(user),
                working_dir: Some(req.profile.work_dir.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::Env(format!("cannot exec in {}: {e}", warm.name)))?;
    let started = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| Error::Env(format!("cannot start exec in {}: {e}", warm.name)))?;
    let t0 = Instant::now();
    let StartExecResults::Attached { output, input } = started else {
        return Err(Error::Env(format!("exec in {} did not attach", warm.name)));
    };
    let seen = supervise(
        warm,
        t0,
        Attached { output, input },
        stdin,
        sink,
        &req.profile.limits,
        None,
    )
    .await;
    let exit_code = if seen.kill.is_some() {
        Some(137)
    } else {
        docker
            .inspect_exec(&exec.id)
            .await
            .ok()
            .and_then(|i| i.exit_code)
    };
    Ok(verdict(warm, seen, exit_code, false, true))
}
