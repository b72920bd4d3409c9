//! ActivityPub glue: the only module that implements `activitypub_federation` traits or builds
//! `protocol` values for sending. `inbox` takes activities in, `outbox` builds and queues them,
//! `delivery` works the queue.

use activitypub_federation::config::FederationConfig;
use url::Url;

use crate::error::AppError;
use crate::state::AppState;

pub mod activities;
pub mod client;
pub mod counts;
pub mod delivery;
pub mod dns;
pub mod fetch;
pub mod inbox;
pub mod ingest;
pub mod journal;
pub mod objects;
pub mod one_shot;
pub mod outbox;
pub mod policy;
pub mod receive;

/// Request data handed to every federation function: derefs to `AppState`.
pub type Data = activitypub_federation::config::Data<AppState>;

/// Builds the library configuration for a node. Dev mode allows `http://` and loopback peers.
pub async fn federation_config(state: AppState) -> anyhow::Result<FederationConfig<AppState>> {
    Ok(FederationConfig::builder()
        .domain(state.config.domain.clone())
        .debug(state.config.dev_http)
        .client(state.fetcher.clone())
        .http_fetch_limit(50)
        .app_data(state)
        .build()
        .await?)
}

/// The host of a URL and its port when not the scheme's default: what two ids must share to
/// come from the same server. Compared as it is, without writing `origin`'s string: checks of
/// this run a few times for every received activity.
pub fn server_of(url: &Url) -> Option<(&str, Option<u16>)> {
    url.host_str().map(|host| (host, url.port()))
}

/// `host[:port]` of a URL (`server_of` written out), empty without a host.
pub fn origin(url: &Url) -> String {
    match server_of(url) {
        Some((host, Some(port))) => format!("{host}:{port}"),
        Some((host, None)) => host.to_owned(),
        None => String::new(),
    }
}

/// Fails unless `a` and `b` live on the same server (host and port).
pub fn same_origin(a: &Url, b: &Url) -> Result<(), AppError> {
    if server_of(a).is_some() && server_of(a) == server_of(b) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("{a} and {b} are not on the same server")))
    }
}

/// Whether `url` is one of this node's.
pub fn is_local(state: &AppState, url: &Url) -> bool {
    origin(url) == state.config.domain
}
