//! The Mastodon-compatible client API, one file per resource.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;

use super::limits::refuse_oversized;

mod accounts;
mod imports;
mod instance;
mod media;
mod moving;
mod notifications;
mod oauth;
mod search;
mod statuses;
mod timelines;

/// The client API, with `api_max` as the body limit everywhere except media uploads, which
/// get `media_max`, and imports, which get `archive_max` (each plus room for the multipart
/// framing).
pub(super) fn routes(api_max: usize, media_max: usize, archive_max: u64) -> Router {
    let media_max = media_max + 64 * 1024;
    let archive_max = usize::try_from(archive_max).unwrap_or(usize::MAX).saturating_add(64 * 1024);
    Router::new()
        .merge(oauth::routes())
        .merge(accounts::routes())
        .merge(moving::routes())
        .merge(statuses::routes())
        .merge(timelines::routes())
        .merge(notifications::routes())
        .merge(search::routes())
        .merge(instance::routes())
        .layer(DefaultBodyLimit::max(api_max))
        .layer(from_fn_with_state(api_max, refuse_oversized))
        .merge(
            media::routes()
                .layer(DefaultBodyLimit::max(media_max))
                .layer(from_fn_with_state(media_max, refuse_oversized)),
        )
        .merge(
            imports::routes()
                .layer(DefaultBodyLimit::max(archive_max))
                .layer(from_fn_with_state(archive_max, refuse_oversized)),
        )
}
