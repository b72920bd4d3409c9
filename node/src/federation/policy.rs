//! The node's inbound policy stage, run on every verified activity before its handler.
//!
//! Today it only refuses suspended actors. Domain policies, content rules and rate limits
//! (the moderation issue) plug in here, so every inbound path goes through one place.

use crate::db::actors::ActorRow;
use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::federation::activities::AnyActivity;

/// Refuses the activity, sent by the verified `actor`, if the node's policy says so. It runs on
/// the inbox hot path, so what it consults must be in memory (the moderation issue keeps
/// domain and content rules in a cache refreshed on change).
pub fn check(_data: &Data, actor: &ActorRow, _activity: &AnyActivity) -> AppResult<()> {
    allows_actor(actor)
}

/// Refuses an actor this node will not deal with: checked on every signer, and on both sides
/// of an account move (a move must not carry followers to, or from, a suspended account).
pub fn allows_actor(actor: &ActorRow) -> AppResult<()> {
    if actor.suspended {
        return Err(AppError::Forbidden(format!("{} is suspended on this node", actor.ap_id)));
    }
    Ok(())
}
