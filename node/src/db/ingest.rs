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
//! batch). There a batch is one read, which finds what is already stored, and one script of
//! fixed text that takes the batch as JSON.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::ser::{Serialize, SerializeTuple, Serializer};
use sqlx::AssertSqlSafe;

use super::notes::{self, NoteRow};
use super::{Tx, feed, json_array, received};

/// A note to store, with the actors it mentions and its hashtags.
#[derive(Clone, Copy, Debug)]
pub struct NewNote<'a> {
    pub row: &'a NoteRow,
    pub mentions: &'a [i64],
    pub tags: &'a [String],
}

/// One item of a batch: an activity id to claim (none for a note fetched, not received), a
/// note to store, or both.
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

/// PostgreSQL: a statement per step, each for the whole batch (arrays as parameters).
async fn write_postgres(
    tx: &mut Tx,
    entries: &[Entry<'_>],
    now: i64,
) -> Result<Written, sqlx::Error> {
    // Sorted, so concurrent writers take row locks in one order.
    let mut claims: Vec<&str> = entries.iter().filter_map(|e| e.claim).collect();
    claims.sort_unstable();
    let mut new_claims = received::insert_many(tx, &claims, now).await?;
    let fresh: Vec<bool> =
        entries.iter().map(|e| e.claim.is_none_or(|c| new_claims.remove(c))).collect();
    let candidates: Vec<&NoteRow> = entries
        .iter()
        .zip(&fresh)
        .filter_map(|(e, fresh)| e.note.filter(|_| *fresh).map(|n| n.row))
        .collect();
    let inserted = notes::insert_many(tx, &candidates).await?;
    notes::thread_replies(tx, &inserted.iter().map(|n| n.id).collect::<Vec<_>>()).await?;
    let mut by_ap_id: std::collections::HashMap<String, NoteRow> =
        inserted.into_iter().map(|n| (n.ap_id.clone(), n)).collect();
    let mut stored = Vec::with_capacity(entries.len());
    let mut ids = Vec::new();
    for (entry, fresh) in entries.iter().zip(&fresh) {
        let note = match entry.note.filter(|_| *fresh) {
            None => None,
            Some(note) => match by_ap_id.remove(&note.row.ap_id) {
                Some(row) if row.id == note.row.id => Some(row),
                // Left out by the batch insert: already stored, or its id was taken.
                _ => notes::insert(tx, note.row).await?,
            },
        };
        if let (Some(row), Some(new)) = (&note, entry.note) {
            notes::insert_mentions(tx, row.id, new.mentions).await?;
            notes::insert_tags(tx, row.id, new.tags).await?;
            ids.push(row.id);
        }
        stored.push(note);
    }
    feed::fan_out_many(tx, &ids).await?;
    Ok(Written { fresh, stored })
}

/// SQLite: one read, one script (see the module's comment).
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
        let note = entries[i].note.expect("a clashed entry has a note");
        if let Some(row) = notes::insert(tx, note.row).await? {
            notes::insert_mentions(tx, row.id, note.mentions).await?;
            notes::insert_tags(tx, row.id, note.tags).await?;
            feed::fan_out(tx, &row).await?;
            stored[i] = Some(row);
        }
    }
    Ok(Written { fresh, stored })
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

    async fn run(
        self,
        conn: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(AssertSqlSafe(SCRIPT.as_str()))
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

/// Claims ($1, at $2), notes ($3, arrays in `notes::COLUMNS` order), threading and fan-out of
/// the notes' ids ($4), mentions ($5, `[note, actor]`) and tags ($6, `[note, name]`). One
/// text whatever the batch, so SQLite prepares it once. `->>` reads each note's array once:
/// SQLite keeps the last parsed JSON values.
static SCRIPT: LazyLock<String> = LazyLock::new(|| {
    let ids = "(SELECT value FROM json_each($4))";
    let columns: Vec<String> = (0..notes::COLUMN_COUNT).map(|i| format!("value->>{i}")).collect();
    format!(
        "INSERT INTO received_activities (ap_id, received_at)
            SELECT value, $2 FROM json_each($1);
         INSERT INTO notes ({}) SELECT {} FROM json_each($3);
         {};
         INSERT INTO mentions (note_id, actor_id) SELECT value->>0, value->>1 FROM json_each($5)
            WHERE true ON CONFLICT DO NOTHING;
         INSERT INTO note_tags (note_id, name) SELECT value->>0, value->>1 FROM json_each($6)
            WHERE true ON CONFLICT DO NOTHING;
         {};",
        notes::COLUMNS,
        columns.join(", "),
        notes::THREAD_REPLIES.replace("(LIST)", ids),
        feed::FAN_OUT.replace("(LIST)", ids),
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
