//! Use cases: what the node does, whichever way the request arrived (client API, inbox, CLI).

pub mod accounts;
pub mod archive;
pub mod blocks;
pub mod content;
pub mod follows;
pub mod import;
pub mod interactions;
pub mod maintenance;
pub mod media;
pub mod moving;
pub mod notes;
pub mod tokens;
