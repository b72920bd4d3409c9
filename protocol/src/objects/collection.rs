//! Ordered collections (outboxes, followers, featured posts) and their pages, generic over
//! the item type (`Url` for follower lists, `ObjectOrId<Note>` for featured posts, ...).

use activitystreams_kinds::collection::{OrderedCollectionPageType, OrderedCollectionType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

/// A collection; small ones carry their items inline, large ones point at a `first` page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
// serde would otherwise require `T: Default` because of `#[serde(default)]` on the items.
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct OrderedCollection<T> {
    /// The collection's id.
    pub id: Url,
    /// Always `OrderedCollection`.
    #[serde(rename = "type")]
    pub kind: OrderedCollectionType,
    /// How many items the collection holds. Some servers omit it (GoToSocial outboxes);
    /// it then reads as 0.
    #[serde(default)]
    pub total_items: u64,
    /// The first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Url>,
    /// The last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Url>,
    /// Items inline, newest first, when the server includes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_items: Option<Vec<T>>,
}

/// One page of an [`OrderedCollection`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct OrderedCollectionPage<T> {
    /// The page's id.
    pub id: Url,
    /// Always `OrderedCollectionPage`.
    #[serde(rename = "type")]
    pub kind: OrderedCollectionPageType,
    /// The collection this page belongs to.
    pub part_of: Url,
    /// The next (older) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Url>,
    /// The previous (newer) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Url>,
    /// The collection's size, if the server repeats it on pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_items: Option<u64>,
    /// This page's items.
    #[serde(default)]
    pub ordered_items: Vec<T>,
}
