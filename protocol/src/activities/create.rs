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

impl Create {
    /// Gives the note the activity's addressing where the note has none of its own (`to` and
    /// `cc` apart). Some servers address only the activity; Mastodon reads the object's
    /// addressing and falls back to the activity's, and so does Ferry. The activity and its note
    /// come from one signer (the note's author must be the actor), so this trusts no one more.
    pub fn inherit_audience(&mut self) {
        inherit(&mut self.object, &self.to, &self.cc);
    }
}

impl Update {
    /// [`Create::inherit_audience`] for an edited note.
    pub fn inherit_audience(&mut self) {
        if let UpdateObject::Note(note) = &mut self.object {
            inherit(note, &self.to, &self.cc);
        }
    }
}

fn inherit(note: &mut Note, to: &[Url], cc: &[Url]) {
    if note.to.is_empty() {
        note.to = to.to_vec();
    }
    if note.cc.is_empty() {
        note.cc = cc.to_vec();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn create(note_audience: serde_json::Value) -> Create {
        let mut note = serde_json::json!({
            "id": "https://a.example/notes/1",
            "type": "Note",
            "attributedTo": "https://a.example/users/u",
            "content": "<p>hi</p>"
        });
        note.as_object_mut().unwrap().extend(note_audience.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "id": "https://a.example/notes/1/activity",
            "type": "Create",
            "actor": "https://a.example/users/u",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": ["https://a.example/users/u/followers"],
            "object": note
        }))
        .unwrap()
    }

    #[test]
    fn a_note_without_addressing_takes_the_activitys() {
        let mut bare = create(serde_json::json!({}));
        bare.inherit_audience();
        assert_eq!(bare.object.to, bare.to);
        assert_eq!(bare.object.cc, bare.cc);

        // Each of `to` and `cc` falls back alone; the note's own addressing wins.
        let mut own_to = create(serde_json::json!({ "to": ["https://b.example/users/v"] }));
        own_to.inherit_audience();
        assert_eq!(own_to.object.to[0].as_str(), "https://b.example/users/v");
        assert_eq!(own_to.object.to.len(), 1);
        assert_eq!(own_to.object.cc, own_to.cc);

        let mut update: Update = serde_json::from_value(serde_json::json!({
            "id": "https://a.example/notes/1#update",
            "type": "Update",
            "actor": "https://a.example/users/u",
            "to": ["as:Public"],
            "object": serde_json::to_value(&bare.object).unwrap()
        }))
        .unwrap();
        if let UpdateObject::Note(note) = &mut update.object {
            note.to.clear();
            note.cc.clear();
        }
        update.inherit_audience();
        let UpdateObject::Note(note) = &update.object else { panic!("a note") };
        assert_eq!(note.to, update.to);
        assert!(note.cc.is_empty());
    }
}
