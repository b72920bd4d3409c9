//! ActivityPub activities, one struct per type we speak.
//!
//! Each struct's `kind` is a one-variant enum from `activitystreams_kinds`, so an untagged
//! enum over these types (the node's `AnyActivity`) picks the variant by `type`. Every
//! activity has a required `id` and `actor`; `actor` and reference-valued `object`s accept a
//! URL or an embedded object with an `id` (`lenient::id_of`). Addressing (`to`, `cc`) accepts
//! one or many entries and normalises `as:Public`.

mod create;
mod follow;
mod interact;
mod migrate;

pub use create::{Create, Delete, Update, UpdateObject};
pub use follow::{Accept, Follow, Reject};
pub use interact::{Announce, Block, Like, Undo, UndoObject};
pub use migrate::Move;

use crate::objects::impl_has_id;

impl_has_id!(Follow, Accept, Reject, Undo, Create, Update, Delete, Announce, Like, Block, Move);
