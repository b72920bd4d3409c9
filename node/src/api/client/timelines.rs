//! Home and public timelines.

use axum::extract::Query;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::api::extract::{Auth, MaybeAuth, PageParams, link_header};
use crate::api::views;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v1/timelines/home", get(home))
        .route("/api/v1/timelines/public", get(public))
}

async fn home(
    data: Data,
    auth: Auth,
    Query(params): Query<PageParams>,
) -> Result<(HeaderMap, Json<Vec<Value>>), AppError> {
    auth.require("read:statuses")?;
    let page = params.page(20, 40)?;
    let notes = db::feed::home(&data.db, auth.actor.id, &page).await?;
    let base = format!("{}api/v1/timelines/home", data.config.base_url());
    let headers = link_header(&base, notes.first().map(|n| n.id), notes.last().map(|n| n.id), "");
    Ok((headers, Json(views::statuses(&data, &notes, auth.actor.id).await?)))
}

#[derive(Deserialize)]
struct PublicQuery {
    local: Option<String>,
    remote: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

async fn public(
    data: Data,
    auth: MaybeAuth,
    Query(query): Query<PublicQuery>,
) -> Result<(HeaderMap, Json<Vec<Value>>), AppError> {
    let flag = |v: &Option<String>| matches!(v.as_deref(), Some("true" | "1"));
    let local = if flag(&query.local) {
        Some(true)
    } else if flag(&query.remote) {
        Some(false)
    } else {
        None
    };
    let page = query.page.page(20, 40)?;
    let notes = db::notes::public(&data.db, local, &page).await?;
    let viewer = auth.0.as_ref().map(|a| a.actor.id).unwrap_or(0);
    let base = format!("{}api/v1/timelines/public", data.config.base_url());
    let headers = link_header(&base, notes.first().map(|n| n.id), notes.last().map(|n| n.id), "");
    Ok((headers, Json(views::statuses(&data, &notes, viewer).await?)))
}
