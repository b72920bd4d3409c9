//! Group commit for the inbox: verified activities are claimed (replay protection), and
//! received notes stored, by one writer task, many per transaction.
//!
//! Every write on SQLite goes through one connection, and every commit on PostgreSQL waits for
//! the WAL flush; one transaction per activity capped ingest near the commit rate. Here the
//! writer takes whatever has queued while the previous batch was committing, so a busy inbox
//! gets large batches and an idle one still answers at once. A job, once queued, is finished
//! by the writer even if the request that queued it goes away.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::db::{self, Backend};
use crate::error::{AppError, AppResult};
use crate::federation::journal::Entry;
use crate::services::interactions::{Interaction, Resolved};
use crate::services::notes::{Batched, PreparedNote, claim_and_store, claim_and_store_alone};
use crate::state::AppState;

/// Jobs queued before `submit` waits (backpressure on the inbox).
const QUEUE: usize = 4096;
/// Most jobs in one transaction: bounds the statement size and the time a batch holds the
/// SQLite writer from other writers.
const MAX_BATCH: usize = 128;
/// Notes stored after which PostgreSQL's statistics are first refreshed; then each time the
/// count doubles (`db::notes::analyze_ingest_tables`), until the statistics describe a table
/// of `db::notes::YOUNG_NOTES` notes or more. Beyond that the planner scales its row counts by
/// the table's pages and autovacuum refreshes the rest, so a busy node's first minutes are
/// covered and a restarted one does not analyze its large tables again.
const FIRST_ANALYZE: u64 = 1_000;
/// How long a writer keeps its connection (`db::Held`) with nothing to write: a busy inbox
/// sends the next job sooner, and other writes wait for SQLite's writer connection meanwhile.
const IDLE_HOLD: Duration = Duration::from_millis(2);
/// A SQLite batch smaller than this, taken while other inbox requests are still on their way
/// to the queue, waits `GATHER_WAIT` for them (group commit's classic delay, as PostgreSQL's
/// `commit_delay` with `commit_siblings`). Each commit writes a handful of pages whatever its
/// size, and under load the writer otherwise took most jobs one at a time.
const GATHER_BELOW: usize = 8;
/// How long a small batch waits for the requests being prepared (the sleep itself takes about
/// 50 µs longer: the kernel's timer slack).
const GATHER_WAIT: Duration = Duration::from_micros(100);
/// A SQLite batch of journaled jobs only (nobody waits for their commit: `Ingest::enqueue`)
/// smaller than this waits `JOURNALED_WAIT` for more. A commit's cost is largely per commit
/// (session 30 fitted about 190 µs of the writer's CPU to each in B1's open loop), and with
/// nobody waiting, the commit can wait for a batch worth it.
const JOURNALED_BELOW: usize = 64;
/// See `JOURNALED_BELOW`.
const JOURNALED_WAIT: Duration = Duration::from_millis(2);
/// On PostgreSQL, how long the first writer's batch must have run, with jobs waiting, before
/// another writer takes them into a batch of its own: `HELP_AFTER`, plus `HELP_PER_JOB` for
/// each job in the batch (PostgreSQL spent about 60 µs of CPU per note in B1). A batch's fixed
/// cost is partly CPU (the statement's start-up) and partly waiting (the round trip, the
/// commit's WAL flush). Where the flush is quick, a second writer at once only halved the
/// batches and paid the CPU twice (B1: one writer 12-24 % faster than two, with a 116 µs
/// `fdatasync`); where it is slow, a second commit in flight wins (27 % faster at 16
/// connections with 1 ms added to each flush). Helping only a batch that takes longer than its
/// size explains gets both.
/// (tokio's timers tick each millisecond, so a helper looks at whole milliseconds.)
const HELP_AFTER: Duration = Duration::from_millis(1);
/// See `HELP_AFTER`.
const HELP_PER_JOB: Duration = Duration::from_micros(50);
/// How often a helper looks again while the first writer's batch is overdue but nothing waits.
const HELP_POLL: Duration = Duration::from_millis(1);
/// A batch that takes longer than this is counted as slow (`WriterStats::slow`): every request
/// in it, and every one queued behind it, waits that long.
pub const SLOW_BATCH: Duration = Duration::from_millis(10);

/// What a job writes.
#[derive(Debug)]
pub enum Write {
    /// Claims an activity id; the caller handles the activity after it.
    Claim(String),
    /// Stores a received note. Its own id (`ap_id`, unique) is its replay check, so the
    /// `Create` that carried it is not claimed: a replay, or the same note in another
    /// `Create`, finds the note stored and changes nothing, and the claim would cost every
    /// note one more insert into a randomly ordered index (Mastodon, too, dedupes a `Create`
    /// on its object's URI alone).
    Note(Box<PreparedNote>),
    /// A received like or boost of a note named by its `ap_id`. The writer looks up the notes
    /// of a batch's interactions at once (`db::ingest::targets`) and records what it can
    /// (`Interaction::resolve`): a like (its notification too) or a boost, each with its own
    /// id as its replay check, as a note's. The rest it leaves to the inbox (`Claim::Unresolved`).
    Interaction(Box<Interaction>),
}

/// Whether the job was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// First time seen: the id claimed, the note stored or the like recorded.
    New,
    /// Seen before: nothing was written.
    Seen,
    /// An interaction the writer did not take (`Interaction::resolve`): nothing was written.
    Unresolved,
}

struct Job {
    write: Write,
    /// Where the result goes: the request waiting for it, or, for a job the inbox answered when
    /// it journaled it (`Ingest::enqueue`), its journal record, marked done once stored.
    done: Done,
}

enum Done {
    Waiting(oneshot::Sender<AppResult<Claim>>),
    Journaled(Entry),
}

/// What the writers have done since the node started (`Ingest::stats`): how well the group
/// commit groups, and how often a batch holds everyone up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches written (each one transaction, or one statement).
    pub batches: u64,
    /// Jobs in those batches.
    pub jobs: u64,
    /// Batches that took longer than `SLOW_BATCH`.
    pub slow: u64,
}

/// The counters behind `WriterStats`.
#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
    slow: AtomicU64,
}

impl Counters {
    fn count(&self, jobs: usize, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(jobs as u64, Ordering::Relaxed);
        if took > SLOW_BATCH {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The queue in front of the writer task (`run`).
pub struct Ingest {
    sender: mpsc::Sender<Job>,
    receiver: Mutex<Option<mpsc::Receiver<Job>>>,
    stop: watch::Sender<bool>,
    /// Notes stored since start (PostgreSQL only), and the count at which statistics are next
    /// refreshed.
    stored: AtomicU64,
    next_analyze: AtomicU64,
    /// Inbox requests between arrival and `submit` (`Ingest::preparing`).
    preparing: AtomicUsize,
    counters: Counters,
}

/// An inbox request on its way to the queue, counted until dropped.
pub struct Preparing<'a>(&'a AtomicUsize);

impl Drop for Preparing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Ingest {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Ingest {
            sender,
            receiver: Mutex::new(Some(receiver)),
            stop: watch::Sender::new(false),
            stored: AtomicU64::new(0),
            next_analyze: AtomicU64::new(FIRST_ANALYZE),
            preparing: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }
}

impl Ingest {
    /// Counts a request that will probably `submit` a job soon (an inbox POST being verified),
    /// so that the writer can wait for it rather than commit a batch of one.
    pub fn preparing(&self) -> Preparing<'_> {
        self.preparing.fetch_add(1, Ordering::Relaxed);
        Preparing(&self.preparing)
    }

    /// Applies `write` in the writer's next transaction.
    pub async fn submit(&self, write: Write) -> AppResult<Claim> {
        let (done, result) = oneshot::channel();
        self.sender.send(Job { write, done: Done::Waiting(done) }).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    /// Queues `write`, already in the inbox journal at `entry`, without waiting for it to be
    /// written: the writer marks the record done once it is (`Journal::done`). Waits only while
    /// the queue is full.
    pub async fn enqueue(&self, write: Write, entry: Entry) -> AppResult<()> {
        let job = Job { write, done: Done::Journaled(entry) };
        self.sender.send(job).await.map_err(|_| stopped())
    }

    /// What the writers have done so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            batches: c.batches.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
            slow: c.slow.load(Ordering::Relaxed),
        }
    }

    /// Tells the writer to finish what is queued and stop (after the HTTP server has stopped,
    /// so no request is cut off).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

fn stopped() -> AppError {
    AppError::Other(anyhow::anyhow!("the node is shutting down"))
}

/// The writers: run until `Ingest::stop`, then finish what is queued. SQLite has one writer
/// connection, so one writer; PostgreSQL commits several transactions at once, so the first
/// writer has helpers that take the queue while its batch is slow (`HELP_AFTER`), and one
/// batch commits while the next is written.
///
/// They run on a thread of their own. A batch is a chain of statements, and each statement's
/// answer wakes the writer; on the shared runtime that wake-up queued behind every inbox
/// request being verified, so under load a batch spent most of its time waiting for its turn
/// (measured: 2 ms per batch, a third of it in SQLite) and the writer, not the CPU, capped
/// ingest. On SQLite the writer runs its batch on this thread itself
/// (`db::ingest::SqliteWriter`), a blocking call that nothing else on this runtime waits for.
pub async fn run(state: AppState) {
    let Some(receiver) = state.ingest.receiver.lock().expect("ingest lock").take() else {
        tracing::error!("ingest writer started twice");
        return;
    };
    let build = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    crate::own_runtime::run("ferry-ingest", build, writers(state, receiver)).await;
}

async fn writers(state: AppState, receiver: mpsc::Receiver<Job>) {
    let writers = match state.db.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => db::postgres_ingest_writers(),
    };
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let first = Arc::new(FirstWriter::default());
    let mut tasks = vec![tokio::spawn(writer(state.clone(), receiver.clone(), first.clone()))];
    tasks.extend(
        (1..writers).map(|_| tokio::spawn(helper(state.clone(), receiver.clone(), first.clone()))),
    );
    for task in tasks {
        let _ = task.await;
    }
}

/// What the helpers see of the first writer: its running batch.
#[derive(Default)]
struct FirstWriter {
    /// When the running batch began and how many jobs it holds; `None` between batches.
    running: Mutex<Option<(tokio::time::Instant, u32)>>,
    /// Notified when a batch begins.
    began: tokio::sync::Notify,
}

impl FirstWriter {
    fn begin(&self, jobs: usize) {
        *self.running.lock().expect("first writer lock") =
            Some((tokio::time::Instant::now(), jobs as u32));
        self.began.notify_waiters();
    }

    fn end(&self) {
        *self.running.lock().expect("first writer lock") = None;
    }

    /// How much longer the running batch may run before helpers take the queue (zero once it
    /// is overdue), if one is running.
    fn help_in(&self) -> Option<Duration> {
        let running = *self.running.lock().expect("first writer lock");
        running
            .map(|(began, jobs)| (HELP_AFTER + HELP_PER_JOB * jobs).saturating_sub(began.elapsed()))
    }
}

async fn writer(
    state: AppState,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    first: Arc<FirstWriter>,
) {
    // Only a lone writer may sleep: PostgreSQL's writers share this thread.
    let gather = state.db.backend() == Backend::Sqlite;
    let mut stop = state.ingest.stop.subscribe();
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut held = db::Held::default();
    loop {
        {
            let mut receiver = receiver.lock().await;
            tokio::select! {
                received = receiver.recv_many(&mut jobs, MAX_BATCH) => {
                    if received == 0 {
                        return;
                    }
                    if gather {
                        gather_more(&state, &mut receiver, &mut jobs);
                    }
                }
                () = async { drop(stop.wait_for(|stop| *stop).await) } => {
                    receiver.close();
                    if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
                        return;
                    }
                }
                () = idle(held.is_held()) => {
                    held.release();
                    continue;
                }
            }
        }
        first.begin(jobs.len());
        write_batch(&state, &mut held, std::mem::take(&mut jobs)).await;
        first.end();
        state.db.release_if_wanted(&mut held);
    }
}

/// A PostgreSQL writer that takes what waits in the queue only while the first writer's batch
/// is overdue (`HELP_AFTER`); otherwise the jobs wait for the first writer's next, larger
/// batch. Stops at `Ingest::stop`, after its batch: the first writer drains the queue.
async fn helper(
    state: AppState,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    first: Arc<FirstWriter>,
) {
    let mut stop = state.ingest.stop.subscribe();
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut held = db::Held::default();
    while !*stop.borrow_and_update() {
        let began = first.began.notified();
        tokio::pin!(began);
        // Registered before looking, so a batch that begins meanwhile is not missed.
        began.as_mut().enable();
        match first.help_in() {
            None => {
                held.release();
                tokio::select! {
                    () = began => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            Some(wait) if !wait.is_zero() => {
                tokio::time::sleep(wait).await;
                continue;
            }
            Some(_) => {}
        }
        // The first writer holds the lock only while it waits for jobs (then nothing waits), and
        // another helper only while it takes them.
        if let Ok(mut receiver) = receiver.try_lock() {
            while jobs.len() < MAX_BATCH
                && let Ok(job) = receiver.try_recv()
            {
                jobs.push(job);
            }
        }
        if jobs.is_empty() {
            tokio::time::sleep(HELP_POLL).await;
            continue;
        }
        write_batch(&state, &mut held, std::mem::take(&mut jobs)).await;
    }
}

/// A batch of fewer than `GATHER_BELOW` jobs, taken while inbox requests are still on their
/// way, waits `GATHER_WAIT` for them and takes what queued meanwhile; one of journaled jobs
/// only waits `JOURNALED_WAIT` below `JOURNALED_BELOW`.
fn gather_more(state: &AppState, receiver: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>) {
    let journaled = jobs.iter().all(|job| matches!(job.done, Done::Journaled(_)));
    let wait = if journaled && jobs.len() < JOURNALED_BELOW {
        JOURNALED_WAIT
    } else if jobs.len() < GATHER_BELOW && state.ingest.preparing.load(Ordering::Relaxed) > 0 {
        GATHER_WAIT
    } else {
        return;
    };
    // The writer's thread runs nothing else, so it may block.
    std::thread::sleep(wait);
    while jobs.len() < MAX_BATCH
        && let Ok(job) = receiver.try_recv()
    {
        jobs.push(job);
    }
}

/// Ends `IDLE_HOLD` after the writer ran out of work while holding a connection; never if it
/// holds none.
async fn idle(holding: bool) {
    if holding {
        tokio::time::sleep(IDLE_HOLD).await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// Writes a batch in one transaction. If it fails, each job is tried alone, so one bad job
/// fails by itself and takes nothing else with it.
async fn write_batch(state: &AppState, held: &mut db::Held, jobs: Vec<Job>) {
    let began = std::time::Instant::now();
    let batch: Vec<&Write> = jobs.iter().map(|j| &j.write).collect();
    let applied = apply(state, held, &batch).await;
    state.ingest.counters.count(jobs.len(), began.elapsed());
    match applied {
        Ok(mut claims) => {
            again_after_their_notes(state, held, &batch, &mut claims).await;
            for (job, claim) in jobs.into_iter().zip(claims) {
                finish(state, job.done, Ok(claim));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let job = jobs.into_iter().next().expect("one job");
            finish(state, job.done, Err(e));
        }
        Err(e) => {
            tracing::warn!(jobs = jobs.len(), "batch failed, retrying its jobs one by one: {e}");
            for job in jobs {
                let result = apply(state, held, &[&job.write]).await;
                finish(state, job.done, result.map(|claims| claims[0]));
            }
        }
    }
}

/// Looks up again the interactions of a written batch that named a note the same batch stored:
/// their notes were looked up before the batch was written (`resolve`), so they were left
/// unresolved (a like dropped as one of an unknown note). They are written in a transaction of
/// their own now that their notes are stored.
async fn again_after_their_notes(
    state: &AppState,
    held: &mut db::Held,
    batch: &[&Write],
    claims: &mut [Claim],
) {
    let note_of = |i: usize| match batch[i] {
        Write::Interaction(interaction) if claims[i] == Claim::Unresolved => {
            Some(interaction.note_ap_id.as_str())
        }
        _ => None,
    };
    let unresolved: Vec<usize> = (0..batch.len()).filter(|&i| note_of(i).is_some()).collect();
    if unresolved.is_empty() {
        return;
    }
    let stored: std::collections::HashSet<&str> = batch
        .iter()
        .zip(claims.iter())
        .filter_map(|(write, claim)| match (write, claim) {
            (Write::Note(note), Claim::New) => Some(note.ap_id()),
            _ => None,
        })
        .collect();
    let again: Vec<usize> = unresolved
        .into_iter()
        .filter(|&i| note_of(i).is_some_and(|n| stored.contains(n)))
        .collect();
    if again.is_empty() {
        return;
    }
    let writes: Vec<&Write> = again.iter().map(|&i| batch[i]).collect();
    match apply(state, held, &writes).await {
        Ok(second) => {
            for (i, claim) in again.into_iter().zip(second) {
                claims[i] = claim;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "interactions with their notes in the same batch were not recorded");
        }
    }
}

/// Hands a job's result to its request, or marks its journal record done. A journaled job that
/// failed stays in the journal, to be tried again at the node's next start (`inbox::replay`):
/// its sender was told it was accepted and will not send it again.
fn finish(state: &AppState, done: Done, result: AppResult<Claim>) {
    match (done, result) {
        (Done::Waiting(sender), result) => {
            let _ = sender.send(result);
        }
        (Done::Journaled(entry), Ok(_)) => {
            if let Some(journal) = &state.journal {
                journal.done(entry);
            }
        }
        (Done::Journaled(_), Err(e)) => {
            tracing::error!(error = %e, "an accepted activity could not be stored; it stays in the inbox journal for the next start");
        }
    }
}

/// One transaction: claim the ids, store the notes not stored yet, record the likes
/// (`db::ingest`). The batch statement runs on the `held` connection when it can; a
/// transaction gets one from the pool.
async fn apply(state: &AppState, held: &mut db::Held, batch: &[&Write]) -> AppResult<Vec<Claim>> {
    let resolved = resolve(state, held, batch).await?;
    // The batch's positions of what is written.
    let mut positions = Vec::with_capacity(batch.len());
    let mut entries = Vec::with_capacity(batch.len());
    for (i, (write, resolved)) in batch.iter().zip(&resolved).enumerate() {
        let entry = match (write, resolved) {
            (Write::Claim(id), _) => Batched::Claim(id),
            (Write::Note(note), _) => Batched::Note(note),
            (Write::Interaction(_), Some(Resolved::Like(like))) => Batched::Like(like),
            (Write::Interaction(_), Some(Resolved::Boost(boost))) => Batched::Note(boost),
            (Write::Interaction(_), None) => continue,
        };
        positions.push(i);
        entries.push(entry);
    }
    let mut claims = vec![Claim::Unresolved; batch.len()];
    if entries.is_empty() {
        return Ok(claims);
    }
    let written = match claim_and_store_alone(state, held, &entries).await? {
        Some(written) => written,
        None => {
            held.release();
            let mut tx = state.db.begin_ingest().await?;
            let written = claim_and_store(&mut tx, state, &entries).await?;
            tx.commit().await?;
            written
        }
    };
    after_storing(state, written.stored.iter().flatten().count() as u64);
    let new = |fresh: bool| if fresh { Claim::New } else { Claim::Seen };
    for (k, (i, entry)) in positions.into_iter().zip(&entries).enumerate() {
        claims[i] = match entry {
            Batched::Claim(_) => new(written.fresh[k]),
            Batched::Note(_) => new(written.stored[k].is_some()),
            Batched::Like(_) => new(written.liked[k]),
        };
    }
    Ok(claims)
}

/// What the batch's interactions come to (`Interaction::resolve`), their notes looked up at
/// once; none for the other jobs.
async fn resolve(
    state: &AppState,
    held: &mut db::Held,
    batch: &[&Write],
) -> AppResult<Vec<Option<Resolved>>> {
    fn interaction<'a>(write: &&'a Write) -> Option<&'a Interaction> {
        match write {
            Write::Interaction(interaction) => Some(interaction),
            _ => None,
        }
    }
    let notes: Vec<&str> =
        batch.iter().filter_map(interaction).map(|i| i.note_ap_id.as_str()).collect();
    if notes.is_empty() {
        return Ok(batch.iter().map(|_| None).collect());
    }
    let targets = db::ingest::targets(&state.db, held, &notes).await?;
    Ok(batch
        .iter()
        .map(|write| interaction(write).and_then(|i| i.resolve(state, targets.get(&i.note_ap_id))))
        .collect())
}

/// On PostgreSQL, counts stored notes and refreshes the planner's statistics when the count
/// has doubled.
fn after_storing(state: &AppState, stored: u64) {
    if stored == 0 || state.db.backend() != Backend::Postgres {
        return;
    }
    let ingest = &state.ingest;
    let total = ingest.stored.fetch_add(stored, Ordering::Relaxed) + stored;
    let due = ingest.next_analyze.load(Ordering::Relaxed);
    let claimed = total >= due
        && ingest
            .next_analyze
            .compare_exchange(due, due * 2, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
    if !claimed {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        match db::notes::analyze_ingest_tables(&state.db).await {
            Ok(true) => {}
            Ok(false) => state.ingest.next_analyze.store(u64::MAX, Ordering::Relaxed),
            Err(e) => tracing::warn!("could not refresh the planner's statistics: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer waits for a small batch only while requests are counted as on their way, so
    /// a count left behind would slow every small batch: each guard must take back its own.
    #[test]
    fn a_preparing_request_is_counted_until_it_is_dropped() {
        let ingest = Ingest::default();
        let count = || ingest.preparing.load(Ordering::Relaxed);
        let first = ingest.preparing();
        let second = ingest.preparing();
        assert_eq!(count(), 2);
        drop(first);
        assert_eq!(count(), 1);
        let failed = || -> Result<(), ()> {
            let _preparing = ingest.preparing();
            Err(())
        };
        assert!(failed().is_err());
        assert_eq!(count(), 1, "a request that failed early is no longer counted");
        drop(second);
        assert_eq!(count(), 0);
    }

    /// Jobs submitted together are written, and counted, in as few batches as the writer took
    /// them in; each one is a job of some batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_counts_its_batches_and_their_jobs() {
        let dir = tempfile::tempdir().expect("dir");
        let state = crate::state::sqlite_state_in(dir.path()).await;
        assert_eq!(state.ingest.stats(), WriterStats::default());
        let writer = tokio::spawn(run(state.clone()));
        let claims: Vec<_> = (0..20)
            .map(|i| {
                let state = state.clone();
                tokio::spawn(async move {
                    let id = format!("http://127.0.0.1:1/activities/{i}");
                    state.ingest.submit(Write::Claim(id)).await.expect("claim")
                })
            })
            .collect();
        for claim in claims {
            assert_eq!(claim.await.expect("task"), Claim::New);
        }
        let again = state.ingest.submit(Write::Claim("http://127.0.0.1:1/activities/3".into()));
        assert_eq!(again.await.expect("claim"), Claim::Seen);
        let stats = state.ingest.stats();
        assert_eq!(stats.jobs, 21);
        assert!((2..=21).contains(&stats.batches), "{stats:?}");
        state.ingest.stop();
        writer.await.expect("writer");
    }
}
