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

/// How often SQLite's WAL is checkpointed while it grows slowly.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// A checkpoint that copied more frames than this runs again at once.
const CATCH_UP_FRAMES: i64 = 1_000;

/// Checkpoints SQLite's WAL a few times a second, off the writer's path (`Db::checkpoint`).
///
/// Beside a busy writer it keeps going: at once again after a checkpoint that found many new
/// frames, and without pause (while frames keep coming) once the WAL is half way to the size at
/// which a writer's commit copies the rest itself, every inbox request waiting on it. That copy
/// is then short. Every 250 ms alone, the writer still had up to 20,000 frames to copy, and
/// stalled for 40-65 ms (B1, SQLite, 20,000 notes/s).
pub async fn run_checkpoints(state: AppState) {
    if state.db.backend() != crate::db::Backend::Sqlite {
        return;
    }
    let near_full = db::writer_checkpoint_frames() / 2;
    let mut shutdown = state.shutdown.subscribe();
    let mut last = db::WalState::default();
    loop {
        let pause = match state.db.checkpoint().await {
            Ok(wal) => {
                let pause = checkpoint_pause(last, wal, near_full);
                last = wal;
                pause
            }
            Err(e) => {
                tracing::debug!(error = %e, "checkpoint failed");
                CHECKPOINT_EVERY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// How long to wait before the next checkpoint, from the WAL after the last two.
fn checkpoint_pause(before: db::WalState, after: db::WalState, near_full: i64) -> Duration {
    // Fewer frames backfilled than last time: the WAL started again meanwhile.
    let copied = if after.backfilled < before.backfilled {
        after.backfilled
    } else {
        after.backfilled - before.backfilled
    };
    if copied > CATCH_UP_FRAMES || (copied > 0 && after.frames >= near_full) {
        Duration::ZERO
    } else {
        CHECKPOINT_EVERY
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::WalState;

    fn wal(frames: i64, backfilled: i64) -> WalState {
        WalState { frames, backfilled }
    }

    #[test]
    fn checkpoints_go_again_at_once_while_a_writer_fills_the_wal() {
        let near_full = 25_000;
        // A quiet WAL: nothing new, or a little.
        assert_eq!(checkpoint_pause(wal(10, 10), wal(10, 10), near_full), CHECKPOINT_EVERY);
        assert_eq!(checkpoint_pause(wal(10, 10), wal(400, 400), near_full), CHECKPOINT_EVERY);
        // Many new frames: again at once, also when the WAL started again in between.
        assert_eq!(checkpoint_pause(wal(10, 10), wal(9_000, 8_000), near_full), Duration::ZERO);
        assert_eq!(
            checkpoint_pause(wal(40_000, 40_000), wal(3_000, 2_000), near_full),
            Duration::ZERO
        );
        // Half way to the writer's own checkpoint and still growing: again at once.
        assert_eq!(
            checkpoint_pause(wal(30_000, 29_900), wal(30_300, 30_200), near_full),
            Duration::ZERO
        );
        // Half way but nothing new (an idle node keeps its large WAL): no busy loop.
        assert_eq!(
            checkpoint_pause(wal(30_300, 30_300), wal(30_300, 30_300), near_full),
            CHECKPOINT_EVERY
        );
    }
}
