//! `home_feed`: home timelines, written when a note arrives (fan-out on write).

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;

use super::notes::{NoteRow, Page};
use super::{Db, Tx, on_db, on_tx};

/// Puts a note into the home feeds it belongs in: see `fan_out_many`.
pub async fn fan_out(tx: &mut Tx, note: &NoteRow) -> Result<u64, sqlx::Error> {
    fan_out_many(tx, &[note.id]).await
}

/// Puts the notes of `BATCH` (a CTE or subquery of `(id, author_id, visibility)`) into the home
/// feeds they belong in: the author's (when local), local followers' (except for direct notes)
/// and, with `mentions`, mentioned local accounts' (from `MENTIONS`, a table or CTE of
/// `(note_id, actor_id)`).
pub(crate) fn fan_out_batch(mentions: bool, repeats: Repeats, followers: Followers) -> String {
    let mentioned = if mentions {
        "UNION ALL
    SELECT m.actor_id, m.note_id FROM BATCH b JOIN MENTIONS m ON m.note_id = b.id
        JOIN accounts a ON a.actor_id = m.actor_id
        WHERE true"
    } else {
        ""
    };
    // `UNION ALL`: an entry given twice (an author who follows themselves) is dropped by the
    // primary key, and `UNION` would first sort every entry through a B-tree of its own.
    let (insert, on_conflict) = match repeats {
        Repeats::DoNothing => ("INSERT", "ON CONFLICT DO NOTHING"),
        Repeats::OrIgnore => ("INSERT OR IGNORE", ""),
    };
    format!(
        "{insert} INTO home_feed (account_id, note_id)
    SELECT a.actor_id, b.id FROM BATCH b JOIN accounts a ON a.actor_id = b.author_id
        WHERE true
    UNION ALL
    SELECT f.follower_id, b.id FROM BATCH b
        {followed}
        JOIN accounts a ON a.actor_id = f.follower_id
        WHERE b.visibility <> 'direct'
    {mentioned}
    {on_conflict}",
        followed = match followers {
            Followers::Joined => "JOIN follows f ON f.followee_id = b.author_id AND f.accepted",
            Followers::PerNote => {
                "CROSS JOIN LATERAL (SELECT follower_id FROM follows
            WHERE followee_id = b.author_id AND accepted OFFSET 0) f"
            }
        },
    )
}

/// How a fan-out statement finds the followers of a batch's authors.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Followers {
    /// A join, planned as the planner likes.
    Joined,
    /// PostgreSQL: an index lookup per note of the batch. The inbox writers' generic plan
    /// joined the batch to all follows by hashing, reading every row of `follows` for each
    /// batch (1,000 rows, 0.12 ms, in B1), while a batch holds a few dozen notes at most and
    /// an author's accepted followers are one range of `follows_accepted_followers`.
    /// `OFFSET 0` keeps the planner from flattening the subquery back into a join.
    PerNote,
}

/// How a fan-out statement passes over entries a feed already holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Repeats {
    /// `ON CONFLICT DO NOTHING`, on both backends.
    DoNothing,
    /// SQLite's `INSERT OR IGNORE`: the same here (the entries are never NULL), but no
    /// constraint can then abort the statement, so SQLite keeps no statement journal for it
    /// (see `db::ingest::SqliteWriter`).
    OrIgnore,
}

/// `fan_out_many`, with `(LIST)` for the notes' ids. The batch's notes first (materialised), so
/// each join starts from a handful of notes and uses the follows index; left to itself, a
/// planner may start from all follows instead.
pub(crate) static FAN_OUT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH batch AS MATERIALIZED
            (SELECT id, author_id, visibility FROM notes WHERE id IN (LIST))
        {}",
        fan_out_batch(true, Repeats::DoNothing, Followers::Joined)
            .replace("BATCH", "batch")
            .replace("MENTIONS", "mentions")
    )
});

/// Puts stored notes into the home feeds they belong in, in one statement: the author's (when
/// local), local followers' (except for direct notes) and mentioned local accounts'.
pub async fn fan_out_many(tx: &mut Tx, note_ids: &[i64]) -> Result<u64, sqlx::Error> {
    if note_ids.is_empty() {
        return Ok(0);
    }
    super::execute_with_ids(tx, &FAN_OUT, note_ids).await
}

/// Removes `author`'s notes from `account`'s home feed (after an unfollow).
pub async fn remove_author(tx: &mut Tx, account: i64, author: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM home_feed WHERE account_id = $1
               AND note_id IN (SELECT id FROM notes WHERE author_id = $2)",
        )
        .bind(account)
        .bind(author)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// A page of `account`'s home timeline, without notes by accounts it blocks or mutes (their
/// boosts and mentions still put notes into the feed; reading filters them).
pub async fn home(db: &Db, account: i64, page: &Page) -> Result<Vec<NoteRow>, sqlx::Error> {
    let order = if page.min_id.is_some() { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT n.id, n.ap_id, n.author_id, n.is_local, n.visibility, n.content, n.summary,
            n.sensitive, n.language, n.url, n.in_reply_to_ap_id, n.in_reply_to_id, n.reblog_of_id,
            n.audience, n.published_at, n.updated_at, n.deleted_at
         FROM home_feed h JOIN notes n ON n.id = h.note_id
         WHERE h.account_id = $1 AND n.deleted_at IS NULL AND h.note_id < $2 AND h.note_id > $3
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.account_id = $1 AND b.target_id = n.author_id)
         ORDER BY h.note_id {order} LIMIT $4"
    );
    let rows = on_db!(db, |pool| {
        sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
            .bind(account)
            .bind(page.max_id.unwrap_or(i64::MAX))
            .bind(page.min_id.or(page.since_id).unwrap_or(i64::MIN))
            .bind(page.limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(page.finish(rows))
}

/// Merges `author`'s most recent notes into a local account's home feed (a follow was just
/// accepted: notes that arrived while it was pending, or before it, show up at once, as
/// Mastodon's merge does). Direct notes are left out; they reach feeds only by mention.
pub async fn merge_author(
    tx: &mut Tx,
    account: i64,
    author: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    const SQL: &str = "INSERT INTO home_feed (account_id, note_id)
        SELECT $1, n.id FROM notes n
        WHERE n.author_id = $2 AND n.deleted_at IS NULL AND n.visibility <> 'direct'
          AND EXISTS (SELECT 1 FROM accounts a WHERE a.actor_id = $1)
        ORDER BY n.id DESC LIMIT $3
        ON CONFLICT DO NOTHING";
    on_tx!(tx, |conn| {
        sqlx::query(SQL)
            .bind(account)
            .bind(author)
            .bind(limit)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}
