//! `notes` (statuses and boosts), with their `mentions` and `note_tags`.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx, row_placeholders};

/// One note; a boost is a note row with `reblog_of_id` set (as Mastodon models it).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NoteRow {
    pub id: i64,
    pub ap_id: String,
    pub author_id: i64,
    pub is_local: bool,
    /// `public`, `unlisted`, `private` (followers only) or `direct`.
    pub visibility: String,
    pub content: String,
    pub summary: String,
    pub sensitive: bool,
    pub language: Option<String>,
    pub url: Option<String>,
    pub in_reply_to_ap_id: Option<String>,
    pub in_reply_to_id: Option<i64>,
    pub reblog_of_id: Option<i64>,
    /// JSON object `{"to": [...], "cc": [...]}` as received or sent.
    pub audience: String,
    pub published_at: i64,
    pub updated_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

pub(crate) const COLUMNS: &str = "id, ap_id, author_id, is_local, visibility, content, \
    summary, sensitive, language, url, in_reply_to_ap_id, in_reply_to_id, reblog_of_id, audience, \
    published_at, updated_at, deleted_at";
/// How many `COLUMNS` there are.
pub(crate) const COLUMN_COUNT: usize = 17;

fn prefixed(prefix: &str) -> String {
    COLUMNS.split(", ").map(|c| format!("{prefix}.{c}")).collect::<Vec<_>>().join(", ")
}

/// Client API pagination: `max_id`, `since_id`, `min_id`, `limit`, as Mastodon defines them.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub max_id: Option<i64>,
    pub since_id: Option<i64>,
    pub min_id: Option<i64>,
    pub limit: i64,
}

impl Page {
    /// The `WHERE` bounds and `ORDER BY` for `column`, with parameters `$a` (upper) and `$b`
    /// (lower). `min_id` pages forward (oldest first), then callers reverse to newest first.
    fn clause(&self, column: &str, a: usize, b: usize, limit: usize) -> String {
        let order = if self.min_id.is_some() { "ASC" } else { "DESC" };
        format!("{column} < ${a} AND {column} > ${b} ORDER BY {column} {order} LIMIT ${limit}")
    }

    fn upper(&self) -> i64 {
        self.max_id.unwrap_or(i64::MAX)
    }

    fn lower(&self) -> i64 {
        self.min_id.or(self.since_id).unwrap_or(i64::MIN)
    }

    /// Puts rows fetched by this page in newest-first order.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> Vec<T> {
        if self.min_id.is_some() {
            rows.reverse();
        }
        rows
    }
}

/// Stores a note; returns `None` if a note with the same `ap_id` already exists.
///
/// Ids of remote notes and boosts come from their published time (`ids::id_at`), which many
/// notes can share (Mastodon sends whole seconds): on an id clash the low 16 bits are drawn
/// again, so the note keeps its place in time and is never refused for it.
pub async fn insert(tx: &mut Tx, note: &NoteRow) -> Result<Option<NoteRow>, sqlx::Error> {
    // Any conflict does nothing (a PostgreSQL error would abort the whole transaction); which
    // one it was is told apart below.
    let mut candidate = note.clone();
    if let (None, Some(parent)) = (&candidate.in_reply_to_id, &candidate.in_reply_to_ap_id) {
        candidate.in_reply_to_id = on_tx!(tx, |conn| {
            sqlx::query_scalar(PARENT_ID).bind(parent).fetch_optional(conn).await
        })?;
    }
    let mut inserted = None;
    for _ in 0..INSERT_ATTEMPTS {
        inserted = insert_many(tx, &[&candidate]).await?.pop();
        if inserted.is_some() || ap_id_taken(tx, &note.ap_id).await? {
            break;
        }
        candidate.id = another_id(candidate.id);
    }
    if let Some(row) = &inserted {
        // Replies that arrived before their parent are threaded now.
        on_tx!(tx, |conn| {
            sqlx::query(THREAD_REPLIES_TO)
                .bind(row.id)
                .bind(&row.ap_id)
                .execute(conn)
                .await
                .map(|_| ())
        })?;
    }
    Ok(inserted)
}

/// The id of the note whose `ap_id` is `$1`: a reply's parent, when it came before the reply
/// was prepared (earlier in the same batch, say).
pub(crate) const PARENT_ID: &str = "SELECT id FROM notes WHERE ap_id = $1";

/// How many ids `insert` tries for a note before it gives up.
pub(crate) const INSERT_ATTEMPTS: usize = 16;

/// Another id in the same millisecond as `id` (ids are `ms << 16 | 16 random bits`, `ids`), for
/// a note whose id is taken.
pub(crate) fn another_id(id: i64) -> i64 {
    (id & !0xffff) | i64::from(rand::random::<u16>())
}

/// Stores many notes and returns those stored. A note left out clashed on its `ap_id` or its
/// id; callers pass those to `insert`, which tells the two apart. Replies waiting for these
/// notes are not threaded here: see `thread_replies`.
pub async fn insert_many(tx: &mut Tx, notes: &[&NoteRow]) -> Result<Vec<NoteRow>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    // Only the keys come back: the rows are the ones passed in, and decoding every stored
    // note's content again cost more than the copy.
    let keys: Vec<(i64, String)> = match tx {
        Tx::Postgres(tx) => {
            // One array per column: one prepared statement for every batch size.
            let sql = format!(
                "INSERT INTO notes ({COLUMNS})
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::boolean[],
                    $5::text[], $6::text[], $7::text[], $8::boolean[], $9::text[], $10::text[],
                    $11::text[], $12::bigint[], $13::bigint[], $14::text[], $15::bigint[],
                    $16::bigint[], $17::bigint[])
                 ON CONFLICT DO NOTHING RETURNING id, ap_id"
            );
            fn each<'a, T>(notes: &[&'a NoteRow], f: impl Fn(&'a NoteRow) -> T) -> Vec<T> {
                notes.iter().map(|n| f(n)).collect()
            }
            sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql.as_str()))
                .bind(each(notes, |n| n.id))
                .bind(each(notes, |n| n.ap_id.as_str()))
                .bind(each(notes, |n| n.author_id))
                .bind(each(notes, |n| n.is_local))
                .bind(each(notes, |n| n.visibility.as_str()))
                .bind(each(notes, |n| n.content.as_str()))
                .bind(each(notes, |n| n.summary.as_str()))
                .bind(each(notes, |n| n.sensitive))
                .bind(each(notes, |n| n.language.as_deref()))
                .bind(each(notes, |n| n.url.as_deref()))
                .bind(each(notes, |n| n.in_reply_to_ap_id.as_deref()))
                .bind(each(notes, |n| n.in_reply_to_id))
                .bind(each(notes, |n| n.reblog_of_id))
                .bind(each(notes, |n| n.audience.as_str()))
                .bind(each(notes, |n| n.published_at))
                .bind(each(notes, |n| n.updated_at))
                .bind(each(notes, |n| n.deleted_at))
                .fetch_all(&mut **tx)
                .await?
        }
        Tx::Sqlite(tx) => {
            let mut keys = Vec::with_capacity(notes.len());
            for chunk in super::fixed_chunks(notes) {
                let sql = format!(
                    "INSERT INTO notes ({COLUMNS}) VALUES {}
                     ON CONFLICT DO NOTHING RETURNING id, ap_id",
                    row_placeholders(chunk.len(), COLUMN_COUNT)
                );
                let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql.as_str()));
                for note in chunk {
                    query = query
                        .bind(note.id)
                        .bind(&note.ap_id)
                        .bind(note.author_id)
                        .bind(note.is_local)
                        .bind(&note.visibility)
                        .bind(&note.content)
                        .bind(&note.summary)
                        .bind(note.sensitive)
                        .bind(&note.language)
                        .bind(&note.url)
                        .bind(&note.in_reply_to_ap_id)
                        .bind(note.in_reply_to_id)
                        .bind(note.reblog_of_id)
                        .bind(&note.audience)
                        .bind(note.published_at)
                        .bind(note.updated_at)
                        .bind(note.deleted_at);
                }
                keys.extend(query.fetch_all(&mut **tx).await?);
            }
            keys
        }
    };
    // By id and `ap_id` together: a batch may repeat either one, and only one row was stored.
    let mut keys: HashMap<i64, String> = keys.into_iter().collect();
    Ok(notes
        .iter()
        .filter(|n| {
            let stored = keys.get(&n.id).is_some_and(|ap_id| *ap_id == n.ap_id);
            if stored {
                keys.remove(&n.id);
            }
            stored
        })
        .map(|n| (*n).clone())
        .collect())
}

/// Notes in a table whose statistics no longer need refreshing by the inbox writers.
pub const YOUNG_NOTES: i64 = 16_000;

/// Refreshes PostgreSQL's planner statistics for the tables inbound notes fill, while the
/// statistics describe a young table (fewer than `YOUNG_NOTES` notes). Autovacuum analyzes a
/// table only after a delay (a minute or more), and until it has, the planner guesses: on a
/// young node taking in notes fast, its guess for `thread_replies` was a sequential scan of
/// every note, 37 ms per batch at 28,000 notes. Returns false, having done nothing, once the
/// statistics describe an older table: each `ANALYZE` reads up to 30,000 rows of each table
/// (130-200 ms of a core at 64,000 notes), and the planner scales its estimates by the table's
/// pages as it grows. Nothing to do on SQLite, whose plans for these statements do not depend
/// on statistics.
pub async fn analyze_ingest_tables(db: &Db) -> Result<bool, sqlx::Error> {
    let crate::db::Pool::Postgres(pool) = &db.pool else {
        return Ok(false);
    };
    // -1 until the table is first analyzed.
    let described: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'notes'::regclass")
            .fetch_one(pool)
            .await?;
    if described >= YOUNG_NOTES as f32 {
        return Ok(false);
    }
    sqlx::query("ANALYZE notes, home_feed, received_activities").execute(pool).await?;
    Ok(true)
}

/// Threads the replies to one note that arrived before it: `$1` its id, `$2` its `ap_id`.
pub(crate) const THREAD_REPLIES_TO: &str =
    "UPDATE notes SET in_reply_to_id = $1 WHERE in_reply_to_ap_id = $2";

/// `thread_replies`, with `(LIST)` for the parents' ids. No `in_reply_to_id IS NULL` test: a
/// reply naming a parent stored only now cannot have been threaded yet, and that test leads
/// SQLite to walk every unthreaded note.
pub(crate) const THREAD_REPLIES: &str = "UPDATE notes SET in_reply_to_id = p.id FROM notes p
     WHERE p.id IN (LIST) AND notes.in_reply_to_ap_id = p.ap_id";

/// Threads replies that arrived before their parent, now that the parents `ids` are stored.
pub async fn thread_replies(tx: &mut Tx, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    super::execute_with_ids(tx, THREAD_REPLIES, ids).await.map(|_| ())
}

/// How many notes have the `ap_id` `$1` (one or none).
pub(crate) const AP_ID_TAKEN: &str = "SELECT COUNT(*) FROM notes WHERE ap_id = $1";

/// Whether a note with this ActivityPub id exists, as the transaction sees it.
async fn ap_id_taken(tx: &mut Tx, ap_id: &str) -> Result<bool, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(AP_ID_TAKEN).bind(ap_id).fetch_one(conn).await.map(|n| n > 0)
    })
}

/// Replaces the editable fields of a note (remote `Update(Note)`).
pub async fn update_content(tx: &mut Tx, note: &NoteRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE notes SET content = $1, summary = $2, sensitive = $3, language = $4,
                updated_at = $5 WHERE id = $6",
        )
        .bind(&note.content)
        .bind(&note.summary)
        .bind(note.sensitive)
        .bind(&note.language)
        .bind(note.updated_at)
        .bind(note.id)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// Deletes a note: the row stays as a marker (so a late Create cannot resurrect it), its
/// content goes, and boosts of it and feed entries disappear.
pub async fn mark_deleted(tx: &mut Tx, id: i64, at: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE notes SET deleted_at = $1, content = '', summary = '' WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM home_feed WHERE note_id = $1 OR note_id IN (SELECT id FROM notes WHERE reblog_of_id = $1)")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE notes SET deleted_at = $1 WHERE reblog_of_id = $2 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })
}

/// Removes a boost row entirely (Undo(Announce)).
pub async fn delete_boost(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM home_feed WHERE note_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        // The reblog notification points at the original note, from the booster.
        sqlx::query(
            "DELETE FROM notifications WHERE kind = 'reblog'
               AND note_id = (SELECT reblog_of_id FROM notes WHERE id = $1)
               AND from_actor_id = (SELECT author_id FROM notes WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM notes WHERE id = $1 AND reblog_of_id IS NOT NULL")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })
}

/// The note with this id (deleted ones included; callers decide).
pub async fn by_id(db: &Db, id: i64) -> Result<Option<NoteRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notes WHERE id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// The note with this ActivityPub id.
pub async fn by_ap_id(db: &Db, ap_id: &str) -> Result<Option<NoteRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notes WHERE ap_id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
        .bind(ap_id)
        .fetch_optional(pool)
        .await)
}

/// Several notes by id.
pub async fn by_ids(db: &Db, ids: &[i64]) -> Result<Vec<NoteRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT {COLUMNS} FROM notes WHERE id IN ({list})");
    on_db!(db, |pool| sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}

/// Which of these notes `actor` has boosted (live boosts only).
pub async fn boosted_by(db: &Db, actor: i64, notes: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT reblog_of_id FROM notes WHERE author_id = $1 AND deleted_at IS NULL
           AND reblog_of_id IN ({list})"
    );
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.as_str()))
        .bind(actor)
        .fetch_all(pool)
        .await)
}

/// The live boost of `note` by `actor`, if any.
pub async fn boost_by(db: &Db, actor: i64, note: i64) -> Result<Option<NoteRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notes WHERE author_id = $1 AND reblog_of_id = $2 AND deleted_at IS NULL"
    );
    on_db!(db, |pool| sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
        .bind(actor)
        .bind(note)
        .fetch_optional(pool)
        .await)
}

/// Visibility rule shared by every listing: `$v` is the viewer's actor id (0 for anonymous).
/// Public and unlisted notes are visible to all; followers-only notes to the author and
/// accepted followers; direct notes to the author and those mentioned.
fn visible_to(alias: &str, viewer: usize) -> String {
    format!(
        "({alias}.deleted_at IS NULL AND ({alias}.visibility IN ('public', 'unlisted')
          OR {alias}.author_id = ${viewer}
          OR ({alias}.visibility = 'private' AND EXISTS (SELECT 1 FROM follows f
                WHERE f.followee_id = {alias}.author_id AND f.follower_id = ${viewer} AND f.accepted))
          OR EXISTS (SELECT 1 FROM mentions m WHERE m.note_id = {alias}.id AND m.actor_id = ${viewer})))"
    )
}

/// Whether `viewer` (0: anonymous) may see `note`.
pub async fn is_visible(db: &Db, note: i64, viewer: i64) -> Result<bool, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) FROM notes n WHERE n.id = $1 AND {}", visible_to("n", 2));
    on_db!(db, |pool| {
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.as_str()))
            .bind(note)
            .bind(viewer)
            .fetch_one(pool)
            .await
            .map(|n| n > 0)
    })
}

/// Notes by one author that `viewer` may see, newest first (boosts included).
pub async fn by_author(
    db: &Db,
    author: i64,
    viewer: i64,
    page: &Page,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM notes n WHERE n.author_id = $1 AND {} AND {}",
        prefixed("n"),
        visible_to("n", 2),
        page.clause("n.id", 3, 4, 5)
    );
    let rows = on_db!(db, |pool| {
        sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
            .bind(author)
            .bind(viewer)
            .bind(page.upper())
            .bind(page.lower())
            .bind(page.limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(page.finish(rows))
}

/// The public timeline: public, original notes; `local` limits it to this node's.
pub async fn public(
    db: &Db,
    local: Option<bool>,
    page: &Page,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    let filter = match local {
        Some(true) => "AND n.is_local",
        Some(false) => "AND NOT n.is_local",
        None => "",
    };
    let sql = format!(
        "SELECT {} FROM notes n WHERE n.visibility = 'public' AND n.reblog_of_id IS NULL
           AND n.deleted_at IS NULL {filter} AND {}",
        prefixed("n"),
        page.clause("n.id", 1, 2, 3)
    );
    let rows = on_db!(db, |pool| {
        sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
            .bind(page.upper())
            .bind(page.lower())
            .bind(page.limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(page.finish(rows))
}

/// Ancestors of a note, nearest last, that `viewer` may see.
pub async fn ancestors(db: &Db, note: &NoteRow, viewer: i64) -> Result<Vec<NoteRow>, sqlx::Error> {
    let sql = format!(
        "WITH RECURSIVE up(id, parent, depth) AS (
            SELECT id, in_reply_to_id, 0 FROM notes WHERE id = $1
            UNION ALL
            SELECT n.id, n.in_reply_to_id, up.depth + 1 FROM notes n JOIN up ON n.id = up.parent
            WHERE up.depth < 100)
         SELECT {} FROM notes n JOIN up ON up.id = n.id WHERE n.id <> $1 AND {}
         ORDER BY up.depth DESC",
        prefixed("n"),
        visible_to("n", 2)
    );
    on_db!(db, |pool| sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
        .bind(note.id)
        .bind(viewer)
        .fetch_all(pool)
        .await)
}

/// Descendants of a note, oldest first, that `viewer` may see.
pub async fn descendants(
    db: &Db,
    note: &NoteRow,
    viewer: i64,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    let sql = format!(
        "WITH RECURSIVE down(id, depth) AS (
            SELECT id, 0 FROM notes WHERE id = $1
            UNION ALL
            SELECT n.id, down.depth + 1 FROM notes n JOIN down ON n.in_reply_to_id = down.id
            WHERE down.depth < 100)
         SELECT {} FROM notes n JOIN down ON down.id = n.id WHERE n.id <> $1 AND {}
         ORDER BY n.id",
        prefixed("n"),
        visible_to("n", 2)
    );
    on_db!(db, |pool| sqlx::query_as::<_, NoteRow>(AssertSqlSafe(sql.as_str()))
        .bind(note.id)
        .bind(viewer)
        .fetch_all(pool)
        .await)
}

/// A mention: `$1` the note, `$2` the actor.
pub(crate) const INSERT_MENTION: &str =
    "INSERT INTO mentions (note_id, actor_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
/// A hashtag: `$1` the note, `$2` the name.
pub(crate) const INSERT_TAG: &str =
    "INSERT INTO note_tags (note_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Records who a note mentions.
pub async fn insert_mentions(tx: &mut Tx, note: i64, actors: &[i64]) -> Result<(), sqlx::Error> {
    for actor in actors {
        on_tx!(tx, |conn| {
            sqlx::query(INSERT_MENTION).bind(note).bind(actor).execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Records a note's hashtags (lowercased names, without `#`).
pub async fn insert_tags(tx: &mut Tx, note: i64, names: &[String]) -> Result<(), sqlx::Error> {
    for name in names {
        on_tx!(tx, |conn| {
            sqlx::query(INSERT_TAG).bind(note).bind(name).execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// `(note_id, actor_id)` mention pairs for these notes.
pub async fn mentions_of(db: &Db, notes: &[i64]) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT note_id, actor_id FROM mentions WHERE note_id IN ({list})");
    on_db!(db, |pool| sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}

/// `(note_id, tag)` pairs for these notes.
pub async fn tags_of(db: &Db, notes: &[i64]) -> Result<Vec<(i64, String)>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql =
        format!("SELECT note_id, name FROM note_tags WHERE note_id IN ({list}) ORDER BY name");
    on_db!(db, |pool| sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}

/// Reply and boost counts for these notes: `(note_id, replies, boosts)`.
pub async fn counts_of(db: &Db, notes: &[i64]) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let list = notes.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT n.id,
            (SELECT COUNT(*) FROM notes r WHERE r.in_reply_to_id = n.id AND r.deleted_at IS NULL),
            (SELECT COUNT(*) FROM notes b WHERE b.reblog_of_id = n.id AND b.deleted_at IS NULL)
         FROM notes n WHERE n.id IN ({list})"
    );
    on_db!(db, |pool| sqlx::query_as::<_, (i64, i64, i64)>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}

/// Number of live local original notes (for NodeInfo).
pub async fn count_local(db: &Db) -> Result<i64, sqlx::Error> {
    const SQL: &str =
        "SELECT COUNT(*) FROM notes WHERE is_local AND deleted_at IS NULL AND reblog_of_id IS NULL";
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(SQL).fetch_one(pool).await)
}

/// Records the id an imported note had on its old server.
pub async fn set_imported_from(tx: &mut Tx, id: i64, old_id: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE notes SET imported_from = $1 WHERE id = $2")
            .bind(old_id)
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Which of `old_ids` `author` has imported before: `(old id, note id, note ap_id)`.
pub async fn imported(
    db: &Db,
    author: i64,
    old_ids: &[String],
) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    if old_ids.is_empty() {
        return Ok(Vec::new());
    }
    match &db.pool {
        super::Pool::Postgres(pool) => {
            sqlx::query_as::<_, (String, i64, String)>(
                "SELECT imported_from, id, ap_id FROM notes
                 WHERE author_id = $1 AND imported_from = ANY($2)",
            )
            .bind(author)
            .bind(old_ids)
            .fetch_all(pool)
            .await
        }
        super::Pool::Sqlite { read, .. } => {
            sqlx::query_as::<_, (String, i64, String)>(
                "SELECT imported_from, id, ap_id FROM notes
                 WHERE author_id = $1 AND imported_from IN (SELECT value FROM json_each($2))",
            )
            .bind(author)
            .bind(super::json_array(old_ids))
            .fetch_all(read)
            .await
        }
    }
}

/// Points what referred to the note `old` at the note `new` instead (the old one's author moved
/// and brought it along): replies, boosts, and likes not already given to the new one.
pub async fn repoint(tx: &mut Tx, old: &NoteRow, new: &NoteRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE notes SET in_reply_to_id = $1, in_reply_to_ap_id = $2
             WHERE in_reply_to_id = $3 OR in_reply_to_ap_id = $4",
        )
        .bind(new.id)
        .bind(&new.ap_id)
        .bind(old.id)
        .bind(&old.ap_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE notes SET reblog_of_id = $1 WHERE reblog_of_id = $2")
            .bind(new.id)
            .bind(old.id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE favourites SET note_id = $1 WHERE note_id = $2 AND NOT EXISTS
                (SELECT 1 FROM favourites g WHERE g.note_id = $1 AND g.actor_id = favourites.actor_id)",
        )
        .bind(new.id)
        .bind(old.id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })
}
