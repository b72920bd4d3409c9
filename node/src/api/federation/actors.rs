//! `GET /users/{username}` and `GET /actor`: actor documents, readable without a signature
//! (peers need them to verify anything).

use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::api::federation::activity_json;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::federation::objects::person::to_person;
use crate::services;
use crate::services::accounts::INSTANCE_USERNAME;
use crate::urls;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/users/{username}", get(actor))
        .route("/actor", get(instance_actor))
        .route("/@{username}", get(profile))
}

async fn actor(data: Data, Path(username): Path<String>) -> Result<Response, AppError> {
    let actor = db::actors::by_handle(&data.db, &username, &data.config.domain)
        .await?
        .filter(|a| a.is_local && a.kind != "Application")
        .ok_or_else(|| AppError::NotFound(format!("no account {username}")))?;
    if actor.deleted_at.is_some() {
        return Err(AppError::NotFound(format!("account {username} is gone")));
    }
    // Peers need the key to verify anything this account sends: create it now if the
    // account was made while the key pool was empty.
    let actor = if actor.public_key_pem.is_empty() {
        services::accounts::ensure_key(&data, actor.id).await?;
        db::actors::by_id(&data.db, actor.id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no account {username}")))?
    } else {
        actor
    };
    // Accounts made before identity keys existed get theirs now.
    let actor = if actor.identity_proof.is_none() {
        services::accounts::identity_key(&data, &actor).await?;
        db::actors::by_id(&data.db, actor.id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no account {username}")))?
    } else {
        actor
    };
    Ok(activity_json(to_person(&actor)?))
}

async fn instance_actor(data: Data) -> Result<Response, AppError> {
    let actor = db::actors::by_handle(&data.db, INSTANCE_USERNAME, &data.config.domain)
        .await?
        .ok_or_else(|| AppError::NotFound("instance actor".to_owned()))?;
    Ok(activity_json(to_person(&actor)?))
}

/// The HTML profile URL: activity+json clients get the actor; browsers a redirect to it for now,
/// or, once the account has moved, to the account it moved to.
async fn profile(
    data: Data,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    if ferry_protocol::context::accepts_activity_json(accept) {
        return actor(data, Path(username)).await;
    }
    let moved = db::actors::by_handle(&data.db, &username, &data.config.domain)
        .await?
        .filter(|a| a.is_local)
        .and_then(|a| a.moved_to);
    if let Some(moved) = moved {
        return Ok(Redirect::to(&moved).into_response());
    }
    Ok(Redirect::to(urls::actor(&data.config, &username).as_str()).into_response())
}
