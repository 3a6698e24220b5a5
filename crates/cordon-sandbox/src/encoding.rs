//! File contents in API requests: `utf8` (the default), `base64` or `hex`,
//! as Piston accepts them, so that binaries can be sent.
//!
//! `base64` is the standard alphabet (`+` and `/`, RFC 4648 section 4), as
//! every common encoder writes it (`base64`, Python's `b64encode`,
//! JavaScript's `btoa`); padding may be left out, whitespace (line wraps)
//! is ignored. Anything else is refused rather than guessed: the URL-safe
//! alphabet (`-`, `_`), a mix of both, or anything after the padding.
//! `hex` takes upper or lower case digits, two per byte.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Standard alphabet, padding optional (but, when present, right).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes `content` given in `encoding`.
pub fn decode(content: &str, encoding: Option<&str>) -> Result<Vec<u8>, String> {
    match encoding.unwrap_or("utf8") {
        "utf8" => Ok(content.as_bytes().to_vec()),
        "base64" => {
            let compact: Vec<u8> = content
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            BASE64.decode(compact).map_err(|e| {
                format!("invalid base64 content ({e}); use the standard alphabet (A-Z a-z 0-9 + /)")
            })
        }
        "hex" => hex::decode(content.trim()).map_err(|e| format!("invalid hex content ({e})")),
        other => Err(format!(
            "unknown encoding {other:?}; use utf8, base64 or hex"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(decode("aGVsbG8=", Some("base64")).unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8", Some("base64")).unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8h", Some("base64")).unwrap(), b"hello!");
        assert_eq!(decode("aGk=\n", Some("base64")).unwrap(), b"hi");
        assert_eq!(decode("aGVs\nbG8=\n", Some("base64")).unwrap(), b"hello");
        assert_eq!(decode("00ff7f", Some("hex")).unwrap(), [0, 255, 127]);
        assert_eq!(decode("00FF7f\n", Some("hex")).unwrap(), [0, 255, 127]);
        assert_eq!(decode("é", None).unwrap(), "é".as_bytes());
        assert!(decode("a", Some("base64")).is_err());
        assert!(decode("a*==", Some("base64")).is_err());
        assert!(decode("x", Some("rot13")).is_err());
        assert!(decode("abc", Some("hex")).is_err());
        assert!(decode("0g", Some("hex")).is_err());
        // Not ASCII: an error, not a panic on a char boundary.
        assert!(decode("aéb", Some("hex")).is_err());
    }

    #[test]
    fn base64_is_the_standard_alphabet_only() {
        // Bytes whose standard encoding needs both `+` and `/`.
        let bytes = [0xfb, 0xef, 0xff, 0x3e];
        assert_eq!(
            decode("++//Pg==", Some("base64")).unwrap(),
            bytes,
            "positive control"
        );
        // The URL-safe spelling of the same bytes, or a mix of both.
        for other in ["--__Pg==", "+-/_Pg==", "++/_Pg=="] {
            let e = decode(other, Some("base64")).unwrap_err();
            assert!(
                e.contains("standard alphabet") && !e.contains('\n'),
                "{other}: {e}"
            );
        }
    }

    #[test]
    fn nothing_may_follow_the_padding() {
        assert_eq!(
            decode("aGk=", Some("base64")).unwrap(),
            b"hi",
            "positive control"
        );
        for trailing in ["aGk=aGk=", "aGk=QQ", "aGk==", "aGk=A"] {
            assert!(decode(trailing, Some("base64")).is_err(), "{trailing}");
        }
    }
}
