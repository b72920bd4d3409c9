//! Imports: an account archive or one of Mastodon's CSV lists, uploaded (docs/migration.md).

use axum::extract::Multipart;
use axum::routing::post;
use axum::{Json, Router};
use tokio::io::AsyncWriteExt;

use crate::api::extract::Auth;
use crate::error::AppError;
use crate::federation::Data;
use crate::services::import::{self, ImportReport, Mode};

pub(super) fn routes() -> Router {
    Router::new().route("/api/v1/imports", post(create))
}

/// What was uploaded, as the form's `type` names it (Mastodon's import types, plus `archive`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Archive,
    List(&'static str),
}

fn parse_type(raw: &str) -> Result<Type, AppError> {
    Ok(match raw {
        "archive" => Type::Archive,
        "following" => Type::List("following_accounts.csv"),
        "blocking" => Type::List("blocked_accounts.csv"),
        "muting" => Type::List("muted_accounts.csv"),
        other => {
            return Err(AppError::Invalid(format!(
                "type {other:?} is not one of archive, following, blocking, muting"
            )));
        }
    })
}

/// `POST /api/v1/imports` (multipart: `data`, `type`, `mode`, `passphrase`). The upload is streamed to a
/// file under the media directory (at most `archive_max_bytes`), imported, then removed.
async fn create(
    data: Data,
    auth: Auth,
    mut multipart: Multipart,
) -> Result<Json<ImportReport>, AppError> {
    auth.require("write:accounts")?;
    let dir = data.config.media_dir.join("imports");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Other(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{}-{}.upload", auth.actor.username, data.db.next_id()));
    let result = receive_and_import(&data, &auth, &mut multipart, &path).await;
    let _ = tokio::fs::remove_file(&path).await;
    result.map(Json)
}

async fn receive_and_import(
    data: &Data,
    auth: &Auth,
    multipart: &mut Multipart,
    path: &std::path::Path,
) -> Result<ImportReport, AppError> {
    let mut kind = None;
    let mut mode = Mode::Merge;
    let mut passphrase: Option<String> = None;
    let mut received = false;
    let mut head: Vec<u8> = Vec::new();
    while let Some(mut field) =
        multipart.next_field().await.map_err(|e| AppError::BadRequest(format!("multipart: {e}")))?
    {
        match field.name() {
            Some("data") => {
                let mut file = tokio::fs::File::create(path)
                    .await
                    .map_err(|e| AppError::Other(anyhow::anyhow!("{}: {e}", path.display())))?;
                let mut size = 0u64;
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| AppError::TooLarge(format!("data: {e}")))?
                {
                    size += chunk.len() as u64;
                    if size > data.config.archive_max_bytes {
                        return Err(AppError::TooLarge(format!(
                            "data is larger than {} bytes",
                            data.config.archive_max_bytes
                        )));
                    }
                    if head.len() < 4 {
                        head.extend(chunk.iter().take(4 - head.len()));
                    }
                    file.write_all(&chunk).await.map_err(|e| AppError::Other(e.into()))?;
                }
                file.flush().await.map_err(|e| AppError::Other(e.into()))?;
                received = true;
            }
            Some("type") => {
                let text =
                    field.text().await.map_err(|e| AppError::BadRequest(format!("type: {e}")))?;
                kind = Some(parse_type(text.trim())?);
            }
            Some("passphrase") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| AppError::BadRequest(format!("passphrase: {e}")))?;
                passphrase = Some(text).filter(|p| !p.is_empty());
            }
            Some("mode") => {
                let text =
                    field.text().await.map_err(|e| AppError::BadRequest(format!("mode: {e}")))?;
                mode = match text.trim() {
                    "merge" => Mode::Merge,
                    "overwrite" => Mode::Overwrite,
                    other => {
                        return Err(AppError::Invalid(format!(
                            "mode {other:?} is not merge or overwrite"
                        )));
                    }
                };
            }
            _ => {}
        }
    }
    if !received {
        return Err(AppError::Invalid("data (the file to import) is required".to_owned()));
    }
    // Without a type, a zip file is an archive; anything else must say what it is.
    let kind = match kind {
        Some(kind) => kind,
        None if head.as_slice() == b"PK\x03\x04" => Type::Archive,
        None => {
            return Err(AppError::Invalid(
                "type is required for a CSV file: following, blocking or muting".to_owned(),
            ));
        }
    };
    match kind {
        Type::Archive => {
            import::import_archive(data, &auth.actor, path, mode, passphrase.as_deref()).await
        }
        Type::List(name) => {
            let bytes = tokio::fs::read(path).await.map_err(|e| AppError::Other(e.into()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| AppError::Invalid("the CSV file is not UTF-8 text".to_owned()))?;
            let mut report = ImportReport::default();
            import::import_csv(data, &auth.actor, name, &text, mode, &mut report).await?;
            Ok(report)
        }
    }
}
