//! The plain HTTP routes: the health check and the built page.

use crate::error::HttpError;
use axum::Json;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::protocol::PROTOCOL_VERSION;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The body of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Always `ok`: a server that answers is healthy.
    pub status: &'static str,
    /// The trace format this server streams, so a page can tell it is talking to its own kind.
    pub protocol_version: u32,
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        protocol_version: PROTOCOL_VERSION,
    })
}

/// Serves the files of `dist_dir`; any other path gets `index.html`, so the page's own links
/// (which live in the URL) load the page.
pub(crate) fn static_files(dist_dir: PathBuf) -> ServeDir<axum::routing::MethodRouter> {
    let index = Arc::new(dist_dir.join("index.html"));
    // A `MethodRouter` is used as the fallback service so it can be an ordinary async function.
    let fallback = axum::routing::get(move |request: Request| page(Arc::clone(&index), request));
    ServeDir::new(dist_dir).fallback(fallback)
}

/// The page's `index.html`, or 503 when it has not been built. Checked on every request, so a
/// page built while the server runs is served without a restart.
async fn page(index: Arc<PathBuf>, request: Request) -> Response {
    if !tokio::fs::try_exists(index.as_path())
        .await
        .unwrap_or(false)
    {
        return HttpError::PageNotBuilt.into_response();
    }
    match ServeFile::new(index.as_path()).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(infallible) => match infallible {},
    }
}
