//! Notifications: list, show, dismiss, clear.

use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::api::extract::{Auth, PageParams, link_header};
use crate::api::views;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;

const KINDS: [&str; 5] = ["follow", "follow_request", "mention", "reblog", "favourite"];

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/clear", post(clear))
        .route("/api/v1/notifications/{id}", get(show))
        .route("/api/v1/notifications/{id}/dismiss", post(dismiss))
}

async fn list(
    data: Data,
    auth: Auth,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<Value>>), AppError> {
    auth.require("read:notifications")?;
    let raw = query.unwrap_or_default();
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let params = PageParams {
        max_id: get("max_id"),
        since_id: get("since_id"),
        min_id: get("min_id"),
        limit: get("limit"),
    };
    let types: Vec<String> =
        pairs.iter().filter(|(k, _)| k == "types[]").map(|(_, v)| v.clone()).collect();
    let excluded: Vec<String> =
        pairs.iter().filter(|(k, _)| k == "exclude_types[]").map(|(_, v)| v.clone()).collect();
    let kinds: Vec<String> = if types.is_empty() && excluded.is_empty() {
        Vec::new()
    } else {
        KINDS
            .iter()
            .map(|k| (*k).to_owned())
            .filter(|k| (types.is_empty() || types.contains(k)) && !excluded.contains(k))
            .collect()
    };
    if !types.is_empty() && kinds.is_empty() {
        return Ok((HeaderMap::new(), Json(Vec::new())));
    }
    let page = params.page(40, 80)?;
    let rows = db::notifications::page(&data.db, auth.actor.id, &kinds, &page).await?;
    let base = format!("{}api/v1/notifications", data.config.base_url());
    let headers = link_header(&base, rows.first().map(|n| n.id), rows.last().map(|n| n.id), "");
    Ok((headers, Json(views::notifications(&data, &rows, auth.actor.id).await?)))
}

async fn show(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("read:notifications")?;
    let not_found = || AppError::NotFound(format!("notification {id} not found"));
    let row =
        db::notifications::by_id(&data.db, auth.actor.id, id.parse().map_err(|_| not_found())?)
            .await?
            .ok_or_else(not_found)?;
    views::notifications(&data, &[row], auth.actor.id).await?.pop().map(Json).ok_or_else(not_found)
}

async fn dismiss(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:notifications")?;
    let not_found = || AppError::NotFound(format!("notification {id} not found"));
    let mut tx = data.db.begin().await?;
    let found =
        db::notifications::dismiss(&mut tx, auth.actor.id, id.parse().map_err(|_| not_found())?)
            .await?;
    tx.commit().await?;
    if !found {
        return Err(not_found());
    }
    Ok(Json(json!({})))
}

async fn clear(data: Data, auth: Auth) -> Result<Json<Value>, AppError> {
    auth.require("write:notifications")?;
    let mut tx = data.db.begin().await?;
    db::notifications::clear(&mut tx, auth.actor.id).await?;
    tx.commit().await?;
    Ok(Json(json!({})))
}
