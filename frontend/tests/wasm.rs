//! The page's logic in WebAssembly, in headless Chromium: a run computed in the browser is
//! deterministic and hashes its JSON lines, the cached fold gives the same tables as a fold from
//! the start, and the player, in-flight views and stream checking behave as in native tests.
//!
//! Run with `cargo test -p frontend --target wasm32-unknown-unknown` (the runner is set in
//! `.cargo/config.toml`). On the host these tests compile to nothing.

#![cfg(target_arch = "wasm32")]

use frontend::config::RunConfig;
use frontend::player::Player;
use frontend::source::{StreamChange, StreamReceiver, compute_in_page};
use frontend::trace_index::{FlightState, TraceIndex};
use frontend::view_model;
use shared::fold::WorldState;
use shared::protocol::{RunRequest, ServerFrame};
use shared::time::Micros;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn request(scenario: &str, seed: u64) -> RunRequest {
    RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: 30.0,
        knobs: Default::default(),
        faults: Vec::new(),
    }
}

/// A fold from the start as the page folds (a sparing world, which recalls a table's history
/// from the events before when a read first observes it), to compare the index's cached worlds with.
fn fold_from_scratch(index: &TraceIndex, t: Micros) -> WorldState {
    let mut state = WorldState::sparing(index.header());
    for event in index.events().iter().take_while(|e| e.at <= t) {
        state.apply_stored(&event, index.events());
    }
    state
}

#[wasm_bindgen_test]
fn a_run_in_webassembly_is_deterministic_and_hashes_its_json_lines() {
    // WebAssembly against native code is checked end to end (tests/e2e.rs), where both run.
    // Here: the same request twice gives one hash, and the hash is that of the trace's JSON lines
    // as the backend would stream them.
    let (config, _) = RunConfig::from_query("");
    let (index, hash) = compute_in_page(&config.request()).unwrap();
    let (_, again) = compute_in_page(&config.request()).unwrap();
    assert_eq!(hash, again);
    assert_eq!(hash.len(), 16);
    assert!(index.is_complete());
    let trace = engine::simulate(&config.request()).unwrap();
    let reread = shared::protocol::Trace::from_jsonl(&trace.to_jsonl()).unwrap();
    assert_eq!(reread.hash_hex(), hash);
    assert_eq!(reread.events, index.events().to_vec());
}

#[wasm_bindgen_test]
fn cached_state_equals_a_fold_from_the_start_in_both_directions() {
    for scenario in ["request-response", "eventual-consistency", "event-driven"] {
        let (mut index, _) = compute_in_page(&request(scenario, 3)).unwrap();
        for ms in [0, 250, 9_000, 15_500, 4_000, 29_999, 30_000, 100] {
            let t = Micros::from_millis(ms);
            let expected = fold_from_scratch(&index, t);
            let state = index.state_at(t);
            assert_eq!(*state, expected, "{scenario} at {ms} ms");
        }
    }
}

#[wasm_bindgen_test]
fn messages_are_in_flight_mid_run_and_progress_along_their_links() {
    let (index, _) = compute_in_page(&request("request-response", 1)).unwrap();
    let mut seen = 0;
    for ms in (1_000..9_000).step_by(7) {
        for flight in index.messages_in_flight_at(Micros::from_millis(ms), Micros::ZERO) {
            assert!((0.0..=1.0).contains(&flight.progress), "{flight:?}");
            assert_eq!(flight.state, FlightState::Moving);
            seen += 1;
        }
    }
    assert!(seen > 100, "only {seen} message sightings in 8 s of reads");
}

#[wasm_bindgen_test]
fn product_down_fails_reads_and_shows_on_the_map() {
    let (mut index, _) = compute_in_page(&request("request-response", 1)).unwrap();
    let header = index.header().clone();
    let at = Micros::from_secs(14);
    let services = view_model::services(&header, index.state_at(at));
    let product = services.iter().find(|s| s.name == "Product").unwrap();
    assert!(!product.up);
    assert_eq!(product.aria_label(), "Product service, down");
    let metrics = view_model::metrics(index.state_at(Micros::from_secs(30)), Micros::from_secs(30));
    let read = metrics.ops.iter().find(|op| op.id_stem == "read").unwrap();
    assert!(read.failed > 0, "{metrics:?}");
}

#[wasm_bindgen_test]
fn the_player_walks_a_whole_run_at_60_frames_a_second() {
    let (index, _) = compute_in_page(&request("eventual-consistency", 2)).unwrap();
    let end = index.header().until;
    let mut player = Player::new(end);
    player.set_available(index.playable_until());
    player.set_speed(5.0);
    player.play();
    let mut frames = 0;
    while player.is_playing() {
        player.advance(1000.0 / 60.0);
        frames += 1;
        assert!(frames < 10_000, "the player never reached the end");
    }
    assert_eq!(player.now(), end);
    // 30 s at 5× is 6 s of screen time: about 360 frames.
    assert!((355..=365).contains(&frames), "{frames} frames");
}

#[wasm_bindgen_test]
fn a_streamed_trace_checks_its_hash() {
    let trace = engine::simulate(&request("eventual-consistency", 6)).unwrap();
    let mut receiver = StreamReceiver::default();
    receiver.on_open();
    let mut index = None;
    let header = ServerFrame::Header(trace.header.clone());
    assert_eq!(
        receiver.on_frame(header, &mut index),
        StreamChange::NewTrace
    );
    for chunk in trace.events.chunks(250) {
        let events = ServerFrame::Events {
            events: chunk.to_vec(),
        };
        receiver.on_frame(events, &mut index);
    }
    let end = ServerFrame::End {
        trace_hash: trace.hash_hex(),
        events: trace.events.len() as u64,
    };
    assert_eq!(receiver.on_frame(end, &mut index), StreamChange::Complete);
    assert_eq!(receiver.status().ready(), "true");
    assert_eq!(index.unwrap().events().len(), trace.events.len());
}

#[wasm_bindgen_test]
fn seeking_anywhere_in_the_browser_lands_on_the_fold_from_the_start() {
    // A long run, so the snapshots are many and spaced out.
    let mut long = request("eventual-consistency", 9);
    long.until_s = 120.0;
    let (mut index, _) = compute_in_page(&long).unwrap();
    let end = index.header().until;
    index.fold_to(end);
    for ms in [60_000, 5, 119_000, 30_001, 0, 90_500, 30_001] {
        let t = Micros::from_millis(ms);
        let applied = index.fold_to(t);
        assert!(
            applied <= frontend::snapshots::SNAPSHOT_EVERY_EVENTS * 2,
            "{ms} ms applied {applied} events"
        );
        assert_eq!(*index.state(), fold_from_scratch(&index, t), "at {ms} ms");
    }
}

#[wasm_bindgen_test]
fn stepping_looping_and_speed_keys_drive_the_player() {
    use frontend::keys::{KeyAction, key_action};
    let (index, _) = compute_in_page(&request("request-response", 2)).unwrap();
    let end = index.header().until;
    let mut player = Player::new(end);
    player.set_available(end);
    // Step through the first ten events: each lands on an event's time, strictly later.
    let mut t = Micros::ZERO;
    for _ in 0..10 {
        let next = index.next_event_time(t).unwrap();
        assert!(next > t);
        player.seek(next);
        t = player.now();
        assert_eq!(
            index.previous_event_time(index.next_event_time(t).unwrap()),
            Some(t)
        );
    }
    // `+` three times from 0.1× is 1×; looping wraps past the end.
    for _ in 0..3 {
        if let Some(KeyAction::Speed(faster)) = key_action("+", false) {
            player.step_speed(faster);
        }
    }
    assert_eq!(player.speed(), 1.0);
    player.set_looping(true);
    player.seek(end - Micros::from_millis(100));
    player.play();
    player.advance(200.0);
    assert_eq!(player.now(), Micros::from_millis(100));
    assert!(player.is_playing());
}

#[wasm_bindgen_test]
fn embed_commands_and_urls_read_the_same_in_the_browser() {
    use frontend::embed::EmbedCommand;
    let message =
        frontend::embed::JsonMessage::parse(r#"{"crosstalk": "seek", "t": 1.5}"#).unwrap();
    assert_eq!(
        EmbedCommand::from_message(&message),
        Ok(Some(EmbedCommand::Seek(Micros::from_millis(1_500))))
    );
    // The page reads the posted object itself, as JSON would carry it.
    let posted = |text: &str| js_sys::JSON::parse(text).unwrap();
    assert_eq!(
        EmbedCommand::from_message(&posted(r#"{"crosstalk": "seek", "t": 1.5}"#)),
        Ok(Some(EmbedCommand::Seek(Micros::from_millis(1_500))))
    );
    assert_eq!(
        EmbedCommand::from_message(&posted(
            r#"{"crosstalk": "set", "seed": 9, "until": 12, "knobs": {"b": 2, "a": 1}}"#
        )),
        Ok(Some(EmbedCommand::Set(frontend::embed::RunChange {
            scenario: None,
            seed: Some(9),
            until_s: Some(12.0),
            knobs: vec![("a".into(), 1.0), ("b".into(), 2.0)],
        })))
    );
    assert_eq!(EmbedCommand::from_message(&posted("[1]")), Ok(None));
    assert_eq!(
        EmbedCommand::from_message(&JsValue::from_str("play")),
        Ok(None)
    );
    let with_undefined = posted(r#"{"crosstalk": "step"}"#);
    js_sys::Reflect::set(&with_undefined, &"forward".into(), &JsValue::UNDEFINED).unwrap();
    assert_eq!(
        EmbedCommand::from_message(&with_undefined),
        Ok(Some(EmbedCommand::Step(true)))
    );
    let speed = posted(r#"{"crosstalk": "speed"}"#);
    js_sys::Reflect::set(&speed, &"speed".into(), &JsValue::from_f64(f64::NAN)).unwrap();
    assert!(
        EmbedCommand::from_message(&speed)
            .unwrap_err()
            .contains("needs a number")
    );
    // A posted object may contain itself (structured clone keeps cycles): read, not followed.
    let knobs = posted(r#"{"a": 1}"#);
    js_sys::Reflect::set(&knobs, &"itself".into(), &knobs).unwrap();
    let cyclic = posted(r#"{"crosstalk": "set"}"#);
    js_sys::Reflect::set(&cyclic, &"knobs".into(), &knobs).unwrap();
    assert_eq!(
        EmbedCommand::from_message(&cyclic).unwrap_err(),
        "knob \"itself\" must be a number"
    );
    for (text, expected) in [
        (r#"{"crosstalk": "set", "seed": -2}"#, "whole number"),
        (r#"{"crosstalk": "set", "seed": 2.5}"#, "whole number"),
        (r#"{"crosstalk": "set", "knobs": [1]}"#, "object"),
        (
            r#"{"crosstalk": "set", "knobs": {"a": "b"}}"#,
            "must be a number",
        ),
        (r#"{"crosstalk": 7}"#, "must name a command"),
    ] {
        let err = EmbedCommand::from_message(&posted(text)).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
    }
    let query = "?scenario=eventual-consistency&seed=3&until=20&source=sim&t=2&speed=2.5&loop=1\
                 &sel=op%3A4&embed=1&id=x";
    let (config, notes) = RunConfig::from_query(query);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(config.to_query(), query);
}

#[wasm_bindgen_test]
fn a_run_computed_in_slices_and_causation_chains_in_the_browser() {
    let request = request("request-response", 1);
    let (run, hash) = compute_in_page(&request).unwrap();
    let mut computation = frontend::computation::Computation::start(&request).unwrap();
    let mut sliced = frontend::trace_index::TraceIndex::new(computation.header().clone());
    while !computation.is_finished() {
        sliced.append(computation.slice(97));
    }
    assert_eq!(computation.hash_hex(), hash);
    assert_eq!(sliced.events().to_vec(), run.events().to_vec());
    let child = run.spans().find(|s| s.caused_by.is_some()).unwrap();
    let chain = frontend::selection::causation_chain(&run, child.msg);
    assert!(chain.has(child.msg) && chain.has(child.caused_by.unwrap()));
}

/// The page's WebAssembly memory, in bytes.
fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .expect("the module's memory")
        .buffer()
        .dyn_into::<js_sys::ArrayBuffer>()
        .expect("an ArrayBuffer")
        .byte_length() as f64
}

/// Issue 9's big run computed in the page's WebAssembly, then folded to its end (every
/// snapshot made): how much the module's memory grew per event, printed and held to 64 bytes.
/// Memory never shrinks and the tests share one instance, so run it alone for the true figure:
/// `cargo test -p frontend --target wasm32-unknown-unknown --test wasm -- big_run --nocapture`
/// (after the others it reuses memory they freed, and reads lower).
#[wasm_bindgen_test]
fn the_big_run_grows_the_pages_memory_by_at_most_64_bytes_an_event() {
    let request = shared::scenario::big_run(200.0);
    let before = wasm_memory_bytes();
    let (mut index, _) = compute_in_page(&request).unwrap();
    let computed = wasm_memory_bytes();
    index.fold_to(Micros::from_secs(1_000));
    let folded = wasm_memory_bytes();
    let n = index.events().len() as f64;
    assert_eq!(n, 378_523.0);
    let per_event = (folded - before) / n;
    web_sys::console::log_1(
        &format!(
            "big run, {n} events: WebAssembly memory grew {:.1} B/event computing, \
             {per_event:.1} B/event folded to the end",
            (computed - before) / n,
        )
        .into(),
    );
    assert!(per_event <= 64.0, "{per_event:.1} B/event");
}
