//! Helpers shared by the backend's integration tests: a server on a free port, a raw HTTP GET, a
//! WebSocket viewer, the real binary, temporary directories and printed seeds.

#![allow(dead_code)] // Each test file uses its own subset.

use backend::{AppState, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use shared::protocol::{RunRequest, ServerFrame, Trace};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A guard against a hung test, not a wait: every awaited answer normally comes in milliseconds.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A server running in this test's runtime on a free loopback port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, to look at its viewers.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts a server configured by `config`.
    pub async fn start(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        TestServer::start_on(listener, config).await
    }

    /// Starts a server configured by `config` on `listener`.
    pub async fn start_on(listener: TcpListener, config: ServerConfig) -> TestServer {
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(config);
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let task = tokio::spawn(backend::serve(
            listener,
            state.clone(),
            async move {
                let _ = shutdown_signal.await;
            },
            Duration::from_secs(10),
        ));
        TestServer {
            addr,
            state,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// `ws://…/ws` of this server.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(ANSWER_TIMEOUT, &mut self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

/// A configuration whose page lives in `dist_dir`.
pub fn config_with_dist(dist_dir: &Path) -> ServerConfig {
    ServerConfig {
        dist_dir: dist_dir.to_path_buf(),
        ..ServerConfig::default()
    }
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The header lines, lowercased names.
    pub headers: String,
    /// The body, as text.
    pub body: String,
}

/// `GET path` over a plain TCP socket with HTTP/1.1 and `Connection: close`.
pub async fn http_get(addr: SocketAddr, path: &str) -> RawResponse {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(ANSWER_TIMEOUT, socket.read_to_end(&mut bytes))
        .await
        .expect("the server answers")
        .unwrap();
    parse_response(&String::from_utf8(bytes).unwrap())
}

/// Splits a whole HTTP/1.1 response; bodies here are small and sent with a length.
pub fn parse_response(text: &str) -> RawResponse {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line ends the head");
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    assert!(
        !headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this reader does not decode chunked bodies: {headers}"
    );
    RawResponse {
        status,
        headers: headers.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// A WebSocket viewer.
pub type Viewer = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects a viewer to `server`'s `/ws`.
pub async fn connect(server: &TestServer) -> Viewer {
    let (viewer, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("the upgrade succeeds");
    viewer
}

/// Sends one text frame.
pub async fn send_text(viewer: &mut Viewer, text: &str) {
    viewer.send(Message::text(text)).await.unwrap();
}

/// A `crosstalk serve` just started on a free port, its log read up to the line saying where it
/// listens.
pub struct Spawned {
    pub child: Child,
    pub addr: SocketAddr,
    /// The log up to and including that line.
    pub log_so_far: String,
    /// The rest of the log, as it comes.
    pub stderr: BufReader<ChildStderr>,
}

/// Starts `crosstalk serve --bind 127.0.0.1:0 ARGS` (logging at `info`) and waits until it says
/// where it listens; panics with its log if it exits first.
pub fn spawn_serve(args: &[&str]) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log_so_far = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited before listening:\n{log_so_far}"
        );
        log_so_far.push_str(&line);
        if let Some((_, url)) = line.split_once("crosstalk: serving http://") {
            break url.trim().parse().unwrap();
        }
    };
    Spawned {
        child,
        addr,
        log_so_far,
        stderr,
    }
}

/// A run of `scenario` with seed 1, these knobs and no fault.
pub fn request(scenario: &str, until_s: f64, knobs: &[(&str, f64)]) -> RunRequest {
    RunRequest {
        scenario: scenario.to_string(),
        seed: 1,
        until_s,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: Vec::new(),
    }
}

/// A `run` frame as JSON.
pub fn run_frame(scenario: &str, seed: u64, until_s: f64, knobs: &[(&str, f64)]) -> String {
    let knobs: serde_json::Map<String, serde_json::Value> = knobs
        .iter()
        .map(|(name, value)| (name.to_string(), serde_json::json!(value)))
        .collect();
    serde_json::json!({
        "type": "run",
        "scenario": scenario,
        "seed": seed,
        "until_s": until_s,
        "knobs": knobs,
    })
    .to_string()
}

/// The next server frame, skipping pings and `live_role` frames; panics if the socket closes
/// first.
pub async fn next_frame(viewer: &mut Viewer) -> ServerFrame {
    loop {
        match next_frame_or_role(viewer).await {
            ServerFrame::LiveRole(_) => continue,
            frame => return frame,
        }
    }
}

/// The next server frame, skipping pings; panics if the socket closes first.
pub async fn next_frame_or_role(viewer: &mut Viewer) -> ServerFrame {
    loop {
        let message = tokio::time::timeout(ANSWER_TIMEOUT, viewer.next())
            .await
            .expect("a frame arrives")
            .expect("the socket is open")
            .expect("the socket works");
        match message {
            Message::Text(text) => {
                return shared::json::from_str(text.as_str())
                    .unwrap_or_else(|err| panic!("not a ServerFrame ({err}): {text}"));
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// A trace as a viewer received it, with what the `end` frame said.
#[derive(Debug)]
pub struct Received {
    /// The header and events.
    pub trace: Trace,
    /// `end.trace_hash`.
    pub end_hash: String,
    /// `end.events`.
    pub end_events: u64,
    /// How many `events` frames carried it.
    pub n_event_frames: usize,
}

/// Reads one whole trace: a header, events, an end. Any other frame fails the test.
pub async fn receive_trace(viewer: &mut Viewer) -> Received {
    let header = match next_frame(viewer).await {
        ServerFrame::Header(header) => header,
        other => panic!("expected a header, got {other:?}"),
    };
    let mut events = Vec::new();
    let mut n_event_frames = 0;
    loop {
        match next_frame(viewer).await {
            ServerFrame::Events { events: batch } => {
                n_event_frames += 1;
                events.extend(batch);
            }
            ServerFrame::End {
                trace_hash,
                events: n,
            } => {
                return Received {
                    trace: Trace { header, events },
                    end_hash: trace_hash,
                    end_events: n,
                    n_event_frames,
                };
            }
            other => panic!("expected events or end, got {other:?}"),
        }
    }
}

/// Runs the real `crosstalk` binary with `args`.
pub fn crosstalk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("the binary runs")
}

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `label`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "crosstalk-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A seed for a randomized test: `CROSSTALK_TEST_SEED` if set, else fresh; always printed so a
/// failure can be replayed.
pub fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("CROSSTALK_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            nanos ^ u64::from(std::process::id())
        });
    println!("{test}: seed {seed} (rerun with CROSSTALK_TEST_SEED={seed})");
    seed
}
