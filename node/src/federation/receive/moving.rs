//! Inbound `Move`.

use ferry_protocol::activities::Move;

use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::services;

/// Shape checks before anything is fetched: a push-mode move is sent by the account that
/// moves (`actor == object`); the inbox already checked that `actor` signed it.
pub fn verify_move(activity: &Move) -> AppResult<()> {
    if activity.actor == activity.object {
        return Ok(());
    }
    if activity.actor == activity.target {
        // Pull mode (FEP-7628): the new account speaks for the old one, which only a shared
        // identity proof can justify.
        return Err(AppError::Forbidden(
            "a Move sent by its target (pull mode) needs an identity proof, which this node does not accept yet"
                .to_owned(),
        ));
    }
    Err(AppError::Forbidden(format!(
        "{} cannot move {}: a Move's actor must be the account that moves",
        activity.actor, activity.object
    )))
}

/// A remote account moved: its local followers follow the new account.
pub async fn receive_move(data: &Data, activity: Move) -> AppResult<()> {
    services::moving::receive_move(data, &activity.object, &activity.target).await.map(|_| ())
}
