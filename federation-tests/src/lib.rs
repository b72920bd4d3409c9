//! Test harness: real Ferry nodes on 127.0.0.1 ports, each with its own SQLite file, driven
//! through their HTTP APIs as users and remote servers would.
//!
//! Nodes run in this process (the node has no global state, so three fit side by side);
//! `ferry_binary` finds the real `ferry` executable for tests that must kill a process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};
use ferry_node::config::Config;
use ferry_node::state::AppState;
use ferry_node::{Server, shutdown};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A node running in this process.
pub struct TestNode {
    /// `127.0.0.1:port`, the node's domain.
    pub domain: String,
    /// `http://127.0.0.1:port`.
    pub base: String,
    state: AppState,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A user on a test node, with a bearer token.
#[derive(Clone, Debug)]
pub struct User {
    /// Local username.
    pub username: String,
    /// Bearer token.
    pub token: String,
    /// Client API account id on its own node.
    pub id: String,
    /// `username@domain`.
    pub handle: String,
    /// ActivityPub id.
    pub ap_id: String,
}

/// Settings every test node uses: dev mode (http, loopback peers), open sign-ups, fast retries.
pub fn test_env(domain: &str, dir: &std::path::Path) -> HashMap<String, String> {
    [
        ("FERRY_DOMAIN", domain.to_owned()),
        ("FERRY_LISTEN", domain.replace("localhost", "127.0.0.1")),
        ("FERRY_DATABASE_URL", format!("sqlite://{}", dir.join("ferry.db").display())),
        ("FERRY_MEDIA_DIR", dir.join("media").display().to_string()),
        ("FERRY_DEV_HTTP", "1".to_owned()),
        ("FERRY_REGISTRATIONS_OPEN", "1".to_owned()),
        ("FERRY_KEY_POOL_SIZE", "2".to_owned()),
        ("FERRY_DELIVERY_RETRY_BASE_SECS", "0.2".to_owned()),
        ("FERRY_DELIVERY_RETRY_MAX_SECS", "1".to_owned()),
        ("FERRY_DELIVERY_REQUEST_TIMEOUT_SECS", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl TestNode {
    /// Starts a node on a free port, named by IP and port as a dev node usually is.
    pub async fn spawn() -> TestNode {
        TestNode::spawn_with(&[]).await
    }

    /// The node's state (for reading its database in assertions and forging test requests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A GET with an optional token; returns status and JSON (Null for non-JSON bodies).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A GET asking for ActivityPub JSON.
    pub async fn get_ap(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/activity+json")
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A POST with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A DELETE.
    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let res = self
            .client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Signs a user up through the client API, as an app would.
    pub async fn create_user(&self, username: &str) -> User {
        let token = sign_up(&self.base, username).await;
        let (status, me) = self.get("/api/v1/accounts/verify_credentials", Some(&token)).await;
        assert_eq!(status, 200, "{me}");
        User {
            username: username.to_owned(),
            id: me["id"].as_str().expect("id").to_owned(),
            handle: format!("{username}@{}", self.domain),
            ap_id: format!("{}/users/{username}", self.base),
            token,
        }
    }

    /// Finds a remote account by handle (resolving it remotely); returns its local id here.
    pub async fn resolve(&self, user: &User, handle: &str) -> String {
        let (status, found) =
            self.get(&format!("/api/v2/search?q=@{handle}&resolve=true"), Some(&user.token)).await;
        assert_eq!(status, 200, "{found}");
        found["accounts"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{handle} not found: {found}"))
            .to_owned()
    }

    /// `user` follows `handle` (resolved remotely) and waits until the follow is accepted;
    /// returns the followed account's id on this node.
    pub async fn follow(&self, user: &User, handle: &str) -> String {
        let id = self.resolve(user, handle).await;
        let (status, rel) =
            self.post(&format!("/api/v1/accounts/{id}/follow"), Some(&user.token), json!({})).await;
        assert_eq!(status, 200, "{rel}");
        eventually(&format!("{} following {handle}", user.handle), 20, || async {
            let path = format!("/api/v1/accounts/relationships?id[]={id}");
            let (_, rels) = self.get(&path, Some(&user.token)).await;
            (rels[0]["following"] == json!(true)).then_some(())
        })
        .await;
        id
    }

    /// Stops the node.
    pub fn stop(&self) {
        shutdown(&self.state);
    }

    /// Waits until every activity the node's inbox has answered is stored: an inbox that keeps
    /// a journal answers before its writer commits (`ferry_node::federation::journal`).
    pub async fn settled(&self) {
        let Some(journal) = &self.state.journal else { return };
        eventually("the inbox's accepted activities stored", 10, || async {
            (journal.open_records() == 0).then_some(())
        })
        .await;
    }
}

/// Polls `check` until it returns `Some`, at most `seconds` long; the one asynchronous hop in
/// these tests is delivery between nodes.
pub async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {seconds}s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `ferry` binary built alongside the tests (`cargo test --workspace` builds it).
pub fn ferry_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/it-<hash> → target/<profile>/ferry
    let dir = exe.parent().and_then(|d| d.parent()).context("test binary location")?;
    let path = dir.join("ferry");
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build -p ferry-node --bin ferry` (cargo test --workspace builds it)",
            path.display()
        );
    }
    Ok(path)
}

impl TestNode {
    /// Starts a node on a free port with `overrides` applied on top of [`test_env`] (for example
    /// `FERRY_DATABASE_URL` to store in PostgreSQL, or `FERRY_AUTHORIZED_FETCH`).
    pub async fn spawn_with(overrides: &[(&str, String)]) -> TestNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        // Named as `spawn` names its nodes.
        let domain = listener.local_addr().expect("addr").to_string();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env = test_env(&domain, dir.path());
        for (name, value) in overrides {
            env.insert((*name).to_owned(), value.clone());
        }
        let config = Config::from_parts(None, &|name| env.get(name).cloned()).expect("test config");
        let server = Server::from_listener(config, listener).await.expect("node starts");
        let state = server.state();
        tokio::spawn(async move {
            if let Err(e) = server.run().await {
                panic!("node stopped: {e}");
            }
        });
        TestNode {
            base: format!("http://{domain}"),
            domain,
            state,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            _dir: dir,
        }
    }
}

/// Two nodes, alice on A and bob on B, with what a test needs to play A's part on B's inbox:
/// alice's real key (read from A's database), its key id, and B's shared inbox.
pub struct PeerOfB {
    pub a: TestNode,
    pub b: TestNode,
    pub key: ferry_protocol::signatures::PrivateKey,
    pub key_id: String,
    pub inbox: String,
}

impl PeerOfB {
    pub async fn spawn() -> PeerOfB {
        let a = TestNode::spawn().await;
        let b = TestNode::spawn().await;
        a.create_user("alice").await;
        b.create_user("bob").await;
        let key = a.private_key("alice").await;
        let key_id = format!("{}/users/alice#main-key", a.base);
        let inbox = format!("{}/inbox", b.base);
        PeerOfB { a, b, key, key_id, inbox }
    }
}

impl TestNode {
    /// A local user's private key, for tests that play that user's server on the wire. The key
    /// is created first if the account is still keyless (sign-ups get keys lazily).
    pub async fn private_key(&self, username: &str) -> ferry_protocol::signatures::PrivateKey {
        let db = &self.state.db;
        let account = ferry_node::db::accounts::by_username(db, username)
            .await
            .expect("db")
            .expect("account");
        ferry_node::services::accounts::ensure_key(&self.state, account.actor_id)
            .await
            .expect("key");
        let account = ferry_node::db::accounts::by_username(db, username)
            .await
            .expect("db")
            .expect("account");
        ferry_protocol::signatures::PrivateKey::from_pem(&account.private_key_pem)
            .expect("stored key parses")
    }
}

/// Where a `ProcessNode` logs, in its directory.
const NODE_LOG: &str = "node.log";

/// A node run as its own `ferry serve` process, for tests that kill it; killed when dropped.
pub struct ProcessNode {
    /// The process.
    pub child: Child,
    /// `http://domain`.
    pub base: String,
}

impl ProcessNode {
    /// Starts `ferry serve` with the test settings for `domain`, storing in `dir`. Its logs
    /// go to `dir/node.log` (appended to across restarts; `log_tail`), for a failing test to
    /// show.
    pub fn start(domain: &str, dir: &std::path::Path) -> ProcessNode {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(NODE_LOG))
            .expect("the node's log file");
        let mut command = Command::new(ferry_binary().expect("ferry binary"));
        command
            .arg("serve")
            .envs(test_env(domain, dir))
            .stdout(log.try_clone().expect("the node's log file"))
            .stderr(log);
        ProcessNode {
            child: command.spawn().expect("ferry starts"),
            base: format!("http://{domain}"),
        }
    }

    /// The last `lines` lines the node (and its earlier runs on the same `dir`) logged.
    pub fn log_tail(dir: &std::path::Path, lines: usize) -> String {
        let text = std::fs::read_to_string(dir.join(NODE_LOG)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until the node answers HTTP.
    pub async fn wait_up(&self) {
        let client = reqwest::Client::new();
        eventually(&format!("{} answering", self.base), 30, || async {
            client
                .get(format!("{}/api/v1/instance", self.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    /// Kills the process without warning and reaps it.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM to {pid}");
        let child = &mut self.child;
        let status = eventually("ferry exits after SIGTERM", 30, || {
            let exited = child.try_wait().expect("try_wait");
            async move { exited }
        })
        .await;
        assert!(status.success(), "ferry exited with {status}");
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        // A failed assertion must not leave the process running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `localhost:PORT` on a port free now, for a node run as its own process.
pub fn free_local_domain() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("localhost:{port}")
}

/// GETs JSON from a node given by its base URL, with an optional bearer token.
pub async fn get_json(base: &str, path: &str, token: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request").json().await.expect("json")
}

/// POSTs JSON to a node given by its base URL; panics unless the answer is 2xx.
pub async fn post_json(base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.expect("json")
}

/// Signs a user up over HTTP, as an app would; returns the user's token.
pub async fn sign_up(base: &str, username: &str) -> String {
    let app = post_json(base, "/api/v1/apps", None, json!({ "client_name": "crash", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write follow" })).await;
    let token = post_json(base, "/oauth/token", None, json!({ "grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"], "scope": "read write follow" })).await;
    let user = post_json(
        base,
        "/api/v1/accounts",
        token["access_token"].as_str(),
        json!({ "username": username, "password": "correct horse battery", "agreement": true }),
    )
    .await;
    user["access_token"].as_str().expect("token").to_owned()
}

/// A `Create` of the public note `{base}/notes/{n}` by `{base}/users/alice`, as her server
/// would send it to an inbox.
pub fn create_note(base: &str, n: u32, text: &str) -> Vec<u8> {
    let actor = format!("{base}/users/alice");
    serde_json::to_vec(&serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{base}/notes/{n}/activity"),
        "type": "Create",
        "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": {
            "id": format!("{base}/notes/{n}"),
            "type": "Note",
            "attributedTo": actor,
            "content": format!("<p>{text}</p>"),
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "published": "2026-11-21T10:00:00Z"
        }
    }))
    .expect("JSON")
}

/// POSTs `body` to `inbox` signed (draft-cavage, with `Digest`) with `key` under `key_id` and
/// dated `date`, as a peer server would; `tamper` replaces the body after signing. Returns the
/// status and the JSON answer (Null when there is none).
pub async fn post_signed(
    inbox: &str,
    body: &[u8],
    key_id: &str,
    key: &ferry_protocol::signatures::PrivateKey,
    date: std::time::SystemTime,
    tamper: Option<&[u8]>,
) -> (u16, Value) {
    let url = url::Url::parse(inbox).expect("inbox URL");
    let signed =
        ferry_protocol::signatures::sign_request("POST", &url, Some(body), key_id, key, date);
    let res = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/activity+json")
        .header("Date", signed.date)
        .header("Digest", signed.digest.expect("a POST has a digest"))
        .header("Signature", signed.signature)
        .body(tamper.unwrap_or(body).to_vec())
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A remote actor to store directly (no fetch): `ap_id` on `domain`, with a shared inbox and,
/// when given, the PEM of its public key.
pub struct RemoteActor<'a> {
    pub ap_id: &'a str,
    pub username: String,
    pub domain: &'a str,
    pub shared_inbox: String,
    pub public_key_pem: String,
}

/// Stores `remote` and an accepted follow between it and the local actor `local`
/// (`remote_follows`: the remote actor follows; otherwise the local one does). Returns the
/// remote actor's id.
pub async fn store_remote_follow(
    tx: &mut ferry_node::db::Tx,
    db: &ferry_node::db::Db,
    remote: RemoteActor<'_>,
    local: i64,
    remote_follows: bool,
) -> anyhow::Result<i64> {
    let now = ferry_node::ids::now_ms();
    let ap_id = remote.ap_id;
    let actor = ferry_node::db::actors::NewActor {
        id: db.next_id(),
        ap_id: ap_id.to_owned(),
        kind: "Person".to_owned(),
        username: remote.username,
        domain: remote.domain.to_owned(),
        is_local: false,
        display_name: String::new(),
        summary: String::new(),
        inbox_url: format!("{ap_id}/inbox"),
        shared_inbox_url: Some(remote.shared_inbox),
        outbox_url: Some(format!("{ap_id}/outbox")),
        followers_url: Some(format!("{ap_id}/followers")),
        following_url: Some(format!("{ap_id}/following")),
        profile_url: None,
        avatar_url: None,
        header_url: None,
        public_key_id: format!("{ap_id}#main-key"),
        public_key_pem: remote.public_key_pem,
        manually_approves: false,
        discoverable: true,
        also_known_as: "[]".to_owned(),
        moved_to: None,
        published_at: now,
        fetched_at: now,
        identity_did: None,
    };
    let row = ferry_node::db::actors::upsert(tx, &actor).await?;
    let (follower_id, followee_id) = if remote_follows { (row.id, local) } else { (local, row.id) };
    let id = db.next_id();
    ferry_node::db::follows::upsert(
        tx,
        &ferry_node::db::follows::FollowRow {
            id,
            ap_id: format!("{ap_id}/follows/{id}"),
            follower_id,
            followee_id,
            accepted: true,
            created_at: now,
        },
    )
    .await?;
    Ok(row.id)
}
