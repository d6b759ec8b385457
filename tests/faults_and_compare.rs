//! End to end: a fault injected from the page at the playhead reruns exactly the native run with
//! that fault, and the page's comparison table has the native numbers.

use crosstalk_tests::{start_backend, start_browser};
use engine::simulate;
use shared::protocol::RunRequest;
use std::time::Duration;

const READY: Duration = Duration::from_secs(60);
const HASH_READY: &str =
    "const e = document.querySelector('#trace-hash'); return !!e && e.dataset.ready === 'true'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_injected_at_the_playhead_reruns_the_native_run_with_it() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    let url = format!(
        "http://{}/?scenario=eventual-consistency&seed=3&source=sim&t=6&autoplay=0",
        backend.addr
    );
    browser.client.goto(&url).await.unwrap();
    browser.capture_console_errors().await;
    browser.wait_until(HASH_READY, READY, "the first run").await;
    let before = browser.text("#trace-hash").await;
    // Clicking a service on the map makes it the fault's target.
    browser
        .js(
            "document.querySelector('#map g.service[data-service=\"Product\"]')
                 .dispatchEvent(new MouseEvent('click', {bubbles: true}));
             return true;",
        )
        .await;
    browser
        .wait_until(
            "return document.querySelector('#fault-target').value === 'Product'",
            READY,
            "Product chosen by a click on the map",
        )
        .await;
    // Break the link from the broker to Order for 5 s, from the playhead at 6 s.
    browser
        .js("const kind = document.querySelector('#fault-kind');
             kind.value = 'partition'; kind.dispatchEvent(new Event('change'));
             return true;")
        .await;
    browser
        .wait_until(
            "return [...document.querySelectorAll('#fault-target option')].some(o => o.value === 'Broker-Order')",
            READY,
            "links to choose from",
        )
        .await;
    browser
        .js("const target = document.querySelector('#fault-target');
             target.value = 'Broker-Order'; target.dispatchEvent(new Event('change'));
             document.querySelector('#fault-inject').click();
             return true;")
        .await;
    let rerun = "const e = document.querySelector('#trace-hash');
        return location.search.includes('fault=') && e.dataset.ready === 'true'";
    browser
        .wait_until(rerun, READY, "the rerun with the fault")
        .await;
    let after = browser.text("#trace-hash").await;
    let native = simulate(&RunRequest {
        scenario: "eventual-consistency".into(),
        seed: 3,
        until_s: 30.0,
        knobs: Default::default(),
        faults: vec!["partition:Broker-Order@6+5".into()],
    })
    .unwrap()
    .hash_hex();
    assert_ne!(after, before);
    assert_eq!(after, native, "the page ran partition:Broker-Order@6+5");
    assert!(
        browser
            .text("#fault-list")
            .await
            .contains("partition:Broker-Order@6+5")
    );
    let clock = browser
        .js("return document.querySelector('#clock').dataset.nowUs")
        .await;
    assert_eq!(
        clock.as_str(),
        Some("6000000"),
        "the playhead stayed where the fault went in"
    );
    assert!(browser.console_errors().await.is_empty());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comparison_in_the_page_has_the_native_numbers() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    let url = format!("http://{}/?seed=1&autoplay=0", backend.addr);
    browser.client.goto(&url).await.unwrap();
    browser.wait_until(HASH_READY, READY, "the page").await;
    browser
        .js("document.querySelector('#compare-run').click(); return true;")
        .await;
    let native = engine::compare(1).unwrap();
    let rows = format!(
        "return document.querySelectorAll('#compare-table tbody tr').length === {}",
        native.rows.len()
    );
    browser
        .wait_until(&rows, READY, "every pattern measured")
        .await;
    // The Markdown sits in a closed <details>: read its text, not what is visible.
    let markdown = browser
        .js("return document.querySelector('#compare-markdown').textContent")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    for row in &native.rows {
        let p50 = format!(
            "| {} | {:.0} ms |",
            row.title,
            row.read_p50_us as f64 / 1_000.0
        );
        assert!(markdown.contains(&p50), "{p50} missing from:\n{markdown}");
    }
    browser.close().await;
}
