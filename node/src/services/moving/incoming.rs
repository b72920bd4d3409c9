//! Acting on a `Move` received from another server.

use url::Url;

use crate::db::actors::ActorRow;
use crate::db::moves::MoveRow;
use crate::db::notes::Page;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::fetch;
use crate::ids::now_ms;
use crate::state::AppState;

use super::notes::lookup_moved;
use super::{PAGE, RECEIVED_MOVE_WINDOW_MS, available, carry_blocks, carry_followers};

/// A remote account `old` announced (in a verified push-mode `Move`) that it moved to
/// `target`. Both are fetched fresh; the move stands only if `target` lists `old` in its
/// `alsoKnownAs`, `old` does not name another account in `movedTo`, and neither is suspended,
/// deleted or (the target) moved on. Returns `false` for a repeat this node ignores.
pub async fn receive_move(state: &AppState, old: &Url, target: &Url) -> AppResult<bool> {
    if old == target {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    let old = fetch::actor(state, old, true).await?;
    let target = fetch::actor(state, target, true).await?;
    accept_move(state, old, target).await
}

/// A pull-mode `Move` (FEP-7628), sent by the new account `target` for the old account `old`
/// with an integrity proof (`document`, as received). It stands when the proof verifies with
/// a `did:key` that both accounts proved to hold (FEP-c390): the target, fetched fresh, and the
/// old account, fetched fresh if its server still answers, else as this node stored it. Then
/// the same checks and effects as a push-mode move.
pub async fn receive_pull_move(
    state: &AppState,
    old: &Url,
    target: &Url,
    document: &serde_json::Value,
) -> AppResult<bool> {
    if old == target {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    let did = ferry_protocol::identity::verify(document)
        .map_err(|e| AppError::Forbidden(format!("the Move's proof: {e}")))?;
    let target = fetch::actor(state, target, true).await?;
    if target.identity_did.as_deref() != Some(did.as_str()) {
        return Err(AppError::Forbidden(format!(
            "the Move is proved by {did}, which {} does not prove to hold",
            target.ap_id
        )));
    }
    let old = match fetch::actor(state, old, true).await {
        Ok(fresh) => fresh,
        Err(e) => db::actors::by_ap_id(&state.db, old.as_str()).await?.ok_or_else(|| {
            AppError::Forbidden(format!(
                "{old} cannot be fetched ({e}) and this node never stored it, so nothing shows it is {did}"
            ))
        })?,
    };
    if old.identity_did.as_deref() != Some(did.as_str()) {
        return Err(AppError::Forbidden(format!("{} never proved to hold {did}", old.ap_id)));
    }
    accept_move(state, old, target).await
}

/// The checks every received move passes, and what it then does (see `receive_move`).
async fn accept_move(state: &AppState, old: ActorRow, target: ActorRow) -> AppResult<bool> {
    if old.is_local {
        return Err(AppError::Forbidden(format!(
            "{} is local; it moves through this node",
            old.ap_id
        )));
    }
    available(&old)?;
    available(&target)?;
    if !target.aliases().iter().any(|a| a == &old.ap_id) {
        return Err(AppError::Forbidden(format!(
            "{} does not list {} in alsoKnownAs",
            target.ap_id, old.ap_id
        )));
    }
    if let Some(to) = old.moved_to.as_deref()
        && to != target.ap_id
    {
        return Err(AppError::Forbidden(format!(
            "{} says it moved to {to}, not to {}",
            old.ap_id, target.ap_id
        )));
    }
    if let Some(to) = &target.moved_to {
        return Err(AppError::Forbidden(format!("{} has itself moved to {to}", target.ap_id)));
    }
    let now = now_ms();
    let last = db::moves::latest(&state.db, old.id).await?;
    match &last {
        Some(last)
            if last.target_ap_id != target.ap_id
                && now - last.created_at < RECEIVED_MOVE_WINDOW_MS =>
        {
            tracing::info!(from = %old.ap_id, to = %target.ap_id, "ignoring a second move within 7 days");
            return Ok(false);
        }
        _ => {}
    }
    let mut tx = state.db.begin().await?;
    if last.as_ref().is_none_or(|l| l.target_ap_id != target.ap_id) {
        let record = MoveRow {
            id: state.db.next_id(),
            actor_id: old.id,
            target_ap_id: target.ap_id.clone(),
            created_at: now,
        };
        db::moves::insert(&mut tx, &record).await?;
    }
    let old = db::actors::set_moved_to(&mut tx, old.id, &target.ap_id).await?;
    tx.commit().await?;
    tracing::info!(from = %old.ap_id, to = %target.ap_id, "remote account moved");
    // A popular account has many followers here; the sender need not wait for all of them.
    // A crash part-way is finished by the next `Move` (a re-sent one is processed again).
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = carry_followers(&state, &old, &target).await {
            tracing::warn!(error = %e, from = %old.ap_id, "moving followers failed part-way");
        }
        if let Err(e) = carry_blocks(&state, &old, &target).await {
            tracing::warn!(error = %e, from = %old.ap_id, "moving blocks and mutes failed part-way");
        }
        match repoint_notes(&state, &old, &target).await {
            Ok(n) if n > 0 => {
                tracing::info!(from = %old.ap_id, notes = n, "re-pointed references to moved notes");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, from = %old.ap_id, "re-pointing moved notes failed part-way");
            }
        }
    });
    Ok(true)
}

/// Re-points this node's references to `old`'s notes (replies, boosts, likes) at the copies
/// `target` imported, note by note, as far as `target`'s node knows them. Runs after a
/// received move; notes imported later keep the old references.
async fn repoint_notes(state: &AppState, old: &ActorRow, target: &ActorRow) -> AppResult<usize> {
    let mut page = Page { max_id: None, since_id: None, min_id: None, limit: PAGE };
    let mut repointed = 0;
    loop {
        let notes = db::notes::by_author(&state.db, old.id, 0, &page).await?;
        let Some(last) = notes.last() else { break };
        page.max_id = Some(last.id);
        let full = notes.len() as i64 == PAGE;
        for note in notes.iter().filter(|n| n.reblog_of_id.is_none()) {
            let Some(new_id) = lookup_moved(state, &target.ap_id, &note.ap_id).await else {
                continue;
            };
            let Ok(url) = Url::parse(&new_id) else { continue };
            let Ok(fetch::Resolved::Note(new)) = fetch::resolve_url(state, &url).await else {
                continue;
            };
            let mut tx = state.db.begin().await?;
            db::notes::repoint(&mut tx, note, &new).await?;
            tx.commit().await?;
            repointed += 1;
        }
        if !full {
            break;
        }
    }
    Ok(repointed)
}
