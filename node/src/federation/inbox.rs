//! The inbound pipeline: shape check → signature (key fetched and cached, refetched once on
//! failure) → signer is the actor → replay check → policy → typed handler.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use activitypub_federation::traits::Activity;
use ferry_protocol::activities::Create;
use ferry_protocol::signatures::{IncomingRequest, ParsedSignature, SignatureError};
use futures::StreamExt;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::activities::AnyActivity;
use crate::federation::fetch::{SignerKey, signer_key};
use crate::federation::ingest::{Claim, Write};
use crate::federation::journal::{Journal, Leftover, Record};
use crate::federation::objects::note::remote_note_by;
use crate::federation::{Data, policy, server_of};
use crate::services;
use crate::state::AppState;

/// An inbox POST as the HTTP layer hands it over.
pub struct InboxPost<'a> {
    /// Path and query the request was made to.
    pub path_and_query: &'a str,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

/// What happened to an accepted POST.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Processed now.
    Processed,
    /// Journaled and queued: stored shortly (`federation::journal`).
    Accepted,
    /// Already seen: nothing changed.
    Duplicate,
    /// Accepted and deliberately ignored (e.g. a deletion of an actor we never knew).
    Ignored,
}

/// Runs one inbox POST through the whole pipeline.
pub async fn receive(data: &Data, post: InboxPost<'_>) -> AppResult<Outcome> {
    let preparing = data.ingest.preparing();
    let head = read_head(post.body)?;
    let id = head.id.0.ok_or_else(|| AppError::BadRequest("activity has no id".to_owned()))?;
    let actor =
        head.actor.0.ok_or_else(|| AppError::BadRequest("activity has no actor".to_owned()))?;
    let kind = head.kind.0.unwrap_or_default();
    if !same_server(&id, &actor)? {
        return Err(AppError::Forbidden(format!("activity {id} is not from {actor}'s server")));
    }

    // A server announcing that an account we never knew is gone: nothing to verify against
    // (its key is gone too) and nothing to do.
    if kind == "Delete" {
        let actor = parse_actor(&actor)?;
        if head.object.0.as_deref() == Some(actor.as_str())
            && db::actors::by_ap_id(&data.db, actor.as_str()).await?.is_none()
        {
            return Ok(Outcome::Ignored);
        }
    }

    let signer = verify_signature(data, &post, &actor).await?;
    let actor = signer.actor(data).await?;

    let activity = typed(&kind, post.body)?;
    policy::check(data, &actor, &activity)?;
    activity.verify(data).await?;
    let id = activity.id().to_string();
    if let AnyActivity::Create(create) = activity {
        // The hot path: the note is prepared here, then stored by the group-commit writer in
        // one transaction with others (`ingest`); its own id is its replay check.
        // `verify` made sure the note's author is the actor.
        let actor_id = actor.id;
        let write = note_write(data, &create, actor).await?;
        drop(preparing);
        if let Some(journal) = &data.journal {
            return accept(data, journal, actor_id, post.body, write).await;
        }
        return Ok(match data.ingest.submit(write).await? {
            Claim::New => Outcome::Processed,
            Claim::Seen | Claim::Unresolved => Outcome::Duplicate,
        });
    }
    drop(preparing);
    // Likes and boosts (one in five of an inbox's activities in performance.md's workload; each
    // in a transaction of its own cost about 600 µs of CPU and 28 thread switches) go to the
    // writer too, which looks up their notes for the whole batch and records the like, or
    // stores the boost as a note, its own id its replay check. A like of a note we do not have
    // is ignored; a boost the writer did not take goes to its handler (below), which fetches
    // the note or notifies its local author.
    if let Some(interaction) = super::receive::interact::interaction(&actor, &activity) {
        let write = Write::Interaction(Box::new(interaction));
        // A like needs no answer from the writer (one of a note we do not have is ignored); a
        // boost the writer does not take goes to its handler below.
        if let (AnyActivity::Like(_), Some(journal)) = (&activity, &data.journal) {
            return accept(data, journal, actor.id, post.body, write).await;
        }
        match data.ingest.submit(write).await? {
            Claim::New => return Ok(Outcome::Processed),
            Claim::Seen => return Ok(Outcome::Duplicate),
            Claim::Unresolved if matches!(activity, AnyActivity::Like(_)) => {
                return Ok(Outcome::Ignored);
            }
            Claim::Unresolved => {}
        }
    }
    // The claim and the handling run in their own task: if the sender hangs up (a timeout, a
    // crash), axum drops this request's future, and a claimed but unhandled id would make every
    // retry look like a duplicate. The task always ends by handling the activity or forgetting
    // its id.
    let data = data.clone();
    let task = tokio::spawn(async move {
        // Claim the id before handling, so two copies arriving at once (shared inbox and
        // personal inbox, or a retry racing the original) are handled once.
        if data.ingest.submit(Write::Claim(id.clone())).await? == Claim::Seen {
            return Ok(Outcome::Duplicate);
        }
        if let Err(e) = activity.receive(&data).await {
            // Not handled: forget the id so the sender's retry is processed, not ignored.
            let mut tx = data.db.begin().await?;
            db::received::forget(&mut tx, &id).await?;
            tx.commit().await?;
            return Err(e);
        }
        Ok(Outcome::Processed)
    });
    task.await.map_err(|e| AppError::Other(anyhow::anyhow!("inbox task failed: {e}")))?
}

/// What the pipeline reads first (`Head`).
fn read_head(body: &[u8]) -> AppResult<Head<'_>> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("body is not a JSON activity: {e}")))
}

/// The activity parsed by its `type`.
fn typed(kind: &str, body: &[u8]) -> AppResult<AnyActivity> {
    AnyActivity::from_slice(kind, body)
        .ok_or_else(|| AppError::Invalid(format!("unsupported activity type {kind:?}")))?
        .map_err(|e| AppError::Invalid(format!("malformed {kind} activity: {e}")))
}

/// The writer's job for a received note: prepared here, outside any transaction. The caller has
/// checked that the note is `author`'s (`AnyActivity::verify`, or when it was journaled).
async fn note_write(state: &AppState, create: &Create, author: Arc<ActorRow>) -> AppResult<Write> {
    let cmd = remote_note_by(&create.object, author);
    Ok(Write::Note(Box::new(services::notes::prepare_remote(state, cmd).await?)))
}

/// Journals a verified activity and queues its write, answering without waiting for the
/// commit (`federation::journal`).
async fn accept(
    data: &Data,
    journal: &Journal,
    actor_id: i64,
    body: &[u8],
    write: Write,
) -> AppResult<Outcome> {
    let entry = journal
        .append(actor_id, body)
        .map_err(|e| AppError::Other(anyhow::anyhow!("writing the inbox journal: {e}")))?;
    data.ingest.enqueue(write, entry).await?;
    Ok(Outcome::Accepted)
}

/// Stores what the inbox journal held at start (accepted, then not stored before the node
/// stopped), then deletes it. Each record is prepared as the inbox prepares it, without its
/// signature, which was verified when it was accepted. One that cannot be stored (its actor
/// gone, say) is logged and dropped; if the database failed for any, the journal is kept and
/// replayed again at the next start (what was stored meanwhile is a replay, and changes
/// nothing).
pub async fn replay(state: &AppState, mut leftover: Leftover) -> anyhow::Result<()> {
    if leftover.damaged > 0 {
        tracing::warn!(
            segments = leftover.damaged,
            "the inbox journal ended in a record cut short (a crash while it was written); \
             that record was never acknowledged"
        );
    }
    if leftover.records.is_empty() {
        return Ok(leftover.finish()?);
    }
    let records = std::mem::take(&mut leftover.records);
    let count = records.len();
    // Many at once, so that the writer stores them in batches.
    let errors: Vec<AppError> = futures::stream::iter(records)
        .map(|record| replay_one(state, record))
        .buffer_unordered(64)
        .filter_map(|result| std::future::ready(result.err()))
        .collect()
        .await;
    let retry = errors.iter().filter(|e| worth_replaying_again(e)).count();
    tracing::info!(records = count, failed = errors.len(), "replayed the inbox journal");
    if retry > 0 {
        tracing::error!(
            records = retry,
            "the database failed while the inbox journal was replayed; it is kept for the next start"
        );
        return Ok(());
    }
    Ok(leftover.finish()?)
}

/// Whether a journaled record that failed might be stored at a later start: the database (or
/// the writer) failed, not the record.
fn worth_replaying_again(error: &AppError) -> bool {
    matches!(error, AppError::Database(_) | AppError::Other(_))
}

async fn replay_one(state: &AppState, record: Record) -> AppResult<()> {
    let result = async {
        let actor = db::actors::by_id(&state.db, record.actor_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("actor {}", record.actor_id)))?;
        let kind = read_head(&record.body)?.kind.0.unwrap_or_default();
        let activity = typed(&kind, &record.body)?;
        let write = match &activity {
            AnyActivity::Create(create) => note_write(state, create, Arc::new(actor)).await?,
            other => match super::receive::interact::interaction(&actor, other) {
                Some(interaction) => Write::Interaction(Box::new(interaction)),
                None => return Err(AppError::Invalid(format!("{kind} is not journaled"))),
            },
        };
        state.ingest.submit(write).await.map(|_| ())
    }
    .await;
    if let Err(e) = &result {
        tracing::warn!(actor = record.actor_id, error = %e, "a journaled activity was not stored");
    }
    result
}

/// What the pipeline reads before it knows the activity's type, without building a tree of
/// the whole document (the typed parse after the signature check reads it once more).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default, borrow)]
    id: Ref<'a>,
    #[serde(default, borrow)]
    actor: Ref<'a>,
    #[serde(default, borrow, rename = "type")]
    kind: Ref<'a>,
    #[serde(default, borrow)]
    object: Ref<'a>,
}

/// A string, or the `id` of an embedded object; anything else reads as absent.
#[derive(Default)]
struct Ref<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Ref<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RefVisitor(PhantomData))
    }
}

struct RefVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RefVisitor<'a> {
    type Value = Ref<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string or an object")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Ref<'a>, E> {
        Ok(Ref(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ref<'a>, E> {
        Ok(Ref(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Ref<'a>, M::Error> {
        let mut id = None;
        // Keys as `Ref`s too: borrowed from the body, where serde's `Cow` would copy each.
        while let Some(key) = map.next_key::<Ref<'a>>()? {
            if key.0.as_deref() == Some("id") {
                id = map.next_value::<Ref<'a>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Ref(id))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Ref<'a>, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Ref(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Ref<'a>, E> {
        Ok(Ref(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ref<'a>, E> {
        Ok(Ref(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ref<'a>, E> {
        Ok(Ref(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ref<'a>, E> {
        Ok(Ref(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ref<'a>, E> {
        Ok(Ref(None))
    }
}

/// Whether the activity `id` and its `actor` are on the same server (host and port), as
/// `server_of` compares them. Nearly every activity writes both with the same plain
/// `https://host/` prefix, which settles it without parsing either; anything else is parsed.
fn same_server(id: &str, actor: &str) -> AppResult<bool> {
    if let (Some(a), Some(b)) = (plain_server(id), plain_server(actor))
        && a == b
    {
        return Ok(true);
    }
    let id =
        Url::parse(id).map_err(|e| AppError::BadRequest(format!("activity id {id:?}: {e}")))?;
    Ok(server_of(&id) == server_of(&parse_actor(actor)?))
}

fn parse_actor(actor: &str) -> AppResult<Url> {
    Url::parse(actor).map_err(|e| AppError::BadRequest(format!("actor {actor:?}: {e}")))
}

/// The `scheme://host[:port]` of an `http(s)` URL written plainly: a host of lowercase
/// letters, digits, dots and hyphens, a port of digits, then a `/`. Two URLs with the same such
/// prefix are on the same server.
fn plain_server(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find('/')?;
    let (host, port) = match rest[..end].split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (&rest[..end], None),
    };
    let plain_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let plain_port = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (plain_host && plain_port).then(|| &url[..url.len() - rest.len() + end])
}

/// Verifies the POST's signature and that its signer is the activity's `actor`.
async fn verify_signature(data: &Data, post: &InboxPost<'_>, actor: &str) -> AppResult<SignerKey> {
    let signer = verify_signer(data, "POST", post.path_and_query, post.headers, post.body).await?;
    // Stored actor ids are parsed URLs; the actor as written may differ in form only.
    if signer.actor_ap_id != actor
        && Url::parse(actor).ok().as_ref().map(Url::as_str) != Some(&signer.actor_ap_id)
    {
        return Err(AppError::Unauthorized(format!(
            "signed by {}, not by the actor {actor}",
            signer.actor_ap_id
        )));
    }
    Ok(signer)
}

/// Verifies a request's HTTP signature (draft-cavage or RFC 9421) against the signer's key,
/// refetching the key once if it fails (the actor may have rotated it). Returns the signer's
/// actor id. Used, with authorized fetch, for GETs.
pub async fn verify_request(
    state: &AppState,
    method: &str,
    path_and_query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> AppResult<String> {
    Ok(verify_signer(state, method, path_and_query, headers, body).await?.actor_ap_id)
}

/// `verify_request`, returning the signer (with its cached actor row).
async fn verify_signer(
    state: &AppState,
    method: &str,
    path_and_query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> AppResult<SignerKey> {
    let parsed = {
        let header = |name: &str| {
            // Repeated headers are rare in signed requests; the first one is what is signed.
            headers.get_all(name).iter().find_map(|v| v.to_str().ok())
        };
        let request = IncomingRequest {
            method,
            path_and_query,
            authority: &state.config.domain,
            scheme: state.config.scheme(),
            header: &header,
            body,
        };
        ParsedSignature::parse(&request, SystemTime::now(), state.config.signature_max_skew)?
    };
    let mut signer = signer_key(state, &parsed.key_id, false).await?;
    if let Err(first) = parsed.verify(&signer.key) {
        if !matches!(first, SignatureError::Invalid) {
            return Err(first.into());
        }
        signer = signer_key(state, &parsed.key_id, true).await?;
        parsed.verify(&signer.key)?;
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::{origin, same_origin};

    #[test]
    fn a_replay_that_the_database_failed_is_tried_again_and_a_bad_record_is_not() {
        assert!(worth_replaying_again(&AppError::Database(sqlx::Error::PoolTimedOut)));
        assert!(worth_replaying_again(&AppError::Other(anyhow::anyhow!(
            "the node is shutting down"
        ))));
        assert!(!worth_replaying_again(&AppError::NotFound("actor 7".to_owned())));
        assert!(!worth_replaying_again(&AppError::Invalid("malformed Create activity".to_owned())));
        assert!(!worth_replaying_again(&AppError::Forbidden("suspended".to_owned())));
    }

    #[test]
    fn the_head_reads_strings_and_embedded_ids() {
        let body = br#"{
            "type": "Delete",
            "id": "https://a.example/u#delete",
            "actor": { "type": "Person", "i\u0064": "https://a.example/u", "name": ["x"] },
            "object": { "tag": [{ "id": "https://a.example/t" }], "id": "https://a.example/u" },
            "to": ["https://www.w3.org/ns/activitystreams#Public"]
        }"#;
        let head: Head<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(head.kind.0.as_deref(), Some("Delete"));
        assert_eq!(head.id.0.as_deref(), Some("https://a.example/u#delete"));
        assert_eq!(head.actor.0.as_deref(), Some("https://a.example/u"), "an escaped key");
        assert_eq!(head.object.0.as_deref(), Some("https://a.example/u"));
        let head: Head<'_> = serde_json::from_slice(br#"{ "actor": [1], "id": 2 }"#).unwrap();
        assert!(head.actor.0.is_none() && head.id.0.is_none() && head.object.0.is_none());
    }

    #[test]
    fn plain_prefixes_settle_the_server_without_parsing() {
        assert_eq!(plain_server("https://a.example/users/u"), Some("https://a.example"));
        assert_eq!(plain_server("http://127.0.0.1:8081/u"), Some("http://127.0.0.1:8081"));
        for written in [
            "https://A.example/u",
            "https://a.example",
            "https://user@a.example/u",
            "https://a.example:/u",
            "https://a.example:x/u",
            "https://a.exämple/u",
            "https:\\\\a.example/u",
            "ftp://a.example/u",
            "https:///u",
        ] {
            assert_eq!(plain_server(written), None, "{written}");
        }
    }

    #[test]
    fn the_server_checks_agree_with_parsed_origins() {
        let cases = [
            ("https://a.example/1", "https://a.example/u", true),
            ("https://a.example/1", "https://b.example/u", false),
            ("https://a.example:443/1", "https://a.example/u", true),
            ("https://A.EXAMPLE/1", "https://a.example/u", true),
            ("https://a.example/1", "https://a.example:8443/u", false),
            ("https://a.example:8443/1", "https://a.example:8443/u", true),
            ("http://127.0.0.1:1/1", "http://127.0.0.1:2/u", false),
            ("https://user@a.example/1", "https://a.example/u", true),
            ("http://a.example/1", "https://a.example/u", true),
            ("https://a.example.evil/1", "https://a.example/u", false),
        ];
        for (id, actor, same) in cases {
            assert_eq!(same_server(id, actor).unwrap(), same, "{id} / {actor}");
            let (a, b) = (Url::parse(id).unwrap(), Url::parse(actor).unwrap());
            assert_eq!(origin(&a) == origin(&b), same, "{id} / {actor}: origins");
            assert_eq!(same_origin(&a, &b).is_ok(), same, "{id} / {actor}: same_origin");
        }
        // Without a host there is no server to share.
        let mailto = Url::parse("mailto:u@a.example").unwrap();
        assert!(same_origin(&mailto, &mailto).is_err());
        assert!(matches!(
            same_server("not a url", "https://a.example/u"),
            Err(AppError::BadRequest(_))
        ));
        assert!(matches!(same_server("https://a.example/1", "/u"), Err(AppError::BadRequest(_))));
    }
}
