//! `GET /notes/{id}`: a local note as ActivityPub JSON; a deleted one as a `Tombstone` (410).

use axum::Router;
use axum::extract::{OriginalUri, Path};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::federation::{activity_json, require_signed_get};
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::federation::objects::note::load_note;

pub(super) fn routes() -> Router {
    Router::new().route("/notes/{id}", get(note))
}

async fn note(
    data: Data,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_signed_get(&data, &uri, &headers).await?;
    let not_found = || AppError::NotFound(format!("no note {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let note = db::notes::by_id(&data.db, id)
        .await?
        .filter(|n| n.is_local && n.reblog_of_id.is_none())
        .ok_or_else(not_found)?;
    if note.deleted_at.is_some() {
        let tombstone = serde_json::json!({ "id": note.ap_id, "type": "Tombstone" });
        let mut response = activity_json(tombstone);
        *response.status_mut() = StatusCode::GONE;
        return Ok(response);
    }
    // Only public and unlisted notes are served; followers-only and direct notes reach their
    // readers by delivery, never by fetch.
    if !matches!(note.visibility.as_str(), "public" | "unlisted") {
        return Err(not_found());
    }
    Ok(activity_json(load_note(&data, &note).await?).into_response())
}
