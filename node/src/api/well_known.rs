//! WebFinger, host-meta and NodeInfo.

use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ferry_protocol::nodeinfo::{
    NodeInfo, NodeInfoLink, NodeInfoLinks, Services, Software, Usage, UsageUsers,
};
use ferry_protocol::webfinger::{Handle, Jrd, JrdLink};
use serde::Deserialize;

use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::urls;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/.well-known/webfinger", get(webfinger))
        .route("/.well-known/host-meta", get(host_meta))
        .route("/.well-known/nodeinfo", get(nodeinfo_links))
        .route("/nodeinfo/2.0", get(nodeinfo_20))
        .route("/nodeinfo/2.1", get(nodeinfo_21))
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

async fn webfinger(data: Data, Query(query): Query<WebfingerQuery>) -> Result<Response, AppError> {
    let resource = query
        .resource
        .ok_or_else(|| AppError::BadRequest("missing resource parameter".to_owned()))?;
    let username = if let Some(name) = urls::parse_actor(&data.config, &resource) {
        name
    } else {
        let handle = Handle::parse(&resource)
            .map_err(|e| AppError::BadRequest(format!("resource {resource:?}: {e}")))?;
        if handle.domain != data.config.domain {
            return Err(AppError::NotFound(format!("{handle} is not on this node")));
        }
        handle.username
    };
    let actor = db::actors::by_handle(&data.db, &username, &data.config.domain)
        .await?
        .filter(|a| a.is_local && a.deleted_at.is_none())
        .ok_or_else(|| AppError::NotFound(format!("no account {username}")))?;
    let jrd = Jrd {
        subject: format!("acct:{}@{}", actor.username, data.config.domain),
        aliases: vec![actor.ap_id.clone(), actor.profile_url.clone().unwrap_or_default()],
        links: vec![
            JrdLink {
                rel: "self".to_owned(),
                kind: Some("application/activity+json".to_owned()),
                href: Some(actor.ap_id.clone()),
                template: None,
            },
            JrdLink {
                rel: "http://webfinger.net/rel/profile-page".to_owned(),
                kind: Some("text/html".to_owned()),
                href: actor.profile_url.clone(),
                template: None,
            },
        ],
    };
    Ok(([(header::CONTENT_TYPE, "application/jrd+json; charset=utf-8")], Json(jrd)).into_response())
}

async fn host_meta(data: Data) -> Response {
    let template = format!("{}.well-known/webfinger?resource={{uri}}", data.config.base_url());
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XRD xmlns=\"http://docs.oasis-open.org/ns/xri/xrd-1.0\">\n  <Link rel=\"lrdd\" template=\"{template}\"/>\n</XRD>\n"
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/xrd+xml; charset=utf-8")], body)
        .into_response()
}

async fn nodeinfo_links(data: Data) -> Json<NodeInfoLinks> {
    let base = data.config.base_url();
    let link = |version: &str| NodeInfoLink {
        rel: format!("http://nodeinfo.diaspora.software/ns/schema/{version}"),
        href: base.join(&format!("nodeinfo/{version}")).expect("static path"),
    };
    Json(NodeInfoLinks { links: vec![link("2.0"), link("2.1")] })
}

async fn nodeinfo(data: &Data, version: &str) -> Result<Response, AppError> {
    let users = db::actors::count_local(&data.db).await? as u64;
    let posts = db::notes::count_local(&data.db).await? as u64;
    let info = NodeInfo {
        version: version.to_owned(),
        software: Software {
            name: "ferry".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            repository: (version == "2.1")
                .then(|| "https://github.com/ferry-social/ferry".to_owned()),
            homepage: None,
        },
        protocols: vec!["activitypub".to_owned()],
        services: Services { inbound: Vec::new(), outbound: Vec::new() },
        open_registrations: data.config.registrations_open,
        usage: Usage {
            users: UsageUsers { total: users, active_month: users, active_halfyear: users },
            local_posts: posts,
        },
        metadata: serde_json::json!({ "nodeName": data.config.instance_title, "nodeDescription": data.config.instance_description }),
    };
    let profile = format!(
        "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/{version}#\""
    );
    Ok(([(header::CONTENT_TYPE, profile)], Json(info)).into_response())
}

async fn nodeinfo_20(data: Data) -> Result<Response, AppError> {
    nodeinfo(&data, "2.0").await
}

async fn nodeinfo_21(data: Data) -> Result<Response, AppError> {
    nodeinfo(&data, "2.1").await
}
