//! Multi-node federation scenarios.

// Test helpers outside #[test] functions: a panic with the value is the useful report.
#![allow(clippy::unwrap_used)]

mod addressing;
mod api_errors;
mod archive;
mod authorized_fetch;
mod blocks;
mod cli;
mod crash;
mod crash_sender;
mod fanout;
mod hostile;
mod journal;
mod media;
mod moving;
mod postgres;
mod profile;
mod scenario;
mod signatures;
