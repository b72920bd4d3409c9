//! Blocking and muting other accounts.
//!
//! A block ends follows both ways, keeps the blocked account's notes out of the home timeline
//! and its notifications out, refuses its follows, and is sent to a remote account's server as
//! `Block` (which Mastodon and others answer by dropping follows their side). A mute only hides,
//! on this node.

use crate::db::actors::ActorRow;
use crate::db::blocks::{BlockRow, Kind};
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::outbox;
use crate::ids::now_ms;
use crate::state::AppState;

/// A block or mute of `target` by `actor`, not stored yet; no account blocks or mutes itself.
fn new_row(
    state: &AppState,
    actor: &ActorRow,
    target: &ActorRow,
    kind: Kind,
    hide_notifications: bool,
) -> AppResult<BlockRow> {
    if actor.id == target.id {
        return Err(AppError::Invalid(format!("you cannot {} yourself", kind.as_str())));
    }
    Ok(BlockRow {
        id: state.db.next_id(),
        account_id: actor.id,
        target_id: target.id,
        kind: kind.as_str().to_owned(),
        hide_notifications,
        created_at: now_ms(),
    })
}

/// `actor` (local) blocks `target`.
pub async fn block(state: &AppState, actor: &ActorRow, target: &ActorRow) -> AppResult<BlockRow> {
    let row = new_row(state, actor, target, Kind::Block, true)?;
    let new_id = row.id;
    let mut tx = state.db.begin().await?;
    let row = db::blocks::upsert(&mut tx, &row).await?;
    // Blocking again changes nothing on the wire: the `Block` (named by the block's id) went
    // out the first time.
    let repeated = row.id != new_id;
    let following = db::follows::delete(&mut tx, actor.id, target.id).await?;
    db::follows::delete(&mut tx, target.id, actor.id).await?;
    db::feed::remove_author(&mut tx, actor.id, target.id).await?;
    if target.is_local {
        db::feed::remove_author(&mut tx, target.id, actor.id).await?;
    } else {
        if let Some(follow) = &following {
            outbox::unfollow(&mut tx, state, follow, actor, target).await?;
        }
        if !repeated {
            outbox::block(&mut tx, state, &row, actor, target, false).await?;
        }
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(row)
}

/// `actor` (local) unblocks `target`.
pub async fn unblock(state: &AppState, actor: &ActorRow, target: &ActorRow) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    if let Some(row) = db::blocks::delete(&mut tx, actor.id, target.id, Kind::Block).await?
        && !target.is_local
    {
        outbox::block(&mut tx, state, &row, actor, target, true).await?;
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(())
}

/// `actor` (local) mutes `target`; `notifications` hides its notifications too (Mastodon's
/// default).
pub async fn mute(
    state: &AppState,
    actor: &ActorRow,
    target: &ActorRow,
    notifications: bool,
) -> AppResult<BlockRow> {
    let row = new_row(state, actor, target, Kind::Mute, notifications)?;
    let mut tx = state.db.begin().await?;
    let row = db::blocks::upsert(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// `actor` (local) unmutes `target`.
pub async fn unmute(state: &AppState, actor: &ActorRow, target: &ActorRow) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    db::blocks::delete(&mut tx, actor.id, target.id, Kind::Mute).await?;
    tx.commit().await?;
    Ok(())
}
