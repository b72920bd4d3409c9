//! The inbox journal: activities the inbox has accepted and the group-commit writer has not
//! committed yet.
//!
//! Without it an inbox POST is answered only once the writer's transaction holds it, so every
//! request waits for a commit, and a commit that stalls (SQLite copying its WAL at
//! `wal_autocheckpoint`, PostgreSQL waiting on a flush) holds up every request queued behind it.
//! With it a verified `Create(Note)` or `Like` is appended here (the signer's actor id and the
//! raw activity) and answered at once; the writer stores it in a later batch and marks it done
//! (`Journal::done`). What a node had not stored when it stopped (a crash, SIGKILL, a failed
//! batch) it replays at its next start (`Leftover`), before it serves: the writes are
//! idempotent (a note's or a like's own id is its replay check), so a record stored just before
//! a crash is stored once.
//!
//! The journal is written, not synced, as SQLite's WAL is at `synchronous = NORMAL`: a crash of
//! the node loses nothing it answered, a crash of the machine may lose its last moments.
//!
//! Layout: a directory of segments named by number (`00000000000000000001.log`), each a run of
//! records `[body length: u32][actor id: i64][CRC-32 of both and the body: u32][body]`, all
//! little-endian. A segment is deleted once every record in it is done and the journal has moved
//! on to the next (at `SEGMENT_BYTES`). A record cut short by a crash mid-write fails its length
//! or its checksum, and reading stops there.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A segment's size after which appends go to a new one, so that done records are freed.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Bytes before each record's body.
const HEADER: usize = 16;
/// A body longer than this is not a record but damage (the inbox takes far less).
const MAX_BODY: usize = 64 << 20;

/// The journal of one node (see the module's documentation).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Held locked while the journal is open: two nodes appending to one journal would each
    /// delete segments the other still needs.
    _lock: File,
}

#[derive(Debug)]
struct Inner {
    /// The segment appends go to, its number and its length.
    file: File,
    segment: u64,
    bytes: u64,
    /// Records appended and not yet done, per segment (the current one always present).
    open: BTreeMap<u64, u64>,
}

/// A record's place in the journal, for `Journal::done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    segment: u64,
}

/// An accepted activity read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The signer's actor (`actors.id`), verified when the activity was accepted.
    pub actor_id: i64,
    /// The activity as received.
    pub body: Vec<u8>,
}

/// What an earlier run left in the journal: to be replayed, then `finish`ed.
#[derive(Debug, Default)]
pub struct Leftover {
    /// The records, oldest first.
    pub records: Vec<Record>,
    /// Records cut short (a crash mid-write) or damaged; reading their segment stopped there.
    pub damaged: usize,
    segments: Vec<PathBuf>,
}

impl Leftover {
    /// Deletes the segments read, once their records are stored.
    pub fn finish(self) -> io::Result<()> {
        for path in self.segments {
            fs::remove_file(path)?;
        }
        Ok(())
    }
}

impl Journal {
    /// Opens the journal in `dir` (created if missing): reads what an earlier run left, and
    /// starts a new segment after the last one.
    pub fn open(dir: &Path) -> io::Result<(Journal, Leftover)> {
        fs::create_dir_all(dir)?;
        let lock = File::create(dir.join("lock"))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another running node", dir.display()),
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
        let mut numbered = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let number = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(number) = number {
                numbered.push((number, path));
            }
        }
        numbered.sort();
        let mut leftover = Leftover::default();
        for (_, path) in &numbered {
            leftover.damaged += read_segment(path, &mut leftover.records)?;
        }
        let segment = numbered.last().map_or(1, |(n, _)| n + 1);
        leftover.segments = numbered.into_iter().map(|(_, path)| path).collect();
        let file = create_segment(dir, segment)?;
        let inner = Inner { file, segment, bytes: 0, open: BTreeMap::from([(segment, 0)]) };
        Ok((Journal { dir: dir.to_owned(), inner: Mutex::new(inner), _lock: lock }, leftover))
    }

    /// Appends an accepted activity; once this returns, a crash of the node cannot lose it.
    pub fn append(&self, actor_id: i64, body: &[u8]) -> io::Result<Entry> {
        let record = encode(actor_id, body);
        let mut inner = self.inner.lock().expect("journal lock");
        if inner.bytes >= SEGMENT_BYTES {
            let next = inner.segment + 1;
            inner.file = create_segment(&self.dir, next)?;
            let previous = std::mem::replace(&mut inner.segment, next);
            inner.bytes = 0;
            inner.open.insert(next, 0);
            if inner.open.get(&previous) == Some(&0) {
                inner.open.remove(&previous);
                fs::remove_file(segment_path(&self.dir, previous))?;
            }
        }
        // One write call: records of concurrent appends never interleave (the lock), and a
        // crash mid-write leaves a short record that reading stops at.
        inner.file.write_all(&record)?;
        inner.bytes += record.len() as u64;
        let segment = inner.segment;
        *inner.open.entry(segment).or_default() += 1;
        Ok(Entry { segment })
    }

    /// Marks a record stored (or given up on); a segment left behind with nothing open is
    /// deleted.
    pub fn done(&self, entry: Entry) {
        let mut inner = self.inner.lock().expect("journal lock");
        let Some(open) = inner.open.get_mut(&entry.segment) else { return };
        *open = open.saturating_sub(1);
        if *open == 0 && entry.segment != inner.segment {
            inner.open.remove(&entry.segment);
            if let Err(e) = fs::remove_file(segment_path(&self.dir, entry.segment)) {
                tracing::warn!(error = %e, segment = entry.segment, "cannot delete a journal segment");
            }
        }
    }

    /// At a clean stop, with every record done, deletes the segments, so that the next start
    /// has nothing to replay.
    pub fn close(&self) {
        let inner = self.inner.lock().expect("journal lock");
        if inner.open.values().any(|&n| n > 0) {
            return;
        }
        for &segment in inner.open.keys() {
            if let Err(e) = fs::remove_file(segment_path(&self.dir, segment)) {
                tracing::warn!(error = %e, segment, "cannot delete a journal segment");
            }
        }
    }

    /// Records appended and not yet done.
    pub fn open_records(&self) -> u64 {
        self.inner.lock().expect("journal lock").open.values().sum()
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.log"))
}

fn create_segment(dir: &Path, segment: u64) -> io::Result<File> {
    OpenOptions::new().create_new(true).append(true).open(segment_path(dir, segment))
}

fn encode(actor_id: i64, body: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + body.len());
    record.extend_from_slice(&(body.len() as u32).to_le_bytes());
    record.extend_from_slice(&actor_id.to_le_bytes());
    record.extend_from_slice(&checksum(actor_id, body).to_le_bytes());
    record.extend_from_slice(body);
    record
}

fn checksum(actor_id: i64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(body.len() as u32).to_le_bytes());
    hasher.update(&actor_id.to_le_bytes());
    hasher.update(body);
    hasher.finalize()
}

/// Reads a segment's records into `records`; returns 1 if it ended in a damaged or short
/// record, 0 if it ended cleanly.
fn read_segment(path: &Path, records: &mut Vec<Record>) -> io::Result<usize> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let Some((header, after)) = rest.split_first_chunk::<HEADER>() else { return Ok(1) };
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let actor_id = i64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
        let sum = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
        if len > MAX_BODY || after.len() < len {
            return Ok(1);
        }
        let (body, after) = after.split_at(len);
        if checksum(actor_id, body) != sum {
            return Ok(1);
        }
        records.push(Record { actor_id, body: body.to_vec() });
        rest = after;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(dir: &Path) -> usize {
        let logs = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
        logs.filter(|p| p.extension().is_some_and(|e| e == "log")).count()
    }

    #[test]
    fn a_journal_has_one_node_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let e = Journal::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("in use by another running node"), "{e}");
        drop(journal);
        Journal::open(dir.path()).unwrap();
    }

    #[test]
    fn what_is_not_done_is_read_back_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, leftover) = Journal::open(dir.path()).unwrap();
        assert!(leftover.records.is_empty());
        let first = journal.append(7, b"{\"type\":\"Create\"}").unwrap();
        journal.append(8, b"{\"type\":\"Like\"}").unwrap();
        journal.done(first);
        assert_eq!(journal.open_records(), 1);
        drop(journal);

        // Done or not, a record stays until its segment is left behind: replay is idempotent.
        let (journal, leftover) = Journal::open(dir.path()).unwrap();
        assert_eq!(leftover.damaged, 0);
        let bodies: Vec<(i64, &[u8])> =
            leftover.records.iter().map(|r| (r.actor_id, r.body.as_slice())).collect();
        assert_eq!(bodies, [(7, &b"{\"type\":\"Create\"}"[..]), (8, &b"{\"type\":\"Like\"}"[..])]);
        assert_eq!(segments(dir.path()), 2, "the old segment and the new one");
        leftover.finish().unwrap();
        assert_eq!(segments(dir.path()), 1);
        drop(journal);
        let (_, leftover) = Journal::open(dir.path()).unwrap();
        assert!(leftover.records.is_empty());
    }

    #[test]
    fn a_record_cut_short_ends_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        journal.append(1, b"whole").unwrap();
        journal.append(2, b"cut short").unwrap();
        drop(journal);
        let path = segment_path(dir.path(), 1);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let (_, leftover) = Journal::open(dir.path()).unwrap();
        assert_eq!(leftover.records, [Record { actor_id: 1, body: b"whole".to_vec() }]);
        assert_eq!(leftover.damaged, 1);

        // A flipped byte fails the checksum.
        let (journal, leftover) = Journal::open(dir.path()).unwrap();
        leftover.finish().unwrap();
        journal.append(3, b"flipped").unwrap();
        drop(journal);
        let path = segment_path(dir.path(), 3);
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, bytes).unwrap();
        let (_, leftover) = Journal::open(dir.path()).unwrap();
        assert!(leftover.records.is_empty());
        assert_eq!(leftover.damaged, 1);
    }

    #[test]
    fn a_segment_left_behind_is_deleted_once_its_records_are_done() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let body = vec![b'x'; (SEGMENT_BYTES / 2) as usize];
        let entries: Vec<Entry> = (0..3).map(|n| journal.append(n, &body).unwrap()).collect();
        // The third record went to a second segment.
        assert_eq!(segments(dir.path()), 2);
        assert_ne!(entries[1], entries[2]);
        journal.done(entries[0]);
        assert_eq!(segments(dir.path()), 2, "the first segment still has an open record");
        journal.done(entries[1]);
        assert_eq!(segments(dir.path()), 1, "the first segment is gone");
        journal.done(entries[2]);
        assert_eq!(segments(dir.path()), 1, "the current segment stays");
        assert_eq!(journal.open_records(), 0);
    }
}
