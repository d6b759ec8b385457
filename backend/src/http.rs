//! The plain HTTP routes: the health check and the built page.
//!
//! The page's files are served as Trunk left them in `dist/`, with the brotli and gzip copies
//! made at build time (`scripts/precompress.sh`, run by Trunk's post-build hook) sent to
//! browsers that accept them. Files whose names carry Trunk's content hash (`frontend-<hash>_bg.wasm`) never
//! change under the same name, so browsers keep them a year without asking again
//! (`immutable`); `index.html` — which names the current hashed files — and anything else is
//! revalidated on every load (`no-cache`). Responses without a precompressed copy (the health
//! check, an error) are compressed on the fly.

use crate::error::HttpError;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::protocol::PROTOCOL_VERSION;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};

/// `Cache-Control` of files named by their content's hash.
pub const CACHE_HASHED: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else the page is made of: `index.html` above all.
pub const CACHE_REVALIDATE: &str = "no-cache";

/// The plain HTTP routes: `/healthz`, and the built page for every path no other route takes.
pub(crate) fn routes(dist_dir: PathBuf) -> Router<AppState> {
    let page = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(cache_headers))
        .service(static_files(dist_dir));
    Router::new()
        .route("/healthz", get(healthz))
        .fallback_service(page)
        .layer(CompressionLayer::new())
}

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

/// Serves the files of `dist_dir`, precompressed where a copy exists; any other path gets
/// `index.html`, so the page's own links (which live in the URL) load the page.
fn static_files(dist_dir: PathBuf) -> ServeDir<axum::routing::MethodRouter> {
    let index = Arc::new(dist_dir.join("index.html"));
    // A `MethodRouter` is used as the fallback service so it can be an ordinary async function.
    let fallback = axum::routing::get(move |request: Request| page(Arc::clone(&index), request));
    ServeDir::new(dist_dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(fallback)
}

/// Sets how long browsers may keep what the page's files answer (see the module's comment),
/// and that the body depends on `Accept-Encoding` (a precompressed copy may have been sent).
async fn cache_headers(request: Request, next: Next) -> Response {
    let hashed = is_content_hashed(request.uri().path());
    let mut response = next.run(request).await;
    // A hashed name that is not there gets `index.html`, which must not be kept under it.
    let is_the_file = response.extensions().get::<ServedIndex>().is_none();
    let cache = if hashed && is_the_file && response.status().is_success() {
        CACHE_HASHED
    } else {
        CACHE_REVALIDATE
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// True for a file Trunk named after its content: a run of 16 hex digits after the last `-` of
/// its name, such as `frontend-0123456789abcdef_bg.wasm` or `style-0123456789abcdef.css`.
pub fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let Some((_, after_dash)) = name.rsplit_once('-') else {
        return false;
    };
    let hash: String = after_dash
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    hash.len() == 16 && after_dash[16..].starts_with(['.', '_'])
}

/// Marks a response that is `index.html` served for a path that named something else.
#[derive(Clone, Copy, Debug)]
struct ServedIndex;

/// The page's `index.html`, or 503 when it has not been built. Checked on every request, so a
/// page built while the server runs is served without a restart.
async fn page(index: Arc<PathBuf>, request: Request) -> Response {
    if !tokio::fs::try_exists(index.as_path())
        .await
        .unwrap_or(false)
    {
        return HttpError::PageNotBuilt.into_response();
    }
    let index_file = ServeFile::new(index.as_path())
        .precompressed_br()
        .precompressed_gzip();
    match index_file.oneshot(request).await {
        Ok(response) => {
            let mut response = response.into_response();
            response.extensions_mut().insert(ServedIndex);
            response
        }
        Err(infallible) => match infallible {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trunk_hashed_names_count_as_content_hashed() {
        let check = |path: &str, expected: bool| {
            assert_eq!(is_content_hashed(path), expected, "{path}");
        };
        check("/frontend-0123456789abcdef_bg.wasm", true);
        check("/frontend-0123456789abcdef.js", true);
        check("/style-fedcba9876543210.css", true);
        check("/style-fedcba9876543210.css.br", true);
        check("/", false);
        check("/index.html", false);
        check("/style.css", false);
        check("/frontend-0123456789abcde.js", false);
        check("/frontend-0123456789abcdefg.js", false);
        check("/frontend-0123456789abcdef", false);
        check("/a-b/index.html", false);
    }
}
