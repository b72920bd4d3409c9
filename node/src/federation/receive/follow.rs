//! Inbound `Follow`, `Accept(Follow)`, `Reject(Follow)`.

use ferry_protocol::activities::{Accept, Follow, Reject};
use ferry_protocol::objects::ObjectOrId;

use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::federation::receive::{actor, local_actor};
use crate::services;

/// A remote actor follows a local one; answered with `Accept` unless the account is locked.
pub async fn follow(data: &Data, follow: Follow) -> AppResult<()> {
    let Some(target) = local_actor(data, &follow.object).await? else {
        return Err(AppError::NotFound(format!("no local actor {}", follow.object)));
    };
    let follower = actor(data, &follow.actor).await?;
    services::follows::receive_follow(data, &follower, &target, follow.id.as_str()).await
}

fn follower_of(object: &ObjectOrId<Follow>) -> Option<&str> {
    object.object().map(|f| f.actor.as_str())
}

/// A remote actor accepted a local actor's follow request.
pub async fn accept(data: &Data, accept: Accept) -> AppResult<()> {
    let followee = actor(data, &accept.actor).await?;
    if let Some(inner) = accept.object.object()
        && inner.object != accept.actor
    {
        return Err(AppError::Forbidden(format!(
            "{} cannot accept a follow of {}",
            accept.actor, inner.object
        )));
    }
    services::follows::remote_accepted(
        data,
        accept.object.id().as_str(),
        &followee,
        follower_of(&accept.object),
    )
    .await
}

/// A remote actor rejected a local actor's follow request (or removed a follower).
pub async fn reject(data: &Data, reject: Reject) -> AppResult<()> {
    let followee = actor(data, &reject.actor).await?;
    services::follows::remote_rejected(
        data,
        reject.object.id().as_str(),
        &followee,
        follower_of(&reject.object),
    )
    .await
}
