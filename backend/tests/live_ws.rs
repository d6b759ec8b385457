//! Live runs over `/ws`: one viewer starts a run and controls it, another watches the same run,
//! both receive the same trace with a matching hash; commands that do not fit are refused.

mod support;

use backend::{ServerConfig, ViewerWriteBudget};
use shared::protocol::{Event, Payload, ServerFrame, ServiceId, TraceHasher};
use std::time::{Duration, Instant};
use support::{TestServer, Viewer, connect, next_frame, send_text};

/// A viewer's copy of a live run, built frame by frame.
#[derive(Default)]
struct Watched {
    hasher: TraceHasher,
    events: Vec<Event>,
    end_hash: Option<String>,
}

impl Watched {
    /// Reads frames until `until` holds for what arrived, or the run ends.
    async fn read_until(&mut self, viewer: &mut Viewer, until: impl Fn(&Watched) -> bool) {
        while !until(self) && self.end_hash.is_none() {
            match next_frame(viewer).await {
                ServerFrame::Header(header) => {
                    *self = Watched::default();
                    self.hasher.add_header(&header);
                }
                ServerFrame::Events { events } => {
                    for event in events {
                        self.hasher.add_event(&event);
                        self.events.push(event.event);
                    }
                }
                ServerFrame::End { trace_hash, .. } => self.end_hash = Some(trace_hash),
                // Fell behind again: the header that follows starts the copy over.
                ServerFrame::Resync { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn live_start(knobs: &str) -> String {
    format!(
        r#"{{"type":"live_start","scenario":"request-response","seed":3,"until_s":120,"knobs":{knobs}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_share_a_live_run_and_see_a_crash_they_asked_for() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut starter = connect(&server).await;
    send_text(&mut starter, r#"{"type":"live_watch"}"#).await;
    let ServerFrame::Error { message } = next_frame(&mut starter).await else {
        panic!("watching before any live run is refused");
    };
    assert!(
        message.contains("no live run has been started"),
        "{message}"
    );

    send_text(
        &mut starter,
        &live_start(r#"{"read_rate_per_s":10,"product_down_for_s":0,"link_latency_ms":5}"#),
    )
    .await;
    let ServerFrame::Header(header) = next_frame(&mut starter).await else {
        panic!("a live run begins with its header");
    };
    assert_eq!(header.scenario, "request-response");
    assert_eq!(header.seed, 3);
    let mut started = Watched::default();
    started.hasher.add_header(&header);
    started
        .read_until(&mut starter, |w| {
            w.events
                .iter()
                .any(|e| matches!(e, Event::OpFinished { .. }))
        })
        .await;

    let mut watcher = connect(&server).await;
    send_text(&mut watcher, r#"{"type":"live_watch"}"#).await;
    let mut watched = Watched::default();
    watched
        .read_until(&mut watcher, |w| {
            w.events
                .iter()
                .any(|e| matches!(e, Event::OpFinished { .. }))
        })
        .await;

    send_text(
        &mut starter,
        r#"{"type":"live_control","action":"crash","service":9}"#,
    )
    .await;
    send_text(
        &mut starter,
        r#"{"type":"live_control","action":"crash","service":2}"#,
    )
    .await;
    let product_down = |w: &Watched| {
        w.events.contains(&Event::ServiceDown {
            service: ServiceId(2),
        })
    };
    // The refusal of service 9 comes in order among the run's frames.
    let mut refused = None;
    while !product_down(&started) {
        match next_frame(&mut starter).await {
            ServerFrame::Error { message } => refused = Some(message),
            ServerFrame::Events { events } => {
                for event in events {
                    started.hasher.add_event(&event);
                    started.events.push(event.event);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let refused = refused.expect("the bad command was refused");
    assert!(refused.contains("no service 9"), "{refused}");
    watched.read_until(&mut watcher, product_down).await;

    send_text(&mut starter, r#"{"type":"live_control","action":"stop"}"#).await;
    started.read_until(&mut starter, |_| false).await;
    watched.read_until(&mut watcher, |_| false).await;
    for (who, viewer) in [("starter", &started), ("watcher", &watched)] {
        assert_eq!(
            viewer.end_hash.as_deref(),
            Some(viewer.hasher.hex().as_str()),
            "{who} received the whole trace"
        );
    }
    assert_eq!(started.events, watched.events, "both saw one run");
    server.stop().await;
}

/// A viewer whose socket takes only a few kilobytes at a time, so the server's writes to it
/// back up as they would over a slow network.
async fn connect_with_small_window(server: &TestServer) -> Viewer {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (viewer, _) = tokio_tungstenite::client_async(server.ws_url(), stream)
        .await
        .unwrap();
    viewer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_falls_behind_is_told_and_resynchronized_while_the_run_goes_on() {
    check_a_viewer_that_falls_behind_is_resynchronized(ServerConfig::default().viewer_writes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_writes_batched_a_viewer_that_falls_behind_is_still_resynchronized() {
    // One viewer waits 50 ms after each write, as each of 1,000 would with 20,000 writes/s.
    check_a_viewer_that_falls_behind_is_resynchronized(ViewerWriteBudget {
        writes_per_s: 20,
        from_viewers: 1,
        wait_max: Duration::from_millis(100),
    })
    .await;
}

async fn check_a_viewer_that_falls_behind_is_resynchronized(viewer_writes: ViewerWriteBudget) {
    let mut config = ServerConfig {
        viewer_writes,
        ..ServerConfig::default()
    };
    config.live.log.frames_buffered = 1;
    config.live.log.events_per_frame = 1;
    // Slow, not dead: the server waits for it rather than dropping it.
    config.viewer_send_timeout = std::time::Duration::from_secs(120);
    // Sockets accepted from this listener inherit its small send buffer, so a viewer that stops
    // reading blocks the server's writes after kilobytes, not the megabytes autotuning allows.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(8 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = TestServer::start_on(socket.listen(64).unwrap(), config).await;
    let mut slow = connect_with_small_window(&server).await;
    send_text(
        &mut slow,
        r#"{"type":"live_start","scenario":"eventual-consistency","seed":3,"until_s":120,
            "knobs":{"rename_rate_per_s":0,"read_rate_per_s":0,"order_down_for_s":0,"link_latency_ms":1}}"#,
    )
    .await;
    // The viewer reads nothing while a burst of renames goes through the real services: its
    // socket fills (megabytes of trace), then its place in the broadcast is overtaken.
    let run = live_run_started(&server).await;
    // Renames at a pace the services keep up with (calls in flight are bounded, and beyond the
    // bound messages are dropped), until there is more trace than the kernel's socket buffers
    // hold with these small buffers.
    let deadline = tokio::time::Instant::now() + support::ANSWER_TIMEOUT;
    let mut renames = 0;
    while run.trace().events.len() < 8_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renames never made 8 000 events"
        );
        for _ in 0..50 {
            let rename = Payload::RenameProduct {
                product: 1 + renames % 8,
                name: format!("Burst {renames}"),
            };
            if run.send_as(ServiceId(0), ServiceId(2), rename).is_ok() {
                renames += 1;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let events_before_reading = run.trace().events.len();
    assert!(!run.is_finished(), "the run went on without the viewer");

    let mut missed = None;
    let mut frames_read = 0;
    while missed.is_none() {
        frames_read += 1;
        assert!(
            frames_read < 100_000,
            "no resync came in {frames_read} frames"
        );
        if let ServerFrame::Resync { missed_frames } = next_frame(&mut slow).await {
            missed = Some(missed_frames);
        }
    }
    assert!(missed.unwrap() > 0);
    // Then the run again from its header, and it keeps up from there.
    let ServerFrame::Header(header) = next_frame(&mut slow).await else {
        panic!("a resync is followed by the header");
    };
    assert_eq!(header.scenario, "eventual-consistency");
    let mut watched = Watched::default();
    watched.hasher.add_header(&header);
    watched
        .read_until(&mut slow, |w| w.events.len() >= events_before_reading)
        .await;
    println!(
        "slow viewer: resynced after missing {} frame(s); {events_before_reading} events were recorded while it read nothing",
        missed.unwrap()
    );
    server.stop().await;
}

/// Reads `viewer`'s frames until an `error` frame, and returns its message.
async fn next_error(viewer: &mut Viewer) -> String {
    let error = async {
        loop {
            if let ServerFrame::Error { message } = next_frame(viewer).await {
                return message;
            }
        }
    };
    tokio::time::timeout(support::ANSWER_TIMEOUT, error)
        .await
        .expect("an error frame arrives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_viewer_who_started_a_live_run_controls_it() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut starter = connect(&server).await;
    send_text(
        &mut starter,
        &live_start(r#"{"read_rate_per_s":5,"product_down_for_s":0,"link_latency_ms":5}"#),
    )
    .await;
    let ServerFrame::Header(_) = next_frame(&mut starter).await else {
        panic!("a live run begins with its header");
    };
    let run = server.state.live().expect("the run");
    let mut watcher = connect(&server).await;
    send_text(&mut watcher, r#"{"type":"live_watch"}"#).await;

    // A watcher may neither break, stop nor replace the run.
    for (frame, what) in [
        (
            r#"{"type":"live_control","action":"crash","service":2}"#,
            "crash",
        ),
        (r#"{"type":"live_control","action":"stop"}"#, "stop"),
        (
            r#"{"type":"live_start","scenario":"eventual-consistency","seed":1,"until_s":30}"#,
            "replace",
        ),
    ] {
        send_text(&mut watcher, frame).await;
        let message = next_error(&mut watcher).await;
        assert!(message.contains("watching"), "{what}: {message}");
    }
    // Whatever the watcher sent is in the run by now if it was taken.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let product_down = |trace: &shared::protocol::Trace| {
        trace.events.iter().any(|e| {
            e.event
                == Event::ServiceDown {
                    service: ServiceId(2),
                }
        })
    };
    assert!(!run.is_finished(), "a watcher stopped or replaced the run");
    assert!(!product_down(&run.trace()), "a watcher crashed Product");
    assert!(std::sync::Arc::ptr_eq(&run, &server.state.live().unwrap()));

    // A bad request from the starter is refused and leaves its run alone.
    send_text(
        &mut starter,
        r#"{"type":"live_start","scenario":"no-such-scenario","seed":1,"until_s":30}"#,
    )
    .await;
    let message = next_error(&mut starter).await;
    assert!(message.contains("no-such-scenario"), "{message}");
    assert!(!run.is_finished(), "a bad request stopped the run");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_takes_rates_up_to_the_live_maximum_a_simulated_run_refuses() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut viewer = connect(&server).await;
    let knobs = r#"{"read_rate_per_s":200,"products_per_order":1,"product_down_for_s":0,"link_latency_ms":5}"#;
    // The server's simulation holds rates to what a 600 s run records within its budget.
    send_text(
        &mut viewer,
        &format!(
            r#"{{"type":"run","scenario":"request-response","seed":3,"until_s":1,"knobs":{knobs}}}"#
        ),
    )
    .await;
    let message = next_error(&mut viewer).await;
    assert_eq!(
        message,
        "knob read_rate_per_s = 200 is out of range: it must be between 0 and 50 per s in a \
         simulated run; a live run takes up to 5000"
    );
    // Real services take it, up to the live maximum.
    send_text(&mut viewer, &live_start(knobs)).await;
    let ServerFrame::Header(header) = next_frame(&mut viewer).await else {
        panic!("a live run at 200 reads a second begins with its header");
    };
    assert_eq!(header.knobs["read_rate_per_s"], 200.0);
    let mut watched = Watched::default();
    watched
        .read_until(&mut viewer, |w| {
            w.events
                .iter()
                .any(|e| matches!(e, Event::OpFinished { .. }))
        })
        .await;
    send_text(
        &mut viewer,
        &live_start(r#"{"read_rate_per_s":5000.5,"product_down_for_s":0}"#),
    )
    .await;
    let message = next_error(&mut viewer).await;
    assert_eq!(
        message,
        "the live run did not start: knob read_rate_per_s = 5000.5 is out of range: it must be \
         between 0 and 5000 per s"
    );
    let run = server.state.live().expect("the run at 200 reads a second");
    assert!(!run.is_finished(), "a refused request stopped the run");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_viewers_watch_one_live_run_to_its_end() {
    let server = TestServer::start(ServerConfig {
        // They all come from 127.0.0.1.
        max_viewers_per_address: 200,
        ..ServerConfig::default()
    })
    .await;
    let mut starter = connect(&server).await;
    send_text(
        &mut starter,
        r#"{"type":"live_start","scenario":"request-response","seed":3,"until_s":3,
            "knobs":{"read_rate_per_s":20,"product_down_for_s":0,"link_latency_ms":5}}"#,
    )
    .await;
    let ServerFrame::Header(header) = next_frame(&mut starter).await else {
        panic!("a live run begins with its header");
    };
    let mut first = Watched::default();
    first.hasher.add_header(&header);
    let mut crowd = Vec::new();
    for _ in 0..199 {
        let mut viewer = connect(&server).await;
        send_text(&mut viewer, r#"{"type":"live_watch"}"#).await;
        crowd.push(viewer);
    }
    first.read_until(&mut starter, |_| false).await;
    let expected = first.end_hash.clone().expect("the run ended");
    let mut watching = tokio::task::JoinSet::new();
    for mut viewer in crowd {
        watching.spawn(async move {
            let mut watched = Watched::default();
            watched.read_until(&mut viewer, |_| false).await;
            (watched.end_hash, watched.hasher.hex())
        });
    }
    let mut n = 0;
    while let Some(result) = watching.join_next().await {
        let (end_hash, hash) = result.unwrap();
        assert_eq!(end_hash.as_deref(), Some(expected.as_str()));
        assert_eq!(hash, expected, "a viewer's copy differs");
        n += 1;
    }
    assert_eq!(n, 199);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_writes_batched_viewers_receive_every_frame_in_order_in_few_writes() {
    // Two viewers, each waiting 2 ÷ 10 s = 200 ms after each write: the frames flushed every
    // 20 ms meanwhile go out together in its next write.
    let pause = Duration::from_millis(200);
    let server = TestServer::start(ServerConfig {
        viewer_writes: ViewerWriteBudget {
            writes_per_s: 10,
            from_viewers: 1,
            wait_max: pause,
        },
        ..ServerConfig::default()
    })
    .await;
    let mut starter = connect(&server).await;
    send_text(
        &mut starter,
        r#"{"type":"live_start","scenario":"request-response","seed":3,"until_s":3,
            "knobs":{"read_rate_per_s":50,"products_per_order":8,"product_down_for_s":0,
                     "product_slow_for_s":0,"link_latency_ms":1}}"#,
    )
    .await;
    // The watcher asks once the run has started.
    let run = live_run_started(&server).await;
    let mut watcher = connect(&server).await;
    send_text(&mut watcher, r#"{"type":"live_watch"}"#).await;
    let (started, watched) = tokio::join!(receive_timed(&mut starter), receive_timed(&mut watcher));
    let trace = run.trace();
    for (who, (received, arrivals, elapsed)) in [("starter", started), ("watcher", watched)] {
        assert_eq!(received.trace.header, trace.header);
        assert!(
            received.trace.events == trace.events,
            "the {who} received every event, in order"
        );
        assert_eq!(received.end_hash, trace.hash_hex());
        assert_eq!(received.end_events, trace.events.len() as u64);
        // Frames that arrive within 10 ms of the one before came in the same write (or the
        // server wrote twice in 10 ms, which a wait of 200 ms rules out).
        let writes = 1 + arrivals
            .windows(2)
            .filter(|pair| pair[1] - pair[0] > Duration::from_millis(10))
            .count();
        let writes_max = (elapsed.as_secs_f64() / pause.as_secs_f64()).ceil() as usize + 6;
        println!(
            "{who}: {} events in {} frames, {writes} writes in {elapsed:?}",
            trace.events.len(),
            received.n_event_frames + 2,
        );
        assert!(
            received.n_event_frames > 3 * writes_max,
            "the run made frames enough to batch: {}",
            received.n_event_frames
        );
        assert!(
            writes <= writes_max,
            "{writes} writes in {elapsed:?}, {writes_max} at most with a pause of {pause:?}"
        );
    }
    server.stop().await;
}

/// Reads one whole live run like [`support::receive_trace`], with the arrival of each frame and
/// the time from the first to the last.
async fn receive_timed(viewer: &mut Viewer) -> (support::Received, Vec<Instant>, Duration) {
    let mut arrivals = Vec::new();
    let mut header = None;
    let mut events = Vec::new();
    let mut n_event_frames = 0;
    loop {
        let frame = next_frame(viewer).await;
        arrivals.push(Instant::now());
        match (frame, &header) {
            (ServerFrame::Header(first), None) => header = Some(first),
            (ServerFrame::Events { events: batch }, Some(_)) => {
                n_event_frames += 1;
                events.extend(batch);
            }
            (
                ServerFrame::End {
                    trace_hash,
                    events: n,
                },
                Some(_),
            ) => {
                let elapsed = *arrivals.last().unwrap() - arrivals[0];
                let received = support::Received {
                    trace: shared::protocol::Trace {
                        header: header.unwrap(),
                        events,
                    },
                    end_hash: trace_hash,
                    end_events: n,
                    n_event_frames,
                };
                return (received, arrivals, elapsed);
            }
            (other, _) => panic!("expected a header, events, then an end; got {other:?}"),
        }
    }
}

/// The server's live run, once a viewer's `live_start` has started it.
async fn live_run_started(server: &TestServer) -> std::sync::Arc<backend::live::LiveRun> {
    loop {
        if let Some(run) = server.state.live() {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
