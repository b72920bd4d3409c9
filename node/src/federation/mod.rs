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

/// `host[:port]` of a URL: what two ids must share to come from the same server.
pub fn origin(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

/// Fails unless `a` and `b` live on the same server (host and port).
pub fn same_origin(a: &Url, b: &Url) -> Result<(), AppError> {
    // What `origin` compares, without writing either string: this runs a few times for every
    // received note.
    fn server(url: &Url) -> Option<(&str, Option<u16>)> {
        url.host_str().map(|host| (host, url.port()))
    }
    if server(a).is_some() && server(a) == server(b) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("{a} and {b} are not on the same server")))
    }
}

/// Whether `url` is one of this node's.
pub fn is_local(state: &AppState, url: &Url) -> bool {
    origin(url) == state.config.domain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_host_and_port_as_origin_writes_them() {
        let cases = [
            ("https://a.example/1", "https://a.example/u", true),
            ("https://a.example/1", "http://a.example/u", true),
            ("https://a.example:443/1", "https://a.example/u", true),
            ("https://A.Example/1", "https://a.example/u", true),
            ("https://a.example:8443/1", "https://a.example:8443/u", true),
            ("https://a.example:8443/1", "https://a.example/u", false),
            ("http://127.0.0.1:1/1", "http://127.0.0.1:2/u", false),
            ("https://a.example/1", "https://b.example/u", false),
            ("https://a.example.evil/1", "https://a.example/u", false),
            ("mailto:u@a.example", "mailto:u@a.example", false),
        ];
        for (a, b, same) in cases {
            let (a, b) = (Url::parse(a).unwrap(), Url::parse(b).unwrap());
            assert_eq!(same_origin(&a, &b).is_ok(), same, "{a} / {b}");
            let by_strings = origin(&a) == origin(&b) && !origin(&a).is_empty();
            assert_eq!(by_strings, same, "{a} / {b}: origin strings");
        }
    }
}
