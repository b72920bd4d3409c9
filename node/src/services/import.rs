//! Importing an account archive (Ferry's, or Mastodon's "Request your archive") and
//! Mastodon's CSV exports into a local account.
//!
//! Notes come back with their original dates, content warnings, language, attachments and
//! threading, each recording the id it had on the old server (`notes.imported_from`), so a
//! second import of the same archive, or one resumed after a crash, creates nothing twice.
//! Imported notes are not announced to followers: they are history, not news. Follows, blocks
//! and mutes come from the CSVs; each row that cannot be applied is reported with its reason.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::blocks::Kind;
use crate::db::follows::Side;
use crate::db::media::MediaRow;
use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::objects::note::visibility_of;
use crate::ids::{id_at, now_ms};
use crate::services::{archive, blocks, content, follows};
use crate::state::AppState;
use crate::urls;

/// Largest JSON or CSV file read from an archive, uncompressed (a zip bomb stops here).
const MAX_DOCUMENT_BYTES: u64 = 256 << 20;
/// Notes looked up per query when checking which were imported before.
const LOOKUP_CHUNK: usize = 500;

/// How CSV lists combine with what the account has (Mastodon's two modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Add what the list has; keep the rest.
    Merge,
    /// Make the account's follows, blocks or mutes exactly the list.
    Overwrite,
}

/// One item that could not be imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The archive file (`outbox.json`, `following_accounts.csv`, …).
    pub file: String,
    /// 1-based line of a CSV file, or position in `orderedItems`.
    pub row: usize,
    /// What the row named.
    pub item: String,
    /// Why it was not imported.
    pub error: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub notes_imported: usize,
    /// Notes already imported before (a repeated or resumed import).
    pub notes_already_there: usize,
    /// Boosts are not imported: re-boosting would announce old boosts as new.
    pub boosts_skipped: usize,
    pub media_imported: usize,
    pub follows: usize,
    pub unfollowed: usize,
    pub blocks: usize,
    pub mutes: usize,
    /// The `did:key` of the identity key taken over from the archive (with its passphrase).
    pub identity: Option<String>,
    /// Followers listed in the archive, kept for a move from a server that is gone.
    pub followers_listed: usize,
    pub problems: Vec<Problem>,
}

impl ImportReport {
    fn problem(&mut self, file: &str, row: usize, item: impl Into<String>, error: impl ToString) {
        self.problems.push(Problem {
            file: file.to_owned(),
            row,
            item: item.into(),
            error: error.to_string(),
        });
    }
}

/// The readable parts of an archive, read in one pass on a blocking thread.
#[derive(Default)]
struct Contents {
    actor: Option<Value>,
    outbox: Option<Value>,
    csv: HashMap<String, String>,
    identity: Option<Value>,
    followers: Option<Value>,
    /// Names of every file in the archive.
    names: Vec<String>,
}

const CSV_FILES: [&str; 3] =
    ["following_accounts.csv", "blocked_accounts.csv", "muted_accounts.csv"];

/// Imports the archive at `path` into the local account `actor`. With the archive's
/// `passphrase`, the account also takes over the identity key the archive carries.
pub async fn import_archive(
    state: &AppState,
    actor: &ActorRow,
    path: &Path,
    mode: Mode,
    passphrase: Option<&str>,
) -> AppResult<ImportReport> {
    if !actor.is_local {
        return Err(AppError::Invalid(format!("{} is not a local account", actor.ap_id)));
    }
    crate::services::moving::ensure_not_moved(actor)?;
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| AppError::Invalid(format!("cannot read {}: {e}", path.display())))?
        .len();
    if size > state.config.archive_max_bytes {
        return Err(AppError::TooLarge(format!(
            "the archive is {size} bytes; this node accepts at most {}",
            state.config.archive_max_bytes
        )));
    }
    let owned = path.to_owned();
    let contents = tokio::task::spawn_blocking(move || read_archive(&owned))
        .await
        .map_err(|e| AppError::Other(anyhow::anyhow!("import task failed: {e}")))??;
    if contents.outbox.is_none()
        && contents.followers.is_none()
        && !CSV_FILES.iter().any(|f| contents.csv.contains_key(*f))
    {
        return Err(AppError::Invalid(
            "the archive has neither outbox.json nor any of following_accounts.csv, blocked_accounts.csv, muted_accounts.csv"
                .to_owned(),
        ));
    }
    let mut report = ImportReport::default();
    match (&contents.identity, passphrase) {
        (Some(sealed), Some(passphrase)) => {
            let (sealed, passphrase) = (sealed.clone(), passphrase.to_owned());
            let key = tokio::task::spawn_blocking(move || {
                crate::services::archive::open_identity(&passphrase, &sealed)
            })
            .await
            .map_err(|e| AppError::Other(anyhow::anyhow!("import task failed: {e}")))??;
            let mut tx = state.db.begin().await?;
            crate::services::accounts::set_identity(&mut tx, actor, &key).await?;
            tx.commit().await?;
            report.identity = Some(key.did());
        }
        (None, Some(_)) => {
            return Err(AppError::Invalid(format!(
                "a passphrase was given, but the archive has no {}",
                crate::services::archive::IDENTITY_FILE
            )));
        }
        _ => {}
    }
    if let Some(list) = contents.followers.as_ref().and_then(|f| f["orderedItems"].as_array()) {
        let ids: Vec<String> = list
            .iter()
            .filter_map(Value::as_str)
            .filter(|id| Url::parse(id).is_ok())
            .map(str::to_owned)
            .collect();
        let mut tx = state.db.begin().await?;
        db::moves::add_archive_followers(&mut tx, actor.id, &ids).await?;
        tx.commit().await?;
        report.followers_listed = ids.len();
    }
    if let Some(outbox) = &contents.outbox {
        import_notes(state, actor, path, &contents, outbox, &mut report).await?;
    }
    for name in CSV_FILES {
        if let Some(text) = contents.csv.get(name) {
            import_csv(state, actor, name, text, mode, &mut report).await?;
        }
    }
    Ok(report)
}

/// Imports one of Mastodon's CSV exports (`following_accounts.csv`, `blocked_accounts.csv` or
/// `muted_accounts.csv`, named by `file`) into `actor`.
pub async fn import_csv(
    state: &AppState,
    actor: &ActorRow,
    file: &str,
    text: &str,
    mode: Mode,
    report: &mut ImportReport,
) -> AppResult<()> {
    crate::services::moving::ensure_not_moved(actor)?;
    let kind = match file {
        "following_accounts.csv" => None,
        "blocked_accounts.csv" => Some(Kind::Block),
        "muted_accounts.csv" => Some(Kind::Mute),
        other => {
            return Err(AppError::Invalid(format!(
                "unknown list {other:?}: expected following_accounts.csv, blocked_accounts.csv or muted_accounts.csv"
            )));
        }
    };
    let mut listed: Vec<i64> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let row = index + 1;
        let fields = csv_fields(line);
        let Some(first) = fields.first().map(|f| f.trim()) else { continue };
        if first.is_empty() {
            continue;
        }
        // Mastodon writes a header line in some lists, and not in others.
        if index == 0 && first.eq_ignore_ascii_case("Account address") {
            continue;
        }
        let handle = first.trim_start_matches('@');
        let target = match crate::federation::fetch::resolve_handle(state, handle).await {
            Ok(target) => target,
            Err(e) => {
                report.problem(file, row, first, e);
                continue;
            }
        };
        listed.push(target.id);
        let done = match kind {
            None => follows::follow(state, actor, &target).await.map(|_| report.follows += 1),
            Some(Kind::Block) => {
                blocks::block(state, actor, &target).await.map(|_| report.blocks += 1)
            }
            Some(Kind::Mute) => {
                let hide = fields.get(1).is_none_or(|f| !f.trim().eq_ignore_ascii_case("false"));
                blocks::mute(state, actor, &target, hide).await.map(|_| report.mutes += 1)
            }
        };
        if let Err(e) = done {
            report.problem(file, row, first, e);
        }
    }
    if mode == Mode::Overwrite {
        overwrite(state, actor, kind, &listed, report).await?;
    }
    Ok(())
}

/// Undoes follows, blocks or mutes that the imported list does not name.
async fn overwrite(
    state: &AppState,
    actor: &ActorRow,
    kind: Option<Kind>,
    keep: &[i64],
    report: &mut ImportReport,
) -> AppResult<()> {
    let current = match kind {
        None => archive::follow_list(state, actor, Side::Following).await?,
        Some(kind) => {
            archive::block_list(state, actor, kind).await?.into_iter().map(|(a, _)| a).collect()
        }
    };
    let keep: HashSet<i64> = keep.iter().copied().collect();
    for target in current.into_iter().filter(|a| !keep.contains(&a.id)) {
        match kind {
            None => follows::unfollow(state, actor, &target).await?,
            Some(Kind::Block) => blocks::unblock(state, actor, &target).await?,
            Some(Kind::Mute) => blocks::unmute(state, actor, &target).await?,
        }
        report.unfollowed += usize::from(kind.is_none());
    }
    Ok(())
}

/// Splits one CSV line into fields (quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn read_archive(path: &Path) -> AppResult<Contents> {
    let file = std::fs::File::open(path)
        .map_err(|e| AppError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| AppError::Invalid(format!("not a zip archive: {e}")))?;
    let names = zip
        .file_names()
        .map(|name| name.map(std::borrow::Cow::into_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::Invalid(format!("unreadable file name in the archive: {e}")))?;
    let mut contents = Contents { names, ..Contents::default() };
    for name in contents.names.clone() {
        // Mastodon's archives have their files at the top; some tools add a folder.
        let base = name.rsplit('/').next().unwrap_or(&name);
        let ferry_file =
            name.ends_with("ferry/identity.json") || name.ends_with("ferry/followers.json");
        let wanted =
            ferry_file || matches!(base, "actor.json" | "outbox.json") || CSV_FILES.contains(&base);
        if !wanted || name.starts_with("media_attachments/") {
            continue;
        }
        let text = read_entry(&mut zip, &name, MAX_DOCUMENT_BYTES)?;
        let text = String::from_utf8(text)
            .map_err(|_| AppError::Invalid(format!("{name} is not UTF-8 text")))?;
        match base {
            "actor.json" | "outbox.json" | "identity.json" | "followers.json" => {
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| AppError::Invalid(format!("{name} is not valid JSON: {e}")))?;
                match base {
                    "actor.json" => contents.actor = Some(value),
                    "outbox.json" => contents.outbox = Some(value),
                    "identity.json" => contents.identity = Some(value),
                    _ => contents.followers = Some(value),
                }
            }
            _ => {
                contents.csv.insert(base.to_owned(), text);
            }
        }
    }
    Ok(contents)
}

/// Reads one entry, refusing more than `max` bytes whatever its header claims.
fn read_entry<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    max: u64,
) -> AppResult<Vec<u8>> {
    let entry = zip.by_name(name).map_err(|e| AppError::Invalid(format!("{name}: {e}")))?;
    if entry.size() > max {
        return Err(AppError::TooLarge(format!("{name} is larger than {max} bytes")));
    }
    let mut bytes = Vec::new();
    entry
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| AppError::Invalid(format!("{name}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(AppError::TooLarge(format!("{name} is larger than {max} bytes")));
    }
    Ok(bytes)
}

/// Copies one attachment out of the archive into the media directory as `file_name`.
fn extract_media(archive: &Path, entry: &str, dest: &Path, max: u64) -> AppResult<Vec<u8>> {
    let file = std::fs::File::open(archive)
        .map_err(|e| AppError::Other(anyhow::anyhow!("reopening the archive: {e}")))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| AppError::Invalid(format!("not a zip archive: {e}")))?;
    let bytes = read_entry(&mut zip, entry, max)?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| AppError::Other(e.into()))?;
    }
    std::fs::write(dest, &bytes).map_err(|e| AppError::Other(e.into()))?;
    Ok(bytes)
}

/// A string field, or the first string of an array.
fn text_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items.iter().find_map(Value::as_str),
        _ => None,
    }
}

/// Addressees as URLs, from a string or an array.
fn urls_of(value: &Value) -> Vec<Url> {
    let parse = |v: &Value| v.as_str().and_then(|s| Url::parse(s).ok());
    match value {
        Value::Array(items) => items.iter().filter_map(parse).collect(),
        other => parse(other).into_iter().collect(),
    }
}

fn millis(value: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok().map(|d| d.timestamp_millis())
}

/// The attachment's file inside the archive: Mastodon writes paths relative to the archive
/// root (`media_attachments/files/…`), sometimes with a leading `/` or a storage prefix.
fn entry_for(url: &str, names: &[String]) -> Option<String> {
    let path =
        url.split_once("://").map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = path.trim_start_matches('/');
    if names.iter().any(|n| n == path) {
        return Some(path.to_owned());
    }
    let tail = &path[path.find("media_attachments/")?..];
    names.iter().find(|n| n.ends_with(tail)).cloned()
}

async fn import_notes(
    state: &AppState,
    actor: &ActorRow,
    archive: &Path,
    contents: &Contents,
    outbox: &Value,
    report: &mut ImportReport,
) -> AppResult<()> {
    const FILE: &str = "outbox.json";
    let items = outbox
        .get("orderedItems")
        .and_then(Value::as_array)
        .ok_or_else(|| AppError::Invalid("outbox.json has no orderedItems list".to_owned()))?;
    // The old account's followers collection tells followers-only notes from direct ones.
    let old_followers = contents
        .actor
        .as_ref()
        .and_then(|a| a.get("followers"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // What earlier runs imported: their old ids map to notes here.
    let old_ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.get("object").and_then(|o| o.get("id")).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let mut known: HashMap<String, (i64, String)> = HashMap::new();
    for chunk in old_ids.chunks(LOOKUP_CHUNK) {
        for (old, id, ap_id) in db::notes::imported(&state.db, actor.id, chunk).await? {
            known.insert(old, (id, ap_id));
        }
    }
    // Oldest first, so a reply's parent is imported before it (Mastodon's order too).
    let mut order: Vec<(usize, &Value)> = items.iter().enumerate().collect();
    order.sort_by_key(|(_, item)| {
        millis(&item["object"]["published"]).or_else(|| millis(&item["published"])).unwrap_or(0)
    });
    for (index, item) in order {
        let row = index + 1;
        match item.get("type").and_then(Value::as_str) {
            Some("Create") => {}
            Some("Announce") => {
                report.boosts_skipped += 1;
                continue;
            }
            other => {
                report.problem(
                    FILE,
                    row,
                    other.unwrap_or("(no type)"),
                    "only Create activities are imported",
                );
                continue;
            }
        }
        let object = &item["object"];
        let Some(old_id) = object.get("id").and_then(Value::as_str) else {
            report.problem(FILE, row, "(no id)", "the note has no id");
            continue;
        };
        if known.contains_key(old_id) {
            report.notes_already_there += 1;
            continue;
        }
        match import_note(
            state,
            actor,
            archive,
            contents,
            object,
            old_followers.as_deref(),
            &known,
            report,
        )
        .await
        {
            Ok(note) => {
                known.insert(old_id.to_owned(), (note.id, note.ap_id));
                report.notes_imported += 1;
            }
            Err(e) => report.problem(FILE, row, old_id, e),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn import_note(
    state: &AppState,
    actor: &ActorRow,
    archive: &Path,
    contents: &Contents,
    object: &Value,
    old_followers: Option<&str>,
    known: &HashMap<String, (i64, String)>,
    report: &mut ImportReport,
) -> AppResult<NoteRow> {
    let old_id = object["id"].as_str().unwrap_or_default();
    match object.get("type").and_then(Value::as_str) {
        Some("Note" | "Article" | "Page" | "Question") => {}
        other => return Err(AppError::Invalid(format!("a {other:?} is not a note"))),
    }
    let content_map = object.get("contentMap").and_then(Value::as_object);
    let html = object
        .get("content")
        .and_then(Value::as_str)
        .or_else(|| content_map.and_then(|m| m.values().find_map(Value::as_str)))
        .unwrap_or_default();
    let language = content_map.and_then(|m| m.keys().next().cloned()).filter(|l| {
        (2..=35).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let summary: String =
        content::to_text(object.get("summary").and_then(Value::as_str).unwrap_or_default())
            .trim()
            .chars()
            .take(500)
            .collect();
    let published = millis(&object["published"]).unwrap_or_else(now_ms);
    let to = urls_of(&object["to"]);
    let cc = urls_of(&object["cc"]);
    let visibility = visibility_of(&to, &cc, old_followers);
    let (in_reply_to_ap_id, in_reply_to_id) = match object.get("inReplyTo").and_then(text_of) {
        None => (None, None),
        Some(parent) => match known.get(parent) {
            Some((id, ap_id)) => (Some(ap_id.clone()), Some(*id)),
            None => match db::notes::by_ap_id(&state.db, parent).await? {
                Some(stored) => (Some(stored.ap_id), Some(stored.id)),
                None => (Some(parent.to_owned()), None),
            },
        },
    };
    let mut hashtags = Vec::new();
    let mut mentioned = Vec::new();
    for tag in object.get("tag").and_then(Value::as_array).into_iter().flatten() {
        match tag.get("type").and_then(Value::as_str) {
            Some("Hashtag") => {
                if let Some(name) = tag.get("name").and_then(Value::as_str) {
                    let name = name.trim_start_matches('#').to_lowercase();
                    if !name.is_empty() && !hashtags.contains(&name) {
                        hashtags.push(name);
                    }
                }
            }
            Some("Mention") => {
                // Only accounts this node knows: an import fetches nothing.
                if let Some(href) = tag.get("href").and_then(Value::as_str)
                    && let Some(found) = db::actors::by_ap_id(&state.db, href).await?
                {
                    mentioned.push(found.id);
                }
            }
            _ => {}
        }
    }

    // Attachments first, outside the transaction: files are written before the rows that
    // point at them, and a crash leaves at worst an unreferenced file.
    let mut media = Vec::new();
    for (position, attachment) in
        object.get("attachment").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        let url = attachment.get("url").and_then(text_of).unwrap_or_default();
        let Some(entry) = entry_for(url, &contents.names) else {
            report.problem(
                "outbox.json",
                0,
                format!("{old_id} attachment {url}"),
                "the file is not in the archive",
            );
            continue;
        };
        let content_type = attachment
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream");
        let ext = match content_type {
            "image/png" => "png",
            "image/jpeg" => "jpg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            _ => {
                report.problem(
                    "outbox.json",
                    0,
                    format!("{old_id} attachment {url}"),
                    format!("{content_type} files are not accepted"),
                );
                continue;
            }
        };
        let id = state.db.next_id();
        let file_name = format!("{id}.{ext}");
        let dest: PathBuf = state.config.media_dir.join(&file_name);
        let (src, max) = (archive.to_owned(), state.config.media_max_bytes as u64);
        let bytes = tokio::task::spawn_blocking(move || extract_media(&src, &entry, &dest, max))
            .await
            .map_err(|e| AppError::Other(anyhow::anyhow!("import task failed: {e}")))??;
        let (width, height) = match imagesize::blob_size(&bytes) {
            Ok(size) => (Some(size.width as i32), Some(size.height as i32)),
            Err(_) => (None, None),
        };
        media.push(MediaRow {
            id,
            owner_id: actor.id,
            note_id: None,
            file_name: Some(file_name),
            remote_url: None,
            content_type: content_type.to_owned(),
            description: attachment
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(1500)
                .collect(),
            blurhash: attachment.get("blurhash").and_then(Value::as_str).map(str::to_owned),
            width,
            height,
            position: position as i32,
            created_at: published,
        });
    }

    let mut tx = state.db.begin().await?;
    let mut stored = None;
    for _ in 0..3 {
        let id = id_at(published);
        let row = NoteRow {
            id,
            ap_id: urls::note(&state.config, id).to_string(),
            author_id: actor.id,
            is_local: true,
            visibility: visibility.to_owned(),
            content: content::sanitize(html),
            summary: summary.clone(),
            sensitive: object.get("sensitive").and_then(Value::as_bool).unwrap_or(false)
                || !summary.is_empty(),
            language: language.clone(),
            url: None,
            in_reply_to_ap_id: in_reply_to_ap_id.clone(),
            in_reply_to_id,
            reblog_of_id: None,
            audience: "{}".to_owned(),
            published_at: published,
            updated_at: None,
            deleted_at: None,
        };
        // A clash with an existing id (two notes in one millisecond) draws another.
        if let Some(note) = db::notes::insert(&mut tx, &row).await? {
            stored = Some(note);
            break;
        }
    }
    let note = stored.ok_or_else(|| AppError::Conflict(format!("no free id for {old_id}")))?;
    db::notes::set_imported_from(&mut tx, note.id, old_id).await?;
    db::notes::insert_mentions(&mut tx, note.id, &mentioned).await?;
    db::notes::insert_tags(&mut tx, note.id, &hashtags).await?;
    for row in &media {
        db::media::insert(&mut tx, &MediaRow { note_id: Some(note.id), ..row.clone() }).await?;
    }
    tx.commit().await?;
    report.media_imported += media.len();
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes_and_empty_fields() {
        assert_eq!(csv_fields("a@b.example,true,false,"), ["a@b.example", "true", "false", ""]);
        assert_eq!(csv_fields("\"x, \"\"y\"\"\",z\r"), ["x, \"y\"", "z"]);
    }

    #[test]
    fn attachment_paths_are_found_in_the_archive() {
        let names = vec![
            "outbox.json".to_owned(),
            "media_attachments/files/110/001/original/a.png".to_owned(),
        ];
        for url in [
            "media_attachments/files/110/001/original/a.png",
            "/media_attachments/files/110/001/original/a.png",
            "/system/media_attachments/files/110/001/original/a.png",
            "https://old.example/system/media_attachments/files/110/001/original/a.png",
        ] {
            assert_eq!(entry_for(url, &names).as_deref(), Some(names[1].as_str()), "{url}");
        }
        assert_eq!(entry_for("https://old.example/elsewhere.png", &names), None);
    }
}
