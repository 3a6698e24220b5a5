//! The churn benchmark's two checks of the kernel against Docker
//! (`scripts/bench-daemon --churn`): the sampler, which watches that no
//! running container is ever judged by another container's policy, and the
//! leak check, which compares every element of cordon's tables with
//! `cordon plan`. They read Docker through `docker network inspect` and the
//! kernel through `nft -j`, as an operator would.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Runs a command; its stdout, or `None` when it failed.
fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Docker's view of network `net`: address → (container id, name).
fn docker_view(net: &str) -> Option<HashMap<String, (String, String)>> {
    let out = output(
        "docker",
        &[
            "network",
            "inspect",
            net,
            "--format",
            "{{json .Containers}}",
        ],
    )?;
    Some(parse_docker_view(&out))
}

fn parse_docker_view(json_text: &str) -> HashMap<String, (String, String)> {
    let v: Value = serde_json::from_str(json_text.trim()).unwrap_or(Value::Null);
    let mut m = HashMap::new();
    for (cid, c) in v.as_object().into_iter().flatten() {
        let ip = c["IPv4Address"]
            .as_str()
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        if !ip.is_empty() {
            let name = c["Name"].as_str().unwrap_or("").to_string();
            m.insert(ip.to_string(), (cid.clone(), name));
        }
    }
    m
}

/// An element's key without nft's `{"elem": {"val": …}}` wrapper (present
/// when elements carry counters or timeouts).
fn bare(e: &Value) -> &Value {
    match e.get("elem") {
        Some(inner) => bare(&inner["val"]),
        None => e,
    }
}

/// The kernel's view, from one `nft -j list ruleset` (one generation):
/// `egress4` as address → chain, and `bind4` as address → ports.
#[derive(Debug, Default, PartialEq)]
struct KernelView {
    egress: HashMap<String, String>,
    bind: HashMap<String, Vec<String>>,
}

fn parse_kernel_view(listing: &str) -> Result<KernelView, String> {
    let v: Value = serde_json::from_str(listing).map_err(|e| format!("nft -j: {e}"))?;
    let mut k = KernelView::default();
    for o in v["nftables"].as_array().into_iter().flatten() {
        let Some(s) = o.get("map").or_else(|| o.get("set")) else {
            continue;
        };
        if s["table"] != "cordon" {
            continue;
        }
        let elems = s["elem"].as_array().into_iter().flatten();
        match (s["family"].as_str(), s["name"].as_str()) {
            (Some("inet"), Some("egress4")) => {
                for e in elems {
                    // `goto` since the forward chain was merged; `jump` before.
                    let verdict = e[1].get("goto").unwrap_or(&e[1]["jump"]);
                    let (Some(key), Some(target)) =
                        (bare(&e[0]).as_str(), verdict["target"].as_str())
                    else {
                        continue;
                    };
                    k.egress.insert(key.to_string(), target.to_string());
                }
            }
            (Some("bridge"), Some("bind4")) => {
                for e in elems {
                    if let Some([port, _, addr]) = bare(e)["concat"].as_array().map(Vec::as_slice) {
                        if let (Some(port), Some(addr)) = (port.as_str(), addr.as_str()) {
                            k.bind
                                .entry(addr.to_string())
                                .or_default()
                                .push(port.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(k)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the sampler found; written as JSON for the report.
#[derive(Debug, Default)]
struct Findings {
    samples: u64,
    checked: u64,
    wrong: u64,
    wrong_list: Vec<Value>,
    wrong_cut: u64,
    max_cut: f64,
    max_missing: f64,
    max_stale: f64,
    stale_over_1s: BTreeSet<(String, String)>,
    bindings_last_sample: usize,
    missing_since: HashMap<String, f64>,
    cut_since: HashMap<String, f64>,
    stale_since: HashMap<(String, String), f64>,
}

impl Findings {
    /// Judges one sample: Docker before (`d1`), the kernel (`k`) at time
    /// `t`, Docker after (`d2`). `port_exists` tells whether a host port
    /// exists now.
    fn sample(
        &mut self,
        d1: &HashMap<String, (String, String)>,
        k: &KernelView,
        d2: &HashMap<String, (String, String)>,
        t: f64,
        port_exists: &dyn Fn(&str) -> bool,
    ) {
        self.samples += 1;
        self.bindings_last_sample = k.bind.values().map(Vec::len).sum();
        let mut seen_missing = HashSet::new();
        let mut seen_cut = HashSet::new();
        for (ip, v) in d1 {
            if d2.get(ip) != Some(v) {
                continue;
            }
            let (cid, name) = v;
            let color = name.rsplit('-').next().unwrap_or("");
            self.checked += 1;
            match k.egress.get(ip) {
                Some(chain) if *chain != format!("eg_fwd_{color}") => {
                    // The address still maps to a departed container's
                    // policy. Its packets pass the bridge table only if a
                    // port that exists now is bound to the address: that
                    // port is this container's.
                    let bound: Vec<&String> = k
                        .bind
                        .get(ip)
                        .into_iter()
                        .flatten()
                        .filter(|p| port_exists(p))
                        .collect();
                    if bound.is_empty() {
                        self.wrong_cut += 1;
                        seen_cut.insert(cid.clone());
                        let since = *self.cut_since.entry(cid.clone()).or_insert(t);
                        self.max_cut = self.max_cut.max(t - since);
                    } else {
                        self.wrong += 1;
                        if self.wrong_list.len() < 20 {
                            self.wrong_list.push(json!([
                                (t * 1000.0).round() / 1000.0,
                                ip,
                                name,
                                chain,
                                bound
                            ]));
                        }
                    }
                }
                Some(_) => {}
                None => {
                    seen_missing.insert(cid.clone());
                    let since = *self.missing_since.entry(cid.clone()).or_insert(t);
                    self.max_missing = self.max_missing.max(t - since);
                }
            }
        }
        self.missing_since.retain(|c, _| seen_missing.contains(c));
        self.cut_since.retain(|c, _| seen_cut.contains(c));
        let mut stale_now = HashSet::new();
        for (ip, chain) in &k.egress {
            if d1.contains_key(ip) || d2.contains_key(ip) {
                continue;
            }
            let key = (ip.clone(), chain.clone());
            stale_now.insert(key.clone());
            let since = *self.stale_since.entry(key.clone()).or_insert(t);
            self.max_stale = self.max_stale.max(t - since);
            if t - since > 1.0 {
                self.stale_over_1s.insert(key);
            }
        }
        self.stale_since.retain(|k, _| stale_now.contains(k));
    }

    fn json(&self) -> Value {
        json!({
            "samples": self.samples, "checked": self.checked,
            "wrong": self.wrong, "wrong_list": self.wrong_list,
            "wrong_cut": self.wrong_cut, "max_wrong_cut_s": self.max_cut,
            "bindings_last_sample": self.bindings_last_sample,
            "max_missing_s": self.max_missing, "max_stale_s": self.max_stale,
            "stale_over_1s": self.stale_over_1s.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        })
    }
}

/// `cordon-bench churn-sample NET STOPFILE OUT.json`: samples until STOPFILE
/// exists, then writes its findings.
pub fn sample_command(net: &str, stopfile: &str, out: &str) -> Result<(), String> {
    let mut f = Findings::default();
    let exists = |p: &str| Path::new("/sys/class/net").join(p).exists();
    while !Path::new(stopfile).exists() {
        let d1 = docker_view(net);
        let t = now();
        let listing =
            output("nft", &["-j", "list", "ruleset"]).ok_or("nft -j list ruleset failed")?;
        let k = parse_kernel_view(&listing)?;
        let d2 = docker_view(net);
        let (Some(d1), Some(d2)) = (d1, d2) else {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        };
        f.sample(&d1, &k, &d2, t, &exists);
    }
    std::fs::write(out, f.json().to_string()).map_err(|e| format!("{out}: {e}"))
}

/// Set name → its elements (canonical JSON), from nft JSON objects that
/// declare sets and maps or add elements.
type Sets = BTreeMap<(String, String), BTreeSet<String>>;

/// An element as compared: its key without the wrapper that carries
/// counters, timeouts and expiry (the kernel's counters move, the plan's
/// are zero), and for a map the verdict; as JSON text with every object's
/// keys sorted, so that the same element listed by nft and planned by
/// cordon compare equal.
fn element(e: &Value) -> String {
    match e.as_array().map(Vec::as_slice) {
        Some([k, v]) => canon(&Value::Array(vec![bare(k).clone(), v.clone()])),
        _ => canon(bare(e)),
    }
}

/// JSON text with every object's keys sorted.
fn canon(e: &Value) -> String {
    match e {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canon(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canon).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The sets of a `cordon plan -o json` transaction.
fn plan_sets(plan: &str) -> Result<Sets, String> {
    let v: Value = serde_json::from_str(plan).map_err(|e| format!("cordon plan: {e}"))?;
    let mut sets = Sets::new();
    for cmd in v["nftables"].as_array().into_iter().flatten() {
        for verb in cmd.as_object().into_iter().flat_map(|o| o.values()) {
            for kind in ["set", "map", "element"] {
                let Some(o) = verb.get(kind).filter(|o| o.is_object()) else {
                    continue;
                };
                let fam = o["family"].as_str().unwrap_or("").to_string();
                if let Some(elems) = o.get("elem").and_then(Value::as_array) {
                    let name = o["name"].as_str().unwrap_or("").to_string();
                    sets.entry((fam, name))
                        .or_default()
                        .extend(elems.iter().map(canon));
                } else if let Some(name) = o["name"].as_str() {
                    sets.entry((fam, name.to_string())).or_default();
                }
            }
        }
    }
    Ok(sets)
}

/// The sets of `nft -j list table FAMILY cordon` listings.
fn kernel_sets(listings: &[(&str, String)]) -> Result<Sets, String> {
    let mut sets = Sets::new();
    for (fam, text) in listings {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("nft -j: {e}"))?;
        for o in v["nftables"].as_array().into_iter().flatten() {
            for kind in ["set", "map"] {
                if let Some(s) = o.get(kind) {
                    let elems = s["elem"].as_array().into_iter().flatten().map(element);
                    sets.insert(
                        (
                            fam.to_string(),
                            s["name"].as_str().unwrap_or("").to_string(),
                        ),
                        elems.collect(),
                    );
                }
            }
        }
    }
    Ok(sets)
}

/// Plan against kernel, set by set.
fn compare(plan: &Sets, kernel: &Sets) -> Value {
    let empty = BTreeSet::new();
    let (mut extra, mut missing, mut total) = (0, 0, 0);
    let mut diffs = Vec::new();
    let keys: BTreeSet<_> = plan.keys().chain(kernel.keys()).collect();
    for key in keys {
        let pe = plan.get(key).unwrap_or(&empty);
        let ke = kernel.get(key).unwrap_or(&empty);
        total += ke.len();
        let x = ke.difference(pe).count();
        let m = pe.difference(ke).count();
        if x > 0 || m > 0 {
            diffs.push(format!(
                "{} {}: {x} extra, {m} missing (kernel {}, plan {})",
                key.0,
                key.1,
                ke.len(),
                pe.len()
            ));
        }
        extra += x;
        missing += m;
    }
    json!({"kernel_elements": total, "extra": extra, "missing": missing, "diffs": diffs})
}

/// `cordon-bench leak CORDON POLICY`: every element of cordon's tables
/// against `CORDON plan -c POLICY -o json`; prints one JSON object
/// (`kernel_elements`, `extra`, `missing`, `diffs`).
pub fn leak_command(cordon: &str, policy: &str) -> Result<(), String> {
    let plan = output(cordon, &["plan", "-c", policy, "-o", "json"]).ok_or("cordon plan failed")?;
    let mut listings = Vec::new();
    for fam in ["inet", "bridge"] {
        let l = output("nft", &["-j", "list", "table", fam, "cordon"])
            .ok_or_else(|| format!("nft -j list table {fam} cordon failed"))?;
        listings.push((fam, l));
    }
    println!("{}", compare(&plan_sets(&plan)?, &kernel_sets(&listings)?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(entries: &[(&str, &str, &str)]) -> HashMap<String, (String, String)> {
        entries
            .iter()
            .map(|(ip, id, name)| (ip.to_string(), (id.to_string(), name.to_string())))
            .collect()
    }

    #[test]
    fn reads_docker_and_the_kernel() {
        let d = parse_docker_view(
            r#"{"abc":{"Name":"cbd-c1-red","IPv4Address":"10.213.0.2/16"},"def":{"Name":"x","IPv4Address":""}}"#,
        );
        assert_eq!(d, view(&[("10.213.0.2", "abc", "cbd-c1-red")]));
        let k = parse_kernel_view(
            r#"{"nftables":[{"metainfo":{}},
            {"map":{"family":"inet","table":"cordon","name":"egress4","elem":[
              [{"elem":{"val":"10.213.0.2","counter":{"packets":0,"bytes":0}}},{"jump":{"target":"eg_fwd_red"}}],
              ["10.213.0.3",{"goto":{"target":"eg_fwd_blue"}}]]}},
            {"set":{"family":"bridge","table":"cordon","name":"bind4","elem":[
              {"concat":["veth1","02:42:0a:d5:00:02","10.213.0.2"]}]}},
            {"map":{"family":"inet","table":"other","name":"egress4","elem":[["10.9.9.9",{"jump":{"target":"x"}}]]}}]}"#,
        )
        .unwrap();
        assert_eq!(k.egress.len(), 2);
        assert_eq!(k.egress["10.213.0.2"], "eg_fwd_red");
        assert_eq!(k.bind["10.213.0.2"], vec!["veth1".to_string()]);
    }

    #[test]
    fn the_sampler_tells_wrong_cut_off_missing_and_stale() {
        let mut k = KernelView::default();
        k.egress.insert("10.0.0.2".into(), "eg_fwd_blue".into()); // wrong policy
        k.egress.insert("10.0.0.3".into(), "eg_fwd_red".into()); // wrong, not bound
        k.egress.insert("10.0.0.9".into(), "eg_fwd_red".into()); // stale
        k.bind.insert("10.0.0.2".into(), vec!["vethA".into()]);
        k.bind.insert("10.0.0.3".into(), vec!["vethGone".into()]);
        let d = view(&[
            ("10.0.0.2", "a", "cbd-c1-red"),
            ("10.0.0.3", "b", "cbd-c2-blue"),
            ("10.0.0.4", "c", "cbd-c3-red"), // missing
        ]);
        let exists = |p: &str| p == "vethA";
        let mut f = Findings::default();
        f.sample(&d, &k, &d, 100.0, &exists);
        f.sample(&d, &k, &d, 101.5, &exists);
        let j = f.json();
        assert_eq!(j["samples"], 2);
        assert_eq!(j["checked"], 6);
        assert_eq!(j["wrong"], 2);
        assert_eq!(j["wrong_cut"], 2);
        assert_eq!(j["max_wrong_cut_s"], 1.5);
        assert_eq!(j["max_missing_s"], 1.5);
        assert_eq!(j["stale_over_1s"], json!([["10.0.0.9", "eg_fwd_red"]]));
        // A container in only one of the two Docker readings is not judged.
        let mut g = Findings::default();
        g.sample(&d, &k, &view(&[]), 1.0, &exists);
        assert_eq!(g.json()["checked"], 0);
    }

    #[test]
    fn the_leak_check_compares_set_by_set() {
        let plan = r#"{"nftables":[
          {"add":{"set":{"family":"inet","table":"cordon","name":"pol_red4"}}},
          {"add":{"map":{"family":"inet","table":"cordon","name":"egress4","elem":[["10.0.0.2",{"jump":{"target":"eg_fwd_red"}}]]}}},
          {"add":{"element":{"family":"inet","table":"cordon","name":"pol_red4","elem":["10.0.0.2"]}}}]}"#;
        let kernel = vec![
            ("inet", r#"{"nftables":[{"set":{"family":"inet","name":"pol_red4","table":"cordon","elem":["10.0.0.2","10.0.0.7"]}},
              {"map":{"family":"inet","name":"egress4","table":"cordon","elem":[[{"elem":{"val":"10.0.0.2","counter":{"packets":7,"bytes":700}}},{"jump":{"target":"eg_fwd_red"}}]]}}]}"#.to_string()),
            ("bridge", r#"{"nftables":[]}"#.to_string()),
        ];
        let r = compare(&plan_sets(plan).unwrap(), &kernel_sets(&kernel).unwrap());
        // pol_red4 holds one element the plan lacks; the map's element
        // matches although the kernel's counter moved.
        assert_eq!(r["extra"], 1);
        assert_eq!(r["missing"], 0);
        assert_eq!(r["kernel_elements"], 3);
        assert_eq!(
            r["diffs"],
            json!(["inet pol_red4: 1 extra, 0 missing (kernel 2, plan 1)"])
        );
    }
}
