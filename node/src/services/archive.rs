//! Account archives: everything a user takes to another server, in one zip file.
//!
//! The layout is Mastodon's "Request your archive" (`actor.json`, `outbox.json`, `likes.json`,
//! `bookmarks.json`, attachments under `media_attachments/`), so tools that read Mastodon
//! archives read Ferry's, plus Mastodon's CSV exports at the top level and Ferry's own files
//! under `ferry/`. docs/migration.md describes every file.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ferry_protocol::context::WithContext;
use ferry_protocol::identity::IdentityKey;
use serde_json::{Value, json};

use crate::db::actors::ActorRow;
use crate::db::blocks::Kind;
use crate::db::follows::Side;
use crate::db::notes::Page;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::objects::note::load_note_by;
use crate::federation::objects::person::to_person;
use crate::state::AppState;
use crate::urls;

/// The version of the `ferry/` files' format, in `ferry/manifest.json`.
pub const FORMAT_VERSION: u32 = 1;
/// The archive's identity key file, present when the export was given a passphrase.
pub const IDENTITY_FILE: &str = "ferry/identity.json";
/// Argon2id parameters for the passphrase (the same cost as password hashing).
const KDF_MEMORY_KIB: u32 = 19_456;
const KDF_PASSES: u32 = 2;
/// Rows read per database page while exporting.
const PAGE: i64 = 200;

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub notes: usize,
    pub boosts: usize,
    pub media: usize,
    pub likes: usize,
    pub following: usize,
    pub followers: usize,
    pub blocks: usize,
    pub mutes: usize,
    /// Size of the zip file.
    pub bytes: u64,
}

/// One file of the archive: bytes made here, or a media file copied from disk.
enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

fn json_bytes<T: serde::Serialize>(value: &T) -> AppResult<Source> {
    serde_json::to_vec_pretty(value).map(Source::Bytes).map_err(|e| AppError::Other(e.into()))
}

/// A whole `OrderedCollection` document, as Mastodon's archive has them.
fn collection(id: &str, items: Vec<Value>) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    })
}

/// One CSV line; a field with a comma, quote or line break is quoted.
fn csv_line(fields: &[&str]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                (*f).to_owned()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

/// Writes `actor`'s archive to `out` (through a `.partial` file renamed at the end, so a
/// crash never leaves a truncated archive under the final name). With a `passphrase`, the
/// archive also carries the account's identity key, encrypted with it: what a move from a
/// server that is gone needs.
pub async fn export(
    state: &AppState,
    actor: &ActorRow,
    out: &Path,
    passphrase: Option<&str>,
) -> AppResult<ExportSummary> {
    if !actor.is_local {
        return Err(AppError::Invalid(format!("{} is not a local account", actor.ap_id)));
    }
    let mut summary = ExportSummary::default();
    let mut files: Vec<(String, Source)> = Vec::new();
    files.push(("actor.json".to_owned(), json_bytes(&WithContext::new(to_person(actor)?))?));

    let (items, media) = outbox_items(state, actor, &mut summary).await?;
    let outbox = collection(urls::outbox(&state.config, &actor.username).as_str(), items);
    files.push(("outbox.json".to_owned(), json_bytes(&outbox)?));
    files.extend(media);

    let mut likes = Vec::new();
    let mut after = 0;
    loop {
        let page = db::favourites::liked_notes(&state.db, actor.id, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        likes.extend(page.into_iter().map(|(_, ap_id)| Value::String(ap_id)));
    }
    summary.likes = likes.len();
    files.push(("likes.json".to_owned(), json_bytes(&collection("likes.json", likes))?));
    files.push(("bookmarks.json".to_owned(), json_bytes(&collection("bookmarks.json", vec![]))?));

    let following = follow_list(state, actor, Side::Following).await?;
    let mut csv = String::from("Account address,Show boosts,Notify on new posts,Languages\n");
    for account in &following {
        csv.push_str(&csv_line(&[&account.handle(), "true", "false", ""]));
    }
    summary.following = following.len();
    files.push(("following_accounts.csv".to_owned(), Source::Bytes(csv.into_bytes())));

    let blocked = block_list(state, actor, Kind::Block).await?;
    let csv: String = blocked.iter().map(|(a, _)| csv_line(&[&a.handle()])).collect();
    summary.blocks = blocked.len();
    files.push(("blocked_accounts.csv".to_owned(), Source::Bytes(csv.into_bytes())));
    let muted = block_list(state, actor, Kind::Mute).await?;
    let mut csv = String::from("Account address,Hide notifications\n");
    for (account, hide) in &muted {
        csv.push_str(&csv_line(&[&account.handle(), if *hide { "true" } else { "false" }]));
    }
    summary.mutes = muted.len();
    files.push(("muted_accounts.csv".to_owned(), Source::Bytes(csv.into_bytes())));
    // Nothing to put in these yet (no domain blocks, bookmarks or lists); present so that
    // importers find every file Mastodon writes.
    files.push(("blocked_domains.csv".to_owned(), Source::Bytes(Vec::new())));
    files.push(("bookmarks.csv".to_owned(), Source::Bytes(Vec::new())));
    files.push(("lists.csv".to_owned(), Source::Bytes(Vec::new())));

    // Ferry's own: followers by actor id (a move from a server that is gone starts from
    // them), chat history (empty until chats exist), and a manifest.
    let followers = follow_list(state, actor, Side::Followers).await?;
    summary.followers = followers.len();
    let ids: Vec<Value> = followers.iter().map(|a| Value::String(a.ap_id.clone())).collect();
    let followers_id = urls::followers_of(&state.config, actor);
    files.push(("ferry/followers.json".to_owned(), json_bytes(&collection(&followers_id, ids))?));
    files.push(("ferry/chats.json".to_owned(), json_bytes(&collection("chats.json", vec![]))?));
    let manifest = json!({
        "format": "ferry-archive",
        "version": FORMAT_VERSION,
        "software": concat!("Ferry ", env!("CARGO_PKG_VERSION")),
        "actor": actor.ap_id,
        "handle": actor.handle(),
        "exported_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "counts": {
            "notes": summary.notes,
            "boosts": summary.boosts,
            "media": summary.media,
            "likes": summary.likes,
            "following": summary.following,
            "followers": summary.followers,
            "blocks": summary.blocks,
            "mutes": summary.mutes,
        },
    });
    files.push(("ferry/manifest.json".to_owned(), json_bytes(&manifest)?));
    if let Some(passphrase) = passphrase {
        let key = crate::services::accounts::identity_key(state, actor).await?;
        let passphrase = passphrase.to_owned();
        let sealed = tokio::task::spawn_blocking(move || seal_identity(&passphrase, &key))
            .await
            .map_err(|e| AppError::Other(anyhow::anyhow!("sealing task failed: {e}")))??;
        files.push((IDENTITY_FILE.to_owned(), json_bytes(&sealed)?));
    }

    let out = out.to_owned();
    summary.bytes = tokio::task::spawn_blocking(move || write_zip(&out, files))
        .await
        .map_err(|e| AppError::Other(anyhow::anyhow!("export task failed: {e}")))??;
    Ok(summary)
}

/// The author's notes (as `Create`) and boosts (as `Announce`), oldest first, with their
/// attachments' URLs pointing into the archive, and the attachment files to copy.
async fn outbox_items(
    state: &AppState,
    actor: &ActorRow,
    summary: &mut ExportSummary,
) -> AppResult<(Vec<Value>, Vec<(String, Source)>)> {
    let mut items = Vec::new();
    let mut media_files = Vec::new();
    let mut page = Page { max_id: None, since_id: None, min_id: None, limit: PAGE };
    loop {
        // The author may see all of their own notes, whatever the visibility.
        let notes = db::notes::by_author(&state.db, actor.id, actor.id, &page).await?;
        let Some(last) = notes.last() else { break };
        page.max_id = Some(last.id);
        let full = notes.len() as i64 == PAGE;
        for note in notes {
            if let Some(original) = note.reblog_of_id {
                let Some(original) = db::notes::by_id(&state.db, original).await? else { continue };
                summary.boosts += 1;
                items.push(json!({
                    "id": note.ap_id,
                    "type": "Announce",
                    "actor": actor.ap_id,
                    "published": chrono::DateTime::from_timestamp_millis(note.published_at)
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "cc": [urls::followers_of(&state.config, actor)],
                    "object": original.ap_id,
                }));
                continue;
            }
            let (object, media) = load_note_by(state, &note, actor).await?;
            let mut object = serde_json::to_value(object).map_err(|e| AppError::Other(e.into()))?;
            for row in media {
                let Some(file) = &row.file_name else { continue };
                let served = urls::media(&state.config, file).to_string();
                let inside = format!("media_attachments/files/{}/{file}", row.id);
                if let Some(list) = object.get_mut("attachment").and_then(Value::as_array_mut) {
                    for attachment in list.iter_mut().filter(|a| a["url"] == served.as_str()) {
                        attachment["url"] = Value::String(inside.clone());
                    }
                }
                media_files.push((inside, Source::File(state.config.media_dir.join(file))));
                summary.media += 1;
            }
            summary.notes += 1;
            items.push(json!({
                "id": format!("{}/activity", note.ap_id),
                "type": "Create",
                "actor": actor.ap_id,
                "published": object["published"],
                "to": object["to"],
                "cc": object["cc"],
                "object": object,
            }));
        }
        if !full {
            break;
        }
    }
    items.reverse();
    Ok((items, media_files))
}

/// Every account on one side of `actor`'s accepted follows.
pub(crate) async fn follow_list(
    state: &AppState,
    actor: &ActorRow,
    side: Side,
) -> AppResult<Vec<ActorRow>> {
    let mut out = Vec::new();
    let mut before = i64::MAX;
    loop {
        let rows = db::follows::page(&state.db, actor.id, side, before, PAGE).await?;
        let Some(last) = rows.last() else { break };
        before = last.id;
        let ids: Vec<i64> = rows.iter().map(|f| f.listed(side)).collect();
        out.extend(db::actors::by_ids(&state.db, &ids).await?);
    }
    Ok(out)
}

/// Every account `actor` blocks or mutes, with whether notifications are hidden.
pub(crate) async fn block_list(
    state: &AppState,
    actor: &ActorRow,
    kind: Kind,
) -> AppResult<Vec<(ActorRow, bool)>> {
    let mut out = Vec::new();
    let mut before = i64::MAX;
    loop {
        let rows = db::blocks::page(&state.db, actor.id, kind, before, PAGE).await?;
        let Some(last) = rows.last() else { break };
        before = last.id;
        let ids: Vec<i64> = rows.iter().map(|b| b.target_id).collect();
        let found = db::actors::by_ids(&state.db, &ids).await?;
        for row in &rows {
            if let Some(account) = found.iter().find(|a| a.id == row.target_id) {
                out.push((account.clone(), row.hide_notifications));
            }
        }
    }
    Ok(out)
}

/// Writes the zip (JSON and CSV deflated; media stored as they are, being compressed already).
fn write_zip(out: &Path, files: Vec<(String, Source)>) -> AppResult<u64> {
    let io = |e: std::io::Error| AppError::Other(anyhow::anyhow!("writing {}: {e}", out.display()));
    let zip_err = |e: zip::result::ZipError| {
        AppError::Other(anyhow::anyhow!("writing {}: {e}", out.display()))
    };
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial).map_err(io)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, source) in files {
        match source {
            Source::Bytes(bytes) => {
                zip.start_file(name, deflated).map_err(zip_err)?;
                zip.write_all(&bytes).map_err(io)?;
            }
            Source::File(path) => match std::fs::File::open(&path) {
                Ok(mut file) => {
                    zip.start_file(name, stored).map_err(zip_err)?;
                    std::io::copy(&mut file, &mut zip).map_err(io)?;
                }
                // A missing upload must not cost the user the rest of the archive.
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "media file missing from export");
                }
            },
        }
    }
    let writer = zip.finish().map_err(zip_err)?;
    let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let bytes = file.metadata().map_err(io)?.len();
    std::fs::rename(&partial, out).map_err(io)?;
    Ok(bytes)
}

fn passphrase_key(passphrase: &str, salt: &[u8]) -> AppResult<[u8; 32]> {
    if passphrase.chars().count() < 8 {
        return Err(AppError::Invalid("the passphrase needs at least 8 characters".to_owned()));
    }
    let params = argon2::Params::new(KDF_MEMORY_KIB, KDF_PASSES, 1, Some(32))
        .map_err(|e| AppError::Other(anyhow::anyhow!("argon2 parameters: {e}")))?;
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| AppError::Other(anyhow::anyhow!("argon2: {e}")))?;
    Ok(key)
}

/// The identity key's seed, encrypted (AES-256-GCM) under a key derived from `passphrase`
/// (Argon2id). CPU and memory work: call from a blocking thread.
pub fn seal_identity(passphrase: &str, key: &IdentityKey) -> AppResult<Value> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt)
        .map_err(|_| AppError::Other(anyhow::anyhow!("no randomness")))?;
    let sealing = RandomizedNonceKey::new(&AES_256_GCM, &passphrase_key(passphrase, &salt)?)
        .map_err(|_| AppError::Other(anyhow::anyhow!("AES key")))?;
    let mut data = key.seed().to_vec();
    let nonce = sealing
        .seal_in_place_append_tag(Aad::from(key.did().as_bytes()), &mut data)
        .map_err(|_| AppError::Other(anyhow::anyhow!("encryption failed")))?;
    Ok(json!({
        "did": key.did(),
        "kdf": { "name": "argon2id", "memory_kib": KDF_MEMORY_KIB, "passes": KDF_PASSES, "lanes": 1, "salt": b64.encode(salt) },
        "cipher": "aes-256-gcm",
        "nonce": b64.encode(nonce.as_ref()),
        "ciphertext": b64.encode(&data),
    }))
}

/// The identity key in an archive's `ferry/identity.json`, decrypted with `passphrase`. A wrong
/// passphrase, or a file changed since, fails. CPU and memory work: call from a blocking thread.
pub fn open_identity(passphrase: &str, sealed: &Value) -> AppResult<IdentityKey> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = |name: &str| -> AppResult<Vec<u8>> {
        let text = sealed.get(name).or_else(|| sealed["kdf"].get(name)).and_then(Value::as_str);
        text.and_then(|t| b64.decode(t).ok()).ok_or_else(|| {
            AppError::Invalid(format!("{IDENTITY_FILE}: {name} is missing or not base64"))
        })
    };
    if sealed["cipher"] != "aes-256-gcm" || sealed["kdf"]["name"] != "argon2id" {
        return Err(AppError::Invalid(format!(
            "{IDENTITY_FILE}: unknown cipher or key derivation"
        )));
    }
    let did = sealed["did"].as_str().unwrap_or_default();
    let opening =
        RandomizedNonceKey::new(&AES_256_GCM, &passphrase_key(passphrase, &field("salt")?)?)
            .map_err(|_| AppError::Other(anyhow::anyhow!("AES key")))?;
    let nonce = Nonce::try_assume_unique_for_key(&field("nonce")?)
        .map_err(|_| AppError::Invalid(format!("{IDENTITY_FILE}: bad nonce")))?;
    let mut data = field("ciphertext")?;
    let seed =
        opening.open_in_place(nonce, Aad::from(did.as_bytes()), &mut data).map_err(|_| {
            AppError::Invalid("the passphrase does not open the identity key".to_owned())
        })?;
    let key = IdentityKey::from_seed(seed)
        .map_err(|e| AppError::Invalid(format!("{IDENTITY_FILE}: {e}")))?;
    if key.did() != did {
        return Err(AppError::Invalid(format!("{IDENTITY_FILE}: the key is not {did}")));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_key_opens_only_with_its_passphrase() {
        let key = IdentityKey::generate().unwrap();
        let sealed = seal_identity("correct horse battery", &key).unwrap();
        assert_eq!(sealed["did"], key.did());
        assert_eq!(open_identity("correct horse battery", &sealed).unwrap().did(), key.did());
        assert!(matches!(open_identity("wrong horse battery", &sealed), Err(AppError::Invalid(_))));
        let mut swapped = sealed.clone();
        swapped["did"] = json!(IdentityKey::generate().unwrap().did());
        assert!(
            open_identity("correct horse battery", &swapped).is_err(),
            "the did is authenticated"
        );
        assert!(matches!(seal_identity("short", &key), Err(AppError::Invalid(_))));
    }

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_line(&["a@b.example", "true"]), "a@b.example,true\n");
        assert_eq!(csv_line(&["say \"hi\", ok"]), "\"say \"\"hi\"\", ok\"\n");
    }
}
