//! Resilience on request/response, in numbers: deadlines, retries (with and without a retry
//! budget) and a circuit breaker, each measured against none over several seeds.

use shared::metrics::summarize;
use shared::protocol::{RunRequest, RunSummary, Trace};
use shared::scenario::simulate;

const SEEDS: [u64; 4] = [1, 2, 3, 4];

fn run(seed: u64, knobs: &[(&str, f64)]) -> Trace {
    simulate(&RunRequest {
        scenario: "request-response".into(),
        seed,
        until_s: 30.0,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: Vec::new(),
    })
    .expect("valid request")
}

/// The numbers of one run that the lessons compare.
#[derive(Debug)]
struct Row {
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
    degraded: u64,
    calls_per_read: f64,
    calls_received: u64,
    dropped_past_deadline: u64,
    breaker_opened: u64,
    calls_while_open: u64,
}

fn row(summary: &RunSummary) -> Row {
    let read = &summary.by_operation["read order"];
    Row {
        p50_ms: read.p50_us as f64 / 1000.0,
        p99_ms: read.p99_us as f64 / 1000.0,
        failed: read.failed,
        degraded: summary.resilience.degraded_reads,
        calls_per_read: summary.calls_by_operation["read order"].calls_per_op,
        calls_received: summary.resilience.calls_received,
        dropped_past_deadline: summary.resilience.dropped_past_deadline,
        breaker_opened: summary.resilience.breaker_opened,
        calls_while_open: summary.resilience.calls_while_breaker_open,
    }
}

/// A slow Product under load: 20 reads a second, Product five times slower from 3 s to 13 s
/// (a call's round trip then outlasts Order's 400 ms timeout), never down.
const SLOW_UNDER_LOAD: &[(&str, f64)] = &[
    ("read_rate_per_s", 20.0),
    ("pool_size", 16.0),
    ("product_slow_factor", 5.0),
    ("product_slow_at_s", 3.0),
    ("product_slow_for_s", 10.0),
    ("product_down_for_s", 0.0),
];

fn with(base: &[(&'static str, f64)], more: &[(&'static str, f64)]) -> Vec<(&'static str, f64)> {
    base.iter().chain(more).copied().collect()
}

#[test]
fn print_the_rows() {
    for seed in SEEDS {
        for (name, knobs) in [
            ("none", with(SLOW_UNDER_LOAD, &[])),
            ("retries", with(SLOW_UNDER_LOAD, &[("retries", 3.0)])),
            (
                "retries+budget",
                with(
                    SLOW_UNDER_LOAD,
                    &[("retries", 3.0), ("retry_budget_pct", 10.0)],
                ),
            ),
            ("breaker", with(SLOW_UNDER_LOAD, &[("breaker", 1.0)])),
            ("deadlines", with(SLOW_UNDER_LOAD, &[("deadlines", 1.0)])),
            ("down none", vec![]),
            ("down breaker", vec![("breaker", 1.0)]),
        ] {
            let summary = summarize(&run(seed, &knobs));
            println!("seed {seed} {name}: {:?}", row(&summary));
        }
    }
}
