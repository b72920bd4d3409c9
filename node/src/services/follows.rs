//! Following: local requests, remote follows arriving, approvals, unfollows.

use crate::db::actors::ActorRow;
use crate::db::follows::FollowRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::outbox;
use crate::ids::now_ms;
use crate::services::notes::notify;
use crate::state::AppState;

/// Recent notes of a newly followed account merged into the follower's home feed.
const MERGE_ON_FOLLOW: i64 = 40;

/// `follower` (local) follows `target`: at once when the target is local and unlocked,
/// otherwise as a request (remote targets answer with `Accept`).
pub async fn follow(
    state: &AppState,
    follower: &ActorRow,
    target: &ActorRow,
) -> AppResult<FollowRow> {
    if follower.id == target.id {
        return Err(AppError::Invalid("you cannot follow yourself".to_owned()));
    }
    crate::services::moving::ensure_not_moved(follower)?;
    if target.deleted_at.is_some() || target.suspended {
        return Err(AppError::NotFound(format!("{} is not available", target.handle())));
    }
    if let Some(existing) = db::follows::by_pair(&state.db, follower.id, target.id).await? {
        if !existing.accepted && !target.is_local {
            // Still pending: the Follow or its answer may have been lost; ask again.
            let mut tx = state.db.begin().await?;
            outbox::follow(&mut tx, state, &existing, follower, target).await?;
            tx.commit().await?;
            state.wake_delivery();
        }
        return Ok(existing);
    }
    let id = state.db.next_id();
    let accepted = target.is_local && !target.manually_approves;
    let row = FollowRow {
        id,
        ap_id: crate::urls::activity(&state.config, id).to_string(),
        follower_id: follower.id,
        followee_id: target.id,
        accepted,
        created_at: now_ms(),
    };
    let mut tx = state.db.begin().await?;
    let row = db::follows::upsert(&mut tx, &row).await?;
    if row.accepted {
        db::feed::merge_author(&mut tx, follower.id, target.id, MERGE_ON_FOLLOW).await?;
    }
    if target.is_local {
        let kind = if accepted { "follow" } else { "follow_request" };
        notify(&mut tx, state, target.id, kind, follower.id, None).await?;
    } else {
        outbox::follow(&mut tx, state, &row, follower, target).await?;
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(row)
}

/// `follower` (local) stops following, or withdraws a request to, `target`.
pub async fn unfollow(state: &AppState, follower: &ActorRow, target: &ActorRow) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let Some(row) = db::follows::delete(&mut tx, follower.id, target.id).await? else {
        return Ok(());
    };
    db::feed::remove_author(&mut tx, follower.id, target.id).await?;
    if !target.is_local {
        outbox::unfollow(&mut tx, state, &row, follower, target).await?;
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(())
}

/// A remote `Follow` of a local actor arrived.
pub async fn receive_follow(
    state: &AppState,
    follower: &ActorRow,
    target: &ActorRow,
    ap_id: &str,
) -> AppResult<()> {
    if !target.is_local || target.kind == "Application" {
        return Err(AppError::NotFound(format!("{} is not a local account", target.ap_id)));
    }
    let accepted = !target.manually_approves;
    let row = FollowRow {
        id: state.db.next_id(),
        ap_id: ap_id.to_owned(),
        follower_id: follower.id,
        followee_id: target.id,
        accepted,
        created_at: now_ms(),
    };
    // Read before the write transaction: it holds the (single, on SQLite) writer.
    let blocked = db::blocks::blocks(&state.db, target.id, follower.id).await?;
    let mut tx = state.db.begin().await?;
    if blocked {
        // Blocked: answered with `Reject`, as Mastodon does, and nothing is stored.
        outbox::answer_follow(&mut tx, state, &row, follower, target, false).await?;
        tx.commit().await?;
        state.wake_delivery();
        return Ok(());
    }
    let new_id = row.id;
    let row = db::follows::upsert(&mut tx, &row).await?;
    // A repeated Follow keeps the first row's id: only a new one is notified.
    if row.id == new_id {
        let kind = if row.accepted { "follow" } else { "follow_request" };
        notify(&mut tx, state, target.id, kind, follower.id, None).await?;
    }
    if row.accepted {
        // A repeated Follow is answered again: the first Accept may have been lost.
        outbox::answer_follow(&mut tx, state, &row, follower, target, true).await?;
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(())
}

/// Approves (`accept`) or rejects a pending request to local `followee` from `follower_id`.
pub async fn answer_request(
    state: &AppState,
    followee: &ActorRow,
    follower_id: i64,
    accept: bool,
) -> AppResult<FollowRow> {
    let row = db::follows::by_pair(&state.db, follower_id, followee.id)
        .await?
        .filter(|f| !f.accepted)
        .ok_or_else(|| {
            AppError::NotFound("no pending follow request from that account".to_owned())
        })?;
    let follower = db::actors::by_id(&state.db, follower_id)
        .await?
        .ok_or_else(|| AppError::NotFound("account".to_owned()))?;
    let mut tx = state.db.begin().await?;
    if accept {
        db::follows::accept(&mut tx, row.id).await?;
        db::feed::merge_author(&mut tx, follower_id, followee.id, MERGE_ON_FOLLOW).await?;
    } else {
        db::follows::delete(&mut tx, follower_id, followee.id).await?;
    }
    if !follower.is_local {
        outbox::answer_follow(&mut tx, state, &row, &follower, followee, accept).await?;
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(FollowRow { accepted: accept, ..row })
}

/// A remote actor accepted a local actor's follow request.
pub async fn remote_accepted(
    state: &AppState,
    follow_ap_id: &str,
    followee: &ActorRow,
    follower_ap_id: Option<&str>,
) -> AppResult<()> {
    let row = find_follow(state, follow_ap_id, followee, follower_ap_id).await?;
    let mut tx = state.db.begin().await?;
    db::follows::accept(&mut tx, row.id).await?;
    db::feed::merge_author(&mut tx, row.follower_id, row.followee_id, MERGE_ON_FOLLOW).await?;
    tx.commit().await?;
    Ok(())
}

/// A remote actor rejected (or removed) a local follower.
pub async fn remote_rejected(
    state: &AppState,
    follow_ap_id: &str,
    followee: &ActorRow,
    follower_ap_id: Option<&str>,
) -> AppResult<()> {
    let Ok(row) = find_follow(state, follow_ap_id, followee, follower_ap_id).await else {
        return Ok(());
    };
    let mut tx = state.db.begin().await?;
    db::follows::delete(&mut tx, row.follower_id, row.followee_id).await?;
    db::feed::remove_author(&mut tx, row.follower_id, row.followee_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Finds the follow an Accept/Reject answers: by the Follow's id, or (servers that mint their
/// own ids) by the pair.
async fn find_follow(
    state: &AppState,
    follow_ap_id: &str,
    followee: &ActorRow,
    follower_ap_id: Option<&str>,
) -> AppResult<FollowRow> {
    if let Some(row) = db::follows::by_ap_id(&state.db, follow_ap_id).await? {
        if row.followee_id != followee.id {
            return Err(AppError::Forbidden(format!(
                "{} cannot answer follow {follow_ap_id}",
                followee.ap_id
            )));
        }
        return Ok(row);
    }
    if let Some(follower_ap_id) = follower_ap_id
        && let Some(follower) = db::actors::by_ap_id(&state.db, follower_ap_id).await?
        && let Some(row) = db::follows::by_pair(&state.db, follower.id, followee.id).await?
    {
        return Ok(row);
    }
    Err(AppError::NotFound(format!("no follow {follow_ap_id}")))
}

/// A remote follower undid its follow of a local actor.
pub async fn remote_unfollowed(
    state: &AppState,
    follower: &ActorRow,
    followee_ap_id: &str,
) -> AppResult<()> {
    let Some(followee) = db::actors::by_ap_id(&state.db, followee_ap_id).await? else {
        return Ok(());
    };
    let mut tx = state.db.begin().await?;
    db::follows::delete(&mut tx, follower.id, followee.id).await?;
    tx.commit().await?;
    Ok(())
}

/// A remote actor blocked a local one: follows both ways end.
pub async fn remote_blocked(
    state: &AppState,
    blocker: &ActorRow,
    blocked: &ActorRow,
) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    db::follows::delete(&mut tx, blocker.id, blocked.id).await?;
    db::follows::delete(&mut tx, blocked.id, blocker.id).await?;
    db::feed::remove_author(&mut tx, blocked.id, blocker.id).await?;
    tx.commit().await?;
    Ok(())
}
