//! `blocks`: local accounts' blocks and mutes of other accounts.

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// A block (`kind = "block"`) or mute (`kind = "mute"`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BlockRow {
    pub id: i64,
    pub account_id: i64,
    pub target_id: i64,
    pub kind: String,
    pub hide_notifications: bool,
    pub created_at: i64,
}

/// Block or mute, as stored in `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Block,
    Mute,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Mute => "mute",
        }
    }
}

const COLUMNS: &str = "id, account_id, target_id, kind, hide_notifications, created_at";

/// Stores a block or mute; a repeat keeps the first one's id and takes the new
/// `hide_notifications`. Returns the stored row.
pub async fn upsert(tx: &mut Tx, row: &BlockRow) -> Result<BlockRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO blocks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id, target_id, kind)
            DO UPDATE SET hide_notifications = excluded.hide_notifications
         RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, BlockRow>(AssertSqlSafe(sql.as_str()))
            .bind(row.id)
            .bind(row.account_id)
            .bind(row.target_id)
            .bind(&row.kind)
            .bind(row.hide_notifications)
            .bind(row.created_at)
            .fetch_one(conn)
            .await
    })
}

/// Removes a block or mute; returns it if there was one.
pub async fn delete(
    tx: &mut Tx,
    account: i64,
    target: i64,
    kind: Kind,
) -> Result<Option<BlockRow>, sqlx::Error> {
    let sql = format!(
        "DELETE FROM blocks WHERE account_id = $1 AND target_id = $2 AND kind = $3
         RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, BlockRow>(AssertSqlSafe(sql.as_str()))
            .bind(account)
            .bind(target)
            .bind(kind.as_str())
            .fetch_optional(conn)
            .await
    })
}

/// `account`'s blocks and mutes of any of `targets` (for relationships).
pub async fn of(db: &Db, account: i64, targets: &[i64]) -> Result<Vec<BlockRow>, sqlx::Error> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let list = targets.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql =
        format!("SELECT {COLUMNS} FROM blocks WHERE account_id = $1 AND target_id IN ({list})");
    on_db!(db, |pool| sqlx::query_as::<_, BlockRow>(AssertSqlSafe(sql.as_str()))
        .bind(account)
        .fetch_all(pool)
        .await)
}

/// A page of `account`'s blocks or mutes, newest first, with `id < before`.
pub async fn page(
    db: &Db,
    account: i64,
    kind: Kind,
    before: i64,
    limit: i64,
) -> Result<Vec<BlockRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM blocks WHERE account_id = $1 AND kind = $2 AND id < $3
         ORDER BY id DESC LIMIT $4"
    );
    on_db!(db, |pool| sqlx::query_as::<_, BlockRow>(AssertSqlSafe(sql.as_str()))
        .bind(account)
        .bind(kind.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// Blocks and mutes of `target` by local accounts, by id after `after` (what a move carries
/// over to the moved account's new one).
pub async fn of_target(
    db: &Db,
    target: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<BlockRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM blocks WHERE target_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    on_db!(db, |pool| sqlx::query_as::<_, BlockRow>(AssertSqlSafe(sql.as_str()))
        .bind(target)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// Whether `account` blocks `target`.
pub async fn blocks(db: &Db, account: i64, target: i64) -> Result<bool, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM blocks WHERE account_id = $1 AND target_id = $2 AND kind = 'block'",
        )
        .bind(account)
        .bind(target)
        .fetch_one(pool)
        .await
        .map(|n| n > 0)
    })
}
