//! The JSON rendering (schema `cordon-audit/1`, documented in
//! docs/audit.md): the [`Report`] as serde writes it.

use crate::model::Report;

/// The report as pretty JSON.
pub fn render(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report serializes")
}
