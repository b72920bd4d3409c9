//! Moving a local account: push mode (the old account tells its followers) and pull mode
//! (the new account speaks for an old one whose server may be gone).

use url::Url;

use crate::db::actors::ActorRow;
use crate::db::moves::MoveRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::{fetch, outbox};
use crate::ids::now_ms;
use crate::state::AppState;

use super::{
    MOVE_COOLDOWN_MS, available, carry_blocks, carry_followers, ensure_not_moved, resolve,
};

/// Moves the local account `actor` to `target` (an actor URL or handle): the target, fetched
/// fresh, must list `actor` in its `alsoKnownAs`. Sends `Update(Person)` with `movedTo` and
/// then `Move` to every follower's server, and moves this node's own followers at once.
/// Moving again to the same target re-sends the move (for followers whose servers missed it);
/// moving to another target waits [`MOVE_COOLDOWN_MS`] after the last move.
pub async fn move_account(state: &AppState, actor: &ActorRow, target: &str) -> AppResult<ActorRow> {
    if !actor.is_local {
        return Err(AppError::Invalid(format!("{} is not a local account", actor.ap_id)));
    }
    let target = resolve(state, target, true).await?;
    if target.id == actor.id {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    available(&target)?;
    if let Some(elsewhere) = &target.moved_to {
        return Err(AppError::Invalid(format!(
            "{} has itself moved to {elsewhere}; move there instead",
            target.ap_id
        )));
    }
    if !target.aliases().iter().any(|a| a == &actor.ap_id) {
        return Err(AppError::Invalid(format!(
            "{} does not list {} as an alias (alsoKnownAs); add the alias on the new account first",
            target.ap_id, actor.ap_id
        )));
    }
    let now = now_ms();
    let resend = actor.moved_to.as_deref() == Some(target.ap_id.as_str());
    let last = db::moves::latest(&state.db, actor.id).await?;
    if !resend && let Some(last) = &last {
        let wait = last.created_at + MOVE_COOLDOWN_MS - now;
        if wait > 0 {
            return Err(AppError::RateLimited(format!(
                "this account moved less than 30 days ago; it can move again in {} days",
                (wait + 86_399_999) / 86_400_000
            )));
        }
    }
    // A re-sent move counts towards the first one's progress; a new one starts its own.
    let (record, is_new) = match last {
        Some(last) if resend && last.target_ap_id == target.ap_id => (last, false),
        _ => {
            let id = state.db.next_id();
            (
                MoveRow {
                    id,
                    actor_id: actor.id,
                    target_ap_id: target.ap_id.clone(),
                    created_at: now,
                },
                true,
            )
        }
    };
    let mut tx = state.db.begin().await?;
    if is_new {
        db::moves::insert(&mut tx, &record).await?;
    }
    db::moves::snapshot_servers(&mut tx, record.id, actor.id, now).await?;
    let moved = db::actors::set_moved_to(&mut tx, actor.id, &target.ap_id).await?;
    // The profile with `movedTo` first, so a server that checks the old account sees it moved.
    outbox::person_updated(&mut tx, state, &moved).await?;
    outbox::moved(&mut tx, state, &moved, &target, true, []).await?;
    tx.commit().await?;
    state.wake_delivery();
    tracing::info!(from = %moved.ap_id, to = %target.ap_id, resend, "account moved");
    carry_followers(state, &moved, &target).await?;
    carry_blocks(state, &moved, &target).await?;
    Ok(moved)
}

/// What a pull-mode move was sent to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PullMove {
    /// Followers listed in the imported archive.
    pub followers: usize,
    /// Servers (inboxes) the `Move` was queued for.
    pub servers: usize,
    /// Followers whose actor could not be fetched (their server is down, or they are gone).
    pub unreachable: usize,
}

/// Moves the followers of `old`, an account whose server may be gone, to the local `actor`
/// (pull mode, FEP-7628): `actor` must list `old` as an alias and hold the identity key `old`
/// proved (taken over from its archive), and the followers come from that archive. Sends
/// `Move {actor: actor, object: old, target: actor}` with a proof by the identity key to each
/// follower's server.
pub async fn move_from(state: &AppState, actor: &ActorRow, old: &str) -> AppResult<PullMove> {
    ensure_not_moved(actor)?;
    let old = Url::parse(old.trim())
        .map_err(|e| AppError::Invalid(format!("{old:?} is not an actor URL: {e}")))?;
    if old.as_str() == actor.ap_id {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    if !actor.aliases().iter().any(|a| a == old.as_str()) {
        return Err(AppError::Invalid(format!(
            "{old} is not an alias of this account; add it first (POST /api/v1/accounts/alias)"
        )));
    }
    let followers = db::moves::archive_followers(&state.db, actor.id).await?;
    if followers.is_empty() {
        return Err(AppError::Invalid(
            "no followers are listed: import the old account's archive first".to_owned(),
        ));
    }
    let key = crate::services::accounts::identity_key(state, actor).await?;
    let mut inboxes = Vec::new();
    let mut unreachable = 0;
    for follower in &followers {
        let found = match Url::parse(follower) {
            Ok(url) => fetch::actor(state, &url, false).await,
            Err(e) => Err(AppError::Invalid(e.to_string())),
        };
        match found {
            Ok(follower) if !follower.is_local => {
                inboxes.push(follower.delivery_inbox().to_owned());
            }
            Ok(_) => {}
            Err(_) => unreachable += 1,
        }
    }
    inboxes.sort();
    inboxes.dedup();
    let id = crate::urls::activity(&state.config, state.db.next_id());
    let followers_url = crate::urls::followers_of(&state.config, actor);
    let mut document = serde_json::json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v1"],
        "id": id,
        "type": "Move",
        "actor": actor.ap_id,
        "object": old,
        "target": actor.ap_id,
        "to": [followers_url],
    });
    document["proof"] = key.prove(&document, chrono::Utc::now());
    let mut tx = state.db.begin().await?;
    outbox::enqueue_document(&mut tx, state, actor, &id, &document.to_string(), inboxes.clone())
        .await?;
    tx.commit().await?;
    state.wake_delivery();
    tracing::info!(from = %old, to = %actor.ap_id, servers = inboxes.len(), "pull-mode move sent");
    Ok(PullMove { followers: followers.len(), servers: inboxes.len(), unreachable })
}
