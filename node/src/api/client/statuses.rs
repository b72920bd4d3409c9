//! Statuses: post, show, delete, thread context, like and boost.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::{Auth, Body, MaybeAuth};
use crate::api::views;
use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::services::notes::{CreateNote, Visibility};
use crate::services::{self};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v1/statuses", post(create))
        .route("/api/v1/statuses/{id}", get(show).delete(delete))
        .route("/api/v1/statuses/{id}/context", get(context))
        .route("/api/v1/statuses/{id}/favourite", post(favourite))
        .route("/api/v1/statuses/{id}/unfavourite", post(unfavourite))
        .route("/api/v1/statuses/{id}/reblog", post(reblog))
        .route("/api/v1/statuses/{id}/unreblog", post(unreblog))
}

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound(format!("status {raw} not found")))
}

/// A note the viewer may see.
async fn visible(data: &Data, raw: &str, viewer: i64) -> Result<NoteRow, AppError> {
    let id = parse_id(raw)?;
    let note = db::notes::by_id(&data.db, id).await?.filter(|n| n.deleted_at.is_none());
    match note {
        Some(n) if db::notes::is_visible(&data.db, n.id, viewer).await? => Ok(n),
        _ => Err(AppError::NotFound(format!("status {raw} not found"))),
    }
}

#[derive(Default, Deserialize)]
struct StatusForm {
    status: Option<String>,
    #[serde(default)]
    media_ids: Vec<String>,
    in_reply_to_id: Option<String>,
    #[serde(default)]
    sensitive: Option<Value>,
    spoiler_text: Option<String>,
    visibility: Option<String>,
    language: Option<String>,
}

async fn create(
    data: Data,
    auth: Auth,
    Body(form): Body<StatusForm>,
) -> Result<Json<Value>, AppError> {
    auth.require("write:statuses")?;
    let visibility = Visibility::parse(form.visibility.as_deref().unwrap_or("public"))?;
    let in_reply_to = match form.in_reply_to_id.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(parse_id(raw)?),
        None => None,
    };
    let media_ids = form
        .media_ids
        .iter()
        .map(|m| {
            m.parse::<i64>().map_err(|_| AppError::Invalid(format!("media id {m:?} is not valid")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sensitive = matches!(form.sensitive, Some(Value::Bool(true)))
        || matches!(&form.sensitive, Some(Value::String(s)) if s == "true" || s == "1");
    let cmd = CreateNote {
        author: auth.actor.clone(),
        text: form.status.unwrap_or_default(),
        summary: form.spoiler_text.unwrap_or_default(),
        sensitive,
        visibility,
        language: form.language.filter(|l| !l.is_empty()),
        in_reply_to,
        media_ids,
    };
    let note = services::notes::create(&data, cmd).await?;
    Ok(Json(views::status(&data, &note, auth.actor.id).await?))
}

async fn show(
    data: Data,
    auth: MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let viewer = auth.0.as_ref().map(|a| a.actor.id).unwrap_or(0);
    let note = visible(&data, &id, viewer).await?;
    Ok(Json(views::status(&data, &note, viewer).await?))
}

async fn delete(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:statuses")?;
    let note = visible(&data, &id, auth.actor.id).await?;
    // Rendered before deletion, so clients can offer "delete and redraft" as Mastodon's do.
    let mut view = views::status(&data, &note, auth.actor.id).await?;
    services::notes::delete(&data, &auth.actor, note.id).await?;
    view["text"] = json!(services::content::to_text(&note.content));
    Ok(Json(view))
}

async fn context(
    data: Data,
    auth: MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let viewer = auth.0.as_ref().map(|a| a.actor.id).unwrap_or(0);
    let note = visible(&data, &id, viewer).await?;
    let ancestors = db::notes::ancestors(&data.db, &note, viewer).await?;
    let descendants = db::notes::descendants(&data.db, &note, viewer).await?;
    Ok(Json(json!({
        "ancestors": views::statuses(&data, &ancestors, viewer).await?,
        "descendants": views::statuses(&data, &descendants, viewer).await?,
    })))
}

async fn favourite(
    data: Data,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    auth.require("write:favourites")?;
    let note = services::interactions::favourite(&data, &auth.actor, parse_id(&id)?).await?;
    Ok(Json(views::status(&data, &note, auth.actor.id).await?))
}

async fn unfavourite(
    data: Data,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    auth.require("write:favourites")?;
    let note = services::interactions::unfavourite(&data, &auth.actor, parse_id(&id)?).await?;
    Ok(Json(views::status(&data, &note, auth.actor.id).await?))
}

async fn reblog(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:statuses")?;
    let boost = services::interactions::reblog(&data, &auth.actor, parse_id(&id)?).await?;
    Ok(Json(views::status(&data, &boost, auth.actor.id).await?))
}

async fn unreblog(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:statuses")?;
    let note = services::interactions::unreblog(&data, &auth.actor, parse_id(&id)?).await?;
    Ok(Json(views::status(&data, &note, auth.actor.id).await?))
}
