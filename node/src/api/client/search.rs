//! `GET /api/v2/search`: accounts by handle (resolved remotely with `resolve=true`) and notes
//! or actors by URL.

use axum::extract::Query;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::MaybeAuth;
use crate::api::views;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::federation::fetch::{Resolved, resolve_handle, resolve_url};

pub(super) fn routes() -> Router {
    Router::new().route("/api/v2/search", get(search))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    resolve: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
}

async fn search(
    data: Data,
    auth: MaybeAuth,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, AppError> {
    let q = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| AppError::BadRequest("q is required".to_owned()))?;
    let viewer = auth.0.as_ref().map(|a| a.actor.id).unwrap_or(0);
    // Remote lookups cost the node requests; only logged-in users may trigger them.
    let resolve = matches!(query.resolve.as_deref(), Some("true" | "1")) && viewer > 0;
    let limit =
        query.limit.as_deref().and_then(|l| l.parse::<i64>().ok()).unwrap_or(20).clamp(1, 40);
    let mut accounts = Vec::new();
    let mut statuses = Vec::new();
    let wants = |k: &str| query.kind.as_deref().is_none_or(|t| t == k);

    if q.starts_with("https://") || q.starts_with("http://") {
        let url = url::Url::parse(q).map_err(|e| AppError::BadRequest(format!("q: {e}")))?;
        let found = if resolve {
            Some(resolve_url(&data, &url).await?)
        } else if let Some(actor) = db::actors::by_ap_id(&data.db, q).await? {
            Some(Resolved::Actor(actor))
        } else {
            db::notes::by_ap_id(&data.db, q).await?.map(Resolved::Note)
        };
        match found {
            Some(Resolved::Actor(actor)) if wants("accounts") => {
                accounts.push(views::account(&data, &actor).await?);
            }
            Some(Resolved::Note(note))
                if wants("statuses")
                    && db::notes::is_visible(&data.db, note.id, viewer).await? =>
            {
                statuses.push(views::status(&data, &note, viewer).await?);
            }
            _ => {}
        }
    } else if wants("accounts") {
        let handle = q.trim_start_matches('@');
        if handle.contains('@') {
            let actor = if resolve {
                Some(resolve_handle(&data, handle).await?)
            } else {
                let (user, domain) = handle.split_once('@').unwrap_or((handle, ""));
                db::actors::by_handle(&data.db, user, domain).await?
            };
            if let Some(actor) = actor.filter(|a| a.deleted_at.is_none()) {
                accounts.push(views::account(&data, &actor).await?);
            }
        } else {
            let found = db::actors::search(&data.db, handle, limit).await?;
            let found: Vec<_> = found.into_iter().filter(|a| a.kind != "Application").collect();
            accounts = views::accounts(&data, &found).await?;
        }
    }
    Ok(Json(json!({ "accounts": accounts, "statuses": statuses, "hashtags": [] })))
}
