//! Remote servers that misbehave, played by raw TCP servers on 127.0.0.1 ports named
//! `localhost:PORT` (dev mode lets the node fetch from them): redirect loops, huge and endless
//! bodies, servers that never answer, forged ids and keys, and pages that are not ActivityPub.
//! A logged-in user searches for `@evil@localhost:PORT` (WebFinger, then the actor) or for a
//! URL on it; the node must answer with a JSON error in bounded time, store nothing, and keep
//! serving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_federation_tests::{TestNode, User, eventually};
use ferry_node::db;
use ferry_protocol::signatures::PrivateKey;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// What a hostile server does with one request.
#[derive(Clone)]
pub(crate) enum Reply {
    /// A complete response.
    Send {
        status: u16,
        content_type: Option<&'static str>,
        location: Option<String>,
        body: Vec<u8>,
    },
    /// Reads the request and never answers, until the client hangs up.
    Hold,
    /// A 200 with a chunked body that never ends (stops after 256 MiB, or when the client
    /// hangs up).
    Endless { content_type: &'static str },
    /// Waits, then replies.
    Delayed(Duration, Box<Reply>),
    /// A 200 announcing 4000 bytes (under every size limit), then one byte every 200 ms.
    Drip { content_type: &'static str },
}

pub(crate) fn reply(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Send { status, content_type: Some(content_type), location: None, body: body.into() }
}

pub(crate) fn activity_json(doc: &Value) -> Reply {
    reply(200, "application/activity+json", serde_json::to_vec(doc).unwrap())
}

pub(crate) fn jrd_json(doc: &Value) -> Reply {
    reply(200, "application/jrd+json", serde_json::to_vec(doc).unwrap())
}

pub(crate) fn redirect(to: String) -> Reply {
    Reply::Send { status: 302, content_type: None, location: Some(to), body: Vec::new() }
}

pub(crate) fn not_found() -> Reply {
    reply(404, "application/json", b"{\"error\":\"not found\"}".to_vec())
}

/// A server that answers every request with what `route(path_and_query, base)` says.
pub(crate) struct Hostile {
    /// `http://localhost:PORT`.
    pub(crate) base: String,
    /// `localhost:PORT`.
    pub(crate) domain: String,
    requests: Arc<Mutex<Vec<String>>>,
    /// Connections currently held open by `Reply::Hold`.
    holding: Arc<AtomicUsize>,
}

impl Hostile {
    pub(crate) async fn start(
        route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let domain = format!("localhost:{}", listener.local_addr().unwrap().port());
        let base = format!("http://{domain}");
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let holding: Arc<AtomicUsize> = Arc::default();
        let route = Arc::new(route);
        tokio::spawn({
            let (base, requests, holding) = (base.clone(), requests.clone(), holding.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (route, base) = (route.clone(), base.clone());
                    let (requests, holding) = (requests.clone(), holding.clone());
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let Some(target) = read_request(&mut stream).await else { return };
                        requests.lock().unwrap().push(target.clone());
                        answer_with(&mut stream, route(&target, &base), &holding).await;
                    });
                }
            }
        });
        Hostile { base, domain, requests, holding }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Connections held open right now by `Reply::Hold`.
    pub(crate) fn holding(&self) -> usize {
        self.holding.load(Ordering::SeqCst)
    }

    /// Requests received whose path starts with `prefix`.
    pub(crate) fn hits(&self, prefix: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.starts_with(prefix)).count()
    }
}

/// Reads one request head; returns its target (path and query).
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).split_whitespace().nth(1)?.to_owned())
}

async fn answer_with(stream: &mut TcpStream, answer: Reply, holding: &AtomicUsize) {
    match answer {
        Reply::Delayed(wait, then) => {
            tokio::time::sleep(wait).await;
            Box::pin(answer_with(stream, *then, holding)).await;
        }
        Reply::Send { status, content_type, location, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} Hostile\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(content_type) = content_type {
                head.push_str(&format!("Content-Type: {content_type}\r\n"));
            }
            if let Some(location) = location {
                head.push_str(&format!("Location: {location}\r\n"));
            }
            head.push_str("\r\n");
            if stream.write_all(head.as_bytes()).await.is_ok() {
                let _ = stream.write_all(&body).await;
            }
            let _ = stream.shutdown().await;
        }
        Reply::Hold => {
            holding.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            holding.fetch_sub(1, Ordering::SeqCst);
        }
        Reply::Endless { content_type } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.extend(std::iter::repeat_n(b'x', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            for _ in 0..4096 {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        Reply::Drip { content_type } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: 4000\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..3999 {
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn public_key_pem() -> String {
    PrivateKey::generate().unwrap().public_key_pem()
}

/// A well-formed actor document with id `id`.
pub(crate) fn person(id: &str, pem: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": "Person",
        "preferredUsername": "evil",
        "inbox": format!("{id}/inbox"),
        "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": pem },
    })
}

/// A well-formed public note.
pub(crate) fn note(id: &str, author: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": "Note",
        "attributedTo": author,
        "content": "<p>hostile note</p>",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "published": "2026-01-01T00:00:00Z",
    })
}

/// A WebFinger answer pointing at `actor`.
pub(crate) fn webfinger(base: &str, actor: &str) -> Value {
    let domain = base.trim_start_matches("http://");
    json!({
        "subject": format!("acct:evil@{domain}"),
        "links": [{ "rel": "self", "type": "application/activity+json", "href": actor }],
    })
}

pub(crate) fn is_webfinger(target: &str) -> bool {
    target.starts_with("/.well-known/webfinger")
}

/// `GET /api/v2/search?q=…&resolve=true` as `user`; status, body and how long it took.
async fn search(node: &TestNode, user: &User, q: &str) -> (u16, Value, Duration) {
    let url = Url::parse_with_params(
        &format!("{}/api/v2/search", node.base),
        &[("q", q), ("resolve", "true")],
    )
    .unwrap();
    let started = Instant::now();
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(&user.token)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap_or_else(|e| panic!("search {q}: no answer within 60 s: {e}"));
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null), started.elapsed())
}

/// A 4xx or 502 with a JSON `{"error": …}` body, within `within`.
fn assert_refused(what: &str, answer: &(u16, Value, Duration), within: Duration) {
    let (status, body, took) = answer;
    assert!(
        (400..500).contains(status) || *status == 502,
        "{what}: expected a 4xx or 502, got {status}: {body}"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: expected a JSON error body, got {body}"
    );
    assert!(took <= &within, "{what}: answered after {took:?}, more than {within:?}");
}

/// Remote actors and remote notes the node has stored.
async fn remote_rows(node: &TestNode) -> (usize, usize) {
    let db = &node.state().db;
    let actors = db::actors::search(db, "", 1000).await.unwrap();
    let notes = db::notes::public(
        db,
        Some(false),
        &db::notes::Page { max_id: None, since_id: None, min_id: None, limit: 1000 },
    )
    .await
    .unwrap();
    (actors.iter().filter(|a| !a.is_local).count(), notes.len())
}

/// Nothing from `hostile` is stored, under any of `ids` or its handle.
async fn assert_nothing_stored(what: &str, node: &TestNode, hostile: &Hostile, ids: &[String]) {
    let db = &node.state().db;
    for id in ids {
        let actor = db::actors::by_ap_id(db, id).await.unwrap();
        assert!(actor.is_none(), "{what}: actor {id} was stored");
        let note = db::notes::by_ap_id(db, id).await.unwrap();
        assert!(note.is_none(), "{what}: note {id} was stored");
    }
    let handle = db::actors::by_handle(db, "evil", &hostile.domain).await.unwrap();
    assert!(handle.is_none(), "{what}: evil@{} was stored", hostile.domain);
    assert_eq!(remote_rows(node).await, (0, 0), "{what}: no remote actor or note stored");
}

/// The node still serves its API promptly.
async fn assert_node_answers(node: &TestNode, user: &User) {
    let started = Instant::now();
    let (status, instance) = node.get("/api/v1/instance", None).await;
    assert_eq!(status, 200, "{instance}");
    let (status, me) = node.get("/api/v1/accounts/verify_credentials", Some(&user.token)).await;
    assert_eq!(status, 200, "{me}");
    assert!(started.elapsed() < Duration::from_secs(3), "node slow: {:?}", started.elapsed());
}

const BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_a_well_behaved_server_is_resolved() {
    // The fixtures below differ from this one only in what they break, so a refusal there is
    // for that reason and not a flaw in the fake server.
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    let pem = public_key_pem();
    let good = Hostile::start(move |target, base| {
        if is_webfinger(target) {
            jrd_json(&webfinger(base, &format!("{base}/users/evil")))
        } else if target == "/users/evil" {
            activity_json(&person(&format!("{base}/users/evil"), &pem))
        } else if target == "/notes/1" {
            activity_json(&note(&format!("{base}/notes/1"), &format!("{base}/users/evil")))
        } else {
            not_found()
        }
    })
    .await;

    let (status, found, _) = search(&node, &user, &format!("@evil@{}", good.domain)).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["accounts"][0]["acct"], format!("evil@{}", good.domain), "{found}");
    let stored = db::actors::by_ap_id(&node.state().db, &good.url("/users/evil")).await.unwrap();
    assert!(stored.is_some(), "the actor is stored");

    let (status, found, _) = search(&node, &user, &good.url("/notes/1")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["statuses"][0]["uri"], good.url("/notes/1"), "{found}");
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_end_in_an_error() {
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    let pem = public_key_pem();

    // WebFinger redirecting to itself.
    let self_loop = Hostile::start(|target, base| {
        if is_webfinger(target) { redirect(format!("{base}{target}")) } else { not_found() }
    })
    .await;
    let answer = search(&node, &user, &format!("@evil@{}", self_loop.domain)).await;
    assert_refused("WebFinger redirecting to itself", &answer, BOUND);
    assert!(self_loop.hits("/.well-known/webfinger") <= 10, "redirects followed without end");
    assert_nothing_stored("WebFinger loop", &node, &self_loop, &[]).await;

    // WebFinger fine; the actor URL and a second URL redirect to each other.
    let ping_pong = Hostile::start(move |target, base| {
        if is_webfinger(target) {
            jrd_json(&webfinger(base, &format!("{base}/users/evil")))
        } else if target == "/users/evil" {
            redirect(format!("{base}/users/evil2"))
        } else if target == "/users/evil2" {
            redirect(format!("{base}/users/evil"))
        } else {
            activity_json(&person(&format!("{base}{target}"), &pem))
        }
    })
    .await;
    let answer = search(&node, &user, &format!("@evil@{}", ping_pong.domain)).await;
    assert_refused("actor URLs redirecting to each other", &answer, BOUND);
    assert!(ping_pong.hits("/users/") <= 10, "redirects followed without end");
    let ids = [ping_pong.url("/users/evil"), ping_pong.url("/users/evil2")];
    assert_nothing_stored("actor redirect loop", &node, &ping_pong, &ids).await;

    // An object URL redirecting to itself.
    let note_loop = Hostile::start(|target, base| redirect(format!("{base}{target}"))).await;
    let answer = search(&node, &user, &note_loop.url("/notes/1")).await;
    assert_refused("note URL redirecting to itself", &answer, BOUND);
    assert!(note_loop.hits("/notes/1") <= 10, "redirects followed without end");
    assert_nothing_stored("note redirect loop", &node, &note_loop, &[note_loop.url("/notes/1")])
        .await;

    // Redirects and WebFinger links to URLs the node must never fetch.
    let elsewhere = Hostile::start(|target, base| {
        if is_webfinger(target) {
            jrd_json(&webfinger(base, "file:///etc/passwd"))
        } else if target == "/notes/1" {
            redirect("file:///etc/passwd".to_owned())
        } else {
            redirect("gopher://localhost:70/1".to_owned())
        }
    })
    .await;
    for q in [
        elsewhere.url("/notes/1"),
        elsewhere.url("/notes/2"),
        format!("@evil@{}", elsewhere.domain),
    ] {
        let answer = search(&node, &user, &q).await;
        assert_refused(&format!("{q} leading to a non-HTTP URL"), &answer, BOUND);
    }
    assert_nothing_stored("non-HTTP targets", &node, &elsewhere, &[]).await;

    // Two documents whose ids name each other: each fetch is told to look at the other URL.
    let id_loop = Hostile::start(|target, base| {
        let other = if target == "/notes/1" { "/notes/2" } else { "/notes/1" };
        activity_json(&note(&format!("{base}{other}"), &format!("{base}/users/evil")))
    })
    .await;
    let answer = search(&node, &user, &id_loop.url("/notes/1")).await;
    assert_refused("documents whose ids point at each other", &answer, BOUND);
    assert!(id_loop.hits("/notes/") <= 10, "id ping-pong fetched {} times", id_loop.hits("/"));
    let ids = [id_loop.url("/notes/1"), id_loop.url("/notes/2")];
    assert_nothing_stored("id loop", &node, &id_loop, &ids).await;

    assert_node_answers(&node, &user).await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_endless_bodies_are_refused() {
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    let pem = public_key_pem();

    // A 10 MiB actor document: valid JSON, with a giant summary.
    let huge_actor = Hostile::start(move |target, base| {
        if is_webfinger(target) {
            jrd_json(&webfinger(base, &format!("{base}/users/evil")))
        } else {
            let mut doc = person(&format!("{base}/users/evil"), &pem);
            doc["summary"] = json!("x".repeat(10 << 20));
            activity_json(&doc)
        }
    })
    .await;
    let answer = search(&node, &user, &format!("@evil@{}", huge_actor.domain)).await;
    assert_refused("10 MiB actor", &answer, BOUND);
    assert_nothing_stored("10 MiB actor", &node, &huge_actor, &[huge_actor.url("/users/evil")])
        .await;

    // An actor whose body never ends.
    let endless_actor = Hostile::start(|target, base| {
        if is_webfinger(target) {
            jrd_json(&webfinger(base, &format!("{base}/users/evil")))
        } else {
            Reply::Endless { content_type: "application/activity+json" }
        }
    })
    .await;
    let answer = search(&node, &user, &format!("@evil@{}", endless_actor.domain)).await;
    assert_refused("endless actor body", &answer, BOUND);
    let ids = [endless_actor.url("/users/evil")];
    assert_nothing_stored("endless actor", &node, &endless_actor, &ids).await;

    // A 10 MiB WebFinger document, and one that never ends.
    let huge_jrd = Hostile::start(|target, base| {
        if is_webfinger(target) {
            let mut doc = webfinger(base, &format!("{base}/users/evil"));
            doc["aliases"] = json!(["x".repeat(10 << 20)]);
            jrd_json(&doc)
        } else {
            not_found()
        }
    })
    .await;
    let answer = search(&node, &user, &format!("@evil@{}", huge_jrd.domain)).await;
    assert_refused("10 MiB WebFinger", &answer, BOUND);
    assert_eq!(huge_jrd.hits("/users/"), 0, "the actor was never asked for");
    assert_nothing_stored("10 MiB WebFinger", &node, &huge_jrd, &[]).await;

    let endless_jrd =
        Hostile::start(|_, _| Reply::Endless { content_type: "application/jrd+json" }).await;
    let answer = search(&node, &user, &format!("@evil@{}", endless_jrd.domain)).await;
    assert_refused("endless WebFinger", &answer, BOUND);
    assert_nothing_stored("endless WebFinger", &node, &endless_jrd, &[]).await;

    // A note URL whose body never ends.
    let endless_note =
        Hostile::start(|_, _| Reply::Endless { content_type: "application/activity+json" }).await;
    let answer = search(&node, &user, &endless_note.url("/notes/1")).await;
    assert_refused("endless note body", &answer, BOUND);
    let ids = [endless_note.url("/notes/1")];
    assert_nothing_stored("endless note", &node, &endless_note, &ids).await;

    // Documents nested hundreds of thousands of levels deep (under the size limits): refused, and the node does not
    // overflow its stack parsing it.
    let nested = Hostile::start(|target, _| {
        // Under each size limit: 1 MiB for documents, 64 KiB for WebFinger.
        let depth = if is_webfinger(target) { 30_000 } else { 500_000 };
        let mut body = b"{\"subject\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.push(b'}');
        reply(200, "application/activity+json", body)
    })
    .await;
    let answer = search(&node, &user, &nested.url("/notes/1")).await;
    assert_refused("deeply nested JSON", &answer, BOUND);
    let answer = search(&node, &user, &format!("@evil@{}", nested.domain)).await;
    assert_refused("deeply nested WebFinger", &answer, BOUND);
    assert_nothing_stored("deeply nested JSON", &node, &nested, &[nested.url("/notes/1")]).await;

    assert_node_answers(&node, &user).await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_never_answer_time_out() {
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;

    let silent_webfinger = Hostile::start(|_, _| Reply::Hold).await;
    let silent_actor = Hostile::start(|target, base| {
        if is_webfinger(target) {
            jrd_json(&webfinger(base, &format!("{base}/users/evil")))
        } else {
            Reply::Hold
        }
    })
    .await;
    let silent_note = Hostile::start(|_, _| Reply::Hold).await;
    let dripping_note =
        Hostile::start(|_, _| Reply::Drip { content_type: "application/activity+json" }).await;
    let dripping_webfinger =
        Hostile::start(|_, _| Reply::Drip { content_type: "application/jrd+json" }).await;

    // All at once: a hanging fetch must not hold up the others or the node.
    let q1 = format!("@evil@{}", silent_webfinger.domain);
    let q2 = format!("@evil@{}", silent_actor.domain);
    let q3 = silent_note.url("/notes/1");
    let q4 = dripping_note.url("/notes/1");
    let q5 = format!("@evil@{}", dripping_webfinger.domain);
    let (a1, a2, a3, a4, a5, ()) = tokio::join!(
        search(&node, &user, &q1),
        search(&node, &user, &q2),
        search(&node, &user, &q3),
        search(&node, &user, &q4),
        search(&node, &user, &q5),
        async {
            // While five searches hang, the node serves other requests at once.
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_node_answers(&node, &user).await;
        },
    );
    assert_refused("WebFinger never answers", &a1, BOUND);
    assert_refused("actor never answers", &a2, BOUND);
    assert_refused("note URL never answers", &a3, BOUND);
    assert_refused("note body drips forever", &a4, BOUND);
    assert_refused("WebFinger body drips forever", &a5, BOUND);
    assert_eq!(silent_actor.hits("/users/evil"), 1, "the actor was asked for once");
    for (hostile, id) in [
        (&silent_webfinger, None),
        (&silent_actor, Some(silent_actor.url("/users/evil"))),
        (&silent_note, Some(silent_note.url("/notes/1"))),
        (&dripping_note, Some(dripping_note.url("/notes/1"))),
        (&dripping_webfinger, None),
    ] {
        let ids: Vec<String> = id.into_iter().collect();
        assert_nothing_stored(&hostile.domain, &node, hostile, &ids).await;
    }
    assert_node_answers(&node, &user).await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_ids_and_keys_are_refused() {
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    // A genuine account on a second node, which the hostile server impersonates.
    let honest = TestNode::spawn().await;
    honest.create_user("alice").await;
    let alice = format!("{}/users/alice", honest.base);
    let pem = public_key_pem();

    // Each path serves a document that breaks one same-origin rule.
    let forger = Hostile::start({
        let alice = alice.clone();
        move |target, base| {
            if is_webfinger(target) {
                // `resource=acct:NAME@…` picks the document: acct:owner@… → /users/owner.
                let name = target
                    .split("acct:")
                    .nth(1)
                    .and_then(|r| r.split('@').next())
                    .unwrap_or("evil");
                return jrd_json(&webfinger(base, &format!("{base}/users/{name}")));
            }
            // A well-formed actor at the URL fetched, with one field broken.
            let me = format!("{base}{target}");
            let mut doc = person(&me, &pem);
            match target {
                // The id is on another host.
                "/users/idother" => doc["id"] = json!("http://victim.example/users/bob"),
                // The id is a genuine actor on another node.
                "/users/idalice" => doc["id"] = json!(alice),
                // The key belongs to another actor on this server, or to the genuine alice.
                "/users/owner" => doc["publicKey"]["owner"] = json!(format!("{base}/users/other")),
                "/users/owneralice" => doc["publicKey"]["owner"] = json!(alice),
                // The key or the inbox is on another host.
                "/users/keyhost" => {
                    doc["publicKey"]["id"] = json!("http://victim.example/users/bob#main-key");
                }
                "/users/inboxhost" => doc["inbox"] = json!("http://victim.example/inbox"),
                // A note attributed to the genuine alice, served from here.
                "/notes/alice" => return activity_json(&note(&me, &alice)),
                // A note whose id is on the genuine node.
                "/notes/idalice" => {
                    let id = format!("{}/notes/1", alice.trim_end_matches("/users/alice"));
                    return activity_json(&note(&id, &alice));
                }
                _ => return not_found(),
            }
            activity_json(&doc)
        }
    })
    .await;

    for name in ["idother", "idalice", "owner", "owneralice", "keyhost", "inboxhost"] {
        let answer = search(&node, &user, &format!("@{name}@{}", forger.domain)).await;
        assert_refused(&format!("WebFinger to /users/{name}"), &answer, BOUND);
        let answer = search(&node, &user, &forger.url(&format!("/users/{name}"))).await;
        assert_refused(&format!("URL /users/{name}"), &answer, BOUND);
    }
    for path in ["/notes/alice", "/notes/idalice"] {
        let answer = search(&node, &user, &forger.url(path)).await;
        assert_refused(&format!("note {path}"), &answer, BOUND);
    }
    let ids: Vec<String> = ["idother", "idalice", "owner", "owneralice", "keyhost", "inboxhost"]
        .iter()
        .map(|n| forger.url(&format!("/users/{n}")))
        .chain([forger.url("/users/other"), "http://victim.example/users/bob".to_owned()])
        .chain([alice.clone()])
        .chain([forger.url("/notes/alice"), forger.url("/notes/idalice")])
        .collect();
    assert_nothing_stored("forged documents", &node, &forger, &ids).await;

    // The genuine alice still resolves, from her own server, with her own key.
    let (status, found, _) = search(&node, &user, &format!("@alice@{}", honest.domain)).await;
    assert_eq!(status, 200, "{found}");
    let stored = db::actors::by_ap_id(&node.state().db, &alice).await.unwrap().unwrap();
    let (_, genuine) = honest.get_ap("/users/alice").await;
    assert_eq!(stored.public_key_pem, genuine["publicKey"]["publicKeyPem"].as_str().unwrap());
    node.stop();
    honest.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_are_not_activitypub_are_refused() {
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    let pem = public_key_pem();
    let html = b"<!doctype html><html><body><h1>Welcome</h1></body></html>".to_vec();

    let pages = Hostile::start(move |target, base| {
        let doc = |path: &str| serde_json::to_vec(&person(&format!("{base}{path}"), &pem)).unwrap();
        match target {
            t if is_webfinger(t) && t.contains("htmljrd") => reply(200, "text/html", html.clone()),
            t if is_webfinger(t) => {
                let name = if t.contains("astext") {
                    "astext"
                } else if t.contains("asjson") {
                    "asjson"
                } else if t.contains("untyped") {
                    "untyped"
                } else {
                    "page"
                };
                jrd_json(&webfinger(base, &format!("{base}/users/{name}")))
            }
            // A valid actor document, served as HTML.
            "/users/astext" => reply(200, "text/html; charset=utf-8", doc("/users/astext")),
            // … as plain JSON.
            "/users/asjson" => reply(200, "application/json", doc("/users/asjson")),
            // … with no content type at all.
            "/users/untyped" => Reply::Send {
                status: 200,
                content_type: None,
                location: None,
                body: doc("/users/untyped"),
            },
            // An HTML page claiming to be ActivityPub.
            "/users/page" => reply(200, "application/activity+json", html.clone()),
            // An HTML page where a note should be.
            "/notes/1" => reply(200, "text/html", html.clone()),
            _ => not_found(),
        }
    })
    .await;

    for name in ["astext", "asjson", "untyped", "page", "htmljrd"] {
        let answer = search(&node, &user, &format!("@{name}@{}", pages.domain)).await;
        assert_refused(&format!("@{name}"), &answer, BOUND);
    }
    for path in ["/users/astext", "/users/asjson", "/users/untyped", "/notes/1"] {
        let answer = search(&node, &user, &pages.url(path)).await;
        assert_refused(path, &answer, BOUND);
    }
    let ids: Vec<String> = ["/users/astext", "/users/asjson", "/users/untyped", "/users/page"]
        .iter()
        .map(|p| pages.url(p))
        .chain([pages.url("/notes/1")])
        .collect();
    assert_nothing_stored("non-ActivityPub pages", &node, &pages, &ids).await;
    assert_node_answers(&node, &user).await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redirect_hops_do_not_stretch_a_search() {
    // Every answer is slow (9 s, under the 10 s per-request timeout) and redirects to another
    // URL on the same server; nothing ever resolves. The search must still end within ~15 s.
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    let slow = Hostile::start(|target, base| {
        let next = format!("{base}/hop/{}", target.len());
        Reply::Delayed(Duration::from_secs(9), Box::new(redirect(next)))
    })
    .await;
    let answer = search(&node, &user, &format!("@evil@{}", slow.domain)).await;
    println!("slow hops: {} requests, {:?}", slow.hits("/"), answer.2);
    assert_refused("slow redirecting WebFinger", &answer, BOUND);
    assert_nothing_stored("slow hops", &node, &slow, &[]).await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actors_counts_are_read_only_from_its_own_server() {
    let node = TestNode::spawn().await;
    let user = node.create_user("searcher").await;
    let victim = Hostile::start(|_, _| not_found()).await;
    let pem = public_key_pem();
    let victim_followers = victim.url("/followers");
    let evil = Hostile::start(move |target, base| {
        let total = |n: u64| {
            activity_json(&json!({
                "id": format!("{base}{target}"),
                "type": "OrderedCollection",
                "totalItems": n,
            }))
        };
        if is_webfinger(target) {
            jrd_json(&webfinger(base, &format!("{base}/users/evil")))
        } else if target == "/users/evil" {
            let mut doc = person(&format!("{base}/users/evil"), &pem);
            doc["outbox"] = json!(format!("{base}/users/evil/outbox"));
            doc["following"] = json!(format!("{base}/users/evil/following"));
            // Another server's URL: fetching it would aim this node at a third party.
            doc["followers"] = json!(victim_followers);
            activity_json(&doc)
        } else if target == "/users/evil/outbox" {
            total(7)
        } else if target == "/users/evil/following" {
            total(5)
        } else {
            not_found()
        }
    })
    .await;

    let (status, found, _) = search(&node, &user, &format!("@evil@{}", evil.domain)).await;
    assert_eq!(status, 200, "{found}");
    let id = found["accounts"][0]["id"].as_str().expect("an account id").to_owned();
    let account = eventually("the counts evil's server reports", 20, || async {
        let (_, account) = node.get(&format!("/api/v1/accounts/{id}"), None).await;
        (account["statuses_count"] == 7).then_some(account)
    })
    .await;
    assert_eq!(account["following_count"], 5, "{account}");
    assert_eq!(account["followers_count"], 0, "{account}");
    assert_eq!(evil.hits("/users/evil/"), 2, "the outbox and following, once each");
    assert_eq!(victim.hits("/"), 0, "nothing fetched from the other server");
    node.stop();
}
