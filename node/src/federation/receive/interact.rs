//! Inbound `Like`, `Announce`, `Block` and every `Undo`.

use ferry_protocol::activities::{Announce, Block, Like, Undo, UndoObject};

use crate::db::actors::ActorRow;
use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::Data;
use crate::federation::ingest::Write;
use crate::federation::receive::{actor, local_actor};
use crate::services;
use crate::services::interactions::PreparedLike;
use crate::services::notes::PreparedNote;

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
/// writer's batch. The inbox batches a like of a stored note at once (`prepare_like`); this is
/// for a note stored since.
pub async fn like(data: &Data, like: Like) -> AppResult<()> {
    let actor = actor(data, &like.actor).await?;
    if let Some(like) = prepare_like(data, &actor, &like).await? {
        data.ingest.submit(Write::Like(Box::new(like))).await?;
    }
    Ok(())
}

/// A like the inbox writer can record in its batch: of a note we have. Its own id is its replay
/// check. None for a note we do not have.
pub async fn prepare_like(
    data: &Data,
    actor: &ActorRow,
    like: &Like,
) -> AppResult<Option<PreparedLike>> {
    let Some(note) = db::notes::by_ap_id(&data.db, like.object.as_str()).await? else {
        return Ok(None);
    };
    Ok(Some(PreparedLike::new(data, actor, &note, like.id.as_str())))
}

/// Records a boost; the boosted note is fetched if we do not have it.
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
    if !boostable(&note) {
        return Ok(());
    }
    let published = announce.published.map(|p| p.timestamp_millis());
    services::interactions::remote_announce(data, &actor, &note, announce.id.as_str(), published)
        .await
}

/// A boost the inbox writer can store in its batch, as it stores a `Create`'s note: of a public
/// or unlisted note we have, by another server's author. None otherwise, for `announce`: a note
/// to fetch first, one to ignore, or a local author's, who is notified (which the batch does
/// not do).
pub async fn batchable_announce(
    data: &Data,
    actor: &ActorRow,
    announce: &Announce,
) -> AppResult<Option<PreparedNote>> {
    let Some(note) = db::notes::by_ap_id(&data.db, announce.object.as_str()).await? else {
        return Ok(None);
    };
    if note.is_local || !boostable(&note) {
        return Ok(None);
    }
    let published = announce.published.map(|p| p.timestamp_millis());
    let row = services::interactions::boost_row(actor, &note, announce.id.as_str(), published);
    Ok(Some(PreparedNote::boost(row)))
}

/// Only a public or unlisted note that is not deleted can be boosted.
fn boostable(note: &NoteRow) -> bool {
    note.deleted_at.is_none() && matches!(note.visibility.as_str(), "public" | "unlisted")
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
