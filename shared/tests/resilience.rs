//! Resilience on request/response, in numbers: deadlines, retries (with and without a retry
//! budget) and a circuit breaker, each measured against none over several seeds.

use engine::simulate;
use shared::metrics::summarize;
use shared::protocol::{RunRequest, RunSummary, Trace};

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

/// The numbers of one run that the lessons compare (each is printed, not each asserted on).
#[derive(Debug)]
#[allow(dead_code)]
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

fn rows(knobs: &[(&'static str, f64)]) -> Vec<(u64, Row)> {
    SEEDS
        .iter()
        .map(|&seed| (seed, row(&summarize(&run(seed, knobs)))))
        .collect()
}

/// Product with capacity under load: 4 workers at 20 ms a lookup (200 a second) and a queue of
/// up to 500, offered about 60 a second (20 reads of 3 products); slowed fivefold from 3 s to
/// 13 s it serves 40 a second, so work queues.
const SATURATED: &[(&str, f64)] = &[
    ("read_rate_per_s", 20.0),
    ("pool_size", 64.0),
    ("product_workers", 4.0),
    ("product_service_ms", 20.0),
    ("product_queue_max", 500.0),
    ("product_slow_factor", 5.0),
    ("product_slow_at_s", 3.0),
    ("product_slow_for_s", 10.0),
    ("product_down_for_s", 0.0),
];

fn product_queue_max(summary: &RunSummary) -> u32 {
    summary.capacity.get("Product").map_or(0, |c| c.waiting_max)
}

#[test]
fn without_a_budget_retries_make_a_storm_on_a_saturated_product_and_with_one_they_do_not() {
    for seed in SEEDS {
        let numbers = |more: &[(&'static str, f64)]| {
            let summary = summarize(&run(seed, &with(SATURATED, more)));
            (row(&summary), product_queue_max(&summary))
        };
        let (none, none_queue) = numbers(&[]);
        let (retries, retries_queue) = numbers(&[("retries", 3.0)]);
        let (budget, budget_queue) = numbers(&[("retries", 3.0), ("retry_budget_pct", 10.0)]);
        let (deadlines, deadlines_queue) = numbers(&[
            ("retries", 3.0),
            ("retry_budget_pct", 10.0),
            ("deadlines", 1.0),
        ]);
        let (breaker, breaker_queue) = numbers(&[("breaker", 1.0)]);
        let (storm_deadlines, storm_deadlines_queue) =
            numbers(&[("retries", 3.0), ("deadlines", 1.0)]);
        println!("  retries+deadlines queue {storm_deadlines_queue} {storm_deadlines:?}");
        // In the storm, deadlines let Product skip the calls whose caller gave up while they
        // waited: its queue stays short and more reads get through.
        assert!(storm_deadlines.dropped_past_deadline > 100, "seed {seed}");
        assert!(storm_deadlines_queue * 4 < retries_queue, "seed {seed}");
        assert!(storm_deadlines.failed < retries.failed, "seed {seed}");
        println!(
            "seed {seed}\n  none      queue {none_queue} {none:?}\n  retries   queue {retries_queue} {retries:?}\n  budget    queue {budget_queue} {budget:?}\n  +deadline queue {deadlines_queue} {deadlines:?}\n  breaker   queue {breaker_queue} {breaker:?}"
        );
        assert!(
            retries.calls_per_read > 1.3 * none.calls_per_read,
            "seed {seed}"
        );
        assert!(
            retries_queue > none_queue,
            "seed {seed}: the storm fills Product's queue"
        );
        assert!(
            retries.failed >= none.failed,
            "seed {seed}: retries do not save the reads"
        );
        assert!(
            budget.calls_per_read < 1.15 * none.calls_per_read,
            "seed {seed}"
        );
        assert!(budget_queue < retries_queue, "seed {seed}");
        assert!(deadlines.dropped_past_deadline > 0, "seed {seed}");
        assert!(breaker_queue <= none_queue, "seed {seed}");
        assert!(breaker.failed < none.failed, "seed {seed}");
    }
}

#[test]
fn retries_multiply_and_a_retry_budget_holds_them_near_the_calls_without() {
    let none = rows(SLOW_UNDER_LOAD);
    let retries = rows(&with(SLOW_UNDER_LOAD, &[("retries", 3.0)]));
    let budget = rows(&with(
        SLOW_UNDER_LOAD,
        &[("retries", 3.0), ("retry_budget_pct", 10.0)],
    ));
    for ((seed, none), ((_, retries), (_, budget))) in none.iter().zip(retries.iter().zip(&budget))
    {
        println!("seed {seed}\n  none    {none:?}\n  retries {retries:?}\n  budget  {budget:?}");
        assert!(
            retries.calls_per_read > none.calls_per_read * 1.08,
            "seed {seed}"
        );
        assert!(retries.calls_received > none.calls_received, "seed {seed}");
        assert!(
            retries.p99_ms > none.p99_ms * 1.5,
            "seed {seed}: retries wait out backoffs"
        );
        assert!(
            budget.calls_per_read < retries.calls_per_read,
            "seed {seed}"
        );
        assert!(
            budget.calls_received < retries.calls_received,
            "seed {seed}"
        );
        // At 10 %, the budget lets calls grow by at most about a tenth over none.
        assert!(
            budget.calls_received as f64 <= none.calls_received as f64 * 1.12,
            "seed {seed}"
        );
        assert!(budget.p99_ms < retries.p99_ms, "seed {seed}");
    }
}

#[test]
fn a_circuit_breaker_turns_failed_reads_into_fast_degraded_ones_and_spares_product() {
    let none = rows(SLOW_UNDER_LOAD);
    let breaker = rows(&with(SLOW_UNDER_LOAD, &[("breaker", 1.0)]));
    for ((seed, none), (_, breaker)) in none.iter().zip(&breaker) {
        println!("seed {seed}\n  none    {none:?}\n  breaker {breaker:?}");
        assert_eq!(none.degraded, 0, "seed {seed}");
        assert!(breaker.degraded > 100, "seed {seed}");
        assert!(breaker.failed * 10 < none.failed, "seed {seed}");
        assert!(breaker.p99_ms < none.p99_ms, "seed {seed}");
        assert!(breaker.calls_received < none.calls_received, "seed {seed}");
        assert!(
            breaker.breaker_opened >= 2,
            "seed {seed}: it probes and opens again"
        );
        assert_eq!(breaker.calls_while_open, 0, "seed {seed}");
    }
}

#[test]
fn while_product_is_down_the_breaker_answers_degraded_and_probes_until_it_is_back() {
    // Product is down from 10 s to 18 s (the scenario's default outage), never slow.
    let knobs = [("product_slow_for_s", 0.0), ("breaker", 1.0)];
    for seed in SEEDS {
        let trace = run(seed, &knobs);
        let summary = summarize(&trace);
        let mut states = Vec::new();
        for event in &trace.events {
            if let shared::protocol::Event::CircuitChanged { state, .. } = &event.event {
                states.push((event.at.as_secs_f64(), state.name()));
            }
        }
        println!("seed {seed}: {:?}\n  breaker: {states:?}", row(&summary));
        let opened = states.iter().find(|(_, s)| *s == "open").expect("it opens");
        assert!(
            (10.0..12.5).contains(&opened.0),
            "seed {seed}: opens soon after 10 s"
        );
        let probes = states.iter().filter(|(_, s)| *s == "half-open").count();
        assert!(
            probes >= 3,
            "seed {seed}: it probes about once a second while down"
        );
        let (closed_at, last) = *states.last().unwrap();
        assert_eq!(last, "closed", "seed {seed}: closes once Product is back");
        assert!((18.0..20.0).contains(&closed_at), "seed {seed}");
        assert!(summary.resilience.degraded_reads > 0);
        assert_eq!(summary.resilience.calls_while_breaker_open, 0);
    }
}

#[test]
fn deadlines_let_product_drop_lookups_nobody_waits_for() {
    // Slowed twelvefold, a call reaches Product after about 480 ms, past Order's 400 ms.
    let slow = [
        ("product_slow_factor", 12.0),
        ("product_slow_for_s", 10.0),
        ("product_down_for_s", 0.0),
    ];
    for seed in SEEDS {
        let without = row(&summarize(&run(seed, &slow)));
        let with_deadlines = row(&summarize(&run(seed, &with(&slow, &[("deadlines", 1.0)]))));
        println!("seed {seed}\n  without {without:?}\n  with    {with_deadlines:?}");
        assert_eq!(without.dropped_past_deadline, 0);
        assert!(with_deadlines.dropped_past_deadline > 10, "seed {seed}");
        // Reads fail the same either way: the caller had given up already.
        assert_eq!(with_deadlines.failed, without.failed, "seed {seed}");
    }
}

#[test]
fn resilience_knobs_that_would_do_nothing_are_refused() {
    for (knobs, says) in [
        (
            vec![("retry_budget_pct", 10.0)],
            "retry_budget_pct=10 has no effect: Order makes no retries (retries=0)",
        ),
        (
            vec![("retry_backoff_ms", 100.0)],
            "retry_backoff_ms=100 has no effect",
        ),
        (
            vec![("breaker_failures", 3.0)],
            "breaker_failures=3 has no effect: there is no circuit breaker (breaker=off)",
        ),
        (
            vec![("breaker_open_ms", 500.0)],
            "breaker_open_ms=500 has no effect",
        ),
    ] {
        let error = simulate(&RunRequest {
            scenario: "request-response".into(),
            seed: 1,
            until_s: 5.0,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: Vec::new(),
        })
        .expect_err("refused")
        .to_string();
        assert!(
            error.starts_with("scenario request-response cannot run with these knobs: "),
            "{error}"
        );
        assert!(error.contains(says), "{error}");
    }
    // Together with what they tune, they run.
    run(
        1,
        &[
            ("retries", 1.0),
            ("retry_budget_pct", 10.0),
            ("breaker", 1.0),
            ("breaker_failures", 3.0),
        ],
    );
}

#[test]
fn resilience_at_its_defaults_leaves_the_header_and_the_trace_as_they_were() {
    let trace = run(1, &[]);
    for knob in [
        "deadlines",
        "retries",
        "retry_backoff_ms",
        "retry_budget_pct",
        "breaker",
        "breaker_failures",
        "breaker_open_ms",
    ] {
        assert!(
            !trace.header.knobs.contains_key(knob),
            "{knob} in the header"
        );
    }
    let asked = run(1, &[("breaker", 1.0)]);
    assert_eq!(asked.header.knobs.get("breaker"), Some(&1.0));
}
