//! Posts (`Note` and the other post-like types) with their tags and attachments, and the
//! `Tombstone` left behind when one is deleted.

use std::collections::BTreeMap;

use activitystreams_kinds::object::TombstoneType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::objects::Image;

/// The post types we read as a [`Note`]. Lemmy sends `Page` for posts, Plume and WordPress
/// `Article`, Mastodon `Question` for polls; all render as a post.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// A short post, the common case.
    Note,
    /// A long-form post with a title (`name`).
    Article,
    /// A link or text post (Lemmy).
    Page,
    /// A poll; the options are not modelled yet.
    Question,
}

/// A post.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// The post's id.
    pub id: Url,
    /// Which post type the sender used.
    #[serde(rename = "type")]
    pub kind: NoteKind,
    /// The author. Some servers send an array (PeerTube: account and channel); the first
    /// actor-looking entry is taken.
    #[serde(deserialize_with = "crate::lenient::id_of")]
    pub attributed_to: Url,
    /// The body, HTML. Empty when the sender has none (always sent, as Mastodon does).
    #[serde(default, deserialize_with = "crate::lenient::null_as_default")]
    pub content: String,
    /// The body by language tag (BCP 47); see [`Note::language`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_map: Option<BTreeMap<String, String>>,
    /// Content warning, plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Whether media (or the whole post, with a `summary`) should be hidden by default.
    #[serde(
        default,
        deserialize_with = "crate::lenient::null_as_default",
        skip_serializing_if = "crate::lenient::is_false"
    )]
    pub sensitive: bool,
    /// When the post was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    /// When the post was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
    /// Primary addressees; [`PUBLIC`](crate::context::PUBLIC) here means a public post.
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<Url>,
    /// Secondary addressees; [`PUBLIC`](crate::context::PUBLIC) here means "unlisted".
    #[serde(
        default,
        deserialize_with = "crate::lenient::audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<Url>,
    /// The post this one replies to.
    #[serde(
        default,
        deserialize_with = "crate::lenient::opt_id_of",
        skip_serializing_if = "Option::is_none"
    )]
    pub in_reply_to: Option<Url>,
    /// The post's web page.
    #[serde(
        default,
        deserialize_with = "crate::lenient::url_of",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<Url>,
    /// Mentions, hashtags and custom emoji; other tag types are dropped.
    #[serde(
        default,
        deserialize_with = "crate::lenient::skip_invalid",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tag: Vec<Tag>,
    /// Media attachments; entries we cannot read are dropped.
    #[serde(
        default,
        deserialize_with = "crate::lenient::skip_invalid",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachment: Vec<Attachment>,
    /// The replies collection, kept as JSON: it is only ever followed, never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<serde_json::Value>,
    /// Thread identifier (OStatus `conversation`), used by Mastodon and Pleroma to group a
    /// thread even when replies are missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// Title, for `Article` and `Page`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Note {
    /// The post's language: the first `contentMap` key (GoToSocial and Mastodon send exactly
    /// one, keyed by the language the author chose).
    pub fn language(&self) -> Option<&str> {
        self.content_map.as_ref()?.keys().next().map(String::as_str)
    }
}

/// A tag on a post.
///
/// Internally tagged by `type`; unknown types fail to parse and are dropped by the
/// `skip_invalid` helper on [`Note::tag`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum Tag {
    /// A mentioned actor.
    Mention {
        /// The actor's id.
        href: Url,
        /// How the mention appears in the text (`@alice@example.org`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A hashtag.
    Hashtag {
        /// The sender's page for the tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        href: Option<Url>,
        /// The tag as written, usually with the `#`.
        name: String,
    },
    /// A custom emoji used in the text.
    Emoji {
        /// The emoji's id, when the sender gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Url>,
        /// The shortcode with colons (`:blobcat:`).
        name: String,
        /// The emoji image.
        icon: Image,
    },
}

/// A media attachment on a post. Actor profile fields (`PropertyValue`) are not attachments
/// in this sense; they stay as JSON on [`Person`](crate::objects::Person).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The ActivityStreams type (`Document`, `Image`, `Video`, `Audio`).
    #[serde(rename = "type", default = "document_kind")]
    pub kind: String,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The file.
    #[serde(deserialize_with = "crate::lenient::required_url_of")]
    pub url: Url,
    /// Alt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A compact placeholder for the image (blurha.sh), Mastodon's `toot:blurhash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The point to keep in view when cropping, `[x, y]` in -1.0..=1.0 (Mastodon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_point: Option<Vec<f64>>,
}

fn document_kind() -> String {
    "Document".to_owned()
}

/// What remains of a deleted object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The deleted object's id.
    pub id: Url,
    /// Always `Tombstone`.
    #[serde(rename = "type")]
    pub kind: TombstoneType,
    /// The type the object had before deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub former_type: Option<String>,
    /// When it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DateTime<Utc>>,
}
