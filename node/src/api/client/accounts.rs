//! Accounts: sign-up, the logged-in account, profiles, follows, relationships, follow requests,
//! blocks and mutes.

use axum::extract::{Path, Query, RawQuery};
use axum::http::HeaderMap;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::{Auth, Body, MaybeAuth, PageParams, link_header};
use crate::api::views;
use crate::db::actors::ActorRow;
use crate::db::blocks::Kind;
use crate::db::follows::Side;
use crate::db::{self};
use crate::error::{AppError, FieldError};
use crate::federation::Data;
use crate::services::accounts::CreateAccount;
use crate::services::{self};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v1/accounts", post(sign_up))
        .route("/api/v1/accounts/verify_credentials", get(verify_credentials))
        .route("/api/v1/accounts/update_credentials", patch(update_credentials))
        .route("/api/v1/accounts/lookup", get(lookup))
        .route("/api/v1/accounts/relationships", get(relationships))
        .route("/api/v1/accounts/{id}", get(show))
        .route("/api/v1/accounts/{id}/follow", post(follow))
        .route("/api/v1/accounts/{id}/unfollow", post(unfollow))
        .route("/api/v1/accounts/{id}/block", post(block))
        .route("/api/v1/accounts/{id}/unblock", post(unblock))
        .route("/api/v1/accounts/{id}/mute", post(mute))
        .route("/api/v1/accounts/{id}/unmute", post(unmute))
        .route("/api/v1/blocks", get(blocks))
        .route("/api/v1/mutes", get(mutes))
        .route("/api/v1/accounts/{id}/followers", get(followers))
        .route("/api/v1/accounts/{id}/following", get(following))
        .route("/api/v1/accounts/{id}/statuses", get(statuses))
        .route("/api/v1/follow_requests", get(follow_requests))
        .route("/api/v1/follow_requests/{id}/authorize", post(authorize))
        .route("/api/v1/follow_requests/{id}/reject", post(reject))
}

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound(format!("account {raw} not found")))
}

async fn actor_by_id(data: &Data, raw: &str) -> Result<ActorRow, AppError> {
    db::actors::by_id(&data.db, parse_id(raw)?)
        .await?
        .filter(|a| a.deleted_at.is_none() && a.kind != "Application")
        .ok_or_else(|| AppError::NotFound(format!("account {raw} not found")))
}

#[derive(Default, Deserialize)]
struct SignUpForm {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    agreement: Option<Value>,
    locale: Option<String>,
    reason: Option<String>,
}

/// Registration needs an app token (client_credentials), as Mastodon's does.
async fn sign_up(
    data: Data,
    headers: HeaderMap,
    Body(form): Body<SignUpForm>,
) -> Result<Json<Value>, AppError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or_else(|| AppError::Unauthorized("an app token is required to sign up".to_owned()))?;
    let app_token = db::oauth::token_by_hash(&data.db, &crate::api::extract::hash_secret(token))
        .await?
        .ok_or_else(|| AppError::Unauthorized("The access token is invalid".to_owned()))?;
    // As Mastodon: the app token must allow creating accounts, and the new user's token gets
    // the app token's scopes, nothing more.
    if !app_token.scopes.split_whitespace().any(|s| s == "write" || s == "write:accounts") {
        return Err(AppError::Forbidden(
            "This action is outside the authorized scopes (needs write:accounts)".to_owned(),
        ));
    }
    if !data.config.registrations_open {
        return Err(AppError::Forbidden("registrations are closed on this node".to_owned()));
    }
    let truthy = |v: &Option<Value>| {
        matches!(v, Some(Value::Bool(true)))
            || matches!(v, Some(Value::String(s)) if s == "true" || s == "1")
    };
    // Reported with the username's and password's problems (apps show them by field).
    let mut problems = Vec::new();
    if !truthy(&form.agreement) {
        problems.push(FieldError::new("agreement", "ERR_ACCEPTED", "must be accepted"));
    }
    let _ = (&form.locale, &form.reason);
    let cmd = CreateAccount {
        username: form.username.unwrap_or_default(),
        password: form.password.unwrap_or_default(),
        email: form.email,
        admin: false,
    };
    let actor = services::accounts::create_reporting(&data, cmd, problems).await?;
    // The new user gets a token at once, as Mastodon answers with one.
    let access =
        super::oauth::issue_for_signup(&data, app_token.app_id, actor.id, &app_token.scopes)
            .await?;
    Ok(Json(access))
}

async fn verify_credentials(data: Data, auth: Auth) -> Result<Json<Value>, AppError> {
    auth.require("read:accounts")?;
    Ok(Json(with_source(&data, &auth.actor).await?))
}

#[derive(Default, Deserialize)]
struct CredentialsForm {
    display_name: Option<String>,
    note: Option<String>,
    locked: Option<Value>,
    discoverable: Option<Value>,
}

/// Mastodon's booleans arrive as JSON booleans or as form strings.
fn flag(value: &Option<Value>, name: &str) -> Result<Option<bool>, AppError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if matches!(s.as_str(), "true" | "1") => Ok(Some(true)),
        Some(Value::String(s)) if matches!(s.as_str(), "false" | "0") => Ok(Some(false)),
        Some(other) => Err(AppError::Invalid(format!("{name} must be a boolean, got {other}"))),
    }
}

async fn update_credentials(
    data: Data,
    auth: Auth,
    Body(form): Body<CredentialsForm>,
) -> Result<Json<Value>, AppError> {
    auth.require("write:accounts")?;
    let cmd = services::accounts::UpdateProfile {
        locked: flag(&form.locked, "locked")?,
        discoverable: flag(&form.discoverable, "discoverable")?,
        display_name: form.display_name,
        note: form.note,
    };
    let actor = services::accounts::update_profile(&data, &auth.actor, cmd).await?;
    Ok(Json(with_source(&data, &actor).await?))
}

/// The account view with `source`, as the logged-in user's own account is shown (with
/// GoToSocial's `also_known_as_uris`, which its alias settings read).
pub(super) async fn with_source(data: &Data, actor: &ActorRow) -> Result<Value, AppError> {
    let mut view = serde_json::to_value(views::account(data, actor).await?).unwrap_or_default();
    view["source"] = json!({
        "privacy": "public",
        "sensitive": false,
        "language": null,
        "note": services::content::to_text(&actor.summary),
        "fields": [],
        "follow_requests_count": 0,
        "also_known_as_uris": actor.aliases(),
    });
    Ok(view)
}

async fn show(data: Data, Path(id): Path<String>) -> Result<Json<views::AccountView>, AppError> {
    let actor = actor_by_id(&data, &id).await?;
    Ok(Json(views::account(&data, &actor).await?))
}

#[derive(Deserialize)]
struct LookupQuery {
    acct: Option<String>,
}

async fn lookup(
    data: Data,
    Query(query): Query<LookupQuery>,
) -> Result<Json<views::AccountView>, AppError> {
    let acct = query.acct.ok_or_else(|| AppError::BadRequest("acct is required".to_owned()))?;
    let acct = acct.trim_start_matches('@');
    let (username, domain) = match acct.split_once('@') {
        Some((u, d)) => (u, d.to_owned()),
        None => (acct, data.config.domain.clone()),
    };
    let actor = db::actors::by_handle(&data.db, username, &domain)
        .await?
        .filter(|a| a.deleted_at.is_none() && a.kind != "Application")
        .ok_or_else(|| AppError::NotFound(format!("account {acct} not found")))?;
    Ok(Json(views::account(&data, &actor).await?))
}

async fn relationships(
    data: Data,
    auth: Auth,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Value>>, AppError> {
    auth.require("read:follows")?;
    let ids: Vec<i64> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "id[]" || k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .take(100)
        .collect();
    Ok(Json(relationships_of(&data, auth.actor.id, &ids).await?))
}

/// Mastodon `Relationship`s of `me` with each of `ids`.
async fn relationships_of(data: &Data, me: i64, ids: &[i64]) -> Result<Vec<Value>, AppError> {
    let follows = db::follows::from_to_many(&data.db, me, ids).await?;
    let blocks = db::blocks::of(&data.db, me, ids).await?;
    Ok(ids
        .iter()
        .map(|id| {
            let out = follows.iter().find(|f| f.follower_id == me && f.followee_id == *id);
            let back = follows.iter().find(|f| f.followee_id == me && f.follower_id == *id);
            let has =
                |kind: Kind| blocks.iter().find(|b| b.target_id == *id && b.kind == kind.as_str());
            json!({
                "id": id.to_string(),
                "following": out.is_some_and(|f| f.accepted),
                "requested": out.is_some_and(|f| !f.accepted),
                "followed_by": back.is_some_and(|f| f.accepted),
                "requested_by": back.is_some_and(|f| !f.accepted),
                "showing_reblogs": true,
                "notifying": false,
                "languages": null,
                "blocking": has(Kind::Block).is_some(),
                "blocked_by": false,
                "muting": has(Kind::Mute).is_some(),
                "muting_notifications": has(Kind::Mute).is_some_and(|m| m.hide_notifications),
                "domain_blocking": false,
                "endorsed": false,
                "note": "",
            })
        })
        .collect())
}

async fn relationship_of(data: &Data, me: i64, other: i64) -> Result<Value, AppError> {
    let mut list = relationships_of(data, me, &[other]).await?;
    Ok(list.pop().unwrap_or_default())
}

async fn follow(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("follow")?;
    let target = actor_by_id(&data, &id).await?;
    services::follows::follow(&data, &auth.actor, &target).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, target.id).await?))
}

async fn unfollow(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("follow")?;
    let target = actor_by_id(&data, &id).await?;
    services::follows::unfollow(&data, &auth.actor, &target).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, target.id).await?))
}

async fn follow_list(
    data: Data,
    id: String,
    params: PageParams,
    side: Side,
) -> Result<(HeaderMap, Json<Vec<views::AccountView>>), AppError> {
    let actor = actor_by_id(&data, &id).await?;
    let page = params.page(40, 80)?;
    let rows =
        db::follows::page(&data.db, actor.id, side, page.max_id.unwrap_or(i64::MAX), page.limit)
            .await?;
    let ids: Vec<i64> = rows.iter().map(|f| f.listed(side)).collect();
    let actors = db::actors::by_ids(&data.db, &ids).await?;
    let ordered: Vec<ActorRow> =
        ids.iter().filter_map(|i| actors.iter().find(|a| a.id == *i).cloned()).collect();
    let path = match side {
        Side::Followers => "followers",
        Side::Following => "following",
    };
    let base = format!("{}api/v1/accounts/{}/{path}", data.config.base_url(), actor.id);
    let headers = link_header(&base, rows.first().map(|r| r.id), rows.last().map(|r| r.id), "");
    Ok((headers, Json(views::accounts(&data, &ordered).await?)))
}

async fn followers(
    data: Data,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<(HeaderMap, Json<Vec<views::AccountView>>), AppError> {
    follow_list(data, id, params, Side::Followers).await
}

async fn following(
    data: Data,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<(HeaderMap, Json<Vec<views::AccountView>>), AppError> {
    follow_list(data, id, params, Side::Following).await
}

async fn statuses(
    data: Data,
    auth: MaybeAuth,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<(HeaderMap, Json<Vec<Value>>), AppError> {
    let actor = actor_by_id(&data, &id).await?;
    let viewer = auth.0.as_ref().map(|a| a.actor.id).unwrap_or(0);
    let page = params.page(20, 40)?;
    let notes = db::notes::by_author(&data.db, actor.id, viewer, &page).await?;
    let base = format!("{}api/v1/accounts/{}/statuses", data.config.base_url(), actor.id);
    let headers = link_header(&base, notes.first().map(|n| n.id), notes.last().map(|n| n.id), "");
    Ok((headers, Json(views::statuses(&data, &notes, viewer).await?)))
}

async fn follow_requests(
    data: Data,
    auth: Auth,
) -> Result<Json<Vec<views::AccountView>>, AppError> {
    auth.require("read:follows")?;
    let rows = db::follows::pending_for(&data.db, auth.actor.id, 80).await?;
    let ids: Vec<i64> = rows.iter().map(|f| f.follower_id).collect();
    let actors = db::actors::by_ids(&data.db, &ids).await?;
    let ordered: Vec<ActorRow> =
        ids.iter().filter_map(|i| actors.iter().find(|a| a.id == *i).cloned()).collect();
    Ok(Json(views::accounts(&data, &ordered).await?))
}

async fn authorize(
    data: Data,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    auth.require("follow")?;
    let follower = parse_id(&id)?;
    services::follows::answer_request(&data, &auth.actor, follower, true).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, follower).await?))
}

async fn reject(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("follow")?;
    let follower = parse_id(&id)?;
    services::follows::answer_request(&data, &auth.actor, follower, false).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, follower).await?))
}

async fn block(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:blocks")?;
    let target = actor_by_id(&data, &id).await?;
    services::blocks::block(&data, &auth.actor, &target).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, target.id).await?))
}

async fn unblock(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:blocks")?;
    let target = actor_by_id(&data, &id).await?;
    services::blocks::unblock(&data, &auth.actor, &target).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, target.id).await?))
}

#[derive(Default, Deserialize)]
struct MuteForm {
    notifications: Option<Value>,
    duration: Option<Value>,
}

async fn mute(
    data: Data,
    auth: Auth,
    Path(id): Path<String>,
    Body(form): Body<MuteForm>,
) -> Result<Json<Value>, AppError> {
    auth.require("write:mutes")?;
    let target = actor_by_id(&data, &id).await?;
    // Timed mutes (`duration`) are not supported: a mute lasts until it is lifted.
    let _ = form.duration;
    let notifications = flag(&form.notifications, "notifications")?.unwrap_or(true);
    services::blocks::mute(&data, &auth.actor, &target, notifications).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, target.id).await?))
}

async fn unmute(data: Data, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    auth.require("write:mutes")?;
    let target = actor_by_id(&data, &id).await?;
    services::blocks::unmute(&data, &auth.actor, &target).await?;
    Ok(Json(relationship_of(&data, auth.actor.id, target.id).await?))
}

/// The accounts the caller blocks or mutes, newest first; `Link` pages by block id.
async fn block_list(
    data: Data,
    auth: Auth,
    kind: Kind,
    params: PageParams,
) -> Result<(HeaderMap, Json<Vec<views::AccountView>>), AppError> {
    let page = params.page(40, 80)?;
    let rows = db::blocks::page(
        &data.db,
        auth.actor.id,
        kind,
        page.max_id.unwrap_or(i64::MAX),
        page.limit,
    )
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.target_id).collect();
    let actors = db::actors::by_ids(&data.db, &ids).await?;
    let ordered: Vec<ActorRow> =
        ids.iter().filter_map(|i| actors.iter().find(|a| a.id == *i).cloned()).collect();
    let path = match kind {
        Kind::Block => "blocks",
        Kind::Mute => "mutes",
    };
    let base = format!("{}api/v1/{path}", data.config.base_url());
    let headers = link_header(&base, rows.first().map(|r| r.id), rows.last().map(|r| r.id), "");
    Ok((headers, Json(views::accounts(&data, &ordered).await?)))
}

async fn blocks(
    data: Data,
    auth: Auth,
    Query(params): Query<PageParams>,
) -> Result<(HeaderMap, Json<Vec<views::AccountView>>), AppError> {
    auth.require("read:blocks")?;
    block_list(data, auth, Kind::Block, params).await
}

async fn mutes(
    data: Data,
    auth: Auth,
    Query(params): Query<PageParams>,
) -> Result<(HeaderMap, Json<Vec<views::AccountView>>), AppError> {
    auth.require("read:mutes")?;
    block_list(data, auth, Kind::Mute, params).await
}
