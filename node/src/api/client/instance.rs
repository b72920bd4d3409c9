//! `GET /api/v1/instance` and `/api/v2/instance`. The version string follows the convention
//! Mastodon-compatible servers use, so apps treat Ferry as Mastodon 4.x.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::db::{self};
use crate::error::AppError;
use crate::federation::Data;
use crate::services::notes::{MAX_CHARS, MAX_MEDIA};

/// What Mastodon version the client API is compatible with.
pub(crate) const MASTODON_COMPAT: &str = "4.3.0";

pub(super) fn routes() -> Router {
    Router::new().route("/api/v1/instance", get(v1)).route("/api/v2/instance", get(v2))
}

fn version() -> String {
    format!("{MASTODON_COMPAT} (compatible; Ferry {})", env!("CARGO_PKG_VERSION"))
}

fn configuration(data: &Data) -> Value {
    json!({
        "urls": { "streaming": null },
        "accounts": { "max_featured_tags": 0, "max_pinned_statuses": 0 },
        "statuses": { "max_characters": MAX_CHARS, "max_media_attachments": MAX_MEDIA, "characters_reserved_per_url": 23 },
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
            "image_size_limit": data.config.media_max_bytes,
            "image_matrix_limit": 33_177_600,
            "video_size_limit": 0, "video_frame_rate_limit": 0, "video_matrix_limit": 0,
        },
        "polls": { "max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0 },
        "translation": { "enabled": false },
    })
}

async fn v1(data: Data) -> Result<Json<Value>, AppError> {
    let users = db::actors::count_local(&data.db).await?;
    let posts = db::notes::count_local(&data.db).await?;
    Ok(Json(json!({
        "uri": data.config.domain,
        "title": data.config.instance_title,
        "short_description": data.config.instance_description,
        "description": data.config.instance_description,
        "email": "",
        "version": version(),
        "urls": { "streaming_api": null },
        "stats": { "user_count": users, "status_count": posts, "domain_count": 0 },
        "thumbnail": null,
        "languages": ["en"],
        "registrations": data.config.registrations_open,
        "approval_required": false,
        "invites_enabled": false,
        "configuration": configuration(&data),
        "contact_account": null,
        "rules": [],
    })))
}

async fn v2(data: Data) -> Result<Json<Value>, AppError> {
    let users = db::actors::count_local(&data.db).await?;
    Ok(Json(json!({
        "domain": data.config.domain,
        "title": data.config.instance_title,
        "version": version(),
        "source_url": "https://github.com/ferry-social/ferry",
        "description": data.config.instance_description,
        "usage": { "users": { "active_month": users } },
        "thumbnail": { "url": null },
        "languages": ["en"],
        "configuration": configuration(&data),
        "registrations": { "enabled": data.config.registrations_open, "approval_required": false, "message": null },
        "contact": { "email": "", "account": null },
        "rules": [],
    })))
}
