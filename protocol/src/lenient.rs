//! Serde helpers for the shapes real servers send where the vocabulary allows several.
//!
//! ActivityStreams lets most properties be one value or an array, a URL or an embedded object,
//! and servers use all of those forms. The helpers here accept every form we have seen and hand
//! the wire types one canonical shape; serialisation always writes that canonical shape.
//! Leniency ends where security starts: an `id` or `actor` that is not a URL is an error, never
//! silently dropped (`id_of`), while presentation fields (`url`, `inReplyTo`, tags, icons) fall
//! back to "absent" when they cannot be understood.
//!
//! Use them with `#[serde(default, deserialize_with = "crate::lenient::...")]`; the `default` is
//! what makes an absent property acceptable.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use url::Url;

use crate::context::{is_public_str, public_url};

/// Actor types whose entries `id_of` prefers when a property holds several references
/// (PeerTube's `attributedTo` lists the account before the channel `Group`).
const ACTOR_TYPES: [&str; 5] = ["Person", "Service", "Application", "Group", "Organization"];

/// One value, an array of values, or `null`/absent (with `#[serde(default)]`), as a `Vec`.
///
/// Fails if any item fails to parse; use [`skip_invalid`] where bad items should be dropped.
pub fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }

    Ok(match Option::<OneOrMany<T>>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::Many(items)) => items,
        Some(OneOrMany::One(item)) => vec![item],
    })
}

/// Like [`one_or_many`], but items that do not parse as `T` are dropped instead of failing the
/// whole document (unknown tag types, odd attachments, aliases that are not URLs).
pub fn skip_invalid<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let values: Vec<Value> = one_or_many(deserializer)?;
    Ok(values.into_iter().filter_map(|value| serde_json::from_value(value).ok()).collect())
}

/// The first item that parses as `T`, from one value or an array; `None` for `null`, absent,
/// or nothing usable. For decorative single objects such as an actor's `icon`.
pub fn first_valid<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(skip_invalid(deserializer)?.into_iter().next())
}

/// `T::default()` for `null` as well as for an absent property (with `#[serde(default)]`).
///
/// Some servers send `"content": null` or `"sensitive": null` where others omit the property.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A required reference: `"https://…"`, an embedded object with an `id`, or an array of those
/// (as in some `attributedTo` values), in which case the first actor-looking entry wins.
///
/// Anything else is an error: these properties (`actor`, `object`, `attributedTo`) decide who
/// did what, so a value we cannot read must reject the document.
pub fn id_of<'de, D>(deserializer: D) -> Result<Url, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    reference_id(&value).ok_or_else(|| {
        D::Error::custom("expected a URL, an object with an `id`, or an array of those")
    })
}

/// An optional reference, read like [`id_of`]; `null`, absent or unreadable values are `None`.
///
/// For presentation-only references such as `inReplyTo`, where a bad value should cost us the
/// link, not the whole post.
pub fn opt_id_of<'de, D>(deserializer: D) -> Result<Option<Url>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(reference_id(&value))
}

/// The `url` property: a string, a `Link` object with `href`, or an array of those. From an
/// array the first `text/html` link wins (PeerTube lists HTML next to video files), else the
/// first usable entry. Unreadable values are `None`.
pub fn url_of<'de, D>(deserializer: D) -> Result<Option<Url>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(link_href(&value))
}

/// A required URL read like [`url_of`] (string, `Link`, or array), for media whose whole point
/// is the file it points at (`Attachment.url`, `Image.url`).
pub fn required_url_of<'de, D>(deserializer: D) -> Result<Url, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    link_href(&value)
        .ok_or_else(|| D::Error::custom("expected a URL, a Link with `href`, or an array of those"))
}

/// Addressing (`to`, `cc`): one or many entries, each a URL or an object with an `id`.
///
/// The compact public forms `as:Public` and `Public` become the full
/// [`PUBLIC`](crate::context::PUBLIC) URL so that later checks only compare one form. Entries
/// that are not URLs are dropped; that can only narrow the audience, never widen it.
pub fn audience<'de, D>(deserializer: D) -> Result<Vec<Url>, D::Error>
where
    D: Deserializer<'de>,
{
    let values: Vec<Value> = one_or_many(deserializer)?;
    Ok(values
        .iter()
        .filter_map(|value| match value {
            Value::String(s) if is_public_str(s) => Some(public_url()),
            other => single_id(other),
        })
        .collect())
}

/// For `skip_serializing_if`: flags that default to `false` are omitted when false.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// The id of one reference or, for arrays, of the first actor-looking entry (else the first
/// entry with an id).
fn reference_id(value: &Value) -> Option<Url> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter(|item| looks_like_actor(item))
            .find_map(single_id)
            .or_else(|| items.iter().find_map(single_id)),
        other => single_id(other),
    }
}

/// A bare URL string, or the `id` of an embedded object.
fn single_id(value: &Value) -> Option<Url> {
    match value {
        Value::String(s) => Url::parse(s).ok(),
        Value::Object(map) => {
            map.get("id").and_then(Value::as_str).and_then(|s| Url::parse(s).ok())
        }
        _ => None,
    }
}

/// Bare URLs count as actor references; objects count when their `type` is an actor type.
fn looks_like_actor(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Object(map) => {
            map.get("type").and_then(Value::as_str).is_some_and(|kind| ACTOR_TYPES.contains(&kind))
        }
        _ => false,
    }
}

/// The target of a `url`-like value; see [`url_of`].
fn link_href(value: &Value) -> Option<Url> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter(|item| is_html_link(item))
            .find_map(single_href)
            .or_else(|| items.iter().find_map(single_href)),
        other => single_href(other),
    }
}

/// A bare URL string, or the `href` of a `Link` object.
fn single_href(value: &Value) -> Option<Url> {
    match value {
        Value::String(s) => Url::parse(s).ok(),
        Value::Object(map) => {
            map.get("href").and_then(Value::as_str).and_then(|s| Url::parse(s).ok())
        }
        _ => None,
    }
}

fn is_html_link(value: &Value) -> bool {
    value.get("mediaType").and_then(Value::as_str).is_some_and(|media_type| {
        media_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
    })
}
