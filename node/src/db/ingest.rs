//! The inbox's group commit (`federation::ingest`): a batch of activity-id claims and the
//! notes they carry, written with as few round trips to the database as each backend allows.
//!
//! A note is stored only if its claim is new, its `ap_id` is not stored yet and, on PostgreSQL
//! and SQLite alike, its id is free; a note whose id is taken (ids come from the published
//! time, so two notes can draw the same one) goes through `notes::insert`, which draws again.
//!
//! On SQLite a batch is one statement of fixed text that takes the batch as JSON, checks it
//! against what is stored and says what it left out (`SQLITE_WRITER_SETUP`), outside any
//! transaction (`write_alone`), run by the inbox writer's thread on a connection of its own
//! (`SqliteWriter`); a batch that repeats itself is read first, in a transaction (`write`).
//! Through sqlx every statement was a round trip to the connection's worker thread, and under
//! load the thread switches, not SQLite's work, made up most of a batch's time (measured: about
//! 100 µs per statement on two busy cores with ten statements per batch; with one, 15 % of
//! that thread's CPU still went to handing results back).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::LazyLock;

use serde::ser::{Serialize, SerializeTuple, Serializer};
use sqlx::AssertSqlSafe;

use super::notes::{self, NoteRow};
use super::{Tx, feed, json_array};

/// A note to store, with the actors it mentions and its hashtags.
#[derive(Clone, Copy, Debug)]
pub struct NewNote<'a> {
    pub row: &'a NoteRow,
    pub mentions: &'a [i64],
    pub tags: &'a [String],
}

/// One item of a batch: an activity id to claim, a note to store, or both (a note with a claim
/// is stored only if the claim is new). The inbox claims the ids of activities other than
/// `Create(Note)`; a note's own `ap_id` is its replay check.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub claim: Option<&'a str>,
    pub note: Option<NewNote<'a>>,
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
}

/// Claims the batch's activity ids and stores the notes of the new ones, with their mentions
/// and tags, threading (both ways) and home-feed fan-out, in `tx`.
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

/// When the batch allows: its one statement outside a transaction, so that the batch costs
/// one round trip instead of three or four (`BEGIN`, a read on SQLite, the statement,
/// `COMMIT`). On PostgreSQL the round trips kept the server waiting on the writers; on SQLite
/// each is a pair of thread switches between the writer and the connection's thread. The
/// statement is atomic by itself. A note it left out (its id taken) is stored afterwards in a
/// transaction of its own, before anyone is told it was stored. None, and nothing written,
/// when the batch needs `write`: on PostgreSQL a reply whose parent is in the same batch
/// (threading it needs a second statement in the same transaction), on SQLite a batch that
/// repeats a claim, a note or an id, or has an entry with both a claim and a note (the
/// trigger checks against what is stored, not against the rest of the batch).
///
/// The statement runs on the writer's `held` connection, which is kept for the next batch; it
/// is given back before a transaction is opened, and after an error, so that the pool tests
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
        return Ok(Some(Written { fresh: statement.fresh, stored: statement.stored }));
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
        let mut written = Written { fresh: self.fresh, stored: self.stored };
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
    let sent: Vec<(usize, NewNote<'_>)> = entries
        .iter()
        .zip(&firsts)
        .enumerate()
        .filter_map(|(i, (e, first))| e.note.filter(|_| *first).map(|n| (i, n)))
        .collect();
    fn each<'a, T>(notes: &[(usize, NewNote<'a>)], f: impl Fn(&'a NoteRow) -> T) -> Vec<T> {
        notes.iter().map(|(_, n)| f(n.row)).collect()
    }
    let mentions: Vec<(i64, i64)> =
        sent.iter().flat_map(|(_, n)| n.mentions.iter().map(|actor| (n.row.id, *actor))).collect();
    let tags: Vec<(i64, &str)> =
        sent.iter().flat_map(|(_, n)| n.tags.iter().map(|t| (n.row.id, t.as_str()))).collect();
    let shape = postgres_shape(!claims.is_empty(), !mentions.is_empty(), !tags.is_empty());
    let rows = sqlx::query_as::<_, (i32, String, i64)>(AssertSqlSafe(POSTGRES[shape].as_str()))
        .bind(&claims)
        .bind(now)
        .bind(each(&sent, |n| n.id))
        .bind(each(&sent, |n| n.ap_id.as_str()))
        .bind(each(&sent, |n| n.author_id))
        .bind(each(&sent, |n| n.is_local))
        .bind(each(&sent, |n| n.visibility.as_str()))
        .bind(each(&sent, |n| n.content.as_str()))
        .bind(each(&sent, |n| n.summary.as_str()))
        .bind(each(&sent, |n| n.sensitive))
        .bind(each(&sent, |n| n.language.as_deref()))
        .bind(each(&sent, |n| n.url.as_deref()))
        .bind(each(&sent, |n| n.in_reply_to_ap_id.as_deref()))
        .bind(each(&sent, |n| n.in_reply_to_id))
        .bind(each(&sent, |n| n.reblog_of_id))
        .bind(each(&sent, |n| n.audience.as_str()))
        .bind(each(&sent, |n| n.published_at))
        .bind(each(&sent, |n| n.updated_at))
        .bind(each(&sent, |n| n.deleted_at))
        .bind(sent.iter().map(|(i, _)| entries[*i].claim).collect::<Vec<_>>())
        .bind(mentions.iter().map(|m| m.0).collect::<Vec<_>>())
        .bind(mentions.iter().map(|m| m.1).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.0).collect::<Vec<_>>())
        .bind(tags.iter().map(|t| t.1).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    let mut new_claims: HashSet<&str> = HashSet::new();
    let mut stored_ids: HashSet<i64> = HashSet::new();
    for (kind, ap_id, id) in &rows {
        if *kind == 0 {
            new_claims.insert(ap_id.as_str());
        } else {
            stored_ids.insert(*id);
        }
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
    // `retry`: left out by the statement, already stored (by another writer, say) or its id
    // taken.
    Ok(PgStatement { fresh, stored, left_out: retry, parents })
}

/// The PostgreSQL statement: claims ($1, at $2); notes ($3 to $19 by column, $20 the claim
/// carrying each); mentions ($21 note, $22 actor) and tags ($23 note, $24 name). Returns the
/// new claims (0, ap_id) and the notes stored (1, ap_id, id).
///
/// One prepared form per shape: which of claims, mentions and tags the batch has. Each
/// data-modifying CTE runs, opens its table and indexes and takes their locks even when it has
/// nothing to write, and most batches are plain notes (a `Create(Note)` is not claimed); a
/// CTE that is not needed is left unreferenced, so the planner drops it, and it only gives its
/// parameters their types.
fn postgres_sql(shape: usize) -> String {
    let [claims, mentions, tags] = [1, 2, 4].map(|bit| shape & bit != 0);
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
    let fan_out = feed::fan_out_batch(mentions)
        .replace("BATCH", "batch")
        .replace("MENTIONS", "given_mentions");
    let returned_claims =
        if claims { "SELECT 0, ap_id, 0::bigint FROM claimed UNION ALL " } else { "" };
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
        )
        {returned_claims}SELECT 1, ap_id, id FROM batch",
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

/// A batch's shape, the index of its statement in `POSTGRES`.
fn postgres_shape(claims: bool, mentions: bool, tags: bool) -> usize {
    usize::from(claims) | usize::from(mentions) << 1 | usize::from(tags) << 2
}

/// `postgres_sql` for each shape (`postgres_shape`).
static POSTGRES: LazyLock<[String; 8]> = LazyLock::new(|| std::array::from_fn(postgres_sql));

/// SQLite: one read, one statement (see the module's comment).
async fn write_sqlite(
    tx: &mut Tx,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Written, sqlx::Error> {
    let Tx::Sqlite(conn) = tx else { unreachable!("write_sqlite on SQLite") };
    let claims: Vec<&str> = entries.iter().filter_map(|e| e.claim).collect();
    let notes: Vec<&NoteRow> = entries.iter().filter_map(|e| e.note.map(|n| n.row)).collect();
    let taken = if claims.is_empty() && notes.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as::<_, (i64, String, i64)>(
            "SELECT 0, ap_id, 0 FROM received_activities
                WHERE ap_id IN (SELECT value FROM json_each($1))
             UNION ALL SELECT 1, ap_id, 0 FROM notes
                WHERE ap_id IN (SELECT value FROM json_each($2))
             UNION ALL SELECT 2, '', id FROM notes
                WHERE id IN (SELECT value FROM json_each($3))",
        )
        .bind(json_array(&claims))
        .bind(json_array(&notes.iter().map(|n| n.ap_id.as_str()).collect::<Vec<_>>()))
        .bind(json_array(&notes.iter().map(|n| n.id).collect::<Vec<_>>()))
        .fetch_all(&mut **conn)
        .await?
    };
    let mut seen_claims: HashSet<&str> = HashSet::new();
    let mut seen_ap_ids: HashSet<&str> = HashSet::new();
    let mut taken_ids: HashSet<i64> = HashSet::new();
    for (kind, ap_id, id) in &taken {
        match kind {
            0 => seen_claims.insert(ap_id.as_str()),
            1 => seen_ap_ids.insert(ap_id.as_str()),
            _ => taken_ids.insert(*id),
        };
    }

    // Decided here, in the writer's transaction, so the script meets no conflict.
    let mut script = Script::default();
    let mut fresh = Vec::with_capacity(entries.len());
    let mut stored = Vec::with_capacity(entries.len());
    let mut clashed = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let new = match entry.claim {
            None => true,
            Some(claim) => {
                let new = seen_claims.insert(claim);
                if new {
                    script.claim(i, claim);
                }
                new
            }
        };
        fresh.push(new);
        let note = entry.note.filter(|n| new && seen_ap_ids.insert(&n.row.ap_id));
        stored.push(None);
        let Some(note) = note else { continue };
        if !taken_ids.insert(note.row.id) {
            clashed.push(i);
            continue;
        }
        script.add(i, note);
        stored[i] = Some(note.row.clone());
    }
    let mut written = Written { fresh, stored };
    if !script.is_empty() {
        // The read saw what the statement sees (the transaction holds the only writer), so
        // the trigger skips no note the read let through; were it to, `apply` says so.
        clashed.extend(script.run(conn, now).await?.apply(&mut written));
    }
    store_left_out(tx, with_notes(entries, clashed), &mut written).await?;
    Ok(written)
}

/// SQLite, for `write_alone`: the trigger decides against what is stored, so no read first.
async fn write_sqlite_alone(
    db: &super::Db,
    held: &mut super::Held,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Option<Written>, sqlx::Error> {
    let mut claims = HashSet::new();
    let mut ap_ids = HashSet::new();
    let mut ids = HashSet::new();
    let mut script = Script::default();
    for (i, entry) in entries.iter().enumerate() {
        match (entry.claim, entry.note) {
            (Some(_), Some(_)) => return Ok(None),
            (Some(claim), None) if claims.insert(claim) => script.claim(i, claim),
            (None, Some(note)) if ap_ids.insert(&note.row.ap_id) && ids.insert(note.row.id) => {
                script.add(i, note);
            }
            (None, None) => {}
            _ => return Ok(None),
        }
    }
    let mut written = Written {
        fresh: vec![true; entries.len()],
        stored: entries.iter().map(|e| e.note.map(|n| n.row.clone())).collect(),
    };
    if script.is_empty() {
        return Ok(Some(written));
    }
    let Some(writer) = db.sqlite_writer(held).await? else { return Ok(None) };
    let skipped = writer.run(script, now)?;
    let clashed = skipped.apply(&mut written);
    if clashed.is_empty() {
        return Ok(Some(written));
    }
    held.release();
    let mut tx = db.begin().await?;
    store_left_out(&mut tx, with_notes(entries, clashed), &mut written).await?;
    tx.commit().await?;
    Ok(Some(written))
}

/// The entries `positions` with their notes.
fn with_notes<'a>(
    entries: &[Entry<'a>],
    positions: Vec<usize>,
) -> impl Iterator<Item = (usize, NewNote<'a>)> {
    positions.into_iter().map(|i| (i, entries[i].note.expect("a left-out entry has a note")))
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

/// A note the batch left out, alone: `notes::insert` draws another id on a clash and returns
/// none if the `ap_id` is stored.
async fn store_one(tx: &mut Tx, note: NewNote<'_>) -> Result<Option<NoteRow>, sqlx::Error> {
    let Some(row) = notes::insert(tx, note.row).await? else { return Ok(None) };
    notes::insert_mentions(tx, row.id, note.mentions).await?;
    notes::insert_tags(tx, row.id, note.tags).await?;
    feed::fan_out(tx, &row).await?;
    Ok(Some(row))
}

/// The SQLite statement's parameters: the batch as JSON arrays, and the entry each claim and
/// note came from.
#[derive(Default)]
struct Script<'a> {
    claims: Vec<&'a str>,
    claim_entries: Vec<usize>,
    notes: Vec<NoteJson<'a>>,
    note_entries: Vec<usize>,
    ids: Vec<i64>,
    mentions: Vec<(i64, i64)>,
    tags: Vec<(i64, &'a str)>,
}

impl<'a> Script<'a> {
    fn claim(&mut self, entry: usize, claim: &'a str) {
        self.claims.push(claim);
        self.claim_entries.push(entry);
    }

    fn add(&mut self, entry: usize, note: NewNote<'a>) {
        let id = note.row.id;
        self.notes.push(NoteJson(note.row));
        self.note_entries.push(entry);
        self.ids.push(id);
        self.mentions.extend(note.mentions.iter().map(|actor| (id, *actor)));
        self.tags.extend(note.tags.iter().map(|name| (id, name.as_str())));
    }

    fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.notes.is_empty()
    }

    /// The batch statement's parameters after `now`, as JSON: claims, notes, ids, mentions and
    /// tags.
    fn json(&self) -> [String; 5] {
        [
            json_array(&self.claims),
            json_array(&self.notes),
            json_array(&self.ids),
            json_array(&self.mentions),
            json_array(&self.tags),
        ]
    }

    fn skipped(self, skipped: Vec<(i64, i64)>) -> Skipped {
        Skipped { skipped, claim_entries: self.claim_entries, note_entries: self.note_entries }
    }

    /// The batch statement in a transaction, on the pool's writer connection (`write`).
    async fn run(
        self,
        conn: &mut sqlx::SqliteConnection,
        now: i64,
    ) -> Result<Skipped, sqlx::Error> {
        let [claims, notes, ids, mentions, tags] = self.json();
        sqlx::query(SQLITE_BATCH)
            .bind(claims)
            .bind(now)
            .bind(notes)
            .bind(ids)
            .bind(mentions)
            .bind(tags)
            .execute(&mut *conn)
            .await?;
        let skipped = sqlx::query_as(SQLITE_SKIPPED).fetch_all(conn).await?;
        Ok(self.skipped(skipped))
    }
}

/// The SQLite inbox writer's own connection, used on its thread (`federation::ingest`) while it
/// holds the pool's writer connection, which is the right to write (`Held`). A blocking call
/// on the calling thread, so the batch costs no thread switch: through sqlx's connection
/// thread each batch was a command and its answers sent between two threads, with a wake-up
/// each way (measured in B1: 15 % of that thread's CPU, and the writer's thread waiting on the
/// channel's lock).
pub(crate) struct SqliteWriter(rusqlite::Connection);

impl SqliteWriter {
    /// Opens the database file with the writer pools' settings (`Db::connect`), and the batch's
    /// view and trigger.
    pub(crate) fn open(path: &Path) -> Result<SqliteWriter, sqlx::Error> {
        let conn = rusqlite::Connection::open(path).map_err(writer_error)?;
        conn.busy_timeout(super::SQLITE_BUSY_TIMEOUT).map_err(writer_error)?;
        let mut setup = format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = {};",
            super::SQLITE_MMAP_SIZE
        );
        for (name, value) in super::SQLITE_WRITER_PRAGMAS {
            setup.push_str(&format!(" PRAGMA {name} = {value};"));
        }
        conn.execute_batch(&setup).map_err(writer_error)?;
        conn.execute_batch(&SQLITE_WRITER_SETUP).map_err(writer_error)?;
        Ok(SqliteWriter(conn))
    }

    /// A row for the connection's `ingest_batch` view, whose trigger does the writing, and what
    /// it skipped (`SQLITE_WRITER_SETUP`).
    fn run(&mut self, script: Script<'_>, now: i64) -> Result<Skipped, sqlx::Error> {
        let conn = &self.0;
        let [claims, notes, ids, mentions, tags] = script.json();
        conn.prepare_cached(SQLITE_BATCH)
            .and_then(|mut insert| {
                insert.execute(rusqlite::params![claims, now, notes, ids, mentions, tags])
            })
            .map_err(writer_error)?;
        let skipped = conn
            .prepare_cached(SQLITE_SKIPPED)
            .and_then(|mut select| {
                select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect()
            })
            .map_err(writer_error)?;
        Ok(script.skipped(skipped))
    }
}

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

/// What the SQLite statement left out, by position in its arrays.
struct Skipped {
    skipped: Vec<(i64, i64)>,
    claim_entries: Vec<usize>,
    note_entries: Vec<usize>,
}

impl Skipped {
    /// Marks the claims already received as not fresh and the notes not stored as such (the
    /// trigger decides claims and notes apart: a claim's note is the caller's to decide).
    /// Returns the entries whose note's id was taken, to store alone.
    fn apply(self, written: &mut Written) -> Vec<usize> {
        let mut clashed = Vec::new();
        for (kind, position) in self.skipped {
            let Ok(position) = usize::try_from(position) else { continue };
            match kind {
                0 => {
                    if let Some(&entry) = self.claim_entries.get(position) {
                        written.fresh[entry] = false;
                    }
                }
                _ => {
                    if let Some(&entry) = self.note_entries.get(position) {
                        written.stored[entry] = None;
                        if kind == 2 {
                            clashed.push(entry);
                        }
                    }
                }
            }
        }
        clashed
    }
}

/// Run on SQLite's writer connections when they open (the pool's, and the inbox writer's own,
/// `SqliteWriter::open`): a view `ingest_batch` whose `INSTEAD OF INSERT` trigger writes a
/// batch. Its row carries the claims (`claims`, received at `now`), the notes (`notes`, arrays
/// in `notes::COLUMNS` order), their ids for threading (`ids`), the mentions
/// (`[note, actor]`) and the tags (`[note, name]`).
///
/// The trigger checks each claim and note against what is stored and writes only the new
/// ones. What it left out it lists in the `TEMP` table `ingest_skipped`: a claim already
/// received (kind 0, its position in `claims`), and a note whose `ap_id` is stored (kind 1) or
/// whose id is taken (kind 2, to store alone with another id), by position in `notes`. What
/// the batch repeats itself (a claim or note given twice) the trigger cannot see: the caller
/// decides that.
///
/// One statement rather than a script of six: through sqlx's connection thread each statement
/// was a message of its own, and each message woke the writer's thread (about ten wake-ups per
/// batch); the statement, prepared once, runs its six parts with no step between them. The
/// notes are parsed once, by `jsonb_each`, whose values `->>` reads as they are; `json_each`
/// hands each note back as text to parse again (measured: a quarter of the script's CPU). The
/// objects are `TEMP`, made from the same column lists as the rest of `db`, so no migration
/// has to repeat them. They are made after the migrations have run (`Db::connect`): a
/// migration that renames a table re-checks every trigger the connection has.
pub(crate) static SQLITE_WRITER_SETUP: LazyLock<String> = LazyLock::new(|| {
    let position =
        |name: &str| notes::COLUMNS.split(", ").position(|c| c == name).expect("a column of notes");
    let (id, ap_id) = (position("id"), position("ap_id"));
    let columns: Vec<String> =
        notes::COLUMNS.split(", ").enumerate().map(|(i, _)| format!("value->>{i}")).collect();
    // What the trigger wrote: the notes not skipped, their ids, and the mentions and tags of
    // those. Each is a lookup in an index of `ingest_skipped`, not `NOT IN (SELECT …)`: SQLite
    // builds every `IN` list as a B-tree of its own, with a page cache made and freed for it,
    // several times per batch.
    let not_skipped = |column: &str, value: &str| {
        format!(
            "NOT EXISTS (SELECT 1 FROM ingest_skipped s
                WHERE s.{column} = {value} AND s.kind > 0)"
        )
    };
    let written = not_skipped("position", "key");
    let ids =
        format!("(SELECT value FROM json_each(NEW.ids) WHERE {})", not_skipped("note_id", "value"));
    let note_written = not_skipped("note_id", "value->>0");
    // The fan-out reads the notes from the batch itself; a trigger may not use `WITH`.
    let batch = format!(
        "(SELECT value->>{id} AS id, value->>{} AS author_id, value->>{} AS visibility
            FROM jsonb_each(NEW.notes) WHERE {written})",
        position("author_id"),
        position("visibility"),
    );
    format!(
        "CREATE TEMP VIEW ingest_batch (claims, now, notes, ids, mentions, tags) AS
            SELECT NULL, NULL, NULL, NULL, NULL, NULL;
         CREATE TEMP TABLE ingest_skipped (
            kind INTEGER NOT NULL, position INTEGER NOT NULL, note_id INTEGER);
         CREATE INDEX ingest_skipped_position ON ingest_skipped (position);
         CREATE INDEX ingest_skipped_note ON ingest_skipped (note_id);
         CREATE TEMP TRIGGER ingest_batch_write INSTEAD OF INSERT ON ingest_batch BEGIN
         DELETE FROM ingest_skipped;
         INSERT INTO ingest_skipped (kind, position)
            SELECT 0, key FROM json_each(NEW.claims) c
            WHERE EXISTS (SELECT 1 FROM received_activities r WHERE r.ap_id = c.value);
         INSERT INTO received_activities (ap_id, received_at)
            SELECT value, NEW.now FROM json_each(NEW.claims) WHERE true ON CONFLICT DO NOTHING;
         INSERT INTO ingest_skipped (kind, position, note_id)
            SELECT CASE WHEN stored THEN 1 ELSE 2 END, key, note_id FROM (
                SELECT key, value->>{id} AS note_id, EXISTS (
                    SELECT 1 FROM notes n WHERE n.ap_id = value->>{ap_id}) AS stored
                FROM jsonb_each(NEW.notes))
            WHERE stored OR EXISTS (SELECT 1 FROM notes n WHERE n.id = note_id);
         INSERT INTO notes ({}) SELECT {} FROM jsonb_each(NEW.notes) WHERE {written};
         {};
         INSERT INTO mentions (note_id, actor_id)
            SELECT value->>0, value->>1 FROM json_each(NEW.mentions)
            WHERE {note_written} ON CONFLICT DO NOTHING;
         INSERT INTO note_tags (note_id, name) SELECT value->>0, value->>1 FROM json_each(NEW.tags)
            WHERE {note_written} ON CONFLICT DO NOTHING;
         {};
         END",
        notes::COLUMNS,
        columns.join(", "),
        notes::THREAD_REPLIES.replace("(LIST)", &ids),
        feed::fan_out_batch(true).replace("BATCH", &batch).replace("MENTIONS", "mentions"),
    )
});

/// The batch statement; what it left out is then read from `ingest_skipped`
/// (`SQLITE_WRITER_SETUP`). The notes go in as JSONB: the trigger walks them three times, and
/// each walk of JSON text parsed it anew (measured: 16 % of the statement's instructions,
/// `ingest_batch` benchmark).
const SQLITE_BATCH: &str = "INSERT INTO ingest_batch VALUES (?1, ?2, jsonb(?3), ?4, ?5, ?6)";
/// What the batch statement left out: `(kind, position)`.
const SQLITE_SKIPPED: &str = "SELECT kind, position FROM ingest_skipped";

/// A note as a JSON array, in `notes::COLUMNS` order.
struct NoteJson<'a>(&'a NoteRow);

impl Serialize for NoteJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let mut t = serializer.serialize_tuple(notes::COLUMN_COUNT)?;
        t.serialize_element(&n.id)?;
        t.serialize_element(&n.ap_id)?;
        t.serialize_element(&n.author_id)?;
        t.serialize_element(&n.is_local)?;
        t.serialize_element(&n.visibility)?;
        t.serialize_element(&n.content)?;
        t.serialize_element(&n.summary)?;
        t.serialize_element(&n.sensitive)?;
        t.serialize_element(&n.language)?;
        t.serialize_element(&n.url)?;
        t.serialize_element(&n.in_reply_to_ap_id)?;
        t.serialize_element(&n.in_reply_to_id)?;
        t.serialize_element(&n.reblog_of_id)?;
        t.serialize_element(&n.audience)?;
        t.serialize_element(&n.published_at)?;
        t.serialize_element(&n.updated_at)?;
        t.serialize_element(&n.deleted_at)?;
        t.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_as_json_has_one_value_per_column_in_order() {
        let note = NoteRow {
            id: 7,
            ap_id: "https://r.example/n/7".to_owned(),
            author_id: 3,
            is_local: false,
            visibility: "public".to_owned(),
            content: "<p>hi</p>".to_owned(),
            summary: String::new(),
            sensitive: true,
            language: Some("en".to_owned()),
            url: None,
            in_reply_to_ap_id: None,
            in_reply_to_id: None,
            reblog_of_id: None,
            audience: "{}".to_owned(),
            published_at: 11,
            updated_at: None,
            deleted_at: Some(13),
        };
        let values: Vec<serde_json::Value> =
            serde_json::from_str(&json_array(&[NoteJson(&note)])).expect("JSON");
        let values = values[0].as_array().expect("an array");
        let columns: Vec<&str> = notes::COLUMNS.split(", ").collect();
        assert_eq!(notes::COLUMN_COUNT, columns.len());
        assert_eq!(values.len(), columns.len());
        let at = |name: &str| &values[columns.iter().position(|c| *c == name).expect(name)];
        assert_eq!(at("id"), 7);
        assert_eq!(at("ap_id"), "https://r.example/n/7");
        assert_eq!(at("sensitive"), true);
        assert_eq!(at("language"), "en");
        assert_eq!(at("published_at"), 11);
        assert_eq!(at("deleted_at"), 13);
    }
}
