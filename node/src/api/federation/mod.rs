//! ActivityPub endpoints: actors, notes, collections and inboxes.

use axum::Router;

mod actors;
mod collections;
mod inbox;
mod objects;

/// Every endpoint but the inboxes, which take the federation config as their state
/// (`inbox_routes`).
pub(super) fn routes() -> Router {
    Router::new().merge(actors::routes()).merge(objects::routes()).merge(collections::routes())
}

pub(super) use inbox::routes as inbox_routes;

/// The body of every ActivityPub response.
pub(crate) fn activity_json<T: serde::Serialize>(value: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = ferry_protocol::context::WithContext::new(value);
    ([(axum::http::header::CONTENT_TYPE, ferry_protocol::context::ACTIVITY_JSON)], axum::Json(body))
        .into_response()
}

/// With authorized fetch on, a GET must carry a valid HTTP signature (as Mastodon's secure
/// mode requires for notes and collections); returns the signer. Off, it checks nothing.
pub(crate) async fn require_signed_get(
    data: &crate::federation::Data,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> Result<Option<String>, crate::error::AppError> {
    if !data.config.authorized_fetch {
        return Ok(None);
    }
    if headers.get("signature").is_none() && headers.get("signature-input").is_none() {
        return Err(crate::error::AppError::Unauthorized(
            "this node requires signed fetches".to_owned(),
        ));
    }
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    crate::federation::inbox::verify_request(data, "GET", path, headers, b"").await.map(Some)
}
