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

/// Counts, per server, the remote followers of `actor_id` that `move_id` must carry, and
/// records that the move was sent to each now. Run again (a re-sent move), it adds servers
/// that were not there, and counts one more sending for the others.
pub async fn snapshot_servers(
    tx: &mut Tx,
    move_id: i64,
    actor_id: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO move_servers (move_id, domain, inbox, followers, sends, last_sent_at)
             SELECT $1, a.domain, MIN(COALESCE(a.shared_inbox_url, a.inbox_url)), COUNT(*), 1, $3
             FROM follows f JOIN actors a ON a.id = f.follower_id
             WHERE f.followee_id = $2 AND f.accepted AND NOT a.is_local AND a.deleted_at IS NULL
             GROUP BY a.domain
             ON CONFLICT (move_id, domain)
                DO UPDATE SET sends = move_servers.sends + 1, last_sent_at = excluded.last_sent_at",
        )
        .bind(move_id)
        .bind(actor_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
}

/// One server's part of a move.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ServerProgress {
    pub domain: String,
    pub inbox: String,
    /// Followers there when the move was made.
    pub followers: i64,
    /// Followers there still following the old account.
    pub pending: i64,
    pub sends: i32,
    pub last_sent_at: i64,
    /// How the Move's deliveries to the server went: 1 delivered, 0 still queued, 2 failed for
    /// good, -1 unknown (finished deliveries are pruned after a week).
    pub delivery: i32,
}

/// Progress of `move_id`, made by `actor_id`, server by server. `move_ids_like` matches the ids
/// of the Move activities sent for it.
pub async fn progress(
    db: &Db,
    move_id: i64,
    actor_id: i64,
    move_ids_like: &str,
) -> Result<Vec<ServerProgress>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_as::<_, ServerProgress>(
            "SELECT s.domain, s.inbox, s.followers, s.sends, s.last_sent_at,
                (SELECT COUNT(*) FROM follows f JOIN actors a ON a.id = f.follower_id
                 WHERE f.followee_id = $2 AND f.accepted AND a.domain = s.domain) AS pending,
                COALESCE((SELECT CASE WHEN MAX(CASE WHEN d.status = 1 THEN 1 ELSE 0 END) = 1 THEN 1
                                      WHEN MAX(CASE WHEN d.status = 0 THEN 1 ELSE 0 END) = 1 THEN 0
                                      ELSE 2 END
                          FROM deliveries d JOIN activities act ON act.id = d.activity_id
                          WHERE act.actor_id = $2 AND act.ap_id LIKE $3 AND d.domain = s.domain
                          HAVING COUNT(*) > 0), -1) AS delivery
             FROM move_servers s WHERE s.move_id = $1 ORDER BY s.domain",
        )
        .bind(move_id)
        .bind(actor_id)
        .bind(move_ids_like)
        .fetch_all(pool)
        .await
    })
}

/// Servers of moves made since `since` whose followers have not all moved and whose Move was
/// last sent before `now - pause · 2^(sends - 1)`, at most `max_sends` times: `(move, server)`.
pub async fn due_resends(
    db: &Db,
    since: i64,
    now: i64,
    pause_ms: i64,
    max_sends: i32,
) -> Result<Vec<(MoveRow, String, String, i32)>, sqlx::Error> {
    let rows = on_db!(db, |pool| {
        sqlx::query_as::<_, (i64, i64, String, i64, String, String, i32, i64)>(
            "SELECT m.id, m.actor_id, m.target_ap_id, m.created_at, s.domain, s.inbox, s.sends,
                    s.last_sent_at
             FROM moves m JOIN move_servers s ON s.move_id = m.id
             JOIN actors old ON old.id = m.actor_id
             WHERE m.created_at >= $1 AND old.is_local AND old.moved_to = m.target_ap_id
               AND s.sends < $2
               AND EXISTS (SELECT 1 FROM follows f JOIN actors a ON a.id = f.follower_id
                           WHERE f.followee_id = m.actor_id AND f.accepted AND a.domain = s.domain)",
        )
        .bind(since)
        .bind(max_sends)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .filter(|r| now - r.7 >= pause_ms.saturating_mul(1 << (r.6 - 1).clamp(0, 20)))
        .map(|(id, actor_id, target_ap_id, created_at, domain, inbox, sends, _)| {
            (MoveRow { id, actor_id, target_ap_id, created_at }, domain, inbox, sends)
        })
        .collect())
}

/// Records another sending of `move_id`'s Move to `domain`.
pub async fn mark_resent(
    tx: &mut Tx,
    move_id: i64,
    domain: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE move_servers SET sends = sends + 1, last_sent_at = $1
             WHERE move_id = $2 AND domain = $3",
        )
        .bind(now)
        .bind(move_id)
        .bind(domain)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// Where a moved account's note went, as last looked up: `(new ap_id, checked_at)`.
pub async fn note_move(
    db: &Db,
    note_id: i64,
) -> Result<Option<(Option<String>, i64)>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_as::<_, (Option<String>, i64)>(
            "SELECT new_ap_id, checked_at FROM note_moves WHERE note_id = $1",
        )
        .bind(note_id)
        .fetch_optional(pool)
        .await
    })
}

/// Records where a moved account's note went (`None`: the new node did not know it).
pub async fn set_note_move(
    tx: &mut Tx,
    note_id: i64,
    new_ap_id: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO note_moves (note_id, new_ap_id, checked_at) VALUES ($1, $2, $3)
             ON CONFLICT (note_id) DO UPDATE SET new_ap_id = excluded.new_ap_id,
                checked_at = excluded.checked_at",
        )
        .bind(note_id)
        .bind(new_ap_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// Adds followers listed in an imported archive, in one statement; returns how many were new.
pub async fn add_archive_followers(
    tx: &mut Tx,
    account_id: i64,
    followers: &[String],
) -> Result<u64, sqlx::Error> {
    if followers.is_empty() {
        return Ok(0);
    }
    let done = match tx {
        Tx::Postgres(tx) => sqlx::query(
            "INSERT INTO archive_followers (account_id, follower_ap_id)
                 SELECT $1, f FROM UNNEST($2::text[]) AS t (f) ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(followers)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        Tx::Sqlite(tx) => {
            // `WHERE true` tells SQLite's parser that `ON CONFLICT` belongs to the INSERT.
            sqlx::query(
                "INSERT INTO archive_followers (account_id, follower_ap_id)
                 SELECT $1, value FROM json_each($2) WHERE true ON CONFLICT DO NOTHING",
            )
            .bind(account_id)
            .bind(super::json_array(followers))
            .execute(&mut **tx)
            .await?
            .rows_affected()
        }
    };
    Ok(done)
}

/// The followers listed in archives imported into `account_id`.
pub async fn archive_followers(db: &Db, account_id: i64) -> Result<Vec<String>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT follower_ap_id FROM archive_followers WHERE account_id = $1
             ORDER BY follower_ap_id",
        )
        .bind(account_id)
        .fetch_all(pool)
        .await
    })
}
