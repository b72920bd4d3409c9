//! `accounts`: the local side of an actor (password hash, private key, admin flag).

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// A local account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub actor_id: i64,
    pub username: String,
    pub password_hash: String,
    pub private_key_pem: String,
    pub is_admin: bool,
    pub email: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str =
    "actor_id, username, password_hash, private_key_pem, is_admin, email, created_at";

/// Inserts the local part of an account whose actor row exists.
pub async fn insert(tx: &mut Tx, row: &AccountRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO accounts (actor_id, username, password_hash, private_key_pem, is_admin,
                email, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.actor_id)
        .bind(&row.username)
        .bind(&row.password_hash)
        .bind(&row.private_key_pem)
        .bind(row.is_admin)
        .bind(&row.email)
        .bind(row.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// The account with this username (case-insensitive).
pub async fn by_username(db: &Db, username: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE LOWER(username) = LOWER($1)");
    on_db!(db, |pool| sqlx::query_as::<_, AccountRow>(AssertSqlSafe(sql.as_str()))
        .bind(username)
        .fetch_optional(pool)
        .await)
}

/// The account of a local actor.
pub async fn by_actor(db: &Db, actor_id: i64) -> Result<Option<AccountRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE actor_id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, AccountRow>(AssertSqlSafe(sql.as_str()))
        .bind(actor_id)
        .fetch_optional(pool)
        .await)
}

/// Gives a keyless account its key (and its actor the public half); false if it had one.
pub async fn set_key(
    tx: &mut Tx,
    actor_id: i64,
    private_pem: &str,
    public_pem: &str,
) -> Result<bool, sqlx::Error> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE accounts SET private_key_pem = $1 WHERE actor_id = $2 AND private_key_pem = ''",
        )
        .bind(private_pem)
        .bind(actor_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected() == 1)
    })?;
    if updated {
        on_tx!(tx, |conn| {
            sqlx::query("UPDATE actors SET public_key_pem = $1 WHERE id = $2")
                .bind(public_pem)
                .bind(actor_id)
                .execute(conn)
                .await
                .map(|_| ())
        })?;
    }
    Ok(updated)
}

/// Accounts still waiting for a key (created while the key pool was empty), oldest first.
pub async fn keyless(db: &Db, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT actor_id FROM accounts WHERE private_key_pem = '' ORDER BY created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// A local account's identity key seed (base64), if it has one yet.
pub async fn identity_seed(db: &Db, actor_id: i64) -> Result<Option<String>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT identity_seed FROM accounts WHERE actor_id = $1",
        )
        .bind(actor_id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
    })
}

/// Stores a local account's identity key seed (base64), replacing any it had.
pub async fn set_identity_seed(tx: &mut Tx, actor_id: i64, seed: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE accounts SET identity_seed = $1 WHERE actor_id = $2")
            .bind(seed)
            .bind(actor_id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}
