//! Moving house: aliases, moves (push and pull mode) and their progress, and the account's
//! archive (docs/migration.md). Imports are in `imports`.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::accounts::with_source;
use crate::api::extract::{Auth, Body};
use crate::error::{AppError, FieldError};
use crate::federation::Data;
use crate::services::{self};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v1/accounts/alias", post(set_aliases))
        .route("/api/v1/accounts/move", post(move_account).get(move_progress))
        .route("/api/v1/accounts/move_from", post(move_from))
        .route("/api/v1/accounts/archive", get(archive).post(archive_with_identity))
}

#[derive(Default, Deserialize)]
struct AliasForm {
    also_known_as_uris: Option<Vec<String>>,
}

/// Replaces the caller's aliases (GoToSocial's API: the whole list each time; an empty list
/// removes them all).
async fn set_aliases(
    data: Data,
    auth: Auth,
    Body(form): Body<AliasForm>,
) -> Result<Json<Value>, AppError> {
    auth.require("write:accounts")?;
    let uris = form.also_known_as_uris.unwrap_or_default();
    let actor = services::moving::set_aliases(&data, &auth.actor, &uris).await?;
    Ok(Json(with_source(&data, &actor).await?))
}

#[derive(Default, Deserialize)]
struct MoveForm {
    password: Option<String>,
    moved_to_uri: Option<String>,
}

/// Moves the caller's account to `moved_to_uri` after checking the password (GoToSocial's
/// API). Answers 202: the old account has moved; its followers move as their servers act.
async fn move_account(
    data: Data,
    auth: Auth,
    Body(form): Body<MoveForm>,
) -> Result<(axum::http::StatusCode, Json<Value>), AppError> {
    auth.require("write:accounts")?;
    let mut problems = Vec::new();
    if form.password.as_deref().unwrap_or_default().is_empty() {
        problems.push(FieldError::new("password", "ERR_BLANK", "can't be blank"));
    }
    if form.moved_to_uri.as_deref().unwrap_or_default().trim().is_empty() {
        problems.push(FieldError::new("moved_to_uri", "ERR_BLANK", "can't be blank"));
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    check_password(&data, &auth, form.password.as_deref()).await?;
    let target = form.moved_to_uri.unwrap_or_default();
    let actor = services::moving::move_account(&data, &auth.actor, &target).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(with_source(&data, &actor).await?)))
}

/// The caller's archive as a zip download (see docs/migration.md).
async fn archive(data: Data, auth: Auth) -> Result<axum::response::Response, AppError> {
    auth.require("read:accounts")?;
    archive_download(&data, &auth, None).await
}

#[derive(Default, Deserialize)]
struct ArchiveForm {
    password: Option<String>,
    passphrase: Option<String>,
}

/// The archive with the identity key, encrypted with `passphrase` (and the password checked,
/// as the key lets its holder speak for the account).
async fn archive_with_identity(
    data: Data,
    auth: Auth,
    Body(form): Body<ArchiveForm>,
) -> Result<axum::response::Response, AppError> {
    auth.require("read:accounts")?;
    let passphrase = form.passphrase.unwrap_or_default();
    if passphrase.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "passphrase",
            "ERR_BLANK",
            "can't be blank",
        )]));
    }
    check_password(&data, &auth, form.password.as_deref()).await?;
    archive_download(&data, &auth, Some(&passphrase)).await
}

/// Builds the archive into the media directory's `exports/`, streams it, and removes it.
async fn archive_download(
    data: &Data,
    auth: &Auth,
    passphrase: Option<&str>,
) -> Result<axum::response::Response, AppError> {
    let dir = data.config.media_dir.join("exports");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Other(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{}-{}.zip", auth.actor.username, data.db.next_id()));
    services::archive::export(data, &auth.actor, &path, passphrase).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| AppError::Other(anyhow::anyhow!("opening {}: {e}", path.display())))?;
    // Unlinked at once: the open file stays readable until the response is sent.
    let _ = tokio::fs::remove_file(&path).await;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let name = format!("ferry-archive-{}.zip", auth.actor.username);
    axum::response::Response::builder()
        .header("Content-Type", "application/zip")
        .header("Content-Disposition", format!("attachment; filename=\"{name}\""))
        .body(body)
        .map_err(|e| AppError::Other(e.into()))
}

/// The progress of the caller's move: followers moved, pending and failed, per server.
async fn move_progress(
    data: Data,
    auth: Auth,
) -> Result<Json<services::moving::MoveProgress>, AppError> {
    auth.require("read:accounts")?;
    services::moving::progress(&data, &auth.actor)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound("this account has not moved".to_owned()))
}

/// The caller's password, asked again before acts that hand the account over (moving it, or
/// exporting its identity key): 422 with `details` when it is missing or wrong.
async fn check_password(data: &Data, auth: &Auth, password: Option<&str>) -> Result<(), AppError> {
    let password = password.unwrap_or_default();
    if password.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "password",
            "ERR_BLANK",
            "can't be blank",
        )]));
    }
    if services::accounts::authenticate(data, &auth.actor.username, password).await.is_err() {
        return Err(AppError::Validation(vec![FieldError::new(
            "password",
            "ERR_INVALID",
            "is wrong",
        )]));
    }
    Ok(())
}

#[derive(Default, Deserialize)]
struct MoveFromForm {
    password: Option<String>,
    moved_from_uri: Option<String>,
}

/// Ferry's own: moves the followers of `moved_from_uri`, an old account whose server may be
/// gone, to the caller (pull mode; see docs/migration.md). Answers 202 with what was sent.
async fn move_from(
    data: Data,
    auth: Auth,
    Body(form): Body<MoveFromForm>,
) -> Result<(axum::http::StatusCode, Json<services::moving::PullMove>), AppError> {
    auth.require("write:accounts")?;
    let from = form.moved_from_uri.unwrap_or_default();
    if from.trim().is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "moved_from_uri",
            "ERR_BLANK",
            "can't be blank",
        )]));
    }
    check_password(&data, &auth, form.password.as_deref()).await?;
    let sent = services::moving::move_from(&data, &auth.actor, &from).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(sent)))
}
