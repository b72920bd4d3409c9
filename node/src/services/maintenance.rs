//! Housekeeping, once an hour: old replay-protection ids and finished deliveries are pruned,
//! and moves are re-sent to servers whose followers have not moved yet.

use std::time::Duration;

use crate::db::{self};
use crate::ids::now_ms;
use crate::state::AppState;

/// Replay-protection ids are kept well past the signature date window (12 h by default).
const RECEIVED_KEEP_MS: i64 = 3 * 86_400_000;
/// Finished deliveries are kept a week, for the move wizard's progress and for debugging.
const DELIVERIES_KEEP_MS: i64 = 7 * 86_400_000;

/// One pruning pass.
pub async fn prune(state: &AppState) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let keep_received =
        RECEIVED_KEEP_MS.max(2 * state.config.signature_max_skew.as_millis() as i64);
    let mut tx = state.db.begin().await?;
    let ids = db::received::prune(&mut tx, now - keep_received).await?;
    let deliveries = db::deliveries::prune(&mut tx, now - DELIVERIES_KEEP_MS).await?;
    tx.commit().await?;
    if ids + deliveries > 0 {
        tracing::info!(pruned.received = ids, pruned.deliveries = deliveries, "pruned old rows");
    }
    Ok(())
}

/// Checkpoints SQLite's WAL a few times a second, off the writer's path (`Db::checkpoint`).
pub async fn run_checkpoints(state: AppState) {
    if state.db.backend() != crate::db::Backend::Sqlite {
        return;
    }
    let mut shutdown = state.shutdown.subscribe();
    loop {
        if let Err(e) = state.db.checkpoint().await {
            tracing::debug!(error = %e, "checkpoint failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs `prune` hourly until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.subscribe();
    loop {
        if let Err(e) = prune(&state).await {
            tracing::warn!(error = %e, "pruning failed");
        }
        if let Err(e) = crate::services::moving::resend_pending(&state, now_ms()).await {
            tracing::warn!(error = %e, "re-sending moves failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
