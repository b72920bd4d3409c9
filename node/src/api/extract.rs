//! Our extractors: bodies (JSON or form) with our error format, bearer-token auth, pagination.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::db::actors::ActorRow;
use crate::db::notes::Page;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;

/// A request body as JSON, form-encoded or (for empty bodies) nothing, as Mastodon accepts.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Body<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            let axum::Json(value) =
                axum::Json::<T>::from_request(req, state).await.map_err(json_error)?;
            Ok(Body(value))
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            let bytes = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| AppError::TooLarge(format!("request body: {e}")))?;
            form_body(&bytes).map(Body)
        } else {
            let bytes = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| AppError::TooLarge(format!("request body: {e}")))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Body(T::default()));
            }
            // No content type: try JSON, then a form (curl sends forms without one).
            if let Ok(value) = serde_json::from_slice(&bytes) {
                return Ok(Body(value));
            }
            form_body(&bytes).map(Body)
        }
    }
}

fn json_error(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            AppError::Invalid(format!("invalid field: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            AppError::BadRequest(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::BytesRejection(e) => {
            AppError::TooLarge(format!("request body: {}", e.body_text()))
        }
        other => AppError::BadRequest(other.body_text()),
    }
}

/// Reads a form body the way Mastodon's clients send it: `key=value` pairs, with `key[]=a&key[]=b`
/// collected into a list (serde_urlencoded cannot express lists).
fn form_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut map = serde_json::Map::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        match key.strip_suffix("[]") {
            Some(list) => {
                let entry = map
                    .entry(list.to_owned())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let serde_json::Value::Array(items) = entry {
                    items.push(serde_json::Value::String(value.into_owned()));
                }
            }
            None => {
                map.insert(key.into_owned(), serde_json::Value::String(value.into_owned()));
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| AppError::Invalid(format!("invalid field: {e}")))
}

/// SHA-256 of a secret, hex: how tokens and codes are stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The caller, identified by a bearer token.
pub struct Auth {
    /// The logged-in actor.
    pub actor: ActorRow,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

/// A bearer token that may be absent (public endpoints that show more when logged in).
pub struct MaybeAuth(pub Option<Auth>);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate(parts: &Parts, data: &Data) -> Result<Option<Auth>, AppError> {
    let Some(token) = bearer(parts) else { return Ok(None) };
    let invalid = || AppError::Unauthorized("The access token is invalid".to_owned());
    let hash = hash_secret(token);
    let Some((actor, scopes)) = db::actors::by_token_hash(&data.db, &hash).await? else {
        // No user behind it: say whether it is an app token (client_credentials), which
        // identifies none, or no live token at all.
        let row = db::oauth::token_by_hash(&data.db, &hash).await?.ok_or_else(invalid)?;
        return Err(match row.account_id {
            None => AppError::Unauthorized("This method requires an authenticated user".to_owned()),
            Some(_) => invalid(),
        });
    };
    if actor.suspended || actor.deleted_at.is_some() {
        return Err(AppError::Forbidden("Your login is currently disabled".to_owned()));
    }
    Ok(Some(Auth { actor, scopes: scopes.split_whitespace().map(str::to_owned).collect() }))
}

impl FromRequestParts<()> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &()) -> Result<Self, AppError> {
        let data = Data::from_request_parts(parts, &())
            .await
            .map_err(|_| AppError::Other(anyhow::anyhow!("no federation data")))?;
        authenticate(parts, &data)
            .await?
            .ok_or_else(|| AppError::Unauthorized("The access token is invalid".to_owned()))
    }
}

impl FromRequestParts<()> for MaybeAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &()) -> Result<Self, AppError> {
        let data = Data::from_request_parts(parts, &())
            .await
            .map_err(|_| AppError::Other(anyhow::anyhow!("no federation data")))?;
        Ok(MaybeAuth(authenticate(parts, &data).await?))
    }
}

impl Auth {
    /// Fails unless the token carries `scope` (or its parent: `write` covers `write:statuses`).
    pub fn require(&self, scope: &str) -> Result<(), AppError> {
        let parent = scope.split(':').next().unwrap_or(scope);
        if self.scopes.iter().any(|s| s == scope || s == parent) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "This action is outside the authorized scopes (needs {scope})"
            )))
        }
    }
}

/// `max_id`, `since_id`, `min_id`, `limit` query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    pub max_id: Option<String>,
    pub since_id: Option<String>,
    pub min_id: Option<String>,
    pub limit: Option<String>,
}

fn parse_id(name: &str, raw: &Option<String>) -> Result<Option<i64>, AppError> {
    match raw.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("{name} must be an id, got {s:?}"))),
    }
}

impl PageParams {
    /// The page, with `limit` defaulting to `default` and capped at `max`.
    pub fn page(&self, default: i64, max: i64) -> Result<Page, AppError> {
        let limit = match self.limit.as_deref().filter(|s| !s.is_empty()) {
            None => default,
            Some(s) => s
                .parse::<i64>()
                .map_err(|_| AppError::BadRequest(format!("limit must be a number, got {s:?}")))?,
        };
        Ok(Page {
            max_id: parse_id("max_id", &self.max_id)?,
            since_id: parse_id("since_id", &self.since_id)?,
            min_id: parse_id("min_id", &self.min_id)?,
            limit: limit.clamp(1, max),
        })
    }
}

/// The `Link` header Mastodon sends for a page whose ids run from `newest` to `oldest`.
pub fn link_header(base: &str, newest: Option<i64>, oldest: Option<i64>, extra: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let (Some(newest), Some(oldest)) = (newest, oldest) {
        let link = format!(
            "<{base}?max_id={oldest}{extra}>; rel=\"next\", <{base}?min_id={newest}{extra}>; rel=\"prev\""
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, value);
        }
    }
    headers
}
