//! JSON as dockerd reads it. Go's `encoding/json` matches object keys to
//! struct fields without regard to case (`hostconfig` sets `HostConfig`)
//! and, when several keys match one field, the last one wins. A plugin
//! that looked keys up exactly could be shown one `NetworkMode` while
//! dockerd acts on another, so this keeps every key in input order and
//! looks them up the way Go does.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep every key, duplicates included, in
/// input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Any number.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in input order.
    Object(Vec<(String, Json)>),
}

/// Go's case folding of a key, as `encoding/json` compares them: ASCII
/// case, plus the two non-ASCII letters that fold onto ASCII ones (the
/// Kelvin sign onto `k`, the long s onto `s`).
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '\u{212A}' => "k".chars().collect::<Vec<_>>(),
            '\u{017F}' => "s".chars().collect(),
            c => c.to_lowercase().collect(),
        })
        .collect()
}

impl Json {
    /// Parses `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Json, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The value dockerd would decode into field `key` of a struct: the
    /// last key equal to it up to case folding. `None` when absent or
    /// when `self` is not an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        let Json::Object(pairs) = self else {
            return None;
        };
        let want = fold(key);
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key || fold(k) == want)
            .map(|(_, v)| v)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(Json::Number(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Json::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = map.next_entry::<String, Json>()? {
                    v.push((k, x));
                }
                Ok(Json::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_like_go() {
        let j = Json::parse(
            br#"{"HostConfig": {"NetworkMode": "bridge"}, "hostconfig": {"networkmode": "host"}}"#,
        )
        .unwrap();
        // The last matching key wins, whatever its case.
        let mode = j.get("HostConfig").and_then(|h| h.get("NetworkMode"));
        assert_eq!(mode.and_then(Json::as_str), Some("host"));
        // Go folds the Kelvin sign onto k and the long s onto s.
        let k = Json::parse("{\"Networ\u{212A}Mode\": \"host\", \"Privileged\": true}".as_bytes())
            .unwrap();
        assert_eq!(k.get("NetworkMode").and_then(Json::as_str), Some("host"));
        let s = Json::parse("{\"Label\u{017F}\": {}}".as_bytes()).unwrap();
        assert!(s.get("Labels").is_some());
        assert_eq!(k.get("Privileged"), Some(&Json::Bool(true)));
        assert_eq!(k.get("Image"), None);
    }
}
