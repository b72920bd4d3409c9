//! The Ferry node: configuration, storage, federation, the delivery queue and the HTTP API.
//!
//! `Server::build` opens the database, prepares the instance actor and binds the listener;
//! `Server::run` serves until shutdown. No process-global state: several servers can run in
//! one process, which is how the federation tests run three nodes.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub mod api;
pub mod config;
pub mod db;
pub mod error;
pub mod federation;
pub mod ids;
pub mod open_files;
pub mod own_runtime;
pub mod services;
pub mod state;
pub mod telemetry;
pub mod urls;

/// The allocator of the `ferry` binary, and of the benchmarks that run a node in their own
/// process, so that they measure what the binary does. Under inbox load glibc's malloc took a
/// seventh of the workers' CPU, much of it freeing on one thread what another allocated (a
/// request's note is built on a worker and dropped by the writer); jemalloc's per-thread caches
/// cut B1's CPU per activity by a tenth (docs/benchmarks.md, session 11). jemalloc does not
/// build with MSVC, which keeps the system allocator.
#[cfg(not(target_env = "msvc"))]
pub use tikv_jemallocator::Jemalloc as Allocator;

use crate::config::Config;
use crate::db::Db;
use crate::federation::journal::{Journal, Leftover};
use crate::state::{AppState, Inner, InstanceKey, KeyCache};

/// A node ready to serve.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    federation: activitypub_federation::config::FederationConfig<AppState>,
    /// What the inbox journal held at start, replayed before serving.
    leftover: Leftover,
}

/// Opens the database and builds the shared state (used by the admin commands; the inbox
/// journal is the serving node's alone).
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
    build_state(config, None).await
}

async fn build_state(config: Config, journal: Option<Journal>) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("opening {}", config.database_url))?;
    let (instance, key) = services::accounts::ensure_instance_actor(&config, &db)
        .await
        .context("preparing the instance actor")?;
    let (shutdown, _) = watch::channel(false);
    let http_once = federation::client::one_shot_delivery_client(&config)
        .context("setting up TLS for deliveries (are the system's CA certificates installed?)")?;
    Ok(AppState::new(Inner {
        http: federation::client::delivery_client(&config),
        http_once,
        fetcher: federation::client::fetch_client(
            &config,
            instance.public_key_id.clone(),
            key.clone(),
        ),
        instance: InstanceKey { actor_id: instance.id, key_id: instance.public_key_id, key },
        keys: KeyCache::default(),
        ingest: Default::default(),
        journal,
        hash_memory: Default::default(),
        delivery_wake: Notify::new(),
        fanout_wake: Notify::new(),
        key_pool_wake: Notify::new(),
        hashing: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(2),
        ),
        shutdown,
        db,
        config,
    }))
}

impl Server {
    /// Opens storage (running migrations) and binds `config.listen`.
    pub async fn build(config: Config) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Server::from_listener(config, listener).await
    }

    /// Like `build`, on a listener the caller bound (tests bind port 0 first, then name the
    /// node after the port they got).
    pub async fn from_listener(config: Config, listener: TcpListener) -> anyhow::Result<Server> {
        let (journal, leftover) = match &config.inbox_journal_dir {
            Some(dir) => {
                let (journal, leftover) = Journal::open(dir)
                    .with_context(|| format!("opening the inbox journal in {}", dir.display()))?;
                (Some(journal), leftover)
            }
            None => (None, Leftover::default()),
        };
        let state = build_state(config, journal).await?;
        let federation = federation::federation_config(state.clone()).await?;
        Ok(Server { listener, state, federation, leftover })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// The node's state (tests read the database through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves HTTP and runs the background workers until `shutdown` is triggered.
    pub async fn run(self) -> anyhow::Result<()> {
        let Server { listener, state, federation, leftover } = self;
        let ingest = tokio::spawn(federation::ingest::run(state.clone()));
        // Before serving, so that what was accepted before a crash is stored before anything
        // that could depend on it arrives.
        federation::inbox::replay(&state, leftover).await.context("replaying the inbox journal")?;
        let delivery = tokio::spawn(federation::delivery::run(state.clone()));
        let key_pool = tokio::spawn(services::accounts::run_key_pool(state.clone()));
        let maintenance = tokio::spawn(services::maintenance::run(state.clone()));
        let checkpoints = tokio::spawn(services::maintenance::run_checkpoints(state.clone()));
        let mut shutdown = state.shutdown.subscribe();
        let app = api::router(federation);
        tracing::info!(domain = %state.config.domain, "listening on {}", listener.local_addr()?);
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await?;
        state.ingest.stop();
        let _ = ingest.await;
        if let Some(journal) = &state.journal {
            journal.close();
        }
        let _ = delivery.await;
        let _ = key_pool.await;
        let _ = maintenance.await;
        let _ = checkpoints.await;
        state.db.close().await;
        Ok(())
    }
}

/// Asks a running node to stop.
pub fn shutdown(state: &AppState) {
    let _ = state.shutdown.send(true);
    state.delivery_wake.notify_waiters();
    state.fanout_wake.notify_waiters();
    state.key_pool_wake.notify_waiters();
}
