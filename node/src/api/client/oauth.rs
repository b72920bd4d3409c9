//! OAuth 2: app registration, the token endpoint (authorization_code, password,
//! client_credentials, refresh_token), revocation, the login form and server metadata.

use axum::extract::Query;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::{Body, hash_secret};
use crate::db::oauth::{AppRow, CodeRow, TokenRow};
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::ids::now_ms;
use crate::services::accounts::authenticate;
use crate::services::content::escape;

const SCOPES: [&str; 4] = ["read", "write", "follow", "push"];
const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v1/apps", post(create_app))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/authorize", get(authorize_form).post(authorize))
        .route("/.well-known/oauth-authorization-server", get(metadata))
}

/// An RFC 6749 error response.
fn oauth(code: &'static str, description: impl Into<String>) -> AppError {
    AppError::OAuth { code, description: description.into() }
}

fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks a space- (or `+`-) separated scope list against what Ferry grants.
fn parse_scopes(raw: Option<&str>) -> Result<String, AppError> {
    let raw = raw.unwrap_or("read");
    let scopes: Vec<&str> = raw.split([' ', '+']).filter(|s| !s.is_empty()).collect();
    for scope in &scopes {
        let base = scope.split(':').next().unwrap_or(scope);
        if !SCOPES.contains(&base) {
            return Err(AppError::Invalid(format!("unknown scope {scope:?}")));
        }
    }
    Ok(if scopes.is_empty() { "read".to_owned() } else { scopes.join(" ") })
}

#[derive(Default, Deserialize)]
struct AppForm {
    client_name: Option<String>,
    redirect_uris: Option<Value>,
    scopes: Option<String>,
    website: Option<String>,
}

async fn create_app(data: Data, Body(form): Body<AppForm>) -> Result<Json<Value>, AppError> {
    let name = form
        .client_name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| AppError::Invalid("client_name is required".to_owned()))?;
    let redirect_uris: Vec<String> = match form.redirect_uris {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => {
            a.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        }
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(AppError::Invalid("redirect_uris must be a string or a list".to_owned()));
        }
    };
    if redirect_uris.is_empty() {
        return Err(AppError::Invalid("redirect_uris is required".to_owned()));
    }
    // Native apps use custom schemes (Ivory: `com.tapbots.Ivory.10217:/request_token`); only
    // require that each is an absolute URI.
    for uri in &redirect_uris {
        if uri != OOB && url::Url::parse(uri).is_err() {
            return Err(AppError::Invalid(format!("redirect_uri {uri:?} is not an absolute URI")));
        }
    }
    let scopes = parse_scopes(form.scopes.as_deref())?;
    let app = AppRow {
        id: data.db.next_id(),
        client_id: secret(),
        client_secret: secret(),
        name: name.chars().take(200).collect(),
        website: form.website,
        redirect_uris: redirect_uris.join("\n"),
        scopes: scopes.clone(),
        created_at: now_ms(),
    };
    let mut tx = data.db.begin().await?;
    db::oauth::insert_app(&mut tx, &app).await?;
    tx.commit().await?;
    Ok(Json(json!({
        "id": app.id.to_string(),
        "name": app.name,
        "website": app.website,
        "redirect_uri": app.redirect_uris.replace('\n', " "),
        "redirect_uris": redirect_uris,
        "scopes": scopes.split(' ').collect::<Vec<_>>(),
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "vapid_key": null,
    })))
}

#[derive(Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

async fn app_of(data: &Data, form: &TokenForm) -> Result<AppRow, AppError> {
    let invalid = || oauth("invalid_client", "client authentication failed");
    let client_id = form.client_id.as_deref().ok_or_else(invalid)?;
    let app = db::oauth::app_by_client_id(&data.db, client_id).await?.ok_or_else(invalid)?;
    if form.client_secret.as_deref() != Some(app.client_secret.as_str()) {
        return Err(invalid());
    }
    Ok(app)
}

/// Scopes requested for a token, which must be within the app's.
fn narrow(app: &AppRow, requested: Option<&str>) -> Result<String, AppError> {
    let Some(requested) = requested else { return Ok(app.scopes.clone()) };
    let requested =
        parse_scopes(Some(requested)).map_err(|e| oauth("invalid_scope", e.to_string()))?;
    for scope in requested.split(' ') {
        let base = scope.split(':').next().unwrap_or(scope);
        if !app.scopes.split(' ').any(|s| s == scope || s == base) {
            return Err(oauth("invalid_scope", format!("{scope} is not granted to this app")));
        }
    }
    Ok(requested)
}

async fn issue(
    data: &Data,
    app_id: Option<i64>,
    account: Option<i64>,
    scopes: &str,
) -> Result<Json<Value>, AppError> {
    let access = secret();
    let refresh = account.map(|_| secret());
    let created = now_ms();
    let mut tx = data.db.begin().await?;
    db::oauth::insert_token(
        &mut tx,
        &TokenRow {
            id: data.db.next_id(),
            token_hash: hash_secret(&access),
            refresh_hash: refresh.as_deref().map(hash_secret),
            app_id,
            account_id: account,
            scopes: scopes.to_owned(),
            created_at: created,
            revoked: false,
        },
    )
    .await?;
    tx.commit().await?;
    let mut body = json!({ "access_token": access, "token_type": "Bearer", "scope": scopes, "created_at": created / 1000 });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    Ok(Json(body))
}

async fn token(data: Data, Body(form): Body<TokenForm>) -> Result<Json<Value>, AppError> {
    let grant = form
        .grant_type
        .clone()
        .ok_or_else(|| oauth("invalid_request", "grant_type is required"))?;
    let app = app_of(&data, &form).await?;
    match grant.as_str() {
        "client_credentials" => {
            let scopes = narrow(&app, form.scope.as_deref())?;
            issue(&data, Some(app.id), None, &scopes).await
        }
        "password" => {
            let (Some(username), Some(password)) = (&form.username, &form.password) else {
                return Err(oauth("invalid_request", "username and password are required"));
            };
            let actor = authenticate(&data, username, password).await.map_err(|e| match e {
                AppError::Unauthorized(why) | AppError::Forbidden(why) => {
                    oauth("invalid_grant", why)
                }
                other => other,
            })?;
            let scopes = narrow(&app, form.scope.as_deref())?;
            issue(&data, Some(app.id), Some(actor.id), &scopes).await
        }
        "authorization_code" => {
            let code =
                form.code.as_deref().ok_or_else(|| oauth("invalid_request", "code is required"))?;
            let mut tx = data.db.begin().await?;
            let row = db::oauth::take_code(&mut tx, &hash_secret(code)).await?;
            tx.commit().await?;
            let row = row.ok_or_else(|| oauth("invalid_grant", "unknown or used code"))?;
            if row.app_id != app.id || row.expires_at < now_ms() {
                return Err(oauth("invalid_grant", "code expired or issued to another app"));
            }
            if form.redirect_uri.as_deref().is_some_and(|r| r != row.redirect_uri) {
                return Err(oauth("invalid_grant", "redirect_uri does not match"));
            }
            issue(&data, Some(app.id), Some(row.account_id), &row.scopes).await
        }
        "refresh_token" => {
            let refresh = form
                .refresh_token
                .as_deref()
                .ok_or_else(|| oauth("invalid_request", "refresh_token is required"))?;
            let old = db::oauth::token_by_refresh(&data.db, &hash_secret(refresh))
                .await?
                .filter(|t| t.app_id == Some(app.id))
                .ok_or_else(|| oauth("invalid_grant", "unknown refresh token"))?;
            let mut tx = data.db.begin().await?;
            db::oauth::revoke(&mut tx, old.id).await?;
            tx.commit().await?;
            issue(&data, Some(app.id), old.account_id, &old.scopes).await
        }
        other => Err(oauth("unsupported_grant_type", format!("{other} is not supported"))),
    }
}

#[derive(Default, Deserialize)]
struct RevokeForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
}

async fn revoke(data: Data, Body(form): Body<RevokeForm>) -> Result<Json<Value>, AppError> {
    let as_token_form = TokenForm {
        client_id: form.client_id,
        client_secret: form.client_secret,
        ..TokenForm::default()
    };
    let app = app_of(&data, &as_token_form).await?;
    let token = form.token.ok_or_else(|| oauth("invalid_request", "token is required"))?;
    if let Some(row) = db::oauth::token_by_hash(&data.db, &hash_secret(&token)).await?
        && row.app_id == Some(app.id)
    {
        let mut tx = data.db.begin().await?;
        db::oauth::revoke(&mut tx, row.id).await?;
        tx.commit().await?;
    }
    // RFC 7009: unknown tokens are not an error.
    Ok(Json(json!({})))
}

#[derive(Default, Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

async fn checked_app(
    data: &Data,
    params: &AuthorizeParams,
) -> Result<(AppRow, String, String), AppError> {
    if params.response_type.as_deref() != Some("code") {
        return Err(AppError::BadRequest("response_type must be code".to_owned()));
    }
    let client_id = params
        .client_id
        .as_deref()
        .ok_or_else(|| AppError::BadRequest("client_id is required".to_owned()))?;
    let app = db::oauth::app_by_client_id(&data.db, client_id)
        .await?
        .ok_or_else(|| AppError::NotFound("unknown client_id".to_owned()))?;
    let redirect = params
        .redirect_uri
        .clone()
        .unwrap_or_else(|| app.redirect_uris.lines().next().unwrap_or(OOB).to_owned());
    if !app.redirect_uris.lines().any(|r| r == redirect) {
        return Err(AppError::BadRequest("redirect_uri is not registered for this app".to_owned()));
    }
    let scopes = narrow(&app, params.scope.as_deref())?;
    Ok((app, redirect, scopes))
}

fn login_page(app: &AppRow, params: &AuthorizeParams, error: Option<&str>) -> Response {
    let hidden = |name: &str, value: &Option<String>| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(value.as_deref().unwrap_or(""))
        )
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Log in</title></head><body>\
         <h1>Authorize {}</h1>{}<form method=\"post\" action=\"/oauth/authorize\">{}{}{}{}{}\
         <label>Username <input name=\"username\" autocomplete=\"username\"></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\"></label>\
         <button type=\"submit\">Authorize</button></form></body></html>",
        escape(&app.name),
        error.map(|e| format!("<p role=\"alert\">{}</p>", escape(e))).unwrap_or_default(),
        hidden("response_type", &params.response_type),
        hidden("client_id", &params.client_id),
        hidden("redirect_uri", &params.redirect_uri),
        hidden("scope", &params.scope),
        hidden("state", &params.state),
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

async fn authorize_form(
    data: Data,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, AppError> {
    let (app, _, _) = checked_app(&data, &params).await?;
    Ok(login_page(&app, &params, None))
}

async fn authorize(data: Data, Body(params): Body<AuthorizeParams>) -> Result<Response, AppError> {
    let (app, redirect, scopes) = checked_app(&data, &params).await?;
    let (Some(username), Some(password)) = (&params.username, &params.password) else {
        return Ok(login_page(&app, &params, Some("Enter your username and password.")));
    };
    let Ok(actor) = authenticate(&data, username, password).await else {
        return Ok(login_page(&app, &params, Some("Invalid username or password.")));
    };
    let code = secret();
    let mut tx = data.db.begin().await?;
    db::oauth::insert_code(
        &mut tx,
        &CodeRow {
            code_hash: hash_secret(&code),
            app_id: app.id,
            account_id: actor.id,
            redirect_uri: redirect.clone(),
            scopes,
            expires_at: now_ms() + 10 * 60_000,
            used: false,
        },
    )
    .await?;
    tx.commit().await?;
    if redirect == OOB {
        return Ok(Html(format!(
            "<!doctype html><p>Your authorization code:</p><pre>{}</pre>",
            escape(&code)
        ))
        .into_response());
    }
    let mut target = url::Url::parse(&redirect).map_err(|e| AppError::Invalid(e.to_string()))?;
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &params.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    Ok(Redirect::to(target.as_str()).into_response())
}

async fn metadata(data: Data) -> Json<Value> {
    let base = data.config.base_url();
    Json(json!({
        "issuer": base.as_str(),
        "authorization_endpoint": base.join("oauth/authorize").map(|u| u.to_string()).unwrap_or_default(),
        "token_endpoint": base.join("oauth/token").map(|u| u.to_string()).unwrap_or_default(),
        "revocation_endpoint": base.join("oauth/revoke").map(|u| u.to_string()).unwrap_or_default(),
        "app_registration_endpoint": base.join("api/v1/apps").map(|u| u.to_string()).unwrap_or_default(),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    }))
}

/// The token a fresh sign-up receives: the registering app token's scopes, tied to its app.
pub(super) async fn issue_for_signup(
    data: &Data,
    app_id: Option<i64>,
    account: i64,
    scopes: &str,
) -> Result<Value, AppError> {
    issue(data, app_id, Some(account), scopes).await.map(|Json(v)| v)
}
