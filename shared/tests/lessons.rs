//! Each scenario teaches what the article says it does, in numbers.

mod common;

use engine::simulate;
use shared::fold::WorldState;
use shared::metrics::summarize;
use shared::protocol::{Event, Outcome, RunRequest, RunSummary, Trace};
use shared::time::Micros;

fn run(scenario: &str, seed: u64, until_s: f64, knobs: &[(&str, f64)]) -> Trace {
    run_with_faults(scenario, seed, until_s, knobs, &[])
}

fn run_with_faults(
    scenario: &str,
    seed: u64,
    until_s: f64,
    knobs: &[(&str, f64)],
    faults: &[&str],
) -> Trace {
    let knobs = knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    simulate(&RunRequest {
        scenario: scenario.into(),
        seed,
        until_s,
        knobs,
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .expect("valid request")
}

fn reads(summary: &RunSummary) -> (u64, u64) {
    let read = &summary.by_operation["read order"];
    (read.ok, read.failed)
}

/// `(start time, outcome)` of every finished read.
fn read_outcomes(trace: &Trace) -> Vec<(Micros, Outcome)> {
    let mut started = std::collections::BTreeMap::new();
    let mut outcomes = Vec::new();
    for event in &trace.events {
        match &event.event {
            Event::OpStarted { op, name, .. } if name == "read order" => {
                started.insert(*op, event.at);
            }
            Event::OpFinished { op, outcome, .. } => {
                if let Some(at) = started.remove(op) {
                    outcomes.push((at, outcome.clone()));
                }
            }
            _ => {}
        }
    }
    outcomes
}

#[test]
fn request_response_read_time_is_the_sum_of_the_hops() {
    let latency_ms = 40.0;
    let p50_ms = |products: f64| {
        let trace = run(
            "request-response",
            1,
            30.0,
            &[
                ("products_per_order", products),
                ("link_latency_ms", latency_ms),
                ("product_down_for_s", 0.0),
                ("product_slow_factor", 1.0),
                ("pool_size", 64.0),
            ],
        );
        let summary = summarize(&trace);
        assert_eq!(reads(&summary).1, 0, "a healthy system fails no reads");
        summary.by_operation["read order"].p50_us as f64 / 1e3
    };
    for products in [1.0, 3.0, 6.0] {
        // Client → Order → (Order → Product → Order) × products → Client: 2 + 2 × products hops.
        let hops = 2.0 + 2.0 * products;
        let p50 = p50_ms(products);
        println!(
            "{products} product(s): p50 {p50:.1} ms for {hops} hops of {latency_ms}–{} ms",
            latency_ms * 1.25
        );
        assert!(
            p50 >= hops * latency_ms && p50 <= hops * latency_ms * 1.25,
            "{p50} ms"
        );
    }
}

#[test]
fn request_response_reads_fail_while_product_is_down_and_recover_after() {
    let trace = run(
        "request-response",
        7,
        30.0,
        &[
            ("product_down_at_s", 10.0),
            ("product_down_for_s", 8.0),
            ("product_slow_factor", 1.0),
        ],
    );
    let outcomes = read_outcomes(&trace);
    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|(at, _)| *at >= Micros::from_secs(10) && *at < Micros::from_secs(18))
        .map(|(_, o)| o)
        .collect();
    let after = outcomes
        .iter()
        .filter(|(at, _)| *at >= Micros::from_secs(19))
        .map(|(_, o)| o);
    assert!(
        during.len() >= 8,
        "about 2 reads a second for 8 s: {}",
        during.len()
    );
    for outcome in &during {
        let Outcome::Failed { reason } = outcome else {
            panic!("a read during the outage succeeded")
        };
        assert!(
            reason.contains("Product is down (connection refused)"),
            "{reason}"
        );
    }
    assert!(
        after.clone().count() >= 8 && after.into_iter().all(Outcome::is_ok),
        "reads recover with Product"
    );
    let explained = trace.events.iter().any(|e| match &e.event {
        Event::Narration { text } => text.contains("cascades"),
        _ => false,
    });
    assert!(explained, "the trace says why reads fail");
}

#[test]
fn request_response_reads_time_out_when_product_is_slower_than_the_timeout() {
    // Every hop takes 300–375 ms: Order's 200 ms timeout always fires first.
    let trace = run(
        "request-response",
        3,
        20.0,
        &[
            ("link_latency_ms", 300.0),
            ("call_timeout_ms", 200.0),
            ("product_down_for_s", 0.0),
        ],
    );
    let outcomes = read_outcomes(&trace);
    assert!(outcomes.len() >= 10);
    for (_, outcome) in outcomes {
        assert_eq!(
            outcome,
            Outcome::Failed {
                reason: "Product did not answer within 200.0 ms".into()
            }
        );
    }
}

#[test]
fn eventual_consistency_reads_survive_product_going_down_but_some_are_stale() {
    let knobs = [
        ("product_down_at_s", 5.0),
        ("product_down_for_s", 10.0),
        ("order_down_for_s", 0.0),
    ];
    let trace = run("eventual-consistency", 11, 30.0, &knobs);
    let summary = summarize(&trace);
    let (ok, failed) = reads(&summary);
    println!(
        "reads ok {ok}, failed {failed}, stale {}",
        summary.stale_reads
    );
    assert_eq!(failed, 0, "Order answers from its own copy, Product or not");
    assert!(ok >= 100);
    assert!(
        summary.stale_reads > 0 && summary.stale_reads < ok,
        "inside the staleness window reads return the old name"
    );
    assert!(
        summary.by_operation["rename product"].failed > 0,
        "renames need Product, so they fail while it is down"
    );
}

#[test]
fn eventual_consistency_reads_beat_request_response_reads() {
    let rr = summarize(&run(
        "request-response",
        2,
        30.0,
        &[("product_down_for_s", 0.0)],
    ));
    let ec = summarize(&run(
        "eventual-consistency",
        2,
        30.0,
        &[("order_down_for_s", 0.0)],
    ));
    let (rr_p50, ec_p50) = (
        rr.by_operation["read order"].p50_us,
        ec.by_operation["read order"].p50_us,
    );
    println!("read p50: request-response {rr_p50} µs, eventual-consistency {ec_p50} µs");
    assert!(
        ec_p50 * 3 < rr_p50,
        "a local read skips three round trips to Product"
    );
}

#[test]
fn eventual_consistency_queues_events_for_a_downed_order_and_applies_them_after() {
    let trace = run(
        "eventual-consistency",
        5,
        30.0,
        &[("order_down_at_s", 8.0), ("order_down_for_s", 8.0)],
    );
    let mut state = WorldState::new(&trace.header);
    let (mut deepest, mut drained_after_deepest) = (0, false);
    for event in &trace.events {
        state.apply(event);
        if let Event::QueueDepth { depth, .. } = event.event {
            if depth > deepest {
                (deepest, drained_after_deepest) = (depth, false);
            }
            drained_after_deepest |= depth == 0;
        }
    }
    println!("deepest queue: {deepest}");
    assert!(
        deepest >= 4,
        "about one rename a second waits while Order is down for 8 s"
    );
    assert!(
        drained_after_deepest,
        "the queue drains after Order is back"
    );
    // The last renames may still be on their way; anything older than 5 s must have arrived
    // in Order's copy of Product's names.
    assert_eq!(
        trace.header.copies.len(),
        1,
        "Order's product_names copies Product's products"
    );
    let converged =
        common::check_copies_converge(&state, &trace.header.copies, Micros::from_secs(5));
    assert_eq!(converged, Ok(()));
}

#[test]
fn request_response_waiting_on_a_slow_product_exhausts_the_connection_pool() {
    // Product is slow from 3 s to 8 s: each read holds a connection for three slow round trips.
    let pool_failures = |pool: f64| {
        let knobs = [
            ("pool_size", pool),
            ("product_slow_factor", 3.0),
            ("product_down_for_s", 0.0),
        ];
        let trace = run("request-response", 4, 20.0, &knobs);
        let failures = read_outcomes(&trace)
            .into_iter()
            .filter(|(_, outcome)| {
                matches!(outcome, Outcome::Failed { reason } if reason.contains("pool exhausted"))
            })
            .count();
        let waiting_max = summarize(&trace).queue_depth_max;
        println!(
            "pool {pool}: {failures} reads found no free connection; at most {waiting_max} waited"
        );
        (failures, waiting_max)
    };
    let (small_failures, small_waiting) = pool_failures(2.0);
    let (large_failures, large_waiting) = pool_failures(32.0);
    assert!(small_failures >= 3 && small_waiting >= 2);
    assert_eq!((large_failures, large_waiting), (0, 0));
}

#[test]
fn request_response_reads_fail_with_orders_reason_not_the_clients_timeout() {
    // One connection, and Product 40× slower than its 3 s timeout from 3 s to 8 s: reads queue
    // for the connection, wait up to 3 s, then call Product for up to 3 s. The client outwaits
    // both, so each failed read says why Order gave up (before, the client's own timeout,
    // which did not count the wait for a connection, gave up first on some).
    for (seed, latency_ms) in [(1, 40.0), (2, 40.0), (3, 2_000.0)] {
        let knobs = [
            ("pool_size", 1.0),
            ("products_per_order", 1.0),
            ("call_timeout_ms", 3_000.0),
            ("product_slow_factor", 40.0),
            ("product_down_for_s", 0.0),
            ("link_latency_ms", latency_ms),
        ];
        let trace = run("request-response", seed, 30.0, &knobs);
        let reasons: Vec<String> = read_outcomes(&trace)
            .into_iter()
            .filter_map(|(_, outcome)| match outcome {
                Outcome::Failed { reason } => Some(reason),
                Outcome::Ok | Outcome::Degraded { .. } => None,
            })
            .collect();
        println!("seed {seed}, latency {latency_ms} ms: {reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("pool exhausted")),
            "some reads waited for a connection in vain"
        );
        assert!(
            reasons.iter().all(|r| !r.starts_with("no answer within")),
            "the client gave up before Order answered"
        );
    }
}

#[test]
fn eventual_consistency_without_a_version_check_diverges_for_good_when_events_arrive_out_of_order()
{
    // Renames come fast until Product goes down at 10 s for good, and the link to the broker
    // holds each publish back by one to three hops, so quick ones overtake each other.
    let run_with_check = |check: f64, seed: u64| {
        let trace = run_with_faults(
            "eventual-consistency",
            seed,
            30.0,
            &[
                ("apply_only_newer", check),
                ("rename_rate_per_s", 20.0),
                ("broker_delay_ms", 0.0),
                ("order_down_for_s", 0.0),
                ("product_down_at_s", 10.0),
                ("product_down_for_s", 30.0),
            ],
            &["reorder:Product-Broker=100%@0"],
        );
        let mut state = WorldState::new(&trace.header);
        for event in &trace.events {
            state.apply(event);
        }
        let converged =
            common::check_copies_converge(&state, &trace.header.copies, Micros::from_secs(5));
        (converged, state.metrics.copy_regressions)
    };
    for seed in 1..=5 {
        let (converged, regressions) = run_with_check(1.0, seed);
        assert_eq!((converged, regressions), (Ok(()), 0), "seed {seed}");
    }
    let unchecked: Vec<(u64, Result<(), String>, u64)> = (1..=10)
        .map(|seed| {
            let (converged, regressions) = run_with_check(0.0, seed);
            (seed, converged, regressions)
        })
        .collect();
    let regressions: u64 = unchecked.iter().map(|(_, _, n)| n).sum();
    println!(
        "without the version check, seeds 1–10: {regressions} older events overwrote newer names"
    );
    assert!(regressions >= 20);
    let for_good: Vec<String> = unchecked
        .iter()
        .filter_map(|(seed, converged, _)| {
            converged
                .as_ref()
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    println!("and 20 s after the last rename:\n{}", for_good.join("\n"));
    assert!(!for_good.is_empty(), "some copy stays wrong for good");
}

#[test]
fn the_version_checks_help_text_suggests_a_run_whose_copy_regressions_show_the_check_at_work() {
    // The knob's help says what to try: the knobs and the fault it names, read from its words.
    let spec = shared::scenario::find("eventual-consistency").unwrap();
    let help = spec
        .knobs
        .iter()
        .find(|k| k.name == "apply_only_newer")
        .unwrap()
        .help;
    let words: Vec<&str> = help
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| "(),;:".contains(c)))
        .collect();
    let knobs: Vec<(String, f64)> = words
        .iter()
        .filter(|w| w.contains('=') && !w.contains(':') && !w.contains('%'))
        .map(|w| shared::scenario::parse_knob_assignment(spec, w).unwrap())
        .collect();
    let faults: Vec<&str> = words.iter().copied().filter(|w| w.contains(":")).collect();
    assert!(!knobs.is_empty() && !faults.is_empty(), "{help}");
    let regressions = |check: f64, seed: u64| {
        let mut given: Vec<(&str, f64)> = knobs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        given.push(("apply_only_newer", check));
        let trace = run_with_faults("eventual-consistency", seed, 30.0, &given, &faults);
        summarize(&trace).copy_regressions
    };
    let (mut unchecked, mut checked) = (0, 0);
    for seed in 1..=5 {
        let (without, with) = (regressions(0.0, seed), regressions(1.0, seed));
        println!("seed {seed}: {without} copy regressions without the check, {with} with it");
        unchecked += without;
        checked += with;
    }
    assert_eq!(checked, 0, "the version check refuses every older event");
    assert!(
        unchecked >= 20,
        "{unchecked}: the suggested run shows the lesson"
    );
}

#[test]
fn duplication_reads_are_fast_but_renames_leave_copies_stale_unless_both_are_updated() {
    let summary = |update_both: f64, order_down_for_s: f64| {
        let knobs = [
            ("update_both", update_both),
            ("order_down_at_s", 20.0),
            ("order_down_for_s", order_down_for_s),
        ];
        summarize(&run("duplication", 2, 30.0, &knobs))
    };
    let stale_copies = summary(0.0, 0.0);
    let both = summary(1.0, 0.0);
    let read = |s: &RunSummary| s.by_operation["read order"].clone();
    let rename = |s: &RunSummary| s.by_operation["rename product"].clone();
    let (copies_read, copies_rename) = (read(&stale_copies), rename(&stale_copies));
    let (both_read, both_rename) = (read(&both), rename(&both));
    println!(
        "stale reads {} vs {}; rename p50 {} µs vs {} µs; read p50 {} µs vs {} µs",
        stale_copies.stale_reads,
        both.stale_reads,
        copies_rename.p50_us,
        both_rename.p50_us,
        copies_read.p50_us,
        both_read.p50_us
    );
    assert!(
        stale_copies.stale_reads > 20,
        "renames leave order lines stale"
    );
    assert_eq!(
        both.stale_reads, 0,
        "updating both keeps every confirmed rename in every copy"
    );
    // A read is one round trip to Order either way; a rename that updates both takes two.
    assert!(copies_read.p50_us < 120_000 && both_read.p50_us < 120_000);
    assert!(both_rename.p50_us > copies_rename.p50_us * 3 / 2);
    assert!(both.duplicated_bytes > 0);
    let order_down = summary(1.0, 5.0);
    let failed_renames = order_down.by_operation["rename product"].failed_during_outage;
    assert!(
        failed_renames > 0,
        "with Order down, renames that must update it fail"
    );
}
