//! The daemon's configuration as written: its command line and its
//! `daemon.json`. A command-line flag wins over the file, as in dockerd.

use serde_json::Value;

/// dockerd flags that take no value (`--icc` alone means true); every
/// other flag takes one, either `--flag=V` or `--flag V`.
const BOOLEAN_FLAGS: &[&str] = &[
    "--icc",
    "--iptables",
    "--ip6tables",
    "--ip-forward",
    "--ip-masq",
    "--ipv6",
    "--userland-proxy",
    "--live-restore",
    "--tls",
    "--tlsverify",
    "-D",
    "--debug",
    "--experimental",
    "--no-new-privileges",
    "--selinux-enabled",
    "--raw-logs",
    "--init",
    "--validate",
    "--rootless",
    "--help",
    "--version",
    "-v",
];

/// The configuration of the identified dockerd.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaemonConfig {
    /// Its pid.
    pub pid: u32,
    /// Its flags in order: (name, value); a boolean flag without value has
    /// `None`.
    pub flags: Vec<(String, Option<String>)>,
    /// The `daemon.json` it reads, as it names it.
    pub config_file: String,
    /// The file's keys; `None` when the file is absent.
    pub json: Option<serde_json::Map<String, Value>>,
    /// Why the file could not be read or parsed.
    pub json_error: Option<String>,
}

/// One setting's value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value as text (`false`, `tcp://0.0.0.0:2375`).
    pub value: String,
    /// `flag --icc` or `daemon.json "icc"`.
    pub source: String,
}

impl DaemonConfig {
    /// Splits dockerd's arguments (without argv\[0\]) the way pflag does.
    pub fn parse_args(args: &[String]) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if !arg.starts_with('-') {
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let value = if inline.is_some() || BOOLEAN_FLAGS.contains(&name.as_str()) {
                inline
            } else {
                let v = args.get(i).cloned();
                i += 1;
                v
            };
            out.push((name, value));
        }
        out
    }

    /// Every value of a flag (any of `names`) on the command line, else of
    /// `key` in the file (a string or a list of strings).
    pub fn all(&self, names: &[&str], key: &str) -> Vec<Setting> {
        let from_flags: Vec<Setting> = self
            .flags
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .map(|(n, v)| Setting {
                value: v.clone().unwrap_or_else(|| "true".into()),
                source: format!("flag {n}"),
            })
            .collect();
        if !from_flags.is_empty() {
            return from_flags;
        }
        let source = format!("{} \"{key}\"", self.config_file);
        match self.json.as_ref().and_then(|j| j.get(key)) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| Setting {
                    value: text(v),
                    source: source.clone(),
                })
                .collect(),
            Some(v) => vec![Setting {
                value: text(v),
                source,
            }],
        }
    }

    /// The last value of a flag, else the file's value.
    pub fn get(&self, names: &[&str], key: &str) -> Option<Setting> {
        self.all(names, key).pop()
    }

    /// A boolean setting; `None` when neither the flags nor the file set
    /// it (or it does not parse).
    pub fn boolean(&self, names: &[&str], key: &str) -> Option<(bool, String)> {
        let s = self.get(names, key)?;
        let b = match s.value.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            _ => return None,
        };
        Some((b, s.source))
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &str, json: &str) -> DaemonConfig {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        DaemonConfig {
            flags: DaemonConfig::parse_args(&args),
            config_file: "/etc/docker/daemon.json".into(),
            json: serde_json::from_str(json).ok(),
            ..Default::default()
        }
    }

    #[test]
    fn flags_win_over_the_file() {
        let c = cfg(
            "-H unix:///run/d.sock --icc=false --live-restore -H tcp://0.0.0.0:2375",
            r#"{"icc": true, "log-level": "debug", "hosts": ["fd://"]}"#,
        );
        assert!(!c.boolean(&["--icc"], "icc").unwrap().0);
        assert!(c.boolean(&["--live-restore"], "live-restore").unwrap().0);
        assert_eq!(
            c.get(&["--log-level", "-l"], "log-level").unwrap().value,
            "debug"
        );
        let hosts: Vec<String> = c
            .all(&["-H", "--host"], "hosts")
            .into_iter()
            .map(|s| s.value)
            .collect();
        assert_eq!(hosts, ["unix:///run/d.sock", "tcp://0.0.0.0:2375"]);
        assert_eq!(c.boolean(&["--userland-proxy"], "userland-proxy"), None);
        let file_only = cfg("", r#"{"hosts": ["fd://"]}"#);
        let h = file_only.all(&["-H", "--host"], "hosts");
        assert_eq!(h[0].value, "fd://");
        assert!(h[0].source.contains("daemon.json"));
    }
}
