//! The anomaly checker (`shared::check`) on simulated runs: each scenario's lesson shows as the
//! kinds of anomaly it teaches, and a fault that loses data shows as the anomaly it causes.

use engine::simulate;
use shared::check::{AnomalyKind, check, counts};
use shared::protocol::{Event, RunRequest, Trace};
use std::collections::BTreeSet;

fn run(scenario: &str, until_s: f64, knobs: &[(&str, f64)], faults: &[&str]) -> Trace {
    simulate(&RunRequest {
        scenario: scenario.into(),
        seed: 1,
        until_s,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .unwrap()
}

fn kinds_found(trace: &Trace) -> BTreeSet<AnomalyKind> {
    check(&trace.header, &trace.events)
        .iter()
        .map(|a| a.kind)
        .collect()
}

#[test]
fn each_scenario_with_default_knobs_shows_the_anomalies_of_its_lesson() {
    use AnomalyKind::*;
    let check_kinds = |scenario: &str, expected: &[AnomalyKind]| {
        let trace = run(scenario, 30.0, &[], &[]);
        assert_eq!(
            kinds_found(&trace),
            expected.iter().copied().collect(),
            "{scenario}: {:?}",
            counts(&check(&trace.header, &trace.events))
        );
    };
    // Asking the source every time is never stale.
    check_kinds("request-response", &[]);
    // A rename while the copy is not updated (or not yet) serves old names.
    check_kinds("duplication", &[StaleRead]);
    check_kinds("eventual-consistency", &[StaleRead]);
    check_kinds("hybrid", &[StaleRead]);
    // RabbitMQ's rule (the default) redelivers only on a lost connection, which these knobs do
    // not cause: nothing is applied twice.
    check_kinds("event-driven", &[]);
    // SQS's rule redelivers an event whose ack is late, and a consumer without an idempotency
    // check applies it twice.
    let sqs = run("event-driven", 30.0, &[("redelivery", 1.0)], &[]);
    assert_eq!(kinds_found(&sqs), [DuplicateApplied].into_iter().collect());
    // The coordinator crashes mid-rename (rename #15) and flags it on restart.
    check_kinds("gateway", &[PartialUpdate]);
}

#[test]
fn a_broker_crash_while_a_consumer_is_down_loses_confirmed_events_for_that_consumer() {
    // Shipping is down 8–16 s (the scenario's knob), so orders queue for it; the broker crashes
    // at 12 s. A broker that keeps its queues in memory loses what Shipping's queue held,
    // although each publish was confirmed to Order (`durable=0`); durable queues keep them.
    let durable = |on: f64| vec![("durable", on)];
    let trace = run("event-driven", 30.0, &durable(0.0), &["crash:Broker@12+1"]);
    let anomalies = check(&trace.header, &trace.events);
    let lost: Vec<_> = anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::ConfirmedEventNeverApplied)
        .collect();
    assert!(!lost.is_empty(), "{anomalies:?}");
    for anomaly in &lost {
        assert!(
            anomaly.text.contains("Shipping never applied"),
            "{anomaly:?}"
        );
        let confirm = &trace.events[anomaly.events[0]];
        assert!(
            matches!(&confirm.event, Event::Sent { label, .. } if label.starts_with("confirm ")),
            "the proof begins with the broker's confirm: {confirm:?}"
        );
        assert!(confirm.at.0 < 12_000_000, "confirmed before the crash");
    }
    // Without the crash, every confirmed order reaches Shipping once it is back.
    let healthy = run("event-driven", 30.0, &durable(0.0), &[]);
    assert!(!kinds_found(&healthy).contains(&AnomalyKind::ConfirmedEventNeverApplied));
    let durable = run("event-driven", 30.0, &durable(1.0), &["crash:Broker@12+1"]);
    assert!(
        !kinds_found(&durable).contains(&AnomalyKind::ConfirmedEventNeverApplied),
        "durable queues keep confirmed events through the crash"
    );
}

#[test]
fn without_a_version_check_reordered_events_regress_copies_and_the_checker_shows_each() {
    let faults = ["reorder:*=50%@0"];
    let knobs = |apply_only_newer| {
        [
            ("apply_only_newer", apply_only_newer),
            ("rename_rate_per_s", 8.0),
        ]
    };
    let without = run("eventual-consistency", 30.0, &knobs(0.0), &faults);
    let summary = shared::metrics::summarize(&without);
    let regressions = summary.anomalies["copy_regression"];
    println!("copy regressions without a version check: {regressions}");
    assert!(regressions > 0);
    assert_eq!(regressions, summary.copy_regressions);
    let with = run("eventual-consistency", 30.0, &knobs(1.0), &faults);
    assert!(!kinds_found(&with).contains(&AnomalyKind::CopyRegression));
}

#[test]
fn fed_one_event_at_a_time_the_checker_only_adds_anomalies_and_ends_where_check_does() {
    // What the page will do, frame by frame: what was shown once stays true.
    for spec in shared::scenario::catalog() {
        let has_broker = !matches!(spec.name, "request-response" | "duplication" | "gateway");
        let faults: &[&str] = if has_broker {
            &["crash:Broker@3+1", "duplicate:*=20%@2+4"]
        } else {
            &["duplicate:*=20%@2+4"]
        };
        let trace = run(spec.name, 15.0, &[], faults);
        let mut checker = shared::check::Checker::new(&trace.header);
        let mut before = Vec::new();
        for event in &trace.events {
            checker.push(event);
            let now = checker.anomalies();
            assert!(
                now.starts_with(&before),
                "{}: an anomaly changed or went away",
                spec.name
            );
            before = now.to_vec();
        }
        assert_eq!(before, check(&trace.header, &trace.events), "{}", spec.name);
    }
}
