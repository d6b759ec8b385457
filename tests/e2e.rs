//! End to end: the real backend serves the built page; headless Chromium opens it; messages move
//! and tables fill, for both sources; and the trace computed in WebAssembly hashes the same as the
//! trace computed natively.

use crosstalk_tests::{Backend, Browser, start_backend, start_browser};
use engine::simulate;
use serde_json::Value;
use shared::protocol::RunRequest;
use shared::scenario::find;
use std::collections::BTreeMap;
use std::time::Duration;

// Generous: three headless Chromiums share two cores while these tests run in parallel.
const READY: Duration = Duration::from_secs(60);

/// Knob values of a case, by name.
type KnobValues = &'static [(&'static str, f64)];

/// The hash of the same run computed natively.
fn native_hash(scenario: &str, seed: u64, knobs: &[(&str, f64)]) -> String {
    let request = RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: find(scenario).unwrap().default_until_s,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: Vec::new(),
    };
    simulate(&request).unwrap().hash_hex()
}

fn page_url(
    backend: &Backend,
    scenario: &str,
    seed: u64,
    source: &str,
    speed: f64,
    knobs: &[(&str, f64)],
) -> String {
    let knobs: String = knobs.iter().map(|(k, v)| format!("&k.{k}={v}")).collect();
    format!(
        "http://{}/?scenario={scenario}&seed={seed}&source={source}&speed={speed}{knobs}",
        backend.addr
    )
}

/// Request/response run by the real services, slow enough to watch: 4 reads a second over 500 ms
/// links, Product never down.
fn live_request_response_url(backend: &Backend) -> String {
    page_url(
        backend,
        "request-response",
        1,
        "live",
        1.0,
        &[
            ("read_rate_per_s", 4.0),
            ("link_latency_ms", 500.0),
            ("product_down_for_s", 0.0),
        ],
    )
}

/// Waits until the status line says the live run streams.
async fn wait_for_streaming(browser: &Browser) {
    browser
        .wait_until(
            "const e = document.querySelector('#status'); return !!e && e.textContent.includes('Streaming')",
            READY,
            "the live run streaming",
        )
        .await;
}

/// Centres of the messages on the map, by message id.
async fn message_positions(browser: &Browser) -> BTreeMap<String, (f64, f64)> {
    let script = "const out = {};
        document.querySelectorAll('#map .message').forEach(m => {
            const r = m.getBoundingClientRect();
            out[m.dataset.msg] = [r.x + r.width / 2, r.y + r.height / 2];
        });
        return out;";
    let Value::Object(map) = browser.js(script).await else {
        return BTreeMap::new();
    };
    map.into_iter()
        .map(|(id, xy)| {
            (
                id,
                (xy[0].as_f64().unwrap_or(0.0), xy[1].as_f64().unwrap_or(0.0)),
            )
        })
        .collect()
}

/// Waits for messages on the map and checks that at least one of them moves.
async fn assert_messages_move(browser: &Browser) {
    browser
        .wait_until(
            "return document.querySelectorAll('#map .message').length > 0",
            READY,
            "a message in flight",
        )
        .await;
    for _ in 0..50 {
        let before = message_positions(browser).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let after = message_positions(browser).await;
        let moved = before.iter().any(|(id, (x, y))| {
            after
                .get(id)
                .is_some_and(|(x2, y2)| (x2 - x).abs() + (y2 - y).abs() > 1.0)
        });
        if moved {
            return;
        }
    }
    let errors = browser.console_errors().await;
    let clock = browser
        .js("return document.querySelector('#clock')?.dataset.nowUs")
        .await;
    let page = browser.js("return location.href").await;
    panic!(
        "no message moved along its link in 50 tries on {page}; playhead at {clock} µs; console errors: {errors:?}"
    );
}

async fn assert_tables_filled(browser: &Browser) {
    // Off screen the tables and the log hold still (frontend/src/components/mod.rs,
    // `on_screen`): look at them first, and give them a frame to catch up.
    browser.scroll_into_view(".panels").await;
    let orders = r#"table.rows[data-service="Order"][data-table="orders"] tbody tr"#;
    let products = r#"table.rows[data-service="Product"][data-table="products"] tbody tr"#;
    browser
        .wait_until(
            &format!(
                "return document.querySelectorAll({orders:?}).length === 20 \
                 && document.querySelectorAll({products:?}).length === 8 \
                 && document.querySelectorAll('#event-log li').length > 0"
            ),
            READY,
            "Order's 20 orders, Product's 8 products and the log's events shown",
        )
        .await;
    assert_eq!(
        (browser.count(orders).await, browser.count(products).await),
        (20, 8),
        "Order's 20 orders and Product's 8 products are shown"
    );
    assert!(
        browser.count("#event-log li").await > 0,
        "the event log shows events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_computes_the_same_trace_as_native_code() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    let cases: [(&str, u64, KnobValues); 7] = [
        ("request-response", 1, &[]),
        (
            "request-response",
            987_654_321,
            &[("products_per_order", 5.0), ("link_latency_ms", 17.5)],
        ),
        ("eventual-consistency", 2, &[]),
        (
            "eventual-consistency",
            77,
            &[("broker_delay_ms", 900.0), ("rename_rate_per_s", 3.0)],
        ),
        ("event-driven", 3, &[]),
        (
            "event-driven",
            41,
            &[
                ("idempotent", 1.0),
                ("redelivery", 1.0),
                ("ack_timeout_ms", 180.0),
            ],
        ),
        // The defaults refuse some updates, crash the coordinator mid-rename and take Product down.
        ("gateway", 1, &[]),
    ];
    for (scenario, seed, knobs) in cases {
        println!("{scenario} seed {seed} knobs {knobs:?}");
        let in_wasm = browser
            .open_and_wait(
                &page_url(&backend, scenario, seed, "sim", 1.0, knobs),
                READY,
            )
            .await;
        assert_eq!(
            in_wasm,
            native_hash(scenario, seed, knobs),
            "{scenario} seed {seed}: WebAssembly vs native"
        );
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_page_messages_move_tables_fill_and_stale_copies_show() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    browser
        .open_and_wait(
            &page_url(&backend, "eventual-consistency", 4, "sim", 0.1, &[]),
            READY,
        )
        .await;
    assert_messages_move(&browser).await;
    assert_tables_filled(&browser).await;
    let stale = r#"return document.querySelectorAll('table.rows[data-service="Order"][data-table="product_names"] tr.stale').length > 0"#;
    browser
        .wait_until(stale, READY, "a stale row in Order's copy")
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_driven_shows_the_queue_that_waited_and_the_duplicates() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    // Under RabbitMQ's rule (the default) a slow consumer makes no duplicate; SQS's visibility
    // timeout does.
    let url = page_url(
        &backend,
        "event-driven",
        1,
        "sim",
        0.1,
        &[("redelivery", 1.0)],
    );
    browser
        .open_and_wait(&format!("{url}&t=29&autoplay=0"), READY)
        .await;
    browser
        .wait_until(
            "return !!document.querySelector('#metric-shipping-duplicates')",
            READY,
            "the delivery numbers",
        )
        .await;
    let deepest: u32 = browser
        .text("#metric-queue-shipping-max")
        .await
        .parse()
        .expect("a count");
    assert!(
        deepest >= 12,
        "Shipping's queue grew while it was down: {deepest}"
    );
    let waiting: u32 = browser
        .text("#metric-queue-shipping-now")
        .await
        .parse()
        .expect("a count");
    assert!(
        waiting <= 1,
        "and drained: at most the event in flight is left, not {waiting}"
    );
    let duplicates = browser.text("#metric-shipping-duplicates").await;
    assert!(duplicates.ends_with(" applied"), "{duplicates}");
    assert_eq!(browser.text("#metric-inventory-duplicates").await, "none");
    // The anomalies panel counts the same duplicates (docs/METRICS.md: the checker's
    // `duplicate_applied` is the sum of `duplicates_applied`), and clicking one lights its
    // events in the log.
    let shipping_applied = duplicates.trim_end_matches(" applied").to_string();
    assert_eq!(
        browser.text("#anomaly-count-duplicate_applied").await,
        shipping_applied
    );
    browser.click("#anomaly-list .anomaly-select").await;
    browser.scroll_into_view(".log").await;
    browser
        .wait_until(
            "return document.querySelectorAll('.event-log li.highlighted').length > 0",
            READY,
            "the anomaly's events highlighted in the log",
        )
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_backend_the_page_shows_the_same_run() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    let hash = browser
        .open_and_wait(
            &page_url(&backend, "request-response", 5, "backend", 0.1, &[]),
            READY,
        )
        .await;
    assert_eq!(
        hash,
        native_hash("request-response", 5, &[]),
        "the backend streams the native trace"
    );
    assert!(
        browser
            .text("#status")
            .await
            .to_lowercase()
            .contains("backend"),
        "the status names the source"
    );
    assert_messages_move(&browser).await;
    assert_tables_filled(&browser).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_services_from_the_page_a_crash_really_refuses_calls() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 1000).await;
    let url = live_request_response_url(&backend);
    browser.client.goto(&url).await.unwrap();
    browser.capture_console_errors().await;
    wait_for_streaming(&browser).await;
    assert_messages_move(&browser).await;
    assert_tables_filled(&browser).await;

    browser
        .js(r#"document.querySelector('button[aria-label="Crash Product"]').click(); return true"#)
        .await;
    browser
        .wait_until(
            r#"return !!document.querySelector('#map [data-service="Product"].down')"#,
            READY,
            "Product drawn down on the map",
        )
        .await;
    browser.scroll_into_view(".log").await;
    browser
        .wait_until(
            "return [...document.querySelectorAll('#event-log li')].some(li => li.textContent.includes('refused: the receiver is down'))",
            READY,
            "a refused call in the event log",
        )
        .await;
    if let Ok(png) = browser.client.screenshot().await {
        // For people checking the page by eye; the assertions above are the test.
        let _ = std::fs::write(std::env::temp_dir().join("crosstalk-e2e-live.png"), png);
    }
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

/// The page as served, with its Content-Security-Policy, in every mode a reader meets: the
/// full page with every drawer open, a live run streaming from real services, and the embed.
/// Nothing it does is blocked (a blocked style or script would leave part of the page undrawn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_raises_no_content_security_policy_violation() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 1000).await;
    let timeline_known = "return getComputedStyle(document.querySelector('.timeline')).getPropertyValue('--known').trim()";

    // At a tenth of real time, so a message stays on its link long enough to be seen moving.
    let full = page_url(&backend, "request-response", 1, "sim", 0.1, &[]);
    browser.open_and_wait(&full, READY).await;
    browser
        .js("document.querySelectorAll('details > summary').forEach(s => s.click()); return true")
        .await;
    assert_eq!(
        browser.count("details:not([open])").await,
        0,
        "every drawer is open"
    );
    assert_messages_move(&browser).await;
    assert_tables_filled(&browser).await;
    // The timeline's custom property is set through CSSOM, which the policy allows.
    assert_eq!(browser.js(timeline_known).await, "100.00%");
    assert_eq!(
        browser.csp_violations().await,
        Vec::<String>::new(),
        "{full}"
    );

    // Long enough that a loaded machine checks it while it still streams.
    let live = live_request_response_url(&backend) + "&until=120";
    browser.client.goto(&live).await.unwrap();
    wait_for_streaming(&browser).await;
    assert_messages_move(&browser).await;
    assert_tables_filled(&browser).await;
    assert_eq!(
        browser.csp_violations().await,
        Vec::<String>::new(),
        "{live}"
    );

    let embed = format!("{full}&embed=1");
    browser.open_and_wait(&embed, READY).await;
    assert_messages_move(&browser).await;
    assert_eq!(
        browser.csp_violations().await,
        Vec::<String>::new(),
        "{embed}"
    );

    // The recorder does see a violation when there is one: an inline style attribute.
    browser
        .js("document.body.setAttribute('style', 'outline: 1px solid red'); return true")
        .await;
    browser
        .wait_until(
            "return window.__crosstalkCspViolations.length > 0",
            READY,
            "the violation of an inline style attribute to be recorded",
        )
        .await;
    let violations = browser.csp_violations().await;
    assert!(
        violations[0].starts_with("style-src-attr blocked inline"),
        "{violations:?}"
    );
    browser.close().await;
}
