//! Test harness: real Ferry nodes on 127.0.0.1 ports, each with its own SQLite file, driven
//! through their HTTP APIs as users and remote servers would.
//!
//! Nodes run in this process (the node has no global state, so three fit side by side);
//! `ferry_binary` finds the real `ferry` executable for tests that must kill a process.

use std::collections::HashMap;
use std::path::PathBuf;
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
    /// Starts a node on a free port.
    pub async fn spawn() -> TestNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        // Named by IP and port, as a dev node usually is (`crash.rs` uses `localhost:port`).
        let domain = listener.local_addr().expect("addr").to_string();
        let dir = tempfile::tempdir().expect("temp dir");
        let env = test_env(&domain, dir.path());
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
        let (status, app) = self
            .post("/api/v1/apps", None, json!({ "client_name": "tests", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write follow push" }))
            .await;
        assert_eq!(status, 200, "{app}");
        let (status, app_token) = self
            .post("/oauth/token", None, json!({ "grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"], "scope": "read write follow push" }))
            .await;
        assert_eq!(status, 200, "{app_token}");
        let app_token = app_token["access_token"].as_str().expect("token").to_owned();
        let (status, signed_up) = self
            .post("/api/v1/accounts", Some(&app_token), json!({ "username": username, "password": "correct horse battery", "agreement": true, "locale": "en" }))
            .await;
        assert_eq!(status, 200, "sign-up of {username}: {signed_up}");
        let token = signed_up["access_token"].as_str().expect("user token").to_owned();
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

    /// Stops the node.
    pub fn stop(&self) {
        shutdown(&self.state);
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
    /// Starts a node on a free port like [`TestNode::spawn`], with `overrides` applied on top of
    /// [`test_env`] (for example `FERRY_DATABASE_URL` to store in PostgreSQL).
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
