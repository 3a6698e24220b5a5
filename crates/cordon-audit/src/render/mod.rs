//! The report's renderings: a table for people, JSON and SARIF 2.1.0.

pub mod json;
pub mod sarif;
pub mod table;
