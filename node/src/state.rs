//! `AppState`: everything a request or a worker needs, cheap to clone. No process globals,
//! so several nodes can run in one process (the federation tests do).

use std::collections::HashMap;
use std::future::Future;
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
    /// The client for servers that get one delivery at a time (no keep-alive).
    pub http_once: crate::federation::client::OneShot,
    /// HTTP client for fetches: every request signed by the instance actor.
    pub fetcher: reqwest_middleware::ClientWithMiddleware,
    /// The instance actor's id and key, used to sign fetches.
    pub instance: InstanceKey,
    /// Parsed keys, so each is decoded once.
    pub keys: KeyCache,
    /// The inbox's group-commit queue.
    pub ingest: crate::federation::ingest::Ingest,
    /// What the inbox accepted and the ingest writer has not stored yet (`None`: journal off).
    pub journal: Option<crate::federation::journal::Journal>,
    /// Woken when new deliveries are queued (`wake_delivery`).
    pub delivery_wake: Notify,
    /// Woken when a fan-out may have been deferred (`wake_delivery`).
    pub fanout_wake: Notify,
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
    /// Held while a local actor's signing key is read and parsed (`signer_or_load`).
    loading: tokio::sync::Mutex<()>,
    public: Mutex<HashMap<String, SignerKey>>,
    private: Mutex<HashMap<i64, (String, Arc<PrivateKey>)>>,
}

/// A local actor's key id and parsed private key.
pub type Signer = (String, Arc<PrivateKey>);

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

    /// A local actor's signing key: from the cache, or else `load`ed (its key id and PEM),
    /// parsed and cached. One load runs at a time and the others then find it cached: a
    /// fan-out starts a couple of thousand delivery tasks at once, and when each read and
    /// parsed the key itself (aws-lc checks a private key with several big-number
    /// operations), that was 2.5 % of the node's CPU in B2.
    pub async fn signer_or_load<F, Fut, E>(&self, actor_id: i64, load: F) -> Result<Signer, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, String), E>>,
        E: From<ferry_protocol::signatures::SignatureError>,
    {
        if let Some(signer) = self.signer(actor_id) {
            return Ok(signer);
        }
        let _loading = self.loading.lock().await;
        if let Some(signer) = self.signer(actor_id) {
            return Ok(signer);
        }
        let (key_id, pem) = load().await?;
        let signer = (key_id, Arc::new(PrivateKey::from_pem(&pem)?));
        let mut map = self.private.lock().expect("key cache lock");
        if map.len() >= KEY_CACHE_LIMIT {
            map.clear();
        }
        map.insert(actor_id, signer.clone());
        Ok(signer)
    }

    fn signer(&self, actor_id: i64) -> Option<Signer> {
        self.private.lock().expect("key cache lock").get(&actor_id).cloned()
    }
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    /// Tells the delivery worker that a committed transaction queued work: deliveries, or a
    /// fan-out for it to expand.
    pub fn wake_delivery(&self) {
        self.delivery_wake.notify_one();
        self.fanout_wake.notify_one();
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A node's state on a SQLite file in `dir`, in dev mode, for unit tests.
#[cfg(test)]
pub(crate) async fn sqlite_state_in(dir: &std::path::Path) -> AppState {
    let env = std::collections::HashMap::from([
        ("FERRY_DOMAIN", "127.0.0.1:9".to_owned()),
        ("FERRY_DATABASE_URL", format!("sqlite://{}", dir.join("f.db").display())),
        ("FERRY_MEDIA_DIR", dir.join("media").display().to_string()),
        ("FERRY_DEV_HTTP", "1".to_owned()),
    ]);
    let config =
        crate::config::Config::from_parts(None, &|name| env.get(name).cloned()).expect("config");
    crate::open_state(config).await.expect("state")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// The first delivery tasks of a fan-out all ask for the author's key at once; it must be
    /// read and parsed once, not once per task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_tasks_asking_for_one_signer_load_it_once() {
        let cache = Arc::new(KeyCache::default());
        let pem = PrivateKey::generate().expect("key").to_pem();
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (cache, pem, loads) = (cache.clone(), pem.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .signer_or_load(7, || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            // A database read takes a while; the other tasks arrive meanwhile.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, crate::error::AppError>(("https://a.example/k".to_owned(), pem))
                        })
                        .await
                        .expect("signer")
                })
            })
            .collect();
        for task in tasks {
            let (key_id, _) = task.await.expect("task");
            assert_eq!(key_id, "https://a.example/k");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    /// A failed load caches nothing, so the next request tries again.
    #[tokio::test]
    async fn a_failed_load_is_tried_again() {
        let cache = KeyCache::default();
        let failed = cache
            .signer_or_load(7, || async {
                Err::<(String, String), _>(crate::error::AppError::NotFound("no account".into()))
            })
            .await;
        assert!(failed.is_err());
        let pem = PrivateKey::generate().expect("key").to_pem();
        let loaded = cache
            .signer_or_load(7, || async {
                Ok::<_, crate::error::AppError>(("https://a.example/k".to_owned(), pem))
            })
            .await;
        assert!(loaded.is_ok());
    }
}
