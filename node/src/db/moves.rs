//! `moves`: account moves a local account made, and moves of remote accounts this node accepted.

use super::{Db, Tx, on_db, on_tx};

/// One recorded move.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MoveRow {
    pub id: i64,
    pub actor_id: i64,
    pub target_ap_id: String,
    pub created_at: i64,
}

/// Records that `actor_id` moved to `target`.
pub async fn insert(tx: &mut Tx, row: &MoveRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO moves (id, actor_id, target_ap_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(row.id)
        .bind(row.actor_id)
        .bind(&row.target_ap_id)
        .bind(row.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// The latest move of `actor_id`, if any.
pub async fn latest(db: &Db, actor_id: i64) -> Result<Option<MoveRow>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_as::<_, MoveRow>(
            "SELECT id, actor_id, target_ap_id, created_at FROM moves WHERE actor_id = $1
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(actor_id)
        .fetch_optional(pool)
        .await
    })
}
