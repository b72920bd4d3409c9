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

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
    deserializer.deserialize_any(OneOrMany(PhantomData))
}

/// The visitor of [`one_or_many`]: an array is read item by item, and any other value is handed
/// to `T` as it comes, so nothing is buffered (an untagged enum would copy the whole value into
/// an intermediate tree first, to try each variant on it).
struct OneOrMany<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("one value or an array of values")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<T>, S::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Vec<T>, M::Error> {
        Ok(vec![T::deserialize(de::value::MapAccessDeserializer::new(map))?])
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::BorrowedStrDeserializer::new(v))?])
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::StringDeserializer::new(v.to_owned()))?])
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::StringDeserializer::new(v))?])
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::BoolDeserializer::new(v))?])
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::I64Deserializer::new(v))?])
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::U64Deserializer::new(v))?])
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Vec<T>, E> {
        Ok(vec![T::deserialize(de::value::F64Deserializer::new(v))?])
    }
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
    reference_id(&entries(deserializer)?).ok_or_else(|| {
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
    Ok(reference_id(&entries(deserializer)?))
}

/// The `url` property: a string, a `Link` object with `href`, or an array of those. From an
/// array the first `text/html` link wins (PeerTube lists HTML next to video files), else the
/// first usable entry. Unreadable values are `None`.
pub fn url_of<'de, D>(deserializer: D) -> Result<Option<Url>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(link_href(&entries(deserializer)?))
}

/// A required URL read like [`url_of`] (string, `Link`, or array), for media whose whole point
/// is the file it points at (`Attachment.url`, `Image.url`).
pub fn required_url_of<'de, D>(deserializer: D) -> Result<Url, D::Error>
where
    D: Deserializer<'de>,
{
    link_href(&entries(deserializer)?)
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
    let entries = entries(deserializer)?;
    Ok(entries
        .iter()
        .filter_map(|entry| match &entry.string {
            Some(s) if is_public_str(s) => Some(public_url()),
            _ => entry.id(),
        })
        .collect())
}

/// For `skip_serializing_if`: flags that default to `false` are omitted when false.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// The id of one reference or, for arrays, of the first actor-looking entry (else the first
/// entry with an id).
fn reference_id(entries: &[Entry<'_>]) -> Option<Url> {
    entries
        .iter()
        .filter(|entry| entry.looks_like_actor())
        .find_map(Entry::id)
        .or_else(|| entries.iter().find_map(Entry::id))
}

/// The target of a `url`-like value; see [`url_of`].
fn link_href(entries: &[Entry<'_>]) -> Option<Url> {
    entries
        .iter()
        .filter(|entry| entry.is_html_link())
        .find_map(Entry::href)
        .or_else(|| entries.iter().find_map(Entry::href))
}

/// The entries of a reference-like property (one value, or an array of them) as the helpers
/// above see them, read straight from the document: these properties are on every activity, and
/// building a JSON tree for each cost more than the rest of the parse. (For a single value the
/// helpers' preferences among entries decide nothing, so it reads as an array of one.)
fn entries<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Entry<'de>>, D::Error> {
    one_or_many(deserializer)
}

/// One entry: a bare string, or the members of an embedded object that matter here. Values of
/// any other shape are kept as an empty entry, which no helper uses.
#[derive(Default)]
struct Entry<'a> {
    string: Option<Text<'a>>,
    id: Option<Text<'a>>,
    href: Option<Text<'a>>,
    kind: Option<Text<'a>>,
    media_type: Option<Text<'a>>,
}

impl Entry<'_> {
    /// A bare URL string, or the `id` of an embedded object.
    fn id(&self) -> Option<Url> {
        self.string.as_ref().or(self.id.as_ref()).and_then(|s| Url::parse(s).ok())
    }

    /// A bare URL string, or the `href` of a `Link` object.
    fn href(&self) -> Option<Url> {
        self.string.as_ref().or(self.href.as_ref()).and_then(|s| Url::parse(s).ok())
    }

    /// Bare URLs count as actor references; objects count when their `type` is an actor type.
    fn looks_like_actor(&self) -> bool {
        self.string.is_some() || self.kind.as_deref().is_some_and(|k| ACTOR_TYPES.contains(&k))
    }

    fn is_html_link(&self) -> bool {
        self.media_type.as_deref().is_some_and(|media_type| {
            media_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        })
    }
}

/// A string, borrowed from the document where it has no escapes.
type Text<'a> = Cow<'a, str>;

impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntryVisitor(PhantomData))
    }
}

struct EntryVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EntryVisitor<'a> {
    type Value = Entry<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an object")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Entry<'a>, E> {
        Ok(Entry { string: Some(Cow::Borrowed(v)), ..Entry::default() })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry<'a>, E> {
        Ok(Entry { string: Some(Cow::Owned(v.to_owned())), ..Entry::default() })
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Entry<'a>, E> {
        Ok(Entry { string: Some(Cow::Owned(v)), ..Entry::default() })
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entry<'a>, M::Error> {
        let mut entry = Entry::default();
        // Keys and member values are read as entries too, and count only when they are
        // strings: borrowed where they have no escapes.
        while let Some(key) = map.next_key::<Entry<'a>>()? {
            // A repeated member counts as its last value, as in a parsed JSON object.
            let slot = match key.string.as_deref() {
                Some("id") => &mut entry.id,
                Some("href") => &mut entry.href,
                Some("type") => &mut entry.kind,
                Some("mediaType") => &mut entry.media_type,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value::<Entry<'a>>()?.string;
        }
        Ok(entry)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Entry<'a>, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Entry<'a>, E> {
        Ok(Entry::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry<'a>, E> {
        Ok(Entry::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry<'a>, E> {
        Ok(Entry::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry<'a>, E> {
        Ok(Entry::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry<'a>, E> {
        Ok(Entry::default())
    }
}
