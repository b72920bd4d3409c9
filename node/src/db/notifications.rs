//! `notifications`: follow, follow_request, mention, reblog and favourite events.

use sqlx::AssertSqlSafe;

use super::notes::Page;
use super::{Db, Tx, on_db, on_tx};

/// One notification for a local account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub account_id: i64,
    /// Mastodon's type names: `follow`, `follow_request`, `mention`, `reblog`, `favourite`.
    pub kind: String,
    pub from_actor_id: i64,
    pub note_id: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, account_id, kind, from_actor_id, note_id, created_at";

/// A notification, `$1` to `$6` in `COLUMNS` order, unless the account is not local, or blocks
/// the sender, or muted it with notifications hidden (then it does nothing).
pub(crate) const INSERT: &str =
    "INSERT INTO notifications (id, account_id, kind, from_actor_id, note_id, created_at)
     SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM accounts WHERE actor_id = $2)
       AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.account_id = $2
                       AND b.target_id = $4 AND b.hide_notifications)";

/// Adds a notification, unless the account is not local, or blocks the sender, or muted it
/// with notifications hidden (then it does nothing).
pub async fn insert(tx: &mut Tx, row: &NotificationRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(INSERT)
            .bind(row.id)
            .bind(row.account_id)
            .bind(&row.kind)
            .bind(row.from_actor_id)
            .bind(row.note_id)
            .bind(row.created_at)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// A page of an account's notifications, optionally only some kinds.
pub async fn page(
    db: &Db,
    account: i64,
    kinds: &[String],
    page: &Page,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    let order = if page.min_id.is_some() { "ASC" } else { "DESC" };
    // Kinds are checked against a fixed list by the caller; quote them anyway.
    let filter = if kinds.is_empty() {
        String::new()
    } else {
        let list = kinds.iter().map(|k| format!("'{}'", k.replace('\'', ""))).collect::<Vec<_>>();
        format!("AND kind IN ({})", list.join(","))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE account_id = $1 {filter}
           AND id < $2 AND id > $3 ORDER BY id {order} LIMIT $4"
    );
    let rows = on_db!(db, |pool| {
        sqlx::query_as::<_, NotificationRow>(AssertSqlSafe(sql.as_str()))
            .bind(account)
            .bind(page.max_id.unwrap_or(i64::MAX))
            .bind(page.min_id.or(page.since_id).unwrap_or(i64::MIN))
            .bind(page.limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(page.finish(rows))
}

/// One notification of an account.
pub async fn by_id(db: &Db, account: i64, id: i64) -> Result<Option<NotificationRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE account_id = $1 AND id = $2");
    on_db!(db, |pool| {
        sqlx::query_as::<_, NotificationRow>(AssertSqlSafe(sql.as_str()))
            .bind(account)
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Dismisses one notification; returns whether it existed.
pub async fn dismiss(tx: &mut Tx, account: i64, id: i64) -> Result<bool, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM notifications WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected() > 0)
    })
}

/// Dismisses all of an account's notifications.
pub async fn clear(tx: &mut Tx, account: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM notifications WHERE account_id = $1")
            .bind(account)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Removes notifications caused by one actor about one note (after an Undo).
pub async fn remove_for(tx: &mut Tx, kind: &str, from: i64, note: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM notifications WHERE kind = $1 AND from_actor_id = $2 AND note_id = $3",
        )
        .bind(kind)
        .bind(from)
        .bind(note)
        .execute(conn)
        .await
        .map(|_| ())
    })
}
