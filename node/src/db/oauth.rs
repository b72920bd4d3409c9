//! `oauth_apps`, `oauth_tokens`, `oauth_codes`. Secrets are stored as SHA-256 hashes.

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// A registered client application.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppRow {
    pub id: i64,
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub website: Option<String>,
    /// Newline-separated.
    pub redirect_uris: String,
    /// Space-separated.
    pub scopes: String,
    pub created_at: i64,
}

/// An access token (hashes only).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub token_hash: String,
    pub refresh_hash: Option<String>,
    pub app_id: Option<i64>,
    pub account_id: Option<i64>,
    pub scopes: String,
    pub created_at: i64,
    pub revoked: bool,
}

/// An authorization code.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CodeRow {
    pub code_hash: String,
    pub app_id: i64,
    pub account_id: i64,
    pub redirect_uri: String,
    pub scopes: String,
    pub expires_at: i64,
    pub used: bool,
}

const APP_COLUMNS: &str =
    "id, client_id, client_secret, name, website, redirect_uris, scopes, created_at";
const TOKEN_COLUMNS: &str =
    "id, token_hash, refresh_hash, app_id, account_id, scopes, created_at, revoked";

/// Registers an application.
pub async fn insert_app(tx: &mut Tx, app: &AppRow) -> Result<(), sqlx::Error> {
    let sql =
        format!("INSERT INTO oauth_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    on_tx!(tx, |conn| {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(app.id)
            .bind(&app.client_id)
            .bind(&app.client_secret)
            .bind(&app.name)
            .bind(&app.website)
            .bind(&app.redirect_uris)
            .bind(&app.scopes)
            .bind(app.created_at)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// The application with this client id.
pub async fn app_by_client_id(db: &Db, client_id: &str) -> Result<Option<AppRow>, sqlx::Error> {
    let sql = format!("SELECT {APP_COLUMNS} FROM oauth_apps WHERE client_id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, AppRow>(AssertSqlSafe(sql.as_str()))
        .bind(client_id)
        .fetch_optional(pool)
        .await)
}

/// The application with this id.
pub async fn app_by_id(db: &Db, id: i64) -> Result<Option<AppRow>, sqlx::Error> {
    let sql = format!("SELECT {APP_COLUMNS} FROM oauth_apps WHERE id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, AppRow>(AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// Stores a token.
pub async fn insert_token(tx: &mut Tx, token: &TokenRow) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO oauth_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    on_tx!(tx, |conn| {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(token.id)
            .bind(&token.token_hash)
            .bind(&token.refresh_hash)
            .bind(token.app_id)
            .bind(token.account_id)
            .bind(&token.scopes)
            .bind(token.created_at)
            .bind(token.revoked)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// The live token with this hash.
pub async fn token_by_hash(db: &Db, hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
    let sql =
        format!("SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = $1 AND NOT revoked");
    on_db!(db, |pool| sqlx::query_as::<_, TokenRow>(AssertSqlSafe(sql.as_str()))
        .bind(hash)
        .fetch_optional(pool)
        .await)
}

/// The live token with this refresh-token hash.
pub async fn token_by_refresh(db: &Db, hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
    let sql =
        format!("SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE refresh_hash = $1 AND NOT revoked");
    on_db!(db, |pool| sqlx::query_as::<_, TokenRow>(AssertSqlSafe(sql.as_str()))
        .bind(hash)
        .fetch_optional(pool)
        .await)
}

/// Revokes a token by id.
pub async fn revoke(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE oauth_tokens SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Stores an authorization code.
pub async fn insert_code(tx: &mut Tx, code: &CodeRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, app_id, account_id, redirect_uri, scopes, expires_at, used)
             VALUES ($1, $2, $3, $4, $5, $6, FALSE)",
        )
        .bind(&code.code_hash)
        .bind(code.app_id)
        .bind(code.account_id)
        .bind(&code.redirect_uri)
        .bind(&code.scopes)
        .bind(code.expires_at)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// Marks a code used and returns it, once; a second use returns `None`.
pub async fn take_code(tx: &mut Tx, hash: &str) -> Result<Option<CodeRow>, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, CodeRow>(
            "UPDATE oauth_codes SET used = TRUE WHERE code_hash = $1 AND NOT used
             RETURNING code_hash, app_id, account_id, redirect_uri, scopes, expires_at, used",
        )
        .bind(hash)
        .fetch_optional(conn)
        .await
    })
}
