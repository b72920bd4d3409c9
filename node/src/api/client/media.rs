//! `POST /api/v2/media` (and v1): image uploads, size- and type-checked, stored under the
//! media directory; `GET /media/{file}` serves them.

use axum::extract::{Multipart, Path};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::api::extract::Auth;
use crate::api::views;
use crate::db::media::MediaRow;
use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::ids::now_ms;
use crate::services;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/api/v2/media", post(upload))
        .route("/api/v1/media", post(upload))
        .route("/media/{file}", get(serve))
        .route("/avatars/missing.png", get(missing))
}

/// A plain grey 16×16 PNG for accounts without an avatar or header.
const MISSING_PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 16, 0, 0, 0, 16, 8, 2,
    0, 0, 0, 144, 145, 104, 54, 0, 0, 0, 22, 73, 68, 65, 84, 120, 218, 99, 56, 113, 250, 18, 73,
    136, 97, 84, 195, 168, 134, 225, 171, 1, 0, 216, 6, 101, 31, 247, 92, 179, 141, 0, 0, 0, 0, 73,
    69, 78, 68, 174, 66, 96, 130,
];

async fn missing() -> Response {
    (
        [(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "public, max-age=86400")],
        MISSING_PNG,
    )
        .into_response()
}

/// The image type, from the file's first bytes (the client's content type is not trusted).
fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Some(("image/png", "png"))
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(("image/gif", "gif"))
    } else if bytes.len() > 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

async fn upload(data: Data, auth: Auth, mut multipart: Multipart) -> Result<Json<Value>, AppError> {
    auth.require("write:media")?;
    let mut file: Option<Vec<u8>> = None;
    let mut description = String::new();
    while let Some(field) =
        multipart.next_field().await.map_err(|e| AppError::BadRequest(format!("multipart: {e}")))?
    {
        match field.name() {
            Some("file") => {
                let bytes =
                    field.bytes().await.map_err(|e| AppError::TooLarge(format!("file: {e}")))?;
                if bytes.len() > data.config.media_max_bytes {
                    return Err(AppError::TooLarge(format!(
                        "file is larger than {} bytes",
                        data.config.media_max_bytes
                    )));
                }
                file = Some(bytes.to_vec());
            }
            Some("description") => {
                description = field
                    .text()
                    .await
                    .map_err(|e| AppError::BadRequest(format!("description: {e}")))?
                    .chars()
                    .take(1500)
                    .collect();
            }
            _ => {}
        }
    }
    let bytes = file.ok_or_else(|| AppError::Invalid("file is required".to_owned()))?;
    let (content_type, ext) = sniff(&bytes).ok_or_else(|| {
        AppError::Invalid("file type not supported: use JPEG, PNG, GIF or WebP".to_owned())
    })?;
    let size = imagesize::blob_size(&bytes)
        .map_err(|e| AppError::Invalid(format!("unreadable image: {e}")))?;
    // Decoding is CPU work: off the async threads. It also proves the file is an image.
    let (bytes, blurhash) = tokio::task::spawn_blocking(move || {
        let hash = services::media::blurhash(&bytes);
        (bytes, hash)
    })
    .await
    .map_err(|e| AppError::Other(anyhow::anyhow!("hashing the image failed: {e}")))?;
    let blurhash = blurhash?;
    let id = data.db.next_id();
    let file_name = format!("{id}.{ext}");
    tokio::fs::create_dir_all(&data.config.media_dir)
        .await
        .map_err(|e| AppError::Other(e.into()))?;
    let path = data.config.media_dir.join(&file_name);
    tokio::fs::write(&path, &bytes).await.map_err(|e| AppError::Other(e.into()))?;
    let row = MediaRow {
        id,
        owner_id: auth.actor.id,
        note_id: None,
        file_name: Some(file_name),
        remote_url: None,
        content_type: content_type.to_owned(),
        description,
        blurhash: Some(blurhash),
        width: i32::try_from(size.width).ok(),
        height: i32::try_from(size.height).ok(),
        position: 0,
        created_at: now_ms(),
    };
    let mut tx = data.db.begin().await?;
    db::media::insert(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(Json(views::attachment(&data, &row)))
}

async fn serve(data: Data, Path(file): Path<String>) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound(format!("no media {file}"));
    let row = db::media::by_file_name(&data.db, &file).await?.ok_or_else(not_found)?;
    // The name comes from the database, never from the path, so it cannot escape the directory.
    let name = row.file_name.clone().ok_or_else(not_found)?;
    let bytes = tokio::fs::read(data.config.media_dir.join(name)).await.map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, row.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
