//! Issue 3's benchmark: an account with 20,000 followers spread over 200 servers moves to
//! another node. Measured: the time from `POST /api/v1/accounts/move` until 99 % of the
//! followers follow the new account, and the requests the old node sends each server.
//! Target: under 60 s; requests per server O(1) for the move itself.
//!
//! The old node A and the new node B are real release `ferry` processes, each with its own
//! SQLite database. The 200 follower servers are lightweight servers in this process that
//! speak the protocol (Mocks, said so: running 200 real nodes does not fit two cores): one
//! listener on 0.0.0.0, each server a distinct loopback address 127.0.1.X, serving its 100
//! actors' documents (one shared RSA key) and an inbox. When a server receives the `Move`, it
//! does what Mastodon's `MoveWorker` does for its local followers: each sends a signed
//! `Follow` of the new account. B verifies each (fetching the follower's key), records the
//! follow and answers with a signed `Accept`.
//!
//! `cargo build --release -p ferry-node --bin ferry && cargo bench -p ferry-federation-tests --bench move`

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::verdict;
use ferry_node::db::Db;
use ferry_protocol::signatures::{PrivateKey, sign_request};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// Follower servers.
const SERVERS: usize = 200;
/// Followers on each.
const PER_SERVER: usize = 100;
/// Share of followers that must follow the new account.
const DONE_SHARE: f64 = 0.99;
/// Follows the fake servers send at once, all together.
const SEND_CONCURRENCY: usize = 512;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(bench())
}

/// The follower servers' shared state.
struct Servers {
    port: u16,
    key: Arc<PrivateKey>,
    public_pem: String,
    client: reqwest::Client,
    sending: Arc<Semaphore>,
    /// Requests received per server (host) and activity type.
    received: Mutex<HashMap<(String, String), u64>>,
    follows_sent: AtomicU64,
    follow_failures: AtomicU64,
}

fn host(i: usize, port: u16) -> String {
    format!("127.0.1.{}:{port}", 1 + i)
}

fn host_of(headers: &HeaderMap) -> String {
    headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn actor(
    State(servers): State<Arc<Servers>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let host = host_of(&headers);
    let id = format!("http://{host}/users/{name}");
    let shared_inbox = format!("http://{host}/inbox");
    let document = common::person_document(&id, &name, &shared_inbox, &servers.public_pem);
    ([(header::CONTENT_TYPE, "application/activity+json")], document.to_string())
}

async fn inbox(State(servers): State<Arc<Servers>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let host = host_of(&headers);
    let activity: Value = serde_json::from_slice(&body).unwrap_or_default();
    let kind = activity["type"].as_str().unwrap_or("?").to_owned();
    *servers.received.lock().expect("lock").entry((host.clone(), kind.clone())).or_default() += 1;
    if kind == "Move" {
        // What Mastodon's MoveWorker does: each local follower of the old account follows
        // the new one.
        let target = activity["target"].as_str().unwrap_or_default().to_owned();
        let servers = servers.clone();
        tokio::spawn(async move { follow_all(servers, host, target).await });
    }
    StatusCode::ACCEPTED
}

async fn follow_all(servers: Arc<Servers>, host: String, target: String) {
    // The target's shared inbox: `…/users/x` → `…/inbox`.
    let Some(base) = target.split("/users/").next() else { return };
    let inbox = url::Url::parse(&format!("{base}/inbox")).expect("inbox URL");
    let mut tasks = Vec::new();
    for i in 0..PER_SERVER {
        let permit = servers.sending.clone().acquire_owned().await.expect("semaphore");
        let (servers, host, target, inbox) =
            (servers.clone(), host.clone(), target.clone(), inbox.clone());
        tasks.push(tokio::spawn(async move {
            let actor = format!("http://{host}/users/u{i}");
            let body = json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{actor}/follows/moved"),
                "type": "Follow",
                "actor": actor,
                "object": target,
            })
            .to_string();
            let signed = sign_request(
                "POST",
                &inbox,
                Some(body.as_bytes()),
                &format!("{actor}#main-key"),
                &servers.key,
                SystemTime::now(),
            );
            let sent = servers
                .client
                .post(inbox)
                .header("Content-Type", "application/activity+json")
                .header("Date", signed.date)
                .header("Digest", signed.digest.unwrap_or_default())
                .header("Signature", signed.signature)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(res) if res.status().is_success() => {
                    servers.follows_sent.fetch_add(1, Ordering::Relaxed)
                }
                _ => servers.follow_failures.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn start_servers() -> anyhow::Result<Arc<Servers>> {
    let key = common::generate_keys(1).pop().ok_or_else(|| anyhow::anyhow!("no key"))?;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
    let servers = Arc::new(Servers {
        port: listener.local_addr()?.port(),
        public_pem: key.public_key_pem(),
        key: Arc::new(key),
        client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?,
        sending: Arc::new(Semaphore::new(SEND_CONCURRENCY)),
        received: Mutex::new(HashMap::new()),
        follows_sent: AtomicU64::new(0),
        follow_failures: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/users/{name}", get(actor))
        .route("/users/{name}/inbox", post(inbox))
        .route("/inbox", post(inbox))
        .with_state(servers.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(servers)
}

async fn followers_of(client: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<u64> {
    let account: Value =
        client.get(format!("{base}/api/v1/accounts/{id}")).send().await?.json().await?;
    Ok(account["followers_count"].as_u64().unwrap_or(0))
}

async fn bench() -> anyhow::Result<()> {
    let total = SERVERS * PER_SERVER;
    println!(
        "Move: {total} followers on {SERVERS} servers (127.0.1.X, in this process) move from node A to node B"
    );
    let sign_2 = common::rsa_sign_rate(2, Duration::from_secs(2));
    println!("raw RSA-2048 sign: {sign_2:.0}/s on two threads");
    common::warn_if_stale()?;
    let servers = start_servers().await?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let dir = tempfile::tempdir()?;
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a)?;
    std::fs::create_dir_all(&dir_b)?;
    let url_a = format!("sqlite://{}", dir_a.join("ferry.db").display());
    let url_b = format!("sqlite://{}", dir_b.join("ferry.db").display());
    let a = common::start_process(&url_a, &dir_a, None).await?;
    let b = common::start_process(&url_b, &dir_b, None).await?;
    let token_a =
        common::sign_up(&client, &a.base, &common::app_token(&client, &a.base).await?, "alice")
            .await?;
    let token_b =
        common::sign_up(&client, &b.base, &common::app_token(&client, &b.base).await?, "alice")
            .await?;

    // A's alice has the followers (stored directly, as if they had followed over time).
    let started = Instant::now();
    let db = Db::connect(&url_a).await?;
    let old = ferry_node::db::actors::by_handle(&db, "alice", &a.domain)
        .await?
        .ok_or_else(|| anyhow::anyhow!("alice not stored on A"))?;
    for s in 0..SERVERS {
        let host = host(s, servers.port);
        let mut tx = db.begin().await?;
        for i in 0..PER_SERVER {
            let ap_id = format!("http://{host}/users/u{i}");
            let remote = common::RemoteActor {
                ap_id: &ap_id,
                username: format!("u{i}"),
                domain: &host,
                shared_inbox: format!("http://{host}/inbox"),
                public_key_pem: servers.public_pem.clone(),
            };
            common::store_remote_follow(&mut tx, &db, remote, old.id, true).await?;
        }
        tx.commit().await?;
    }
    db.close().await;
    println!("stored {total} followers of alice@A in {:.1} s", started.elapsed().as_secs_f64());

    // B's alice names A's as an alias; A's alice moves.
    let new_ap_id = format!("{}/users/alice", b.base);
    let me: Value = client
        .post(format!("{}/api/v1/accounts/alias", b.base))
        .bearer_auth(&token_b)
        .json(&json!({ "also_known_as_uris": [old.ap_id] }))
        .send()
        .await?
        .json()
        .await?;
    let new_id = me["id"].as_str().unwrap_or_default().to_owned();
    let cpu_before = (common::cpu_seconds(Some(a.pid)), common::cpu_seconds(Some(b.pid)));
    let t0 = Instant::now();
    let res = client
        .post(format!("{}/api/v1/accounts/move", a.base))
        .bearer_auth(&token_a)
        .json(&json!({ "password": common::PASSWORD, "moved_to_uri": new_ap_id }))
        .send()
        .await?;
    anyhow::ensure!(res.status().as_u16() == 202, "move: {} {}", res.status(), res.text().await?);
    let answered = t0.elapsed();
    let goal = (total as f64 * DONE_SHARE).ceil() as u64;
    let mut half = None;
    let done = loop {
        let n = followers_of(&client, &b.base, &new_id).await?;
        if half.is_none() && n >= total as u64 / 2 {
            half = Some(t0.elapsed());
        }
        if n >= goal {
            break Some(t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(300) {
            println!("gave up after 300 s with {n} of {total} followers moved");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = (
        common::cpu_seconds(Some(a.pid)) - cpu_before.0,
        common::cpu_seconds(Some(b.pid)) - cpu_before.1,
    );
    // Let the Accepts arrive before counting requests per server.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = servers.received.lock().expect("lock").clone();
    let per_host = |kind: &str| -> (u64, u64) {
        let counts: Vec<u64> = (0..SERVERS)
            .map(|s| *received.get(&(host(s, servers.port), kind.to_owned())).unwrap_or(&0))
            .collect();
        (*counts.iter().min().unwrap_or(&0), *counts.iter().max().unwrap_or(&0))
    };
    let (move_min, move_max) = per_host("Move");
    let (update_min, update_max) = per_host("Update");
    let (accept_min, accept_max) = per_host("Accept");
    println!("POST /api/v1/accounts/move answered in {:.0} ms", answered.as_secs_f64() * 1000.0);
    if let Some(half) = half {
        println!("50 % of followers on B after {:.2} s", half.as_secs_f64());
    }
    let seconds = done.map(|d| d.as_secs_f64());
    match seconds {
        Some(s) => println!("99 % of followers ({goal} of {total}) follow alice@B after {s:.2} s"),
        None => println!("99 % of followers were not reached"),
    }
    println!(
        "follows sent by the follower servers: {} ok, {} failed",
        servers.follows_sent.load(Ordering::Relaxed),
        servers.follow_failures.load(Ordering::Relaxed)
    );
    println!(
        "requests from A per server for the move: Move {move_min}-{move_max}, Update(Person) {update_min}-{update_max} (O(1): independent of the {PER_SERVER} followers there)"
    );
    println!(
        "Accepts from B per server: {accept_min}-{accept_max} (one per follower, as every server answers a Follow)"
    );
    println!("CPU: node A {:.2} s, node B {:.2} s", cpu.0, cpu.1);
    let ok = seconds.is_some_and(|s| s < 60.0) && move_max == 1 && update_max <= 1;
    println!("verdict (under 60 s to 99 %, one Move per server): {}", verdict(ok));
    a.stop();
    b.stop();
    Ok(())
}
