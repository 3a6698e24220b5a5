//! File contents in API requests: `utf8` (the default), `base64` or `hex`,
//! as Piston accepts them, so that binaries can be sent.

/// Decodes `content` given in `encoding`.
pub fn decode(content: &str, encoding: Option<&str>) -> Result<Vec<u8>, String> {
    match encoding.unwrap_or("utf8") {
        "utf8" => Ok(content.as_bytes().to_vec()),
        "base64" => base64(content),
        "hex" => hex(content),
        other => Err(format!(
            "unknown encoding {other:?}; use utf8, base64 or hex"
        )),
    }
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err("hex content has an odd length".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| "invalid hex content".into()))
        .collect()
}

fn base64(s: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err(format!("invalid base64 character {:?}", c as char)),
        } as u32)
    };
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .take_while(|c| *c != b'=')
        .collect();
    if digits.len() % 4 == 1 {
        return Err("truncated base64 content".into());
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(decode("aGVsbG8=", Some("base64")).unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8h", Some("base64")).unwrap(), b"hello!");
        assert_eq!(decode("aGk=\n", Some("base64")).unwrap(), b"hi");
        assert_eq!(decode("00ff7f", Some("hex")).unwrap(), [0, 255, 127]);
        assert_eq!(decode("é", None).unwrap(), "é".as_bytes());
        assert!(decode("a", Some("base64")).is_err());
        assert!(decode("a*==", Some("base64")).is_err());
        assert!(decode("x", Some("rot13")).is_err());
    }
}
