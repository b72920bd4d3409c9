//! The counts a remote account's server reports: the `totalItems` of its outbox, followers and
//! following collections, read when someone here looks the account up (`fetch::resolve_handle`,
//! `fetch::resolve_url`: a search, a mention, a follow by handle). Without them a remote account
//! shows only what this node has seen of it (its followers here, the notes that reached here),
//! which for a stranger's account is close to nothing.
//!
//! Not for every actor stored: the actors fetched to check inbox signatures are most of them (a
//! move brings thousands at once), nobody here asked for their profiles, and each read is three
//! fetches and a write.

use url::Url;

use crate::db::{self, actors::ActorRow, actors::ReportedCounts};
use crate::federation::{fetch, same_origin};
use crate::ids::now_ms;
use crate::state::AppState;

/// The shortest time between two reads of one actor's counts: an account looked up often costs
/// its server three fetches an hour at most.
const READ_SPACING_MS: i64 = 3_600_000;

/// Larger figures are taken as this: no server has more, and the sums stay far from overflow.
const MAX_COUNT: u64 = 1 << 40;

/// Reads `actor`'s counts in the background (at most once per `READ_SPACING_MS`); the profile
/// shows what this node counts until they arrive, and whatever could be read afterwards.
pub fn read_in_background(state: &AppState, actor: &ActorRow) {
    if actor.is_local {
        return;
    }
    let (state, actor) = (state.clone(), actor.clone());
    tokio::spawn(async move {
        match claim(&state, &actor).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!(actor = %actor.ap_id, error = %e, "could not claim a counts read");
                return;
            }
        }
        let reported = read(&state, &actor).await;
        if reported == ReportedCounts::default() {
            return;
        }
        if let Err(e) = store(&state, &actor, reported).await {
            tracing::warn!(actor = %actor.ap_id, error = %e, "could not store reported counts");
        }
    });
}

/// Whether this read may go ahead (`READ_SPACING_MS`), recorded as the last read if so.
async fn claim(state: &AppState, actor: &ActorRow) -> Result<bool, sqlx::Error> {
    let mut tx = state.db.begin().await?;
    let claimed =
        db::actors::claim_counts_read(&mut tx, actor.id, now_ms(), READ_SPACING_MS).await?;
    tx.commit().await?;
    Ok(claimed)
}

async fn store(
    state: &AppState,
    actor: &ActorRow,
    reported: ReportedCounts,
) -> Result<(), sqlx::Error> {
    let mut tx = state.db.begin().await?;
    db::actors::set_reported(&mut tx, actor.id, reported).await?;
    tx.commit().await
}

/// The three collections' `totalItems`, fetched at once; a collection that is missing, on
/// another server, unreadable or without a count gives none.
async fn read(state: &AppState, actor: &ActorRow) -> ReportedCounts {
    let Ok(id) = Url::parse(&actor.ap_id) else { return ReportedCounts::default() };
    let total = |url: &Option<String>| {
        let url = url.as_deref().and_then(|u| Url::parse(u).ok());
        let id = &id;
        async move {
            // Only the actor's own server speaks for it: a collection elsewhere could point
            // this node's fetches at a third party.
            let url = url.filter(|u| same_origin(u, id).is_ok())?;
            match fetch::fetch_json(state, &url).await {
                Ok((doc, _)) => total_items(&doc),
                Err(e) => {
                    tracing::debug!(collection = %url, error = %e, "no count from a collection");
                    None
                }
            }
        }
    };
    let (notes, followers, following) = tokio::join!(
        total(&actor.outbox_url),
        total(&actor.followers_url),
        total(&actor.following_url)
    );
    ReportedCounts { notes, followers, following }
}

/// A collection's `totalItems`, if it is a whole number.
fn total_items(doc: &serde_json::Value) -> Option<i64> {
    let kind = doc.get("type").and_then(|t| t.as_str())?;
    if !matches!(kind, "OrderedCollection" | "Collection") {
        return None;
    }
    let n = doc.get("totalItems")?.as_u64()?;
    i64::try_from(n.min(MAX_COUNT)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_collection_s_whole_count_is_taken() {
        let collection = |total: serde_json::Value| json!({ "type": "OrderedCollection", "id": "https://a.example/c", "totalItems": total });
        assert_eq!(total_items(&collection(json!(42))), Some(42));
        assert_eq!(total_items(&collection(json!(0))), Some(0));
        assert_eq!(total_items(&collection(json!(u64::MAX))), Some(1 << 40));
        for bad in [json!(-1), json!(1.5), json!("42"), json!(null)] {
            assert_eq!(total_items(&collection(bad.clone())), None, "{bad}");
        }
        assert_eq!(total_items(&json!({ "type": "Collection", "totalItems": 7 })), Some(7));
        assert_eq!(total_items(&json!({ "type": "Person", "totalItems": 7 })), None);
        assert_eq!(total_items(&json!({ "type": "OrderedCollection" })), None);
    }
}
