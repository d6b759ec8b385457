//! End to end, the player and sharing: seeking back and forth shows identical screens at the same
//! time; a copied address reproduces the run and the position; embeds obey `postMessage` and
//! never hear each other; hundreds of messages in flight are painted on the canvas.

use crosstalk_tests::{Backend, Browser, start_backend, start_browser};
use serde_json::Value;
use std::time::Duration;

// Generous: several headless Chromiums share two cores while the tests run in parallel.
const READY: Duration = Duration::from_secs(60);

/// The playhead, in microseconds, as the clock shows it.
async fn now_us(browser: &Browser) -> u64 {
    browser
        .js("return Number(document.querySelector('#clock').dataset.nowUs)")
        .await
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Seeks with the timeline, as a person dragging it would, and waits until every view has
/// caught up with the new time.
async fn seek_ms(browser: &Browser, ms: u64) {
    browser
        .js(&format!(
            "const s = document.querySelector('#seek'); s.value = '{ms}';
             s.dispatchEvent(new Event('input', {{ bubbles: true }})); return true;"
        ))
        .await;
    browser
        .wait_until(
            &format!(
                "return document.querySelector('#clock').dataset.nowUs === '{}'",
                ms * 1_000
            ),
            READY,
            &format!("the playhead at {ms} ms"),
        )
        .await;
    settle(browser).await;
}

/// Waits for two animation frames and a moment, so pending view updates are drawn.
async fn settle(browser: &Browser) {
    browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 150)));",
            vec![],
        )
        .await
        .unwrap();
}

/// A window tall enough for every view at once: off screen the event log holds still until it
/// is scrolled back into view (frontend/src/components/event_log.rs), and these tests compare
/// what every view shows.
const TALL: (u32, u32) = (1280, 2600);

/// What the screen shows, as the markup of every view (the map, the numbers, the tables, the
/// log, the sequence diagram and the charts), without the parts that animate by themselves.
async fn screen(browser: &Browser) -> String {
    let script = "
        const parts = ['#map', '.metrics', '.tables', '#event-log', '#sequence', '.charts',
                       '#narration', '#clock'];
        return parts.map(sel => {
            const e = document.querySelector(sel);
            return sel + ': ' + (e ? e.outerHTML : '(none)');
        }).join('\\n');";
    browser
        .js(script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeking_back_and_forth_shows_identical_screens() {
    let backend = start_backend().await;
    let browser = start_browser(TALL.0, TALL.1).await;
    let url = format!(
        "http://{}/?scenario=eventual-consistency&seed=6&autoplay=0",
        backend.addr
    );
    browser.open_and_wait(&url, READY).await;
    // Times with messages in flight, stale copies and queued events; visited in an order that
    // goes forward, far back, and forward again.
    let times_ms = [12_345, 3_000, 25_500, 12_345, 700, 25_500, 3_000];
    let mut first_seen = std::collections::BTreeMap::new();
    for ms in times_ms {
        seek_ms(&browser, ms).await;
        let shown = screen(&browser).await;
        assert!(shown.contains("data-service=\"Order\""), "the map is drawn");
        match first_seen.get(&ms) {
            None => {
                first_seen.insert(ms, shown);
            }
            Some(before) => {
                assert!(
                    *before == shown,
                    "at {ms} ms the screen differs from the first visit:\n{}",
                    first_difference(before, &shown)
                )
            }
        }
    }
    // The screens at different times do differ: the comparison can fail.
    assert_ne!(first_seen[&3_000], first_seen[&25_500]);
    // Stepping moves to the next and the previous event exactly.
    seek_ms(&browser, 12_345).await;
    browser.click("#step-forward").await;
    settle(&browser).await;
    let next = now_us(&browser).await;
    assert!(next > 12_345_000, "stepped forward to {next}");
    browser.click("#step-back").await;
    settle(&browser).await;
    let back = now_us(&browser).await;
    assert!(back <= 12_345_000, "stepped back to {back}");
    assert!(
        browser.console_errors().await.is_empty(),
        "{:?}",
        browser.console_errors().await
    );
    browser.close().await;
}

fn first_difference(a: &str, b: &str) -> String {
    let at = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let from = at.saturating_sub(120);
    format!(
        "first: …{}…\nlater: …{}…",
        a.chars().skip(from).take(300).collect::<String>(),
        b.chars().skip(from).take(300).collect::<String>()
    )
}

/// Presses `key` on the page, as the keyboard would.
async fn press(browser: &Browser, key: &str) {
    browser
        .js(&format!(
            "document.body.dispatchEvent(new KeyboardEvent('keydown', {{ key: {key:?}, bubbles: true }})); return true;"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_reproduces_the_run_and_the_position() {
    let backend = start_backend().await;
    let browser = start_browser(TALL.0, TALL.1).await;
    let url = format!(
        "http://{}/?scenario=request-response&seed=11&k.link_latency_ms=55&autoplay=0",
        backend.addr
    );
    let hash = browser.open_and_wait(&url, READY).await;
    // Change what a person would: the position, the speed, loop, a selection, a hidden view.
    seek_ms(&browser, 9_876).await;
    press(&browser, "+").await;
    press(&browser, "+").await;
    press(&browser, "l").await;
    browser
        .js("document.querySelector('#map .service[data-service=\"Product\"]').dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;")
        .await;
    browser
        .js("const c = document.querySelector('input[data-view=\"log\"]'); c.click(); return true;")
        .await;
    // The address follows, once the state has settled.
    browser
        .wait_until(
            "return location.search.includes('t=9.876') && location.search.includes('loop=1') \
             && location.search.includes('sel=service%3AProduct') && location.search.includes('views=')",
            READY,
            "the address to carry the state",
        )
        .await;
    let address = browser
        .js("return location.href")
        .await
        .as_str()
        .unwrap()
        .to_string();
    println!("address: {address}");
    assert!(
        address.contains("speed=0.5"),
        "0.1× stepped up twice: {address}"
    );
    assert!(address.contains("k.link_latency_ms=55"), "{address}");
    let before = screen(&browser).await;
    // The Copy link button, one click away beside the map, gives the same address.
    browser.click("#share-drawer summary").await;
    browser.click("#copy-link").await;
    browser
        .wait_until(
            "return !!document.querySelector('#shared-text')",
            READY,
            "the link",
        )
        .await;
    let copied = browser
        .js("return document.querySelector('#shared-text').value")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(copied, address);

    // A fresh browser opening the address sees the same run, at the same place.
    let other = start_browser(TALL.0, TALL.1).await;
    assert_eq!(other.open_and_wait(&address, READY).await, hash);
    other
        .wait_until(
            "return document.querySelector('#clock').dataset.nowUs === '9876000'",
            READY,
            "the playhead from the address",
        )
        .await;
    settle(&other).await;
    assert_eq!(other.text("#speed-value").await, "0.5×");
    assert_eq!(
        other
            .js("return document.querySelector('#loop').getAttribute('aria-pressed')")
            .await,
        Value::from("true")
    );
    assert_eq!(
        other
            .js("return document.querySelector('#map .service.selected')?.dataset.service")
            .await,
        Value::from("Product")
    );
    assert_eq!(other.count("#event-log").await, 0, "the log stays hidden");
    let after = screen(&other).await;
    assert!(before == after, "{}", first_difference(&before, &after));
    // The Embed button gives an iframe of the same run in embed mode.
    browser.click("#embed").await;
    browser
        .wait_until(
            "return document.querySelector('#shared-text')?.value.startsWith('<iframe')",
            READY,
            "the embed snippet",
        )
        .await;
    let snippet = browser
        .js("return document.querySelector('#shared-text').value")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        snippet.contains("embed=1") && snippet.contains("seed=11"),
        "{snippet}"
    );
    assert!(
        snippet.contains("width=\"800\" height=\"500\""),
        "{snippet}"
    );
    other.close().await;
    browser.close().await;
}

/// Opens a host page holding an embed per id, collecting their answers in
/// `window.answers`.
async fn host_with_embeds(browser: &Browser, backend: &Backend, ids: &[&str]) {
    // A page of the same origin as the embeds (any will do), so a failure can show what the
    // frames say; the embeds would answer a host of any origin just the same.
    let host = format!("http://{}/healthz", backend.addr);
    browser.client.goto(&host).await.unwrap();
    let frames: String = ids
        .iter()
        .map(|id| {
            format!(
                "<iframe id='{id}' width='800' height='500' src='http://{}/?scenario=request-response&seed=3&embed=1&autoplay=0&id={id}'></iframe>",
                backend.addr
            )
        })
        .collect();
    browser
        .js(&format!(
            "window.answers = [];
             window.addEventListener('message', e => window.answers.push(e.data));
             document.body.innerHTML = {frames:?};
             return true;"
        ))
        .await;
    for id in ids {
        let ready =
            format!("return answers.some(a => a.crosstalkEmbed === 'ready' && a.id === '{id}')");
        let deadline = std::time::Instant::now() + READY;
        while browser.js(&ready).await != Value::Bool(true) {
            let answers = browser.js("return JSON.stringify(answers)").await;
            let frame = browser
                .js(&format!(
                    "return document.getElementById('{id}').contentDocument?.body?.innerText \
                     ?? '(cross-origin)'"
                ))
                .await;
            assert!(
                std::time::Instant::now() < deadline,
                "embed {id} never said it was ready; answers so far: {answers}; its page: {frame}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Posts `command` to embed `id` and returns its answer.
async fn command(browser: &Browser, id: &str, command: &str) -> Value {
    let count = browser.js("return answers.length").await.as_u64().unwrap();
    browser
        .js(&format!(
            "document.getElementById('{id}').contentWindow.postMessage({command}, '*'); return true;"
        ))
        .await;
    browser
        .wait_until(
            &format!("return answers.slice({count}).some(a => a.id === '{id}' && a.crosstalkEmbed !== 'ready')"),
            READY,
            &format!("{id} to answer {command}"),
        )
        .await;
    browser
        .js(&format!(
            "return answers.slice({count}).find(a => a.id === '{id}' && a.crosstalkEmbed !== 'ready')"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeds_obey_post_message_and_do_not_interfere() {
    let backend = start_backend().await;
    let browser = start_browser(1700, 600).await;
    host_with_embeds(&browser, &backend, &["a", "b"]).await;

    let a = command(&browser, "a", "{crosstalk: 'seek', t: 4}").await;
    assert_eq!(
        (a["t"].as_f64(), a["playing"].as_bool()),
        (Some(4.0), Some(false))
    );
    let a = command(&browser, "a", "{crosstalk: 'play'}").await;
    assert_eq!(a["playing"], Value::from(true));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let a = command(&browser, "a", "{crosstalk: 'pause'}").await;
    let b = command(&browser, "b", "{crosstalk: 'state'}").await;
    assert!(a["t"].as_f64().unwrap() > 4.0, "a played on: {a}");
    assert_eq!(a["playing"], Value::from(false));
    assert_eq!(
        (b["t"].as_f64(), b["playing"].as_bool()),
        (Some(0.0), Some(false)),
        "b did not move"
    );

    let b = command(&browser, "b", "{crosstalk: 'speed', speed: 2}").await;
    assert_eq!(b["speed"].as_f64(), Some(2.0));
    let b = command(&browser, "b", "{crosstalk: 'loop', loop: true}").await;
    assert_eq!(b["loop"], Value::from(true));
    let a = command(&browser, "a", "{crosstalk: 'state'}").await;
    assert_eq!(
        (a["speed"].as_f64(), a["loop"].as_bool()),
        (Some(0.1), Some(false)),
        "a kept its own"
    );

    // Knobs: a bad one is refused with a reason; a good one runs again.
    let bad = command(&browser, "b", "{crosstalk: 'set', knobs: {warp: 9}}").await;
    assert_eq!(bad["crosstalkEmbed"], Value::from("error"));
    assert!(bad["message"].as_str().unwrap().contains("warp"), "{bad}");
    let readies = "return answers.filter(a => a.crosstalkEmbed === 'ready' && a.id === 'b').length";
    let before = browser.js(readies).await.as_u64().unwrap();
    command(
        &browser,
        "b",
        "{crosstalk: 'set', seed: 8, knobs: {product_down_for_s: 0}}",
    )
    .await;
    browser
        .wait_until(
            &format!("{readies} > {before}"),
            READY,
            "b to run again and announce it",
        )
        .await;
    let unknown = command(&browser, "a", "{crosstalk: 'dance'}").await;
    assert!(
        unknown["message"].as_str().unwrap().contains("dance"),
        "{unknown}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_in_flight_are_painted_on_the_canvas() {
    // The frame benchmark's trace (`scripts/bench.sh frames`), played as a recorded trace.
    let body = crosstalk_tests::synthetic::synthetic_trace(500).to_jsonl();
    let traces = axum::Router::new().route(
        "/bench/500.jsonl",
        axum::routing::get(move || async move { body }),
    );
    let backend = crosstalk_tests::start_backend_with(traces).await;
    let browser = start_browser(1280, 900).await;
    let url = format!(
        "http://{}/?source=recorded&trace=/bench/500.jsonl&views=map&speed=1&loop=1&t=2",
        backend.addr
    );
    browser.open_and_wait(&url, READY).await;
    browser
        .wait_until(
            "return document.querySelector('#message-canvas')?.dataset.messages === '500'",
            READY,
            "500 messages painted on the canvas",
        )
        .await;
    assert_eq!(browser.count("#map .message").await, 0, "none drawn in SVG");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_that_cannot_be_played_says_why_and_leaves_nothing_to_press() {
    // A recorded trace naming a service its header does not list (service 5 of 3).
    let run = engine::simulate(&shared::protocol::RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: 2.0,
        knobs: Default::default(),
        faults: Vec::new(),
    })
    .expect("a run");
    let mut lines: Vec<String> = run.to_jsonl().lines().map(str::to_string).collect();
    lines.insert(
        3,
        r#"{"at":1000,"type":"service_down","service":5}"#.to_string(),
    );
    let body = lines.join("\n");
    let traces = axum::Router::new().route(
        "/bad.jsonl",
        axum::routing::get(move || async move { body }),
    );
    let backend = crosstalk_tests::start_backend_with(traces).await;
    let browser = start_browser(1280, 900).await;
    let url = format!("http://{}/?source=recorded&trace=/bad.jsonl", backend.addr);
    browser.client.goto(&url).await.expect("open the page");
    browser
        .wait_until(
            "return (document.querySelector('#status')?.textContent ?? '').includes('service 5 is not one of')",
            READY,
            "the status line saying why the trace cannot be played",
        )
        .await;
    let status = browser.text("#status").await;
    assert!(
        status.contains("line 4: service 5 is not one of the header's 3 services"),
        "{status}"
    );
    // The player offers nothing to play: its buttons are disabled and none says "Replay".
    for id in ["#step-back", "#play", "#step-forward"] {
        let disabled = browser
            .js(&format!("return document.querySelector('{id}').disabled"))
            .await;
        assert_eq!(disabled, serde_json::Value::Bool(true), "{id}");
    }
    assert_eq!(browser.text("#play .play-label").await, "Play");
    // Nor anything to break: the fault form's target list and its button are disabled.
    for id in ["#fault-target", "#fault-inject"] {
        let disabled = browser
            .js(&format!("return document.querySelector('{id}').disabled"))
            .await;
        assert_eq!(disabled, serde_json::Value::Bool(true), "{id}");
    }
    browser.close().await;
}
