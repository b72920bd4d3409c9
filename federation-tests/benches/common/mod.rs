//! Shared pieces of the benchmarks (docs/benchmarks.md): raw-limit calibration measured in the
//! same run, percentiles, a closed-loop HTTP load generator, databases (a SQLite file and a
//! fresh PostgreSQL schema), nodes in this process or as real `ferry` processes, and RSS/CPU
//! readings from `/proc`.
//!
//! Every benchmark prints its result, its raw limit and the ratio side by side; nothing here
//! asserts on time.

// Each benchmark binary uses a different subset of these helpers.
#![allow(dead_code)]

/// The `ferry` binary's allocator: a node run in this process measures what the binary does.
#[global_allocator]
static ALLOCATOR: ferry_node::Allocator = ferry_node::Allocator;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ferry_node::config::Config;
use ferry_node::state::AppState;
use ferry_node::{Server, shutdown};
use ferry_protocol::signatures::{PrivateKey, sign_request};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

/// The PostgreSQL server to also run on (as in node/tests/it/support.rs).
pub(crate) const POSTGRES_URL_VAR: &str = "FERRY_TEST_POSTGRES_URL";
const POSTGRES_DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A password every benchmark account uses (at least 8 characters).
pub(crate) const PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// Calibration

/// Runs `op` on `threads` OS threads for `budget` each and returns the total rate per second.
/// `make` builds each thread's operation (so per-thread state needs no locking).
pub(crate) fn parallel_rate<F>(threads: usize, budget: Duration, make: impl Fn() -> F + Sync) -> f64
where
    F: FnMut(),
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut op = make();
                    op();
                    let start = Instant::now();
                    let mut count = 0u64;
                    while start.elapsed() < budget {
                        op();
                        count += 1;
                    }
                    count as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("calibration thread")).sum()
    })
}

/// A signing string of the size `sign_request` produces for an inbox POST.
fn calibration_signing_string(key: &PrivateKey) -> String {
    let url = Url::parse("https://remote.example/inbox").expect("static URL");
    let body = vec![b'x'; 1000];
    let signed = sign_request(
        "POST",
        &url,
        Some(&body),
        "https://local.example/users/alice#main-key",
        key,
        SystemTime::now(),
    );
    format!(
        "(request-target): post /inbox\nhost: {}\ndate: {}\ndigest: {}",
        signed.host,
        signed.date,
        signed.digest.unwrap_or_default()
    )
}

/// Raw RSA-2048 verifications per second with a pre-parsed key
/// (`PublicKey::verify_rsa_sha256`), on `threads` threads.
pub(crate) fn rsa_verify_rate(threads: usize, budget: Duration) -> f64 {
    let key = PrivateKey::generate().expect("key generation");
    let public = key.public_key();
    let text = calibration_signing_string(&key);
    let signature = key.sign_rsa_sha256(text.as_bytes());
    parallel_rate(threads, budget, || {
        || {
            public
                .verify_rsa_sha256(std::hint::black_box(text.as_bytes()), &signature)
                .expect("own signature verifies");
        }
    })
}

/// Raw RSA-2048 signatures per second (`PrivateKey::sign_rsa_sha256`), on `threads` threads.
pub(crate) fn rsa_sign_rate(threads: usize, budget: Duration) -> f64 {
    let key = PrivateKey::generate().expect("key generation");
    let text = calibration_signing_string(&key);
    parallel_rate(threads, budget, || {
        || {
            std::hint::black_box(key.sign_rsa_sha256(std::hint::black_box(text.as_bytes())));
        }
    })
}

/// Generates `n` RSA-2048 keys on two threads.
pub(crate) fn generate_keys(n: usize) -> Vec<PrivateKey> {
    std::thread::scope(|scope| {
        let halves: Vec<_> = [n / 2, n - n / 2]
            .into_iter()
            .map(|count| {
                scope.spawn(move || {
                    (0..count)
                        .map(|_| PrivateKey::generate().expect("key generation"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().expect("key thread")).collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Latency percentiles of a sample (sorted on construction).
pub(crate) struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    pub(crate) fn new(mut sample: Vec<Duration>) -> Percentiles {
        sample.sort_unstable();
        Percentiles { sorted: sample }
    }

    /// The `p`-th percentile (nearest rank), zero for an empty sample.
    pub(crate) fn at(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// How many values the sample holds.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// `p50/p95/p99/max` in milliseconds.
    pub(crate) fn summary(&self) -> String {
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(self.at(50.0)),
            ms(self.at(95.0)),
            ms(self.at(99.0)),
            ms(self.sorted.last().copied().unwrap_or_default())
        )
    }
}

/// Milliseconds as a float.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `pass`/`FAIL` for a printed verdict.
pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok { "pass" } else { "FAIL" }
}

/// Nanoseconds since the Unix epoch (comparable across processes on this machine).
pub(crate) fn epoch_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Closed-loop load

/// What a closed-loop run produced.
#[derive(Default)]
pub(crate) struct LoadResult {
    /// Requests that got the expected answer.
    pub ok: u64,
    /// Requests that did not (wrong status or transport error).
    pub errors: u64,
    /// Latency of every request, successful or not.
    pub latencies: Vec<Duration>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Up to five distinct error messages.
    pub error_samples: Vec<String>,
}

impl LoadResult {
    /// Adds one worker's latencies, successes and error messages (keeping five distinct ones).
    pub(crate) fn add(&mut self, latencies: Vec<Duration>, ok: u64, errors: Vec<String>) {
        self.latencies.extend(latencies);
        self.ok += ok;
        self.errors += errors.len() as u64;
        for e in errors {
            if self.error_samples.len() < 5 && !self.error_samples.contains(&e) {
                self.error_samples.push(e);
            }
        }
    }

    /// Successful requests per second.
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `request(i)` for `i` in `0..count` with `concurrency` workers, each sending its next
/// request as soon as the previous one is answered, until `count` requests are done or
/// `budget` has passed. `request` returns `Err(message)` for an unexpected answer.
pub(crate) async fn closed_loop<F, Fut>(
    concurrency: usize,
    count: usize,
    budget: Duration,
    request: F,
) -> LoadResult
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let request = request.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ok = 0u64;
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || start.elapsed() >= budget {
                    break;
                }
                let sent = Instant::now();
                let outcome = request(i).await;
                latencies.push(sent.elapsed());
                match outcome {
                    Ok(()) => ok += 1,
                    Err(e) => errors.push(e),
                }
            }
            (latencies, ok, errors)
        }));
    }
    let mut result = LoadResult::default();
    for worker in workers {
        let (latencies, ok, errors) = worker.await.expect("load worker");
        result.add(latencies, ok, errors);
    }
    result.elapsed = start.elapsed();
    result
}

/// A client for load generation: no timeouts shorter than the run, a pool as deep as the
/// concurrency.
pub(crate) fn load_client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

// ---------------------------------------------------------------------------------------------
// Databases

/// One database a benchmark runs on.
pub(crate) struct Database {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    /// The URL the node is given.
    pub url: String,
    /// `(admin URL, schema)` of a PostgreSQL schema to drop at the end.
    schema: Option<(String, String)>,
}

impl Database {
    /// Drops the PostgreSQL schema (best effort); nothing for SQLite.
    pub(crate) async fn cleanup(self) {
        let Some((admin_url, name)) = self.schema else { return };
        let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&admin_url)
            .await
        else {
            return;
        };
        let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

/// A SQLite file in `dir`, then a fresh schema on PostgreSQL (`FERRY_TEST_POSTGRES_URL`, or
/// the local default) when it can be reached; a message says when it cannot.
pub(crate) async fn databases(dir: &Path) -> Vec<Database> {
    let mut dbs = vec![Database {
        name: "sqlite",
        url: format!("sqlite://{}", dir.join("ferry.db").display()),
        schema: None,
    }];
    match postgres_schema().await {
        Ok(db) => dbs.push(db),
        Err(e) => println!("PostgreSQL: skipped ({e:#})"),
    }
    dbs
}

/// The databases `BENCH_BACKENDS` selects, each with its own directory under `dir` and the URL
/// a node should use (a SQLite file there, or the fresh PostgreSQL schema). Unselected ones are
/// cleaned up at once.
pub(crate) async fn selected_databases(
    dir: &std::path::Path,
) -> anyhow::Result<Vec<(Database, std::path::PathBuf, String)>> {
    let mut out = Vec::new();
    for db in databases(dir).await {
        if !selected(db.name) {
            db.cleanup().await;
            continue;
        }
        let sub = dir.join(db.name);
        std::fs::create_dir_all(&sub)?;
        let url = if db.name == "sqlite" {
            format!("sqlite://{}", sub.join("ferry.db").display())
        } else {
            db.url.clone()
        };
        out.push((db, sub, url));
    }
    Ok(out)
}

/// The number in environment variable `name` (a benchmark's knob), or `default` when it is
/// unset or not a number.
pub(crate) fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Only the backends named in `BENCH_BACKENDS` (comma-separated), when it is set.
pub(crate) fn selected(name: &str) -> bool {
    match std::env::var("BENCH_BACKENDS") {
        Ok(list) => list.split(',').any(|b| b.trim() == name),
        Err(_) => true,
    }
}

async fn postgres_schema() -> anyhow::Result<Database> {
    let admin_url =
        std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| POSTGRES_DEFAULT_URL.to_owned());
    // The URL is not echoed: it may hold a password.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&admin_url)
        .await
        .with_context(|| format!("cannot connect to {POSTGRES_URL_VAR} or the local default"))?;
    let name = format!("bench_{}_{}", std::process::id(), epoch_ns() % 1_000_000_000);
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&pool)
        .await
        .context("creating a schema")?;
    pool.close().await;
    let separator = if admin_url.contains('?') { '&' } else { '?' };
    Ok(Database {
        name: "postgres",
        url: format!("{admin_url}{separator}options=-c%20search_path%3D{name}"),
        schema: Some((admin_url, name)),
    })
}

/// The database's own limit for the node's write pattern: one 800-byte row per transaction,
/// from `concurrency` tasks for `budget`, through sqlx with the node's pool shape (SQLite: one
/// writer connection, WAL, `synchronous = NORMAL`; PostgreSQL: 16 connections). A scratch table
/// (SQLite: a file of its own in `dir`) is used and dropped.
pub(crate) async fn commit_rate(
    db: &Database,
    dir: &Path,
    concurrency: usize,
    budget: Duration,
) -> anyhow::Result<f64> {
    use std::str::FromStr;
    const CREATE_SQLITE: &str =
        "CREATE TABLE calib (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)";
    const CREATE_PG: &str = "CREATE TABLE calib (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)";
    const INSERT: &str = "INSERT INTO calib (body) VALUES ($1)";
    let body = "x".repeat(800);
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    macro_rules! hammer {
        ($pool:expr) => {{
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (pool, body, count) = ($pool.clone(), body.clone(), count.clone());
                tasks.push(tokio::spawn(async move {
                    while start.elapsed() < budget {
                        let mut tx = pool.begin().await?;
                        sqlx::query(INSERT).bind(&body).execute(&mut *tx).await?;
                        tx.commit().await?;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), sqlx::Error>(())
                }));
            }
            for task in tasks {
                task.await??;
            }
            start.elapsed()
        }};
    }
    let elapsed = if db.name == "sqlite" {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            dir.join("calibration.db").display()
        ))?
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10));
        let pool =
            sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        sqlx::query(CREATE_SQLITE).execute(&pool).await?;
        let elapsed = hammer!(pool);
        pool.close().await;
        elapsed
    } else {
        let pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(16).connect(&db.url).await?;
        sqlx::query(CREATE_PG).execute(&pool).await?;
        let elapsed = hammer!(pool);
        sqlx::query("DROP TABLE calib").execute(&pool).await?;
        pool.close().await;
        elapsed
    };
    Ok(count.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

/// Runs one `SELECT COUNT(*)`-like scalar query on the database, on a connection of its own
/// (for figures no `db` function exposes).
pub(crate) async fn scalar(url: &str, sql: &'static str) -> anyhow::Result<i64> {
    if url.starts_with("sqlite:") {
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await?;
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await?;
        pool.close().await;
        Ok(n)
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await?;
        pool.close().await;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// The settings of a benchmark node: the federation tests' (dev mode, open sign-ups, short
/// retries) on `database_url`, with the production key pool size.
pub(crate) fn node_env(domain: &str, listen: &str, database_url: &str, dir: &Path) -> Env {
    let mut env = ferry_federation_tests::test_env(domain, dir);
    env.insert("FERRY_LISTEN".to_owned(), listen.to_owned());
    env.insert("FERRY_DATABASE_URL".to_owned(), database_url.to_owned());
    env.remove("FERRY_KEY_POOL_SIZE");
    Env(env)
}

/// Configuration variables for a node.
pub(crate) struct Env(pub HashMap<String, String>);

impl Env {
    /// Sets one variable.
    pub(crate) fn set(mut self, key: &str, value: &str) -> Env {
        self.0.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// A node running in this process.
pub(crate) struct InProcessNode {
    pub state: AppState,
    pub addr: SocketAddr,
    pub domain: String,
    task: JoinHandle<()>,
}

impl InProcessNode {
    /// `http://127.0.0.1:port`, where it listens.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the node and waits (at most 10 s) for it to close its database.
    pub(crate) async fn stop(self) {
        shutdown(&self.state);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Starts a node in this process on a free port. Its domain is `domain`, or `localhost:port`
/// when `None`; `env` gets `FERRY_DOMAIN` and `FERRY_LISTEN` filled in.
pub(crate) async fn start_in_process(
    domain: Option<&str>,
    database_url: &str,
    dir: &Path,
    extra: &[(&str, &str)],
) -> anyhow::Result<InProcessNode> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let domain = domain.map_or_else(|| format!("localhost:{}", addr.port()), str::to_owned);
    let mut env = node_env(&domain, &addr.to_string(), database_url, dir);
    for (k, v) in extra {
        env = env.set(k, v);
    }
    let env = env.0;
    let config = Config::from_parts(None, &|name| env.get(name).cloned())?;
    let server = Server::from_listener(config, listener).await?;
    let state = server.state();
    let task = tokio::spawn(async move {
        if let Err(e) = server.run().await {
            println!("node stopped with an error: {e:#}");
        }
    });
    Ok(InProcessNode { state, addr, domain, task })
}

/// Logs of in-process nodes go to stderr when `FERRY_LOG` is set (e.g. `FERRY_LOG=warn`);
/// otherwise nothing is logged.
pub(crate) fn init_logs() {
    if std::env::var_os("FERRY_LOG").is_some() {
        ferry_node::telemetry::init(ferry_node::config::LogFormat::Text);
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for a benchmark).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real `ferry serve` process.
pub(crate) struct ProcessNode {
    child: Child,
    /// Its pid, for `/proc`.
    pub pid: u32,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// `http://localhost:port`.
    pub base: String,
    /// `localhost:port`.
    pub domain: String,
    log: PathBuf,
}

impl ProcessNode {
    /// The last lines of the node's log, for a failure message.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Kills the node (SIGKILL; SQLite's WAL and PostgreSQL both survive that).
    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The release `ferry` binary next to this benchmark (target/release/ferry).
pub(crate) fn ferry_release_binary() -> anyhow::Result<PathBuf> {
    ferry_federation_tests::ferry_binary().context(
        "the benchmarks run the real node: build it first with \
         `cargo build --release -p ferry-node --bin ferry`",
    )
}

/// Prints a warning when target/release/ferry is older than the node's sources (it would
/// measure old code).
pub(crate) fn warn_if_stale() -> anyhow::Result<()> {
    let binary = ferry_release_binary()?;
    let built = std::fs::metadata(&binary)?.modified()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest = None;
    let mut pending: Vec<PathBuf> =
        ["node/src", "protocol/src", "migrations"].iter().map(|d| root.join(d)).collect();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, path));
            }
        }
    }
    if let Some((modified, path)) = newest
        && modified > built
    {
        println!(
            "WARNING: {} is older than {} (changed since the build): rebuild it with \
             `cargo build --release -p ferry-node --bin ferry`, or these figures are for old code",
            binary.display(),
            path.display()
        );
    }
    Ok(())
}

/// Starts `ferry serve` on `localhost:port` (a free port when `None`) with `database_url`,
/// logging warnings only, and waits until it answers.
pub(crate) async fn start_process(
    database_url: &str,
    dir: &Path,
    port: Option<u16>,
) -> anyhow::Result<ProcessNode> {
    start_process_with(database_url, dir, port, &[]).await
}

/// `start_process` with `extra` settings in the node's environment.
pub(crate) async fn start_process_with(
    database_url: &str,
    dir: &Path,
    port: Option<u16>,
    extra: &[(&str, String)],
) -> anyhow::Result<ProcessNode> {
    let binary = ferry_release_binary()?;
    let port = port.unwrap_or_else(free_port);
    let domain = format!("localhost:{port}");
    let mut env =
        node_env(&domain, &format!("127.0.0.1:{port}"), database_url, dir).set("FERRY_LOG", "warn");
    // Experiments: delivery settings and glibc malloc tunables pass through to the node.
    for (name, value) in std::env::vars() {
        if name.starts_with("FERRY_DELIVERY_") || name.starts_with("MALLOC_") {
            env = env.set(&name, &value);
        }
    }
    for (name, value) in extra {
        env = env.set(name, value);
    }
    let log = dir.join(format!("ferry-{port}.log"));
    let child = Command::new(binary)
        .arg("serve")
        .env_clear()
        .envs(env.0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting ferry")?;
    let node =
        ProcessNode { pid: child.id(), child, port, base: format!("http://{domain}"), domain, log };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = client
            .get(format!("http://127.0.0.1:{port}/api/v1/instance"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return Ok(node);
        }
        if Instant::now() > deadline {
            bail!("ferry did not answer within 60 s:\n{}", node.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Client API

/// Registers an app and returns its client-credentials token (what sign-ups need).
pub(crate) async fn app_token(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let app: Value = client
        .post(format!("{base}/api/v1/apps"))
        .json(&json!({ "client_name": "bench", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write follow push" }))
        .send()
        .await?
        .json()
        .await?;
    let token: Value = client
        .post(format!("{base}/oauth/token"))
        .json(&json!({ "grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"], "scope": "read write follow push" }))
        .send()
        .await?
        .json()
        .await?;
    token["access_token"].as_str().map(str::to_owned).context("no app token")
}

/// Signs `username` up through the client API; returns the user's bearer token.
pub(crate) async fn sign_up(
    client: &reqwest::Client,
    base: &str,
    app_token: &str,
    username: &str,
) -> anyhow::Result<String> {
    let res = client
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(app_token)
        .json(&json!({ "username": username, "password": PASSWORD, "agreement": true, "locale": "en" }))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("sign-up of {username}: {status} {body}");
    }
    body["access_token"].as_str().map(str::to_owned).context("no user token")
}

// ---------------------------------------------------------------------------------------------
// /proc

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB; `None` is this process.
pub(crate) fn proc_status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// User + system CPU seconds of a process (`None` is this process), from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(text) = std::fs::read_to_string(path) else { return 0.0 };
    // Fields after the parenthesised command name start at field 3 (state); utime and stime
    // are fields 14 and 15, in clock ticks (100 per second on Linux).
    let Some((_, rest)) = text.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Context switches (voluntary and involuntary) of all threads of a process so far (`None`
/// is this process). Threads that have exited are not counted.
pub(crate) fn context_switches(pid: Option<u32>) -> u64 {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let Ok(tasks) = std::fs::read_dir(dir) else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// PostgreSQL's count of committed transactions in the current database (every statement run
/// outside an explicit transaction counts as one). Statistics lag by up to a second.
pub(crate) async fn pg_commits(url: &str) -> Option<i64> {
    if !url.starts_with("postgres") {
        return None;
    }
    scalar(url, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        .await
        .ok()
}

/// Waits (at most `max`) until a process has used under 5 % of a core for half a second, so
/// that background start-up work (the key pool) does not land in a measurement.
pub(crate) async fn wait_idle(pid: Option<u32>, max: Duration) {
    let deadline = Instant::now() + max;
    let mut last = cpu_seconds(pid);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_seconds(pid);
        if now - last < 0.025 {
            return;
        }
        last = now;
    }
}

/// Mebibytes from KiB.
pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub(crate) use ferry_federation_tests::{RemoteActor, store_remote_follow};

/// Signs up a local account `reader` that follows `count` remote actors, which live at
/// `http://127.0.0.1:1/users/rN` (nothing listens there; nothing is fetched) with the public
/// keys `pems[N % pems.len()]`. Returns each actor's URL and row id.
pub(crate) async fn reader_following(
    state: &AppState,
    count: usize,
    pems: &[String],
) -> anyhow::Result<Vec<(String, i64)>> {
    let reader = ferry_node::services::accounts::create(
        state,
        ferry_node::services::accounts::CreateAccount {
            username: "reader".to_owned(),
            password: PASSWORD.to_owned(),
            email: None,
            admin: false,
        },
    )
    .await?;
    let mut actors = Vec::with_capacity(count);
    let mut tx = state.db.begin().await?;
    for n in 0..count {
        let ap_id = format!("http://127.0.0.1:1/users/r{n}");
        let remote = RemoteActor {
            ap_id: &ap_id,
            username: format!("r{n}"),
            domain: "127.0.0.1:1",
            shared_inbox: "http://127.0.0.1:1/inbox".to_owned(),
            public_key_pem: pems[n % pems.len()].clone(),
        };
        let id = store_remote_follow(&mut tx, &state.db, remote, reader.id, false).await?;
        actors.push((ap_id, id));
    }
    tx.commit().await?;
    Ok(actors)
}

/// A remote actor's document as Mastodon serves it, the parts a node reads: `id`, its
/// `preferredUsername`, inboxes and key (`{id}#main-key`).
pub(crate) fn person_document(
    id: &str,
    name: &str,
    shared_inbox: &str,
    public_pem: &str,
) -> serde_json::Value {
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": "Person",
        "preferredUsername": name,
        "inbox": format!("{id}/inbox"),
        "endpoints": { "sharedInbox": shared_inbox },
        "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": public_pem },
    })
}
