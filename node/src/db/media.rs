//! `media`: uploaded files (stored under the media directory) and remote attachments.

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// One attachment.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MediaRow {
    pub id: i64,
    pub owner_id: i64,
    pub note_id: Option<i64>,
    /// File name under the media directory, for local uploads.
    pub file_name: Option<String>,
    /// Where the file lives, for remote attachments.
    pub remote_url: Option<String>,
    pub content_type: String,
    pub description: String,
    pub blurhash: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub position: i32,
    pub created_at: i64,
}

const COLUMNS: &str = "id, owner_id, note_id, file_name, remote_url, content_type, description, \
    blurhash, width, height, position, created_at";

/// Stores an attachment.
pub async fn insert(tx: &mut Tx, row: &MediaRow) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO media ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    on_tx!(tx, |conn| {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(row.id)
            .bind(row.owner_id)
            .bind(row.note_id)
            .bind(&row.file_name)
            .bind(&row.remote_url)
            .bind(&row.content_type)
            .bind(&row.description)
            .bind(&row.blurhash)
            .bind(row.width)
            .bind(row.height)
            .bind(row.position)
            .bind(row.created_at)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Attaches an owner's unattached uploads to a note, in the given order; returns how many.
pub async fn attach(tx: &mut Tx, owner: i64, note: i64, ids: &[i64]) -> Result<u64, sqlx::Error> {
    let mut attached = 0;
    for (position, id) in ids.iter().enumerate() {
        attached += on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE media SET note_id = $1, position = $2
                 WHERE id = $3 AND owner_id = $4 AND note_id IS NULL",
            )
            .bind(note)
            .bind(position as i32)
            .bind(id)
            .bind(owner)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    Ok(attached)
}

/// One attachment by id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<MediaRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM media WHERE id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, MediaRow>(AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// One attachment by its stored file name.
pub async fn by_file_name(db: &Db, name: &str) -> Result<Option<MediaRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM media WHERE file_name = $1");
    on_db!(db, |pool| sqlx::query_as::<_, MediaRow>(AssertSqlSafe(sql.as_str()))
        .bind(name)
        .fetch_optional(pool)
        .await)
}

/// Attachments of these notes, in position order.
pub async fn of_notes(db: &Db, notes: &[i64]) -> Result<Vec<MediaRow>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql =
        format!("SELECT {COLUMNS} FROM media WHERE note_id IN ({list}) ORDER BY note_id, position");
    on_db!(db, |pool| sqlx::query_as::<_, MediaRow>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}
