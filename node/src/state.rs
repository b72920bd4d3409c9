//! `AppState`: everything a request or a worker needs, cheap to clone. No process globals,
//! so several nodes can run in one process (the federation tests do).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use ferry_protocol::signatures::PrivateKey;
use tokio::sync::{Notify, Semaphore, watch};

use crate::config::Config;
use crate::db::Db;
use crate::federation::fetch::SignerKey;

/// The node's shared state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What `AppState` holds.
pub struct Inner {
    /// Validated configuration.
    pub config: Config,
    /// The database.
    pub db: Db,
    /// HTTP client for deliveries (no redirects, private addresses refused outside dev mode).
    pub http: reqwest::Client,
    /// The same without keep-alive, for servers that get one delivery at a time.
    pub http_once: reqwest::Client,
    /// HTTP client for fetches: every request signed by the instance actor.
    pub fetcher: reqwest_middleware::ClientWithMiddleware,
    /// The instance actor's id and key, used to sign fetches.
    pub instance: InstanceKey,
    /// Parsed keys, so each is decoded once.
    pub keys: KeyCache,
    /// The inbox's group-commit queue.
    pub ingest: crate::federation::ingest::Ingest,
    /// Woken when new deliveries are queued.
    pub delivery_wake: Notify,
    /// Woken when a pooled key was used.
    pub key_pool_wake: Notify,
    /// Password hashes running at once (one per core).
    pub hashing: Semaphore,
    /// Argon2 working memory, reused between hashes.
    pub hash_memory: crate::services::accounts::HashMemory,
    /// Flips to true when the node shuts down.
    pub shutdown: watch::Sender<bool>,
}

/// The instance actor's signing identity.
#[derive(Clone)]
pub struct InstanceKey {
    /// Its actor id.
    pub actor_id: i64,
    /// Its key id (`…/actor#main-key`).
    pub key_id: String,
    /// Its private key.
    pub key: Arc<PrivateKey>,
}

/// Caches of parsed RSA keys: remote public keys by key id, local private keys by actor id.
#[derive(Default)]
pub struct KeyCache {
    /// Held while an account's key is generated (see `services::accounts::ensure_key`).
    pub generation: tokio::sync::Mutex<()>,
    public: Mutex<HashMap<String, SignerKey>>,
    private: Mutex<HashMap<i64, (String, Arc<PrivateKey>)>>,
}

/// Entries kept before a cache is emptied and starts over; simple and bounded.
const KEY_CACHE_LIMIT: usize = 50_000;

impl KeyCache {
    /// A cached public key.
    pub fn public(&self, key_id: &str) -> Option<SignerKey> {
        self.public.lock().expect("key cache lock").get(key_id).cloned()
    }

    /// Caches a public key.
    pub fn put_public(&self, key_id: &str, key: SignerKey) {
        let mut map = self.public.lock().expect("key cache lock");
        if map.len() >= KEY_CACHE_LIMIT {
            map.clear();
        }
        map.insert(key_id.to_owned(), key);
    }

    /// Drops a public key (it failed to verify; the actor may have rotated it).
    pub fn forget_public(&self, key_id: &str) {
        self.public.lock().expect("key cache lock").remove(key_id);
    }

    /// A local actor's key id and parsed private key, if cached.
    pub fn signer(&self, actor_id: i64) -> Option<(String, Arc<PrivateKey>)> {
        self.private.lock().expect("key cache lock").get(&actor_id).cloned()
    }

    /// Parses and caches a local actor's signing key under its key id.
    pub fn put_signer(
        &self,
        actor_id: i64,
        key_id: String,
        pem: &str,
    ) -> Result<(String, Arc<PrivateKey>), ferry_protocol::signatures::SignatureError> {
        let signer = (key_id, Arc::new(PrivateKey::from_pem(pem)?));
        let mut map = self.private.lock().expect("key cache lock");
        if map.len() >= KEY_CACHE_LIMIT {
            map.clear();
        }
        map.insert(actor_id, signer.clone());
        Ok(signer)
    }
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
