//! How an outgoing move is going, server by server, and re-sending it where followers have
//! not moved.

use crate::db::actors::ActorRow;
use crate::db::{self};
use crate::error::AppResult;
use crate::federation::outbox;
use crate::state::AppState;

use super::MOVE_COOLDOWN_MS;

/// How many times, at most, a Move is sent to one server, and the pause before the first
/// re-sending (doubled each time after): 6 h, 12 h, 24 h, 48 h.
pub const MAX_SENDS: i32 = 5;

const RESEND_PAUSE_MS: i64 = 6 * 3600 * 1000;

/// A move's progress, for the user who made it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MoveProgress {
    pub moved_to: String,
    /// When the move was made (RFC 3339).
    pub moved_at: String,
    /// Remote followers when the move was made.
    pub followers: i64,
    /// Of those, how many no longer follow the old account (their servers acted on the move).
    pub moved: i64,
    /// How many still follow the old account.
    pub pending: i64,
    /// How many of the pending are on servers the Move could not be delivered to.
    pub failed: i64,
    pub servers: Vec<ServerMove>,
}

/// One server's part of a move.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerMove {
    pub domain: String,
    pub followers: i64,
    pub moved: i64,
    pub pending: i64,
    /// `delivered`, `queued`, `failed` or `unknown` (deliveries are pruned after a week).
    pub delivery: &'static str,
    /// How many times the Move was sent there.
    pub sends: i32,
}

/// The progress of `actor`'s last move, or `None` if it never moved.
pub async fn progress(state: &AppState, actor: &ActorRow) -> AppResult<Option<MoveProgress>> {
    let Some(target) = actor.moved_to.clone() else { return Ok(None) };
    let Some(record) = db::moves::latest(&state.db, actor.id).await? else { return Ok(None) };
    let like = format!("{}#moves/%", actor.ap_id);
    let rows = db::moves::progress(&state.db, record.id, actor.id, &like).await?;
    let servers: Vec<ServerMove> = rows
        .into_iter()
        .map(|r| {
            let pending = r.pending.min(r.followers);
            ServerMove {
                moved: r.followers - pending,
                pending,
                followers: r.followers,
                delivery: match r.delivery {
                    1 => "delivered",
                    0 => "queued",
                    2 => "failed",
                    _ => "unknown",
                },
                sends: r.sends,
                domain: r.domain,
            }
        })
        .collect();
    let sum = |f: fn(&ServerMove) -> i64| servers.iter().map(f).sum::<i64>();
    Ok(Some(MoveProgress {
        moved_to: target,
        moved_at: chrono::DateTime::from_timestamp_millis(record.created_at)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        followers: sum(|s| s.followers),
        moved: sum(|s| s.moved),
        pending: sum(|s| s.pending),
        failed: servers.iter().filter(|s| s.delivery == "failed").map(|s| s.pending).sum(),
        servers,
    }))
}

/// Sends the Move again to servers whose followers have not moved yet (their server missed
/// it, or failed to act), with growing pauses; moves older than the cooldown are left alone.
/// Returns how many servers it was sent to.
pub async fn resend_pending(state: &AppState, now: i64) -> AppResult<usize> {
    let due =
        db::moves::due_resends(&state.db, now - MOVE_COOLDOWN_MS, now, RESEND_PAUSE_MS, MAX_SENDS)
            .await?;
    let mut sent = 0;
    for (record, domain, inbox, _) in due {
        let (Some(actor), Some(target)) = (
            db::actors::by_id(&state.db, record.actor_id).await?,
            db::actors::by_ap_id(&state.db, &record.target_ap_id).await?,
        ) else {
            continue;
        };
        let mut tx = state.db.begin().await?;
        outbox::moved(&mut tx, state, &actor, &target, false, [inbox]).await?;
        db::moves::mark_resent(&mut tx, record.id, &domain, now).await?;
        tx.commit().await?;
        sent += 1;
    }
    if sent > 0 {
        state.wake_delivery();
        tracing::info!(servers = sent, "re-sent moves to servers whose followers have not moved");
    }
    Ok(sent)
}
