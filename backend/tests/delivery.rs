//! How the page's files travel: the brotli and gzip copies made at build time are sent to
//! browsers that accept them, files named by their content's hash are cached for a year,
//! `index.html` is revalidated on every load, and what has no copy is compressed on the fly.

mod support;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use backend::{AppState, ServerConfig, app};
use support::{TempDir, config_with_dist};
use tower::ServiceExt;

const WASM: &str = "frontend-0123456789abcdef_bg.wasm";
const INDEX_HTML: &str = "<!doctype html><title>Crosstalk</title>";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A dist folder as `trunk build --release` leaves it, each compressed copy marked so a test
/// can tell which one was sent.
fn built_page() -> TempDir {
    let dist = TempDir::new("precompressed-dist");
    let write = |name: &str, body: &[u8]| std::fs::write(dist.path().join(name), body).unwrap();
    write(WASM, b"\0asm raw");
    write(&format!("{WASM}.br"), b"brotli copy");
    write(&format!("{WASM}.gz"), b"gzip copy");
    write("index.html", INDEX_HTML.as_bytes());
    write("index.html.gz", b"gzip copy of index");
    write("notes.txt", b"not named by a hash");
    dist
}

async fn get(config: ServerConfig, path: &str, accept: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    if !accept.is_empty() {
        request = request.header("accept-encoding", accept);
    }
    let response = app(AppState::new(config))
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map_or("", |value| value.to_str().unwrap_or_default())
}

#[tokio::test]
async fn a_hashed_file_goes_precompressed_and_is_cached_for_a_year() {
    let dist = built_page();
    let path = format!("/{WASM}");
    for (accept, body, encoding) in [
        ("gzip, deflate, br", &b"brotli copy"[..], "br"),
        ("gzip", &b"gzip copy"[..], "gzip"),
        ("", &b"\0asm raw"[..], ""),
        ("identity", &b"\0asm raw"[..], ""),
    ] {
        let (status, headers, got) = get(config_with_dist(dist.path()), &path, accept).await;
        assert_eq!(status, StatusCode::OK, "{accept:?}");
        assert_eq!(got, body, "{accept:?}");
        assert_eq!(header(&headers, "content-encoding"), encoding, "{accept:?}");
        assert_eq!(
            header(&headers, "content-type"),
            "application/wasm",
            "{accept:?}"
        );
        assert_eq!(header(&headers, "cache-control"), IMMUTABLE, "{accept:?}");
        assert_eq!(header(&headers, "vary"), "accept-encoding", "{accept:?}");
    }
}

#[tokio::test]
async fn index_html_and_unhashed_files_are_revalidated_on_every_load() {
    let dist = built_page();
    for (path, accept, body) in [
        ("/", "gzip", &b"gzip copy of index"[..]),
        ("/index.html", "", INDEX_HTML.as_bytes()),
        ("/some/deep/link?t=3", "", INDEX_HTML.as_bytes()),
        ("/notes.txt", "", &b"not named by a hash"[..]),
    ] {
        let (status, headers, got) = get(config_with_dist(dist.path()), path, accept).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(got, body, "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
    }
}

#[tokio::test]
async fn a_hashed_name_that_is_not_there_is_never_cached() {
    // Unknown paths get index.html, which must not be kept under a hashed name for a year.
    let dist = built_page();
    let (status, headers, got) = get(
        config_with_dist(dist.path()),
        "/frontend-fedcba9876543210_bg.wasm",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, INDEX_HTML.as_bytes());
    assert_eq!(header(&headers, "cache-control"), "no-cache");
}

#[tokio::test]
async fn responses_without_a_copy_are_compressed_on_the_fly() {
    let (status, headers, body) = get(ServerConfig::default(), "/healthz", "gzip").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
    let (status, headers, body) = get(ServerConfig::default(), "/healthz", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "");
    assert!(body.starts_with(b"{\"status\":\"ok\""));
    // An unbuilt page's explanation too.
    let empty = TempDir::new("no-page");
    let (status, headers, _) = get(config_with_dist(empty.path()), "/", "br").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&headers, "content-encoding"), "br");
}
