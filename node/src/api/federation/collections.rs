//! Outbox, followers and following as paged `OrderedCollection`s.

use axum::Router;
use axum::extract::{OriginalUri, Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use ferry_protocol::objects::{OrderedCollection, OrderedCollectionPage};
use serde::Deserialize;
use url::Url;

use crate::api::federation::{activity_json, require_signed_get};
use crate::db::actors::ActorRow;
use crate::db::follows::Side;
use crate::db::notes::Page;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::federation::objects::note::load_note;
use crate::urls;

const PAGE_SIZE: i64 = 40;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/users/{username}/outbox", get(outbox))
        .route("/users/{username}/followers", get(followers))
        .route("/users/{username}/following", get(following))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<String>,
    max_id: Option<i64>,
}

async fn local(data: &Data, username: &str) -> Result<ActorRow, AppError> {
    db::actors::by_handle(&data.db, username, &data.config.domain)
        .await?
        .filter(|a| a.is_local && a.deleted_at.is_none() && a.kind != "Application")
        .ok_or_else(|| AppError::NotFound(format!("no account {username}")))
}

fn with_query(base: &Url, query: &str) -> Url {
    let mut url = base.clone();
    url.set_query(Some(query));
    url
}

async fn follow_collection(
    data: Data,
    username: String,
    query: PageQuery,
    side: Side,
) -> Result<Response, AppError> {
    let actor = local(&data, &username).await?;
    let id = match side {
        Side::Followers => urls::followers(&data.config, &username),
        Side::Following => urls::following(&data.config, &username),
    };
    let counts = db::actors::counts(&data.db, actor.id).await?;
    let total = match side {
        Side::Followers => counts.followers,
        Side::Following => counts.following,
    } as u64;
    if query.page.is_none() {
        return Ok(activity_json(OrderedCollection::<Url> {
            kind: Default::default(),
            total_items: total,
            first: Some(with_query(&id, "page=true")),
            last: None,
            ordered_items: None,
            id,
        }));
    }
    let rows =
        db::follows::page(&data.db, actor.id, side, query.max_id.unwrap_or(i64::MAX), PAGE_SIZE)
            .await?;
    let other: Vec<i64> = rows.iter().map(|f| f.listed(side)).collect();
    let actors = db::actors::by_ids(&data.db, &other).await?;
    let items: Vec<Url> = other
        .iter()
        .filter_map(|oid| actors.iter().find(|a| a.id == *oid))
        .filter_map(|a| Url::parse(&a.ap_id).ok())
        .collect();
    let next = (rows.len() as i64 == PAGE_SIZE).then(|| {
        with_query(&id, &format!("page=true&max_id={}", rows.last().map(|r| r.id).unwrap_or(0)))
    });
    let page_id = with_query(
        &id,
        &format!("page=true{}", query.max_id.map(|m| format!("&max_id={m}")).unwrap_or_default()),
    );
    Ok(activity_json(OrderedCollectionPage {
        id: page_id,
        kind: Default::default(),
        part_of: id,
        next,
        prev: None,
        total_items: Some(total),
        ordered_items: items,
    }))
}

async fn followers(
    data: Data,
    Path(username): Path<String>,
    Query(query): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_signed_get(&data, &uri, &headers).await?;
    follow_collection(data, username, query, Side::Followers).await
}

async fn following(
    data: Data,
    Path(username): Path<String>,
    Query(query): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_signed_get(&data, &uri, &headers).await?;
    follow_collection(data, username, query, Side::Following).await
}

async fn outbox(
    data: Data,
    Path(username): Path<String>,
    Query(query): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_signed_get(&data, &uri, &headers).await?;
    let actor = local(&data, &username).await?;
    let id = urls::outbox(&data.config, &username);
    let counts = db::actors::counts(&data.db, actor.id).await?;
    if query.page.is_none() {
        return Ok(activity_json(OrderedCollection::<serde_json::Value> {
            kind: Default::default(),
            total_items: counts.notes as u64,
            first: Some(with_query(&id, "page=true")),
            last: None,
            ordered_items: None,
            id,
        }));
    }
    let page = Page { max_id: query.max_id, since_id: None, min_id: None, limit: PAGE_SIZE };
    // Anonymous viewer: only public and unlisted notes appear in the outbox.
    let notes = db::notes::by_author(&data.db, actor.id, 0, &page).await?;
    let mut items = Vec::new();
    for note in notes.iter().filter(|n| n.reblog_of_id.is_none()) {
        let object = load_note(&data, note).await?;
        items.push(serde_json::json!({
            "id": format!("{}/activity", note.ap_id),
            "type": "Create",
            "actor": actor.ap_id,
            "published": object.published,
            "to": object.to,
            "cc": object.cc,
            "object": object,
        }));
    }
    let next = (notes.len() as i64 == PAGE_SIZE).then(|| {
        with_query(&id, &format!("page=true&max_id={}", notes.last().map(|n| n.id).unwrap_or(0)))
    });
    let page_id = with_query(
        &id,
        &format!("page=true{}", query.max_id.map(|m| format!("&max_id={m}")).unwrap_or_default()),
    );
    Ok(activity_json(OrderedCollectionPage {
        id: page_id,
        kind: Default::default(),
        part_of: id,
        next,
        prev: None,
        total_items: Some(counts.notes as u64),
        ordered_items: items,
    }))
}
