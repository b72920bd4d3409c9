//! Actors on the wire: a stored actor as an ActivityPub `Person` (or `Service`, `Group`, …),
//! and a fetched one checked and stored.

use chrono::{DateTime, TimeZone, Utc};
use ferry_protocol::objects::{ActorKind, Endpoints, Image, Person, PublicKey};
use url::Url;

use crate::db::{self, actors::ActorRow, actors::NewActor};
use crate::error::AppError;
use crate::federation::{origin, same_origin};
use crate::ids::now_ms;
use crate::services::content;
use crate::state::AppState;

fn ms_to_datetime(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

fn parse_url(s: &Option<String>) -> Option<Url> {
    s.as_deref().and_then(|s| Url::parse(s).ok())
}

fn actor_kind(kind: &str) -> ActorKind {
    match kind {
        "Service" => ActorKind::Service,
        "Application" => ActorKind::Application,
        "Group" => ActorKind::Group,
        "Organization" => ActorKind::Organization,
        _ => ActorKind::Person,
    }
}

/// The wire form of a stored actor.
pub fn to_person(row: &ActorRow) -> Result<Person, AppError> {
    let bad = |what: &str| {
        AppError::Other(anyhow::anyhow!("stored actor {} has a bad {what}", row.ap_id))
    };
    let id = Url::parse(&row.ap_id).map_err(|_| bad("id"))?;
    Ok(Person {
        kind: actor_kind(&row.kind),
        preferred_username: row.username.clone(),
        name: (!row.display_name.is_empty()).then(|| row.display_name.clone()),
        summary: (!row.summary.is_empty()).then(|| row.summary.clone()),
        inbox: Url::parse(&row.inbox_url).map_err(|_| bad("inbox"))?,
        outbox: parse_url(&row.outbox_url),
        followers: parse_url(&row.followers_url),
        following: parse_url(&row.following_url),
        featured: None,
        endpoints: parse_url(&row.shared_inbox_url)
            .map(|shared| Endpoints { shared_inbox: Some(shared) }),
        public_key: PublicKey {
            id: Url::parse(&row.public_key_id).map_err(|_| bad("key id"))?,
            owner: id.clone(),
            public_key_pem: row.public_key_pem.clone(),
        },
        icon: parse_url(&row.avatar_url).map(|url| Image {
            kind: "Image".to_owned(),
            url,
            media_type: None,
        }),
        image: parse_url(&row.header_url).map(|url| Image {
            kind: "Image".to_owned(),
            url,
            media_type: None,
        }),
        url: parse_url(&row.profile_url),
        manually_approves_followers: row.manually_approves,
        discoverable: Some(row.discoverable),
        indexable: Some(row.discoverable),
        published: ms_to_datetime(row.published_at),
        also_known_as: row.aliases().iter().filter_map(|a| Url::parse(a).ok()).collect(),
        moved_to: parse_url(&row.moved_to),
        // The identity statement (FEP-c390) of a local actor.
        attachment: row
            .identity_proof
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .into_iter()
            .collect(),
        id,
    })
}

/// The row form of a fetched remote actor (a new id; kept on refresh by the upsert).
pub fn from_person(person: &Person, id: i64) -> NewActor {
    let now = now_ms();
    let kind = serde_json::to_value(person.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "Person".to_owned());
    NewActor {
        id,
        ap_id: person.id.to_string(),
        kind,
        username: person.preferred_username.clone(),
        domain: origin(&person.id),
        is_local: false,
        display_name: person.name.clone().unwrap_or_default().chars().take(200).collect(),
        summary: content::sanitize(person.summary.as_deref().unwrap_or_default()),
        inbox_url: person.inbox.to_string(),
        shared_inbox_url: person
            .endpoints
            .as_ref()
            .and_then(|e| e.shared_inbox.as_ref())
            .map(Url::to_string),
        outbox_url: person.outbox.as_ref().map(Url::to_string),
        followers_url: person.followers.as_ref().map(Url::to_string),
        following_url: person.following.as_ref().map(Url::to_string),
        profile_url: person.url.as_ref().map(Url::to_string),
        avatar_url: person.icon.as_ref().map(|i| i.url.to_string()),
        header_url: person.image.as_ref().map(|i| i.url.to_string()),
        public_key_id: person.public_key.id.to_string(),
        public_key_pem: person.public_key.public_key_pem.clone(),
        manually_approves: person.manually_approves_followers,
        discoverable: person.discoverable.unwrap_or(false),
        also_known_as: serde_json::to_string(
            &person.also_known_as.iter().map(Url::as_str).collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".to_owned()),
        moved_to: person.moved_to.as_ref().map(Url::to_string),
        published_at: person.published.map(|p| p.timestamp_millis()).unwrap_or(now),
        fetched_at: now,
        // Only a statement whose proof holds, for this actor, names its identity.
        identity_did: ferry_protocol::identity::verified_identity(
            &person.attachment,
            person.id.as_str(),
        ),
    }
}

/// Checks a fetched actor document before it is stored.
pub fn check_person(person: &Person, expected: &Url) -> Result<(), AppError> {
    same_origin(&person.id, expected)?;
    same_origin(&person.inbox, &person.id)?;
    if person.public_key.owner != person.id {
        return Err(AppError::Forbidden(format!(
            "key of {} is owned by {}",
            person.id, person.public_key.owner
        )));
    }
    same_origin(&person.public_key.id, &person.id)?;
    if person.preferred_username.is_empty() || person.preferred_username.len() > 100 {
        return Err(AppError::Invalid(format!(
            "actor {} has no usable preferredUsername",
            person.id
        )));
    }
    Ok(())
}

/// Stores (or refreshes) a remote actor document that passed `check_person`.
pub async fn store_person(data: &AppState, person: &Person) -> Result<ActorRow, AppError> {
    // Built (and its identity statement checked) before the write transaction opens.
    let actor = from_person(person, data.db.next_id());
    let mut tx = data.db.begin().await?;
    let row = db::actors::upsert(&mut tx, &actor).await?;
    tx.commit().await?;
    // A refreshed document may carry a rotated key: drop any parsed copy.
    data.keys.forget_public(&row.public_key_id);
    Ok(row)
}
