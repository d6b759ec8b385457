//! How live runs and the server end, over real sockets and real processes: a stop always
//! arrives, a replaced run is gone before the next starts, RabbitMQ queues are deleted however a
//! run ends, signals end the server in time, each run keeps its files in a folder of its own,
//! and no secret (a broker URL's password) ever leaves the process.
//!
//! The RabbitMQ cases need a broker at `CROSSTALK_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) and `rabbitmqctl` to list its queues;
//! `scripts/test.sh` installs and starts one.

mod support;

use backend::ServerConfig;
use backend::live::{LiveConfig, LiveRun, Storage};
use shared::protocol::{ServerFrame, ServiceId};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    ANSWER_TIMEOUT, Spawned, TempDir, TestServer, Viewer, connect, next_frame, request, send_text,
    spawn_serve,
};

fn amqp_url() -> String {
    std::env::var("CROSSTALK_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// The names of RabbitMQ's queues that the `crosstalk` process `pid` declared.
fn queues_of_process(pid: u32) -> Vec<String> {
    let output = Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name"])
        .output()
        .expect("rabbitmqctl runs (scripts/test.sh installs RabbitMQ)");
    assert!(output.status.success(), "{output:?}");
    let prefix = format!("crosstalk.{pid}-");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(&prefix))
        .map(String::from)
        .collect()
}

/// Keeps `run`'s inbox full from a few threads until the run ends (at most 30 s); returns once
/// it was seen full.
async fn flood(run: &Arc<LiveRun>) -> Vec<std::thread::JoinHandle<()>> {
    let read = || shared::protocol::Payload::ReadOrder { order: 1 };
    let threads = (0..3)
        .map(|_| {
            let run = run.clone();
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(30);
                while !run.is_finished() && Instant::now() < until {
                    let _ = run.send_as(ServiceId(0), ServiceId(1), read());
                }
            })
        })
        .collect();
    // Once the threads are at it, and seen full just now: a command sent through the inbox
    // would be refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while run.send_as(ServiceId(0), ServiceId(1), read()).is_ok() {
        assert!(Instant::now() < deadline, "the inbox never filled");
        tokio::task::yield_now().await;
    }
    threads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_arrives_even_when_the_inbox_is_full() {
    let config = LiveConfig {
        inbox_capacity: 1,
        ..LiveConfig::default()
    };
    let run = Arc::new(
        LiveRun::start(&request("request-response", 120.0, &[]), config)
            .await
            .unwrap(),
    );
    let flooding = flood(&run).await;
    run.stop();
    let stopped = tokio::time::timeout(Duration::from_secs(5), run.finished()).await;
    for thread in flooding {
        thread.join().unwrap();
    }
    assert!(stopped.is_ok(), "the stop was lost in a full inbox");
}

/// Starts `request` live from `viewer` and waits for its header.
async fn start_live(viewer: &mut Viewer, scenario: &str, knobs: &str) {
    send_text(
        viewer,
        &format!(
            r#"{{"type":"live_start","scenario":"{scenario}","seed":1,"until_s":120,"knobs":{knobs}}}"#
        ),
    )
    .await;
    loop {
        match next_frame(viewer).await {
            ServerFrame::Header(header) if header.scenario == scenario => return,
            ServerFrame::Error { message } => panic!("refused: {message}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_run_has_let_go_of_its_ports_before_the_next_one_starts() {
    let mut config = ServerConfig::default();
    // Its inbox is kept full, so a stop sent through it would be lost.
    config.live.inbox_capacity = 1;
    let server = TestServer::start(config).await;
    let mut viewer = connect(&server).await;
    start_live(&mut viewer, "request-response", r#"{"read_rate_per_s":50}"#).await;
    let first = server.state.live().unwrap();
    let flooding = flood(&first).await;
    let ports: Vec<_> = (0..first.header().services.len())
        .map(|s| first.addr(ServiceId(s as u16)).unwrap())
        .collect();
    start_live(&mut viewer, "eventual-consistency", "{}").await;
    assert!(first.is_finished(), "the first run ended");
    for port in ports {
        assert!(
            tokio::net::TcpStream::connect(port).await.is_err(),
            "{port} of the replaced run still accepts connections"
        );
    }
    for thread in flooding {
        thread.join().unwrap();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_keeps_its_files_in_a_folder_of_its_own() {
    let dir = TempDir::new("data-folders");
    // Somebody else's file, where the old runs wrote theirs.
    let bystander = dir.path().join("order.sqlite");
    std::fs::write(&bystander, b"not ours").unwrap();
    let config = LiveConfig {
        storage: Storage::Dir(dir.path().to_path_buf()),
        ..LiveConfig::default()
    };
    let quiet = request(
        "eventual-consistency",
        60.0,
        &[("rename_rate_per_s", 0.0), ("read_rate_per_s", 0.0)],
    );
    let first = LiveRun::start(&quiet, config.clone()).await.unwrap();
    let second = LiveRun::start(&quiet, config).await.unwrap();
    let order = ServiceId(1);
    let (a, b) = (
        first.database(order).unwrap().to_path_buf(),
        second.database(order).unwrap().to_path_buf(),
    );
    assert_ne!(a, b, "two runs share one database file");
    for path in [&a, &b] {
        assert!(path.starts_with(dir.path()), "{}", path.display());
        assert!(path.is_file(), "{} exists", path.display());
        let folder = path.parent().unwrap();
        assert_ne!(folder, dir.path(), "each run has a folder of its own");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", folder.display());
        }
    }
    first.stop();
    second.stop();
    first.finished().await;
    second.finished().await;
    assert_eq!(std::fs::read(&bystander).unwrap(), b"not ours");
}

#[test]
fn a_live_run_that_ends_on_its_own_deletes_its_rabbitmq_queues() {
    let child = Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args([
            "live",
            "--scenario",
            "event-driven",
            "--for",
            "6",
            "--in-memory",
        ])
        .args(["--broker", &amqp_url(), "--format", "summary"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(queues_of_process(pid), Vec::<String>::new());
}

/// A `crosstalk serve` process and the address it listens on.
struct Served {
    child: Child,
    addr: std::net::SocketAddr,
    stderr: std::thread::JoinHandle<String>,
}

fn serve(args: &[&str]) -> Served {
    let Spawned {
        child,
        addr,
        log_so_far,
        mut stderr,
    } = spawn_serve(args);
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        log_so_far + &rest
    });
    Served {
        child,
        addr,
        stderr,
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits for `child` to exit, at most `within`; its exit status, or `None` if it did not.
fn exited_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn connect_to(addr: std::net::SocketAddr) -> Viewer {
    let (viewer, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    viewer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_live_run_deletes_its_queues_and_exits_in_time() {
    let mut served = serve(&["--in-memory", "--broker", &amqp_url()]);
    let mut viewer = connect_to(served.addr).await;
    start_live(
        &mut viewer,
        "event-driven",
        r#"{"shipping_down_at_s":0.5,"shipping_down_for_s":60}"#,
    )
    .await;
    // Let Shipping's queue fill while it is down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !queues_of_process(served.child.id()).is_empty(),
        "the run declared its queues"
    );
    let signalled = Instant::now();
    signal(&served.child, "TERM");
    let status = exited_within(&mut served.child, Duration::from_secs(10));
    let took = signalled.elapsed();
    let log = served.stderr.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("still running 10 s after SIGTERM\n{log}"));
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took <= Duration::from_secs(5), "took {took:?}\n{log}");
    assert_eq!(
        queues_of_process(served.child.id()),
        Vec::<String>::new(),
        "{log}"
    );
}

/// A `GET` of a big file by a client that never reads the answer: an open request the server's
/// graceful shutdown would wait for forever.
async fn stuck_download(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!("GET /big.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

fn dist_with_a_big_file() -> TempDir {
    let dist = TempDir::new("big-dist");
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    std::fs::write(dist.path().join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    dist
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_request_delays_the_exit_at_most_5_s_and_a_second_signal_exits_at_once() {
    let dist = dist_with_a_big_file();
    let dist_arg = dist.path().to_str().unwrap();
    for second_signal in [false, true] {
        let mut served = serve(&["--dist", dist_arg]);
        let _stuck = stuck_download(served.addr).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(&served.child, "TERM");
        let mut allowed = Duration::from_secs(7);
        if second_signal {
            tokio::time::sleep(Duration::from_millis(300)).await;
            signal(&served.child, "INT");
            allowed = Duration::from_secs(1);
        }
        let status = exited_within(&mut served.child, allowed);
        let log = served.stderr.join().unwrap();
        assert!(
            status.is_some(),
            "second signal: {second_signal}; still running after {allowed:?}\n{log}"
        );
    }
}

const SECRET: &str = "hunter2secret";

fn url_with_password() -> String {
    // Nothing listens on port 1: the connection is refused at once.
    format!("amqp://crosstalk:{SECRET}@127.0.0.1:1/%2f")
}

#[test]
fn a_broker_password_never_appears_in_the_command_lines_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args(["live", "--scenario", "event-driven", "--for", "2"])
        .args(["--in-memory", "--broker", &url_with_password()])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("RabbitMQ"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    let bad_scheme = format!("amqps://crosstalk:{SECRET}@127.0.0.1:1/%2f");
    let output = Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args([
            "live",
            "--scenario",
            "event-driven",
            "--broker",
            &bad_scheme,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_password_never_reaches_a_viewer_or_the_log() {
    let mut served = serve(&["--in-memory", "--broker", &url_with_password()]);
    let mut viewer = connect_to(served.addr).await;
    send_text(
        &mut viewer,
        r#"{"type":"live_start","scenario":"event-driven","seed":1,"until_s":10}"#,
    )
    .await;
    let message = loop {
        if let ServerFrame::Error { message } = next_frame(&mut viewer).await {
            break message;
        }
    };
    assert!(message.contains("RabbitMQ"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
    drop(viewer);
    signal(&served.child, "TERM");
    exited_within(&mut served.child, ANSWER_TIMEOUT).expect("the server stops");
    let log = served.stderr.join().unwrap();
    assert!(log.contains("crosstalk: serving"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
}
