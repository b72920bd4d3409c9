//! JSON-LD `@context` values and media types: what Ferry emits, and how we recognise what
//! others send (`Accept` headers asking for ActivityStreams, the many spellings of "public").

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

/// The ActivityPub media type (`Content-Type` of everything we serve and deliver).
pub const ACTIVITY_JSON: &str = "application/activity+json";

/// The JSON-LD media type with the ActivityStreams profile, which the ActivityPub spec makes
/// the canonical `Accept` value; servers must treat it like [`ACTIVITY_JSON`].
pub const LD_JSON_AS: &str =
    "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// The special collection that addresses everyone.
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// The compact IRI forms of [`PUBLIC`] that JSON-LD allows and some servers send.
const PUBLIC_COMPACT: [&str; 2] = ["as:Public", "Public"];

/// [`PUBLIC`] as a `Url`.
pub fn public_url() -> Url {
    // Parsed once: addressing is read for every inbound note.
    static PUBLIC_URL: std::sync::LazyLock<Url> =
        std::sync::LazyLock::new(|| Url::parse(PUBLIC).expect("PUBLIC is a valid absolute URL"));
    PUBLIC_URL.clone()
}

/// Whether an `Accept` header asks for ActivityStreams JSON: `application/activity+json` or
/// `application/ld+json` with any parameters, anywhere in a comma-separated list, in any case.
///
/// Quality values are not weighed: a client that lists our type at all can read it, and the
/// alternative (HTML) is the one it would get otherwise.
pub fn accepts_activity_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let media_type = range.split(';').next().unwrap_or_default().trim();
        media_type.eq_ignore_ascii_case("application/activity+json")
            || media_type.eq_ignore_ascii_case("application/ld+json")
    })
}

/// Whether `url` is the public collection, in full or as the compact `as:Public` (which the
/// `url` crate accepts as an opaque URL). `Public` alone is not a URL; see [`is_public_str`].
pub fn is_public(url: &Url) -> bool {
    is_public_str(url.as_str())
}

/// Whether a raw addressing string is the public collection in any of its spellings:
/// [`PUBLIC`], `as:Public` or `Public`.
pub fn is_public_str(s: &str) -> bool {
    let s = s.trim();
    s == PUBLIC || PUBLIC_COMPACT.contains(&s)
}

/// The `@context` Ferry puts on every document it emits: ActivityStreams, the security
/// vocabulary (for `publicKey`), and Mastodon's extension terms for the properties we send.
///
/// The term definitions match Mastodon's `ActivityPub::Adapter::CONTEXT_EXTENSION_MAP`, so
/// JSON-LD processors expand our documents exactly as they expand Mastodon's.
pub fn default_context() -> Value {
    json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        {
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
            "sensitive": "as:sensitive",
            "Hashtag": "as:Hashtag",
            "movedTo": { "@id": "as:movedTo", "@type": "@id" },
            "alsoKnownAs": { "@id": "as:alsoKnownAs", "@type": "@id" },
            "toot": "http://joinmastodon.org/ns#",
            "Emoji": "toot:Emoji",
            "featured": { "@id": "toot:featured", "@type": "@id" },
            "discoverable": "toot:discoverable",
            "indexable": "toot:indexable",
            "blurhash": "toot:blurhash",
            "focalPoint": { "@container": "@list", "@id": "toot:focalPoint" },
            "schema": "http://schema.org#",
            "PropertyValue": "schema:PropertyValue",
            "value": "schema:value",
            "ostatus": "http://ostatus.org#",
            "conversation": "ostatus:conversation"
        }
    ])
}

/// A document with its `@context`, the form in which every top-level object goes on the wire.
///
/// On input the `@context` is optional (`Null` when absent) and kept as-is; nothing in Ferry
/// interprets it, since every server we talk to uses the compact terms above.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WithContext<T> {
    /// The JSON-LD context, usually an array of IRIs and term maps.
    #[serde(rename = "@context", default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
    /// The document itself; its properties sit beside `@context`.
    #[serde(flatten)]
    pub inner: T,
}

impl<T> WithContext<T> {
    /// Wraps `inner` with [`default_context`].
    pub fn new(inner: T) -> Self {
        Self { context: default_context(), inner }
    }
}
