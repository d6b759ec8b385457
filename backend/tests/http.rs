//! The plain HTTP routes: `/healthz` and the built page, over a real socket and through
//! `oneshot`.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use backend::{AppState, ServerConfig, app};
use shared::protocol::PROTOCOL_VERSION;
use support::{TempDir, TestServer, config_with_dist, http_get};
use tower::ServiceExt;

const INDEX_HTML: &str = "<!doctype html><title>Crosstalk</title><script src=\"/app.js\"></script>";
const APP_JS: &str = "console.log('crosstalk');";

/// A dist directory holding a tiny page.
fn built_page() -> TempDir {
    let dist = TempDir::new("dist");
    std::fs::write(dist.path().join("index.html"), INDEX_HTML).unwrap();
    std::fs::write(dist.path().join("app.js"), APP_JS).unwrap();
    dist
}

/// `GET path` through the router without a socket: status, content type, body.
async fn oneshot_get(config: ServerConfig, path: &str) -> (StatusCode, String, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app(AppState::new(config)).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn expected_health() -> serde_json::Value {
    serde_json::json!({"status": "ok", "protocol_version": PROTOCOL_VERSION})
}

#[tokio::test]
async fn healthz_answers_over_a_real_socket() {
    let server = TestServer::start(ServerConfig::default()).await;
    let response = http_get(server.addr, "/healthz").await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response.headers.contains("content-type: application/json"),
        "{response:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body, expected_health());
    server.stop().await;
}

#[tokio::test]
async fn healthz_answers_through_oneshot() {
    let (status, content_type, body) = oneshot_get(ServerConfig::default(), "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, expected_health());
}

#[tokio::test]
async fn the_built_page_is_served_and_unknown_paths_get_index_html() {
    let dist = built_page();
    let check = async |path: &str, content_type: &str, body: &str| {
        let (got_status, got_type, got_body) =
            oneshot_get(config_with_dist(dist.path()), path).await;
        assert_eq!(got_status, StatusCode::OK, "{path}");
        assert!(got_type.starts_with(content_type), "{path}: {got_type}");
        assert_eq!(got_body, body, "{path}");
    };
    check("/", "text/html", INDEX_HTML).await;
    check("/index.html", "text/html", INDEX_HTML).await;
    check("/app.js", "text/javascript", APP_JS).await;
    check("/some/deep/link", "text/html", INDEX_HTML).await;
    check(
        "/?scenario=request-response&seed=3",
        "text/html",
        INDEX_HTML,
    )
    .await;
}

#[tokio::test]
async fn the_built_page_is_served_over_a_real_socket() {
    let dist = built_page();
    let server = TestServer::start(config_with_dist(dist.path())).await;
    for (path, body) in [
        ("/", INDEX_HTML),
        ("/app.js", APP_JS),
        ("/some/deep/link", INDEX_HTML),
    ] {
        let response = http_get(server.addr, path).await;
        assert_eq!(response.status, 200, "{path}: {response:?}");
        assert_eq!(response.body, body, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unbuilt_page_answers_503_with_what_to_do() {
    let empty = TempDir::new("empty-dist");
    let missing = empty.path().join("not-there");
    for dist in [empty.path(), missing.as_path()] {
        for path in ["/", "/index.html", "/some/deep/link"] {
            let (status, content_type, body) = oneshot_get(config_with_dist(dist), path).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert!(content_type.starts_with("text/plain"), "{content_type}");
            assert!(
                body.contains("the page is not built: run `trunk build --release` (see README)"),
                "{body}"
            );
        }
        // The rest of the server works without the page.
        let (status, _, _) = oneshot_get(config_with_dist(dist), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_page_built_while_the_server_runs_is_served_without_a_restart() {
    let dist = TempDir::new("late-dist");
    let state = AppState::new(config_with_dist(dist.path()));
    let get_root = async || {
        let request = Request::get("/").body(Body::empty()).unwrap();
        app(state.clone()).oneshot(request).await.unwrap().status()
    };
    assert_eq!(get_root().await, StatusCode::SERVICE_UNAVAILABLE);
    std::fs::write(dist.path().join("index.html"), INDEX_HTML).unwrap();
    assert_eq!(get_root().await, StatusCode::OK);
}

#[tokio::test]
async fn a_plain_get_of_ws_is_refused_as_a_bad_request() {
    let (status, _, _) = oneshot_get(ServerConfig::default(), "/ws").await;
    assert!(status.is_client_error(), "{status}");
}
