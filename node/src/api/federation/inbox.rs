//! `POST /inbox` and `POST /users/{username}/inbox`: hand the raw request to the pipeline.

use std::sync::Arc;

use activitypub_federation::config::FederationConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::error::AppError;
use crate::federation::inbox::{InboxPost, receive};
use crate::state::AppState;

/// The inboxes, outside `FederationMiddleware`: that layer clones the whole federation config
/// (its HTTP client, URL verifier, caches) three times per request, and the inbox is the
/// busiest endpoint; here it is cloned once, into the request's `Data`.
pub(crate) fn routes(config: FederationConfig<AppState>) -> Router {
    Router::new()
        .route("/inbox", post(inbox))
        .route("/users/{username}/inbox", post(inbox))
        .with_state(Arc::new(config))
}

async fn inbox(
    State(config): State<Arc<FederationConfig<AppState>>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, AppError> {
    let body = body.map_err(|e| AppError::TooLarge(format!("inbox body: {}", e.body_text())))?;
    let data = config.to_request_data();
    let path =
        uri.path_and_query().map(http::uri::PathAndQuery::as_str).unwrap_or("/inbox").to_owned();
    receive(&data, InboxPost { path_and_query: &path, headers: &headers, body: &body }).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
