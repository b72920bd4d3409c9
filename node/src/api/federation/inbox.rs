//! `POST /inbox` and `POST /users/{username}/inbox`: hand the raw request to the pipeline.

use axum::Router;
use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::error::AppError;
use crate::federation::Data;
use crate::federation::inbox::{InboxPost, receive};

pub(super) fn routes() -> Router {
    Router::new().route("/inbox", post(inbox)).route("/users/{username}/inbox", post(inbox))
}

async fn inbox(
    data: Data,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, AppError> {
    let body = body.map_err(|e| AppError::TooLarge(format!("inbox body: {}", e.body_text())))?;
    let path =
        uri.path_and_query().map(http::uri::PathAndQuery::as_str).unwrap_or("/inbox").to_owned();
    receive(&data, InboxPost { path_and_query: &path, headers: &headers, body: &body }).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
