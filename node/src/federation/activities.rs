//! `AnyActivity`: every activity type Ferry accepts, with `verify` (no writes) and `receive`
//! dispatched to one handler per type in `receive`.

use activitypub_federation::traits::Activity;
use ferry_protocol::activities::{
    Accept, Announce, Block, Create, Delete, Follow, Like, Move, Reject, Undo, Update,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::AppError;
use crate::federation::{Data, receive};
use crate::state::AppState;

/// An inbound activity, discriminated by its `type` (each variant's `kind` matches only its own).
// Parsed once per request and moved straight into its handler; boxing the `Create` and
// `Update` variants would only add noise at every construction and match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum AnyActivity {
    Follow(Follow),
    Accept(Accept),
    Reject(Reject),
    Undo(Undo),
    Create(Create),
    Update(Update),
    Delete(Delete),
    Announce(Announce),
    Like(Like),
    Block(Block),
    Move(SignedMove),
}

impl AnyActivity {
    /// Parses the JSON document `body` as an activity whose `type` is `kind`, straight into its
    /// typed form. Dispatching on the type, rather than letting serde try each variant in turn,
    /// parses the document once and keeps the error that matters. `None` means the type is not
    /// one this node handles.
    pub fn from_slice(kind: &str, body: &[u8]) -> Option<Result<AnyActivity, serde_json::Error>> {
        use serde_json::from_slice as parse;
        Some(match kind {
            "Follow" => parse(body).map(AnyActivity::Follow),
            "Accept" => parse(body).map(AnyActivity::Accept),
            "Reject" => parse(body).map(AnyActivity::Reject),
            "Undo" => parse(body).map(AnyActivity::Undo),
            "Create" => parse(body).map(|mut create: Create| {
                create.inherit_audience();
                AnyActivity::Create(create)
            }),
            "Update" => parse(body).map(|mut update: Update| {
                update.inherit_audience();
                AnyActivity::Update(update)
            }),
            "Delete" => parse(body).map(AnyActivity::Delete),
            "Announce" => parse(body).map(AnyActivity::Announce),
            "Like" => parse(body).map(AnyActivity::Like),
            "Block" => parse(body).map(AnyActivity::Block),
            "Move" => parse(body).map(AnyActivity::Move),
            _ => return None,
        })
    }
}

#[async_trait::async_trait]
impl Activity for AnyActivity {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        match self {
            AnyActivity::Follow(a) => &a.id,
            AnyActivity::Accept(a) => &a.id,
            AnyActivity::Reject(a) => &a.id,
            AnyActivity::Undo(a) => &a.id,
            AnyActivity::Create(a) => &a.id,
            AnyActivity::Update(a) => &a.id,
            AnyActivity::Delete(a) => &a.id,
            AnyActivity::Announce(a) => &a.id,
            AnyActivity::Like(a) => &a.id,
            AnyActivity::Block(a) => &a.id,
            AnyActivity::Move(a) => &a.activity.id,
        }
    }

    fn actor(&self) -> &Url {
        match self {
            AnyActivity::Follow(a) => &a.actor,
            AnyActivity::Accept(a) => &a.actor,
            AnyActivity::Reject(a) => &a.actor,
            AnyActivity::Undo(a) => &a.actor,
            AnyActivity::Create(a) => &a.actor,
            AnyActivity::Update(a) => &a.actor,
            AnyActivity::Delete(a) => &a.actor,
            AnyActivity::Announce(a) => &a.actor,
            AnyActivity::Like(a) => &a.actor,
            AnyActivity::Block(a) => &a.actor,
            AnyActivity::Move(a) => &a.activity.actor,
        }
    }

    async fn verify(&self, _data: &Data) -> Result<(), AppError> {
        match self {
            AnyActivity::Create(create) => receive::note::verify_create(create),
            AnyActivity::Update(update) => receive::note::verify_update(update),
            AnyActivity::Undo(undo) => receive::interact::verify_undo(undo),
            AnyActivity::Move(m) => receive::moving::verify_move(&m.activity, &m.document),
            _ => Ok(()),
        }
    }

    async fn receive(self, data: &Data) -> Result<(), AppError> {
        match self {
            AnyActivity::Follow(a) => receive::follow::follow(data, a).await,
            AnyActivity::Accept(a) => receive::follow::accept(data, a).await,
            AnyActivity::Reject(a) => receive::follow::reject(data, a).await,
            AnyActivity::Undo(a) => receive::interact::undo(data, a).await,
            AnyActivity::Create(a) => receive::note::create(data, a).await,
            AnyActivity::Update(a) => receive::note::update(data, a).await,
            AnyActivity::Delete(a) => receive::note::delete(data, a).await,
            AnyActivity::Announce(a) => receive::interact::announce(data, a).await,
            AnyActivity::Like(a) => receive::interact::like(data, a).await,
            AnyActivity::Block(a) => receive::interact::block(data, a).await,
            AnyActivity::Move(a) => receive::moving::receive_move(data, a).await,
        }
    }
}

/// A `Move` with the document it arrived as: a pull-mode move's integrity proof covers the JSON
/// exactly as sent, which the typed form does not keep.
#[derive(Clone, Debug)]
pub struct SignedMove {
    /// The typed activity.
    pub activity: Move,
    /// The document as received.
    pub document: serde_json::Value,
}

impl Serialize for SignedMove {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedMove {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let document = serde_json::Value::deserialize(deserializer)?;
        let activity = Move::deserialize(&document).map_err(serde::de::Error::custom)?;
        Ok(SignedMove { activity, document })
    }
}
