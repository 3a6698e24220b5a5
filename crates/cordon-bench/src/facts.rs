//! The raw results a benchmark script leaves in its work directory: a
//! `facts` file of `KEY=VALUE` lines (what the shell knows: the date, the
//! commit, the machine, counts) next to files of samples and JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A work directory's results.
pub struct Results {
    dir: PathBuf,
    facts: HashMap<String, String>,
}

impl Results {
    /// Reads `DIR/facts`.
    pub fn open(dir: &str) -> Result<Results, String> {
        let dir = PathBuf::from(dir);
        let text = read(&dir.join("facts"))?;
        Ok(Results {
            facts: parse_facts(&text),
            dir,
        })
    }

    /// A fact as text.
    pub fn fact(&self, key: &str) -> Result<&str, String> {
        self.facts
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("{}: no `{key}=`", self.dir.join("facts").display()))
    }

    /// A fact as a number.
    pub fn num(&self, key: &str) -> Result<f64, String> {
        let v = self.fact(key)?;
        v.parse().map_err(|_| {
            format!(
                "{}: `{key}={v}` is not a number",
                self.dir.join("facts").display()
            )
        })
    }

    /// A file of the directory as text.
    pub fn text(&self, name: &str) -> Result<String, String> {
        read(&self.dir.join(name))
    }

    /// A file of the directory as JSON.
    pub fn json(&self, name: &str) -> Result<Value, String> {
        let path = self.dir.join(name);
        serde_json::from_str(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The whitespace-separated column `col` (0-based) of every line of a
    /// file, as numbers.
    pub fn column(&self, name: &str, col: usize) -> Result<Vec<f64>, String> {
        let text = self.text(name)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.split_whitespace()
                    .nth(col)
                    .and_then(|w| w.parse().ok())
                    .ok_or_else(|| format!("{name}: no number in column {} of `{l}`", col + 1))
            })
            .collect()
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `KEY=VALUE` lines; the value is the rest of the line.
pub fn parse_facts(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// kB as MB with one decimal.
pub fn mb(kb: f64) -> String {
    format!("{:.1}", kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_key_value_lines() {
        let f = parse_facts("date=2026-11-30\nmachine=2 cores, nft v1.0=x\n\nnot a fact\n");
        assert_eq!(f["date"], "2026-11-30");
        assert_eq!(f["machine"], "2 cores, nft v1.0=x");
        assert_eq!(f.len(), 2);
        assert_eq!(mb(2048.0), "2.0");
    }
}
