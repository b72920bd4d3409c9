//! Posting and editing: `Create`, `Update` and `Delete`.

use activitystreams_kinds::activity::{CreateType, DeleteType, UpdateType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::objects::{HasId, Note, Person};

/// A new post.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    /// The activity's id (Mastodon: `<note id>/activity`).
    pub id: Url,
    /// Always `Create`.
    #[serde(rename = "type")]
    pub kind: CreateType,
    /// The author; must match the note's `attributedTo`.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The post, always embedded.
    pub object: Note,
    /// Primary addressees, normally the same as the note's.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<Url>,
    /// Secondary addressees, normally the same as the note's.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<Url>,
    /// When the post was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// The objects an [`Update`] can carry. Untagged: `NoteKind` and `ActorKind` accept disjoint
/// `type`s, so each document matches exactly one variant.
// An edit is parsed once per request; boxing the larger variant would only make every
// construction site noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum UpdateObject {
    /// An edited post.
    Note(Note),
    /// A changed profile (new name, avatar, key, `movedTo`, ...).
    Person(Person),
}

impl HasId for UpdateObject {
    fn id(&self) -> &Url {
        match self {
            UpdateObject::Note(note) => &note.id,
            UpdateObject::Person(person) => &person.id,
        }
    }
}

/// A changed object, sent in full.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    /// The activity's id.
    pub id: Url,
    /// Always `Update`.
    #[serde(rename = "type")]
    pub kind: UpdateType,
    /// Who changed it; must own the object.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The object's new state.
    pub object: UpdateObject,
    /// Primary addressees.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<Url>,
    /// Secondary addressees.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<Url>,
    /// When the change was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// A deleted post or account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Delete {
    /// The activity's id.
    pub id: Url,
    /// Always `Delete`.
    #[serde(rename = "type")]
    pub kind: DeleteType,
    /// Who deleted it; must own the object.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// What was deleted. Senders use a bare URL (GoToSocial, Pleroma, and everyone for
    /// deleted accounts), a `Tombstone` (Mastodon, Misskey) or the object itself; only the id
    /// is kept, since the object is gone either way.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub object: Url,
    /// Primary addressees.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<Url>,
    /// Secondary addressees.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<Url>,
    /// When the object was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}
