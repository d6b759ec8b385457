//! The transactional outbox's lesson in numbers: under the same faults — publishes lost on the
//! way to the broker, the publisher crashing between its write and its publish, the broker down —
//! dual write leaves copies and consumers behind for good, and the outbox converges every time.
//!
//! Each run ends with a quiet tail: the client is cut off from the publisher for the last
//! seconds, so no change is made then and whatever is still to arrive has time to.

mod event_driven_checks;

use engine::simulate;
use shared::check::{AnomalyKind, check};
use shared::metrics::summarize;
use shared::protocol::{RunRequest, Trace};
use shared::services::{ORDERS_TABLE, OUTBOX_TABLE, SHIPMENTS_TABLE};
use shared::time::Micros;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=20;
const UNTIL_S: f64 = 30.0;

fn run(scenario: &str, seed: u64, publish: &str, knobs: &[(&str, f64)], faults: &[&str]) -> Trace {
    let mut knobs: shared::protocol::KnobMap =
        knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    knobs.insert(
        "publish".into(),
        if publish == "outbox" { 1.0 } else { 0.0 },
    );
    simulate(&RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: UNTIL_S,
        knobs,
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .expect("valid request")
}

/// The faults each lesson run suffers: a publish lost on the way to the broker, the broker
/// down, and (through the scenario's knob) the publisher crashing between write and publish.
const LOST_PUBLISH: &str = "drop:Product-Broker=30%@2+20";
const BROKER_DOWN: &str = "crash:Broker@12+3";
/// No rename after 25 s: what is left has 5 s to arrive.
const QUIET_TAIL: &str = "partition:Client-Product@25+5";

/// Eventual consistency with `crash_pct` of renames crashing Product between write and publish,
/// and `faults`; renames stop at 25 s.
fn eventual_consistency_with(seed: u64, publish: &str, crash_pct: f64, faults: &[&str]) -> Trace {
    let mut faults = faults.to_vec();
    faults.push(QUIET_TAIL);
    run(
        "eventual-consistency",
        seed,
        publish,
        &[
            ("rename_rate_per_s", 2.0),
            ("crash_after_write_pct", crash_pct),
            ("order_down_for_s", 0.0),
        ],
        &faults,
    )
}

/// Eventual consistency under every fault at once.
fn eventual_consistency(seed: u64, publish: &str) -> Trace {
    eventual_consistency_with(seed, publish, 10.0, &[LOST_PUBLISH, BROKER_DOWN])
}

/// Event-driven under every fault at once; new orders stop at 25 s.
fn event_driven(seed: u64, publish: &str) -> Trace {
    run(
        "event-driven",
        seed,
        publish,
        &[
            ("idempotent", 1.0),
            ("crash_after_write_pct", 10.0),
            ("shipping_down_for_s", 0.0),
        ],
        &[
            "drop:Order-Broker=30%@2+20",
            "crash:Broker@12+3",
            "partition:Client-Order@25+5",
        ],
    )
}

/// Orders Order stored that Shipping never shipped.
fn orders_never_shipped(trace: &Trace) -> usize {
    let state = event_driven_checks::fold(trace);
    let order = event_driven_checks::service(trace, "Order");
    let shipping = event_driven_checks::service(trace, "Shipping");
    let orders = state.tables[order.0 as usize].get(ORDERS_TABLE);
    orders
        .into_iter()
        .flatten()
        .filter(|(key, _)| state.row(shipping, SHIPMENTS_TABLE, key).is_none())
        .count()
}

#[test]
fn eventual_consistency_dual_write_leaves_copies_behind_for_good_and_the_outbox_converges() {
    let mut dual_write_lost = Vec::new();
    for seed in SEEDS {
        let dual = summarize(&eventual_consistency(seed, "dual-write"));
        let outbox_trace = eventual_consistency(seed, "outbox");
        let outbox = summarize(&outbox_trace);
        println!(
            "seed {seed}: inconsistent rows at the end: dual write {}, outbox {}",
            dual.coordination.inconsistent_rows_at_end,
            outbox.coordination.inconsistent_rows_at_end
        );
        dual_write_lost.push(dual.coordination.inconsistent_rows_at_end);
        assert_eq!(
            outbox.coordination.inconsistent_rows_at_end, 0,
            "seed {seed}: the outbox converges"
        );
        // The relay did its work: publishes again, rows marked sent.
        let state = event_driven_checks::fold(&outbox_trace);
        let product = event_driven_checks::service(&outbox_trace, "Product");
        let rows = &state.tables[product.0 as usize][OUTBOX_TABLE];
        assert!(
            rows.values().all(|row| row.value.starts_with("sent: ")),
            "seed {seed}: every outbox row is confirmed by the end"
        );
        assert_eq!(outbox.copy_regressions, 0, "seed {seed}");
    }
    let seeds_losing = dual_write_lost.iter().filter(|n| **n > 0).count();
    println!("dual write: rows left behind per seed {dual_write_lost:?}");
    assert!(
        seeds_losing * 2 > dual_write_lost.len(),
        "dual write leaves some copy behind in most seeds: {dual_write_lost:?}"
    );
}

#[test]
fn event_driven_dual_write_loses_orders_for_good_and_the_outbox_delivers_each_once() {
    let mut dual_write_lost = Vec::new();
    for seed in SEEDS {
        let dual = orders_never_shipped(&event_driven(seed, "dual-write"));
        let outbox_trace = event_driven(seed, "outbox");
        let outbox = orders_never_shipped(&outbox_trace);
        println!(
            "seed {seed}: orders stored and never shipped: dual write {dual}, outbox {outbox}"
        );
        dual_write_lost.push(dual);
        assert_eq!(outbox, 0, "seed {seed}: every stored order is shipped");
        let state = event_driven_checks::fold(&outbox_trace);
        event_driven_checks::check_exactly_once(&outbox_trace, &state)
            .and_then(|()| {
                event_driven_checks::check_tables_match_applications(&outbox_trace, &state)
            })
            .and_then(|()| {
                // Every order, to the last one stored before the quiet tail, reached both.
                event_driven_checks::check_no_order_lost(&outbox_trace, &state, Micros::ZERO)
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let anomalies = check(&outbox_trace.header, &outbox_trace.events);
        for kind in [
            AnomalyKind::ConfirmedEventNeverApplied,
            AnomalyKind::DuplicateApplied,
        ] {
            assert!(
                !anomalies.iter().any(|a| a.kind == kind),
                "seed {seed}: {kind:?}"
            );
        }
    }
    let seeds_losing = dual_write_lost.iter().filter(|n| **n > 0).count();
    println!("dual write: orders never shipped per seed {dual_write_lost:?}");
    assert!(
        seeds_losing * 2 > dual_write_lost.len(),
        "dual write loses some order in most seeds: {dual_write_lost:?}"
    );
}

#[test]
fn without_faults_the_outbox_changes_what_reaches_the_copy_only_by_its_confirms() {
    // Healthy, both converge; the outbox costs one confirm per rename.
    let seed = 3;
    let request = |publish| {
        run(
            "eventual-consistency",
            seed,
            publish,
            &[("order_down_for_s", 0.0)],
            &["partition:Client-Product@25+5"],
        )
    };
    let (dual, outbox) = (
        summarize(&request("dual-write")),
        summarize(&request("outbox")),
    );
    assert_eq!(
        (
            dual.coordination.inconsistent_rows_at_end,
            outbox.coordination.inconsistent_rows_at_end
        ),
        (0, 0)
    );
    assert!(
        outbox.messages_sent > dual.messages_sent,
        "confirms cost messages"
    );
}

#[test]
fn each_fault_alone_leaves_dual_write_behind_and_not_the_outbox() {
    let cases: [(&str, f64, &[&str]); 3] = [
        ("publish lost", 0.0, &[LOST_PUBLISH]),
        ("Product crashes between write and publish", 10.0, &[]),
        ("broker down", 0.0, &[BROKER_DOWN]),
    ];
    for (what, crash_pct, faults) in cases {
        let mut dual_total = 0;
        for seed in 1..=10 {
            let inconsistent = |publish| {
                let trace = eventual_consistency_with(seed, publish, crash_pct, faults);
                summarize(&trace).coordination.inconsistent_rows_at_end
            };
            dual_total += inconsistent("dual-write");
            assert_eq!(inconsistent("outbox"), 0, "{what}, seed {seed}");
        }
        println!(
            "{what}: dual write leaves {dual_total} rows behind over seeds 1..=10, the outbox 0"
        );
        assert!(dual_total > 0, "{what}");
    }
}
