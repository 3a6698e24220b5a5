//! cordon's dpkg version ordering agrees with `dpkg --compare-versions`
//! on thousands of generated pairs (many of them near each other: same
//! prefix, one token changed), run against the real tool.

use std::cmp::Ordering;
use std::process::Command;

use cordon_scan::version::dpkg::compare;

/// Pairs compared per run.
const PAIRS: usize = 3000;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len())]
    }
}

const TOKENS: &[&str] = &[
    "0", "1", "2", "9", "10", "01", "00", "123", "a", "b", "z", "A", "Z", "~", "~~", "~a", "+",
    ".", "+b1", "+deb12u1", "~rc1", "~bpo12", "dfsg", ".1", "+really",
];

fn part(rng: &mut Rng) -> String {
    // Upstream and revision start with a digit, as dpkg requires.
    let mut s = rng.pick(&["0", "1", "2", "3", "10"]).to_string();
    for _ in 0..rng.below(5) {
        s.push_str(rng.pick(TOKENS));
    }
    s
}

fn version(rng: &mut Rng) -> String {
    let mut v = String::new();
    if rng.below(5) == 0 {
        v.push_str(rng.pick(&["0:", "1:", "2:", "10:"]));
    }
    v.push_str(&part(rng));
    if rng.below(3) != 0 {
        v.push('-');
        v.push_str(&part(rng));
        if rng.below(6) == 0 {
            // A revision may itself hold a hyphen; the last one splits.
            v.push('-');
            v.push_str(&part(rng));
        }
    }
    v
}

/// A version near `v`: one token appended, or one character changed.
fn near(rng: &mut Rng, v: &str) -> String {
    let mut out = v.to_string();
    match rng.below(3) {
        0 => out.push_str(rng.pick(&["~", "a", "1", "+b1", ".0", "~rc1"])),
        1 if out.len() > 2 => {
            let at = 1 + rng.below(out.len() - 1);
            let c = out.as_bytes()[at];
            if c.is_ascii_digit() {
                let d = (c - b'0' + 1) % 10;
                out.replace_range(at..=at, &d.to_string());
            }
        }
        _ => {
            if let Some(i) = out.rfind('-') {
                out.truncate(i);
            }
        }
    }
    out
}

fn dpkg(a: &str, op: &str, b: &str) -> bool {
    let st = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("run dpkg");
    match st.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("dpkg --compare-versions {a} {op} {b}: exit {other:?}"),
    }
}

#[test]
fn agrees_with_dpkg_compare_versions() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!("skipped: no dpkg on this machine (apt-get install dpkg)");
        return;
    }
    let mut rng = Rng(0x5eed_c0de_d00d_f00d);
    let (mut less, mut equal, mut greater) = (0, 0, 0);
    for _ in 0..PAIRS {
        let a = version(&mut rng);
        let b = if rng.below(2) == 0 {
            near(&mut rng, &a)
        } else {
            version(&mut rng)
        };
        let want = if dpkg(&a, "lt", &b) {
            Ordering::Less
        } else if dpkg(&a, "eq", &b) {
            Ordering::Equal
        } else {
            Ordering::Greater
        };
        match want {
            Ordering::Less => less += 1,
            Ordering::Equal => equal += 1,
            Ordering::Greater => greater += 1,
        }
        assert_eq!(compare(&a, &b), want, "{a} vs {b} (dpkg says {want:?})");
    }
    eprintln!("{PAIRS} pairs: {less} less, {equal} equal, {greater} greater");
    // The generator reaches every outcome, so the test could fail.
    assert!(
        less > 100 && greater > 100 && equal > 10,
        "{less}/{equal}/{greater}"
    );
}
