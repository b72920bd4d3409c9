//! The delivery worker: claims due rows from `deliveries`, signs and POSTs them, records the
//! outcome.
//!
//! Many requests are in flight at once (`delivery.max_in_flight`), and several per server: each
//! server has a window that grows by one with every success and halves on 429, 503 or a
//! `Retry-After`, so a slow server gets many parallel requests (not Lemmy's one at a time) and
//! a struggling one is not flooded. Failures retry with exponential backoff until
//! `delivery.give_up_after`; a server that keeps failing is backed off as a whole and resumed
//! when its backoff ends and it answers again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferry_protocol::signatures::sign_request;
use rand::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, Semaphore, mpsc};
use url::Url;

use super::client::OneShot;
use super::one_shot::Answer;
use crate::db::deliveries::{ClaimedDelivery, QueuePosition};
use crate::db::{self, Backend, Db};
use crate::error::AppError;
use crate::ids::now_ms;
use crate::state::{AppState, Signer};

/// How long a claimed delivery stays leased to this worker.
const LEASE_MS: i64 = 60_000;
/// The worker claims more rows once `1 / CLAIM_WHEN` of its capacity (`2 × max_in_flight`
/// rows) is free.
const CLAIM_WHEN: usize = 8;
/// Most acknowledged deliveries recorded in one transaction.
const RECORD_BATCH: usize = 500;
/// How long the first acknowledgement of a batch waits for others. A crash in this window
/// re-sends what it holds (the receivers drop the repeat by its activity id).
const RECORD_WAIT: Duration = Duration::from_millis(10);
/// Consecutive failures after which a whole server is backed off.
const DOMAIN_FAILURE_THRESHOLD: i32 = 3;
/// Followers read per transaction when a deferred fan-out is expanded.
const FANOUT_CHUNK: i64 = 1_000;

/// The result of one attempt.
#[derive(Debug)]
enum Attempt {
    Delivered,
    /// Try again later; `retry_after` from the server if it said.
    Retry {
        error: String,
        retry_after: Option<Duration>,
        server_down: bool,
        /// The server asked us to slow down (429, 503, `Retry-After`).
        throttled: bool,
    },
    /// Never try again (4xx other than 408/429, or an unusable target).
    Permanent(String),
}

/// One server's window: requests in flight, how many may be, and claimed rows waiting.
struct Window {
    in_flight: usize,
    limit: usize,
    waiting: usize,
    wake: Arc<Notify>,
}

/// How a finished request changes its server's window.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Adjust {
    /// Success: one more request may be in flight (additive increase).
    Grow,
    /// 429, 503 or `Retry-After`: halve the window (multiplicative decrease).
    Shrink,
    /// Anything else.
    Keep,
}

/// Per-server in-flight windows.
struct Windows {
    map: Mutex<HashMap<String, Window>>,
    initial: usize,
    max: usize,
}

impl Windows {
    fn entry<'a>(&self, map: &'a mut HashMap<String, Window>, domain: &str) -> &'a mut Window {
        map.entry(domain.to_owned()).or_insert_with(|| Window {
            in_flight: 0,
            limit: self.initial,
            waiting: 0,
            wake: Arc::new(Notify::new()),
        })
    }

    /// A claimed row for `domain` is about to wait for a slot.
    fn enqueue(&self, domain: &str) {
        let mut map = self.map.lock().expect("windows lock");
        self.entry(&mut map, domain).waiting += 1;
    }

    /// Waits for a free slot in `domain`'s window and takes it. Returns whether the server is
    /// busy (other requests to it in flight or waiting), which decides keep-alive.
    async fn acquire(&self, domain: &str) -> bool {
        loop {
            let wake = {
                let mut map = self.map.lock().expect("windows lock");
                let w = self.entry(&mut map, domain);
                if w.in_flight < w.limit {
                    w.in_flight += 1;
                    w.waiting -= 1;
                    return w.in_flight > 1 || w.waiting > 0;
                }
                w.wake.clone()
            };
            let notified = wake.notified();
            tokio::pin!(notified);
            // Registered before re-checking, so a release in between is not missed.
            notified.as_mut().enable();
            {
                let mut map = self.map.lock().expect("windows lock");
                let w = self.entry(&mut map, domain);
                if w.in_flight < w.limit {
                    continue;
                }
            }
            notified.await;
        }
    }

    /// Gives a slot back and adjusts the window. Returns whether the server was `saturated`,
    /// so that the claim loop, which skips such servers, may have rows to claim again.
    fn release(&self, domain: &str, adjust: Adjust) -> bool {
        let mut map = self.map.lock().expect("windows lock");
        let w = self.entry(&mut map, domain);
        let was_saturated = w.waiting >= w.limit;
        w.in_flight -= 1;
        match adjust {
            Adjust::Grow if w.limit < self.max => w.limit += 1,
            Adjust::Shrink => w.limit = (w.limit / 2).max(1),
            _ => {}
        }
        w.wake.notify_waiters();
        // An idle server's window is forgotten, or a fan-out to 50,000 servers would keep
        // 50,000 entries (about 250 bytes each) for ever. A throttled server keeps its smaller
        // window, so that it is not flooded again at the initial size.
        if w.in_flight == 0 && w.waiting == 0 && w.limit >= self.initial {
            map.remove(domain);
        }
        was_saturated
    }

    /// Servers that already have a window's worth of claimed rows waiting: claim none for
    /// them until those move, so a slow server's backlog stays in the database, not in memory
    /// (where it would outlive its lease).
    fn saturated(&self) -> Vec<String> {
        let map = self.map.lock().expect("windows lock");
        map.iter().filter(|(_, w)| w.waiting >= w.limit).map(|(d, _)| d.clone()).collect()
    }

    /// The current window of a server (for tests and benchmarks).
    #[cfg(test)]
    fn limit(&self, domain: &str) -> usize {
        self.map.lock().expect("windows lock").get(domain).map_or(self.initial, |w| w.limit)
    }
}

/// Runs the worker until the node shuts down, on a runtime and threads of its own.
///
/// An RSA-2048 signature costs 300-700 µs of CPU and a fan-out makes one per server. On the
/// node's runtime a fan-out to thousands of servers kept every worker signing, and each API
/// request, inbox POST and database answer queued behind hundreds of signatures (B2 measured
/// API requests at 160 ms median and 493 ms p99 during a fan-out to 10,000 servers). Here the
/// kernel shares the cores between the two runtimes' threads, and a request that wakes the
/// node's runtime gets a core within a time slice.
pub async fn run(state: AppState) {
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let build = move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ferry-deliver")
            .enable_all()
            .build()
    };
    crate::own_runtime::run("ferry-delivery", build, work(state)).await;
}

async fn work(state: AppState) {
    let mut shutdown = state.shutdown.subscribe();
    // Every statement of the worker's own goes through its own connections (PostgreSQL).
    let db = state.db.for_delivery();
    if db.backend() == Backend::Sqlite {
        // One process owns a SQLite file, so leases left by a killed run are stale: free them.
        if let Err(e) = release_all(&db).await {
            tracing::warn!(error = %e, "could not release stale delivery leases");
        }
    }
    let config = &state.config.delivery;
    let global = Arc::new(Semaphore::new(config.max_in_flight));
    let windows = Arc::new(Windows {
        map: Mutex::new(HashMap::new()),
        initial: config.initial_per_domain,
        max: config.max_per_domain,
    });
    // Claimed rows not yet finished, sending or waiting for their server's window.
    let outstanding = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Notify::new());
    let cap = config.max_in_flight * 2;
    // The loop waits for room until this many rows are free.
    let claim_room = (cap / CLAIM_WHEN).max(1);
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_delivered(db.clone(), done_rx));
    let expander = tokio::spawn(expand_fanouts(state.clone(), db.clone()));
    let payloads: Arc<Mutex<HashMap<i64, (i64, Bytes)>>> = Arc::default();
    // Where the last claim ended. Claims resume there while they come back full; a short one
    // means the rest of the queue is read, and the next starts again from the front, where
    // rows released or skipped meanwhile wait.
    let mut resume = QueuePosition::START;

    loop {
        if *shutdown.borrow() {
            break;
        }
        let room = cap.saturating_sub(outstanding.load(Ordering::Acquire));
        // Claim in batches: a claim walks past the rows already leased, so claiming one row
        // per finished delivery cost about as much CPU as the delivery itself.
        if room < claim_room {
            tokio::select! {
                _ = finished.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let now = now_ms();
        let skip = windows.saturated();
        let limit = room.min(1000);
        let after = resume;
        let claimed =
            match db::deliveries::claim_after(&db, now, now + LEASE_MS, limit as i64, &skip, after)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
        resume = match claimed.iter().map(ClaimedDelivery::position).max() {
            Some(last) if claimed.len() == limit => last,
            _ => QueuePosition::START,
        };
        if claimed.is_empty() {
            // Resumed past the end: look again from the front at once.
            if after != QueuePosition::START {
                continue;
            }
            let wait = match db::deliveries::next_due(&db).await {
                Ok(Some(due)) => Duration::from_millis((due - now).clamp(5, 1000) as u64),
                _ => Duration::from_secs(1),
            };
            // A finished request makes rows claimable only when they were skipped for its
            // server's full window. Otherwise it frees nothing to claim, and at the end of a
            // fan-out (every row leased, a couple of thousand requests finishing) a claim per
            // finished request cost more CPU than the requests.
            let window_freed = async {
                if skip.is_empty() {
                    std::future::pending::<()>().await;
                } else {
                    finished.notified().await;
                }
            };
            tokio::select! {
                _ = state.delivery_wake.notified() => {}
                _ = window_freed => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        if let Err(e) = load_payloads(&db, &payloads, &claimed).await {
            tracing::warn!(error = %e, "loading activities failed");
            let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
            let _ = db::deliveries::release(&db, &ids).await;
            continue;
        }
        for delivery in claimed {
            let Some((actor_id, body)) =
                payloads.lock().expect("payload lock").get(&delivery.activity_id).cloned()
            else {
                continue;
            };
            outstanding.fetch_add(1, Ordering::AcqRel);
            windows.enqueue(&delivery.domain);
            let state = state.clone();
            let db = db.clone();
            let windows = windows.clone();
            let global = global.clone();
            let outstanding = outstanding.clone();
            let finished = finished.clone();
            let done_tx = done_tx.clone();
            let task = async move {
                // The server's window first, then a global slot: a slow server waits in its
                // own window without holding slots other servers could use.
                let busy = windows.acquire(&delivery.domain).await;
                let permit = global.acquire_owned().await;
                // Boxed, here and below: a task waiting for its slot then holds a few hundred
                // bytes, not the whole request's state (up to 2 × max_in_flight tasks wait).
                let attempt = Box::pin(attempt(&state, &db, &delivery, actor_id, body, busy)).await;
                drop(permit);
                let adjust = match &attempt {
                    Attempt::Delivered => Adjust::Grow,
                    Attempt::Retry { throttled: true, .. } => Adjust::Shrink,
                    _ => Adjust::Keep,
                };
                let freed_server = windows.release(&delivery.domain, adjust);
                match attempt {
                    Attempt::Delivered => {
                        let _ = done_tx.send(delivery.id);
                    }
                    Attempt::Retry { error, retry_after, server_down, .. } => {
                        Box::pin(retry(&state, &db, &delivery, &error, retry_after, server_down))
                            .await;
                    }
                    Attempt::Permanent(error) => {
                        tracing::info!(inbox = %delivery.inbox, "delivery to {} failed for good: {error}", delivery.inbox);
                        let _ = Box::pin(db::deliveries::mark_failed(
                            &db,
                            delivery.id,
                            delivery.attempts + 1,
                            &error,
                            now_ms(),
                        ))
                        .await;
                    }
                }
                // Wake the loop only when it has something to do: when this row brings the
                // free room up to `claim_room`, or frees a server whose rows it skips. The loop
                // sleeps on a thread of its own; woken by any finished row, it mostly found too
                // little room and slept again (B2: 2,241 sleeps for 10,000 deliveries, 1,290
                // now).
                let left = outstanding.fetch_sub(1, Ordering::AcqRel) - 1;
                if left == cap - claim_room || freed_server {
                    finished.notify_one();
                }
            };
            tokio::spawn(task);
        }
        // Payloads of finished activities need not stay in memory.
        let mut cache = payloads.lock().expect("payload lock");
        if cache.len() > 10_000 {
            cache.clear();
        }
    }
    drop(done_tx);
    let _ = recorder.await;
    let _ = expander.await;
}

/// Expands deferred fan-outs (`outbox::DEFER_FOLLOWERS_ABOVE`) into deliveries, a chunk of
/// followers per transaction, and wakes the claim loop after each chunk, so the first servers
/// are being sent to while the later chunks are queued.
async fn expand_fanouts(state: AppState, db: Db) {
    let mut shutdown = state.shutdown.subscribe();
    // Woken after each commit that may have deferred one. Looking again unwoken covers another
    // node process's fan-outs on a shared PostgreSQL database (one process owns a SQLite file)
    // and errors; an idle look is one read.
    let idle_look = match db.backend() {
        Backend::Postgres => Duration::from_secs(1),
        Backend::Sqlite => Duration::from_secs(60),
    };
    while !*shutdown.borrow_and_update() {
        let wait =
            match db::deliveries::expand_fanout(&db, &state.config.domain, FANOUT_CHUNK, now_ms())
                .await
            {
                Ok(Some(step)) => {
                    if step.queued > 0 {
                        state.delivery_wake.notify_one();
                    }
                    continue;
                }
                Ok(None) => idle_look,
                Err(e) => {
                    tracing::warn!(error = %e, "expanding a fan-out failed; trying again");
                    Duration::from_secs(1)
                }
            };
        tokio::select! {
            _ = state.fanout_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn release_all(db: &Db) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    db::deliveries::release_stale(&mut tx).await?;
    tx.commit().await
}

async fn load_payloads(
    db: &Db,
    cache: &Mutex<HashMap<i64, (i64, Bytes)>>,
    claimed: &[ClaimedDelivery],
) -> Result<(), sqlx::Error> {
    let missing: Vec<i64> = {
        let cache = cache.lock().expect("payload lock");
        let mut ids: Vec<i64> =
            claimed.iter().map(|d| d.activity_id).filter(|id| !cache.contains_key(id)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    for row in db::deliveries::activities(db, &missing).await? {
        cache
            .lock()
            .expect("payload lock")
            .insert(row.id, (row.actor_id, Bytes::from(row.payload)));
    }
    Ok(())
}

async fn signing_key(state: &AppState, db: &Db, actor_id: i64) -> Result<Signer, AppError> {
    state
        .keys
        .signer_or_load(actor_id, || async {
            let mut account = db::accounts::by_actor(db, actor_id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no local account {actor_id}")))?;
            if account.private_key_pem.is_empty() {
                crate::services::accounts::ensure_key(state, actor_id).await?;
                account = db::accounts::by_actor(db, actor_id)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("no local account {actor_id}")))?;
            }
            let actor = db::actors::by_id(db, actor_id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no actor {actor_id}")))?;
            Ok((actor.public_key_id, account.private_key_pem))
        })
        .await
}

async fn attempt(
    state: &AppState,
    db: &Db,
    delivery: &ClaimedDelivery,
    actor_id: i64,
    body: Bytes,
    busy: bool,
) -> Attempt {
    let url = match Url::parse(&delivery.inbox) {
        Ok(url) => url,
        Err(e) => return Attempt::Permanent(format!("bad inbox URL: {e}")),
    };
    if let Err(e) = super::client::check_target(&url, state.config.dev_http) {
        return Attempt::Permanent(e.to_string());
    }
    let (key_id, key) = match signing_key(state, db, actor_id).await {
        Ok(k) => k,
        Err(e) => return Attempt::Permanent(format!("no signing key: {e}")),
    };
    let signed = sign_request("POST", &url, Some(&body), &key_id, &key, SystemTime::now());
    let mut headers = vec![
        ("Content-Type", "application/activity+json"),
        ("Date", signed.date.as_str()),
        ("Signature", signed.signature.as_str()),
    ];
    if let Some(digest) = &signed.digest {
        headers.push(("Digest", digest.as_str()));
    }
    // Keep-alive only where it pays: a busy server reuses connections; a server that gets one
    // delivery now (most of a fan-out) is not left holding an idle connection.
    let answer = match (&state.http_once, busy) {
        (_, true) => send_pooled(&state.http, url, &headers, body).await,
        (OneShot::Proxied(client), false) => send_pooled(client, url, &headers, body).await,
        (OneShot::Direct(client), false) => {
            client.post(&url, &headers, &body).await.map_err(|e| e.to_string())
        }
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            return Attempt::Retry {
                error: format!("request failed: {error}"),
                retry_after: None,
                server_down: true,
                throttled: false,
            };
        }
    };
    let status = answer.status;
    if status.is_success() {
        return Attempt::Delivered;
    }
    let retry_after = answer.retry_after.as_deref().and_then(parse_retry_after);
    let error = format!("HTTP {status}");
    let code = status.as_u16();
    let throttled = code == 429 || code == 503 || retry_after.is_some();
    match code {
        429 => Attempt::Retry {
            error,
            retry_after: retry_after.or(Some(Duration::from_secs(1))),
            server_down: false,
            throttled,
        },
        408 => Attempt::Retry { error, retry_after, server_down: false, throttled },
        500..=599 => Attempt::Retry { error, retry_after, server_down: code != 500, throttled },
        _ => Attempt::Permanent(error),
    }
}

/// Sends through a reqwest client (which writes `Host` itself, as the signer does).
async fn send_pooled(
    client: &reqwest::Client,
    url: Url,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer, String> {
    let mut request = client.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    let retry_after =
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(Answer { status: response.status(), retry_after })
}

fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(SystemTime::now()).ok()
}

/// The delay before attempt number `attempts + 1`: base · 2^attempts, capped, with jitter.
fn backoff(state: &AppState, attempts: i32) -> Duration {
    let config = &state.config.delivery;
    let exp = config.retry_base.as_secs_f64() * 2f64.powi(attempts.clamp(0, 30));
    let capped = exp.min(config.retry_max.as_secs_f64());
    let jitter = rand::thread_rng().gen_range(0.9..1.1);
    Duration::from_secs_f64(capped * jitter)
}

async fn retry(
    state: &AppState,
    db: &Db,
    delivery: &ClaimedDelivery,
    error: &str,
    retry_after: Option<Duration>,
    server_down: bool,
) {
    let attempts = delivery.attempts + 1;
    let now = now_ms();
    let give_up_at = delivery.created_at + state.config.delivery.give_up_after.as_millis() as i64;
    if now >= give_up_at {
        tracing::info!(inbox = %delivery.inbox, attempts, "giving up on delivery to {}: {error}", delivery.inbox);
        let _ = db::deliveries::mark_failed(db, delivery.id, attempts, error, now).await;
        return;
    }
    let delay = retry_after.unwrap_or_else(|| backoff(state, attempts - 1));
    let next = (now + delay.as_millis() as i64).min(give_up_at);
    tracing::debug!(inbox = %delivery.inbox, attempts, "delivery to {} failed ({error}), retrying in {delay:?}", delivery.inbox);
    if let Err(e) = db::deliveries::retry_later(db, delivery.id, attempts, next, error).await {
        tracing::warn!(error = %e, "could not reschedule a delivery");
    }
    // The worker may be sleeping until a later due time (or a lease's end): it looks again.
    state.delivery_wake.notify_one();
    if server_down {
        if let Ok(failures) = db::deliveries::domain_failed(db, &delivery.domain).await
            && failures >= DOMAIN_FAILURE_THRESHOLD
        {
            let pause = backoff(state, failures - DOMAIN_FAILURE_THRESHOLD);
            let _ = db::deliveries::domain_backoff(
                db,
                &delivery.domain,
                now + pause.as_millis() as i64,
            )
            .await;
        }
    } else if let Some(pause) = retry_after {
        let _ =
            db::deliveries::domain_backoff(db, &delivery.domain, now + pause.as_millis() as i64)
                .await;
    }
}

/// Writes successful deliveries in batches, and marks their servers healthy.
async fn record_delivered(db: Db, mut rx: mpsc::UnboundedReceiver<i64>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        // Deliveries finish one by one; a transaction each cost more than the rest of the
        // bookkeeping. Wait briefly for more.
        let gather = tokio::time::sleep(RECORD_WAIT);
        tokio::pin!(gather);
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            tokio::select! {
                received = rx.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break;
                    }
                }
                () = &mut gather => break,
            }
        }
        if let Err(e) = db::deliveries::mark_delivered(&db, &batch, now_ms()).await {
            tracing::warn!(error = %e, "could not record {} deliveries; they will be re-sent", batch.len());
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn windows_grow_on_success_and_halve_when_throttled() {
        let windows = Windows { map: Mutex::new(HashMap::new()), initial: 4, max: 6 };
        for _ in 0..4 {
            windows.enqueue("a.example");
            let _ = windows.acquire("a.example").await;
        }
        // Four in flight fill the window: a fifth waits and the server counts as saturated.
        windows.enqueue("a.example");
        assert_eq!(windows.saturated(), Vec::<String>::new(), "one waiting is below the limit");
        for _ in 0..3 {
            windows.enqueue("a.example");
        }
        assert_eq!(windows.saturated(), vec!["a.example".to_owned()]);
        windows.release("a.example", Adjust::Grow);
        assert_eq!(windows.limit("a.example"), 5);
        windows.release("a.example", Adjust::Shrink);
        assert_eq!(windows.limit("a.example"), 2, "halved at once, even with requests in flight");
        windows.release("a.example", Adjust::Keep);
        windows.release("a.example", Adjust::Keep);
        // Nothing in flight now: a waiter gets a slot without waiting.
        tokio::time::timeout(Duration::from_secs(1), windows.acquire("a.example"))
            .await
            .expect("slot free");
    }

    #[tokio::test]
    async fn idle_windows_are_forgotten_unless_throttled() {
        let windows = Windows { map: Mutex::new(HashMap::new()), initial: 4, max: 6 };
        windows.enqueue("fast.example");
        let _ = windows.acquire("fast.example").await;
        windows.release("fast.example", Adjust::Grow);
        windows.enqueue("slow.example");
        let _ = windows.acquire("slow.example").await;
        windows.release("slow.example", Adjust::Shrink);
        let map = windows.map.lock().expect("windows lock");
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["slow.example"]);
        assert_eq!(map["slow.example"].limit, 2);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "past dates mean no wait"
        );
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        assert!(parse_retry_after(&future).is_some_and(|d| d <= Duration::from_secs(30)));
    }
}
