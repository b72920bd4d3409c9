//! Following: `Follow`, and the `Accept` or `Reject` that answers it.

use activitystreams_kinds::activity::{AcceptType, FollowType, RejectType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::objects::ObjectOrId;

/// A request by `actor` to follow `object`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// The follow's id; `Accept`, `Reject` and `Undo` refer back to it.
    pub id: Url,
    /// Always `Follow`.
    #[serde(rename = "type")]
    pub kind: FollowType,
    /// Who wants to follow.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// Who is to be followed.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub object: Url,
    /// Primary addressees (usually the followed actor, or absent).
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
    /// When the follow was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// Approval of a [`Follow`], sent by the followed actor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Accept {
    /// The accept's id.
    pub id: Url,
    /// Always `Accept`.
    #[serde(rename = "type")]
    pub kind: AcceptType,
    /// The followed actor.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The follow being accepted, embedded (Mastodon, Misskey, GoToSocial) or by id.
    pub object: ObjectOrId<Follow>,
    /// Primary addressees (usually the follower).
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
    /// When the accept was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// Refusal of a [`Follow`] (or removal of an existing follower), sent by the followed actor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    /// The reject's id.
    pub id: Url,
    /// Always `Reject`.
    #[serde(rename = "type")]
    pub kind: RejectType,
    /// The followed actor.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The follow being rejected, embedded or by id.
    pub object: ObjectOrId<Follow>,
    /// Primary addressees (usually the follower).
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
    /// When the reject was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}
