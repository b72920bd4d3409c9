//! Storage: the `Db` handle over SQLite or PostgreSQL, transactions, and all SQL (one file per
//! table family). Nothing outside this module names a table.
//!
//! Every query is written once in portable SQL with `$n` placeholders; `on_db!` and `on_tx!` run
//! it on whichever backend is live. SQLite gets a single-connection writer pool, so writes queue
//! in-process instead of failing with `SQLITE_BUSY`, and a separate pool for reads (WAL lets
//! readers run beside the writer). The inbox writer writes on a SQLite connection of its own
//! (`ingest::SqliteWriter`), only while it holds the pool's writer connection.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::ids::IdGen;

/// How long a SQLite connection waits for a lock before it fails with `SQLITE_BUSY`.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The pragmas of every SQLite connection (sqlx's, and the inbox writer's own):
/// - `synchronous = NORMAL` in WAL mode: a commit survives a process crash; only a power loss
///   can take the last transactions, and never corrupts the file.
/// - Foreign keys checked.
/// - Pages read through a shared memory map of 128 MiB instead of a read() and a copy into
///   each connection's own cache.
pub(crate) const SQLITE_PRAGMAS: [(&str, &str); 3] =
    [("synchronous", "NORMAL"), ("foreign_keys", "ON"), ("mmap_size", "134217728")];
/// The pragmas of SQLite's writer connections (the pool's, and the inbox writer's own), beyond
/// those of every connection.
/// - A small cache (4 MiB): the writer keeps the pages it wrote there, in the heap, while
///   clean pages are read through the memory map anyway. 32 MiB bought no ingest throughput
///   and held up to 886 B per queued delivery (B2).
/// - Statement journals (the undo of one statement inside a transaction, which a multi-row
///   insert that a constraint could abort keeps) in memory: on file they spilled to a
///   temporary file past 64 KiB, write calls that were 4 % of the inbox's CPU under load. They
///   hold at most the pages one statement changes.
/// - Checkpoints run on their own connection (`Db::checkpoint`), but beside a busy writer
///   they never copy the last frames, so the WAL starts again only when a writer's commit
///   passes `wal_autocheckpoint` and copies the rest itself, every request waiting on it. At
///   20,000 pages that was every 0.6 s in B1, with stalls of up to 80 ms; at 50,000 (a WAL of
///   up to 200 MiB) B1 took 10-12 % more notes per second and its p99 fell by half. The
///   checkpointer keeps what is left for that commit small (`maintenance::run_checkpoints`).
pub(crate) const SQLITE_WRITER_PRAGMAS: [(&str, &str); 3] =
    [("cache_size", "-4096"), ("temp_store", "memory"), ("wal_autocheckpoint", WAL_AUTOCHECKPOINT)];

/// The WAL's size (in frames, one page each) at which a SQLite writer's commit checkpoints it
/// itself.
const WAL_AUTOCHECKPOINT: &str = "50000";

/// `WAL_AUTOCHECKPOINT` as a number.
pub(crate) fn writer_checkpoint_frames() -> i64 {
    WAL_AUTOCHECKPOINT.parse().expect("WAL_AUTOCHECKPOINT is a number")
}

/// SQLite's WAL after a checkpoint (`Db::checkpoint`), in frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalState {
    /// Frames in the WAL.
    pub frames: i64,
    /// Frames of it now copied into the database file.
    pub backfilled: i64,
}

/// The delivery worker's PostgreSQL connections: its claim loop, its recorder of
/// acknowledgements, and the retries being written at any moment.
const DELIVERY_CONNECTIONS: u32 = 8;

/// Inbox writers on PostgreSQL (`federation::ingest`: the first writer and its helpers), each
/// with a connection of its own: as many as the machine has cores, from 2 to 4. PostgreSQL
/// runs each batch statement on one core, and a statement costs about as much for one note as
/// for ten; more writers than cores only split the queue into smaller batches (measured on two
/// cores: 2 writers took 6,000-6,100 notes/s with batches of 6-7, 4 writers 4,500-4,700/s
/// with batches of 5 and 40 % more of PostgreSQL's CPU per note).
pub fn postgres_ingest_writers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

pub mod accounts;
pub mod actors;
pub mod blocks;
pub mod deliveries;
pub mod favourites;
pub mod feed;
pub mod follows;
pub mod ingest;
pub mod keys;
pub mod media;
pub mod moves;
pub mod notes;
pub mod notifications;
pub mod oauth;
pub mod received;

/// Which database engine a `Db` talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// `checkpoint`: one connection that copies the WAL into the database file, so the writer
    /// does not (see `Db::checkpoint`).
    /// `path`: the database file, for the inbox writer's own connection (`ingest::SqliteWriter`).
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        checkpoint: SqlitePool,
        path: PathBuf,
    },
    Postgres(PgPool),
}

/// A handle to the node's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: Pool,
    /// PostgreSQL: the inbox writers' own connections (`begin_ingest`, `ingest_connection`).
    ingest: Option<PgPool>,
    /// PostgreSQL: the delivery worker's own connections (`for_delivery`).
    delivery: Option<PgPool>,
    /// SQLite: transactions waiting for the writer connection, which an inbox writer holding
    /// it (`Held`) gives back after its batch.
    write_waiting: Arc<AtomicUsize>,
    ids: Arc<IdGen>,
}

/// The connection an inbox writer keeps from one batch to the next (`ingest::write_alone`).
///
/// sqlx tests a pooled connection with a round trip each time it goes back to the pool, and
/// only then lends it again: on SQLite two more thread switches between the writer and the
/// connection's thread before the next batch could start, on PostgreSQL a round trip to the
/// server. A writer keeps its connection while batches keep coming (`Db::release_if_wanted`
/// gives SQLite's single writer connection back as soon as a transaction waits for it).
///
/// On SQLite the pool's writer connection is only the right to write: the batch runs on the
/// writer's own connection (`sqlite_writer`), on the writer's thread, and that one is kept when
/// the right is given back.
#[derive(Default)]
pub struct Held {
    sqlite: Option<PoolConnection<Sqlite>>,
    postgres: Option<PoolConnection<Postgres>>,
    sqlite_writer: Option<ingest::SqliteWriter>,
}

impl Held {
    /// Gives the connection back to its pool (before the writer opens a transaction, which
    /// takes a connection from the same pool, and when it has nothing to write).
    pub fn release(&mut self) {
        self.sqlite = None;
        self.postgres = None;
    }

    /// Whether a connection is held.
    pub fn is_held(&self) -> bool {
        self.sqlite.is_some() || self.postgres.is_some()
    }
}

/// Counts a transaction waiting for SQLite's writer connection while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open write transaction on either backend.
pub enum Tx {
    /// SQLite transaction (holds the single writer connection).
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL transaction.
    Postgres(Transaction<'static, Postgres>),
}

/// Runs the same sqlx expression on the read pool of whichever backend is live.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Sqlite { read: $pool, .. } => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// Runs the same sqlx expression inside an open transaction.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Connecting failed.
    #[error("cannot open database: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Opens `url` (`sqlite://file.db` or `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let mut ingest = None;
        let mut delivery = None;
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Plan every execution with its parameters and the tables as they are now. sqlx
            // prepares each statement once per connection; PostgreSQL's cached generic plan,
            // made while a new node's tables were empty, keeps nested sequential scans long
            // after the tables have grown (measured: one batch threading update took 223 s
            // against 50,000 notes).
            let base = PgConnectOptions::from_str(url)?;
            // Each pool names its connections in `pg_stat_activity` (`ferry`, `ferry-delivery`,
            // `ferry-ingest`), unless the URL names them itself.
            let named = |part: &str| match base.get_application_name() {
                Some(_) => base.clone(),
                None => base.clone().application_name(part),
            };
            let options = named("ferry").options([("plan_cache_mode", "force_custom_plan")]);
            // No ping before each acquire: it is a round trip per query, and a dead connection
            // shows up as an error on first use anyway.
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            // The delivery worker's connections are opened on its runtime and stay with it. A
            // connection's socket answers to the reactor of the runtime that opened it; one the
            // delivery runtime opened in the shared pool woke API requests only when a worker
            // busy signing got round to polling that reactor. Opened when first needed.
            delivery = Some(
                PgPoolOptions::new()
                    .max_connections(DELIVERY_CONNECTIONS)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(
                        named("ferry-delivery").options([("plan_cache_mode", "force_custom_plan")]),
                    ),
            );
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
            // The inbox writers' statements use generic plans: PostgreSQL kept planning the
            // batch statement anew for each batch (a custom plan), which cost more CPU than
            // running it (measured: 24 % of the machine's CPU under load, against 10 %
            // executing). A cached plan is rebuilt when the tables' statistics change
            // (`notes::analyze_ingest_tables` after the first 1,000 notes, autovacuum), so one
            // made on a new node's empty tables does not outlive them. Their own connections,
            // not `SET LOCAL` in each transaction, so that a batch can be one statement
            // outside a transaction (`ingest::write_alone`).
            ingest = Some(
                PgPoolOptions::new()
                    .max_connections(postgres_ingest_writers() as u32)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(
                        named("ferry-ingest").options([("plan_cache_mode", "force_generic_plan")]),
                    )
                    .await?,
            );
            Pool::Postgres(pool)
        } else {
            let options = SQLITE_PRAGMAS.iter().fold(
                SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT),
                |options, (name, value)| options.pragma(*name, *value),
            );
            // Migrations first, on a connection of their own, before any pool opens.
            let mut migrating = SqliteConnection::connect_with(&options).await?;
            sqlx::migrate!("../migrations/sqlite").run(&mut migrating).await?;
            migrating.close().await?;
            // No ping before each acquire: for SQLite it is a round trip to the connection's
            // thread per query, and an embedded connection does not go stale.
            let writer_options = SQLITE_WRITER_PRAGMAS
                .iter()
                .fold(options.clone(), |options, (name, value)| options.pragma(*name, *value));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(writer_options)
                .await?;
            let path = options.get_filename().to_owned();
            let checkpoint = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options.clone().pragma("cache_size", "-256"))
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .connect_with(options.read_only(true))
                .await?;
            Pool::Sqlite { read, write, checkpoint, path }
        };
        Ok(Db {
            pool,
            ingest,
            delivery,
            write_waiting: Arc::default(),
            ids: Arc::new(IdGen::default()),
        })
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The handle the delivery worker uses: on PostgreSQL its own pool, on SQLite this one.
    pub fn for_delivery(&self) -> Db {
        let mut db = self.clone();
        if let Some(delivery) = &self.delivery {
            db.pool = Pool::Postgres(delivery.clone());
        }
        db
    }

    /// PostgreSQL: the name this handle's connections give the server, as
    /// `pg_stat_activity.application_name` shows it. None on SQLite.
    pub async fn application_name(&self) -> Result<Option<String>, sqlx::Error> {
        let Pool::Postgres(pool) = &self.pool else { return Ok(None) };
        sqlx::query_scalar("SELECT current_setting('application_name')")
            .fetch_one(pool)
            .await
            .map(Some)
    }

    /// A fresh time-ordered id.
    pub fn next_id(&self) -> i64 {
        self.ids.next()
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match &self.pool {
            Pool::Sqlite { write, .. } => {
                let _waiting = Waiting::new(&self.write_waiting);
                Tx::Sqlite(write.begin().await?)
            }
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Starts the inbox writer's transaction (`ingest::write`); on PostgreSQL on the writers'
    /// own connections, whose statements use generic plans (see `connect`).
    pub async fn begin_ingest(&self) -> Result<Tx, sqlx::Error> {
        match &self.ingest {
            Some(pool) => Ok(Tx::Postgres(pool.begin().await?)),
            None => self.begin().await,
        }
    }

    /// PostgreSQL: an inbox writer's connection, for a batch written by one statement in its
    /// own implicit transaction (`ingest::write_alone`): the one `held` from the last batch, or
    /// one from the writers' pool. None on SQLite.
    pub(crate) async fn ingest_connection<'h>(
        &self,
        held: &'h mut Held,
    ) -> Result<Option<&'h mut PgConnection>, sqlx::Error> {
        let Some(pool) = &self.ingest else { return Ok(None) };
        if held.postgres.is_none() {
            held.postgres = Some(pool.acquire().await?);
        }
        Ok(held.postgres.as_deref_mut())
    }

    /// SQLite: the inbox writer's own connection, for a batch written in a transaction of its
    /// own (`ingest::write_alone`), once `held` has the right to write (the pool's writer
    /// connection, kept from the last batch or taken from the pool). It is opened on first use.
    /// None on PostgreSQL.
    pub(crate) async fn sqlite_writer<'h>(
        &self,
        held: &'h mut Held,
    ) -> Result<Option<&'h mut ingest::SqliteWriter>, sqlx::Error> {
        let Pool::Sqlite { write, path, .. } = &self.pool else { return Ok(None) };
        if held.sqlite.is_none() {
            held.sqlite = Some(write.acquire().await?);
        }
        if held.sqlite_writer.is_none() {
            held.sqlite_writer = Some(ingest::SqliteWriter::open(path)?);
        }
        Ok(held.sqlite_writer.as_mut())
    }

    /// Gives SQLite's writer connection back if a transaction is waiting for it. PostgreSQL's
    /// inbox writers have a pool of their own, one connection each, and keep theirs.
    pub fn release_if_wanted(&self, held: &mut Held) {
        if self.write_waiting.load(Ordering::Relaxed) > 0 {
            held.release();
        }
    }

    /// Copies what the SQLite WAL holds into the database file, as far as readers allow, from
    /// a connection of its own. Left to the writer, every 1,000th page committed made one
    /// commit copy the WAL, and the single writer (and every inbox request waiting on it)
    /// waited; a passive checkpoint here runs beside the writer. Returns the WAL's state after
    /// it (all zero on PostgreSQL, where there is nothing to do).
    ///
    /// SQLite syncs the database file only after a checkpoint that reached the WAL's end, which
    /// one beside a busy writer never does; the pages it copied stayed dirty in the page cache
    /// until the writer's own checkpoint (at `wal_autocheckpoint`) synced them all, tens of MiB,
    /// while every inbox request waited: stalls of 40-90 ms under B1's load. So the file is
    /// synced here whenever the copy fell short of the end.
    pub async fn checkpoint(&self) -> Result<WalState, sqlx::Error> {
        let Pool::Sqlite { checkpoint, path, .. } = &self.pool else {
            return Ok(WalState::default());
        };
        let (_, frames, backfilled): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(checkpoint).await?;
        let wal = WalState { frames: frames.max(0), backfilled: backfilled.max(0) };
        if wal.backfilled > 0 && wal.backfilled < wal.frames {
            let path = path.clone();
            tokio::task::spawn_blocking(move || std::fs::File::open(path)?.sync_data())
                .await
                .map_err(std::io::Error::other)
                .flatten()
                .map_err(sqlx::Error::Io)?;
        }
        Ok(wal)
    }

    /// Closes every connection (used before exit so SQLite checkpoints its WAL).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { read, write, checkpoint, .. } => {
                read.close().await;
                checkpoint.close().await;
                write.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
        for pool in [&self.ingest, &self.delivery].into_iter().flatten() {
            pool.close().await;
        }
    }
}

impl Tx {
    /// Rolls the transaction back now (dropping it also rolls back, but only when the
    /// connection is next used).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tx::Sqlite(_) => "Tx(sqlite)",
            Tx::Postgres(_) => "Tx(postgres)",
        })
    }
}

/// `(?, ?, …), (?, …)`: anonymous placeholders for `rows` rows of `columns` values each, for
/// SQLite multi-row statements. Anonymous, not `$n`: sqlx asks SQLite for each parameter's name,
/// and SQLite finds a `$n` name by walking a list, so binding `$n` parameters costs the square
/// of their number (2.6 % of B1's CPU with 544 parameters a statement).
pub(crate) fn row_placeholders(rows: usize, columns: usize) -> String {
    let mut row = String::with_capacity(columns * 3 + 2);
    row.push('(');
    for column in 0..columns {
        row.push_str(if column == 0 { "?" } else { ", ?" });
    }
    row.push(')');
    vec![row; rows].join(", ")
}

/// Splits `items` into chunks of 32, 16, 8, 4, 2 and 1: a multi-row statement then has one of
/// six shapes whatever the batch size, so the shapes stay in each connection's statement cache
/// instead of being parsed and planned again for every batch.
pub(crate) fn fixed_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = [32, 16, 8, 4, 2, 1].into_iter().find(|&n| n <= items.len()).unwrap_or(1);
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

/// Runs `sql` with the ids in place of each `(LIST)`: one array parameter on PostgreSQL, one
/// JSON array read by `json_each` on SQLite (which has no arrays). Either way a statement has
/// one prepared form whatever the number of ids.
pub(crate) async fn execute_with_ids(
    tx: &mut Tx,
    sql: &str,
    ids: &[i64],
) -> Result<u64, sqlx::Error> {
    match tx {
        Tx::Postgres(tx) => {
            let sql = sql.replace("IN (LIST)", "= ANY($1)");
            sqlx::query(AssertSqlSafe(sql))
                .bind(ids)
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected())
        }
        Tx::Sqlite(tx) => {
            let sql = sql.replace("(LIST)", "(SELECT value FROM json_each($1))");
            sqlx::query(AssertSqlSafe(sql))
                .bind(json_array(ids))
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected())
        }
    }
}

/// `[a,b,…]`: a list parameter for SQLite's `json_each`.
pub(crate) fn json_array<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("a slice of numbers or strings serialises")
}

/// True when `err` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_chunks_use_six_sizes_and_keep_every_item_in_order() {
        let items: Vec<u32> = (0..77).collect();
        let chunks: Vec<&[u32]> = fixed_chunks(&items).collect();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [32, 32, 8, 4, 1]);
        assert_eq!(chunks.concat(), items);
        assert_eq!(fixed_chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn row_placeholders_are_anonymous() {
        assert_eq!(row_placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(row_placeholders(1, 1), "(?)");
    }

    #[test]
    fn json_array_is_what_json_each_reads() {
        assert_eq!(json_array(&[1i64, -2, 3]), "[1,-2,3]");
        assert_eq!(json_array(&["a\"b", "c"]), r#"["a\"b","c"]"#);
    }
}
