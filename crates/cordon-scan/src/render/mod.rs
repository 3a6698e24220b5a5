//! Output formats of `cordon scan`.

pub mod cyclonedx;
pub mod json;
pub mod sarif;
pub mod table;
