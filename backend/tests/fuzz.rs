//! Property-based fuzzing (proptest) of what reaches the backend from the network: arbitrary and
//! mutated frames on `/ws`, arbitrary and mutated bodies on a live service's `POST /messages`.
//! Whatever arrives, the server does not panic, answers with a clear error, still answers
//! `/healthz`, and the live run in progress goes on undisturbed. Failing cases are shrunk and
//! printed by proptest; `PROPTEST_CASES` sets how many run.

mod support;

use backend::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use shared::protocol::{
    ClientFrame, Event, Fault, LinkId, LiveCommand, MsgId, Payload, RunRequest, ServerFrame,
    ServiceId, WireMessage,
};
use std::cell::RefCell;
use support::{TestServer, Viewer, connect, http_get, next_frame, send_text};
use tokio_tungstenite::tungstenite::Message;

/// Valid frames of every kind, written by the protocol's own types, for mutation.
fn valid_frames() -> Vec<String> {
    let request = RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: 1.0,
        knobs: [("read_rate_per_s".to_string(), 2.0)].into(),
        faults: vec!["crash:Product@0.5+0.2".into()],
    };
    let link = LinkId::Between(ServiceId(1), ServiceId(2));
    let frames = [
        ClientFrame::Run(request.clone()),
        ClientFrame::LiveStart {
            request,
            token: Some("0123456789abcdef".into()),
        },
        ClientFrame::LiveWatch,
        ClientFrame::LiveControl {
            command: LiveCommand::Crash {
                service: ServiceId(2),
            },
            token: None,
        },
        ClientFrame::LiveControl {
            command: LiveCommand::Fault {
                fault: Fault::Drop { link, percent: 30 },
            },
            token: Some("nope".into()),
        },
        ClientFrame::LiveControl {
            command: LiveCommand::Stop,
            token: None,
        },
    ];
    frames
        .iter()
        .map(|f| serde_json::to_string(f).unwrap())
        .collect()
}

/// `text` with a few bytes inserted, deleted or replaced.
fn mutate(text: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for &(at, byte, kind) in edits {
        let at = at % (bytes.len() + 1);
        match kind % 3 {
            0 => bytes.insert(at, byte),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ if at < bytes.len() => bytes[at] = byte,
            _ => bytes.push(byte),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Arbitrary text, mutations of valid `texts`, and arbitrary JSON-ish text.
fn texts_like(texts: Vec<String>) -> impl Strategy<Value = String> {
    let n = texts.len();
    let mutated = (
        0..n,
        proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6),
    )
        .prop_map(move |(i, edits)| mutate(&texts[i], &edits));
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,0-9a-z_ -]{0,80}",
        mutated.clone(),
        mutated,
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A quiet live run started by `starter`, who controls it.
async fn start_quiet_run(server: &TestServer) -> Viewer {
    let mut starter = connect(server).await;
    send_text(
        &mut starter,
        r#"{"type":"live_start","scenario":"request-response","seed":1,"until_s":300,
            "knobs":{"read_rate_per_s":1,"product_down_for_s":0,"link_latency_ms":5}}"#,
    )
    .await;
    let ServerFrame::Header(_) = next_frame(&mut starter).await else {
        panic!("the live run starts");
    };
    starter
}

/// Checks the server is well after fuzzing: `/healthz`, the run going on with its services up.
async fn check_undisturbed(server: &TestServer, starter: &mut Viewer) {
    let health = http_get(server.addr, "/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");
    let run = server.state.live().expect("the live run");
    assert!(!run.is_finished(), "the fuzzing ended the live run");
    let trace = run.trace();
    let down = trace
        .events
        .iter()
        .any(|e| matches!(e.event, Event::ServiceDown { .. }));
    assert!(!down, "the fuzzing brought a service down");
    // The starter still receives the run.
    let more = async {
        loop {
            if let ServerFrame::Events { .. } = next_frame(starter).await {
                return;
            }
        }
    };
    tokio::time::timeout(support::ANSWER_TIMEOUT, more)
        .await
        .expect("the run still streams");
}

#[test]
fn arbitrary_ws_frames_get_clear_errors_and_disturb_nothing() {
    let runtime = runtime();
    let server = runtime.block_on(TestServer::start(ServerConfig::default()));
    let mut starter = runtime.block_on(start_quiet_run(&server));
    let fuzzer = RefCell::new(Some(runtime.block_on(connect(&server))));
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let cases = std::cell::Cell::new(0u64);
    runner
        .run(&texts_like(valid_frames()), |text| {
            let n = cases.get() + 1;
            cases.set(n);
            let sentinel = format!("{{\"type\":\"sentinel-{n}\"}}");
            let mut socket = fuzzer.take().expect("the fuzzer's socket");
            let outcome = runtime.block_on(async {
                let socket = &mut socket;
                if socket.send(Message::text(text.clone())).await.is_err() {
                    *socket = connect(&server).await;
                    return Ok(());
                }
                socket.send(Message::text(sentinel.clone())).await.ok();
                // Every frame until the sentinel's refusal is one the page can read, and every
                // refusal says something.
                let answers = async {
                    while let Some(message) = socket.next().await {
                        let Ok(Message::Text(reply)) = message else {
                            continue;
                        };
                        let frame: ServerFrame = shared::json::from_str(reply.as_str())
                            .map_err(|e| TestCaseError::fail(format!("{e}: {reply}")))?;
                        if let ServerFrame::Error { message } = frame {
                            prop_assert!(message.len() > 10, "{message}");
                            if message.contains(&format!("sentinel-{n}")) {
                                return Ok(());
                            }
                        }
                    }
                    Err(TestCaseError::fail("the socket closed"))
                };
                tokio::time::timeout(support::ANSWER_TIMEOUT, answers)
                    .await
                    .map_err(|_| TestCaseError::fail("no answer"))?
            });
            fuzzer.replace(Some(socket));
            outcome
        })
        .unwrap();
    runtime.block_on(check_undisturbed(&server, &mut starter));
    runtime.block_on(server.stop());
}

#[test]
fn arbitrary_bodies_to_a_live_service_get_clear_errors_and_disturb_nothing() {
    let runtime = runtime();
    let server = runtime.block_on(TestServer::start(ServerConfig::default()));
    let mut starter = runtime.block_on(start_quiet_run(&server));
    let run = server.state.live().unwrap();
    let product = run.addr(ServiceId(2)).unwrap();
    let url = format!("http://{product}/messages");
    let valid: Vec<String> = [
        Payload::ReadOrder { order: 1 },
        Payload::RenameProduct {
            product: 3,
            name: "X".into(),
        },
    ]
    .into_iter()
    .map(|payload| {
        serde_json::to_string(&WireMessage {
            id: MsgId(1),
            from: ServiceId(1),
            to: ServiceId(2),
            op: None,
            caused_by: None,
            payload,
        })
        .unwrap()
    })
    .collect();
    let client = reqwest::Client::new();
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    runner
        .run(&texts_like(valid), |body| {
            runtime.block_on(async {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                prop_assert!(
                    matches!(status, 202 | 400 | 415 | 422 | 503),
                    "{status} {text} for {body}"
                );
                prop_assert!(!text.is_empty(), "{status} says nothing for {body}");
                Ok(())
            })
        })
        .unwrap();
    let health = runtime.block_on(http_get(product, "/healthz"));
    assert_eq!(health.status, 200, "{health:?}");
    runtime.block_on(check_undisturbed(&server, &mut starter));
    runtime.block_on(server.stop());
}
