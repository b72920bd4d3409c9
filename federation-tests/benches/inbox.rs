//! B1, inbox ingest (docs/benchmarks.md, performance.md §10): signed `Create(Note)` POSTs to
//! `/inbox` from 1,000 known remote actors, each note stored and fanned out to a local home
//! timeline, measured against the one-core RSA verify rate and a bare HTTP POST ceiling
//! measured in the same run.
//!
//! `cargo bench -p ferry-federation-tests --bench inbox`

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use common::{Percentiles, cpu_seconds, ms, verdict};
use ferry_protocol::signatures::{PrivateKey, sign_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// Remote actors that send activities.
const ACTORS: usize = 1_000;
/// Distinct RSA keys among them (generating 1,000 keys would take 90 s of CPU; every actor
/// still has its own key id, so the node parses and caches 1,000 keys).
const KEYS: usize = 16;
/// Activities signed before the timed phase; the first `ACTORS` warm the key cache up.
/// `INBOX_CORPUS` sets another count: fewer sign sooner where signing is slow, if the node
/// will not use them all (each backend's run starts again at the corpus's beginning).
const CORPUS: usize = 480_000;
/// Runs of the bare HTTP ceiling; the best one is the limit.
const BARE_RUNS: usize = 3;
/// Activities sent one at a time after the warm-up, for the uncontended latency.
const PROBE: usize = 300;
/// Closed-loop connections of the warm-up and the database calibration.
const CONCURRENCY: usize = 64;
/// Timed phases per backend: closed-loop connections and longest duration. 64 connections
/// saturate the node; 16 show the latency at a lower load.
const PHASES: [(usize, Duration); 2] =
    [(64, Duration::from_secs(10)), (16, Duration::from_secs(8))];
/// The node's domain: fixed, so that one signed corpus serves both backends' nodes.
const DOMAIN: &str = "ferry.bench";
/// Where the remote actors live; nothing listens there, and nothing needs to.
const REMOTE: &str = "http://127.0.0.1:1";

/// One pre-signed inbox POST.
struct SignedPost {
    body: Vec<u8>,
    date: String,
    digest: String,
    signature: String,
}

fn actor_url(n: usize) -> String {
    format!("{REMOTE}/users/r{n}")
}

/// A Mastodon-shaped `Create(Note)` of about 1 KB, unique by `n`, published `n` ms after
/// `epoch` (distinct times: see docs/benchmarks.md on note ids minted from `published`).
fn activity(n: usize, epoch: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let actor = actor_url(n % ACTORS);
    let published = (epoch + chrono::Duration::milliseconds(n as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let content = format!(
        "<p>Note {n}. {}</p>",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. ".repeat(7)
    );
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/activitystreams", { "sensitive": "as:sensitive" }],
        "id": format!("{actor}/statuses/{n}/activity"),
        "type": "Create",
        "actor": actor,
        "published": published,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [format!("{actor}/followers")],
        "object": {
            "id": format!("{actor}/statuses/{n}"),
            "type": "Note",
            "attributedTo": actor,
            "content": content,
            "published": published,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": [format!("{actor}/followers")],
            "sensitive": false
        }
    })
    .to_string()
    .into_bytes()
}

/// Signs `CORPUS` activities (or `INBOX_CORPUS`) on two threads.
fn sign_corpus(keys: &[PrivateKey]) -> Vec<SignedPost> {
    let size: usize = common::env_number("INBOX_CORPUS", CORPUS);
    let url = Url::parse(&format!("http://{DOMAIN}/inbox")).expect("static URL");
    let now = SystemTime::now();
    let epoch = chrono::Utc::now() - chrono::Duration::hours(1);
    let sign = |n: usize| {
        let body = activity(n, epoch);
        let key_id = format!("{}#main-key", actor_url(n % ACTORS));
        let key = &keys[(n % ACTORS) % KEYS];
        let signed = sign_request("POST", &url, Some(&body), &key_id, key, now);
        SignedPost {
            body,
            date: signed.date,
            digest: signed.digest.expect("POSTs have a digest"),
            signature: signed.signature,
        }
    };
    std::thread::scope(|scope| {
        let even = scope.spawn(|| (0..size).step_by(2).map(sign).collect::<Vec<_>>());
        let odd = scope.spawn(|| (1..size).step_by(2).map(sign).collect::<Vec<_>>());
        let (even, odd) = (even.join().expect("signer"), odd.join().expect("signer"));
        let mut all = Vec::with_capacity(size);
        let mut odd = odd.into_iter();
        for post in even {
            all.push(post);
            all.extend(odd.next());
        }
        all
    })
}

/// Threads the load generator runs on, each with a single-threaded runtime of its own, apart
/// from the node's runtime, as remote senders would be.
const GENERATOR_THREADS: usize = 2;

/// POSTs `corpus[offset..offset + count]` (wrapping) to `/inbox` at `addr` over `concurrency`
/// keep-alive connections, closed loop; 202 is success.
///
/// The requests are written as raw HTTP/1.1 and the answers read with `httparse`: the generator
/// shares the node's two cores, and an HTTP client library cost about a quarter of the
/// machine's CPU per activity (session 8's profile), which real senders spend on their own
/// machines. The bare HTTP ceiling is driven by the same generator.
async fn drive(
    addr: SocketAddr,
    corpus: Arc<Vec<SignedPost>>,
    offset: usize,
    count: usize,
    concurrency: usize,
    budget: Duration,
) -> common::LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let threads = GENERATOR_THREADS.min(concurrency);
    let mut waiting = Vec::with_capacity(threads);
    for t in 0..threads {
        let connections = concurrency / threads + usize::from(t < concurrency % threads);
        let (corpus, next) = (corpus.clone(), next.clone());
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("generator runtime");
            let outcomes = runtime.block_on(async move {
                let tasks: Vec<_> = (0..connections)
                    .map(|_| {
                        let load = Load {
                            addr,
                            corpus: corpus.clone(),
                            offset,
                            count,
                            budget,
                            start,
                            next: next.clone(),
                        };
                        tokio::spawn(load.connection())
                    })
                    .collect();
                let mut outcomes = Vec::with_capacity(tasks.len());
                for task in tasks {
                    outcomes.push(task.await.expect("generator connection"));
                }
                outcomes
            });
            let _ = done.send(outcomes);
        });
        waiting.push(result);
    }
    let mut result = common::LoadResult::default();
    for outcomes in waiting {
        for (latencies, ok, errors) in outcomes.await.expect("generator thread") {
            result.add(latencies, ok, errors);
        }
    }
    result.elapsed = start.elapsed();
    result
}

/// One connection of the generator, and the run it takes part in.
struct Load {
    addr: SocketAddr,
    corpus: Arc<Vec<SignedPost>>,
    offset: usize,
    count: usize,
    budget: Duration,
    start: Instant,
    next: Arc<AtomicUsize>,
}

impl Load {
    /// Sends requests until the run is over: latencies, successes and error messages.
    async fn connection(self) -> (Vec<Duration>, u64, Vec<String>) {
        let (mut latencies, mut ok, mut errors) = (Vec::new(), 0u64, Vec::new());
        let mut stream = None;
        let mut request = Vec::with_capacity(4096);
        let mut answer = Vec::with_capacity(4096);
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count || self.start.elapsed() >= self.budget {
                break;
            }
            let post = &self.corpus[(self.offset + i) % self.corpus.len()];
            request.clear();
            write!(
                request,
                "POST /inbox HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Type: application/activity+json\r\n\
                 Date: {}\r\nDigest: {}\r\nSignature: {}\r\nContent-Length: {}\r\n\r\n",
                post.date,
                post.digest,
                post.signature,
                post.body.len()
            )
            .expect("writing to a Vec");
            request.extend_from_slice(&post.body);
            let sent = Instant::now();
            let outcome = match &mut stream {
                Some(stream) => exchange(stream, &request, &mut answer).await,
                None => match TcpStream::connect(self.addr).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        exchange(stream.insert(s), &request, &mut answer).await
                    }
                    Err(e) => Err(format!("connect: {e}")),
                },
            };
            latencies.push(sent.elapsed());
            match outcome {
                Ok((202, _)) => ok += 1,
                Ok((status, body)) => errors.push(format!("{status} {body}")),
                Err(e) => {
                    stream = None;
                    errors.push(format!("transport: {e}"));
                }
            }
        }
        (latencies, ok, errors)
    }
}

/// Writes one request and reads its answer: the status and up to 200 characters of the body.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    answer: &mut Vec<u8>,
) -> Result<(u16, String), String> {
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    answer.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) =
            parsed.parse(answer).map_err(|e| format!("answer: {e}"))?
        {
            let status = parsed.code.unwrap_or(0);
            let length = parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .ok_or("answer without Content-Length")?;
            while answer.len() < head + length {
                read_more(stream, answer).await?;
            }
            let body = String::from_utf8_lossy(&answer[head..head + length]);
            return Ok((status, body.chars().take(200).collect()));
        }
        read_more(stream, answer).await?;
    }
}

async fn read_more(stream: &mut TcpStream, answer: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) => Err("connection closed".to_owned()),
        Ok(n) => {
            answer.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

/// The bare HTTP ceiling: axum on the same machine parsing the same bodies as JSON and
/// answering 202, driven by the same generator.
async fn bare_http(corpus: Arc<Vec<SignedPost>>) -> (common::LoadResult, f64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/inbox",
        post(|body: Bytes| async move {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(_) => StatusCode::ACCEPTED,
                Err(_) => StatusCode::BAD_REQUEST,
            }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let cpu = cpu_seconds(None);
    let result = drive(addr, corpus, 0, usize::MAX, CONCURRENCY, Duration::from_secs(4)).await;
    let cpu = cpu_seconds(None) - cpu;
    server.abort();
    (result, cpu)
}

/// Stores the remote actors, one local account and its follows of every remote actor.
async fn populate(state: &ferry_node::state::AppState, keys: &[PrivateKey]) -> anyhow::Result<()> {
    let pems: Vec<String> = keys.iter().map(PrivateKey::public_key_pem).collect();
    let actors = common::reader_following(state, ACTORS, &pems).await?;
    // Checked in release builds too: benchmarks build without debug assertions.
    anyhow::ensure!(actors[0].0 == actor_url(0), "the corpus signs as actors that are not stored");
    Ok(())
}

struct Row {
    backend: &'static str,
    connections: usize,
    rate: f64,
    p99: Duration,
    errors: u64,
    commits: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_logs();
    println!("B1 inbox ingest: {ACTORS} remote actors, closed loop over 64 then 16 connections");

    // The best of three, as for the bare HTTP ceiling: on this shared machine one run can come
    // out a fifth below the others, and a low limit would flatter the ratio.
    let verifies: Vec<f64> =
        (0..3).map(|_| common::rsa_verify_rate(1, Duration::from_secs(1))).collect();
    let verify_1 = verifies.iter().copied().fold(0.0, f64::max);
    let runs: Vec<String> = verifies.iter().map(|v| format!("{v:.0}")).collect();
    println!(
        "raw RSA-2048 verify, one core (pre-parsed key), best of 3 runs ({}/s): {verify_1:.0}/s",
        runs.join(", ")
    );

    let started = Instant::now();
    let keys = common::generate_keys(KEYS);
    let corpus = Arc::new(sign_corpus(&keys));
    println!(
        "corpus: {} signed Create(Note), {} bytes each on average, signed in {:.1} s before timing",
        corpus.len(),
        corpus.iter().map(|p| p.body.len()).sum::<usize>() / corpus.len(),
        started.elapsed().as_secs_f64()
    );

    // The best of three runs: on a shared machine one run can come out at half the others
    // (seen: 34,000 to 73,000/s within minutes), and a low ceiling would flatter the ratio.
    let mut runs = Vec::new();
    for _ in 0..BARE_RUNS {
        runs.push(bare_http(corpus.clone()).await);
    }
    let rates: Vec<String> = runs.iter().map(|(r, _)| format!("{:.0}", r.rate())).collect();
    let (bare, bare_cpu) = runs
        .into_iter()
        .max_by(|a, b| a.0.rate().total_cmp(&b.0.rate()))
        .expect("at least one run");
    let bare_rate = bare.rate();
    let bare_cpu_us = bare_cpu * 1e6 / bare.ok.max(1) as f64;
    println!(
        "bare HTTP ceiling (axum, JSON parse, 202; same generator), best of {BARE_RUNS} runs ({}/s): \
         {bare_rate:.0}/s, {}; {bare_cpu_us:.0} µs CPU per request (generator included)",
        rates.join(", "),
        Percentiles::new(bare.latencies).summary()
    );
    let limit = verify_1.min(bare_rate);

    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for (db, sub, url) in common::selected_databases(dir.path()).await? {
        let commits = common::commit_rate(&db, &sub, CONCURRENCY, Duration::from_secs(3)).await?;
        let node = common::start_in_process(Some(DOMAIN), &url, &sub, &[]).await?;
        populate(&node.state, &keys).await?;
        common::wait_idle(None, Duration::from_secs(10)).await;
        let inbox = node.addr;

        let warm =
            drive(inbox, corpus.clone(), 0, ACTORS, CONCURRENCY, Duration::from_secs(60)).await;
        let probe = drive(inbox, corpus.clone(), ACTORS, PROBE, 1, Duration::from_secs(30)).await;
        let notes_before = common::scalar(&url, "SELECT COUNT(*) FROM notes").await.unwrap_or(0);
        println!("\n[{}]", db.name);
        println!("  warm-up: {} accepted, {} errors ({:.0}/s)", warm.ok, warm.errors, warm.rate());
        for e in &warm.error_samples {
            println!("    error: {e}");
        }
        println!(
            "  one at a time: {:.0}/s, {}",
            probe.rate(),
            Percentiles::new(probe.latencies).summary()
        );
        println!(
            "  database limit, one 800-byte row per transaction, {CONCURRENCY} tasks, node's pool shape: \
             {commits:.0} commits/s"
        );
        let mut offset = ACTORS + PROBE;
        for (connections, budget) in PHASES {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let pg_before = common::pg_commits(&url).await;
            let switches = common::context_switches(None);
            let cpu = cpu_seconds(None);
            let run = drive(
                inbox,
                corpus.clone(),
                offset,
                corpus.len().saturating_sub(offset),
                connections,
                budget,
            )
            .await;
            offset += run.latencies.len();
            let cpu = cpu_seconds(None) - cpu;
            let switches = common::context_switches(None) - switches;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let pg_after = common::pg_commits(&url).await;
            let rate = run.rate();
            let per = |x: f64| x / run.ok.max(1) as f64;
            let p = Percentiles::new(run.latencies);
            println!(
                "  {connections} connections: {} accepted in {:.2} s = {rate:.0}/s ({:.0} % of the commit limit); \
                 {} errors; {}",
                run.ok,
                run.elapsed.as_secs_f64(),
                rate / commits * 100.0,
                run.errors,
                p.summary()
            );
            for e in &run.error_samples {
                println!("    error: {e}");
            }
            let pg = match (pg_before, pg_after) {
                (Some(before), Some(after)) => {
                    format!("; {:.1} PostgreSQL transactions", per((after - before) as f64))
                }
                _ => String::new(),
            };
            println!(
                "    per activity: {:.0} µs CPU (node + generator; bare HTTP + generator {bare_cpu_us:.0} µs, \
                 one raw verify {:.0} µs), {:.1} context switches{pg}",
                per(cpu * 1e6),
                1e6 / verify_1,
                per(switches as f64)
            );
            rows.push(Row {
                backend: db.name,
                connections,
                rate,
                p99: p.at(99.0),
                errors: run.errors + warm.errors,
                commits,
            });
        }
        let notes = common::scalar(&url, "SELECT COUNT(*) FROM notes").await.unwrap_or(-1);
        let feed = common::scalar(&url, "SELECT COUNT(*) FROM home_feed").await.unwrap_or(-1);
        println!(
            "  stored: {notes} notes ({} in the timed phases), {feed} home-timeline rows",
            notes - notes_before
        );
        node.stop().await;
        db.cleanup().await;
    }

    println!(
        "\nB1 summary (limit = min(one-core raw verify {verify_1:.0}/s, bare HTTP {bare_rate:.0}/s) = {limit:.0}/s)"
    );
    println!(
        "{:<9} {:>6} {:>10} {:>10} {:>7} {:>9} {:>7} {:>10}  target: ratio >= 30 % (floor 15 %), p99 <= 50 ms, 0 errors",
        "backend", "conns", "accepted/s", "limit/s", "ratio", "p99 ms", "errors", "commits/s"
    );
    for row in rows {
        let ratio = row.rate / limit;
        let ok = ratio >= 0.30 && ms(row.p99) <= 50.0 && row.errors == 0;
        println!(
            "{:<9} {:>6} {:>10.0} {:>10.0} {:>6.1}% {:>9.1} {:>7} {:>10.0}  {}",
            row.backend,
            row.connections,
            row.rate,
            limit,
            ratio * 100.0,
            ms(row.p99),
            row.errors,
            row.commits,
            verdict(ok)
        );
    }
    Ok(())
}
