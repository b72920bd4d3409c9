//! The inbox's group commit (`federation::ingest`): a batch of activity-id claims, the notes
//! they carry and received likes, written with as few round trips to the database as each
//! backend allows.
//!
//! A note is stored only if its claim is new, its `ap_id` is not stored yet and, on PostgreSQL
//! and SQLite alike, its id is free; a note whose id is taken (ids come from the published
//! time, so two notes can draw the same one) gets another (`notes::another_id`).
//!
//! On SQLite the inbox writer writes a batch itself, on its thread, through a connection of its
//! own (`SqliteWriter`): prepared statements, a few per note, in one transaction. Through
//! sqlx every statement was a round trip to the connection's worker thread, and under load the
//! thread switches, not SQLite's work, made up most of a batch's time (measured: about 100 µs
//! per statement on two busy cores with ten statements per batch), so the batch used to be one
//! statement taking it as JSON; that cost more than twice the instructions of the statements
//! it stood for. A batch with media or local mentions is written in the caller's transaction,
//! an entry at a time (`write`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::LazyLock;

use rusqlite::OptionalExtension;
use sqlx::AssertSqlSafe;

use super::favourites::{self, FavouriteRow};
use super::notes::{self, NoteRow};
use super::notifications::{self, NotificationRow};
use super::{Tx, feed, received};

/// A note to store, with the actors it mentions and its hashtags.
#[derive(Clone, Copy, Debug)]
pub struct NewNote<'a> {
    pub row: &'a NoteRow,
    pub mentions: &'a [i64],
    pub tags: &'a [String],
}

/// A received `Like` to record (`favourites::INSERT_RECEIVED`), and the notification of the
/// liked note's author when that author is local and the like is new.
#[derive(Clone, Copy, Debug)]
pub struct NewLike<'a> {
    pub row: &'a FavouriteRow,
    pub notification: Option<&'a NotificationRow>,
}

/// One item of a batch: an activity id to claim, a note to store or a like to record, or a
/// claim with either (stored only if the claim is new). The inbox claims the ids of activities
/// it handles after the batch; a note's or a like's own `ap_id` is its replay check.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub claim: Option<&'a str>,
    pub note: Option<NewNote<'a>>,
    pub like: Option<NewLike<'a>>,
}

/// What a batch wrote, entry by entry.
#[derive(Debug, Default)]
pub struct Written {
    /// Whether the entry's claim was new (an id given twice is new the first time only); true
    /// for an entry without a claim.
    pub fresh: Vec<bool>,
    /// The note stored for the entry: none if its claim was not new, or the note was already
    /// stored. Its id may differ from the one given (an id clash).
    pub stored: Vec<Option<NoteRow>>,
    /// Whether the entry's like was recorded: false if its claim was not new, its `ap_id` is
    /// taken, its actor already liked the note, or the note or actor is not stored.
    pub liked: Vec<bool>,
}

/// Claims the batch's activity ids and stores the notes of the new ones, with their mentions
/// and tags, threading (both ways) and home-feed fan-out, and records the likes, in `tx`.
pub async fn write(tx: &mut Tx, entries: &[Entry<'_>], now: i64) -> Result<Written, sqlx::Error> {
    match tx {
        Tx::Sqlite(_) => write_sqlite(tx, entries, now).await,
        Tx::Postgres(_) => write_postgres(tx, entries, now).await,
    }
}

/// PostgreSQL: one statement for the whole batch (arrays as parameters, data-modifying CTEs),
/// then, rarely, a note at a time: one whose id was taken, or a reply whose parent came in the
/// same batch (a CTE does not see the rows its siblings insert).
async fn write_postgres(
    tx: &mut Tx,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Written, sqlx::Error> {
    let Tx::Postgres(conn) = tx else { unreachable!("write_postgres on PostgreSQL") };
    postgres_statement(conn, entries, now).await?.finish(tx).await
}

/// When the batch allows, without a transaction of the caller's. On PostgreSQL the batch's one
/// statement, outside a transaction, so that the batch costs one round trip instead of three
/// (`BEGIN`, the statement, `COMMIT`), which kept the server waiting on the writers; the
/// statement is atomic by itself. A note it left out (its id taken) is stored afterwards in a
/// transaction of its own, before anyone is told it was stored. None, and nothing written,
/// when a reply's parent is in the same batch (threading it needs a second statement in the
/// same transaction). On SQLite the inbox writer's own connection writes any batch, in a
/// transaction of its own (`SqliteWriter`).
///
/// The writer's `held` connection (on SQLite, the right to write) is kept for the next batch;
/// it is given back before a transaction is opened, and after an error, so that the pool tests
/// it before lending it again.
pub async fn write_alone(
    db: &super::Db,
    held: &mut super::Held,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Option<Written>, sqlx::Error> {
    let written = if db.backend() == super::Backend::Sqlite {
        write_sqlite_alone(db, held, entries, now).await
    } else {
        write_postgres_alone(db, held, entries, now).await
    };
    if written.is_err() {
        held.release();
        // Opened afresh for the next batch, whatever state the error left it in.
        held.sqlite_writer = None;
    }
    written
}

/// What a received `Like` or `Announce` needs of the note it names (`targets`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: i64,
    pub author_id: i64,
    pub is_local: bool,
    pub visibility: String,
    pub deleted: bool,
}

/// `targets`' query on SQLite, an `ap_id` at a time, and on PostgreSQL, all at once.
const TARGET: &str = "SELECT ap_id, id, author_id, is_local, visibility,
    deleted_at IS NOT NULL FROM notes WHERE ap_id = $1";
const TARGETS: &str = "SELECT ap_id, id, author_id, is_local, visibility,
    deleted_at IS NOT NULL FROM notes WHERE ap_id = ANY($1)";

/// The stored notes among `ap_ids`, by `ap_id`: the notes that a batch's likes and boosts name,
/// read by the inbox writer on its own connection (`held`), once per batch. Read by each
/// request instead, through the read pool, each cost SQLite a round trip to a connection's
/// thread, and that connection's whole page cache, which SQLite drops when another connection
/// has written since its last read (B1: the read pool's threads were 13 % of the CPU samples,
/// with likes and boosts a fifth of the activities); PostgreSQL a round trip per activity.
pub async fn targets(
    db: &super::Db,
    held: &mut super::Held,
    ap_ids: &[&str],
) -> Result<HashMap<String, Target>, sqlx::Error> {
    let found = if let Some(writer) = db.sqlite_writer(held).await? {
        writer.targets(ap_ids).map_err(writer_error)
    } else if let Some(conn) = db.ingest_connection(held).await? {
        sqlx::query_as::<_, (String, i64, i64, bool, String, bool)>(TARGETS)
            .bind(ap_ids)
            .fetch_all(conn)
            .await
            .map(|rows| {
                rows.into_iter()
                    .map(|(ap_id, id, author_id, is_local, visibility, deleted)| {
                        (ap_id, Target { id, author_id, is_local, visibility, deleted })
                    })
                    .collect()
            })
    } else {
        unreachable!("the inbox writer has a connection on either backend")
    };
    if found.is_err() {
        held.release();
        held.sqlite_writer = None;
    }
    found
}

/// PostgreSQL, for `write_alone`: a reply to a note of the same batch needs `write`.
async fn write_postgres_alone(
    db: &super::Db,
    held: &mut super::Held,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Option<Written>, sqlx::Error> {
    let ap_ids: HashSet<&str> =
        entries.iter().filter_map(|e| e.note.map(|n| n.row.ap_id.as_str())).collect();
    let parent_in_batch = entries
        .iter()
        .filter_map(|e| e.note)
        .any(|n| n.row.in_reply_to_ap_id.as_deref().is_some_and(|parent| ap_ids.contains(parent)));
    if parent_in_batch {
        return Ok(None);
    }
    let Some(conn) = db.ingest_connection(held).await? else { return Ok(None) };
    let statement = postgres_statement(conn, entries, now).await?;
    if statement.left_out.is_empty() && statement.parents.is_empty() {
        return Ok(Some(Written {
            fresh: statement.fresh,
            stored: statement.stored,
            liked: statement.liked,
        }));
    }
    held.release();
    let mut tx = db.begin_ingest().await?;
    let written = statement.finish(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(written))
}

/// What the PostgreSQL statement did, and what is left to do.
struct PgStatement<'a> {
    fresh: Vec<bool>,
    stored: Vec<Option<NoteRow>>,
    liked: Vec<bool>,
    /// Notes to store one at a time (their id was taken, or another writer stored them).
    left_out: Vec<(usize, NewNote<'a>)>,
    /// Notes stored by the statement that replies in it answer: to thread.
    parents: Vec<i64>,
}

impl PgStatement<'_> {
    /// The rest, in `tx`: threads the replies to notes of the same statement, and stores the
    /// notes it left out one at a time.
    async fn finish(self, tx: &mut Tx) -> Result<Written, sqlx::Error> {
        notes::thread_replies(tx, &self.parents).await?;
        let mut written = Written { fresh: self.fresh, stored: self.stored, liked: self.liked };
        store_left_out(tx, self.left_out, &mut written).await?;
        Ok(written)
    }
}

async fn postgres_statement<'a>(
    conn: &mut sqlx::PgConnection,
    entries: &[Entry<'a>],
    now: i64,
) -> Result<PgStatement<'a>, sqlx::Error> {
    // Sorted, so concurrent writers take row locks in one order.
    let mut claims: Vec<&str> = entries.iter().filter_map(|e| e.claim).collect();
    claims.sort_unstable();
    claims.dedup();
    // A claim repeated in the batch is not new the second time: its note is left out here.
    let mut first_claims = HashSet::new();
    let firsts: Vec<bool> =
        entries.iter().map(|e| e.claim.is_none_or(|c| first_claims.insert(c))).collect();
    // The notes and likes the statement carries: of entries whose claim is first in the batch.
    fn picked<'a, X>(
        entries: &[Entry<'a>],
        firsts: &[bool],
        pick: impl Fn(&Entry<'a>) -> Option<X>,
    ) -> Vec<(usize, X)> {
        entries
            .iter()
            .zip(firsts)
            .enumerate()
            .filter(|(_, (_, first))| **first)
            .filter_map(|(i, (e, _))| pick(e).map(|x| (i, x)))
            .collect()
    }
    // One parameter array: `f` of each picked note or like.
    fn column<X, T>(picked: &[(usize, X)], f: impl Fn(&X) -> T) -> Vec<T> {
        picked.iter().map(|(_, x)| f(x)).collect()
    }
    let sent = picked(entries, &firsts, |e| e.note);
    let mentions: Vec<(i64, i64)> =
        sent.iter().flat_map(|(_, n)| n.mentions.iter().map(|actor| (n.row.id, *actor))).collect();
    let tags: Vec<(i64, &str)> =
        sent.iter().flat_map(|(_, n)| n.tags.iter().map(|t| (n.row.id, t.as_str()))).collect();
    let likes = picked(entries, &firsts, |e| e.like);
    let shape = postgres_shape(Shape {
        claims: !claims.is_empty(),
        mentions: !mentions.is_empty(),
        tags: !tags.is_empty(),
        likes: !likes.is_empty(),
    });
    let rows = sqlx::query_as::<_, (i32, String, i64)>(AssertSqlSafe(POSTGRES[shape].as_str()))
        .bind(&claims)
        .bind(now)
        .bind(column(&sent, |n| n.row.id))
        .bind(column(&sent, |n| n.row.ap_id.as_str()))
        .bind(column(&sent, |n| n.row.author_id))
        .bind(column(&sent, |n| n.row.is_local))
        .bind(column(&sent, |n| n.row.visibility.as_str()))
        .bind(column(&sent, |n| n.row.content.as_str()))
        .bind(column(&sent, |n| n.row.summary.as_str()))
        .bind(column(&sent, |n| n.row.sensitive))
        .bind(column(&sent, |n| n.row.language.as_deref()))
        .bind(column(&sent, |n| n.row.url.as_deref()))
        .bind(column(&sent, |n| n.row.in_reply_to_ap_id.as_deref()))
        .bind(column(&sent, |n| n.row.in_reply_to_id))
        .bind(column(&sent, |n| n.row.reblog_of_id))
        .bind(column(&sent, |n| n.row.audience.as_str()))
        .bind(column(&sent, |n| n.row.published_at))
        .bind(column(&sent, |n| n.row.updated_at))
        .bind(column(&sent, |n| n.row.deleted_at))
        .bind(sent.iter().map(|(i, _)| entries[*i].claim).collect::<Vec<_>>())
        .bind(mentions.iter().map(|m| m.0).collect::<Vec<_>>())
        .bind(mentions.iter().map(|m| m.1).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.0).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.1).collect::<Vec<_>>())
        .bind(column(&likes, |l| l.row.id))
        .bind(column(&likes, |l| l.row.ap_id.as_str()))
        .bind(column(&likes, |l| l.row.actor_id))
        .bind(column(&likes, |l| l.row.note_id))
        .bind(column(&likes, |l| l.row.created_at))
        .bind(likes.iter().map(|(i, _)| entries[*i].claim).collect::<Vec<_>>())
        .bind(column(&likes, |l| l.notification.map(|n| n.id)))
        .bind(column(&likes, |l| l.notification.map(|n| n.account_id)))
        .fetch_all(conn)
        .await?;
    let mut new_claims: HashSet<&str> = HashSet::new();
    let mut stored_ids: HashSet<i64> = HashSet::new();
    let mut liked_ap_ids: HashSet<&str> = HashSet::new();
    for (kind, ap_id, id) in &rows {
        match kind {
            0 => new_claims.insert(ap_id.as_str()),
            1 => stored_ids.insert(*id),
            _ => liked_ap_ids.insert(ap_id.as_str()),
        };
    }
    let fresh: Vec<bool> = entries
        .iter()
        .zip(&firsts)
        .map(|(e, first)| *first && e.claim.is_none_or(|c| new_claims.contains(c)))
        .collect();
    let mut stored: Vec<Option<NoteRow>> = vec![None; entries.len()];
    // Per `ap_id`, the first entry whose claim was new: the one the statement stored.
    let mut placed: HashSet<&str> = HashSet::new();
    let mut retry = Vec::new();
    for (i, note) in &sent {
        if !fresh[*i] || !placed.insert(&note.row.ap_id) {
            continue;
        }
        if stored_ids.contains(&note.row.id) {
            stored[*i] = Some(note.row.clone());
        } else {
            retry.push((*i, *note));
        }
    }
    // Replies whose parent was stored by the same statement.
    let ids: HashMap<&str, i64> =
        stored.iter().flatten().map(|n| (n.ap_id.as_str(), n.id)).collect();
    let mut parents: Vec<i64> = stored
        .iter()
        .flatten()
        .filter_map(|n| n.in_reply_to_ap_id.as_deref().and_then(|p| ids.get(p).copied()))
        .collect();
    parents.sort_unstable();
    parents.dedup();
    // Per `ap_id`, the first entry whose claim was new recorded the like, if it was recorded.
    let mut liked = vec![false; entries.len()];
    let mut placed: HashSet<&str> = HashSet::new();
    for (i, like) in &likes {
        if fresh[*i] && placed.insert(&like.row.ap_id) {
            liked[*i] = liked_ap_ids.contains(like.row.ap_id.as_str());
        }
    }
    // `retry`: left out by the statement, already stored (by another writer, say) or its id
    // taken.
    Ok(PgStatement { fresh, stored, liked, left_out: retry, parents })
}

/// The PostgreSQL statement: claims ($1, at $2); notes ($3 to $19 by column, $20 the claim
/// carrying each); mentions ($21 note, $22 actor) and tags ($23 note, $24 name); likes ($25 to
/// $29 by column, $30 the claim carrying each, $31 and $32 the id and account of the
/// notification of a local author). Returns the new claims (0, ap_id), the notes stored (1,
/// ap_id, id) and the likes recorded (2, ap_id).
///
/// One prepared form per shape: which of claims, mentions, tags and likes the batch has. Each
/// data-modifying CTE runs, opens its table and indexes and takes their locks even when it has
/// nothing to write, and most batches are plain notes (a `Create(Note)` is not claimed); a
/// CTE that is not needed is left unreferenced, so the planner drops it, and it only gives its
/// parameters their types.
fn postgres_sql(shape: usize) -> String {
    let [claims, mentions, tags, likes] = [1, 2, 4, 8].map(|bit| shape & bit != 0);
    let claimed = if claims {
        "INSERT INTO received_activities (ap_id, received_at)
            SELECT id, $2 FROM UNNEST($1::text[]) AS t (id)
            ON CONFLICT DO NOTHING RETURNING ap_id"
    } else {
        "SELECT id AS ap_id FROM UNNEST($1::text[]) AS t (id) WHERE $2::bigint IS NULL"
    };
    let fresh =
        if claims { "claim IS NULL OR claim IN (SELECT ap_id FROM claimed)" } else { "true" };
    let mentioned = if mentions { PG_MENTIONED } else { "" };
    let tagged = if tags { PG_TAGGED } else { "" };
    let fan_out = feed::fan_out_batch(mentions, feed::Repeats::DoNothing, feed::Followers::PerNote)
        .replace("BATCH", "batch")
        .replace("MENTIONS", "given_mentions");
    let returned_claims =
        if claims { "SELECT 0, ap_id, 0::bigint FROM claimed UNION ALL " } else { "" };
    let liked = if likes { PG_LIKED.replace("FRESH", fresh) } else { String::new() };
    let returned_likes =
        if likes { " UNION ALL SELECT 2, ap_id, 0::bigint FROM liked" } else { "" };
    format!(
        "WITH claimed AS (
            {claimed}
        ), given AS (
            SELECT * FROM UNNEST($3::bigint[], $4::text[], $5::bigint[], $6::boolean[],
                $7::text[], $8::text[], $9::text[], $10::boolean[], $11::text[], $12::text[],
                $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::bigint[],
                $18::bigint[], $19::bigint[], $20::text[])
                WITH ORDINALITY AS n ({COLUMNS}, claim, position)
        ), batch AS (
            INSERT INTO notes ({COLUMNS})
            SELECT DISTINCT ON (ap_id) {COLUMNS} FROM given
                WHERE {fresh}
                ORDER BY ap_id, position
            ON CONFLICT DO NOTHING RETURNING id, ap_id, author_id, visibility
        ), threaded AS (
            UPDATE notes SET in_reply_to_id = b.id FROM batch b
                WHERE notes.in_reply_to_ap_id = b.ap_id
        ), given_mentions AS (
            SELECT * FROM UNNEST($21::bigint[], $22::bigint[]) AS m (note_id, actor_id)
        ){mentioned}, given_tags AS (
            SELECT * FROM UNNEST($23::bigint[], $24::text[]) AS t (note_id, name)
        ){tagged}, fanned AS (
            {fan_out}
        ), given_likes AS (
            SELECT * FROM UNNEST($25::bigint[], $26::text[], $27::bigint[], $28::bigint[],
                $29::bigint[], $30::text[], $31::bigint[], $32::bigint[])
                WITH ORDINALITY AS l (id, ap_id, actor_id, note_id, created_at, claim,
                    notification_id, account_id, position)
        ){liked}
        {returned_claims}SELECT 1, ap_id, id FROM batch{returned_likes}",
        COLUMNS = notes::COLUMNS,
    )
}

/// The mentions a PostgreSQL batch carries, when it carries any.
const PG_MENTIONED: &str = ", mentioned AS (
            INSERT INTO mentions (note_id, actor_id)
            SELECT m.note_id, m.actor_id FROM given_mentions m JOIN batch b ON b.id = m.note_id
            ON CONFLICT DO NOTHING
        )";

/// The tags a PostgreSQL batch carries, when it carries any.
const PG_TAGGED: &str = ", tagged AS (
            INSERT INTO note_tags (note_id, name)
            SELECT t.note_id, t.name FROM given_tags t JOIN batch b ON b.id = t.note_id
            ON CONFLICT DO NOTHING
        )";

/// The likes a PostgreSQL batch carries, when it carries any, and the notifications of their
/// local authors (as `notifications::INSERT`); `FRESH` is the test of a claim. Per `ap_id`, the
/// first entry whose claim is new, as for notes. The notes this statement stores are not
/// visible to it, so it records no like of them: the inbox batches only likes of stored notes.
const PG_LIKED: &str = ", liked AS (
            INSERT INTO favourites (id, ap_id, actor_id, note_id, created_at)
            SELECT DISTINCT ON (ap_id) id, ap_id, actor_id, note_id, created_at
                FROM given_likes l
                WHERE (FRESH) AND EXISTS (SELECT 1 FROM actors a WHERE a.id = l.actor_id)
                  AND EXISTS (SELECT 1 FROM notes n WHERE n.id = l.note_id)
                ORDER BY ap_id, position
            ON CONFLICT DO NOTHING RETURNING ap_id
        ), notified AS (
            INSERT INTO notifications (id, account_id, kind, from_actor_id, note_id, created_at)
            SELECT DISTINCT ON (l.ap_id) l.notification_id, l.account_id, 'favourite',
                    l.actor_id, l.note_id, l.created_at
                FROM given_likes l JOIN liked USING (ap_id)
                WHERE (FRESH) AND l.account_id IS NOT NULL
                  AND EXISTS (SELECT 1 FROM accounts WHERE actor_id = l.account_id)
                  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.account_id = l.account_id
                                  AND b.target_id = l.actor_id AND b.hide_notifications)
                ORDER BY l.ap_id, l.position
        )";

/// What a PostgreSQL batch carries, which decides its statement (`postgres_shape`).
struct Shape {
    claims: bool,
    mentions: bool,
    tags: bool,
    likes: bool,
}

/// A batch's shape, the index of its statement in `POSTGRES`.
fn postgres_shape(shape: Shape) -> usize {
    usize::from(shape.claims)
        | usize::from(shape.mentions) << 1
        | usize::from(shape.tags) << 2
        | usize::from(shape.likes) << 3
}

/// `postgres_sql` for each shape (`postgres_shape`).
static POSTGRES: LazyLock<[String; 16]> = LazyLock::new(|| std::array::from_fn(postgres_sql));

/// SQLite, in the caller's transaction: an entry at a time, through the statements every other
/// write uses. Only batches with media or local mentions come here (`write_alone` takes the
/// rest), and those write a row or more per note through `tx` anyway.
async fn write_sqlite(
    tx: &mut Tx,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Written, sqlx::Error> {
    let mut written = Written::default();
    for entry in entries {
        let fresh = match entry.claim {
            Some(claim) => received::insert_if_new(tx, claim, now).await?,
            None => true,
        };
        let stored = match entry.note {
            Some(note) if fresh => store_one(tx, note).await?,
            _ => None,
        };
        let liked = match entry.like {
            Some(like) if fresh => record_like(tx, like).await?,
            _ => false,
        };
        written.fresh.push(fresh);
        written.stored.push(stored);
        written.liked.push(liked);
    }
    Ok(written)
}

/// A like alone, and its notification if it is new.
async fn record_like(tx: &mut Tx, like: NewLike<'_>) -> Result<bool, sqlx::Error> {
    let liked = favourites::insert_received(tx, like.row).await?;
    if liked && let Some(notification) = like.notification {
        notifications::insert(tx, notification).await?;
    }
    Ok(liked)
}

/// SQLite, for `write_alone`: the whole batch, in a transaction of the inbox writer's own
/// connection (`SqliteWriter`).
async fn write_sqlite_alone(
    db: &super::Db,
    held: &mut super::Held,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Option<Written>, sqlx::Error> {
    let Some(writer) = db.sqlite_writer(held).await? else { return Ok(None) };
    writer.write(entries, now).map(Some).map_err(writer_error)
}

/// Stores, one at a time, the notes a batch statement left out because their id was taken.
async fn store_left_out<'a>(
    tx: &mut Tx,
    left_out: impl IntoIterator<Item = (usize, NewNote<'a>)>,
    written: &mut Written,
) -> Result<(), sqlx::Error> {
    for (i, note) in left_out {
        written.stored[i] = store_one(tx, note).await?;
    }
    Ok(())
}

/// A note alone, with its mentions, tags and fan-out: `notes::insert` threads it, draws another
/// id on a clash and returns none if the `ap_id` is stored.
async fn store_one(tx: &mut Tx, note: NewNote<'_>) -> Result<Option<NoteRow>, sqlx::Error> {
    let Some(row) = notes::insert(tx, note.row).await? else { return Ok(None) };
    notes::insert_mentions(tx, row.id, note.mentions).await?;
    notes::insert_tags(tx, row.id, note.tags).await?;
    feed::fan_out(tx, &row).await?;
    Ok(Some(row))
}

/// The SQLite inbox writer's own connection, used on its thread (`federation::ingest`) while it
/// holds the pool's writer connection, which is the right to write (`Held`). A blocking call
/// on the calling thread, so the batch costs no thread switch: through sqlx's connection
/// thread each statement was a command and its answers sent between two threads, with a
/// wake-up each way (measured in B1: 15 % of that thread's CPU with one statement per batch,
/// and the writer's thread waiting on the channel's lock).
///
/// Here a statement is a function call, so the batch is plain prepared statements, a few per
/// note, in one transaction: each sees what the ones before it wrote, so a batch that repeats
/// a claim or a note needs no read first, and a note whose id is taken draws another at once.
/// Until the writer had its own connection, a batch was one statement taking it as JSON, whose
/// trigger took the notes apart again; the same batches now cost less than half the
/// instructions (`ingest_batch` benchmark, docs/benchmarks.md).
///
/// No statement of a batch keeps a statement journal. SQLite copies every page a statement
/// changes into one (to undo that statement alone) when the statement writes more than one row
/// (the notes' counting triggers, the fan-out's `INSERT … SELECT`) and a constraint could abort
/// it half-way: a `NOT NULL` column or a foreign key. Those copies were a fifth of the
/// writer's instructions. So the statements use `INSERT OR IGNORE`, and this connection checks
/// no foreign keys (`WRITER_OWN_PRAGMAS`); the writer keeps them instead. A note is stored
/// only if its author is, and a mention only if the account it names is (a primary-key read
/// each); either missing fails the batch with the foreign key's error, as before. The note's
/// tags, fan-out and threading name the note just stored.
pub(crate) struct SqliteWriter(rusqlite::Connection);

/// The inbox writer's connection's own settings, after those every writer connection has (see
/// `SqliteWriter` for why).
const WRITER_OWN_PRAGMAS: [(&str, &str); 1] = [("foreign_keys", "OFF")];

impl SqliteWriter {
    /// `targets` on this connection, outside a transaction.
    fn targets(&mut self, ap_ids: &[&str]) -> rusqlite::Result<HashMap<String, Target>> {
        let mut query = self.0.prepare_cached(TARGET)?;
        let mut found = HashMap::with_capacity(ap_ids.len());
        for ap_id in ap_ids {
            let target = query
                .query_row([ap_id], |r| {
                    Ok(Target {
                        id: r.get(1)?,
                        author_id: r.get(2)?,
                        is_local: r.get(3)?,
                        visibility: r.get(4)?,
                        deleted: r.get(5)?,
                    })
                })
                .optional()?;
            if let Some(target) = target {
                found.insert((*ap_id).to_owned(), target);
            }
        }
        Ok(found)
    }

    /// Opens the database file with the writer pools' settings (`Db::connect`).
    pub(crate) fn open(path: &Path) -> Result<SqliteWriter, sqlx::Error> {
        let conn = rusqlite::Connection::open(path).map_err(writer_error)?;
        conn.busy_timeout(super::SQLITE_BUSY_TIMEOUT).map_err(writer_error)?;
        let setup: String = super::SQLITE_PRAGMAS
            .iter()
            .chain(&super::SQLITE_WRITER_PRAGMAS)
            .chain(&WRITER_OWN_PRAGMAS)
            .map(|(name, value)| format!("PRAGMA {name} = {value};"))
            .collect();
        conn.execute_batch(&setup).map_err(writer_error)?;
        Ok(SqliteWriter(conn))
    }

    /// Claims the batch's ids and stores the notes of the new ones, as `write` does. Rolled
    /// back whole on an error.
    fn write(&mut self, entries: &[Entry<'_>], now: i64) -> rusqlite::Result<Written> {
        let tx = self.0.transaction()?;
        let mut written = Written::default();
        {
            let mut claim = tx.prepare_cached(received::INSERT_IF_NEW)?;
            let mut statements = NoteStatements::prepare(&tx)?;
            let mut likes = LikeStatements::prepare(&tx)?;
            for entry in entries {
                let fresh = match entry.claim {
                    Some(id) => claim.execute(rusqlite::params![id, now])? == 1,
                    None => true,
                };
                let stored = match entry.note {
                    Some(note) if fresh => statements.store(note)?,
                    _ => None,
                };
                let liked = match entry.like {
                    Some(like) if fresh => likes.record(like)?,
                    _ => false,
                };
                written.fresh.push(fresh);
                written.stored.push(stored);
                written.liked.push(liked);
            }
        }
        tx.commit()?;
        Ok(written)
    }
}

/// The statements that store a note, prepared once per connection (rusqlite's cache).
struct NoteStatements<'c> {
    insert: rusqlite::CachedStatement<'c>,
    ap_id_taken: rusqlite::CachedStatement<'c>,
    parent_id: rusqlite::CachedStatement<'c>,
    mention: rusqlite::CachedStatement<'c>,
    actor_stored: rusqlite::CachedStatement<'c>,
    tag: rusqlite::CachedStatement<'c>,
    thread: rusqlite::CachedStatement<'c>,
    fan_out: rusqlite::CachedStatement<'c>,
}

impl<'c> NoteStatements<'c> {
    fn prepare(conn: &'c rusqlite::Connection) -> rusqlite::Result<Self> {
        Ok(NoteStatements {
            insert: conn.prepare_cached(&SQLITE_INSERT_NOTE)?,
            ap_id_taken: conn.prepare_cached(notes::AP_ID_TAKEN)?,
            parent_id: conn.prepare_cached(notes::PARENT_ID)?,
            mention: conn.prepare_cached(notes::INSERT_MENTION)?,
            actor_stored: conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM actors WHERE id = ?1)")?,
            tag: conn.prepare_cached(notes::INSERT_TAG)?,
            thread: conn.prepare_cached(notes::THREAD_REPLIES_TO)?,
            fan_out: conn.prepare_cached(&SQLITE_FAN_OUT)?,
        })
    }

    /// Stores `note` unless its `ap_id` is stored, under another id if its own is taken, and
    /// threaded to its parent if that is stored now, as `notes::insert` does; then its
    /// mentions, tags, the replies waiting for it and the fan-out. The row stored, if any.
    fn store(&mut self, note: NewNote<'_>) -> rusqlite::Result<Option<NoteRow>> {
        let mut row = note.row.clone();
        if let (None, Some(parent)) = (row.in_reply_to_id, &row.in_reply_to_ap_id) {
            row.in_reply_to_id = self.parent_id.query_row([parent], |r| r.get(0)).optional()?;
        }
        self.ensure_actor(row.author_id, "the note's author")?;
        let mut attempts = 0;
        while self.insert(&row)? == 0 {
            attempts += 1;
            if attempts == notes::INSERT_ATTEMPTS
                || self.ap_id_taken.query_row([&row.ap_id], |r| r.get::<_, i64>(0))? > 0
            {
                return Ok(None);
            }
            row.id = notes::another_id(row.id);
        }
        for actor in note.mentions {
            self.ensure_actor(*actor, "a mentioned account")?;
            self.mention.execute(rusqlite::params![row.id, actor])?;
        }
        for name in note.tags {
            self.tag.execute(rusqlite::params![row.id, name])?;
        }
        self.thread.execute(rusqlite::params![row.id, row.ap_id])?;
        self.fan_out.execute(rusqlite::params![row.id, row.author_id, row.visibility])?;
        Ok(Some(row))
    }

    /// The foreign key's error, as SQLite gives it, if actor `id` (`what`) is not stored.
    fn ensure_actor(&mut self, id: i64, what: &str) -> rusqlite::Result<()> {
        if self.actor_stored.query_row([id], |r| r.get::<_, bool>(0))? {
            return Ok(());
        }
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY);
        Err(rusqlite::Error::SqliteFailure(
            code,
            Some(format!("FOREIGN KEY constraint failed: {what} ({id}) is not stored")),
        ))
    }

    /// Inserts the row unless its id or `ap_id` is taken; 1 if it did.
    fn insert(&mut self, n: &NoteRow) -> rusqlite::Result<usize> {
        self.insert.execute(rusqlite::params![
            n.id,
            n.ap_id,
            n.author_id,
            n.is_local,
            n.visibility,
            n.content,
            n.summary,
            n.sensitive,
            n.language,
            n.url,
            n.in_reply_to_ap_id,
            n.in_reply_to_id,
            n.reblog_of_id,
            n.audience,
            n.published_at,
            n.updated_at,
            n.deleted_at,
        ])
    }
}

/// The statements that record a like, prepared once per connection (rusqlite's cache).
struct LikeStatements<'c> {
    insert: rusqlite::CachedStatement<'c>,
    notify: rusqlite::CachedStatement<'c>,
}

impl<'c> LikeStatements<'c> {
    fn prepare(conn: &'c rusqlite::Connection) -> rusqlite::Result<Self> {
        Ok(LikeStatements {
            insert: conn.prepare_cached(favourites::INSERT_RECEIVED)?,
            notify: conn.prepare_cached(notifications::INSERT)?,
        })
    }

    /// Records `like` (its actor and note checked, as the foreign keys would), and notifies the
    /// note's local author if it is new; whether it was.
    fn record(&mut self, like: NewLike<'_>) -> rusqlite::Result<bool> {
        let l = like.row;
        let params = rusqlite::params![l.id, l.ap_id, l.actor_id, l.note_id, l.created_at];
        if self.insert.execute(params)? == 0 {
            return Ok(false);
        }
        if let Some(n) = like.notification {
            self.notify.execute(rusqlite::params![
                n.id,
                n.account_id,
                n.kind,
                n.from_actor_id,
                n.note_id,
                n.created_at
            ])?;
        }
        Ok(true)
    }
}

/// A note, in `notes::COLUMNS` order; any conflict (id or `ap_id`) does nothing. `VALUES`, not
/// a `SELECT` that checks the author (`NoteStatements::store` does): SQLite would put the rows
/// of an `INSERT … SELECT` into a table with triggers through a temporary table first.
static SQLITE_INSERT_NOTE: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = (1..=notes::COLUMN_COUNT).map(|i| format!("?{i}")).collect();
    format!("INSERT OR IGNORE INTO notes ({}) VALUES ({})", notes::COLUMNS, values.join(", "))
});

/// One note's fan-out (`feed::fan_out_batch`): `?1` its id, `?2` its author, `?3` its
/// visibility.
static SQLITE_FAN_OUT: LazyLock<String> = LazyLock::new(|| {
    feed::fan_out_batch(true, feed::Repeats::OrIgnore, feed::Followers::Joined)
        .replace("BATCH", "(SELECT ?1 AS id, ?2 AS author_id, ?3 AS visibility)")
        .replace("MENTIONS", "mentions")
});

/// An error of `SqliteWriter`, reported as sqlx reports a database's.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct WriterError {
    message: String,
    /// SQLite's extended result code, when SQLite gave one.
    code: Option<i32>,
}

fn writer_error(e: rusqlite::Error) -> sqlx::Error {
    let code = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code),
        _ => None,
    };
    sqlx::Error::Database(Box::new(WriterError { message: e.to_string(), code }))
}

impl sqlx::error::DatabaseError for WriterError {
    fn message(&self) -> &str {
        &self.message
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        use sqlx::error::ErrorKind;
        match self.code {
            Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                ErrorKind::UniqueViolation
            }
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => ErrorKind::ForeignKeyViolation,
            Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => ErrorKind::NotNullViolation,
            Some(ffi::SQLITE_CONSTRAINT_CHECK) => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sqlx's connections and the inbox writer's own get the same settings, from the same
    /// constants, but for the writer's own (`WRITER_OWN_PRAGMAS`).
    #[tokio::test]
    async fn every_sqlite_writer_connection_has_the_shared_pragmas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ferry.db");
        let db = super::super::Db::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("connect");
        let super::super::Pool::Sqlite { write, .. } = &db.pool else {
            unreachable!("a SQLite database")
        };
        let writer = SqliteWriter::open(&path).expect("open the inbox writer's connection");
        let number = |value: &str| -> i64 {
            match value {
                "OFF" => 0,
                "NORMAL" | "ON" => 1,
                "memory" => 2,
                number => number.parse().expect("a number"),
            }
        };
        for (name, value) in
            super::super::SQLITE_PRAGMAS.iter().chain(&super::super::SQLITE_WRITER_PRAGMAS)
        {
            let want = number(value);
            let pooled: i64 = sqlx::query_scalar(AssertSqlSafe(format!("PRAGMA {name}")))
                .fetch_one(write)
                .await
                .expect(name);
            assert_eq!(pooled, want, "{name} on the pool's writer connection");
            let own_want = WRITER_OWN_PRAGMAS
                .iter()
                .find(|(own, _)| own == name)
                .map_or(want, |(_, value)| number(value));
            let own: i64 = writer.0.pragma_query_value(None, name, |r| r.get(0)).expect(name);
            assert_eq!(own, own_want, "{name} on the inbox writer's own connection");
        }
    }
}
