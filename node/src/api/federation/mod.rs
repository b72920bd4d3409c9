//! ActivityPub endpoints: actors, notes, collections and inboxes.

use axum::Router;

mod actors;
mod collections;
mod inbox;
mod objects;

pub(super) fn routes() -> Router {
    Router::new()
        .merge(actors::routes())
        .merge(objects::routes())
        .merge(collections::routes())
        .merge(inbox::routes())
}

/// The body of every ActivityPub response.
pub(crate) fn activity_json<T: serde::Serialize>(value: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = ferry_protocol::context::WithContext::new(value);
    ([(axum::http::header::CONTENT_TYPE, ferry_protocol::context::ACTIVITY_JSON)], axum::Json(body))
        .into_response()
}
