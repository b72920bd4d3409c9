//! Ferry's wire protocol: ActivityStreams/ActivityPub vocabulary as serde types, WebFinger and
//! NodeInfo documents, HTTP signature helpers, identity proofs (`did:key`, `eddsa-jcs-2022`)
//! and the BlurHash encoder.
//!
//! Invariants: this crate knows nothing about storage, HTTP servers or the node's state; it
//! never does I/O. References to other objects are `Url`s. Parsing is lenient where the
//! fediverse is messy (see `lenient`) and strict where security depends on it (ids, actors, keys).
#![warn(missing_docs)]

pub mod activities;
pub mod blurhash;
pub mod context;
pub mod identity;
pub mod lenient;
pub mod nodeinfo;
pub mod objects;
pub mod signatures;
pub mod webfinger;
