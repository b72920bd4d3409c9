//! Inbound `Create(Note)`, `Update(Note | Person)`, `Delete(Note | Person)`.

use ferry_protocol::activities::{Create, Delete, Update, UpdateObject};

use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::objects::note::{check_note, remote_note};
use crate::federation::objects::person::{check_person, store_person};
use crate::federation::receive::actor;
use crate::federation::{Data, same_origin};
use crate::ids::now_ms;
use crate::services;

/// The note must be the actor's own.
pub fn verify_create(create: &Create) -> AppResult<()> {
    if create.object.attributed_to != create.actor {
        return Err(AppError::Forbidden(format!(
            "{} cannot create a note of {}",
            create.actor, create.object.attributed_to
        )));
    }
    check_note(&create.object, &create.actor)
}

/// Only the actor itself, or its own notes, can be updated.
pub fn verify_update(update: &Update) -> AppResult<()> {
    match &update.object {
        UpdateObject::Note(note) => {
            if note.attributed_to != update.actor {
                return Err(AppError::Forbidden(format!(
                    "{} cannot edit {}",
                    update.actor, note.id
                )));
            }
            check_note(note, &update.actor)
        }
        UpdateObject::Person(person) => {
            if person.id != update.actor {
                return Err(AppError::Forbidden(format!(
                    "{} cannot update {}",
                    update.actor, person.id
                )));
            }
            check_person(person, &update.actor)
        }
    }
}

/// Stores a note and fans it out.
pub async fn create(data: &Data, create: Create) -> AppResult<()> {
    let cmd = remote_note(data, &create.object).await?;
    services::notes::store_remote(data, cmd).await.map(|_| ())
}

/// Applies an edit of a note or a profile.
pub async fn update(data: &Data, update: Update) -> AppResult<()> {
    match update.object {
        UpdateObject::Note(note) => {
            let cmd = remote_note(data, &note).await?;
            services::notes::update_remote(data, cmd).await
        }
        UpdateObject::Person(person) => {
            // The document in the activity is signed by its actor; store it as sent.
            store_person(data, &person).await.map(|_| ())
        }
    }
}

/// Deletes a note, or an actor (then its notes stop showing and its follows end).
pub async fn delete(data: &Data, delete: Delete) -> AppResult<()> {
    same_origin(&delete.object, &delete.actor)?;
    let actor = actor(data, &delete.actor).await?;
    if delete.object == delete.actor {
        let mut tx = data.db.begin().await?;
        db::actors::mark_deleted(&mut tx, actor.id, now_ms()).await?;
        tx.commit().await?;
        data.keys.forget_public(&actor.public_key_id);
        return Ok(());
    }
    services::notes::delete_remote(data, &actor, delete.object.as_str()).await
}
