//! Showing a value that comes from Docker (a container's name, a label, an
//! image reference, a policy name read from a label) in text output.
//!
//! Whoever starts a container chooses its labels, and an image's author
//! chooses the image's labels. A newline in such a value would forge a
//! whole line in a log or a row in a table. Text output therefore shows
//! every control character as an escape: `\n`, `\r`, `\t`, `\\` for a
//! backslash, `\x1b` for the other ASCII controls and DEL, and `\u{202e}`
//! for Unicode's invisible format and separator characters (bidi
//! overrides, zero-width characters, line and paragraph separators), which
//! can reorder or hide what a terminal shows. JSON output needs none of
//! this: the JSON encoder escapes strings itself.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// `s` with control and format characters escaped; borrowed when nothing
/// needed escaping (the common case).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// A Docker-given value that displays escaped (see [`escape`]), for
/// `format!` and tracing fields: `name = %Shown(&c.name)`.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = escape(self.0);
        // Honour width and alignment, so tables line up.
        f.pad(&e)
    }
}

/// True for the characters [`escape`] rewrites: the backslash, control
/// characters and Unicode's invisible format characters.
pub fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || is_format(c)
}

/// Unicode's invisible characters that change how text is shown: the
/// bidirectional controls, zero-width characters, the line and paragraph
/// separators, the BOM, soft hyphen and the interlinear annotations.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["web-1", "nginx:1.27", "café", "日本", "a b", ""] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn line_breaks_and_tabs_are_escaped() {
        assert_eq!(escape("x\nweb  open  0 0"), "x\\nweb  open  0 0");
        assert_eq!(escape("a\r\nb\tc"), "a\\r\\nb\\tc");
        assert!(!escape("a\nb\rc\u{2028}d\u{85}e").contains(['\n', '\r', '\u{2028}', '\u{85}']));
    }

    #[test]
    fn ascii_controls_and_del_are_hex() {
        assert_eq!(escape("\u{1b}[31mred"), "\\x1b[31mred");
        assert_eq!(escape("a\u{0}b\u{7f}"), "a\\x00b\\x7f");
    }

    #[test]
    fn unicode_controls_and_format_characters_are_escaped() {
        assert_eq!(escape("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
        assert_eq!(escape("\u{85}"), "\\u{85}");
        assert_eq!(escape("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(escape("\u{2066}\u{2069}"), "\\u{2066}\\u{2069}");
        assert_eq!(escape("\u{feff}"), "\\u{feff}");
    }

    #[test]
    fn a_backslash_is_doubled_so_escapes_cannot_be_faked() {
        // A value that already reads `\n` stays distinguishable from one
        // that had a real newline.
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_ne!(escape("a\\nb"), escape("a\nb"));
    }

    #[test]
    fn shown_pads_like_a_str() {
        assert_eq!(format!("{:<6}|", Shown("a\nb")), "a\\nb  |");
        assert_eq!(format!("{}", Shown("plain")), "plain");
    }
}
