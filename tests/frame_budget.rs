//! The frame-time budget, in headless Chromium (a 1280×900 window; its page's viewport is 1280×757):
//!
//! - `synthetic`: a synthetic trace with exactly 500, 2,000 or 5,000 messages in flight at every
//!   moment (`crosstalk_tests::synthetic`), served by this command and played by the page as a
//!   recorded trace, map only; fails when 5,000 need more than 16.7 ms of work per frame at p95.
//! - `big-run`: the big request/response run of issue 9 (50 reads/s × 8 products, a pool of 64,
//!   1 ms links, no outage, 200 s: about 380,000 events) computed in the page with every view
//!   shown, played from 80 s at 1× and at 10× (looping, so 10× never idles at the end); then
//!   again scrolled down to the event log, which holds still while off screen. Prints how long the page took to compute it, how
//!   much its WebAssembly memory grew per event, and the frame times. Reported, not enforced.
//!
//! Frame times come from a script installed before any of the page's own (DevTools'
//! `Page.addScriptToEvaluateOnNewDocument`), so every build of the page is measured the same
//! way: its animation-frame callback runs first in every frame; "work" is from there to a
//! message it posts, which runs after the page's own callbacks, the updates they cause, style,
//! layout and paint; "interval" is the time between two frames' callbacks; "cpu/frame" is the
//! renderer main thread's CPU time per frame on average (DevTools' `ThreadTime`), which, unlike
//! the others, leaves out the time the thread waited for a core on a busy machine.
//!
//! - `compute`: how long the big run takes to compute in the page, in slices while the page
//!   plays (every view, and the map alone, paused), beside the same engine computing the same
//!   run at once in the same browser (`crosstalk-bench`'s `simulate_big_run`, built to
//!   WebAssembly by `scripts/bench.sh compute`: the simulation alone, without the page's index,
//!   so a lower bound of computing at once in the page).
//!
//! `frame-budget [synthetic|big-run|compute]` runs one part; no argument runs the first two.
//! Run with `scripts/bench.sh frames` or `scripts/bench.sh compute` (they build the page first).
//! `frame-budget profile [SPEED]` instead records the page's CPU profile (DevTools' `Profiler`)
//! for 5 s of the big run and prints where the time went, by function (WebAssembly functions
//! show Rust names only in a build of the page that keeps its name section).

use crosstalk_tests::synthetic::synthetic_trace;
use crosstalk_tests::{Browser, start_backend_with, start_browser};
use serde_json::json;
use std::time::Duration;

/// One frame at 60 frames a second.
const BUDGET_MS: f64 = 16.7;
/// The cases, in messages in flight; the budget applies to the last.
const CASES: [u32; 3] = [500, 2_000, 5_000];
/// Frames skipped before measuring, then measured.
const WARMUP_FRAMES: usize = 60;
const MEASURED_FRAMES: usize = 600;
/// The big run, as the page's address says it.
const BIG_RUN: &str = "scenario=request-response&until=200&k.read_rate_per_s=50\
     &k.products_per_order=8&k.pool_size=64&k.link_latency_ms=1&k.product_down_for_s=0\
     &k.product_slow_for_s=0&views=map,anomalies,sequence,charts,metrics,tables,log&t=80&loop=1";

/// The engine built to WebAssembly (`crosstalk-bench`), relative to the workspace.
const ENGINE_WASM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/wasm32-unknown-unknown/wasm-release/crosstalk_bench.wasm"
);
/// Times `simulate_big_run` of the engine served at `/bench/engine.wasm` once for warm-up, then
/// three times; leaves `[events, median ms]` in `window.__engineAtOnce`.
const ENGINE_AT_ONCE: &str = r#"
window.__engineAtOnce = null;
WebAssembly.instantiateStreaming(fetch('/bench/engine.wasm'), {}).then(({ instance }) => {
  const simulate = instance.exports.simulate_big_run;
  simulate();
  const times = [];
  let events = 0;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    events = simulate();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  window.__engineAtOnce = [events, times[1]];
}, e => { window.__engineAtOnce = [0, String(e)]; });
return true;
"#;

/// Keeps `[start, work, interval]` of the latest frames in `window.__frames`, and the page's
/// WebAssembly memory in `window.__wasmMemory` (Trunk's loader announces it).
const FRAME_RECORDER: &str = r#"
(() => {
  const frames = [];
  window.__frames = frames;
  const channel = new MessageChannel();
  const starts = [];
  let previous = null;
  channel.port1.onmessage = () => {
    const [start, interval] = starts.shift();
    frames.push([start, performance.now() - start, interval]);
    if (frames.length > 4000) frames.splice(0, 1000);
  };
  const frame = () => {
    const start = performance.now();
    requestAnimationFrame(frame);
    starts.push([start, previous === null ? null : start - previous]);
    previous = start;
    channel.port2.postMessage(0);
  };
  requestAnimationFrame(frame);
  addEventListener('TrunkApplicationStarted', e => {
    window.__wasmMemory = e.detail.wasm.memory;
    window.__wasmBytesAtStart = e.detail.wasm.memory.buffer.byteLength;
  });
})();
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let part = std::env::args().nth(1).unwrap_or_default();
    // The synthetic traces, served beside the page.
    let mut traces = axum::Router::new();
    // The engine alone, when built (`scripts/bench.sh compute` builds it).
    if let Ok(engine) = std::fs::read(ENGINE_WASM) {
        traces = traces.route(
            "/bench/engine.wasm",
            axum::routing::get(move || async move {
                ([(http::header::CONTENT_TYPE, "application/wasm")], engine)
            }),
        );
    }
    for messages in CASES {
        let body = synthetic_trace(messages).to_jsonl();
        traces = traces.route(
            &format!("/bench/{messages}.jsonl"),
            axum::routing::get(move || async move { body }),
        );
    }
    let backend = start_backend_with(traces).await;
    let browser = start_browser(1280, 900).await;
    browser
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": FRAME_RECORDER}),
        )
        .await;
    if part == "profile" {
        let speed = std::env::args().nth(2).unwrap_or_else(|| "1".into());
        profile(&browser, &backend.addr.to_string(), &speed).await;
        browser.close().await;
        return;
    }
    let mut over_budget = false;
    if part.is_empty() || part == "synthetic" {
        over_budget |= synthetic(&browser, &backend.addr.to_string()).await;
    }
    if part.is_empty() || part == "big-run" {
        big_run(&browser, &backend.addr.to_string(), None).await;
        // Off screen the event log holds still: measured again scrolled down to it, as its
        // reader sees the page.
        big_run(&browser, &backend.addr.to_string(), Some(".log")).await;
    }
    if part == "compute" {
        compute(&browser, &backend.addr.to_string()).await;
    }
    browser.close().await;
    if over_budget {
        eprintln!(
            "frame budget: 5,000 messages in flight take more than {BUDGET_MS} ms per frame at p95"
        );
        std::process::exit(1);
    }
}

/// The synthetic cases; true when the last misses the budget.
async fn synthetic(browser: &Browser, addr: &str) -> bool {
    println!(
        "frame times in headless Chromium, map only, 1280×900, {MEASURED_FRAMES} frames after {WARMUP_FRAMES} of warm-up"
    );
    println!(
        "{:>9}  {:>13}  {:>13}  {:>17}  {:>17}  {:>12}",
        "messages",
        "work p50 ms",
        "work p95 ms",
        "interval p50 ms",
        "interval p95 ms",
        "cpu/frame ms"
    );
    let mut over_budget = false;
    for messages in CASES {
        let url = format!(
            "http://{addr}/?source=recorded&trace=/bench/{messages}.jsonl&views=map&speed=1&loop=1&t=2"
        );
        open_computed(browser, &url).await;
        let painted = browser
            .js("return Number(document.querySelector('#message-canvas').dataset.messages)")
            .await;
        let f = measure_frames(browser).await;
        println!(
            "{messages:>9}  {:>13.2}  {:>13.2}  {:>17.2}  {:>17.2}  {:>12.2}   (canvas painted {painted})",
            f.work_p50, f.work_p95, f.interval_p50, f.interval_p95, f.per_frame.cpu_ms
        );
        if messages == CASES[CASES.len() - 1] && f.work_p95 > BUDGET_MS {
            over_budget = true;
        }
    }
    if !over_budget {
        println!("frame budget: p95 work per frame at 5,000 messages within {BUDGET_MS} ms");
    }
    over_budget
}

/// Opens `url` and waits until its whole trace is there.
async fn open_computed(browser: &Browser, url: &str) {
    browser.client.goto(url).await.expect("open the page");
    browser
        .wait_until(
            "const e = document.querySelector('#trace-hash'); return !!e && e.dataset.ready === 'true'",
            Duration::from_secs(300),
            "the whole trace",
        )
        .await;
}

/// Frame times, in milliseconds.
struct FrameFigures {
    work_p50: f64,
    work_p95: f64,
    interval_p50: f64,
    interval_p95: f64,
    /// The renderer's main thread's times per frame over the measured frames, on average. Its
    /// CPU time (DevTools' `ThreadTime`), unlike the work times, leaves out the time the thread
    /// waited for a core, so builds compare on a busy machine.
    per_frame: RendererTimes,
}

/// DevTools' `Performance.getMetrics` figures this benchmark reads, in ms (counts as they are),
/// and how many frames the recorder has seen.
#[derive(Clone, Copy)]
struct RendererTimes {
    /// The renderer main thread's CPU time (`ThreadTime`).
    cpu_ms: f64,
    /// Time in script (JavaScript and WebAssembly), style recalculation and layout
    /// (`ScriptDuration`, `RecalcStyleDuration`, `LayoutDuration`).
    script_ms: f64,
    style_ms: f64,
    layout_ms: f64,
    /// Every task on the main thread (`TaskDuration`): the above plus paint, compositing
    /// and the rest.
    task_ms: f64,
    /// Layouts and style recalculations (`LayoutCount`, `RecalcStyleCount`).
    layouts: f64,
    style_recalcs: f64,
    frames: f64,
}

impl RendererTimes {
    async fn now(browser: &Browser) -> RendererTimes {
        let metrics = browser.cdp("Performance.getMetrics", json!({})).await;
        let frames = browser.js("return window.__frames.length").await;
        let metric = |name: &str| {
            metrics["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["name"] == name)
                .and_then(|m| m["value"].as_f64())
                .unwrap_or(f64::NAN)
        };
        RendererTimes {
            cpu_ms: metric("ThreadTime") * 1e3,
            script_ms: metric("ScriptDuration") * 1e3,
            style_ms: metric("RecalcStyleDuration") * 1e3,
            layout_ms: metric("LayoutDuration") * 1e3,
            task_ms: metric("TaskDuration") * 1e3,
            layouts: metric("LayoutCount"),
            style_recalcs: metric("RecalcStyleCount"),
            frames: frames.as_f64().unwrap_or(f64::NAN),
        }
    }

    /// The figures from `earlier` to `self`, per frame.
    fn per_frame_since(&self, earlier: &RendererTimes) -> RendererTimes {
        let frames = self.frames - earlier.frames;
        RendererTimes {
            cpu_ms: (self.cpu_ms - earlier.cpu_ms) / frames,
            script_ms: (self.script_ms - earlier.script_ms) / frames,
            style_ms: (self.style_ms - earlier.style_ms) / frames,
            layout_ms: (self.layout_ms - earlier.layout_ms) / frames,
            task_ms: (self.task_ms - earlier.task_ms) / frames,
            layouts: (self.layouts - earlier.layouts) / frames,
            style_recalcs: (self.style_recalcs - earlier.style_recalcs) / frames,
            frames,
        }
    }
}

/// Measures the frames from now on: [`MEASURED_FRAMES`] after [`WARMUP_FRAMES`].
async fn measure_frames(browser: &Browser) -> FrameFigures {
    browser.cdp("Performance.enable", json!({})).await;
    browser.js("window.__frames.length = 0; return true").await;
    browser
        .wait_until(
            &format!("return window.__frames.length >= {WARMUP_FRAMES}"),
            Duration::from_secs(300),
            "the warm-up frames",
        )
        .await;
    let before = RendererTimes::now(browser).await;
    let enough = format!(
        "return window.__frames.length >= {}",
        WARMUP_FRAMES + MEASURED_FRAMES
    );
    browser
        .wait_until(&enough, Duration::from_secs(300), "the frames measured")
        .await;
    let per_frame = RendererTimes::now(browser).await.per_frame_since(&before);
    let frames = browser
        .js(&format!(
            "return window.__frames.slice({WARMUP_FRAMES}, {})",
            WARMUP_FRAMES + MEASURED_FRAMES
        ))
        .await;
    let rows: Vec<(f64, f64)> = frames
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get(1)?.as_f64()?, f.get(2)?.as_f64()?)))
        .collect();
    let mut work: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let mut interval: Vec<f64> = rows.iter().map(|r| r.1).collect();
    FrameFigures {
        work_p50: percentile(&mut work, 50.0),
        work_p95: percentile(&mut work, 95.0),
        interval_p50: percentile(&mut interval, 50.0),
        interval_p95: percentile(&mut interval, 95.0),
        per_frame,
    }
}

/// The big run with every view, at 1× and 10×, from the top of the page or scrolled to the
/// element `scrolled_to` selects.
async fn big_run(browser: &Browser, addr: &str, scrolled_to: Option<&str>) {
    let viewport = browser.js("return innerWidth + '×' + innerHeight").await;
    println!(
        "big run, every view, viewport {}, {}: http://{addr}/?{BIG_RUN}",
        viewport.as_str().unwrap_or_default(),
        scrolled_to.map_or("from the top".to_string(), |to| format!("scrolled to {to}"))
    );
    println!(
        "{:>6}  {:>10}  {:>8}  {:>9}  {:>11}  {:>11}  {:>15}  {:>15}  {:>12}",
        "speed",
        "compute ms",
        "events",
        "bytes/ev",
        "work p50 ms",
        "work p95 ms",
        "interval p50 ms",
        "interval p95 ms",
        "cpu/frame ms"
    );
    for speed in [1, 10] {
        let url = format!("http://{addr}/?{BIG_RUN}&speed={speed}");
        open_computed(browser, &url).await;
        if let Some(selector) = scrolled_to {
            browser.scroll_into_view(selector).await;
        }
        let status = browser.text("#status").await;
        let (compute_ms, events) = read_status(&status);
        let grown = browser
            .js("return window.__wasmMemory ? window.__wasmMemory.buffer.byteLength - window.__wasmBytesAtStart : -1")
            .await
            .as_f64()
            .unwrap_or(-1.0);
        // Measure from now: the frames while computing are not the player's.
        let f = measure_frames(browser).await;
        let now = browser
            .js("return (document.querySelector('#clock')?.textContent ?? '').trim()")
            .await;
        println!(
            "{:>5}×  {compute_ms:>10.0}  {events:>8}  {:>9.1}  {:>11.2}  {:>11.2}  {:>15.2}  {:>15.2}  {:>12.2}   (playhead {})",
            speed,
            if grown >= 0.0 && events > 0 {
                grown / events as f64
            } else {
                f64::NAN
            },
            f.work_p50,
            f.work_p95,
            f.interval_p50,
            f.interval_p95,
            f.per_frame.cpu_ms,
            now.as_str().unwrap_or_default(),
        );
        let t = f.per_frame;
        println!(
            "         per frame: script {:.2} ms, style {:.2} ms ({:.1} recalcs), layout {:.2} ms ({:.1} layouts), \
             rest of the tasks {:.2} ms (paint, compositing, …), CPU {:.2} ms",
            t.script_ms,
            t.style_ms,
            t.style_recalcs,
            t.layout_ms,
            t.layouts,
            t.task_ms - t.script_ms - t.style_ms - t.layout_ms,
            t.cpu_ms,
        );
    }
    println!(
        "  compute ms: as the status line says; bytes/ev: WebAssembly memory grown from the app's start \
         to the end of computing, per event (an upper bound of what the page holds: memory never shrinks); \
         cpu/frame ms: the renderer's main thread's CPU time per frame, on average (DevTools' ThreadTime), \
         which leaves out waiting for a core on a busy machine"
    );
}

/// How long the big run takes to compute: at once (the engine alone) and in the page, in
/// slices, with every view playing and with the map alone, paused.
async fn compute(browser: &Browser, addr: &str) {
    println!("computing the big run in headless Chromium, 1280×900");
    browser
        .client
        .goto(&format!("http://{addr}/bench/500.jsonl"))
        .await
        .expect("open a page of the server");
    browser.js(ENGINE_AT_ONCE).await;
    browser
        .wait_until(
            "return window.__engineAtOnce !== null",
            Duration::from_secs(300),
            "the engine's runs",
        )
        .await;
    let at_once = browser.js("return window.__engineAtOnce").await;
    let at_once_ms = at_once.get(1).and_then(|v| v.as_f64());
    match at_once_ms {
        Some(ms) => println!(
            "  at once, the engine alone (simulate_big_run, median of 3): {ms:.0} ms, {} events",
            at_once[0]
        ),
        None => {
            println!("  at once: no engine ({at_once}; build it with scripts/bench.sh compute)")
        }
    }
    let cases = [
        ("every view, playing at 1×", "&speed=1"),
        ("map alone, paused", "&speed=1&autoplay=0&views=map"),
    ];
    for (what, extra) in cases {
        let url = format!("http://{addr}/?{BIG_RUN}{extra}");
        open_computed(browser, &url).await;
        let status = browser.text("#status").await;
        let (elapsed_ms, events) = read_status(&status);
        let working =
            read_working_ms(&status).map_or("—".to_string(), |ms| format!("{ms:.0} ms"));
        let ratio = at_once_ms.map_or("—".to_string(), |at_once| {
            format!("{:.2}×", elapsed_ms / at_once)
        });
        println!(
            "  in the page, in slices, {what}: {elapsed_ms:.0} ms by the clock ({working} of it in slices), {events} events; {ratio} the engine at once"
        );
    }
}

/// Records 5 s of the big run's playback at `speed` with DevTools' sampling profiler and prints
/// the 40 functions that took the most time themselves.
async fn profile(browser: &Browser, addr: &str, speed: &str) {
    let url = format!("http://{addr}/?{BIG_RUN}&speed={speed}");
    open_computed(browser, &url).await;
    browser.cdp("Profiler.enable", json!({})).await;
    browser
        .cdp("Profiler.setSamplingInterval", json!({"interval": 200}))
        .await;
    browser.cdp("Profiler.start", json!({})).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let result = browser.cdp("Profiler.stop", json!({})).await;
    let profile = &result["profile"];
    let nodes = profile["nodes"].as_array().cloned().unwrap_or_default();
    let name_of: std::collections::BTreeMap<u64, String> = nodes
        .iter()
        .filter_map(|n| {
            let frame = &n["callFrame"];
            let name = frame["functionName"].as_str().unwrap_or_default();
            let name = if name.is_empty() {
                format!("(anonymous {})", frame["url"].as_str().unwrap_or_default())
            } else {
                name.to_string()
            };
            Some((n["id"].as_u64()?, name))
        })
        .collect();
    let samples = profile["samples"].as_array().cloned().unwrap_or_default();
    let deltas = profile["timeDeltas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut self_us: std::collections::BTreeMap<String, f64> = Default::default();
    let mut total_us = 0.0;
    // A sample's time is the delta to the next one.
    for (i, sample) in samples.iter().enumerate() {
        let delta = deltas.get(i + 1).and_then(|d| d.as_f64()).unwrap_or(0.0);
        let name = sample
            .as_u64()
            .and_then(|id| name_of.get(&id))
            .cloned()
            .unwrap_or_default();
        *self_us.entry(name).or_default() += delta;
        total_us += delta;
    }
    let mut ranked: Vec<(String, f64)> = self_us.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("profile of 5 s at {speed}×: {url}");
    for (name, us) in ranked.iter().take(40) {
        println!(
            "{:>8.1} ms {:>5.1} %  {}",
            us / 1000.0,
            us / total_us * 100.0,
            name.chars().take(140).collect::<String>()
        );
    }
}

/// `Computed in the page in 123 ms: 456 events, trace …` → (123, 456).
fn read_status(status: &str) -> (f64, u64) {
    let number_after = |marker: &str| {
        status.split(marker).nth(1).and_then(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
                .filter(|c| *c != ',')
                .collect();
            digits.parse::<f64>().ok()
        })
    };
    let compute_ms = number_after("page in ").unwrap_or(f64::NAN);
    let events = status
        .split(" events")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.replace(',', "").parse::<u64>().ok())
        .unwrap_or(0);
    (compute_ms, events)
}

/// `… in 123 ms (45 ms of it computing): …` → 45; `None` for a page that does not say.
fn read_working_ms(status: &str) -> Option<f64> {
    let rest = status.split(" ms (").nth(1)?;
    rest.split(" ms of it computing")
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

/// The `percent`th percentile (nearest rank) of `values`.
fn percentile(values: &mut [f64], percent: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((percent / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}
