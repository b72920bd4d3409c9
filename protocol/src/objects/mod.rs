//! ActivityStreams objects: actors, notes and their parts, collections, and references.
//!
//! Every type here is plain data; meaning (who may do what) lives in `node::federation`.

mod actor;
mod collection;
mod note;

use serde::{Deserialize, Serialize};
use url::Url;

pub use actor::{ActorKind, Endpoints, Image, Person, PublicKey};
pub use collection::{OrderedCollection, OrderedCollectionPage};
pub use note::{Attachment, Note, NoteKind, Tag, Tombstone};

/// Anything with an ActivityPub `id`: every object and activity type in this crate.
pub trait HasId {
    /// The object's `id`, the URL it can be fetched from.
    fn id(&self) -> &Url;
}

/// A property that may hold either a bare reference or the embedded object, as `object` does
/// in `Accept` (Mastodon embeds the `Follow`, others send only its id).
///
/// Untagged: a string parses as `Id`, an object as `Object`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ObjectOrId<T> {
    /// Only the id; dereference it to learn more.
    Id(Url),
    /// The embedded object.
    Object(T),
}

impl<T: HasId> ObjectOrId<T> {
    /// The id, whether embedded or bare.
    pub fn id(&self) -> &Url {
        match self {
            ObjectOrId::Id(id) => id,
            ObjectOrId::Object(object) => object.id(),
        }
    }

    /// The embedded object, if the sender included it.
    pub fn object(&self) -> Option<&T> {
        match self {
            ObjectOrId::Id(_) => None,
            ObjectOrId::Object(object) => Some(object),
        }
    }
}

impl<T: HasId> HasId for ObjectOrId<T> {
    fn id(&self) -> &Url {
        ObjectOrId::id(self)
    }
}

/// Implements [`HasId`] for types with a `pub id: Url` field.
macro_rules! impl_has_id {
    ($($ty:ty),+ $(,)?) => {
        $(impl crate::objects::HasId for $ty {
            fn id(&self) -> &url::Url {
                &self.id
            }
        })+
    };
}
pub(crate) use impl_has_id;

impl_has_id!(Person, Note, Tombstone);

impl<T> HasId for OrderedCollection<T> {
    fn id(&self) -> &Url {
        &self.id
    }
}

impl<T> HasId for OrderedCollectionPage<T> {
    fn id(&self) -> &Url {
        &self.id
    }
}
