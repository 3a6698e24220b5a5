//! Statistics over a benchmark's samples: nearest-rank percentiles and the
//! p50 / p99 / max summary every section of docs/benchmarks.md reports.

/// The nearest-rank percentile `p` (0–100) of `sorted`, which must be
/// sorted ascending and not empty.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// p50, p99, min and max of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (nearest rank).
    pub p50: f64,
    /// The 99th percentile (nearest rank).
    pub p99: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub n: usize,
}

impl Summary {
    /// The summary of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Summary {
            p50: nearest_rank(&v, 50.0),
            p99: nearest_rank(&v, 99.0),
            min: v[0],
            max: v[v.len() - 1],
            n: v.len(),
        })
    }

    /// Every figure divided by `d` (µs to ms: 1000).
    pub fn scaled(self, d: f64) -> Summary {
        Summary {
            p50: self.p50 / d,
            p99: self.p99 / d,
            min: self.min / d,
            max: self.max / d,
            ..self
        }
    }

    /// `p50 | p99 | max` with one decimal, for a Markdown table row.
    pub fn row(&self) -> String {
        format!("{:.1} | {:.1} | {:.1}", self.p50, self.p99, self.max)
    }
}

/// The numbers in `text` (whitespace-separated); an error names the first
/// word that is not one.
pub fn numbers(text: &str) -> Result<Vec<f64>, String> {
    text.split_whitespace()
        .map(|w| {
            w.parse::<f64>()
                .map_err(|_| format!("`{w}` is not a number"))
        })
        .collect()
}

/// `cordon-bench pct`: the numbers on stdin → `p50 p99 max min n`.
pub fn pct_command() -> Result<(), String> {
    let text = std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?;
    let s = Summary::of(&numbers(&text)?).ok_or("no numbers on stdin")?;
    println!(
        "{:.1} {:.1} {:.1} {:.1} {}",
        s.p50, s.p99, s.max, s.min, s.n
    );
    Ok(())
}

/// The median of `values` (the mean of the two middle ones for an even
/// count); `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    })
}

/// The lower middle of `values` (for an even count, the smaller of the
/// two middle ones), as `sort | awk 'a[int((NR+1)/2)]'` gave it: always one
/// of the measured values.
pub fn lower_median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len().div_ceil(2) - 1])
}

/// The mean of `values`; `None` when there are none.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// "met" or "not met".
pub fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "not met"
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!(
            (s.p50, s.p99, s.min, s.max, s.n),
            (50.0, 99.0, 1.0, 100.0, 100)
        );
        // Few samples: p99 is the largest, p50 the lower middle.
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.p50, s.p99), (2.0, 4.0));
        assert_eq!(Summary::of(&[7.0]).unwrap().p99, 7.0);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn scaled_rows_and_numbers() {
        let s = Summary::of(&[1500.0, 2500.0, 12_345.0])
            .unwrap()
            .scaled(1000.0);
        assert_eq!(s.row(), "2.5 | 12.3 | 12.3");
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(lower_median(&[4.0, 1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(lower_median(&[5.0]), Some(5.0));
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!((met(true), met(false)), ("met", "not met"));
        assert_eq!(
            (thousands(999), thousands(1000), thousands(1_234_567)),
            ("999".into(), "1,000".into(), "1,234,567".into())
        );
        assert_eq!(numbers("1 2.5\n-3").unwrap(), vec![1.0, 2.5, -3.0]);
        assert!(numbers("1 x").unwrap_err().contains("`x`"));
    }
}
