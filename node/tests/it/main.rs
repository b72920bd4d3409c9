//! Integration tests for `ferry-node`, one binary (docs/style.md 6.5): storage on every
//! backend (`db`), the one-shot delivery client against real TLS servers (`one_shot`), and
//! repository-wide checks (`tidy`).

mod db;
mod one_shot;
mod support;
mod tidy;
