//! Interactions with posts and actors: `Like`, `Announce` (boost), `Block`, and the `Undo`
//! that retracts any of them (or a `Follow`).

use activitystreams_kinds::activity::{AnnounceType, BlockType, LikeType, UndoType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::activities::Follow;
use crate::objects::HasId;

/// A favourite; Misskey and its forks also use it for emoji reactions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Like {
    /// The like's id.
    pub id: Url,
    /// Always `Like`.
    #[serde(rename = "type")]
    pub kind: LikeType,
    /// Who liked.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The liked post.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub object: Url,
    /// The reaction emoji, for Misskey-style reactions (`:blobcat:` or a Unicode emoji).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
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
    /// When the like was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// A boost (reblog, renote). Groups (Lemmy) also announce whole activities; either way only
/// the id of the announced object is kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Announce {
    /// The announce's id.
    pub id: Url,
    /// Always `Announce`.
    #[serde(rename = "type")]
    pub kind: AnnounceType,
    /// Who boosted.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The boosted post (or announced activity), by id.
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
    /// When the boost was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// A block of one actor by another.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// The block's id.
    pub id: Url,
    /// Always `Block`.
    #[serde(rename = "type")]
    pub kind: BlockType,
    /// Who blocks.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// Who is blocked.
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
    /// When the block was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// What an [`Undo`] retracts. Untagged; the embedded activities' `kind` fields make each
/// match only its own `type`, and a bare string is an id (Mastodon sometimes sends only the
/// id of the undone `Like`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum UndoObject {
    /// An unfollow (or a withdrawn follow request).
    Follow(Follow),
    /// An unlike.
    Like(Like),
    /// An unboost.
    Announce(Announce),
    /// An unblock.
    Block(Block),
    /// Only the undone activity's id; the receiver must look up what it was.
    Id(Url),
}

impl HasId for UndoObject {
    fn id(&self) -> &Url {
        match self {
            UndoObject::Follow(follow) => &follow.id,
            UndoObject::Like(like) => &like.id,
            UndoObject::Announce(announce) => &announce.id,
            UndoObject::Block(block) => &block.id,
            UndoObject::Id(id) => id,
        }
    }
}

/// Retraction of an earlier activity by the same actor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Undo {
    /// The undo's id.
    pub id: Url,
    /// Always `Undo`.
    #[serde(rename = "type")]
    pub kind: UndoType,
    /// Who retracts; must be the actor of the undone activity.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The activity being undone.
    pub object: UndoObject,
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
    /// When the undo was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}
