//! The inbox's group commit (`federation::ingest`): a batch of activity-id claims and the
//! notes they carry, written with as few round trips to the database as each backend allows.
//!
//! A note is stored only if its claim is new, its `ap_id` is not stored yet and, on PostgreSQL
//! and SQLite alike, its id is free; a note whose id is taken (ids come from the published
//! time, so two notes can draw the same one) goes through `notes::insert`, which draws again.
//!
//! On SQLite each statement is a round trip to the connection's worker thread, and under load
//! the wait for that thread and the writer to be scheduled, not SQLite's work, made up most of a
//! batch's time (measured: about 100 µs per statement on two busy cores, ten statements per
//! batch). There a batch is one read, which finds what is already stored, and one statement of
//! fixed text that takes the batch as JSON (`SQLITE_WRITER_SETUP`).

use std::collections::{HashMap, HashSet};
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

/// PostgreSQL, when the batch allows: its one statement outside a transaction, so that the
/// batch costs one round trip to the server instead of three (`BEGIN`, the statement,
/// `COMMIT`), with which 4 writers kept the server waiting on the node. The statement is
/// atomic by itself. A note it left out is stored afterwards in a transaction of its own,
/// before anyone is told it was stored. None, and nothing written, on SQLite or when a reply's
/// parent is in the same batch (threading it needs a second statement in the same
/// transaction): use `write` then.
pub async fn write_alone(
    db: &super::Db,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Option<Written>, sqlx::Error> {
    if db.backend() != super::Backend::Postgres {
        return Ok(None);
    }
    let ap_ids: HashSet<&str> =
        entries.iter().filter_map(|e| e.note.map(|n| n.row.ap_id.as_str())).collect();
    let parent_in_batch = entries
        .iter()
        .filter_map(|e| e.note)
        .any(|n| n.row.in_reply_to_ap_id.as_deref().is_some_and(|parent| ap_ids.contains(parent)));
    if parent_in_batch {
        return Ok(None);
    }
    let Some(mut conn) = db.ingest_connection().await? else { return Ok(None) };
    let statement = postgres_statement(&mut conn, entries, now).await?;
    drop(conn);
    if statement.left_out.is_empty() && statement.parents.is_empty() {
        return Ok(Some(Written { fresh: statement.fresh, stored: statement.stored }));
    }
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
        for (i, note) in self.left_out {
            written.stored[i] = store_one(tx, note).await?;
        }
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
    let rows = sqlx::query_as::<_, (i32, String, i64)>(AssertSqlSafe(POSTGRES.as_str()))
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
static POSTGRES: LazyLock<String> = LazyLock::new(|| {
    let fan_out =
        feed::FAN_OUT_BATCH.replace("BATCH", "batch").replace("MENTIONS", "given_mentions");
    format!(
        "WITH claimed AS (
            INSERT INTO received_activities (ap_id, received_at)
            SELECT id, $2 FROM UNNEST($1::text[]) AS t (id)
            ON CONFLICT DO NOTHING RETURNING ap_id
        ), given AS (
            SELECT * FROM UNNEST($3::bigint[], $4::text[], $5::bigint[], $6::boolean[],
                $7::text[], $8::text[], $9::text[], $10::boolean[], $11::text[], $12::text[],
                $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::bigint[],
                $18::bigint[], $19::bigint[], $20::text[])
                WITH ORDINALITY AS n ({COLUMNS}, claim, position)
        ), batch AS (
            INSERT INTO notes ({COLUMNS})
            SELECT DISTINCT ON (ap_id) {COLUMNS} FROM given
                WHERE claim IS NULL OR claim IN (SELECT ap_id FROM claimed)
                ORDER BY ap_id, position
            ON CONFLICT DO NOTHING RETURNING id, ap_id, author_id, visibility
        ), threaded AS (
            UPDATE notes SET in_reply_to_id = b.id FROM batch b
                WHERE notes.in_reply_to_ap_id = b.ap_id
        ), given_mentions AS (
            SELECT * FROM UNNEST($21::bigint[], $22::bigint[]) AS m (note_id, actor_id)
        ), mentioned AS (
            INSERT INTO mentions (note_id, actor_id)
            SELECT m.note_id, m.actor_id FROM given_mentions m JOIN batch b ON b.id = m.note_id
            ON CONFLICT DO NOTHING
        ), tagged AS (
            INSERT INTO note_tags (note_id, name)
            SELECT t.note_id, t.name FROM UNNEST($23::bigint[], $24::text[]) AS t (note_id, name)
                JOIN batch b ON b.id = t.note_id
            ON CONFLICT DO NOTHING
        ), fanned AS (
            {fan_out}
        )
        SELECT 0, ap_id, 0::bigint FROM claimed
        UNION ALL SELECT 1, ap_id, id FROM batch",
        COLUMNS = notes::COLUMNS,
    )
});

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
                    script.claims.push(claim);
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
        script.add(note);
        stored[i] = Some(note.row.clone());
    }
    if !script.is_empty() {
        script.run(conn, now).await?;
    }
    for i in clashed {
        stored[i] = store_one(tx, entries[i].note.expect("a clashed entry has a note")).await?;
    }
    Ok(Written { fresh, stored })
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

/// The SQLite script's parameters: the batch as JSON arrays.
#[derive(Default)]
struct Script<'a> {
    claims: Vec<&'a str>,
    notes: Vec<NoteJson<'a>>,
    ids: Vec<i64>,
    mentions: Vec<(i64, i64)>,
    tags: Vec<(i64, &'a str)>,
}

impl<'a> Script<'a> {
    fn add(&mut self, note: NewNote<'a>) {
        let id = note.row.id;
        self.notes.push(NoteJson(note.row));
        self.ids.push(id);
        self.mentions.extend(note.mentions.iter().map(|actor| (id, *actor)));
        self.tags.extend(note.tags.iter().map(|name| (id, name.as_str())));
    }

    fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.notes.is_empty()
    }

    /// One statement: a row for the writer connection's `ingest_batch` view, whose trigger
    /// does the writing (`SQLITE_WRITER_SETUP`).
    async fn run(
        self,
        conn: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO ingest_batch VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(json_array(&self.claims))
            .bind(now)
            .bind(json_array(&self.notes))
            .bind(json_array(&self.ids))
            .bind(json_array(&self.mentions))
            .bind(json_array(&self.tags))
            .execute(&mut **conn)
            .await
            .map(|_| ())
    }
}

/// Run on the SQLite writer connection when it opens: a view `ingest_batch` whose
/// `INSTEAD OF INSERT` trigger writes a batch. Its row carries the claims (`claims`, received
/// at `now`), the notes (`notes`, arrays in `notes::COLUMNS` order), their ids for threading
/// (`ids`), the mentions (`[note, actor]`) and the tags (`[note, name]`).
///
/// One statement rather than a script of six, because sqlx's SQLite thread answers each
/// statement with a message of its own, and each message woke the writer's thread (a write
/// to an event descriptor and a switch between threads): about ten wake-ups per batch. Its
/// text never changes, so it is prepared once. The notes are parsed once, by `jsonb_each`,
/// whose values `->>` reads as they are; `json_each` hands each note back as text to parse
/// again (measured: a quarter of the script's CPU). The objects are `TEMP`, made from the
/// same column lists as the rest of `db`, so no migration has to repeat them. They are made
/// after the migrations have run (`Db::connect`): a migration that renames a table re-checks
/// every trigger the connection has.
pub(crate) static SQLITE_WRITER_SETUP: LazyLock<String> = LazyLock::new(|| {
    let ids = "(SELECT value FROM json_each(NEW.ids))";
    let columns: Vec<String> =
        notes::COLUMNS.split(", ").enumerate().map(|(i, _)| format!("value->>{i}")).collect();
    let position =
        |name: &str| notes::COLUMNS.split(", ").position(|c| c == name).expect("a column of notes");
    // Every note of the batch is inserted (conflicts were decided before), so the fan-out
    // reads them from the batch itself; a trigger may not use a `WITH` clause.
    let batch = format!(
        "(SELECT value->>{} AS id, value->>{} AS author_id, value->>{} AS visibility
            FROM jsonb_each(NEW.notes))",
        position("id"),
        position("author_id"),
        position("visibility"),
    );
    format!(
        "CREATE TEMP VIEW ingest_batch (claims, now, notes, ids, mentions, tags) AS
            SELECT NULL, NULL, NULL, NULL, NULL, NULL;
         CREATE TEMP TRIGGER ingest_batch_write INSTEAD OF INSERT ON ingest_batch BEGIN
         INSERT INTO received_activities (ap_id, received_at)
            SELECT value, NEW.now FROM json_each(NEW.claims);
         INSERT INTO notes ({}) SELECT {} FROM jsonb_each(NEW.notes);
         {};
         INSERT INTO mentions (note_id, actor_id)
            SELECT value->>0, value->>1 FROM json_each(NEW.mentions)
            WHERE true ON CONFLICT DO NOTHING;
         INSERT INTO note_tags (note_id, name) SELECT value->>0, value->>1 FROM json_each(NEW.tags)
            WHERE true ON CONFLICT DO NOTHING;
         {};
         END",
        notes::COLUMNS,
        columns.join(", "),
        notes::THREAD_REPLIES.replace("(LIST)", ids),
        feed::FAN_OUT_BATCH.replace("BATCH", &batch).replace("MENTIONS", "mentions"),
    )
});

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
