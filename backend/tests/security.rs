//! The server as an attacker or a crowd meets it, over real sockets: who may open `/ws` (Origin
//! and Host), how big a frame may be, what happens to sockets that stop answering, how many
//! places one address may take, how many simulations run at once, and the live services' body
//! limit.

mod support;

use backend::ServerConfig;
use backend::access::{AccessPolicy, Origin};
use futures_util::StreamExt;
use shared::protocol::ServerFrame;
use std::net::SocketAddr;
use std::time::Duration;
use support::{
    ANSWER_TIMEOUT, TempDir, TestServer, config_with_dist, connect, http_get, next_frame,
    receive_trace, run_frame, send_text,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

/// The status of a handshake to `server` with these `Origin` and `Host` headers (`None` leaves
/// `Origin` out and `Host` as the address), and the body when refused.
async fn handshake(server: &TestServer, origin: Option<&str>, host: Option<&str>) -> (u16, String) {
    let mut request = server.ws_url().into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    if let Some(host) = host {
        request
            .headers_mut()
            .insert("host", HeaderValue::from_str(host).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => (response.status().as_u16(), String::new()),
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        ),
        Err(err) => panic!("expected an answer with a status, got {err}"),
    }
}

#[tokio::test]
async fn a_page_on_another_site_cannot_open_the_socket() {
    let server = TestServer::start(ServerConfig::default()).await;
    let own = format!("http://{}", server.addr);
    // The page's own origin (the full page and its embeds), and clients that are no browser.
    assert_eq!(handshake(&server, Some(&own), None).await.0, 101);
    assert_eq!(handshake(&server, None, None).await.0, 101);
    // Cross-site WebSocket hijacking: a page elsewhere, or a sandboxed frame.
    for origin in [
        "https://evil.example",
        "http://evil.example:8080",
        "null",
        &format!("http://{}.evil.example", server.addr.ip()),
    ] {
        let (status, body) = handshake(&server, Some(origin), None).await;
        assert_eq!(status, 403, "{origin}: {body}");
        assert!(body.contains("--allow-origin"), "{origin}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_origin_listed_with_allow_origin_may_open_the_socket() {
    let server = TestServer::start(ServerConfig {
        access: AccessPolicy {
            allowed_origins: vec![Origin::parse("https://blog.example").unwrap()],
        },
        ..ServerConfig::default()
    })
    .await;
    assert_eq!(
        handshake(&server, Some("https://blog.example"), None)
            .await
            .0,
        101
    );
    // Its host is one the server answers to, as behind a proxy that passes the name on.
    let proxied = handshake(&server, Some("https://blog.example"), Some("blog.example")).await;
    assert_eq!(proxied.0, 101);
    assert_eq!(
        handshake(&server, Some("https://other.example"), None)
            .await
            .0,
        403
    );
    server.stop().await;
}

#[tokio::test]
async fn every_answer_has_the_security_headers_and_the_page_its_policy() {
    let dist = TempDir::new("csp");
    let loader = "\nimport init from '/frontend.js';\nawait init('/frontend_bg.wasm');\n";
    std::fs::write(
        dist.path().join("index.html"),
        format!(
            "<!doctype html><html><head><script type=\"module\">{loader}</script></head></html>"
        ),
    )
    .unwrap();
    let server = TestServer::start(config_with_dist(dist.path())).await;
    let page = http_get(server.addr, "/?scenario=gateway").await;
    let embed = http_get(server.addr, "/?scenario=gateway&embed=1").await;
    let health = http_get(server.addr, "/healthz").await;
    for response in [&page, &embed, &health] {
        assert!(
            response.headers.contains("x-content-type-options: nosniff"),
            "{response:?}"
        );
        assert!(
            response.headers.contains("referrer-policy: no-referrer"),
            "{response:?}"
        );
    }
    let csp = |response: &support::RawResponse| {
        response
            .headers
            .lines()
            .find_map(|l| l.strip_prefix("content-security-policy: "))
            .unwrap_or_else(|| panic!("no CSP: {response:?}"))
            .to_string()
    };
    let hash = backend::headers::inline_script_hashes(&format!("<script>{loader}</script>"));
    let expected = backend::headers::content_security_policy(&hash[0], false);
    assert_eq!(csp(&page), expected.to_ascii_lowercase());
    assert!(csp(&page).ends_with("frame-ancestors 'self'"));
    assert!(csp(&embed).ends_with("frame-ancestors *"));
    assert!(!health.headers.contains("content-security-policy"));
    server.stop().await;
}

#[tokio::test]
async fn a_host_the_server_does_not_answer_to_is_refused() {
    let server = TestServer::start(ServerConfig::default()).await;
    let port = server.addr.port();
    // DNS rebinding: evil.example resolves to 127.0.0.1, so its page is "same origin" with a
    // server that does not check Host.
    let evil = format!("evil.example:{port}");
    let (status, body) = handshake(&server, Some(&format!("http://{evil}")), Some(&evil)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    // The names this machine answers to.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let origin = format!("http://{host}");
        assert_eq!(
            handshake(&server, Some(&origin), Some(&host)).await.0,
            101,
            "{host}"
        );
    }
    server.stop().await;
}

/// A raw TCP connection that has completed the WebSocket handshake and then does exactly what
/// the test writes: no automatic pongs, no reading unless asked.
async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    socket
}

/// Reads until the server closes `socket`; true if it did within `within`.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let read_all = async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_all).await.is_ok()
}

#[tokio::test]
async fn a_frame_larger_than_a_message_is_refused_from_its_header() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut socket = raw_upgrade(server.addr).await;
    // A masked text frame announcing 8 MiB, of which only the header is sent: the server must
    // not wait to buffer it.
    let mut frame = vec![0x81, 0xFF];
    frame.extend_from_slice(&(8u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[b'x'; 1024]);
    socket.write_all(&frame).await.unwrap();
    assert!(
        closed_within(&mut socket, Duration::from_secs(5)).await,
        "the server kept the socket open to buffer an 8 MiB frame"
    );
    // Others are served.
    let mut viewer = connect(&server).await;
    send_text(&mut viewer, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut viewer).await;
    server.stop().await;
}

#[tokio::test]
async fn the_body_of_a_message_to_a_live_service_is_bounded() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut viewer = connect(&server).await;
    send_text(
        &mut viewer,
        r#"{"type":"live_start","scenario":"request-response","seed":1,"until_s":60,
            "knobs":{"read_rate_per_s":0,"product_down_for_s":0}}"#,
    )
    .await;
    let ServerFrame::Header(_) = next_frame(&mut viewer).await else {
        panic!("the live run starts");
    };
    let run = server.state.live().expect("a live run");
    let product = run.addr(shared::protocol::ServiceId(2)).unwrap();
    let body = vec![b' '; 1 << 20];
    let mut socket = TcpStream::connect(product).await.unwrap();
    let head = format!(
        "POST /messages HTTP/1.1\r\nHost: {product}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking the whole body.
    let _ = socket.write_all(&body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(ANSWER_TIMEOUT, socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!run.is_finished(), "the run goes on");
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_that_only_listens_stays_while_one_that_never_answers_is_closed() {
    let server = TestServer::start(ServerConfig {
        ping_every: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    // A real client answers pings as it reads.
    let mut listener = connect(&server).await;
    let mut silent = raw_upgrade(server.addr).await;
    let mut pinged = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !pinged {
        let message = tokio::time::timeout_at(deadline, listener.next())
            .await
            .expect("a ping within 5 s")
            .unwrap()
            .unwrap();
        pinged = matches!(message, Message::Ping(_));
    }
    let silent_since = tokio::time::Instant::now();
    // The listener answers every ping as it reads (as a browser does, whatever the page does).
    let listening = async { while let Some(Ok(_)) = listener.next().await {} };
    let silent_closed = tokio::select! {
        closed = closed_within(&mut silent, ANSWER_TIMEOUT) => closed,
        () = listening => panic!("the listener's socket ended"),
    };
    assert!(silent_closed, "a socket that never answers pings is closed");
    // Two pings unanswered, closed at the third: after 0.4 s to 0.6 s more.
    println!(
        "closed {:?} after the listener's first ping",
        silent_since.elapsed()
    );
    let listening = async { while let Some(Ok(_)) = listener.next().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), listening).await;
    send_text(&mut listener, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut listener).await;
    assert_eq!(server.state.viewers_connected(), 1);
    server.stop().await;
}

/// The status of an upgrade from `local` (an address of this machine) to `server`.
async fn status_from(server: &TestServer, local: &str) -> (u16, Option<support::Viewer>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    match tokio_tungstenite::client_async(server.ws_url(), stream).await {
        Ok((viewer, response)) => (response.status().as_u16(), Some(viewer)),
        Err(tungstenite::Error::Http(response)) => (response.status().as_u16(), None),
        Err(err) => panic!("{err}"),
    }
}

#[tokio::test]
async fn one_address_takes_at_most_its_share_of_places() {
    let server = TestServer::start(ServerConfig {
        max_viewers: 10,
        max_viewers_per_address: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut kept = Vec::new();
    for _ in 0..3 {
        let (status, viewer) = status_from(&server, "127.0.0.1").await;
        assert_eq!(status, 101);
        kept.push(viewer);
    }
    assert_eq!(status_from(&server, "127.0.0.1").await.0, 429);
    // Another address still gets in (127.0.0.0/8 is all this machine's).
    let (status, other) = status_from(&server, "127.0.0.2").await;
    assert_eq!(status, 101);
    // A place given back is free again.
    drop(kept.pop());
    tokio::time::timeout(ANSWER_TIMEOUT, async {
        while server.state.viewers_connected() > 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(status_from(&server, "127.0.0.1").await.0, 101);
    drop((kept, other));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulations_beyond_the_pool_and_its_line_are_refused_as_busy() {
    let server = TestServer::start(ServerConfig {
        simulations_max: 1,
        simulations_waiting_max: 1,
        ..ServerConfig::default()
    })
    .await;
    // One run computing (its viewer never reads, so it holds its place), one waiting.
    let long = run_frame("request-response", 1, 600.0, &[("read_rate_per_s", 50.0)]);
    let mut computing = connect(&server).await;
    send_text(&mut computing, &long).await;
    let ServerFrame::Header(_) = next_frame(&mut computing).await else {
        panic!("the first run starts");
    };
    let mut waiting = connect(&server).await;
    send_text(
        &mut waiting,
        &run_frame("eventual-consistency", 1, 5.0, &[]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = connect(&server).await;
    send_text(
        &mut refused,
        &run_frame("eventual-consistency", 2, 5.0, &[]),
    )
    .await;
    let ServerFrame::Error { message } = next_frame(&mut refused).await else {
        panic!("the third is refused");
    };
    assert!(message.contains("busy"), "{message}");
    // When the first viewer leaves, its place goes to the one waiting.
    drop(computing);
    let received = receive_trace(&mut waiting).await;
    assert_eq!(received.end_hash, received.trace.hash_hex());
    server.stop().await;
}
