//! Reading the daemon's JSON log (`CORDON_LOG_FORMAT=json`): the batches
//! that changed elements, with the `lag_us`, `handled_us` and `events` of
//! the `policy live` line that preceded them, and its warnings.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

/// One batch of Docker events that changed elements in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Docker's `timeNano` of the batch's first event → installed, µs.
    pub lag_us: i64,
    /// Event received → installed, µs.
    pub handled_us: i64,
    /// Events in the batch.
    pub events: i64,
    /// When the daemon logged `policy live`, ns since the epoch.
    pub at_ns: i64,
}

/// Follows log lines in order and yields the element-changing batches.
///
/// The daemon logs `policy live` (with the figures) and then `event: N
/// element(s) changed`; any other `event:` line in between means the
/// `policy live` belonged to a batch that changed no element.
#[derive(Default)]
pub struct Batches {
    live: Option<Value>,
}

impl Batches {
    /// Feeds one line; returns the batch it completes, if any.
    pub fn line(&mut self, line: &str) -> Option<Batch> {
        let rec: Value = serde_json::from_str(line).ok()?;
        let msg = rec["fields"]["message"].as_str().unwrap_or("");
        if msg == "policy live" {
            self.live = Some(rec);
            return None;
        }
        if !msg.starts_with("event:") {
            return None;
        }
        let live = self.live.take()?;
        if !changed_elements(msg) {
            return None;
        }
        let f = &live["fields"];
        let int = |k: &str| {
            f[k].as_i64()
                .or_else(|| f[k].as_str().and_then(|s| s.parse().ok()))
        };
        Some(Batch {
            lag_us: int("lag_us")?,
            handled_us: int("handled_us")?,
            events: int("events")?,
            at_ns: live["timestamp"].as_str().and_then(epoch_ns)?,
        })
    }
}

/// `event: N element(s) changed ...`.
fn changed_elements(msg: &str) -> bool {
    msg.strip_prefix("event: ")
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && rest.starts_with("element(s) changed")
        })
}

/// An RFC 3339 time stamp as ns since the epoch, to the microsecond.
pub fn epoch_ns(ts: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(ts).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some(d.as_secs() as i64 * 1_000_000_000 + i64::from(d.subsec_micros()) * 1000)
}

/// Every element-changing batch of a whole log.
pub fn all_batches(text: &str) -> Vec<Batch> {
    let mut b = Batches::default();
    text.lines().filter_map(|l| b.line(l)).collect()
}

/// The lines of level WARN or ERROR.
pub fn warnings(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .is_some_and(|r| matches!(r["level"].as_str(), Some("WARN" | "ERROR")))
        })
        .collect()
}

/// `cordon-bench wait-live LOG OFFSET TIMEOUT_SECS`: reads LOG from byte
/// OFFSET, following it as it grows, until the first batch that changed
/// elements; prints `lag_us handled_us events at_ns`.
pub fn wait_live_command(path: &str, offset: &str, timeout: &str) -> Result<(), String> {
    let offset: u64 = offset
        .parse()
        .map_err(|_| format!("OFFSET `{offset}` is not a number"))?;
    let secs: f64 = timeout
        .parse()
        .map_err(|_| format!("TIMEOUT `{timeout}` is not a number"))?;
    let b = wait_live(Path::new(path), offset, Duration::from_secs_f64(secs))?;
    println!("{} {} {} {}", b.lag_us, b.handled_us, b.events, b.at_ns);
    Ok(())
}

fn wait_live(path: &Path, offset: u64, timeout: Duration) -> Result<Batch, String> {
    let deadline = Instant::now() + timeout;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut batches = Batches::default();
    let mut buf = String::new();
    while Instant::now() < deadline {
        let mut chunk = String::new();
        f.read_to_string(&mut chunk).map_err(|e| e.to_string())?;
        if chunk.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        buf.push_str(&chunk);
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            if let Some(b) = batches.line(line.trim_end()) {
                return Ok(b);
            }
        }
    }
    Err(format!(
        "no 'policy live' batch that changed elements within {:.0} s",
        timeout.as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"timestamp":"2026-11-30T10:00:00.000001Z","level":"INFO","fields":{"message":"policy live","lag_us":900,"handled_us":800,"events":1}}
{"timestamp":"2026-11-30T10:00:00.000002Z","level":"DEBUG","fields":{"message":"event: 0 element(s) changed"}}
not json
{"timestamp":"2026-11-30T10:00:01.500000Z","level":"INFO","fields":{"message":"policy live","lag_us":4200,"handled_us":3100,"events":2}}
{"timestamp":"2026-11-30T10:00:01.500100Z","level":"DEBUG","fields":{"message":"event: 9 element(s) changed in 1 transaction"}}
{"timestamp":"2026-11-30T10:00:02Z","level":"WARN","fields":{"message":"something"}}
{"timestamp":"2026-11-30T10:00:03Z","level":"INFO","fields":{"message":"policy live","lag_us":1,"handled_us":1,"events":1}}
{"timestamp":"2026-11-30T10:00:03Z","level":"DEBUG","fields":{"message":"event: network list"}}
{"timestamp":"2026-11-30T10:00:03Z","level":"DEBUG","fields":{"message":"event: 3 element(s) changed"}}
"#;

    #[test]
    fn only_batches_that_changed_elements_count() {
        let b = all_batches(LOG);
        // The first `policy live` changed 0 elements: `0` is still a
        // number, so it counts, as it did in the shell version.
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!((b[0].lag_us, b[0].handled_us, b[0].events), (900, 800, 1));
        assert_eq!((b[1].lag_us, b[1].handled_us, b[1].events), (4200, 3100, 2));
        assert_eq!(b[1].at_ns % 1_000_000_000, 500_000_000);
        // The last `policy live` was followed by another event line first.
        assert_eq!(warnings(LOG).len(), 1);
    }

    #[test]
    fn waits_from_an_offset() {
        let dir = std::env::temp_dir().join(format!("cordon-bench-log-{}", std::process::id()));
        std::fs::write(&dir, LOG).unwrap();
        let second = LOG.find("{\"timestamp\":\"2026-11-30T10:00:01.5").unwrap() as u64;
        let b = wait_live(&dir, second, Duration::from_secs(1)).unwrap();
        assert_eq!(b.lag_us, 4200);
        let end = LOG.len() as u64;
        assert!(wait_live(&dir, end, Duration::from_millis(50)).is_err());
        std::fs::remove_file(dir).unwrap();
    }
}
