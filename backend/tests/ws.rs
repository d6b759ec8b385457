//! `/ws` over real sockets: traces equal the command line's, bad frames are answered and the
//! socket lives on, a new run replaces the old, and the bounds on viewers hold.

mod support;

use backend::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ServerFrame, Trace};
use std::time::Duration;
use support::{
    ANSWER_TIMEOUT, TestServer, Viewer, connect, crosstalk, next_frame, receive_trace, run_frame,
    send_text, test_seed,
};
use tokio_tungstenite::tungstenite::{self, Message};

/// Streams `scenario` over `viewer` and checks it against `crosstalk simulate`'s stdout.
async fn check_trace_matches_the_cli(
    viewer: &mut Viewer,
    scenario: &str,
    seed: u64,
    until_s: f64,
    knobs: &[(&str, f64)],
) {
    send_text(viewer, &run_frame(scenario, seed, until_s, knobs)).await;
    let received = receive_trace(viewer).await;

    let seed_arg = seed.to_string();
    let until_arg = until_s.to_string();
    let mut args = vec![
        "simulate",
        "--scenario",
        scenario,
        "--seed",
        &seed_arg,
        "--until",
        &until_arg,
        "--format",
        "jsonl",
    ];
    let sets: Vec<String> = knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for set in &sets {
        args.extend(["--set", set]);
    }
    let output = crosstalk(&args);
    assert!(output.status.success(), "{output:?}");
    let case = format!("{scenario} seed {seed} until {until_s} knobs {knobs:?}");
    // Byte-equal JSON lines, compared line by line first so a failure points at the event.
    let cli_text = String::from_utf8(output.stdout).unwrap();
    let ws_text = received.trace.to_jsonl();
    for (index, (cli_line, ws_line)) in cli_text.lines().zip(ws_text.lines()).enumerate() {
        assert_eq!(ws_line, cli_line, "{case}: line {}", index + 1);
    }
    assert_eq!(ws_text, cli_text, "{case}");
    assert_eq!(received.end_hash, received.trace.hash_hex(), "{case}");
    assert_eq!(
        received.end_events,
        received.trace.events.len() as u64,
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_over_the_socket_equal_the_command_lines() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut viewer = connect(&server).await;
    // One socket serves run after run.
    check_trace_matches_the_cli(&mut viewer, "request-response", 1, 30.0, &[]).await;
    check_trace_matches_the_cli(
        &mut viewer,
        "request-response",
        42,
        12.5,
        &[("read_rate_per_s", 7.0), ("link_latency_ms", 35.0)],
    )
    .await;
    check_trace_matches_the_cli(&mut viewer, "eventual-consistency", 3, 30.0, &[]).await;
    let seed = test_seed("traces_over_the_socket_equal_the_command_lines");
    check_trace_matches_the_cli(
        &mut viewer,
        "eventual-consistency",
        seed,
        20.0,
        &[("read_rate_per_s", 4.0)],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn events_come_in_frames_of_the_configured_size() {
    let server = TestServer::start(ServerConfig {
        events_per_frame: 7,
        ..ServerConfig::default()
    })
    .await;
    let mut viewer = connect(&server).await;
    send_text(&mut viewer, &run_frame("request-response", 5, 3.0, &[])).await;
    let received = receive_trace(&mut viewer).await;
    let n_events = received.trace.events.len();
    assert_eq!(received.n_event_frames, n_events.div_ceil(7));
    let expected = engine::simulate(&shared::protocol::RunRequest {
        scenario: "request-response".into(),
        seed: 5,
        until_s: 3.0,
        knobs: Default::default(),
        faults: Vec::new(),
    })
    .unwrap();
    assert_eq!(received.trace, expected);
    server.stop().await;
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_still_serves() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut viewer = connect(&server).await;
    let check = async |viewer: &mut Viewer, frame: Message, expected: &[&str]| {
        viewer.send(frame.clone()).await.unwrap();
        let ServerFrame::Error { message } = next_frame(viewer).await else {
            panic!("expected an error frame for {frame:?}");
        };
        for fragment in expected {
            assert!(
                message.contains(fragment),
                "{frame:?}: {message:?} should contain {fragment:?}"
            );
        }
    };
    let text = |text: &str| Message::text(text.to_string());
    check(
        &mut viewer,
        text("hello"),
        &["cannot read the frame", "expected value at line 1 column 1"],
    )
    .await;
    check(&mut viewer, text(""), &["cannot read the frame", "EOF"]).await;
    check(
        &mut viewer,
        text(r#"{"type":"stop"}"#),
        &[
            "unknown variant `stop`",
            "expected one of `run`, `live_start`",
        ],
    )
    .await;
    check(
        &mut viewer,
        text(r#"{"scenario":"x"}"#),
        &["missing field `type`"],
    )
    .await;
    check(
        &mut viewer,
        text(r#"{"type":"run","scenario":"request-response","until_s":5}"#),
        &["missing field `seed`"],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame("no-such-scenario", 1, 5.0, &[])),
        &[
            "unknown scenario \"no-such-scenario\"",
            "request-response",
            "eventual-consistency",
        ],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame("request-response", 1, 5.0, &[("speed", 1.0)])),
        &["has no knob \"speed\"", "read_rate_per_s"],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame(
            "request-response",
            1,
            5.0,
            &[("read_rate_per_s", 100000.0)],
        )),
        &[
            "read_rate_per_s = 100000 is out of range",
            "between 0 and 50 per s in a simulated run; a live run takes up to 5000",
        ],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame(
            "request-response",
            1,
            5.0,
            &[("products_per_order", 2.5)],
        )),
        &["must be a whole number"],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame("request-response", 1, -3.0, &[])),
        &["run length -3 s is out of range"],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame("request-response", 1, 0.0, &[])),
        &["run length 0 s is out of range"],
    )
    .await;
    check(
        &mut viewer,
        text(&run_frame("request-response", 1, 601.0, &[])),
        &["at most 600 s"],
    )
    .await;
    // JSON has no NaN or infinity: such numbers fail as JSON, with where.
    check(
        &mut viewer,
        text(r#"{"type":"run","scenario":"request-response","seed":1,"until_s":NaN}"#),
        &["cannot read the frame", "column"],
    )
    .await;
    check(
        &mut viewer,
        text(r#"{"type":"run","scenario":"request-response","seed":1,"until_s":1e999}"#),
        &["cannot read the frame", "number out of range"],
    )
    .await;
    check(
        &mut viewer,
        text(r#"{"type":"run","scenario":"request-response","seed":-1,"until_s":5}"#),
        &["cannot read the frame", "invalid value"],
    )
    .await;
    check(
        &mut viewer,
        Message::binary(b"\x00\x01".to_vec()),
        &["binary frames are not understood"],
    )
    .await;
    // After all that, the same socket serves a valid run.
    send_text(&mut viewer, &run_frame("eventual-consistency", 2, 5.0, &[])).await;
    let received = receive_trace(&mut viewer).await;
    assert_eq!(received.trace.header.scenario, "eventual-consistency");
    assert_eq!(received.end_hash, received.trace.hash_hex());
    server.stop().await;
}

#[tokio::test]
async fn a_control_frame_over_the_size_bound_closes_the_socket_without_harming_the_server() {
    let server = TestServer::start(ServerConfig {
        control_frame_bytes_max: 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut viewer = connect(&server).await;
    send_text(&mut viewer, &"x".repeat(4096)).await;
    // The socket ends, one way or another, and the server goes on serving others.
    match tokio::time::timeout(ANSWER_TIMEOUT, viewer.next())
        .await
        .unwrap()
    {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {}
        Some(Ok(other)) => panic!("expected the socket to close, got {other:?}"),
    }
    let mut other = connect(&server).await;
    send_text(&mut other, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut other).await;
    server.stop().await;
}

#[tokio::test]
async fn a_second_run_replaces_the_first_mid_stream() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut viewer = connect(&server).await;
    // The first run is as long and busy as allowed, so it cannot finish before it is replaced.
    let first = run_frame("request-response", 1, 600.0, &[("read_rate_per_s", 50.0)]);
    send_text(&mut viewer, &first).await;
    let ServerFrame::Header(first_header) = next_frame(&mut viewer).await else {
        panic!("expected the first run's header");
    };
    assert_eq!(first_header.seed, 1);
    let ServerFrame::Events { .. } = next_frame(&mut viewer).await else {
        panic!("expected the first run's events");
    };
    send_text(
        &mut viewer,
        &run_frame("eventual-consistency", 2, 10.0, &[]),
    )
    .await;
    // Frames of the first run already on their way may arrive, but never its end.
    let mut n_stale_frames = 0;
    let second_header = loop {
        match next_frame(&mut viewer).await {
            ServerFrame::Events { .. } => n_stale_frames += 1,
            ServerFrame::Header(header) => break header,
            other => panic!("expected the first run's events or the second's header: {other:?}"),
        }
    };
    println!("{n_stale_frames} frame(s) of the first run arrived after the second was asked for");
    assert_eq!(
        (second_header.scenario.as_str(), second_header.seed),
        ("eventual-consistency", 2)
    );
    let mut events = Vec::new();
    let end_hash = loop {
        match next_frame(&mut viewer).await {
            ServerFrame::Events { events: batch } => events.extend(batch),
            ServerFrame::End { trace_hash, .. } => break trace_hash,
            other => panic!("expected the second run's events or end: {other:?}"),
        }
    };
    let received = Trace {
        header: second_header,
        events,
    };
    let expected = engine::simulate(&shared::protocol::RunRequest {
        scenario: "eventual-consistency".into(),
        seed: 2,
        until_s: 10.0,
        knobs: Default::default(),
        faults: Vec::new(),
    })
    .unwrap();
    assert_eq!(received, expected);
    assert_eq!(end_hash, expected.hash_hex());
    server.stop().await;
}

/// Connects to `server` and returns the HTTP status of a refused upgrade, or `None` if it
/// succeeded (the socket is then dropped).
async fn refused_status(server: &TestServer) -> Option<(u16, String)> {
    match tokio_tungstenite::connect_async(server.ws_url()).await {
        Ok(_) => None,
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Some((response.status().as_u16(), body))
        }
        Err(err) => panic!("expected a refusal with a status, got {err}"),
    }
}

#[tokio::test]
async fn over_the_viewer_limit_the_upgrade_is_refused_with_503() {
    let server = TestServer::start(ServerConfig {
        max_viewers: 1,
        ..ServerConfig::default()
    })
    .await;
    let mut first = connect(&server).await;
    let (status, body) = refused_status(&server)
        .await
        .expect("the second is refused");
    assert_eq!(status, 503);
    assert!(body.contains("too many viewers: at most 1"), "{body}");
    // The first viewer is unharmed.
    send_text(&mut first, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut first).await;
    assert_eq!(server.state.viewers_connected(), 1);

    // Once it leaves, its place is free again. The server notices the close a moment after
    // the client does, so the client waits for the socket to end, then for the place.
    first.close(None).await.unwrap();
    while let Some(Ok(_)) = first.next().await {}
    tokio::time::timeout(ANSWER_TIMEOUT, server.state.viewers_closed())
        .await
        .expect("the server frees the place");
    let mut again = connect(&server).await;
    send_text(&mut again, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut again).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_does_not_read_slows_no_one_else() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut stalled = connect(&server).await;
    // The largest run there is; this viewer never reads a frame of it.
    send_text(
        &mut stalled,
        &run_frame("request-response", 1, 600.0, &[("read_rate_per_s", 50.0)]),
    )
    .await;
    for seed in 1..=3 {
        let mut viewer = connect(&server).await;
        send_text(
            &mut viewer,
            &run_frame("eventual-consistency", seed, 30.0, &[]),
        )
        .await;
        let received = receive_trace(&mut viewer).await;
        assert_eq!(received.end_hash, received.trace.hash_hex());
    }
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_that_stops_reading_is_dropped_after_the_send_timeout() {
    let server = TestServer::start(ServerConfig {
        max_viewers: 1,
        viewer_send_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let mut stalled = connect(&server).await;
    send_text(
        &mut stalled,
        &run_frame("request-response", 1, 600.0, &[("read_rate_per_s", 50.0)]),
    )
    .await;
    // Once the socket's buffers are full, the send waits; after the timeout the server drops
    // this viewer and its place is free. Real time passes here: the socket is real, so tokio's
    // clock cannot be paused.
    tokio::time::timeout(ANSWER_TIMEOUT, server.state.viewers_closed())
        .await
        .expect("the stalled viewer is dropped");
    let mut next = connect(&server).await;
    send_text(&mut next, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut next).await;
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_viewers_as_going_away() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut viewer = connect(&server).await;
    send_text(&mut viewer, &run_frame("request-response", 1, 2.0, &[])).await;
    receive_trace(&mut viewer).await;
    let state = server.state.clone();
    let stopping = tokio::spawn(server.stop());
    let close = loop {
        match tokio::time::timeout(ANSWER_TIMEOUT, viewer.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("the close frame says why");
    assert_eq!(u16::from(close.code), 1001);
    assert!(close.reason.contains("shutting down"), "{close:?}");
    while let Some(Ok(_)) = viewer.next().await {}
    stopping.await.unwrap();
    assert_eq!(state.viewers_connected(), 0);
}
