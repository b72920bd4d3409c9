//! Moving house: aliases (`alsoKnownAs`), moving a local account to another (push-mode `Move`,
//! and pull mode from a server that is gone), acting on a `Move` of an account this node's
//! users follow, the progress of a move, and where a moved account's notes went.

mod aliases;
mod incoming;
mod notes;
mod outgoing;
mod progress;

pub use aliases::set_aliases;
pub use incoming::{receive_move, receive_pull_move};
pub use notes::{imported_note, moved_note};
pub use outgoing::{PullMove, move_account, move_from};
pub use progress::{MAX_SENDS, MoveProgress, ServerMove, progress, resend_pending};

use url::Url;

use crate::db::actors::ActorRow;
use crate::db::blocks::Kind;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::{fetch, policy};
use crate::services::{blocks, follows};
use crate::state::AppState;

/// Most aliases an account may list (Misskey's limit; Mastodon and GoToSocial set none).
pub const MAX_ALIASES: usize = 10;

/// How long after a move an account must wait before moving to another account (Mastodon's
/// cooldown: a move costs every follower's server work, and followers must not be traded).
pub const MOVE_COOLDOWN_MS: i64 = 30 * 24 * 3600 * 1000;

/// How long a remote account's accepted move stands: a `Move` to another target inside this
/// window is ignored (Mastodon and GoToSocial use 7 days).
pub const RECEIVED_MOVE_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// Followers carried over per database page.
const PAGE: i64 = 200;

/// Finds the actor an alias or move target names: an actor URL, or `@user@host` / `user@host`.
/// `fresh` fetches a remote actor again, as a move must see the document as it is now.
async fn resolve(state: &AppState, raw: &str, fresh: bool) -> AppResult<ActorRow> {
    let raw = raw.trim();
    if raw.starts_with("http://") || raw.starts_with("https://") {
        let url =
            Url::parse(raw).map_err(|e| AppError::Invalid(format!("{raw:?} is not a URL: {e}")))?;
        fetch::actor(state, &url, fresh).await
    } else if raw.contains('@') {
        let found = fetch::resolve_handle(state, raw.trim_start_matches('@')).await?;
        if fresh && !found.is_local {
            let url = Url::parse(&found.ap_id).map_err(|e| AppError::Other(e.into()))?;
            return fetch::actor(state, &url, true).await;
        }
        Ok(found)
    } else {
        Err(AppError::Invalid(format!("{raw:?} is neither an actor URL nor a user@host handle")))
    }
}

/// Refuses an account a move cannot involve: suspended here (or, later, on a suspended
/// domain: the policy stage decides) or deleted.
fn available(actor: &ActorRow) -> AppResult<()> {
    policy::allows_actor(actor)?;
    if actor.deleted_at.is_some() {
        return Err(AppError::Invalid(format!("{} has been deleted", actor.ap_id)));
    }
    Ok(())
}

/// Refuses changes to an account that has moved: it stays readable, and its owner may only
/// re-send the move.
pub fn ensure_not_moved(actor: &ActorRow) -> AppResult<()> {
    match &actor.moved_to {
        Some(to) => {
            Err(AppError::Forbidden(format!("this account has moved to {to} and is read-only")))
        }
        None => Ok(()),
    }
}

/// Every local follower of `old`, and every local account whose request to follow `old` still
/// waits, follows `target` (a request where it is locked) and stops following `old`. Safe to
/// run again: a follower already moved is not followed twice.
async fn carry_followers(state: &AppState, old: &ActorRow, target: &ActorRow) -> AppResult<usize> {
    let mut after = 0;
    let mut moved = 0;
    loop {
        let page = db::follows::local_followers(&state.db, old.id, after, PAGE).await?;
        let Some(&(last, _)) = page.last() else { break };
        after = last;
        let ids: Vec<i64> = page.iter().map(|&(_, follower)| follower).collect();
        for follower in db::actors::by_ids(&state.db, &ids).await? {
            if follower.id != target.id {
                follows::follow(state, &follower, target).await?;
            }
            follows::unfollow(state, &follower, old).await?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Local accounts' blocks and mutes of `old` apply to `target` too, unless the account already
/// follows `target` (it chose to, after the move). Safe to run again.
async fn carry_blocks(state: &AppState, old: &ActorRow, target: &ActorRow) -> AppResult<()> {
    let mut after = 0;
    loop {
        let page = db::blocks::of_target(&state.db, old.id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let ids: Vec<i64> = page.iter().map(|b| b.account_id).collect();
        let accounts = db::actors::by_ids(&state.db, &ids).await?;
        for row in &page {
            let Some(account) = accounts.iter().find(|a| a.id == row.account_id && a.is_local)
            else {
                continue;
            };
            if account.id == target.id
                || db::follows::by_pair(&state.db, account.id, target.id)
                    .await?
                    .is_some_and(|f| f.accepted)
            {
                continue;
            }
            if row.kind == Kind::Block.as_str() {
                blocks::block(state, account, target).await?;
            } else {
                blocks::mute(state, account, target, row.hide_notifications).await?;
            }
        }
    }
    Ok(())
}
