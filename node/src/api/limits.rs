//! Bodies over a route's limit that say so in `Content-Length`: read and thrown away (up to a
//! bound), then answered 413. Answering before reading and closing the connection resets it
//! under a client still sending, which then sees a network error instead of the 413, and a
//! peer server retries a network error where it gives up on a 413.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::error::AppError;

/// Most bytes read only to deliver a 413; a larger body is refused without reading it.
const DRAIN_MAX: u64 = 16 << 20;
/// How long draining may take.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Refuses a request whose declared length is over `limit` (use with
/// `axum::middleware::from_fn_with_state`). Bodies without a length (chunked)
/// are left to `DefaultBodyLimit`, which stops reading at the limit.
pub(super) async fn refuse_oversized(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            if length <= DRAIN_MAX {
                let mut body = request.into_body().into_data_stream();
                let drain = async { while let Some(Ok(_)) = body.next().await {} };
                let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            }
            AppError::TooLarge(format!(
                "request body is {length} bytes, over this endpoint's limit of {limit}"
            ))
            .into_response()
        }
        _ => next.run(request).await,
    }
}
