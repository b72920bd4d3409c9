//! Fetching from other servers on demand: WebFinger handles, objects by URL, and the keys
//! that inbound signatures are checked against.

use std::sync::Arc;

use activitypub_federation::fetch::fetch_object_http;
use activitypub_federation::fetch::object_id::ObjectId;
use activitypub_federation::traits::Object;
use ferry_protocol::objects::{Note, Person};
use ferry_protocol::signatures::PublicKey;
use ferry_protocol::webfinger::{Handle, Jrd};
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::objects::note::{ApNote, check_note};
use crate::federation::objects::person::{ApPerson, check_person, store_person};
use crate::federation::{Data, client};

/// Largest WebFinger document accepted.
const MAX_JRD_BYTES: usize = 64 * 1024;

/// Resolves `user@host` to a stored actor, asking the host's WebFinger when not known locally.
pub async fn resolve_handle(data: &Data, handle: &str) -> AppResult<ActorRow> {
    let handle =
        Handle::parse(handle).map_err(|e| AppError::Invalid(format!("{handle:?}: {e}")))?;
    if handle.domain == data.config.domain {
        return db::actors::by_handle(&data.db, &handle.username, &handle.domain)
            .await?
            .filter(|a| a.deleted_at.is_none())
            .ok_or_else(|| AppError::NotFound(format!("no account {handle}")));
    }
    if let Some(actor) = db::actors::by_handle(&data.db, &handle.username, &handle.domain).await? {
        // Known: refresh through the library's staleness rule, which also refetches old copies.
        let url = Url::parse(&actor.ap_id).map_err(|e| AppError::Other(e.into()))?;
        return Ok(ObjectId::<ApPerson>::from(url).dereference(data).await?.row);
    }
    let webfinger = Url::parse(&format!(
        "{}://{}/.well-known/webfinger?resource={}",
        data.config.scheme(),
        handle.domain,
        handle.acct()
    ))
    .map_err(|e| AppError::Invalid(format!("{handle}: {e}")))?;
    client::check_target(&webfinger, data.config.dev_http)?;
    let response = data
        .http
        .get(webfinger.clone())
        .header("Accept", "application/jrd+json, application/json")
        .send()
        .await
        .map_err(|e| AppError::Remote(format!("WebFinger lookup of {handle} failed: {e}")))?;
    if !response.status().is_success() {
        return Err(AppError::NotFound(format!(
            "{handle} not found ({} from {})",
            response.status(),
            handle.domain
        )));
    }
    let body = client::read_limited(response, MAX_JRD_BYTES).await?;
    let jrd: Jrd = serde_json::from_slice(&body)
        .map_err(|e| AppError::Remote(format!("bad WebFinger document for {handle}: {e}")))?;
    let actor_url = jrd
        .self_link()
        .ok_or_else(|| AppError::Remote(format!("{handle} has no ActivityPub actor")))?;
    let actor = ObjectId::<ApPerson>::from(actor_url).dereference(data).await?;
    Ok(actor.row)
}

/// What a URL turned out to be.
pub enum Resolved {
    /// An actor.
    Actor(ActorRow),
    /// A note.
    Note(NoteRow),
}

/// Fetches an actor or note by URL (stored copy first) and stores it.
pub async fn resolve_url(data: &Data, url: &Url) -> AppResult<Resolved> {
    if let Some(actor) = db::actors::by_ap_id(&data.db, url.as_str()).await? {
        return Ok(Resolved::Actor(actor));
    }
    if let Some(note) = db::notes::by_ap_id(&data.db, url.as_str()).await? {
        return Ok(Resolved::Note(note));
    }
    let fetched = fetch_object_http::<_, serde_json::Value>(url, data).await?;
    let kind = fetched.object.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
    match kind.as_str() {
        "Person" | "Service" | "Application" | "Group" | "Organization" => {
            let person: Person = serde_json::from_value(fetched.object)
                .map_err(|e| AppError::Remote(format!("bad actor at {url}: {e}")))?;
            check_person(&person, &fetched.url)?;
            Ok(Resolved::Actor(store_person(data, &person).await?))
        }
        "Note" | "Article" | "Page" | "Question" => {
            let note: Note = serde_json::from_value(fetched.object)
                .map_err(|e| AppError::Remote(format!("bad note at {url}: {e}")))?;
            check_note(&note, &fetched.url)?;
            Ok(Resolved::Note(ApNote::from_json(note, data).await?.row))
        }
        other => Err(AppError::Invalid(format!("{url} is a {other:?}, not an actor or a note"))),
    }
}

/// A verified signer: the actor and its parsed key.
#[derive(Clone)]
pub struct SignerKey {
    /// The key's owner.
    pub actor_ap_id: String,
    /// Parsed public key.
    pub key: Arc<PublicKey>,
}

/// The public key for `key_id`: from the parsed-key cache, else the stored actor, else fetched.
/// `refresh` skips the caches (the signature failed; the actor may have rotated its key).
pub async fn signer_key(data: &Data, key_id: &str, refresh: bool) -> AppResult<SignerKey> {
    if !refresh {
        if let Some(cached) = data.keys.public(key_id) {
            return Ok(cached);
        }
        if let Some(actor) = db::actors::by_key_id(&data.db, key_id).await? {
            return cache_key(data, key_id, &actor);
        }
    }
    let mut key_url = Url::parse(key_id)
        .map_err(|_| AppError::Unauthorized(format!("keyId {key_id:?} is not a URL")))?;
    key_url.set_fragment(None);
    let actor = match ObjectId::<ApPerson>::from(key_url.clone()).dereference_forced(data).await {
        Ok(actor) => actor.row,
        Err(first) => {
            // Some servers publish the key as its own document with an `owner`.
            let doc = fetch_object_http::<_, serde_json::Value>(&key_url, data)
                .await
                .map_err(|_| first)?;
            let owner = doc
                .object
                .get("owner")
                .and_then(|o| o.as_str())
                .and_then(|o| Url::parse(o).ok())
                .ok_or_else(|| {
                    AppError::Unauthorized(format!("no actor found for key {key_id}"))
                })?;
            ObjectId::<ApPerson>::from(owner).dereference_forced(data).await?.row
        }
    };
    if actor.public_key_id != key_id {
        return Err(AppError::Unauthorized(format!(
            "key {key_id} does not belong to {}",
            actor.ap_id
        )));
    }
    cache_key(data, key_id, &actor)
}

fn cache_key(data: &Data, key_id: &str, actor: &ActorRow) -> AppResult<SignerKey> {
    if actor.suspended {
        return Err(AppError::Forbidden(format!("{} is suspended", actor.ap_id)));
    }
    let key = PublicKey::from_pem(&actor.public_key_pem)
        .map_err(|e| AppError::Unauthorized(format!("unusable key of {}: {e}", actor.ap_id)))?;
    let signer = SignerKey { actor_ap_id: actor.ap_id.clone(), key: Arc::new(key) };
    data.keys.put_public(key_id, signer.clone());
    Ok(signer)
}
