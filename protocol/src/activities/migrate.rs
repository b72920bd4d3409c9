//! Account migration: `Move`.

use activitystreams_kinds::activity::MoveType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

/// An account moving its followers from `object` to `target`.
///
/// Push mode (Mastodon, GoToSocial): `actor == object`, sent to the old account's followers.
/// Pull mode (FEP-7628, Mitra): `actor == target`. Either way the receiver must check the
/// aliases in both directions before acting.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    /// The move's id (Mastodon: `<actor>#moves/<n>`).
    pub id: Url,
    /// Always `Move`.
    #[serde(rename = "type")]
    pub kind: MoveType,
    /// Who sends the move (the old account in push mode, the new one in pull mode).
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub actor: Url,
    /// The account that moves away.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub object: Url,
    /// The account it moves to.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub target: Url,
    /// Primary addressees (the followers collection, or individual followers).
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
    /// An integrity proof (FEP-8b32) when the sender signs the activity, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<serde_json::Value>,
    /// When the move was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}
