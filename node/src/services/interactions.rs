//! Likes and boosts, local and received.

use crate::db::actors::ActorRow;
use crate::db::favourites::FavouriteRow;
use crate::db::ingest::Target;
use crate::db::notes::NoteRow;
use crate::db::notifications::NotificationRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::outbox;
use crate::ids::{id_at, now_ms};
use crate::services::notes::{PreparedNote, notification, notify};
use crate::state::AppState;
use crate::urls;

async fn visible_note(
    state: &AppState,
    viewer: &ActorRow,
    note_id: i64,
) -> AppResult<(NoteRow, ActorRow)> {
    let note = db::notes::by_id(&state.db, note_id)
        .await?
        .filter(|n| n.deleted_at.is_none() && n.reblog_of_id.is_none());
    let Some(note) = note else {
        return Err(AppError::NotFound(format!("note {note_id} not found")));
    };
    if !db::notes::is_visible(&state.db, note.id, viewer.id).await? {
        return Err(AppError::NotFound(format!("note {note_id} not found")));
    }
    let author = db::actors::by_id(&state.db, note.author_id)
        .await?
        .ok_or_else(|| AppError::NotFound("author".to_owned()))?;
    Ok((note, author))
}

/// A local actor likes a note (idempotent).
pub async fn favourite(state: &AppState, actor: &ActorRow, note_id: i64) -> AppResult<NoteRow> {
    crate::services::moving::ensure_not_moved(actor)?;
    let (note, author) = visible_note(state, actor, note_id).await?;
    let id = state.db.next_id();
    let row = FavouriteRow {
        id,
        ap_id: urls::activity(&state.config, id).to_string(),
        actor_id: actor.id,
        note_id: note.id,
        created_at: now_ms(),
    };
    let mut tx = state.db.begin().await?;
    if let Some(fav) = db::favourites::insert(&mut tx, &row).await? {
        if author.is_local && author.id != actor.id {
            notify(&mut tx, state, author.id, "favourite", actor.id, Some(note.id)).await?;
        } else if !author.is_local {
            outbox::like(&mut tx, state, &fav.ap_id, actor, &note, &author, false).await?;
        }
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(note)
}

/// A local actor takes a like back (idempotent).
pub async fn unfavourite(state: &AppState, actor: &ActorRow, note_id: i64) -> AppResult<NoteRow> {
    let (note, author) = visible_note(state, actor, note_id).await?;
    let mut tx = state.db.begin().await?;
    if let Some(fav) = db::favourites::delete(&mut tx, actor.id, note.id).await? {
        db::notifications::remove_for(&mut tx, "favourite", actor.id, note.id).await?;
        if !author.is_local {
            outbox::like(&mut tx, state, &fav.ap_id, actor, &note, &author, true).await?;
        }
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(note)
}

/// A local actor boosts a note (idempotent); returns the boost row.
pub async fn reblog(state: &AppState, actor: &ActorRow, note_id: i64) -> AppResult<NoteRow> {
    crate::services::moving::ensure_not_moved(actor)?;
    let (note, author) = visible_note(state, actor, note_id).await?;
    if !matches!(note.visibility.as_str(), "public" | "unlisted") {
        return Err(AppError::Forbidden(
            "only public and unlisted notes can be boosted".to_owned(),
        ));
    }
    if let Some(existing) = db::notes::boost_by(&state.db, actor.id, note.id).await? {
        return Ok(existing);
    }
    let id = state.db.next_id();
    let boost = NoteRow {
        id,
        ap_id: urls::activity(&state.config, id).to_string(),
        author_id: actor.id,
        is_local: true,
        visibility: "public".to_owned(),
        content: String::new(),
        summary: String::new(),
        sensitive: false,
        language: None,
        url: None,
        in_reply_to_ap_id: None,
        in_reply_to_id: None,
        reblog_of_id: Some(note.id),
        audience: "{}".to_owned(),
        published_at: now_ms(),
        updated_at: None,
        deleted_at: None,
    };
    let mut tx = state.db.begin().await?;
    let boost = db::notes::insert(&mut tx, &boost)
        .await?
        .ok_or_else(|| AppError::Conflict("duplicate boost".to_owned()))?;
    db::feed::fan_out(&mut tx, &boost).await?;
    if author.is_local && author.id != actor.id {
        notify(&mut tx, state, author.id, "reblog", actor.id, Some(note.id)).await?;
    }
    outbox::announce(&mut tx, state, &boost, actor, &note, &author, false).await?;
    tx.commit().await?;
    state.wake_delivery();
    Ok(boost)
}

/// A local actor takes a boost back (idempotent); returns the original note.
pub async fn unreblog(state: &AppState, actor: &ActorRow, note_id: i64) -> AppResult<NoteRow> {
    let (note, author) = visible_note(state, actor, note_id).await?;
    if let Some(boost) = db::notes::boost_by(&state.db, actor.id, note.id).await? {
        let mut tx = state.db.begin().await?;
        db::notes::delete_boost(&mut tx, boost.id).await?;
        db::notifications::remove_for(&mut tx, "reblog", actor.id, note.id).await?;
        outbox::announce(&mut tx, state, &boost, actor, &note, &author, true).await?;
        tx.commit().await?;
        state.wake_delivery();
    }
    Ok(note)
}

/// A received `Like` or `Announce` of a note named by its `ap_id`, for the inbox writer: it
/// looks up the notes of a whole batch's interactions at once, on its own connection
/// (`db::ingest::targets`), and records what `resolve` makes of each in the same batch.
#[derive(Clone, Debug)]
pub struct Interaction {
    /// The activity's id: the like's, or the boost's, own replay check.
    pub ap_id: String,
    pub actor_id: i64,
    pub note_ap_id: String,
    pub kind: InteractionKind,
}

/// Which interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractionKind {
    Like,
    /// An `Announce`, and when it says it was published (ms).
    Boost {
        published: Option<i64>,
    },
}

/// What the inbox writer records for an interaction.
#[derive(Debug)]
pub enum Resolved {
    Like(PreparedLike),
    /// A boost is a note row of its own (`reblog_of_id`).
    Boost(Box<PreparedNote>),
}

impl Interaction {
    /// What to record, now that the note is looked up: a like of any stored note; a boost of a
    /// public or unlisted note, not deleted, by another server's author. None for a note not
    /// stored, and for a boost of a local note (its author is notified, which
    /// `remote_announce` does): the inbox hands those to their handlers.
    pub fn resolve(&self, state: &AppState, note: Option<&Target>) -> Option<Resolved> {
        let note = note?;
        match self.kind {
            InteractionKind::Like => Some(Resolved::Like(PreparedLike::new(state, self, note))),
            InteractionKind::Boost { published } => {
                (!note.is_local && boostable(&note.visibility, note.deleted)).then(|| {
                    let row = boost_row(self.actor_id, note.id, &self.ap_id, published);
                    Resolved::Boost(Box::new(PreparedNote::boost(row)))
                })
            }
        }
    }
}

/// Only a public or unlisted note that is not deleted can be boosted.
pub fn boostable(visibility: &str, deleted: bool) -> bool {
    !deleted && matches!(visibility, "public" | "unlisted")
}

/// A received `Like` made ready to record in the inbox writer's batch (`notes::Batched`): the
/// favourite, and the notification of the note's author if the author is local.
#[derive(Clone, Debug)]
pub struct PreparedLike {
    row: FavouriteRow,
    notification: Option<NotificationRow>,
}

impl PreparedLike {
    /// The like `like` of `note`.
    fn new(state: &AppState, like: &Interaction, note: &Target) -> PreparedLike {
        let notification = note.is_local.then(|| {
            notification(state, note.author_id, "favourite", like.actor_id, Some(note.id))
        });
        let row = FavouriteRow {
            id: state.db.next_id(),
            ap_id: like.ap_id.clone(),
            actor_id: like.actor_id,
            note_id: note.id,
            created_at: now_ms(),
        };
        PreparedLike { row, notification }
    }

    /// What `db::ingest` writes.
    pub fn entry(&self) -> db::ingest::NewLike<'_> {
        db::ingest::NewLike { row: &self.row, notification: self.notification.as_ref() }
    }
}

/// A remote `Undo(Like)` arrived.
pub async fn remote_unlike(
    state: &AppState,
    actor: &ActorRow,
    like_ap_id: &str,
    note_ap_id: Option<&str>,
) -> AppResult<()> {
    let note_id = match db::favourites::by_ap_id(&state.db, like_ap_id).await? {
        Some(fav) if fav.actor_id == actor.id => Some(fav.note_id),
        Some(_) => {
            return Err(AppError::Forbidden(format!("{} cannot undo {like_ap_id}", actor.ap_id)));
        }
        None => match note_ap_id {
            Some(ap_id) => db::notes::by_ap_id(&state.db, ap_id).await?.map(|n| n.id),
            None => None,
        },
    };
    if let Some(note_id) = note_id {
        let mut tx = state.db.begin().await?;
        db::favourites::delete(&mut tx, actor.id, note_id).await?;
        db::notifications::remove_for(&mut tx, "favourite", actor.id, note_id).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A remote `Announce` of a stored note arrived: store the boost and fan it out.
pub async fn remote_announce(
    state: &AppState,
    actor: &ActorRow,
    note: &NoteRow,
    ap_id: &str,
    published: Option<i64>,
) -> AppResult<()> {
    if db::notes::by_ap_id(&state.db, ap_id).await?.is_some() {
        return Ok(());
    }
    let boost = boost_row(actor.id, note.id, ap_id, published);
    let mut tx = state.db.begin().await?;
    if let Some(boost) = db::notes::insert(&mut tx, &boost).await? {
        db::feed::fan_out(&mut tx, &boost).await?;
        notify(&mut tx, state, note.author_id, "reblog", actor.id, Some(note.id)).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The note a remote `Announce` `ap_id` by `actor` of `note` is stored as (published no later
/// than now).
fn boost_row(actor: i64, note: i64, ap_id: &str, published: Option<i64>) -> NoteRow {
    let now = now_ms();
    let published = published.unwrap_or(now).min(now);
    NoteRow {
        id: id_at(published),
        ap_id: ap_id.to_owned(),
        author_id: actor,
        is_local: false,
        visibility: "public".to_owned(),
        content: String::new(),
        summary: String::new(),
        sensitive: false,
        language: None,
        url: None,
        in_reply_to_ap_id: None,
        in_reply_to_id: None,
        reblog_of_id: Some(note),
        audience: "{}".to_owned(),
        published_at: published,
        updated_at: None,
        deleted_at: None,
    }
}
