//! Inbound `Like`, `Announce`, `Block` and every `Undo`.

use ferry_protocol::activities::{Announce, Block, Like, Undo, UndoObject};
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::federation::activities::AnyActivity;
use crate::federation::ingest::Write;
use crate::federation::receive::{actor, local_actor};
use crate::services;
use crate::services::interactions::{Interaction, InteractionKind, boostable};

/// An `Undo` may only undo the same actor's activity.
pub fn verify_undo(undo: &Undo) -> AppResult<()> {
    let inner_actor = match &undo.object {
        UndoObject::Follow(a) => &a.actor,
        UndoObject::Like(a) => &a.actor,
        UndoObject::Announce(a) => &a.actor,
        UndoObject::Block(a) => &a.actor,
        UndoObject::Id(_) => return Ok(()),
    };
    if *inner_actor != undo.actor {
        return Err(AppError::Forbidden(format!(
            "{} cannot undo an activity of {inner_actor}",
            undo.actor
        )));
    }
    Ok(())
}

/// Records a like of a note we have (likes of notes we do not have are ignored), in the inbox
/// writer's batch. The inbox hands likes to the writer itself (`interaction`); this is for
/// anything else that receives one.
pub async fn like(data: &Data, like: Like) -> AppResult<()> {
    let actor = actor(data, &like.actor).await?;
    let like = named(&actor, &like.id, &like.object, InteractionKind::Like);
    data.ingest.submit(Write::Interaction(Box::new(like))).await?;
    Ok(())
}

/// A `Like` or an `Announce` as the inbox writer takes it (`Write::Interaction`).
pub fn interaction(actor: &ActorRow, activity: &AnyActivity) -> Option<Interaction> {
    match activity {
        AnyActivity::Like(like) => {
            Some(named(actor, &like.id, &like.object, InteractionKind::Like))
        }
        AnyActivity::Announce(announce) => {
            let published = announce.published.map(|p| p.timestamp_millis());
            let kind = InteractionKind::Boost { published };
            Some(named(actor, &announce.id, &announce.object, kind))
        }
        _ => None,
    }
}

/// Activity `id` by `actor` of the note `object`.
fn named(actor: &ActorRow, id: &Url, object: &Url, kind: InteractionKind) -> Interaction {
    Interaction { ap_id: id.to_string(), actor_id: actor.id, note_ap_id: object.to_string(), kind }
}

/// Records a boost the inbox writer did not (`Interaction::resolve`); the boosted note is
/// fetched if we do not have it.
pub async fn announce(data: &Data, announce: Announce) -> AppResult<()> {
    let actor = actor(data, &announce.actor).await?;
    let note = match db::notes::by_ap_id(&data.db, announce.object.as_str()).await? {
        Some(note) => note,
        None => match crate::federation::fetch::resolve_url(data, &announce.object).await? {
            crate::federation::fetch::Resolved::Note(note) => note,
            crate::federation::fetch::Resolved::Actor(_) => {
                return Err(AppError::Invalid(format!("{} is not a note", announce.object)));
            }
        },
    };
    if !boostable(&note.visibility, note.deleted_at.is_some()) {
        return Ok(());
    }
    let published = announce.published.map(|p| p.timestamp_millis());
    services::interactions::remote_announce(data, &actor, &note, announce.id.as_str(), published)
        .await
}

/// A remote actor blocked a local one.
pub async fn block(data: &Data, block: Block) -> AppResult<()> {
    let Some(blocked) = local_actor(data, &block.object).await? else {
        return Ok(());
    };
    let blocker = actor(data, &block.actor).await?;
    services::follows::remote_blocked(data, &blocker, &blocked).await
}

/// Undoes a follow, like, boost or block.
pub async fn undo(data: &Data, undo: Undo) -> AppResult<()> {
    let actor = actor(data, &undo.actor).await?;
    match &undo.object {
        UndoObject::Follow(follow) => {
            services::follows::remote_unfollowed(data, &actor, follow.object.as_str()).await
        }
        UndoObject::Like(like) => {
            services::interactions::remote_unlike(
                data,
                &actor,
                like.id.as_str(),
                Some(like.object.as_str()),
            )
            .await
        }
        UndoObject::Announce(announce) => {
            services::notes::delete_remote(data, &actor, announce.id.as_str()).await
        }
        UndoObject::Block(_) => Ok(()),
        UndoObject::Id(id) => {
            // Only an id: find what it named.
            if let Some(follow) = db::follows::by_ap_id(&data.db, id.as_str()).await? {
                if follow.follower_id == actor.id {
                    let mut tx = data.db.begin().await?;
                    db::follows::delete(&mut tx, follow.follower_id, follow.followee_id).await?;
                    tx.commit().await?;
                }
                return Ok(());
            }
            if db::favourites::by_ap_id(&data.db, id.as_str()).await?.is_some() {
                return services::interactions::remote_unlike(data, &actor, id.as_str(), None)
                    .await;
            }
            services::notes::delete_remote(data, &actor, id.as_str()).await
        }
    }
}
