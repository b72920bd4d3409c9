//! `favourites`: likes, local and remote.

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// One like of a note by an actor.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FavouriteRow {
    pub id: i64,
    pub ap_id: String,
    pub actor_id: i64,
    pub note_id: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, ap_id, actor_id, note_id, created_at";

/// Records a like; returns `None` if this actor already liked the note.
pub async fn insert(tx: &mut Tx, row: &FavouriteRow) -> Result<Option<FavouriteRow>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO favourites ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, FavouriteRow>(AssertSqlSafe(sql.as_str()))
            .bind(row.id)
            .bind(&row.ap_id)
            .bind(row.actor_id)
            .bind(row.note_id)
            .bind(row.created_at)
            .fetch_optional(conn)
            .await
    })
}

/// A received like (`$1` to `$5` in `COLUMNS` order), recorded only while its actor and note
/// are stored: the inbox writer's own SQLite connection checks no foreign keys, and a note or
/// actor deleted meanwhile leaves nothing to like. Nothing if its `ap_id` is taken or the actor
/// already liked the note.
pub(crate) const INSERT_RECEIVED: &str =
    "INSERT INTO favourites (id, ap_id, actor_id, note_id, created_at)
     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM actors WHERE id = $3)
       AND EXISTS (SELECT 1 FROM notes WHERE id = $4)
     ON CONFLICT DO NOTHING";

/// `INSERT_RECEIVED` in `tx`; whether it recorded the like.
pub async fn insert_received(tx: &mut Tx, row: &FavouriteRow) -> Result<bool, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(INSERT_RECEIVED)
            .bind(row.id)
            .bind(&row.ap_id)
            .bind(row.actor_id)
            .bind(row.note_id)
            .bind(row.created_at)
            .execute(conn)
            .await
            .map(|done| done.rows_affected() == 1)
    })
}

/// Removes the like of `note` by `actor`; returns it if there was one.
pub async fn delete(
    tx: &mut Tx,
    actor: i64,
    note: i64,
) -> Result<Option<FavouriteRow>, sqlx::Error> {
    let sql =
        format!("DELETE FROM favourites WHERE actor_id = $1 AND note_id = $2 RETURNING {COLUMNS}");
    on_tx!(tx, |conn| sqlx::query_as::<_, FavouriteRow>(AssertSqlSafe(sql.as_str()))
        .bind(actor)
        .bind(note)
        .fetch_optional(conn)
        .await)
}

/// The like created by activity `ap_id`.
pub async fn by_ap_id(db: &Db, ap_id: &str) -> Result<Option<FavouriteRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM favourites WHERE ap_id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, FavouriteRow>(AssertSqlSafe(sql.as_str()))
        .bind(ap_id)
        .fetch_optional(pool)
        .await)
}

/// `(note_id, likes)` for these notes.
pub async fn counts_of(db: &Db, notes: &[i64]) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT note_id, COUNT(*) FROM favourites WHERE note_id IN ({list}) GROUP BY note_id"
    );
    on_db!(db, |pool| sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}

/// Which of these notes `actor` has liked.
pub async fn liked_by(db: &Db, actor: i64, notes: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT note_id FROM favourites WHERE actor_id = $1 AND note_id IN ({list})");
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.as_str()))
        .bind(actor)
        .fetch_all(pool)
        .await)
}

/// Ids of the notes `actor` liked, oldest like first, as `(like id, note ap_id)` after `after`.
pub async fn liked_notes(
    db: &Db,
    actor: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT f.id, n.ap_id FROM favourites f JOIN notes n ON n.id = f.note_id
             WHERE f.actor_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3",
        )
        .bind(actor)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}
