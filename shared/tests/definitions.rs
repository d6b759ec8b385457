//! Each number of the summary against its definition in `docs/METRICS.md`, at the edges the
//! definitions name: overlapping faults, runs cut short, copies that never converge.

mod reference;

use engine::simulate;
use shared::metrics::summarize;
use shared::protocol::{Event, OpId, RunRequest, RunSummary, Trace};
use shared::time::Micros;
use std::collections::BTreeMap;

fn run(scenario: &str, seed: u64, until_s: f64, knobs: &[(&str, f64)], faults: &[&str]) -> Trace {
    simulate(&RunRequest {
        scenario: scenario.into(),
        seed,
        until_s,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .unwrap()
}

/// Request/response with no outage or slowness of its own: only the faults a test adds.
fn request_response(faults: &[&str]) -> Trace {
    run(
        "request-response",
        1,
        30.0,
        &[("product_down_for_s", 0.0), ("product_slow_for_s", 0.0)],
        faults,
    )
}

/// The operations named `name` that began in `window` and finished: `(ok, failed)`.
fn began_in(trace: &Trace, name: &str, window: std::ops::Range<Micros>) -> (u64, u64) {
    let mut started: BTreeMap<OpId, Micros> = BTreeMap::new();
    let (mut ok, mut failed) = (0, 0);
    for event in &trace.events {
        match &event.event {
            Event::OpStarted { op, name: n, .. } if n == name => {
                started.insert(*op, event.at);
            }
            Event::OpFinished { op, outcome, .. }
                if started.get(op).is_some_and(|at| window.contains(at)) =>
            {
                if outcome.is_ok() {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            _ => {}
        }
    }
    (ok, failed)
}

fn during_outage(summary: &RunSummary, name: &str) -> (u64, u64) {
    let op = &summary.by_operation[name];
    (op.ok_during_outage, op.failed_during_outage)
}

#[test]
fn reads_began_during_an_outage_when_a_partition_cut_their_path() {
    // Every read calls Product over the Order–Product link: those that began while it was
    // partitioned (5–15 s) began during an outage; renames, which go straight to Product, did not.
    let s = Micros::from_secs;
    let trace = request_response(&["partition:Order-Product@5+10"]);
    let summary = summarize(&trace);
    let expected = began_in(&trace, "read order", s(5)..s(15));
    assert!(expected.1 > 10, "the partition fails reads: {expected:?}");
    assert_eq!(during_outage(&summary, "read order"), expected);
    assert_eq!(during_outage(&summary, "rename product"), (0, 0));
}

#[test]
fn an_outage_lasts_as_long_as_the_trace_shows_the_service_down() {
    // Product is down 5–15 s under two overlapping crashes (5–15 s and 8–10 s): a read that began
    // at 12 s began during the outage although the header's second crash had ended.
    let s = Micros::from_secs;
    let trace = request_response(&["crash:Product@5+10", "crash:Product@8+2"]);
    let summary = summarize(&trace);
    let reads = began_in(&trace, "read order", s(5)..s(15));
    let renames = began_in(&trace, "rename product", s(5)..s(15));
    assert!(reads.1 > 20 && renames.1 > 0, "{reads:?} {renames:?}");
    assert_eq!(during_outage(&summary, "read order"), reads);
    assert_eq!(during_outage(&summary, "rename product"), renames);
    let while_down = &summary.by_operation["read order"].began_while_down["Product"];
    assert_eq!((while_down.ok, while_down.failed), reads);
}

#[test]
fn an_outage_off_the_path_does_not_count_but_while_down_does() {
    // Duplication: reads answer from Order's own lines, so Product's outage is not on their path —
    // yet the comparison asks how reads fare while Product is down, and they all succeed.
    let s = Micros::from_secs;
    let trace = run(
        "duplication",
        1,
        30.0,
        &[("product_down_for_s", 0.0), ("order_down_for_s", 0.0)],
        &["crash:Product@5+10"],
    );
    let summary = summarize(&trace);
    assert_eq!(during_outage(&summary, "read order"), (0, 0));
    let reads = began_in(&trace, "read order", s(5)..s(15));
    let while_down = &summary.by_operation["read order"].began_while_down["Product"];
    assert_eq!((while_down.ok, while_down.failed), reads);
    assert_eq!(reads.1, 0);
    assert_eq!(
        during_outage(&summary, "rename product"),
        began_in(&trace, "rename product", s(5)..s(15))
    );
}

#[test]
fn a_service_that_crashed_itself_is_an_outage_too() {
    // The gateway's coordinator crashes itself at its 15th rename and restarts 2 s later: no
    // fault in the header says so, but the trace shows it down, and renames sent to it then
    // began during an outage.
    let trace = run(
        "gateway",
        2,
        30.0,
        &[("product_down_for_s", 0.0), ("rename_rate_per_s", 4.0)],
        &[],
    );
    let coordinator_down: Vec<Micros> = trace
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::ServiceDown { .. } | Event::ServiceUp { .. }))
        .filter(|e| e.at > Micros::ZERO)
        .map(|e| e.at)
        .collect();
    let [down, up] = coordinator_down[..] else {
        panic!("one crash and one restart: {coordinator_down:?}")
    };
    let summary = summarize(&trace);
    let renames = began_in(&trace, "rename product", down..up);
    assert!(renames.1 > 0, "{renames:?}");
    assert_eq!(during_outage(&summary, "rename product"), renames);
}

#[test]
fn staleness_is_replication_lag_from_the_first_write_a_copy_misses() {
    // A broker holding each event 1.5 s and five renames a second: every rename reaches Order's
    // copy about 1.5 s after it was written, although the copy as a whole rarely matches Product.
    let trace = run(
        "eventual-consistency",
        1,
        30.0,
        &[
            ("broker_delay_ms", 1_500.0),
            ("rename_rate_per_s", 5.0),
            ("order_down_for_s", 0.0),
        ],
        &[],
    );
    let summary = summarize(&trace);
    let lag = reference::replication_lag(&trace);
    assert_eq!(
        (summary.staleness_max_us, summary.staleness_mean_us),
        (lag.max.0, lag.mean.0)
    );
    assert!(
        (1_500_000..3_000_000).contains(&summary.staleness_max_us),
        "the broker's delay plus the trip: {summary:?}"
    );
}

#[test]
fn copies_that_never_catch_up_count_until_the_end_in_the_max_and_the_mean() {
    // Duplication without update_both: renamed products' order lines stay behind for good.
    let trace = run("duplication", 1, 30.0, &[], &[]);
    let summary = summarize(&trace);
    let lag = reference::replication_lag(&trace);
    assert!(summary.staleness_mean_us > 1_000_000, "{summary:?}");
    assert_eq!(
        (summary.staleness_max_us, summary.staleness_mean_us),
        (lag.max.0, lag.mean.0)
    );
}

#[test]
fn reads_of_a_rename_the_coordinator_rolls_back_are_aborted_reads() {
    // Product refuses 30 % of updates, after Order's copy may already hold them: reads of Order's
    // copy in between return a name that is rolled back a moment later.
    let trace = run(
        "gateway",
        3,
        30.0,
        &[("read_rate_per_s", 20.0), ("product_failure_pct", 30.0)],
        &[],
    );
    let summary = summarize(&trace);
    let expected = reference::aborted_reads(&trace);
    assert!(expected > 0, "the run has aborted reads to count");
    assert_eq!(summary.coordination.aborted_reads, expected);
    // Where nothing is rolled back, nothing is an aborted read.
    let healthy = run(
        "gateway",
        3,
        30.0,
        &[
            ("product_failure_pct", 0.0),
            ("order_failure_pct", 0.0),
            ("product_down_for_s", 0.0),
        ],
        &[],
    );
    assert_eq!(summarize(&healthy).coordination.aborted_reads, 0);
}

#[test]
fn served_lag_is_the_age_of_the_oldest_source_write_a_read_missed() {
    // Hybrid: Ride serves ratings from a cache Driver never invalidates, and names from a copy
    // kept by events. The longer the cache keeps an answer, the older the rating change a read
    // can miss; without a cache only the copied names lag (the broker's trip).
    let hybrid = |ttl_ms: f64| {
        run(
            "hybrid",
            2,
            30.0,
            &[
                ("cache_ttl_ms", ttl_ms),
                ("rating_change_rate_per_s", 5.0),
                ("driver_down_for_s", 0.0),
            ],
            &[],
        )
    };
    let (cached, uncached) = (hybrid(10_000.0), hybrid(0.0));
    for trace in [&cached, &uncached] {
        let summary = summarize(trace);
        let (max, mean) = reference::served_lag(trace);
        assert_eq!(
            (summary.served_lag_max_us, summary.served_lag_mean_us),
            (max.0, mean.0)
        );
    }
    let (cached, uncached) = (summarize(&cached), summarize(&uncached));
    assert!(
        cached.served_lag_max_us > 2_000_000,
        "a 10 s cache serves ratings seconds old: {cached:?}"
    );
    assert!(
        cached.served_lag_max_us > 4 * uncached.served_lag_max_us,
        "cached {} µs, uncached {} µs",
        cached.served_lag_max_us,
        uncached.served_lag_max_us
    );
    // Request/response asks the source on every read: nothing it serves is behind, even with
    // overlapping crashes and a partition in the run.
    let trace = request_response(&[
        "crash:Product@5+10",
        "crash:Product@8+2",
        "partition:Order-Product@20+3",
    ]);
    let summary = summarize(&trace);
    assert!(summary.by_operation["read order"].ok > 0);
    assert_eq!(
        (summary.served_lag_max_us, summary.served_lag_mean_us),
        (0, 0)
    );
    // Eventual consistency with a slow broker and a crashed Order: reads served from the copy
    // miss renames, and the incremental fold agrees with the definition.
    let trace = run(
        "eventual-consistency",
        4,
        30.0,
        &[("broker_delay_ms", 1_500.0), ("rename_rate_per_s", 5.0)],
        &["crash:Order@3+4", "partition:Product-Broker@12+5"],
    );
    let summary = summarize(&trace);
    let (max, mean) = reference::served_lag(&trace);
    assert!(max > Micros::from_millis(1_500), "{summary:?}");
    assert_eq!(
        (summary.served_lag_max_us, summary.served_lag_mean_us),
        (max.0, mean.0)
    );
}

#[test]
fn served_lag_of_a_run_without_reads_is_zero() {
    let trace = run(
        "eventual-consistency",
        1,
        10.0,
        &[("read_rate_per_s", 0.0)],
        &[],
    );
    let summary = summarize(&trace);
    assert_eq!(
        (summary.served_lag_max_us, summary.served_lag_mean_us),
        (0, 0)
    );
}

/// Every field name of `value`, an object of the summary or the comparison, recursively; the
/// values of map fields (keyed by operation, service, queue or table names) are walked but their
/// keys, which are data, are not field names.
fn field_names(value: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
    const MAPS: &[&str] = &[
        "by_operation",
        "began_while_down",
        "queue_depth_max_by_queue",
        "consumers",
        "calls_by_operation",
        "stale_reads_by_table",
        "capacity",
    ];
    let serde_json::Value::Object(fields) = value else {
        return;
    };
    for (name, inner) in fields {
        names.insert(name.clone());
        match inner {
            serde_json::Value::Object(entries) if MAPS.contains(&name.as_str()) => {
                for entry in entries.values() {
                    field_names(entry, names);
                }
            }
            _ => field_names(inner, names),
        }
    }
}

#[test]
fn every_number_of_the_summary_and_the_comparison_is_defined_in_docs_metrics() {
    let docs = include_str!("../../docs/METRICS.md");
    let mut names = std::collections::BTreeSet::new();
    // Runs that fill every optional field: an outage (began_while_down), queues and subscribers
    // (event-driven), a cache (hybrid), a coordinator (gateway).
    let mut summaries = Vec::new();
    for scenario in ["request-response", "event-driven", "hybrid", "gateway"] {
        let summary = summarize(&run(scenario, 1, 30.0, &[], &[]));
        field_names(&serde_json::to_value(&summary).unwrap(), &mut names);
        summaries.push(summary);
    }
    // A service with a capacity (capacity).
    let loaded = run(
        "request-response",
        1,
        10.0,
        &[("product_workers", 2.0), ("product_service_ms", 50.0)],
        &[],
    );
    field_names(
        &serde_json::to_value(summarize(&loaded)).unwrap(),
        &mut names,
    );
    for optional in [
        "began_while_down",
        "queue_depth_max_by_queue",
        "consumers",
        "capacity",
        "utilisation",
    ] {
        assert!(names.contains(optional), "no run filled {optional}");
    }
    let request_response = summaries[0].clone();
    let comparison = shared::compare::table(1, vec![request_response.clone(), request_response]);
    assert_eq!(comparison.rows.len(), 1);
    field_names(&serde_json::to_value(&comparison).unwrap(), &mut names);
    let undefined: Vec<&String> = names
        .iter()
        .filter(|name| !docs.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undefined.is_empty(),
        "docs/METRICS.md does not define {undefined:?} (write each as `name`)"
    );
}

/// `in_doubt_max_us`, `rows_in_doubt_at_end` and `prepares_refused_locked` as docs/METRICS.md
/// defines them, from the trace alone.
fn in_doubt_by_definition(trace: &Trace) -> (u64, u64, u64) {
    let mut open: BTreeMap<(_, String), Micros> = BTreeMap::new();
    let (mut longest, mut locked) = (0, 0);
    for event in &trace.events {
        match &event.event {
            Event::RowWritten {
                service,
                table,
                key,
                value,
                ..
            } if table == "prepared_names" => {
                if let Some(since) = open.remove(&(service.0, key.clone())) {
                    longest = longest.max(event.at.0 - since.0);
                }
                if value.starts_with("prepared at ") {
                    open.insert((service.0, key.clone()), event.at);
                }
            }
            Event::Sent { label, .. } if label.starts_with("503 locked: ") => locked += 1,
            _ => {}
        }
    }
    let end = trace.events.last().map_or(0, |event| event.at.0);
    for since in open.values() {
        longest = longest.max(end - since.0);
    }
    (longest, open.len() as u64, locked)
}

fn in_doubt_of(summary: &RunSummary) -> (u64, u64, u64) {
    let c = &summary.coordination;
    (
        c.in_doubt_max_us,
        c.rows_in_doubt_at_end,
        c.prepares_refused_locked,
    )
}

/// The gateway under two-phase commit, the coordinator crashing after deciding its 3rd rename
/// and restarting 2 s later; Product never down (a participant down while prepared stays in
/// doubt too: the scenario's default outage shows that).
const TWO_PHASE_CRASH: &[(&str, f64)] = &[
    ("protocol", 1.0),
    ("product_down_for_s", 0.0),
    ("rename_rate_per_s", 2.0),
    ("coordinator_crash_at_rename", 3.0),
    ("coordinator_restart_after_s", 2.0),
    ("product_failure_pct", 0.0),
    ("order_failure_pct", 0.0),
];

#[test]
fn rows_stay_in_doubt_from_their_prepare_until_the_decision_arrives() {
    let trace = run("gateway", 1, 30.0, TWO_PHASE_CRASH, &[]);
    let summary = summarize(&trace);
    let expected = in_doubt_by_definition(&trace);
    println!("in doubt (max µs, at end, locked): {expected:?}");
    assert_eq!(in_doubt_of(&summary), expected);
    // Both rows of the crashed rename wait out the coordinator's 2 s down, then a hop.
    assert!((2_000_000..2_500_000).contains(&expected.0), "{expected:?}");
    // The restarted coordinator settles them; only a rename under way at the end may be.
    assert!(expected.1 <= 2, "{expected:?}");
}

#[test]
fn a_run_cut_short_while_rows_are_in_doubt_counts_them_up_to_its_end() {
    let whole = run("gateway", 1, 30.0, TWO_PHASE_CRASH, &[]);
    let crashed_at = whole
        .events
        .iter()
        .find_map(|event| match &event.event {
            Event::Narration { text } if text.starts_with("Coordinator crashes after logging") => {
                Some(event.at)
            }
            _ => None,
        })
        .expect("the coordinator crashes after deciding");
    // One second into the coordinator's 2 s down: both rows are in doubt when the run ends.
    let until_s = crashed_at.as_secs_f64() + 1.0;
    let trace = run("gateway", 1, until_s, TWO_PHASE_CRASH, &[]);
    let summary = summarize(&trace);
    let expected = in_doubt_by_definition(&trace);
    println!("cut at {until_s} s: {expected:?}");
    assert_eq!(in_doubt_of(&summary), expected);
    assert_eq!(expected.1, 2, "Product's row and Order's row");
    assert!((1_000_000..1_200_000).contains(&expected.0), "{expected:?}");
}

#[test]
fn runs_without_a_prepared_row_have_nothing_in_doubt() {
    // An empty run (ended before anything happened), and the saga, which never prepares.
    for (until_s, knobs) in [(0.001, TWO_PHASE_CRASH), (30.0, &[][..])] {
        let trace = run("gateway", 1, until_s, knobs, &[]);
        assert_eq!(in_doubt_by_definition(&trace), (0, 0, 0));
        assert_eq!(in_doubt_of(&summarize(&trace)), (0, 0, 0));
    }
}

/// The resilience numbers straight from their definitions in docs/METRICS.md: `(degraded
/// reads, calls received, dropped past deadline, breaker opened)`.
fn resilience_by_definition(trace: &Trace) -> (u64, u64, u64, u64) {
    use shared::protocol::{CircuitState, MessageKind, Outcome};
    let mut calls_in_flight = std::collections::BTreeSet::new();
    let (mut degraded, mut received, mut dropped, mut opened) = (0, 0, 0, 0);
    for event in &trace.events {
        match &event.event {
            Event::OpFinished {
                outcome: Outcome::Degraded { .. },
                ..
            } => degraded += 1,
            Event::Sent {
                msg,
                kind,
                caused_by,
                label,
                ..
            } => {
                if *kind == MessageKind::Request && caused_by.is_some() {
                    calls_in_flight.insert(*msg);
                }
                if label.starts_with("503 deadline exceeded") {
                    dropped += 1;
                }
            }
            Event::Duplicated { msg, copy } if calls_in_flight.contains(msg) => {
                calls_in_flight.insert(*copy);
            }
            Event::Delivered { msg } if calls_in_flight.remove(msg) => received += 1,
            Event::CircuitChanged {
                state: CircuitState::Open,
                ..
            } => opened += 1,
            _ => {}
        }
    }
    (degraded, received, dropped, opened)
}

fn resilience_of(summary: &RunSummary) -> (u64, u64, u64, u64) {
    let r = &summary.resilience;
    (
        r.degraded_reads,
        r.calls_received,
        r.dropped_past_deadline,
        r.breaker_opened,
    )
}

/// Request/response with every resilience knob on, Product slowed twelvefold from 3 s to 8 s
/// (calls arrive past their deadline) and down from 10 s to 18 s (the breaker opens).
const RESILIENT: &[(&str, f64)] = &[
    ("deadlines", 1.0),
    ("retries", 2.0),
    ("retry_budget_pct", 20.0),
    ("breaker", 1.0),
    ("product_slow_factor", 12.0),
];

#[test]
fn resilience_numbers_match_their_definitions() {
    let trace = run("request-response", 1, 30.0, RESILIENT, &[]);
    let expected = resilience_by_definition(&trace);
    println!("(degraded, calls received, dropped past deadline, breaker opened): {expected:?}");
    assert_eq!(resilience_of(&summarize(&trace)), expected);
    assert!(expected.0 > 0 && expected.1 > 0 && expected.2 > 0 && expected.3 > 0);
}

#[test]
fn a_run_cut_short_while_the_breaker_is_open_counts_up_to_its_end() {
    // Product is down from 10 s: cut at 12.5 s, the breaker has opened and reads degrade.
    let trace = run("request-response", 1, 12.5, RESILIENT, &[]);
    let summary = summarize(&trace);
    let expected = resilience_by_definition(&trace);
    println!("cut at 12.5 s: {expected:?}");
    assert_eq!(resilience_of(&summary), expected);
    assert!(expected.3 >= 1 && expected.0 >= 1, "{expected:?}");
    assert_eq!(summary.resilience.calls_while_breaker_open, 0);
}

#[test]
fn runs_without_resilience_or_without_events_count_none() {
    // An empty run, and request/response at its defaults: no fallback, deadline or breaker.
    for (until_s, knobs) in [(0.001, RESILIENT), (30.0, &[][..])] {
        let trace = run("request-response", 1, until_s, knobs, &[]);
        let expected = resilience_by_definition(&trace);
        assert_eq!(resilience_of(&summarize(&trace)), expected);
        assert_eq!((expected.0, expected.2, expected.3), (0, 0, 0));
    }
    let empty = run("request-response", 1, 0.001, RESILIENT, &[]);
    assert_eq!(resilience_by_definition(&empty), (0, 0, 0, 0));
}
