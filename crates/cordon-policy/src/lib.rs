//! cordon's policy language.
//!
//! [`parse`] turns the text of a policy file into a validated
//! [`PolicyFile`], or into every [`Diagnostic`] found, each located as
//! `FILE:LINE:COL: message`.

pub mod ast;

pub use ast::*;
