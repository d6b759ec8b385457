//! The frame-time budget: opens the page's benchmark mode (`?bench=<messages>&views=map`) in
//! headless Chromium with 500, 2,000 and 5,000 messages in flight, prints each one's frame
//! times (p50 and p95 of the work per frame, and of the time between frames), and exits 1 when
//! the work per frame at 5,000 messages misses the 60-frames-a-second budget at p95.
//!
//! Run with `scripts/bench.sh` (it builds the page first).

use crosstalk_tests::{start_backend, start_browser};
use std::time::Duration;

/// One frame at 60 frames a second.
const BUDGET_MS: f64 = 16.7;
/// The cases, in messages in flight; the budget applies to the last.
const CASES: [u32; 3] = [500, 2_000, 5_000];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backend = start_backend().await;
    let browser = start_browser(1280, 900).await;
    println!(
        "frame times in headless Chromium, map only, 1280×900, 600 frames after 60 of warm-up"
    );
    println!(
        "{:>9}  {:>13}  {:>13}  {:>17}  {:>17}",
        "messages", "work p50 ms", "work p95 ms", "interval p50 ms", "interval p95 ms"
    );
    let mut over_budget = false;
    for messages in CASES {
        let url = format!("http://{}/?bench={messages}&views=map", backend.addr);
        browser.client.goto(&url).await.expect("open the page");
        browser
            .wait_until(
                "return document.querySelector('#bench-result')?.dataset.done === 'true'",
                Duration::from_secs(180),
                "the benchmark's figures",
            )
            .await;
        let painted = browser
            .js("return Number(document.querySelector('#message-canvas').dataset.messages)")
            .await;
        let figures = browser
            .js("const d = document.querySelector('#bench-result').dataset;
                 return [d.workP50, d.workP95, d.intervalP50, d.intervalP95].map(Number)")
            .await;
        let f: Vec<f64> = figures
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default();
        let [work_p50, work_p95, interval_p50, interval_p95] = f[..] else {
            panic!("unreadable figures: {figures}");
        };
        println!(
            "{messages:>9}  {work_p50:>13.2}  {work_p95:>13.2}  {interval_p50:>17.2}  {interval_p95:>17.2}   (canvas painted {painted})"
        );
        if messages == CASES[CASES.len() - 1] && work_p95 > BUDGET_MS {
            over_budget = true;
        }
    }
    browser.close().await;
    if over_budget {
        eprintln!(
            "frame budget: 5,000 messages in flight take more than {BUDGET_MS} ms per frame at p95"
        );
        std::process::exit(1);
    }
    println!("frame budget: p95 work per frame at 5,000 messages within {BUDGET_MS} ms");
}
