//! Integration tests for `ferry-node`, one binary (docs/style.md 6.5): storage on every
//! backend (`db`) and repository-wide checks (`tidy`).

mod db;
mod support;
mod tidy;
