//! Fetching from other servers: ActivityPub documents by URL, actors (stored copy first),
//! WebFinger handles, and the keys inbound signatures are checked against.
//!
//! Ferry owns this path (rather than activitypub_federation's `ObjectId::dereference`) so that
//! every fetch is signed with our aws-lc-rs key, bounded in size, time and redirects, refuses
//! private addresses outside dev mode, and works with dev nodes named by IP and port.

use std::sync::Arc;

use ferry_protocol::objects::{Note, Person};
use ferry_protocol::signatures::PublicKey;
use ferry_protocol::webfinger::{Handle, Jrd};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::objects::note::{check_note, remote_note};
use crate::federation::objects::person::{check_person, store_person};
use crate::federation::{client, counts, is_local, same_origin};
use crate::ids::now_ms;
use crate::services;
use crate::state::AppState;

/// Largest ActivityPub document accepted (what Mastodon accepts too).
const MAX_OBJECT_BYTES: usize = 1 << 20;
/// Largest WebFinger document accepted.
const MAX_JRD_BYTES: usize = 64 * 1024;
/// Redirects followed for one fetch.
const MAX_REDIRECTS: usize = 3;
/// The longest one fetch may take, all redirects and the body included.
const FETCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// A stored remote actor older than this is refetched when next needed.
const ACTOR_REFRESH_MS: i64 = 24 * 3600 * 1000;

const ACCEPT: &str = "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// GETs `url` (signed), following redirects, with the size, time and target limits above.
/// Returns the response body and the final URL.
async fn get(
    state: &AppState,
    url: &Url,
    accept: &str,
    max_bytes: usize,
) -> AppResult<(Vec<u8>, Url, String)> {
    // One deadline for the whole fetch, redirects and body included: slow hops cannot
    // stretch it past FETCH_DEADLINE.
    let deadline = tokio::time::Instant::now() + FETCH_DEADLINE;
    let too_slow =
        || AppError::Remote(format!("fetching {url} took longer than {FETCH_DEADLINE:?}"));
    let mut current = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(too_slow());
        }
        client::check_target(&current, state.config.dev_http)?;
        if is_local(state, &current) {
            return Err(AppError::NotFound(format!("{current} is a local URL")));
        }
        let response = state
            .fetcher
            .get(current.clone())
            .header("Accept", accept)
            .timeout(remaining)
            .send()
            .await
            .map_err(|e| AppError::Remote(format!("fetching {current} failed: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location =
                response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).ok_or_else(
                    || AppError::Remote(format!("{current} redirected without a Location")),
                )?;
            current = current
                .join(location)
                .map_err(|e| AppError::Remote(format!("bad redirect from {current}: {e}")))?;
            continue;
        }
        match status.as_u16() {
            200..=299 => {}
            404 | 410 => return Err(AppError::NotFound(format!("{current} not found ({status})"))),
            _ => return Err(AppError::Remote(format!("{current} answered {status}"))),
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let body = tokio::time::timeout(remaining, client::read_limited(response, max_bytes))
            .await
            .map_err(|_| too_slow())??;
        return Ok((body, current, content_type));
    }
    Err(AppError::Remote(format!("too many redirects fetching {url}")))
}

/// Fetches an ActivityPub document. Its `id` must be the URL it was fetched from (after
/// redirects); a document naming another id on the same server is fetched once from there.
pub async fn fetch_json(state: &AppState, url: &Url) -> AppResult<(serde_json::Value, Url)> {
    let mut target = url.clone();
    for attempt in 0..2 {
        let (body, final_url, content_type) = get(state, &target, ACCEPT, MAX_OBJECT_BYTES).await?;
        // As Mastodon checks: a document served as HTML or plain JSON is not an ActivityPub
        // object, whatever it contains (GHSA-jhrq-qvrm-qr36).
        if !(content_type.starts_with("application/activity+json")
            || content_type.starts_with("application/ld+json"))
        {
            return Err(AppError::Remote(format!(
                "{final_url} is not ActivityPub JSON (content type {content_type:?})"
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| AppError::Remote(format!("bad JSON from {final_url}: {e}")))?;
        let id = value
            .get("id")
            .and_then(|i| i.as_str())
            .and_then(|i| Url::parse(i).ok())
            .ok_or_else(|| AppError::Remote(format!("document at {final_url} has no id")))?;
        if id == final_url {
            return Ok((value, final_url));
        }
        if attempt == 0 && same_origin(&id, &final_url).is_ok() {
            target = id;
            continue;
        }
        return Err(AppError::Forbidden(format!("document at {final_url} claims to be {id}")));
    }
    Err(AppError::Remote(format!("{url} does not serve its own id")))
}

/// The stored actor `url`, fetched when unknown, stale, or when `refresh` is set. A remote
/// failure falls back to a stored copy unless `refresh` asked for a fresh one.
pub async fn actor(state: &AppState, url: &Url, refresh: bool) -> AppResult<ActorRow> {
    let stored = db::actors::by_ap_id(&state.db, url.as_str()).await?;
    if let Some(actor) = &stored
        && (actor.is_local || (!refresh && !is_day_old(actor)))
    {
        return Ok(actor.clone());
    }
    let fetched = async {
        let (value, final_url) = fetch_json(state, url).await?;
        let person: Person = serde_json::from_value(value)
            .map_err(|e| AppError::Remote(format!("bad actor at {final_url}: {e}")))?;
        check_person(&person, &final_url)?;
        store_person(state, &person).await
    }
    .await;
    match (fetched, stored) {
        (Ok(actor), _) => Ok(actor),
        (Err(_), Some(stored)) if !refresh => Ok(stored),
        (Err(e), _) => Err(e),
    }
}

/// Whether a stored remote actor is due to be fetched again (`ACTOR_REFRESH_MS`).
fn is_day_old(actor: &ActorRow) -> bool {
    now_ms() - actor.fetched_at >= ACTOR_REFRESH_MS
}

/// Stores a fetched note document (author fetched as needed).
async fn store_note(state: &AppState, note: &Note, fetched_from: &Url) -> AppResult<NoteRow> {
    check_note(note, fetched_from)?;
    let cmd = remote_note(state, note).await?;
    services::notes::store_remote(state, cmd).await
}

/// Resolves `user@host` to a stored actor, asking the host's WebFinger when not known locally.
/// A remote account looked up this way also has its server's counts read (`counts`).
pub async fn resolve_handle(state: &AppState, handle: &str) -> AppResult<ActorRow> {
    let found = resolve_handle_only(state, handle).await?;
    counts::read_in_background(state, &found);
    Ok(found)
}

async fn resolve_handle_only(state: &AppState, handle: &str) -> AppResult<ActorRow> {
    let handle =
        Handle::parse(handle).map_err(|e| AppError::Invalid(format!("{handle:?}: {e}")))?;
    if handle.domain == state.config.domain {
        return db::actors::by_handle(&state.db, &handle.username, &handle.domain)
            .await?
            .filter(|a| a.deleted_at.is_none() && a.kind != "Application")
            .ok_or_else(|| AppError::NotFound(format!("no account {handle}")));
    }
    if let Some(known) = db::actors::by_handle(&state.db, &handle.username, &handle.domain).await? {
        let url = Url::parse(&known.ap_id).map_err(|e| AppError::Other(e.into()))?;
        return actor(state, &url, false).await;
    }
    let webfinger = Url::parse(&format!(
        "{}://{}/.well-known/webfinger?resource={}",
        state.config.scheme(),
        handle.domain,
        handle.acct()
    ))
    .map_err(|e| AppError::Invalid(format!("{handle}: {e}")))?;
    let (body, _, _) =
        get(state, &webfinger, "application/jrd+json, application/json", MAX_JRD_BYTES).await?;
    let jrd: Jrd = serde_json::from_slice(&body)
        .map_err(|e| AppError::Remote(format!("bad WebFinger document for {handle}: {e}")))?;
    let actor_url = jrd
        .self_link()
        .ok_or_else(|| AppError::Remote(format!("{handle} has no ActivityPub actor")))?;
    let found = actor(state, &actor_url, false).await?;
    // The server answering for the handle must be the actor's own, and name it the same:
    // otherwise `@x@evil.example` could point mentions at an account on another server.
    // (Split-domain setups, where WebFinger and actors live on different hosts, are not
    // supported yet.)
    if found.domain != handle.domain || !found.username.eq_ignore_ascii_case(&handle.username) {
        return Err(AppError::Remote(format!(
            "{handle} points at {}, which is not that account",
            found.ap_id
        )));
    }
    Ok(found)
}

/// What a URL turned out to be.
// Short-lived (one lookup), so boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Resolved {
    /// An actor.
    Actor(ActorRow),
    /// A note.
    Note(NoteRow),
}

/// Finds an actor or note by URL: the stored copy, else fetched and stored. An account found
/// has its server's counts read (`counts`).
pub async fn resolve_url(state: &AppState, url: &Url) -> AppResult<Resolved> {
    let resolved = resolve_url_only(state, url).await?;
    if let Resolved::Actor(actor) = &resolved {
        counts::read_in_background(state, actor);
    }
    Ok(resolved)
}

async fn resolve_url_only(state: &AppState, url: &Url) -> AppResult<Resolved> {
    if let Some(actor) = db::actors::by_ap_id(&state.db, url.as_str()).await? {
        return Ok(Resolved::Actor(actor));
    }
    if let Some(note) = db::notes::by_ap_id(&state.db, url.as_str()).await? {
        return Ok(Resolved::Note(note));
    }
    let (value, final_url) = fetch_json(state, url).await?;
    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
    match kind.as_str() {
        "Person" | "Service" | "Application" | "Group" | "Organization" => {
            let person: Person = serde_json::from_value(value)
                .map_err(|e| AppError::Remote(format!("bad actor at {url}: {e}")))?;
            check_person(&person, &final_url)?;
            Ok(Resolved::Actor(store_person(state, &person).await?))
        }
        "Note" | "Article" | "Page" | "Question" => {
            let note: Note = serde_json::from_value(value)
                .map_err(|e| AppError::Remote(format!("bad note at {url}: {e}")))?;
            Ok(Resolved::Note(store_note(state, &note, &final_url).await?))
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
    /// The owner's stored row when the key was cached, and when that was.
    actor: Arc<ActorRow>,
    cached_at: std::time::Instant,
}

/// How long a cached signer's actor row stands in for a database read. Writes through this
/// node (`store_person`, a deleted actor) drop the entry at once; this bounds how late a change
/// made elsewhere (another process on the same database) is seen.
const SIGNER_ROW_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl SignerKey {
    /// Whether the cached row is young enough to stand in for the database (`SIGNER_ROW_TTL`).
    fn is_recent(&self) -> bool {
        self.cached_at.elapsed() < SIGNER_ROW_TTL
    }

    /// The signer's stored actor: the cached row while it is recent, else read again (and
    /// refetched from its server when the stored copy is a day old, as `actor` does).
    /// `signer_key` refetches a day-old row before caching it.
    pub async fn actor(&self, state: &AppState) -> AppResult<Arc<ActorRow>> {
        if self.is_recent() {
            return Ok(self.actor.clone());
        }
        let url = Url::parse(&self.actor_ap_id)
            .map_err(|e| AppError::Other(anyhow::anyhow!("stored actor id: {e}")))?;
        // Boxed, as in `signer_key`.
        Box::pin(actor(state, &url, false)).await.map(Arc::new)
    }
}

/// The public key for `key_id`: from the parsed-key cache, else the stored actor, else fetched.
/// `refresh` skips the caches (the signature failed; the actor may have rotated its key).
pub async fn signer_key(state: &AppState, key_id: &str, refresh: bool) -> AppResult<SignerKey> {
    if !refresh {
        if let Some(cached) = state.keys.public(key_id)
            && cached.is_recent()
        {
            return Ok(cached);
        }
        // Not cached, or cached too long ago: read and cached anew. An old entry once stayed,
        // and every request of its signer read the row again (B1 on PostgreSQL, a minute in:
        // from 0.1 to 0.9 transactions per activity, and the node took half what it had).
        if let Some(stored) = db::actors::by_key_id(&state.db, key_id).await? {
            // A day-old copy is fetched again first. If its server does not answer, the stored
            // copy is cached as it is and tried again `SIGNER_ROW_TTL` later, not on every
            // request.
            let actor = if !stored.is_local && is_day_old(&stored) {
                let url = Url::parse(&stored.ap_id)
                    .map_err(|e| AppError::Other(anyhow::anyhow!("stored actor id: {e}")))?;
                Box::pin(actor(state, &url, false)).await?
            } else {
                stored
            };
            return cache_key(state, key_id, &actor);
        }
    }
    // Boxed: a fetch's future is kilobytes, and unboxed it would make every inbox request's
    // future that large, though nearly all find the key cached.
    Box::pin(fetch_signer_key(state, key_id)).await
}

/// `signer_key` from the key's owner, fetched.
async fn fetch_signer_key(state: &AppState, key_id: &str) -> AppResult<SignerKey> {
    let mut key_url = Url::parse(key_id)
        .map_err(|_| AppError::Unauthorized(format!("keyId {key_id:?} is not a URL")))?;
    key_url.set_fragment(None);
    let owner = match actor(state, &key_url, true).await {
        Ok(actor) => actor,
        Err(first) => {
            // Some servers publish the key as its own document, with an `owner`.
            let (doc, _) = fetch_json(state, &key_url).await.map_err(|_| first)?;
            let owner = doc
                .get("owner")
                .and_then(|o| o.as_str())
                .and_then(|o| Url::parse(o).ok())
                .ok_or_else(|| {
                    AppError::Unauthorized(format!("no actor found for key {key_id}"))
                })?;
            actor(state, &owner, true).await?
        }
    };
    if owner.public_key_id != key_id {
        return Err(AppError::Unauthorized(format!(
            "key {key_id} does not belong to {}",
            owner.ap_id
        )));
    }
    cache_key(state, key_id, &owner)
}

fn cache_key(state: &AppState, key_id: &str, actor: &ActorRow) -> AppResult<SignerKey> {
    if actor.suspended {
        return Err(AppError::Forbidden(format!("{} is suspended", actor.ap_id)));
    }
    let key = PublicKey::from_pem(&actor.public_key_pem)
        .map_err(|e| AppError::Unauthorized(format!("unusable key of {}: {e}", actor.ap_id)))?;
    let signer = SignerKey {
        actor_ap_id: actor.ap_id.clone(),
        key: Arc::new(key),
        actor: Arc::new(actor.clone()),
        cached_at: std::time::Instant::now(),
    };
    state.keys.put_public(key_id, signer.clone());
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::db::actors::ProfileUpdate;

    /// A signer's cached row answers for `SIGNER_ROW_TTL`; then one read of the database
    /// refreshes the entry, and the cache answers again. Each inbox request of a signer whose
    /// entry had aged read the database, for as long as the node ran.
    #[tokio::test]
    async fn an_aged_signer_is_read_once_and_cached_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = crate::state::sqlite_state_in(dir.path()).await;
        // The instance actor has a key and a row, as any signer does.
        let key_id = state.instance.key_id.clone();
        let first = signer_key(&state, &key_id, false).await.expect("signer");

        // Changed in the database behind the cache's back (another process, say).
        let renamed = ProfileUpdate {
            display_name: "renamed".to_owned(),
            summary: first.actor.summary.clone(),
            manually_approves: first.actor.manually_approves,
            discoverable: first.actor.discoverable,
        };
        let mut tx = state.db.begin().await.expect("tx");
        db::actors::update_profile(&mut tx, first.actor.id, &renamed).await.expect("update");
        tx.commit().await.expect("commit");
        let cached = signer_key(&state, &key_id, false).await.expect("signer");
        assert_eq!(cached.actor.display_name, first.actor.display_name, "answered by the cache");

        let mut aged = state.keys.public(&key_id).expect("cached");
        aged.cached_at = Instant::now() - SIGNER_ROW_TTL - Duration::from_secs(1);
        state.keys.put_public(&key_id, aged);
        let read = signer_key(&state, &key_id, false).await.expect("signer");
        assert_eq!(read.actor.display_name, "renamed", "an aged entry is read again");
        let entry = state.keys.public(&key_id).expect("cached again");
        assert!(entry.is_recent(), "and cached anew, for the next requests");
        assert_eq!(entry.actor.display_name, "renamed");
        let actor = entry.actor(&state).await.expect("actor");
        assert_eq!(actor.display_name, "renamed");
    }

    /// A signer whose stored copy is a day old is fetched again before it is cached; when its
    /// server does not answer, the stored copy is cached and serves until the entry ages,
    /// rather than every request trying the server again.
    #[tokio::test]
    async fn a_day_old_signer_whose_server_is_down_is_cached_as_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = crate::state::sqlite_state_in(dir.path()).await;
        // The actor's server: it counts the connections it gets and closes each unanswered, so
        // every refetch fails.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = asked.clone();
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(connection);
            }
        });
        let key = ferry_protocol::signatures::PrivateKey::generate().expect("key");
        let two_days_ago = now_ms() - 2 * ACTOR_REFRESH_MS;
        let ap_id = format!("http://{host}/users/gone");
        let remote = db::actors::NewActor {
            id: crate::ids::id_at(two_days_ago),
            ap_id: ap_id.clone(),
            kind: "Person".to_owned(),
            username: "gone".to_owned(),
            domain: host.clone(),
            is_local: false,
            display_name: "Gone".to_owned(),
            summary: String::new(),
            inbox_url: format!("{ap_id}/inbox"),
            shared_inbox_url: None,
            outbox_url: None,
            followers_url: None,
            following_url: None,
            profile_url: None,
            avatar_url: None,
            header_url: None,
            public_key_id: format!("{ap_id}#main-key"),
            public_key_pem: key.public_key_pem(),
            manually_approves: false,
            discoverable: true,
            also_known_as: "[]".to_owned(),
            moved_to: None,
            published_at: two_days_ago,
            fetched_at: two_days_ago,
            identity_did: None,
        };
        let mut tx = state.db.begin().await.expect("tx");
        db::actors::upsert(&mut tx, &remote).await.expect("insert");
        tx.commit().await.expect("commit");

        let signer = signer_key(&state, &remote.public_key_id, false).await.expect("signer");
        assert_eq!(signer.actor.fetched_at, two_days_ago, "the stored copy, as the fetch failed");
        let tried = asked.load(Ordering::SeqCst);
        assert!(tried >= 1, "the day-old copy was fetched again first");
        let entry = state.keys.public(&remote.public_key_id).expect("cached");
        assert!(entry.is_recent());
        let actor = entry.actor(&state).await.expect("actor");
        assert_eq!(actor.fetched_at, two_days_ago, "served by the entry, not fetched again");
        let again = signer_key(&state, &remote.public_key_id, false).await.expect("signer");
        assert_eq!(again.actor.fetched_at, two_days_ago);
        assert_eq!(asked.load(Ordering::SeqCst), tried, "the server was not asked again");
    }
}
