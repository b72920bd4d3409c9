//! HTTP: the router, our extractors and error mapping, the client API and the federation
//! endpoints. Handlers extract, call one service, and shape the response.

use activitypub_federation::config::{FederationConfig, FederationMiddleware};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;

use crate::error::AppError;
use crate::state::AppState;

pub mod client;
pub mod error;
pub mod extract;
pub mod federation;
mod limits;
pub mod views;
pub mod well_known;

/// The node's whole HTTP surface.
pub fn router(config: FederationConfig<AppState>) -> Router {
    let state: AppState = (*config.to_request_data()).clone();
    let limited = |routes: Router| {
        routes
            .layer(DefaultBodyLimit::max(state.config.inbox_max_bytes))
            .layer(from_fn_with_state(state.config.inbox_max_bytes, limits::refuse_oversized))
    };
    let federation = limited(federation::routes());
    let inboxes = limited(federation::inbox_routes(config.clone()));
    let client = client::routes(
        state.config.api_max_bytes,
        state.config.media_max_bytes,
        state.config.archive_max_bytes,
    );
    Router::new()
        .merge(well_known::routes())
        .merge(federation)
        .merge(client)
        .layer(FederationMiddleware::new(config))
        .merge(inboxes)
        .fallback(|| async { AppError::NotFound("no such endpoint".to_owned()) })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(serde_json::json!({ "error": "method not allowed" })),
            )
                .into_response()
        })
}
