//! Notes: local posting and deletion, and storage of notes received from other servers.

use std::sync::Arc;

use crate::db::actors::ActorRow;
use crate::db::media::MediaRow;
use crate::db::notes::NoteRow;
use crate::db::notifications::NotificationRow;
use crate::db::{self, Tx};
use crate::error::{AppError, AppResult};
use crate::federation::{self, Data, outbox};
use crate::ids::{id_at, now_ms};
use crate::services::content;
use crate::services::interactions::PreparedLike;
use crate::state::AppState;
use crate::urls;

/// Longest note text accepted from local users, in characters (Mastodon's default is 500;
/// notes here are longer-form).
pub const MAX_CHARS: usize = 5000;
/// Most attachments on one note.
pub const MAX_MEDIA: usize = 8;

/// Visibility of a note, as the client API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Everyone, listed on public timelines.
    Public,
    /// Everyone, not listed.
    Unlisted,
    /// Followers only.
    Private,
    /// Mentioned people only.
    Direct,
}

impl Visibility {
    /// Parses the client API's names.
    pub fn parse(raw: &str) -> AppResult<Visibility> {
        match raw {
            "public" => Ok(Visibility::Public),
            "unlisted" => Ok(Visibility::Unlisted),
            "private" => Ok(Visibility::Private),
            "direct" => Ok(Visibility::Direct),
            other => Err(AppError::Invalid(format!("unknown visibility {other:?}"))),
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
            Visibility::Direct => "direct",
        }
    }
}

/// A local post.
#[derive(Clone, Debug)]
pub struct CreateNote {
    pub author: ActorRow,
    pub text: String,
    pub summary: String,
    pub sensitive: bool,
    pub visibility: Visibility,
    pub language: Option<String>,
    pub in_reply_to: Option<i64>,
    pub media_ids: Vec<i64>,
}

/// An attachment of a received note.
#[derive(Clone, Debug)]
pub struct RemoteAttachment {
    pub url: String,
    pub media_type: String,
    pub description: String,
    pub blurhash: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// A note received from another server, already checked by `federation`.
#[derive(Clone, Debug)]
pub struct RemoteNote {
    pub ap_id: String,
    pub author: Arc<ActorRow>,
    pub visibility: String,
    pub content_html: String,
    pub summary: String,
    pub sensitive: bool,
    pub language: Option<String>,
    pub url: Option<String>,
    pub in_reply_to: Option<String>,
    pub published_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub audience: String,
    /// Actor ids of mentioned actors.
    pub mentions: Vec<String>,
    pub hashtags: Vec<String>,
    pub attachments: Vec<RemoteAttachment>,
}

fn valid_language(lang: &str) -> bool {
    (2..=35).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Posts a note for a local account: stores it, fans it out to local home feeds, notifies
/// mentioned local accounts and queues a `Create` for remote followers and mentioned remote
/// actors, all in one transaction.
pub async fn create(data: &Data, cmd: CreateNote) -> AppResult<NoteRow> {
    let text = cmd.text.trim();
    if text.is_empty() && cmd.media_ids.is_empty() {
        return Err(AppError::Invalid("a note needs text or media".to_owned()));
    }
    if text.chars().count() > MAX_CHARS {
        return Err(AppError::Invalid(format!("text is longer than {MAX_CHARS} characters")));
    }
    if cmd.media_ids.len() > MAX_MEDIA {
        return Err(AppError::Invalid(format!("at most {MAX_MEDIA} attachments")));
    }
    if let Some(lang) = &cmd.language
        && !valid_language(lang)
    {
        return Err(AppError::Invalid(format!("invalid language tag {lang:?}")));
    }
    if cmd.author.moved_to.is_some() {
        return Err(AppError::Forbidden("this account has moved and is read-only".to_owned()));
    }
    let parent = match cmd.in_reply_to {
        Some(id) => {
            let parent = db::notes::by_id(&data.db, id).await?.filter(|n| n.deleted_at.is_none());
            match parent {
                Some(p) if db::notes::is_visible(&data.db, p.id, cmd.author.id).await? => Some(p),
                _ => return Err(AppError::NotFound(format!("note {id} to reply to not found"))),
            }
        }
        None => None,
    };

    let mut media = Vec::with_capacity(cmd.media_ids.len());
    for (position, media_id) in cmd.media_ids.iter().enumerate() {
        match db::media::by_id(&data.db, *media_id).await? {
            Some(mut m) if m.owner_id == cmd.author.id && m.note_id.is_none() => {
                m.position = position as i32;
                media.push(m);
            }
            _ => {
                return Err(AppError::Invalid(format!(
                    "unknown or already used media id {media_id}"
                )));
            }
        }
    }

    // Resolve mentions before the transaction: remote ones may need a WebFinger lookup.
    let (tokens, tags) = content::scan(text);
    let mut mentioned: Vec<(content::MentionToken, ActorRow)> = Vec::new();
    for token in tokens.into_iter().take(20) {
        let actor = match &token.domain {
            None => db::actors::by_handle(&data.db, &token.username, &data.config.domain).await?,
            Some(domain) if *domain == data.config.domain => {
                db::actors::by_handle(&data.db, &token.username, domain).await?
            }
            Some(_) => match federation::fetch::resolve_handle(data, &token.acct()).await {
                Ok(actor) => Some(actor),
                Err(e) => {
                    tracing::info!(mention = %token.acct(), error = %e, "mention not resolved");
                    None
                }
            },
        };
        if let Some(actor) = actor.filter(|a| a.deleted_at.is_none()) {
            mentioned.push((token, actor));
        }
    }
    // The parent's author is addressed even when not mentioned in the text.
    let mut parent_author = None;
    if let Some(p) = &parent
        && !mentioned.iter().any(|(_, a)| a.id == p.author_id)
        && p.author_id != cmd.author.id
    {
        parent_author = db::actors::by_id(&data.db, p.author_id).await?;
    }
    let html = content::render(
        text,
        &|m| {
            mentioned
                .iter()
                .find(|(t, _)| t == m)
                .map(|(_, a)| a.profile_url.clone().unwrap_or_else(|| a.ap_id.clone()))
        },
        &|tag| urls::tag(&data.config, tag).to_string(),
    );
    let mut mentioned: Vec<ActorRow> = mentioned.into_iter().map(|(_, a)| a).collect();
    mentioned.extend(parent_author);

    let id = data.db.next_id();
    let now = now_ms();
    let row = NoteRow {
        id,
        ap_id: urls::note(&data.config, id).to_string(),
        author_id: cmd.author.id,
        is_local: true,
        visibility: cmd.visibility.as_str().to_owned(),
        content: html,
        summary: cmd.summary.trim().chars().take(500).collect(),
        sensitive: cmd.sensitive || !cmd.summary.trim().is_empty(),
        language: cmd.language,
        url: None,
        in_reply_to_ap_id: parent.as_ref().map(|p| p.ap_id.clone()),
        in_reply_to_id: parent.as_ref().map(|p| p.id),
        reblog_of_id: None,
        audience: "{}".to_owned(),
        published_at: now,
        updated_at: None,
        deleted_at: None,
    };
    let mut tx = data.db.begin().await?;
    let note = db::notes::insert(&mut tx, &row)
        .await?
        .ok_or_else(|| AppError::Conflict("duplicate note id".to_owned()))?;
    let mention_ids: Vec<i64> = mentioned.iter().map(|a| a.id).collect();
    db::notes::insert_mentions(&mut tx, note.id, &mention_ids).await?;
    db::notes::insert_tags(&mut tx, note.id, &tags).await?;
    if db::media::attach(&mut tx, cmd.author.id, note.id, &cmd.media_ids).await?
        != media.len() as u64
    {
        return Err(AppError::Invalid("unknown or already used media id".to_owned()));
    }
    db::feed::fan_out(&mut tx, &note).await?;
    for actor in mentioned.iter().filter(|a| a.is_local && a.id != cmd.author.id) {
        notify(&mut tx, data, actor.id, "mention", cmd.author.id, Some(note.id)).await?;
    }
    outbox::note_created(&mut tx, data, &note, &cmd.author, &mentioned, &tags, &media).await?;
    tx.commit().await?;
    data.wake_delivery();
    Ok(note)
}

/// Adds a notification inside a transaction.
pub async fn notify(
    tx: &mut Tx,
    state: &AppState,
    account: i64,
    kind: &str,
    from: i64,
    note: Option<i64>,
) -> AppResult<()> {
    db::notifications::insert(tx, &notification(state, account, kind, from, note)).await?;
    Ok(())
}

/// A new notification of `account`, of `kind`, from actor `from`, about `note`.
pub fn notification(
    state: &AppState,
    account: i64,
    kind: &str,
    from: i64,
    note: Option<i64>,
) -> NotificationRow {
    NotificationRow {
        id: state.db.next_id(),
        account_id: account,
        kind: kind.to_owned(),
        from_actor_id: from,
        note_id: note,
        created_at: now_ms(),
    }
}

/// Deletes a local note by its author; queues a `Delete` to everyone who received it.
pub async fn delete(data: &Data, author: &ActorRow, note_id: i64) -> AppResult<NoteRow> {
    let note = db::notes::by_id(&data.db, note_id)
        .await?
        .filter(|n| n.deleted_at.is_none() && n.reblog_of_id.is_none())
        .ok_or_else(|| AppError::NotFound(format!("note {note_id} not found")))?;
    if note.author_id != author.id {
        return Err(AppError::Forbidden("only the author can delete a note".to_owned()));
    }
    let mention_ids: Vec<i64> =
        db::notes::mentions_of(&data.db, &[note.id]).await?.into_iter().map(|(_, a)| a).collect();
    let mentioned = db::actors::by_ids(&data.db, &mention_ids).await?;
    let mut tx = data.db.begin().await?;
    db::notes::mark_deleted(&mut tx, note.id, now_ms()).await?;
    outbox::note_deleted(&mut tx, data, &note, author, &mentioned).await?;
    tx.commit().await?;
    data.wake_delivery();
    Ok(note)
}

/// A received note made ready to store: sanitised, its parent and mentions resolved. Storing
/// it (`claim_and_store`) needs no further reads, so many can go in one transaction.
#[derive(Clone, Debug)]
pub struct PreparedNote {
    row: NoteRow,
    mention_ids: Vec<i64>,
    mentioned_local: Vec<i64>,
    hashtags: Vec<String>,
    attachments: Vec<RemoteAttachment>,
}

impl PreparedNote {
    /// The note's ActivityPub id.
    pub fn ap_id(&self) -> &str {
        &self.row.ap_id
    }

    /// A remote boost, for the inbox writer (`services::interactions::boost_row`): no mentions,
    /// tags or media of its own.
    pub fn boost(row: NoteRow) -> PreparedNote {
        PreparedNote {
            row,
            mention_ids: Vec::new(),
            mentioned_local: Vec::new(),
            hashtags: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// Stores a received note (idempotent on its id), threads it, fans it out to local followers
/// and notifies mentioned local accounts.
pub async fn store_remote(state: &AppState, cmd: RemoteNote) -> AppResult<NoteRow> {
    if let Some(existing) = db::notes::by_ap_id(&state.db, &cmd.ap_id).await? {
        return Ok(existing);
    }
    let ap_id = cmd.ap_id.clone();
    let prepared = prepare_remote(state, cmd).await?;
    let mut tx = state.db.begin().await?;
    let written = claim_and_store(&mut tx, state, &[Batched::Note(&prepared)]).await?;
    tx.commit().await?;
    match written.stored.into_iter().flatten().next() {
        Some(note) => Ok(note),
        // Stored concurrently by another delivery of the same note.
        None => {
            db::notes::by_ap_id(&state.db, &ap_id).await?.ok_or_else(|| AppError::NotFound(ap_id))
        }
    }
}

/// Sanitises a received note and resolves what it links to, outside any transaction.
pub async fn prepare_remote(state: &AppState, cmd: RemoteNote) -> AppResult<PreparedNote> {
    if cmd.author.suspended {
        return Err(AppError::Forbidden(format!("{} is suspended", cmd.author.ap_id)));
    }
    let parent = match &cmd.in_reply_to {
        Some(ap_id) => db::notes::by_ap_id(&state.db, ap_id).await?,
        None => None,
    };
    let mut mentioned_local = Vec::new();
    let mut mention_ids = Vec::new();
    for href in &cmd.mentions {
        if let Some(actor) = db::actors::by_ap_id(&state.db, href).await? {
            mention_ids.push(actor.id);
            if actor.is_local {
                mentioned_local.push(actor.id);
            }
        }
    }
    let now = now_ms();
    // A published date in the future is clamped, so a note cannot pin itself to the top.
    let published = cmd.published_at.unwrap_or(now).min(now);
    let row = NoteRow {
        id: id_at(published),
        ap_id: cmd.ap_id,
        author_id: cmd.author.id,
        is_local: false,
        visibility: cmd.visibility,
        content: content::sanitize(&cmd.content_html),
        summary: content::to_text(&cmd.summary).chars().take(1000).collect(),
        sensitive: cmd.sensitive || !cmd.summary.is_empty(),
        language: cmd.language.filter(|l| valid_language(l)),
        url: cmd.url,
        in_reply_to_ap_id: cmd.in_reply_to,
        in_reply_to_id: parent.as_ref().map(|p| p.id),
        reblog_of_id: None,
        audience: cmd.audience,
        published_at: published,
        updated_at: cmd.updated_at,
        deleted_at: None,
    };
    Ok(PreparedNote {
        row,
        mention_ids,
        mentioned_local,
        hashtags: cmd.hashtags,
        attachments: cmd.attachments,
    })
}

/// One item of an inbox batch (`claim_and_store`).
#[derive(Clone, Copy, Debug)]
pub enum Batched<'a> {
    /// An activity id to claim, for an activity handled after the batch.
    Claim(&'a str),
    /// A received note to store; its `ap_id` is its replay check.
    Note(&'a PreparedNote),
    /// A received like to record; its `ap_id` is its replay check.
    Like(&'a PreparedLike),
}

/// Claims activity ids, stores prepared notes and records likes, in `tx`, with a fixed number
/// of statements for the whole batch (`db::ingest`); media and mention notifications follow,
/// per note that has them. Returns, per item, whether its claim was new, the note stored (none
/// if already stored) and whether the like was recorded.
pub async fn claim_and_store(
    tx: &mut Tx,
    state: &AppState,
    batch: &[Batched<'_>],
) -> AppResult<db::ingest::Written> {
    let entries = ingest_entries(batch);
    let written = db::ingest::write(tx, &entries, now_ms()).await?;
    for (item, note) in batch.iter().zip(&written.stored) {
        let (Batched::Note(prepared), Some(note)) = (item, note) else { continue };
        for (position, a) in prepared.attachments.iter().enumerate() {
            db::media::insert(
                tx,
                &MediaRow {
                    id: state.db.next_id(),
                    owner_id: note.author_id,
                    note_id: Some(note.id),
                    file_name: None,
                    remote_url: Some(a.url.clone()),
                    content_type: a.media_type.chars().take(100).collect(),
                    description: a.description.chars().take(1500).collect(),
                    blurhash: a.blurhash.clone().filter(|b| b.len() <= 100),
                    width: a.width,
                    height: a.height,
                    position: position as i32,
                    created_at: now_ms(),
                },
            )
            .await?;
        }
        for account in &prepared.mentioned_local {
            notify(tx, state, *account, "mention", note.author_id, Some(note.id)).await?;
        }
    }
    Ok(written)
}

/// `claim_and_store` without a transaction of the caller's, when the batch allows it (no media
/// and no local mentions to record with the notes, and what `db::ingest::write_alone` asks).
/// None, and nothing written, otherwise.
pub async fn claim_and_store_alone(
    state: &AppState,
    held: &mut db::Held,
    batch: &[Batched<'_>],
) -> AppResult<Option<db::ingest::Written>> {
    if batch.iter().any(|item| {
        matches!(item, Batched::Note(n) if !n.attachments.is_empty() || !n.mentioned_local.is_empty())
    }) {
        return Ok(None);
    }
    let entries = ingest_entries(batch);
    Ok(db::ingest::write_alone(&state.db, held, &entries, now_ms()).await?)
}

fn ingest_entries<'a>(batch: &[Batched<'a>]) -> Vec<db::ingest::Entry<'a>> {
    let nothing = db::ingest::Entry { claim: None, note: None, like: None };
    batch
        .iter()
        .map(|item| match item {
            Batched::Claim(id) => db::ingest::Entry { claim: Some(id), ..nothing },
            Batched::Note(n) => db::ingest::Entry {
                note: Some(db::ingest::NewNote {
                    row: &n.row,
                    mentions: &n.mention_ids,
                    tags: &n.hashtags,
                }),
                ..nothing
            },
            Batched::Like(like) => db::ingest::Entry { like: Some(like.entry()), ..nothing },
        })
        .collect()
}

/// Applies a received edit to a stored note by the same author.
pub async fn update_remote(state: &AppState, cmd: RemoteNote) -> AppResult<()> {
    let Some(mut note) = db::notes::by_ap_id(&state.db, &cmd.ap_id).await? else {
        store_remote(state, cmd).await?;
        return Ok(());
    };
    if note.author_id != cmd.author.id {
        return Err(AppError::Forbidden(format!("{} cannot edit {}", cmd.author.ap_id, cmd.ap_id)));
    }
    if note.deleted_at.is_some() {
        // An edit arriving after the deletion must not bring the content back.
        return Ok(());
    }
    note.content = content::sanitize(&cmd.content_html);
    note.summary = content::to_text(&cmd.summary).chars().take(1000).collect();
    note.sensitive = cmd.sensitive || !cmd.summary.is_empty();
    note.language = cmd.language.filter(|l| valid_language(l));
    note.updated_at = Some(cmd.updated_at.unwrap_or_else(now_ms));
    let mut tx = state.db.begin().await?;
    db::notes::update_content(&mut tx, &note).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a stored remote note (or boost) on its author's request.
pub async fn delete_remote(state: &AppState, actor: &ActorRow, ap_id: &str) -> AppResult<()> {
    let Some(note) = db::notes::by_ap_id(&state.db, ap_id).await? else {
        return Ok(());
    };
    if note.author_id != actor.id {
        return Err(AppError::Forbidden(format!("{} cannot delete {ap_id}", actor.ap_id)));
    }
    let mut tx = state.db.begin().await?;
    if note.reblog_of_id.is_some() {
        db::notes::delete_boost(&mut tx, note.id).await?;
    } else {
        db::notes::mark_deleted(&mut tx, note.id, now_ms()).await?;
    }
    tx.commit().await?;
    Ok(())
}
