//! Inbound `Move`.

use ferry_protocol::activities::Move;
use serde_json::Value;

use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::federation::activities::SignedMove;
use crate::services;

/// Shape checks before anything is fetched: a push-mode move is sent by the account that
/// moves (`actor == object`), a pull-mode one by the account it moves to (`actor == target`),
/// with an integrity proof; the inbox already checked that `actor` signed the request.
pub fn verify_move(activity: &Move, document: &Value) -> AppResult<()> {
    if activity.actor == activity.object {
        return Ok(());
    }
    if activity.actor == activity.target {
        // Pull mode (FEP-7628): the new account speaks for the old one, which only a proof by
        // an identity both share can justify.
        if document.get("proof").is_none() {
            return Err(AppError::Forbidden(
                "a Move sent by its target (pull mode) needs an integrity proof by the identity key both accounts share"
                    .to_owned(),
            ));
        }
        return Ok(());
    }
    Err(AppError::Forbidden(format!(
        "{} cannot move {}: a Move's actor must be the account that moves",
        activity.actor, activity.object
    )))
}

/// A remote account moved: its local followers follow the new account.
pub async fn receive_move(data: &Data, signed: SignedMove) -> AppResult<()> {
    let activity = &signed.activity;
    if activity.actor == activity.object {
        services::moving::receive_move(data, &activity.object, &activity.target).await?;
    } else {
        services::moving::receive_pull_move(
            data,
            &activity.object,
            &activity.target,
            &signed.document,
        )
        .await?;
    }
    Ok(())
}
