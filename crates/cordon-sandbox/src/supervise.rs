//! Watching a started run: feeding stdin, collecting capped output, and
//! killing it at its wall time, CPU time or output limit.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::container::Prepared;
use crate::profile::Limits;
use crate::verdict::Kill;

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Called with each kept chunk of output as it arrives.
pub type OutputSink = Box<dyn FnMut(OutputKind, &[u8]) + Send>;

/// What the caller streams into a run.
pub type StdinSource = Pin<Box<dyn AsyncRead + Send>>;

/// How the CPU time is checked.
const CPU_POLL: Duration = Duration::from_millis(20);

/// After the process exited, how long remaining output may take.
const DRAIN: Duration = Duration::from_secs(2);

/// What the supervisor saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Why it killed the run, if it did.
    pub kill: Option<Kill>,
    /// From start to exit (or to the kill).
    pub wall: Duration,
    /// Kept standard output.
    pub stdout: Vec<u8>,
    /// Kept standard error.
    pub stderr: Vec<u8>,
    /// Whether output was cut.
    pub truncated: bool,
}

/// The attached streams of a started run.
pub struct Attached {
    /// Output from the container.
    pub output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    /// Input to the container.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// Supervises a run started at `t0` until it exits (`exited` resolves, or,
/// when `None`, its output ends) and its output is drained.
pub async fn supervise(
    run: &Prepared,
    t0: Instant,
    attached: Attached,
    stdin: Option<StdinSource>,
    mut sink: Option<OutputSink>,
    limits: &Limits,
    exited: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>>,
) -> Seen {
    let Attached { mut output, input } = attached;
    // Without stdin the input half stays open until the end: closing it
    // would read as a detach.
    let (feeder, _held) = match stdin {
        Some(src) => (Some(tokio::spawn(feed(src, input))), None),
        None => (None, Some(input)),
    };
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::from_std(t0 + limits.wall);
    let mut tick = tokio::time::interval(CPU_POLL);
    let mut exit_at: Option<Instant> = None;
    let mut output_done = false;
    let mut exited = exited;
    let no_exit_future = exited.is_none();
    loop {
        if output_done && (exit_at.is_some() || no_exit_future) {
            break;
        }
        let drain_over = exit_at.is_some_and(|t| t.elapsed() > DRAIN);
        if drain_over {
            break;
        }
        tokio::select! {
            chunk = output.next(), if !output_done => match chunk {
                Some(Ok(LogOutput::StdOut { message })) => {
                    if keep(&mut seen, OutputKind::Stdout, &message, limits.output, &mut sink) {
                        stop(run, &mut seen, Kill::Output, t0).await;
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    if keep(&mut seen, OutputKind::Stderr, &message, limits.output, &mut sink) {
                        stop(run, &mut seen, Kill::Output, t0).await;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!("output of {}: {e}", run.name);
                    output_done = true;
                }
                None => {
                    output_done = true;
                    if no_exit_future && exit_at.is_none() {
                        exit_at = Some(Instant::now());
                    }
                }
            },
            _ = async { exited.as_mut().expect("guarded").await }, if exited.is_some() && exit_at.is_none() => {
                exit_at = Some(Instant::now());
                exited = None;
            },
            _ = tokio::time::sleep_until(deadline), if seen.kill.is_none() && exit_at.is_none() => {
                stop(run, &mut seen, Kill::Wall, t0).await;
            },
            _ = tick.tick(), if seen.kill.is_none() && exit_at.is_none() => {
                let cpu = run.cgroup.as_ref().and_then(|c| c.cpu());
                if cpu.is_some_and(|c| c > limits.cpu) {
                    stop(run, &mut seen, Kill::Cpu, t0).await;
                }
            },
            _ = tokio::time::sleep(DRAIN), if exit_at.is_some() => {}
        }
    }
    if let Some(f) = feeder {
        f.abort();
    }
    if seen.kill.is_none() {
        seen.wall = exit_at.unwrap_or_else(Instant::now) - t0;
    }
    seen
}

/// Keeps what fits of `chunk`; true when the limit was exceeded.
fn keep(
    seen: &mut Seen,
    kind: OutputKind,
    chunk: &[u8],
    limit: u64,
    sink: &mut Option<OutputSink>,
) -> bool {
    let used = (seen.stdout.len() + seen.stderr.len()) as u64;
    let room = limit.saturating_sub(used) as usize;
    let kept = &chunk[..chunk.len().min(room)];
    if !kept.is_empty() {
        match kind {
            OutputKind::Stdout => seen.stdout.extend_from_slice(kept),
            OutputKind::Stderr => seen.stderr.extend_from_slice(kept),
        }
        if let Some(s) = sink.as_mut() {
            s(kind, kept);
        }
    }
    if chunk.len() > room {
        seen.truncated = true;
        return true;
    }
    false
}

async fn stop(run: &Prepared, seen: &mut Seen, why: Kill, t0: Instant) {
    if seen.kill.is_none() {
        seen.kill = Some(why);
        seen.wall = t0.elapsed();
        run.kill().await;
    }
}

async fn feed(mut src: StdinSource, mut input: Pin<Box<dyn AsyncWrite + Send>>) {
    if let Err(e) = tokio::io::copy(&mut src, &mut input).await {
        tracing::debug!("stdin: {e}");
    }
    let _ = input.shutdown().await;
}
