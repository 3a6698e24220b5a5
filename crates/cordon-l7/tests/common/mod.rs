//! Helpers shared by cordon-l7's integration tests.

pub mod hello;
pub mod lab;
