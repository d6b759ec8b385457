//! The one error type at the HTTP edge: each variant says what the client can do about it, and
//! nothing about the server's insides.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A request the server cannot serve, answered as plain text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Every viewer place is taken.
    #[error(
        "too many viewers: at most {max_viewers} may watch at once; close another tab or try again later"
    )]
    TooManyViewers {
        /// The configured bound.
        max_viewers: usize,
    },
    /// Every place for one address is taken.
    #[error(
        "too many viewers from your address: at most {max} may watch from one address at once; close another tab or try again later"
    )]
    TooManyFromOneAddress {
        /// The configured bound.
        max: usize,
    },
    /// The server is stopping and admits no one.
    #[error("the server is shutting down; try again when it is back")]
    ShuttingDown,
    /// A page on another site tried to open `/ws`.
    #[error(
        "a page at {origin} may not open this server's socket; to allow it, start the server with --allow-origin {origin}"
    )]
    OriginNotAllowed {
        /// The page's origin, as its browser sent it.
        origin: String,
    },
    /// The request named a host this server does not answer to (DNS rebinding).
    #[error(
        "this server does not answer to {host:?}: open it by its address or as localhost, or start it with --allow-origin https://{host}"
    )]
    HostNotAllowed {
        /// The `Host` (or `X-Forwarded-Host`) the request named.
        host: String,
    },
    /// The dist directory has no `index.html`.
    #[error("the page is not built: run `trunk build --release` (see README)")]
    PageNotBuilt,
}

impl HttpError {
    /// The status code that goes with it.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::TooManyViewers { .. }
            | HttpError::ShuttingDown
            | HttpError::PageNotBuilt => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::OriginNotAllowed { .. } | HttpError::HostNotAllowed { .. } => {
                StatusCode::FORBIDDEN
            }
            HttpError::TooManyFromOneAddress { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status(), format!("{self}\n")).into_response()
    }
}
