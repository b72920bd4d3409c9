//! One handler per inbound activity type. Handlers check what only they can check, then call
//! `services`; the signature and signer were verified by `inbox` before they run.

use url::Url;

use crate::db::actors::ActorRow;
use crate::error::AppResult;
use crate::federation::{Data, fetch};

pub mod follow;
pub mod interact;
pub mod moving;
pub mod note;

/// The stored actor for `url`, fetched if new.
async fn actor(data: &Data, url: &Url) -> AppResult<ActorRow> {
    fetch::actor(data, url, false).await
}

/// A local actor by id, or `None` for remote or unknown ones.
async fn local_actor(data: &Data, url: &Url) -> AppResult<Option<ActorRow>> {
    Ok(crate::db::actors::by_ap_id(&data.db, url.as_str()).await?.filter(|a| a.is_local))
}
