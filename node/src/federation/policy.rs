//! The node's inbound policy stage, run on every verified activity before its handler.
//!
//! Today it only refuses suspended actors. Domain policies, content rules and rate limits
//! (the moderation issue) plug in here, so every inbound path goes through one place.

use activitypub_federation::traits::Activity;

use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::federation::activities::AnyActivity;

/// Refuses the activity if the node's policy says so.
pub async fn check(data: &Data, activity: &AnyActivity) -> AppResult<()> {
    if let Some(actor) = db::actors::by_ap_id(&data.db, activity.actor().as_str()).await?
        && actor.suspended
    {
        return Err(AppError::Forbidden(format!("{} is suspended on this node", actor.ap_id)));
    }
    Ok(())
}
