//! B1, inbox ingest (docs/benchmarks.md, performance.md §10): signed `Create(Note)` POSTs to
//! `/inbox` from 1,000 known remote actors, each note stored and fanned out to a local home
//! timeline, measured against the one-core RSA verify rate and a bare HTTP POST ceiling
//! measured in the same run. The result is performance.md's metric: the highest rate an
//! open-loop ramp is accepted at with p99 ≤ 50 ms and no errors.
//!
//! `cargo bench -p ferry-federation-tests --bench inbox`; `INBOX_COLD=1` runs performance.md's
//! second variant, where 5 % of the activities come from actors the node has never seen, whose
//! keys it fetches from a sink.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use common::{Percentiles, cpu_seconds, ms, verdict};
use ferry_node::federation::ingest::{SLOW_BATCH, WriterStats};
use ferry_protocol::signatures::{PrivateKey, sign_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// Remote actors that send activities.
const ACTORS: usize = 1_000;
/// Distinct RSA keys among them (generating 1,000 keys would take 90 s of CPU; every actor
/// still has its own key id, so the node parses and caches 1,000 keys).
const KEYS: usize = 16;
/// Activities signed before the timed phases; the first `ACTORS` warm the key cache up.
/// `INBOX_CORPUS` sets another count: fewer sign sooner where signing is slow, if the node
/// will not use them all (each backend's run starts again at the corpus's beginning). A node
/// saturating at C activities/s uses about 27 C: 6 s closed loop and seven 3 s ramp steps.
const CORPUS: usize = 720_000;
/// Runs of the bare HTTP ceiling; the best one is the limit.
const BARE_RUNS: usize = 3;
/// Activities sent one at a time after the warm-up, for the uncontended latency.
const PROBE: usize = 300;
/// Closed-loop connections of the warm-up and the database calibration.
const CONCURRENCY: usize = 64;
/// The closed-loop phase per backend: connections and longest duration. Its rate, C, is where
/// the open-loop ramp starts from.
const SATURATION: (usize, Duration) = (64, Duration::from_secs(6));
/// The ramp: offered rates as fractions of C, the first and the step between two, each offered
/// for `RAMP_STEP`; it stops at the first step with p99 over `RAMP_STOP` or an error.
const RAMP_FROM: f64 = 0.7;
const RAMP_BY: f64 = 0.1;
const RAMP_STEP: Duration = Duration::from_secs(3);
const RAMP_STOP: Duration = Duration::from_millis(100);
/// Keep-alive connections per generator thread in the ramp, opened before each step: a request
/// due when all are busy waits for one, and that wait counts in its latency (measured from when
/// it was due). Opening connections while requests are due instead, when a stall left them all
/// busy, overflowed the listener's accept queue (1,024 at the time) and its refused handshakes
/// came back a second later: the generator's own storm, not the node's latency.
const OPEN_CONNECTIONS: usize = 256;
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

impl SignedPost {
    /// Replaces `request` with this POST as raw HTTP/1.1.
    fn write_request(&self, request: &mut Vec<u8>) {
        request.clear();
        write!(
            request,
            "POST /inbox HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Type: application/activity+json\r\n\
             Date: {}\r\nDigest: {}\r\nSignature: {}\r\nContent-Length: {}\r\n\r\n",
            self.date,
            self.digest,
            self.signature,
            self.body.len()
        )
        .expect("writing to a Vec");
        request.extend_from_slice(&self.body);
    }
}

fn actor_url(n: usize) -> String {
    format!("{REMOTE}/users/r{n}")
}

/// In the cold-key variant, one activity in `COLD_EVERY` from `MIXED_FROM` on (a `Create`)
/// comes from an actor of its own that the node has never seen: 5 %, as performance.md's
/// second variant has.
const COLD_EVERY: usize = 20;

/// Who sends activity `n`: one of the `ACTORS` known remote actors, or, in the cold-key variant
/// (`sink` is the key sink's base URL), a new actor on the sink.
fn sender(n: usize, sink: Option<&str>) -> String {
    match sink {
        Some(sink) if n >= MIXED_FROM && n % COLD_EVERY == 2 => format!("{sink}/users/c{n}"),
        _ => actor_url(n % ACTORS),
    }
}

/// The key activity `n` is signed with (the sink serves the same one for a new actor).
fn key_index(n: usize) -> usize {
    (n % ACTORS) % KEYS
}

/// The key sink of the cold-key variant: serves the document of actor `c{n}`, with activity
/// `n`'s key, and counts the documents it served.
struct KeySink {
    base: String,
    public_pems: Vec<String>,
    served: AtomicUsize,
}

impl KeySink {
    async fn start(keys: &[PrivateKey]) -> anyhow::Result<Arc<KeySink>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sink = Arc::new(KeySink {
            base: format!("http://{}", listener.local_addr()?),
            public_pems: keys.iter().map(PrivateKey::public_key_pem).collect(),
            served: AtomicUsize::new(0),
        });
        let app = Router::new().route("/users/{name}", get(cold_actor)).with_state(sink.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(sink)
    }
}

/// A new actor's document, as Mastodon serves it (the parts the node reads).
async fn cold_actor(
    State(sink): State<Arc<KeySink>>,
    Path(name): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(n) = name.strip_prefix('c').and_then(|n| n.parse::<usize>().ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    sink.served.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}/users/{name}", sink.base);
    let shared_inbox = format!("{}/inbox", sink.base);
    let document =
        common::person_document(&id, &name, &shared_inbox, &sink.public_pems[key_index(n)]);
    ([(axum::http::header::CONTENT_TYPE, "application/activity+json")], document.to_string())
        .into_response()
}

/// Activities before this one are all `Create`s: the warm-up's and the one-at-a-time probe's.
const MIXED_FROM: usize = ACTORS + PROBE;
/// How far back (in activities) an `Announce` reaches for its note, so that the note was sent
/// well before it.
const INTERACTION_LAG: usize = 2_000;
/// The local account's notes that `Like`s are of (`local_note`), stored before the run with
/// ids 1 to `LOCAL_NOTES`.
const LOCAL_NOTES: i64 = 1_000;

/// Local note `id`'s URL, as the node writes it in dev mode (`populate` checks).
fn local_note(id: i64) -> String {
    format!("http://{DOMAIN}/notes/{id}")
}

/// Activity `n` of the corpus. performance.md's workload: 80 % `Create(Note)` and 20 %
/// `Like`/`Announce` (every fifth activity after `MIXED_FROM`, alternately), or only `Create`s
/// when `mixed` is false. A `Like` is of one of the local account's notes, as real ones are
/// (Mastodon sends a `Like` to the liked note's server only), so its author is notified; an
/// `Announce` is of a remote note sent about `INTERACTION_LAG` activities before, as the
/// booster's followers' servers receive it.
fn activity(
    n: usize,
    epoch: chrono::DateTime<chrono::Utc>,
    mixed: bool,
    sink: Option<&str>,
) -> Vec<u8> {
    // A new actor's activity (n ≡ 2 mod 20) is never an interaction (n ≡ 4 mod 5), nor the
    // note an `Announce` names (n ≡ 0 mod 5).
    if !mixed || n < MIXED_FROM || n % 5 != 4 {
        return create(n, epoch, &sender(n, sink));
    }
    // n - 4 - INTERACTION_LAG is ≡ 0 (mod 5) when INTERACTION_LAG is, so it is a `Create`;
    // early on, a warm-up note.
    let target = (n - 4).checked_sub(INTERACTION_LAG).unwrap_or(n % ACTORS);
    let actor = actor_url(n % ACTORS);
    let published = (epoch + chrono::Duration::milliseconds(n as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let interaction = if (n / 5).is_multiple_of(2) {
        serde_json::json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{actor}#likes/{n}"),
            "type": "Like",
            "actor": actor,
            // A `Like` is activity 10 m + 4, by actor 10 (m mod 100) + 4: a note per 100 likes
            // keeps every (actor, note) pair distinct for a million activities.
            "object": local_note(1 + (n / 1_000) as i64 % LOCAL_NOTES)
        })
    } else {
        let note = format!("{}/statuses/{target}", actor_url(target % ACTORS));
        serde_json::json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{actor}/statuses/{n}/activity"),
            "type": "Announce",
            "actor": actor,
            "published": published,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": [actor_url(target % ACTORS), format!("{actor}/followers")],
            "object": note
        })
    };
    interaction.to_string().into_bytes()
}

/// A Mastodon-shaped `Create(Note)` of about 1 KB by `actor`, unique by `n`, published `n` ms
/// after `epoch` (distinct times: see docs/benchmarks.md on note ids minted from `published`).
fn create(n: usize, epoch: chrono::DateTime<chrono::Utc>, actor: &str) -> Vec<u8> {
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
fn sign_corpus(keys: &[PrivateKey], mixed: bool, sink: Option<&str>) -> Vec<SignedPost> {
    let size: usize = common::env_number("INBOX_CORPUS", CORPUS);
    let url = Url::parse(&format!("http://{DOMAIN}/inbox")).expect("static URL");
    let now = SystemTime::now();
    let epoch = chrono::Utc::now() - chrono::Duration::hours(1);
    let sign = |n: usize| {
        let body = activity(n, epoch, mixed, sink);
        let key_id = format!("{}#main-key", sender(n, sink));
        let key = &keys[key_index(n)];
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
        waiting.push(generator_thread(async move {
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
        }));
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

/// Runs `work` on a generator thread: a thread of its own with a single-threaded runtime, apart
/// from the node's runtime. Its result comes on the returned channel.
fn generator_thread<F>(work: F) -> tokio::sync::oneshot::Receiver<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("generator runtime");
        let _ = done.send(runtime.block_on(work));
    });
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
            self.corpus[(self.offset + i) % self.corpus.len()].write_request(&mut request);
            let sent = Instant::now();
            let outcome = match connected(self.addr, &mut stream).await {
                Ok(stream) => exchange(stream, &request, &mut answer).await,
                Err(e) => Err(e),
            };
            latencies.push(sent.elapsed());
            if outcome.is_err() {
                stream = None;
            }
            tally(outcome, &mut ok, &mut errors);
        }
        (latencies, ok, errors)
    }
}

/// The stream in `slot`, connected first (without Nagle's delay) if there is none.
async fn connected(
    addr: SocketAddr,
    slot: &mut Option<TcpStream>,
) -> Result<&mut TcpStream, String> {
    if slot.is_none() {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        *slot = Some(stream);
    }
    Ok(slot.as_mut().expect("connected above"))
}

/// Counts an answer: 202 is success; anything else is an error, with its message.
fn tally(outcome: Result<(u16, String), String>, ok: &mut u64, errors: &mut Vec<String>) {
    match outcome {
        Ok((202, _)) => *ok += 1,
        Ok((status, body)) => errors.push(format!("{status} {body}")),
        Err(e) => errors.push(format!("transport: {e}")),
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

/// Offers `corpus[offset..offset + rate * budget]` to `/inbox` at `rate` requests a second, open
/// loop (performance.md's B1 workload): each request is due at its own time, whether or not
/// earlier ones were answered, and its latency runs from when it was due, so a node that
/// falls behind shows it in the latencies instead of slowing the generator down.
async fn drive_open(
    addr: SocketAddr,
    corpus: Arc<Vec<SignedPost>>,
    offset: usize,
    rate: f64,
    budget: Duration,
) -> (common::LoadResult, Late) {
    let count = (rate * budget.as_secs_f64()) as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(std::sync::Barrier::new(GENERATOR_THREADS));
    let start = Arc::new(std::sync::OnceLock::new());
    let mut waiting = Vec::with_capacity(GENERATOR_THREADS);
    for _ in 0..GENERATOR_THREADS {
        let pacer = Pacer {
            addr,
            corpus: corpus.clone(),
            offset,
            count,
            rate,
            ready: ready.clone(),
            start: start.clone(),
            next: next.clone(),
        };
        waiting.push(generator_thread(pacer.run()));
    }
    let mut result = common::LoadResult::default();
    let mut late = Late::default();
    for outcome in waiting {
        let (latencies, ok, errors, due) = outcome.await.expect("generator thread");
        result.add(latencies, ok, errors);
        late.due.extend(due);
    }
    result.elapsed = start.get().expect("the threads started").elapsed();
    (result, late)
}

/// When the requests of an open-loop step that took longer than `LATE` were due, from the
/// step's start: whether a step failed by a few stalls or by falling behind throughout.
#[derive(Default)]
struct Late {
    due: Vec<Duration>,
}

/// A request slower than this counts as late (B1's p99 bound).
const LATE: Duration = Duration::from_millis(50);
/// The windows late requests are grouped in.
const LATE_WINDOW: Duration = Duration::from_millis(10);

impl Late {
    /// How many requests were late and in how many windows they were due; nothing if none.
    fn summary(&self) -> Option<String> {
        if self.due.is_empty() {
            return None;
        }
        let windows: std::collections::BTreeSet<u128> =
            self.due.iter().map(|d| d.as_micros() / LATE_WINDOW.as_micros()).collect();
        let first = windows.first().copied().unwrap_or(0) as f64 * LATE_WINDOW.as_secs_f64();
        Some(format!(
            "{} requests over {} ms, due in {} windows of {} ms (the first {first:.2} s into the step)",
            self.due.len(),
            LATE.as_millis(),
            windows.len(),
            LATE_WINDOW.as_millis()
        ))
    }
}

/// One generator thread of an open-loop run: it takes the next request from the shared
/// counter, waits until it is due, and hands it to an idle connection (the most recently used,
/// so that few stay warm), waiting for one if all are busy.
struct Pacer {
    addr: SocketAddr,
    corpus: Arc<Vec<SignedPost>>,
    offset: usize,
    count: usize,
    rate: f64,
    /// Passed once every thread has its connections open.
    ready: Arc<std::sync::Barrier>,
    /// When the first request is due, set by the first thread past `ready`.
    start: Arc<std::sync::OnceLock<Instant>>,
    next: Arc<AtomicUsize>,
}

/// A connection of an open-loop run with its buffers, or none after a transport error.
struct OpenConnection {
    stream: Option<TcpStream>,
    request: Vec<u8>,
    answer: Vec<u8>,
}

/// A connection back from its request, with the request's latency, outcome and due time.
type Answered = (OpenConnection, Duration, Result<(u16, String), String>, Instant);

impl Pacer {
    async fn run(self) -> (Vec<Duration>, u64, Vec<String>, Vec<Duration>) {
        let (mut latencies, mut ok, mut errors) = (Vec::new(), 0u64, Vec::new());
        let mut late = Vec::new();
        let (back, mut answers) = tokio::sync::mpsc::unbounded_channel::<Answered>();
        let mut idle = Vec::with_capacity(OPEN_CONNECTIONS);
        for _ in 0..OPEN_CONNECTIONS {
            let mut stream = None;
            connected(self.addr, &mut stream).await.expect("connect to the node");
            idle.push(OpenConnection {
                stream,
                request: Vec::with_capacity(4096),
                answer: Vec::with_capacity(4096),
            });
        }
        // Blocking is fine here: this thread's runtime has nothing else to run yet.
        self.ready.wait();
        let start = *self.start.get_or_init(|| Instant::now() + Duration::from_millis(5));
        // Every connection is either idle or out with a request.
        let mut record = |(connection, latency, outcome, due): Answered, idle: &mut Vec<_>| {
            if latency > LATE {
                late.push(due.saturating_duration_since(start));
            }
            latencies.push(latency);
            tally(outcome, &mut ok, &mut errors);
            idle.push(connection);
        };
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                break;
            }
            let due = start + Duration::from_secs_f64(i as f64 / self.rate);
            tokio::time::sleep_until(due.into()).await;
            while let Ok(answered) = answers.try_recv() {
                record(answered, &mut idle);
            }
            let mut connection = match idle.pop() {
                Some(c) => c,
                None => {
                    let answered = answers.recv().await.expect("a connection is busy");
                    record(answered, &mut idle);
                    idle.pop().expect("just returned")
                }
            };
            self.corpus[self.offset + i].write_request(&mut connection.request);
            let (addr, back) = (self.addr, back.clone());
            tokio::spawn(async move {
                let outcome = send(addr, &mut connection).await;
                if outcome.is_err() {
                    connection.stream = None;
                }
                let _ = back.send((connection, due.elapsed(), outcome, due));
            });
        }
        while idle.len() < OPEN_CONNECTIONS {
            let answered = answers.recv().await.expect("a connection is busy");
            record(answered, &mut idle);
        }
        (latencies, ok, errors, late)
    }
}

/// Sends `connection.request` on its stream, connecting again first after a transport error.
async fn send(addr: SocketAddr, connection: &mut OpenConnection) -> Result<(u16, String), String> {
    let stream = connected(addr, &mut connection.stream).await?;
    exchange(stream, &connection.request, &mut connection.answer).await
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

/// Stores the remote actors, one local account, its follows of every remote actor and the
/// notes the corpus's `Like`s are of.
async fn populate(state: &ferry_node::state::AppState, keys: &[PrivateKey]) -> anyhow::Result<()> {
    use ferry_node::db;
    let pems: Vec<String> = keys.iter().map(PrivateKey::public_key_pem).collect();
    let actors = common::reader_following(state, ACTORS, &pems).await?;
    // Checked in release builds too: benchmarks build without debug assertions.
    anyhow::ensure!(actors[0].0 == actor_url(0), "the corpus signs as actors that are not stored");
    let reader = db::accounts::by_username(&state.db, "reader")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reader account"))?;
    let now = ferry_node::ids::now_ms() - 3_600_000;
    let mut tx = state.db.begin().await?;
    for id in 1..=LOCAL_NOTES {
        let ap_id = ferry_node::urls::note(&state.config, id).to_string();
        anyhow::ensure!(ap_id == local_note(id), "the corpus likes {} for {ap_id}", local_note(id));
        let note = db::notes::NoteRow {
            id,
            ap_id,
            author_id: reader.actor_id,
            is_local: true,
            visibility: "public".to_owned(),
            content: format!("<p>Local note {id}.</p>"),
            summary: String::new(),
            sensitive: false,
            language: Some("en".to_owned()),
            url: None,
            in_reply_to_ap_id: None,
            in_reply_to_id: None,
            reblog_of_id: None,
            audience: "{}".to_owned(),
            published_at: now + id,
            updated_at: None,
            deleted_at: None,
        };
        db::notes::insert(&mut tx, &note).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One line of the summary.
struct Row {
    backend: &'static str,
    label: String,
    rate: f64,
    p99: Duration,
    errors: u64,
    commits: f64,
    /// Activities answered but not yet stored when the phase's last answer came (the inbox
    /// journal's open records).
    backlog: u64,
    /// Whether the target applies: the closed loop is only the ramp's starting point.
    judged: bool,
}

impl Row {
    /// The target's conditions besides the rate: p99 ≤ 50 ms, no errors, and the node storing
    /// as fast as it answers: at the phase's end no more left to store than 50 ms of its rate
    /// (an inbox that answers from its journal could otherwise answer in time and fall behind).
    fn within_latency(&self) -> bool {
        ms(self.p99) <= 50.0 && self.errors == 0 && self.backlog as f64 <= self.rate * 0.05
    }
}

/// What each phase is reported against, measured once per backend.
struct Calibration {
    /// The database's single-row commit rate.
    commits: f64,
    /// CPU per request of the bare HTTP ceiling, generator included, in µs.
    bare_cpu_us: f64,
    /// The one-core verify rate.
    verify_1: f64,
}

/// Counters read before a timed phase, to report what the phase cost per activity.
struct Meter {
    pg_commits: Option<i64>,
    switches: u64,
    cpu: f64,
    state: ferry_node::state::AppState,
    writer: WriterStats,
}

impl Meter {
    async fn start(url: &str, state: &ferry_node::state::AppState) -> Meter {
        Meter {
            pg_commits: common::pg_commits(url).await,
            switches: common::context_switches(None),
            cpu: cpu_seconds(None),
            state: state.clone(),
            writer: state.ingest.stats(),
        }
    }

    /// Prints the phase's rate, latencies and costs per activity, and returns its summary line.
    async fn finish(
        self,
        backend: &'static str,
        url: &str,
        label: &str,
        run: common::LoadResult,
        calibration: &Calibration,
    ) -> Row {
        let &Calibration { commits, bare_cpu_us, verify_1 } = calibration;
        let cpu = cpu_seconds(None) - self.cpu;
        let switches = common::context_switches(None) - self.switches;
        let writer = self.state.ingest.stats();
        let backlog = unstored(&self.state);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let backlog_later = unstored(&self.state);
        let pg_after = common::pg_commits(url).await;
        let rate = run.rate();
        let per = |x: f64| x / run.ok.max(1) as f64;
        let p = Percentiles::new(run.latencies);
        println!(
            "  {label}: {} accepted in {:.2} s = {rate:.0}/s ({:.0} % of the commit limit); {} errors; {}",
            run.ok,
            run.elapsed.as_secs_f64(),
            rate / commits * 100.0,
            run.errors,
            p.summary()
        );
        for e in &run.error_samples {
            println!("    error: {e}");
        }
        let pg = match (self.pg_commits, pg_after) {
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
        let batches = writer.batches - self.writer.batches;
        println!(
            "    inbox writer: {batches} batches, {:.1} jobs each, {} over {} ms",
            (writer.jobs - self.writer.jobs) as f64 / batches.max(1) as f64,
            writer.slow - self.writer.slow,
            SLOW_BATCH.as_millis()
        );
        println!(
            "    answered, not yet stored: {backlog} at the phase's end (limit {:.0}), {backlog_later} 1.5 s later",
            rate * 0.05
        );
        Row {
            backend,
            label: label.to_owned(),
            rate,
            p99: p.at(99.0),
            errors: run.errors,
            commits,
            backlog,
            judged: true,
        }
    }
}

/// Activities the node answered and has not stored yet (none without an inbox journal).
fn unstored(state: &ferry_node::state::AppState) -> u64 {
    state.journal.as_ref().map_or(0, ferry_node::federation::journal::Journal::open_records)
}

/// The one-core raw verify rate, the best of three 1-second runs, printed after `what`: as for
/// the bare HTTP ceiling, one run on this shared machine can come out a fifth below the others.
fn best_verify_rate(what: &str) -> f64 {
    let verifies: Vec<f64> =
        (0..3).map(|_| common::rsa_verify_rate(1, Duration::from_secs(1))).collect();
    let best = verifies.iter().copied().fold(0.0, f64::max);
    let runs: Vec<String> = verifies.iter().map(|v| format!("{v:.0}")).collect();
    println!("{what}, best of 3 runs ({}/s): {best:.0}/s", runs.join(", "));
    best
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_logs();
    println!(
        "B1 inbox ingest: {ACTORS} remote actors; a closed loop over {} connections, then an open-loop ramp",
        SATURATION.0
    );

    let verify_1 = best_verify_rate("raw RSA-2048 verify, one core (pre-parsed key)");

    let started = Instant::now();
    let keys = common::generate_keys(KEYS);
    // `INBOX_MIX=0`: only `Create`s, as until session 26.
    let mixed = common::env_number("INBOX_MIX", 20u32) > 0;
    // `INBOX_COLD=1`: performance.md's second variant, 5 % of the activities from new actors.
    let sink = if common::env_number("INBOX_COLD", 0u32) > 0 {
        Some(KeySink::start(&keys).await?)
    } else {
        None
    };
    let corpus = Arc::new(sign_corpus(&keys, mixed, sink.as_ref().map(|s| s.base.as_str())));
    println!(
        "corpus: {} signed activities ({}{}), {} bytes each on average, signed in {:.1} s before timing",
        corpus.len(),
        if mixed {
            "from the 1,301st, every fifth a Like of a local note or an Announce of an earlier remote note, alternately"
        } else {
            "all Create(Note)"
        },
        if sink.is_some() {
            "; cold keys: from the 1,301st, one in 20 a Create by an actor of its own, never seen, whose document a sink serves"
        } else {
            ""
        },
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
    let limit_before = verify_1.min(bare_rate);

    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for (db, sub, url) in common::selected_databases(dir.path()).await? {
        let commits = common::commit_rate(&db, &sub, CONCURRENCY, Duration::from_secs(3)).await?;
        // `INBOX_JOURNAL_DIR` puts the node's inbox journal there (`off` switches it off), for
        // comparisons; by default the node's own default applies.
        let journal = std::env::var("INBOX_JOURNAL_DIR").ok();
        let extra: Vec<(&str, &str)> =
            journal.iter().map(|dir| ("FERRY_INBOX_JOURNAL_DIR", dir.as_str())).collect();
        let node = common::start_in_process(Some(DOMAIN), &url, &sub, &extra).await?;
        populate(&node.state, &keys).await?;
        common::wait_idle(None, Duration::from_secs(10)).await;
        let inbox = node.addr;

        let warm =
            drive(inbox, corpus.clone(), 0, ACTORS, CONCURRENCY, Duration::from_secs(60)).await;
        let probe = drive(inbox, corpus.clone(), ACTORS, PROBE, 1, Duration::from_secs(30)).await;
        let notes_before = common::scalar(&url, "SELECT COUNT(*) FROM notes").await.unwrap_or(0);
        let served_before = sink.as_ref().map_or(0, |s| s.served.load(Ordering::Relaxed));
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
        let calibration = Calibration { commits, bare_cpu_us, verify_1 };
        let mut offset = ACTORS + PROBE;
        let (connections, budget) = SATURATION;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let meter = Meter::start(&url, &node.state).await;
        let closed = drive(
            inbox,
            corpus.clone(),
            offset,
            corpus.len().saturating_sub(offset),
            connections,
            budget,
        )
        .await;
        offset += closed.latencies.len();
        let saturation = closed.rate();
        let label = format!("closed loop, {connections} connections");
        let mut reference = meter.finish(db.name, &url, &label, closed, &calibration).await;
        reference.judged = false;
        rows.push(reference);

        // The ramp: the highest step accepted with p99 ≤ 50 ms and no errors is the result.
        let (mut best, mut first_failed): (Option<Row>, Option<Row>) = (None, None);
        let mut factor = RAMP_FROM;
        loop {
            let rate = saturation * factor;
            let count = (rate * RAMP_STEP.as_secs_f64()) as usize;
            if offset + count > corpus.len() {
                println!(
                    "  the ramp stops at {:.0} % of the closed loop's rate: the corpus has {} activities left \
                     (INBOX_CORPUS sets its size)",
                    factor * 100.0,
                    corpus.len() - offset
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let meter = Meter::start(&url, &node.state).await;
            let (run, late) = drive_open(inbox, corpus.clone(), offset, rate, RAMP_STEP).await;
            offset += count;
            let label = format!("open loop, {rate:.0}/s offered ({:.0} %)", factor * 100.0);
            let row = meter.finish(db.name, &url, &label, run, &calibration).await;
            if let Some(late) = late.summary() {
                println!("    late: {late}");
            }
            let (p99, errors) = (row.p99, row.errors);
            if !row.within_latency() {
                first_failed.get_or_insert(row);
            } else if best.as_ref().is_none_or(|b| row.rate > b.rate) {
                best = Some(row);
            }
            if p99 > RAMP_STOP || errors > 0 {
                break;
            }
            factor += RAMP_BY;
        }
        // Without a step within the latency target, the first step stands for the ramp (and
        // fails); without any step, the corpus was too small to ramp at all.
        let ramp = match (best, first_failed) {
            (Some(row), _) => Some((row, "best step")),
            (None, Some(row)) => Some((row, "no step within p99 50 ms; the first")),
            (None, None) => None,
        };
        if let Some((mut row, which)) = ramp {
            row.label = format!("open-loop ramp, {which} ({})", row.label);
            row.errors += warm.errors;
            rows.push(row);
        }
        let notes = common::scalar(&url, "SELECT COUNT(*) FROM notes").await.unwrap_or(-1);
        let feed = common::scalar(&url, "SELECT COUNT(*) FROM home_feed").await.unwrap_or(-1);
        let likes = common::scalar(&url, "SELECT COUNT(*) FROM favourites").await.unwrap_or(-1);
        let notified =
            common::scalar(&url, "SELECT COUNT(*) FROM notifications").await.unwrap_or(-1);
        println!(
            "  stored: {notes} notes ({} in the timed phases), {feed} home-timeline rows, \
             {likes} likes, {notified} notifications",
            notes - notes_before
        );
        if let Some(sink) = &sink {
            // Every remote actor but the known ones (`REMOTE`) is one of the sink's.
            let new_actors = common::scalar(
                &url,
                "SELECT COUNT(*) FROM actors WHERE NOT is_local AND ap_id NOT LIKE 'http://127.0.0.1:1/%'",
            )
            .await
            .unwrap_or(-1);
            println!(
                "  cold keys: {new_actors} new actors stored, {} actor documents served by the sink",
                sink.served.load(Ordering::Relaxed) - served_before
            );
        }
        node.stop().await;
        db.cleanup().await;
    }

    // Measured again: all three runs before can come out low together (seen: 35,458/s where
    // the same machine's other runs gave 49,400-54,700/s), and a low limit flatters the ratio,
    // so the limit takes the higher of the two.
    println!();
    let verify_after = best_verify_rate("raw RSA-2048 verify again, after the phases");
    let verify = verify_1.max(verify_after);
    let limit = verify.min(bare_rate);
    if limit > limit_before {
        println!(
            "  the limit is {limit:.0}/s instead of {limit_before:.0}/s (the higher verify rate)"
        );
    }
    println!(
        "\nB1 summary (limit = min(one-core raw verify {verify:.0}/s, bare HTTP {bare_rate:.0}/s) = {limit:.0}/s)"
    );
    println!(
        "{:<9} {:>10} {:>10} {:>7} {:>9} {:>7} {:>10}  {:<16} phase (target: the ramp's best step >= 30 % \
         of the limit, floor 15 %, with p99 <= 50 ms and 0 errors)",
        "backend", "accepted/s", "limit/s", "ratio", "p99 ms", "errors", "commits/s", "verdict"
    );
    for row in rows {
        let ratio = row.rate / limit;
        let judged = if !row.judged {
            "reference"
        } else if row.within_latency() && (0.15..0.30).contains(&ratio) {
            "FAIL (floor met)"
        } else {
            verdict(row.within_latency() && ratio >= 0.30)
        };
        println!(
            "{:<9} {:>10.0} {:>10.0} {:>6.1}% {:>9.1} {:>7} {:>10.0}  {judged:<16} {}",
            row.backend,
            row.rate,
            limit,
            ratio * 100.0,
            ms(row.p99),
            row.errors,
            row.commits,
            row.label
        );
    }
    Ok(())
}
