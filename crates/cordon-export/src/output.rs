//! Printing: multi-document YAML (block style, every string a JSON-style
//! double-quoted scalar unless it is plainly safe) or one JSON `List`.
//!
//! Objects come sorted by name and keys sorted within each object, so the
//! same policy always prints the same bytes and a change in the policy is
//! a small diff.

use serde_json::Value;

use crate::Document;

/// Multi-document YAML; each document's notes are comments above it.
pub fn yaml(docs: &[Document]) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        for n in &d.notes {
            out.push_str("# cordon: not exported: ");
            out.push_str(&n.replace('\n', " "));
            out.push('\n');
        }
        emit(&d.value, 0, &mut out);
    }
    out
}

/// One `v1` `List` of every object, pretty-printed JSON.
pub fn json(docs: &[Document]) -> String {
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": docs.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&list).expect("JSON");
    s.push('\n');
    s
}

/// True for a string YAML reads back as the same string when unquoted.
fn plain(s: &str) -> bool {
    const WORDS: [&str; 11] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "",
    ];
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if plain(s) => s.clone(),
        other => serde_json::to_string(other).expect("JSON scalar"),
    }
}

fn key(k: &str) -> String {
    if plain(k) {
        k.to_string()
    } else {
        serde_json::to_string(k).expect("JSON string")
    }
}

/// Is `v` written on the line of its key (a scalar or an empty collection)?
fn inline(v: &Value) -> Option<String> {
    match v {
        Value::Array(a) if a.is_empty() => Some("[]".to_string()),
        Value::Object(o) if o.is_empty() => Some("{}".to_string()),
        Value::Array(_) | Value::Object(_) => None,
        scalar_value => Some(scalar(scalar_value)),
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                match inline(val) {
                    Some(s) => out.push_str(&format!("{pad}{}: {s}\n", key(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        let child = if val.is_array() { indent } else { indent + 2 };
                        emit(val, child, out);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match inline(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // The first line of the item goes after `- `.
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        let trimmed = &inner[indent + 2..];
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(value: Value) -> Document {
        Document {
            name: "x".into(),
            value,
            notes: vec!["dropped".into()],
        }
    }

    #[test]
    fn yaml_is_block_style_and_quotes_what_yaml_would_misread() {
        let v = serde_json::json!({
            "kind": "NetworkPolicy",
            "spec": {
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443, "protocol": "TCP"}]}],
                "podSelector": {},
                "policyTypes": ["Egress"],
                "odd": ["yes", "on", "a: b", "#x", ""],
                "list": [[1, 2], []],
            },
        });
        let text = yaml(&[doc(v)]);
        assert_eq!(
            text,
            "---\n# cordon: not exported: dropped\nkind: NetworkPolicy\nspec:\n  egress:\n  - ports:\n    - port: 443\n      protocol: TCP\n    to:\n    - ipBlock:\n        cidr: \"0.0.0.0/0\"\n        except:\n        - \"10.0.0.0/8\"\n  list:\n  - - 1\n    - 2\n  - []\n  odd:\n  - \"yes\"\n  - \"on\"\n  - \"a: b\"\n  - \"#x\"\n  - \"\"\n  podSelector: {}\n  policyTypes:\n  - Egress\n"
        );
    }

    #[test]
    fn json_is_a_list_of_the_objects() {
        let text = json(&[doc(serde_json::json!({"kind": "NetworkPolicy"}))]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["kind"], "List");
        assert_eq!(v["items"][0]["kind"], "NetworkPolicy");
    }
}
