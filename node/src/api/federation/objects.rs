//! `GET /notes/{id}`: a local note as ActivityPub JSON; a deleted one as a `Tombstone` (410);
//! one whose author moved and took it along as a `Tombstone` naming its new id, or a redirect
//! there for browsers. `GET /users/{username}/imported`: the other side of that lookup.

use axum::Router;
use axum::extract::{OriginalUri, Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::api::federation::{activity_json, require_signed_get};
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::federation::objects::note::load_note;
use crate::services;

pub(super) fn routes() -> Router {
    Router::new().route("/notes/{id}", get(note)).route("/users/{username}/imported", get(imported))
}

/// A browser (HTML wanted, no ActivityPub type named) rather than a server.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.contains("text/html")
        && !accept.contains("application/activity+json")
        && !accept.contains("application/ld+json")
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
    // The author moved and the new node imported this note: browsers go there, servers get a
    // `Tombstone` naming the new id.
    if let Some(moved) = services::moving::moved_note(&data, &note).await? {
        if wants_html(&headers) {
            return Ok(Redirect::permanent(&moved).into_response());
        }
        let tombstone = serde_json::json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": note.ap_id,
            "type": "Tombstone",
            "formerType": "Note",
            "movedTo": moved,
            "url": moved,
        });
        let mut response = activity_json(tombstone);
        *response.status_mut() = StatusCode::GONE;
        return Ok(response);
    }
    Ok(activity_json(load_note(&data, &note).await?).into_response())
}

#[derive(Deserialize)]
struct FromQuery {
    from: Option<String>,
}

/// `GET /users/{username}/imported?from={old id}`: the note this account imported from an
/// archive with that id on its old server (public and unlisted notes only), so that the old
/// server can point its old URL here.
async fn imported(
    data: Data,
    Path(username): Path<String>,
    Query(query): Query<FromQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_signed_get(&data, &uri, &headers).await?;
    let from = query.from.ok_or_else(|| AppError::BadRequest("from is required".to_owned()))?;
    let not_found = || AppError::NotFound(format!("{username} imported no note {from}"));
    let account = db::accounts::by_username(&data.db, &username).await?.ok_or_else(not_found)?;
    let note = services::moving::imported_note(&data, account.actor_id, &from)
        .await?
        .ok_or_else(not_found)?;
    Ok(activity_json(load_note(&data, &note).await?).into_response())
}
