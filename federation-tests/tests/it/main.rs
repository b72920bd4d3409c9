//! Multi-node federation scenarios.

// Test helpers outside #[test] functions: a panic with the value is the useful report.
#![allow(clippy::unwrap_used)]

mod crash;
mod scenario;
mod signatures;
