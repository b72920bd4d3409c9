//! Notes on the wire: a stored note as an ActivityPub `Note`, addressing and visibility, and
//! a received note turned into a storage command.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use ferry_protocol::context::PUBLIC;
use ferry_protocol::objects::{Attachment, Note, NoteKind, Tag};
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::media::MediaRow;
use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::{fetch, same_origin};
use crate::services::notes::{RemoteAttachment, RemoteNote};
use crate::state::AppState;
use crate::urls;

/// Who a note is addressed to, Mastodon style.
pub fn addressing(
    state: &AppState,
    author: &ActorRow,
    visibility: &str,
    mentioned: &[ActorRow],
) -> (Vec<Url>, Vec<Url>) {
    let public = Url::parse(PUBLIC).expect("constant URL");
    let followers = Url::parse(&urls::followers_of(&state.config, author))
        .unwrap_or_else(|_| urls::followers(&state.config, &author.username));
    let mentions: Vec<Url> = mentioned.iter().filter_map(|a| Url::parse(&a.ap_id).ok()).collect();
    match visibility {
        "public" => (vec![public], [vec![followers], mentions].concat()),
        "unlisted" => (vec![followers], [vec![public], mentions].concat()),
        "private" => (vec![followers], mentions),
        _ => (mentions, Vec::new()),
    }
}

/// Visibility of a received note from its addressing.
pub fn visibility_of(to: &[Url], cc: &[Url], followers: Option<&str>) -> &'static str {
    let is_public = |u: &Url| u.as_str() == PUBLIC;
    if to.iter().any(is_public) {
        "public"
    } else if cc.iter().any(is_public) {
        "unlisted"
    } else if followers.is_some_and(|f| to.iter().chain(cc).any(|u| u.as_str() == f)) {
        "private"
    } else {
        "direct"
    }
}

fn ms_to_datetime(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// The wire form of a stored note, with what it links to.
pub fn to_note(
    state: &AppState,
    note: &NoteRow,
    author: &ActorRow,
    mentioned: &[ActorRow],
    tags: &[String],
    media: &[MediaRow],
) -> Result<Note, AppError> {
    let id =
        Url::parse(&note.ap_id).map_err(|e| AppError::Other(anyhow::anyhow!("note id: {e}")))?;
    let (to, cc) = addressing(state, author, &note.visibility, mentioned);
    let mut tag: Vec<Tag> = mentioned
        .iter()
        .filter_map(|a| {
            Some(Tag::Mention {
                href: Url::parse(&a.ap_id).ok()?,
                name: Some(format!("@{}", a.handle())),
            })
        })
        .collect();
    tag.extend(
        tags.iter().map(|t| Tag::Hashtag {
            href: Some(urls::tag(&state.config, t)),
            name: format!("#{t}"),
        }),
    );
    let attachment = media
        .iter()
        .filter_map(|m| {
            let url = match (&m.file_name, &m.remote_url) {
                (Some(file), _) => urls::media(&state.config, file),
                (None, Some(remote)) => Url::parse(remote).ok()?,
                (None, None) => return None,
            };
            Some(Attachment {
                kind: "Document".to_owned(),
                media_type: Some(m.content_type.clone()),
                url,
                name: (!m.description.is_empty()).then(|| m.description.clone()),
                blurhash: m.blurhash.clone(),
                width: m.width.map(|w| w as u32),
                height: m.height.map(|h| h as u32),
                focal_point: None,
            })
        })
        .collect();
    let content_map =
        note.language.as_ref().map(|lang| BTreeMap::from([(lang.clone(), note.content.clone())]));
    Ok(Note {
        kind: NoteKind::Note,
        attributed_to: Url::parse(&author.ap_id).map_err(|e| AppError::Other(e.into()))?,
        content: note.content.clone(),
        content_map,
        summary: (!note.summary.is_empty()).then(|| note.summary.clone()),
        sensitive: note.sensitive,
        published: ms_to_datetime(note.published_at),
        updated: note.updated_at.and_then(ms_to_datetime),
        to,
        cc,
        in_reply_to: note.in_reply_to_ap_id.as_deref().and_then(|u| Url::parse(u).ok()),
        url: Some(id.clone()),
        tag,
        attachment,
        replies: None,
        conversation: None,
        name: None,
        id,
    })
}

/// Loads what `to_note` needs for a stored note.
pub async fn load_note(state: &AppState, note: &NoteRow) -> Result<Note, AppError> {
    let author = db::actors::by_id(&state.db, note.author_id)
        .await?
        .ok_or_else(|| AppError::NotFound("note author".to_owned()))?;
    Ok(load_note_by(state, note, &author).await?.0)
}

/// `load_note` when the author is at hand; also returns the note's attachments.
pub async fn load_note_by(
    state: &AppState,
    note: &NoteRow,
    author: &ActorRow,
) -> Result<(Note, Vec<MediaRow>), AppError> {
    let mention_ids: Vec<i64> =
        db::notes::mentions_of(&state.db, &[note.id]).await?.into_iter().map(|(_, a)| a).collect();
    let mentioned = db::actors::by_ids(&state.db, &mention_ids).await?;
    let tags: Vec<String> =
        db::notes::tags_of(&state.db, &[note.id]).await?.into_iter().map(|(_, t)| t).collect();
    let media = db::media::of_notes(&state.db, &[note.id]).await?;
    Ok((to_note(state, note, author, &mentioned, &tags, &media)?, media))
}

/// Checks a received note: it must come from its author's server.
pub fn check_note(note: &Note, expected: &Url) -> Result<(), AppError> {
    same_origin(&note.id, expected)?;
    same_origin(&note.id, &note.attributed_to)
}

/// Turns a received note into the storage command, resolving the author (fetching if new).
pub async fn remote_note(data: &AppState, note: &Note) -> Result<RemoteNote, AppError> {
    let author = fetch::actor(data, &note.attributed_to, false).await?;
    Ok(remote_note_by(note, Arc::new(author)))
}

/// The `audience` column: `{"to": [...], "cc": [...]}`, written straight from the URLs (this runs
/// for every received note).
fn audience_json(to: &[Url], cc: &[Url]) -> String {
    #[derive(serde::Serialize)]
    struct Audience<'a> {
        to: &'a [Url],
        cc: &'a [Url],
    }
    serde_json::to_string(&Audience { to, cc }).expect("URLs serialize")
}

/// `remote_note` when the author (`note.attributedTo`) is already at hand.
pub fn remote_note_by(note: &Note, author: Arc<ActorRow>) -> RemoteNote {
    let mut mentions = Vec::new();
    let mut hashtags = Vec::new();
    for tag in &note.tag {
        match tag {
            Tag::Mention { href, .. } => mentions.push(href.to_string()),
            Tag::Hashtag { name, .. } => {
                let name = name.trim_start_matches('#').to_lowercase();
                if !name.is_empty() && name.len() <= 100 {
                    hashtags.push(name);
                }
            }
            Tag::Emoji { .. } => {}
        }
    }
    let visibility = visibility_of(&note.to, &note.cc, author.followers_url.as_deref());
    let content = note
        .content_map
        .as_ref()
        .and_then(|m| m.values().next())
        .filter(|_| note.content.is_empty())
        .unwrap_or(&note.content);
    RemoteNote {
        ap_id: note.id.to_string(),
        author,
        visibility: visibility.to_owned(),
        content_html: content.clone(),
        summary: note.summary.clone().unwrap_or_default(),
        sensitive: note.sensitive,
        language: note.language().map(str::to_owned),
        url: note.url.as_ref().map(Url::to_string),
        in_reply_to: note.in_reply_to.as_ref().map(Url::to_string),
        published_at: note.published.map(|p| p.timestamp_millis()),
        updated_at: note.updated.map(|u| u.timestamp_millis()),
        audience: audience_json(&note.to, &note.cc),
        mentions,
        hashtags,
        attachments: note
            .attachment
            .iter()
            .take(16)
            .map(|a| RemoteAttachment {
                url: a.url.to_string(),
                media_type: a
                    .media_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                description: a.name.clone().unwrap_or_default(),
                blurhash: a.blurhash.clone(),
                width: a.width.map(|w| w as i32),
                height: a.height.map(|h| h as i32),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column keeps the shape that `serde_json::json!` wrote before: rows written by either
    /// read alike.
    #[test]
    fn the_audience_column_is_a_to_and_cc_object() {
        let to = [Url::parse(PUBLIC).unwrap()];
        let cc = [Url::parse("https://a.example/users/u/followers").unwrap()];
        let written = audience_json(&to, &cc);
        assert_eq!(written, serde_json::json!({ "to": to, "cc": cc }).to_string());
        assert_eq!(
            written,
            r#"{"to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["https://a.example/users/u/followers"]}"#
        );
        assert_eq!(audience_json(&[], &[]), r#"{"to":[],"cc":[]}"#);
    }
}
