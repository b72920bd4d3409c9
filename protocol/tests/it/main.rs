//! Integration tests for `ferry-protocol`, one binary: recorded documents from other servers
//! (`fixtures`), malformed input, and the pure helpers.

mod context;
mod fixtures;
mod lenient;
mod malformed;
mod objects;
mod support;
mod webfinger;
