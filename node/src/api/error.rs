//! The only place errors become HTTP: status codes and the `{"error": "…"}` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::AppError;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::OAuth { code, description } = &self {
            // RFC 6749 §5.2, as OAuth client libraries parse it.
            let status = if *code == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            return (status, Json(json!({ "error": code, "error_description": description })))
                .into_response();
        }
        if let AppError::Validation(fields) = &self {
            let mut details = serde_json::Map::new();
            for f in fields {
                let entry = details.entry(f.field).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    list.push(json!({ "error": f.code, "description": f.description }));
                }
            }
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": self.to_string(), "details": details })),
            )
                .into_response();
        }
        let status = match &self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid(_) | AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Remote(_) => StatusCode::BAD_GATEWAY,
            AppError::OAuth { .. } => StatusCode::BAD_REQUEST,
            AppError::Database(_) | AppError::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status.is_server_error() && status != StatusCode::BAD_GATEWAY {
            // Logged once, here, where it leaves the process; clients see no internals.
            tracing::error!(error = %self, "request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
