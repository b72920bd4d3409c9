//! Actors (`Person` and its siblings), their keys, endpoints and images.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

/// The actor types we federate with. All of them parse into [`Person`]; the kind only tells
/// us how the account presents itself (a bot is a `Service`, a Lemmy community a `Group`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A human account.
    Person,
    /// An automated account (Mastodon's "bot" flag).
    Service,
    /// A server-level actor (instance actors, relays).
    Application,
    /// A community or group that redistributes its members' posts (FEP-1b12).
    Group,
    /// An organisation's account.
    Organization,
}

/// An actor document. Named after the most common kind; every [`ActorKind`] uses it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// The actor's id, which is also where the document is fetched from.
    pub id: Url,
    /// Which kind of actor this is.
    #[serde(rename = "type")]
    pub kind: ActorKind,
    /// The username part of the handle (`alice` in `@alice@example.org`).
    pub preferred_username: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Profile text, HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Where activities for this actor are delivered.
    pub inbox: Url,
    /// The actor's outbox collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<Url>,
    /// The followers collection; also used as an addressee for followers-only posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<Url>,
    /// The following collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<Url>,
    /// Pinned posts (Mastodon's `toot:featured`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub featured: Option<Url>,
    /// Server-wide endpoints, notably the shared inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// The key that signs this actor's requests.
    pub public_key: PublicKey,
    /// Avatar. Unreadable icons are dropped rather than failing the actor.
    #[serde(
        default,
        deserialize_with = "crate::lenient::first_valid",
        skip_serializing_if = "Option::is_none"
    )]
    pub icon: Option<Image>,
    /// Header image. Unreadable images are dropped rather than failing the actor.
    #[serde(
        default,
        deserialize_with = "crate::lenient::first_valid",
        skip_serializing_if = "Option::is_none"
    )]
    pub image: Option<Image>,
    /// The profile's web page.
    #[serde(
        default,
        deserialize_with = "crate::lenient::url_of",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<Url>,
    /// Whether follows need the actor's approval ("locked" account). Always sent, since
    /// Mastodon reads absence as `false`.
    #[serde(default, deserialize_with = "crate::lenient::null_as_default")]
    pub manually_approves_followers: bool,
    /// Whether the actor opts into directories and recommendations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    /// Whether the actor opts into full-text search indexing of public posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexable: Option<bool>,
    /// When the account was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    /// Other actors this one claims to be (account aliases). Unverified: a receiver must
    /// check the link in both directions. Entries that are not URLs are dropped.
    #[serde(
        default,
        deserialize_with = "crate::lenient::skip_invalid",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub also_known_as: Vec<Url>,
    /// The account this one has moved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<Url>,
    /// Profile fields (`PropertyValue`s) and identity proofs, kept as JSON because their
    /// shapes vary by server and we only display them.
    #[serde(
        default,
        deserialize_with = "crate::lenient::one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachment: Vec<serde_json::Value>,
}

/// Server-wide endpoints advertised on an actor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// One inbox for the whole server, so a post to many local followers is delivered once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_inbox: Option<Url>,
}

/// An actor's public key, as used to verify HTTP signatures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// The key id that appears in `Signature` headers (`<actor>#main-key` on Mastodon).
    pub id: Url,
    /// The actor the key belongs to; must match the actor that embeds it.
    pub owner: Url,
    /// The key, PEM-encoded SPKI.
    pub public_key_pem: String,
}

/// An image (avatar, header, emoji).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The ActivityStreams type, `Image` unless the sender says otherwise.
    #[serde(rename = "type", default = "image_kind")]
    pub kind: String,
    /// The image file.
    #[serde(deserialize_with = "crate::lenient::required_url_of")]
    pub url: Url,
    /// MIME type, when the sender gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

fn image_kind() -> String {
    "Image".to_owned()
}
