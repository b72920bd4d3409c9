//! `received_activities`: ids of inbound activities already processed (replay protection).

use super::{Db, Tx, on_db, on_tx};

/// Records an activity id (`$1`) received at `$2`, unless it is recorded.
pub(crate) const INSERT_IF_NEW: &str = "INSERT INTO received_activities (ap_id, received_at)
    VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Records an activity id; returns false if it was already recorded.
pub async fn insert_if_new(tx: &mut Tx, ap_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(INSERT_IF_NEW)
            .bind(ap_id)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected() == 1)
    })
}

/// Forgets an id whose handling failed, so a retry of the activity is processed.
pub async fn forget(tx: &mut Tx, ap_id: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM received_activities WHERE ap_id = $1")
            .bind(ap_id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Drops ids older than `before`: a replay that old fails the signature date check anyway.
pub async fn prune(tx: &mut Tx, before: i64) -> Result<u64, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM received_activities WHERE received_at < $1")
            .bind(before)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Whether an activity id was already processed.
pub async fn seen(db: &Db, ap_id: &str) -> Result<bool, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM received_activities WHERE ap_id = $1")
            .bind(ap_id)
            .fetch_one(pool)
            .await
            .map(|n| n > 0)
    })
}
