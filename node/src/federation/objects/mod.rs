//! `Object`/`Actor` impls: database rows wrapped so the library can fetch, verify and store them.

pub mod note;
pub mod person;
