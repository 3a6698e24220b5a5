//! apk's version ordering, as apk-tools' `apk version -t` does it
//! (src/version.c): a version is read as tokens (numbers, one letter,
//! `_suffix` with an optional number, `-rN`); leading zeros after a dot
//! order as a fraction; `_alpha`, `_beta`, `_pre`, `_rc` come before the
//! plain version, `_cvs`, `_svn`, `_git`, `_hg`, `_p` after it.

use std::cmp::Ordering;

/// Token kinds, in apk's order: when the numbers are equal, the version
/// whose next token kind is larger is the smaller version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

struct Reader<'a> {
    rest: &'a [u8],
    kind: Token,
}

impl Reader<'_> {
    fn next_kind(&mut self) {
        let Some(&c) = self.rest.first() else {
            self.kind = Token::End;
            return;
        };
        let k = self.kind;
        self.kind = if matches!(k, Token::Digit | Token::DigitOrZero) && c.is_ascii_lowercase() {
            Token::Letter
        } else if k == Token::Letter && c.is_ascii_digit() {
            Token::Digit
        } else if k == Token::Suffix && c.is_ascii_digit() {
            Token::SuffixNo
        } else {
            let n = match c {
                b'.' => Token::DigitOrZero,
                b'_' => Token::Suffix,
                b'-' if self.rest.get(1) == Some(&b'r') => {
                    self.rest = &self.rest[1..];
                    Token::RevisionNo
                }
                _ => Token::Invalid,
            };
            self.rest = &self.rest[1..];
            n
        };
    }

    /// The value of the current token; moves to the next one.
    fn token(&mut self) -> i64 {
        if self.rest.is_empty() {
            self.kind = Token::End;
            return 0;
        }
        let mut v: i64 = 0;
        let mut i = 0;
        let mut forced = None;
        let digits = |rest: &[u8], i: &mut usize, v: &mut i64| {
            while *i < rest.len() && rest[*i].is_ascii_digit() {
                *v = v
                    .saturating_mul(10)
                    .saturating_add(i64::from(rest[*i] - b'0'));
                *i += 1;
            }
        };
        match self.kind {
            // Leading zeros before more digits (`1.05`) order as a
            // fraction, below `1.5`; a lone `0` is the number 0.
            Token::DigitOrZero
                if self.rest[0] == b'0'
                    && self
                        .rest
                        .iter()
                        .find(|&&c| c != b'0')
                        .is_some_and(u8::is_ascii_digit) =>
            {
                while i < self.rest.len() && self.rest[i] == b'0' {
                    i += 1;
                }
                forced = Some(Token::Digit);
                v = -(i as i64);
            }
            Token::DigitOrZero | Token::Digit | Token::SuffixNo | Token::RevisionNo => {
                digits(self.rest, &mut i, &mut v)
            }
            Token::Letter => {
                v = i64::from(self.rest[0]);
                i = 1;
            }
            Token::Suffix => {
                if let Some(n) = PRE.iter().position(|s| self.rest.starts_with(s.as_bytes())) {
                    v = n as i64 - PRE.len() as i64;
                    i = PRE[n].len();
                } else if let Some(n) = POST
                    .iter()
                    .position(|s| self.rest.starts_with(s.as_bytes()))
                {
                    v = n as i64;
                    i = POST[n].len();
                } else {
                    self.kind = Token::Invalid;
                    return -1;
                }
            }
            _ => {
                self.kind = Token::Invalid;
                return -1;
            }
        }
        self.rest = &self.rest[i..];
        if self.rest.is_empty() {
            self.kind = Token::End;
        } else if let Some(k) = forced {
            self.kind = k;
        } else {
            self.next_kind();
        }
        v
    }
}

/// Compares two apk versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut a = Reader {
        rest: a.trim().as_bytes(),
        kind: Token::Digit,
    };
    let mut b = Reader {
        rest: b.trim().as_bytes(),
        kind: Token::Digit,
    };
    let (mut av, mut bv) = (0, 0);
    while a.kind == b.kind && a.kind != Token::End && a.kind != Token::Invalid && av == bv {
        av = a.token();
        bv = b.token();
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if a.kind == b.kind {
        return Ordering::Equal;
    }
    if a.kind == Token::Suffix && a.token() < 0 {
        return Ordering::Less;
    }
    if b.kind == Token::Suffix && b.token() < 0 {
        return Ordering::Greater;
    }
    b.kind.cmp(&a.kind)
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    /// Orderings from apk-tools' own test vectors and Alpine's packaging
    /// rules.
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
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
