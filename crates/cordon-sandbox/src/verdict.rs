//! The outcome of a run: a status, the figures, and the (capped) output.

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exited with code 0 within every limit.
    Ok,
    /// Exited with a non-zero code.
    RuntimeError,
    /// Exceeded its wall or CPU time.
    TimeLimit,
    /// Killed by the OOM killer at its memory limit.
    MemoryLimit,
    /// Wrote more than its output limit.
    OutputLimit,
    /// Killed by a signal (other than the limits above).
    Signal,
}

impl Status {
    /// The upper-case name shown in tables (`OK`, `TIME_LIMIT`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::RuntimeError => "RUNTIME_ERROR",
            Status::TimeLimit => "TIME_LIMIT",
            Status::MemoryLimit => "MEMORY_LIMIT",
            Status::OutputLimit => "OUTPUT_LIMIT",
            Status::Signal => "SIGNAL",
        }
    }
}

/// Why the supervisor itself ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Wall time ran out.
    Wall,
    /// CPU time ran out.
    Cpu,
    /// Output limit exceeded.
    Output,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// How it ended.
    pub status: Status,
    /// The exit code (128 + N when killed by signal N), if it exited.
    pub exit_code: Option<i64>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Seconds from start to exit.
    pub wall_time: f64,
    /// CPU seconds of all its processes, when measured.
    pub cpu_time: Option<f64>,
    /// Peak memory in bytes, when measured.
    pub peak_memory: Option<u64>,
    /// Standard output (lossy UTF-8), up to the output limit.
    pub stdout: String,
    /// Standard error (lossy UTF-8), up to the output limit.
    pub stderr: String,
    /// True when output was cut at the limit.
    pub output_truncated: bool,
    /// The uid the code ran as.
    pub uid: u32,
    /// The (removed) container's name.
    pub container: String,
    /// True when it ran in a warm container of the pool.
    #[serde(default)]
    pub pooled: bool,
}

/// Signal numbers the verdict names.
const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;

/// The status of a run from what the supervisor and the kernel saw.
pub fn classify(
    kill: Option<Kill>,
    oom_kills: u64,
    exit_code: Option<i64>,
) -> (Status, Option<i32>) {
    let signal = exit_code
        .filter(|c| (129..=128 + 64).contains(c))
        .map(|c| (c - 128) as i32);
    let status = match kill {
        Some(Kill::Wall | Kill::Cpu) => Status::TimeLimit,
        Some(Kill::Output) => Status::OutputLimit,
        None if oom_kills > 0 => Status::MemoryLimit,
        None => match (signal, exit_code) {
            (Some(SIGXCPU), _) => Status::TimeLimit,
            (Some(_), _) => Status::Signal,
            (None, Some(0)) => Status::Ok,
            _ => Status::RuntimeError,
        },
    };
    (status, signal.or(kill.map(|_| SIGKILL)))
}

impl Verdict {
    /// A two-column table for people.
    pub fn table(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let rows = [
            ("status", self.status.label().to_string()),
            ("exit code", opt(self.exit_code.map(|c| c.to_string()))),
            ("signal", opt(self.signal.map(|s| s.to_string()))),
            ("wall time", format!("{:.3} s", self.wall_time)),
            ("cpu time", opt(self.cpu_time.map(|c| format!("{c:.3} s")))),
            (
                "peak memory",
                opt(self
                    .peak_memory
                    .map(|m| format!("{:.1} MiB", m as f64 / 1048576.0))),
            ),
            (
                "output",
                if self.output_truncated {
                    "truncated"
                } else {
                    "complete"
                }
                .into(),
            ),
            ("uid", self.uid.to_string()),
        ];
        rows.iter().map(|(k, v)| format!("{k:<12} {v}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify(None, 0, Some(0)), (Status::Ok, None));
        assert_eq!(classify(None, 0, Some(3)), (Status::RuntimeError, None));
        assert_eq!(classify(None, 1, Some(137)).0, Status::MemoryLimit);
        assert_eq!(
            classify(Some(Kill::Wall), 0, Some(137)).0,
            Status::TimeLimit
        );
        assert_eq!(
            classify(Some(Kill::Output), 0, Some(137)).0,
            Status::OutputLimit
        );
        assert_eq!(classify(None, 0, Some(152)), (Status::TimeLimit, Some(24)));
        assert_eq!(classify(None, 0, Some(139)), (Status::Signal, Some(11)));
    }
}
