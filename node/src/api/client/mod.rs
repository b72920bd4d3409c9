//! The Mastodon-compatible client API, one file per resource.

use axum::Router;

mod accounts;
mod instance;
mod media;
mod notifications;
mod oauth;
mod search;
mod statuses;
mod timelines;

pub(super) fn routes() -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(accounts::routes())
        .merge(statuses::routes())
        .merge(timelines::routes())
        .merge(notifications::routes())
        .merge(search::routes())
        .merge(instance::routes())
        .merge(media::routes())
}
