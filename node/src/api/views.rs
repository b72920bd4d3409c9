//! Client API entities (Mastodon's JSON shapes) built from rows: `Account`, `Status`,
//! `Notification`, `Relationship`. Loading is batched: one query per kind of thing per page.

use std::collections::{HashMap, HashSet};

use chrono::{TimeZone, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::db::actors::ActorRow;
use crate::db::media::MediaRow;
use crate::db::notes::NoteRow;
use crate::db::notifications::NotificationRow;
use crate::db::{self};
use crate::error::AppResult;
use crate::services::content;
use crate::state::AppState;
use crate::urls;

/// RFC 3339 in UTC with milliseconds, as Mastodon renders times.
pub fn time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Mastodon `Account`.
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: String,
    pub username: String,
    pub acct: String,
    pub display_name: String,
    pub locked: bool,
    pub bot: bool,
    pub discoverable: bool,
    pub group: bool,
    pub created_at: String,
    pub note: String,
    pub url: String,
    pub uri: String,
    pub avatar: String,
    pub avatar_static: String,
    pub header: String,
    pub header_static: String,
    pub followers_count: i64,
    pub following_count: i64,
    pub statuses_count: i64,
    pub last_status_at: Option<String>,
    pub emojis: Vec<Value>,
    pub fields: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<Box<AccountView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
}

/// Builds an `Account` for one actor (counts from live queries).
pub async fn account(state: &AppState, actor: &ActorRow) -> AppResult<AccountView> {
    let counts = db::actors::counts(&state.db, actor.id).await?;
    let moved = match &actor.moved_to {
        Some(target) => match db::actors::by_ap_id(&state.db, target).await? {
            Some(t) => Some(Box::new(account_with(
                state,
                &t,
                db::actors::counts(&state.db, t.id).await?,
                None,
            ))),
            None => None,
        },
        None => None,
    };
    Ok(account_with(state, actor, counts, moved))
}

fn account_with(
    state: &AppState,
    actor: &ActorRow,
    counts: db::actors::ActorCounts,
    moved: Option<Box<AccountView>>,
) -> AccountView {
    let acct = if actor.is_local { actor.username.clone() } else { actor.handle() };
    let missing = urls::missing_avatar(&state.config).to_string();
    let avatar = actor.avatar_url.clone().unwrap_or_else(|| missing.clone());
    let header = actor.header_url.clone().unwrap_or_else(|| missing.clone());
    AccountView {
        id: actor.id.to_string(),
        username: actor.username.clone(),
        acct,
        display_name: actor.display_name.clone(),
        locked: actor.manually_approves,
        bot: matches!(actor.kind.as_str(), "Service" | "Application"),
        discoverable: actor.discoverable,
        group: actor.kind == "Group",
        created_at: time(actor.published_at),
        note: actor.summary.clone(),
        url: actor.profile_url.clone().unwrap_or_else(|| actor.ap_id.clone()),
        uri: actor.ap_id.clone(),
        avatar_static: avatar.clone(),
        avatar,
        header_static: header.clone(),
        header,
        followers_count: counts.followers,
        following_count: counts.following,
        statuses_count: counts.notes,
        last_status_at: None,
        emojis: Vec::new(),
        fields: Vec::new(),
        moved,
        source: None,
    }
}

/// Several accounts, in the order given.
pub async fn accounts(state: &AppState, actors: &[ActorRow]) -> AppResult<Vec<AccountView>> {
    let ids: Vec<i64> = actors.iter().map(|a| a.id).collect();
    let counts = db::actors::counts_of(&state.db, &ids).await?;
    let mut out = Vec::with_capacity(actors.len());
    for actor in actors {
        // A moved account (rare) also shows the one it moved to, loaded on its own.
        let view = if actor.moved_to.is_some() {
            account(state, actor).await?
        } else {
            account_with(state, actor, counts.get(&actor.id).copied().unwrap_or_default(), None)
        };
        out.push(view);
    }
    Ok(out)
}

fn media_json(state: &AppState, m: &MediaRow) -> Value {
    let url = match (&m.file_name, &m.remote_url) {
        (Some(file), _) => urls::media(&state.config, file).to_string(),
        (None, Some(remote)) => remote.clone(),
        (None, None) => String::new(),
    };
    let kind = if m.content_type.starts_with("image/gif") {
        "gifv"
    } else if m.content_type.starts_with("image/") {
        "image"
    } else if m.content_type.starts_with("video/") {
        "video"
    } else if m.content_type.starts_with("audio/") {
        "audio"
    } else {
        "unknown"
    };
    let meta = match (m.width, m.height) {
        (Some(w), Some(h)) if h > 0 => {
            json!({ "original": { "width": w, "height": h, "size": format!("{w}x{h}"), "aspect": w as f64 / h as f64 } })
        }
        _ => json!({}),
    };
    json!({
        "id": m.id.to_string(),
        "type": kind,
        "url": url,
        "preview_url": url,
        "remote_url": m.remote_url,
        "text_url": null,
        "meta": meta,
        "description": if m.description.is_empty() { Value::Null } else { Value::String(m.description.clone()) },
        "blurhash": m.blurhash,
    })
}

/// A media attachment as the client API shows it.
pub fn attachment(state: &AppState, m: &MediaRow) -> Value {
    media_json(state, m)
}

/// Builds `Status` entities for a page of notes (boosts embed the boosted note as `reblog`),
/// as seen by `viewer` (0: anonymous).
pub async fn statuses(state: &AppState, notes: &[NoteRow], viewer: i64) -> AppResult<Vec<Value>> {
    // Boosted originals are loaded alongside, so every note on the page is rendered once.
    let boosted_ids: Vec<i64> = notes.iter().filter_map(|n| n.reblog_of_id).collect();
    let boosted = db::notes::by_ids(&state.db, &boosted_ids).await?;
    let mut all: Vec<&NoteRow> = notes.iter().chain(boosted.iter()).collect();
    all.sort_by_key(|n| n.id);
    all.dedup_by_key(|n| n.id);
    let ids: Vec<i64> = all.iter().map(|n| n.id).collect();

    let actor_ids: HashSet<i64> = all.iter().map(|n| n.author_id).collect();
    let mentions = db::notes::mentions_of(&state.db, &ids).await?;
    let mention_actor_ids: HashSet<i64> = mentions.iter().map(|(_, a)| *a).collect();
    let actor_list: Vec<i64> = actor_ids.union(&mention_actor_ids).copied().collect();
    let actors: HashMap<i64, ActorRow> =
        db::actors::by_ids(&state.db, &actor_list).await?.into_iter().map(|a| (a.id, a)).collect();
    let authors: Vec<ActorRow> =
        actor_ids.iter().filter_map(|id| actors.get(id).cloned()).collect();
    let account_views: HashMap<i64, Value> = authors
        .iter()
        .zip(accounts(state, &authors).await?)
        .map(|(actor, view)| (actor.id, serde_json::to_value(view).unwrap_or_default()))
        .collect();
    let tags = db::notes::tags_of(&state.db, &ids).await?;
    let media = db::media::of_notes(&state.db, &ids).await?;
    let counts: HashMap<i64, (i64, i64)> = db::notes::counts_of(&state.db, &ids)
        .await?
        .into_iter()
        .map(|(id, r, b)| (id, (r, b)))
        .collect();
    let likes: HashMap<i64, i64> =
        db::favourites::counts_of(&state.db, &ids).await?.into_iter().collect();
    let liked: HashSet<i64> = if viewer > 0 {
        db::favourites::liked_by(&state.db, viewer, &ids).await?.into_iter().collect()
    } else {
        HashSet::new()
    };
    let parents: Vec<i64> = all.iter().filter_map(|n| n.in_reply_to_id).collect();
    let parent_authors: HashMap<i64, i64> = db::notes::by_ids(&state.db, &parents)
        .await?
        .into_iter()
        .map(|n| (n.id, n.author_id))
        .collect();
    // One query for the page, not one per note.
    let boosted_by_viewer: HashSet<i64> = if viewer > 0 {
        db::notes::boosted_by(&state.db, viewer, &ids).await?.into_iter().collect()
    } else {
        HashSet::new()
    };

    let render = |n: &NoteRow| -> Value {
        let (replies, boosts) = counts.get(&n.id).copied().unwrap_or((0, 0));
        let note_mentions: Vec<Value> = mentions
            .iter()
            .filter(|(note, _)| *note == n.id)
            .filter_map(|(_, a)| actors.get(a))
            .map(|a| json!({ "id": a.id.to_string(), "username": a.username, "url": a.profile_url.clone().unwrap_or_else(|| a.ap_id.clone()), "acct": if a.is_local { a.username.clone() } else { a.handle() } }))
            .collect();
        let note_tags: Vec<Value> = tags
            .iter()
            .filter(|(note, _)| *note == n.id)
            .map(|(_, t)| json!({ "name": t, "url": urls::tag(&state.config, t).to_string() }))
            .collect();
        let note_media: Vec<Value> = media
            .iter()
            .filter(|m| m.note_id == Some(n.id))
            .map(|m| media_json(state, m))
            .collect();
        json!({
            "id": n.id.to_string(),
            "uri": n.ap_id,
            "url": n.url.clone().unwrap_or_else(|| n.ap_id.clone()),
            "created_at": time(n.published_at),
            "edited_at": n.updated_at.map(time),
            "account": account_views.get(&n.author_id).cloned().unwrap_or(Value::Null),
            "content": n.content,
            "text": if n.is_local { Value::String(content::to_text(&n.content)) } else { Value::Null },
            "visibility": n.visibility,
            "sensitive": n.sensitive,
            "spoiler_text": n.summary,
            "language": n.language,
            "in_reply_to_id": n.in_reply_to_id.map(|id| id.to_string()),
            "in_reply_to_account_id": n.in_reply_to_id.and_then(|p| parent_authors.get(&p)).map(std::string::ToString::to_string),
            "reblog": Value::Null,
            "replies_count": replies,
            "reblogs_count": boosts,
            "favourites_count": likes.get(&n.id).copied().unwrap_or(0),
            "favourited": liked.contains(&n.id),
            "reblogged": boosted_by_viewer.contains(&n.id),
            "muted": false,
            "bookmarked": false,
            "pinned": false,
            "media_attachments": note_media,
            "mentions": note_mentions,
            "tags": note_tags,
            "emojis": [],
            "card": null,
            "poll": null,
            "application": null,
        })
    };
    let by_id: HashMap<i64, &NoteRow> = all.iter().map(|n| (n.id, *n)).collect();
    Ok(notes
        .iter()
        .map(|n| {
            let mut value = render(n);
            if let Some(original) = n.reblog_of_id.and_then(|id| by_id.get(&id)) {
                value["reblog"] = render(original);
                value["content"] = json!("");
            }
            value
        })
        .collect())
}

/// One `Status`.
pub async fn status(state: &AppState, note: &NoteRow, viewer: i64) -> AppResult<Value> {
    Ok(statuses(state, std::slice::from_ref(note), viewer).await?.pop().unwrap_or(Value::Null))
}

/// Mastodon `Notification` entities.
pub async fn notifications(
    state: &AppState,
    rows: &[NotificationRow],
    viewer: i64,
) -> AppResult<Vec<Value>> {
    let note_ids: Vec<i64> = rows.iter().filter_map(|n| n.note_id).collect();
    let notes = db::notes::by_ids(&state.db, &note_ids).await?;
    let rendered = statuses(state, &notes, viewer).await?;
    let status_by_id: HashMap<i64, Value> = notes.iter().map(|n| n.id).zip(rendered).collect();
    let actor_ids: Vec<i64> = rows.iter().map(|n| n.from_actor_id).collect();
    let actors = db::actors::by_ids(&state.db, &actor_ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(actor) = actors.iter().find(|a| a.id == row.from_actor_id) else { continue };
        out.push(json!({
            "id": row.id.to_string(),
            "type": row.kind,
            "created_at": time(row.created_at),
            "account": account(state, actor).await?,
            "status": row.note_id.and_then(|id| status_by_id.get(&id).cloned()),
        }));
    }
    Ok(out)
}
