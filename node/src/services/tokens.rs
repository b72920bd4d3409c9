//! Access tokens issued outside OAuth flows (`ferry token create`).

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::oauth::TokenRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::ids::now_ms;
use crate::state::AppState;

/// Creates a token with scopes `read write follow push` for a local account; returns it.
pub async fn create_for(state: &AppState, username: &str) -> AppResult<String> {
    let account = db::accounts::by_username(&state.db, username)
        .await?
        .filter(|a| a.password_hash != "!")
        .ok_or_else(|| AppError::NotFound(format!("no local account {username}")))?;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let mut tx = state.db.begin().await?;
    db::oauth::insert_token(
        &mut tx,
        &TokenRow {
            id: state.db.next_id(),
            token_hash: hex::encode(Sha256::digest(token.as_bytes())),
            refresh_hash: None,
            app_id: None,
            account_id: Some(account.actor_id),
            scopes: "read write follow push".to_owned(),
            created_at: now_ms(),
            revoked: false,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}
