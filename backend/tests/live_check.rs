//! The anomaly checker judges live runs as it judges simulated ones: each scenario run live
//! (real services, SQLite files, HTTP, the embedded broker) and simulated with the same knobs
//! shows the same kinds of anomaly — the evidence that the simulation teaches what real services
//! do. The gateway's two protocols too: live as simulated, the saga shows aborted reads where
//! two-phase commit shows none.

mod support;

use backend::live::{LiveConfig, LiveRun, Storage};
use shared::check::{AnomalyKind, check, counts};
use shared::metrics::summarize;
use shared::protocol::{EndReason, Event, Trace};
use std::collections::BTreeSet;
use support::{TempDir, request};

/// Each run's length, in s: short, but long enough for each lesson to show.
const RUN_S: f64 = 6.0;

/// A scenario, its knobs and its faults.
type Case = (&'static str, Vec<(&'static str, f64)>, Vec<&'static str>);

/// Each scenario with knobs that make its anomalies plain within [`RUN_S`]: either many of a
/// kind, or none possible, so that timing (live) and jitter (simulated) cannot decide a kind;
/// and the broker crash that loses confirmed events.
fn cases() -> Vec<Case> {
    // A broker crash while Shipping is down (1–2.5 s) takes the orders waiting in Shipping's
    // queue, each confirmed to Order, when the broker keeps its queues in memory (`durable=0`);
    // its queue drains afterwards, so each loss is judged.
    let broker_crash = vec![
        ("shipping_down_at_s", 1.0),
        ("shipping_down_for_s", 1.5),
        ("order_rate_per_s", 3.0),
        ("shipping_work_ms", 20.0),
        ("durable", 0.0),
    ];
    let no_fault = Vec::new;
    let saga_refused = |protocol: f64| {
        vec![
            ("protocol", protocol),
            ("product_failure_pct", 100.0),
            ("order_failure_pct", 0.0),
            ("coordinator_crash_at_rename", 0.0),
            ("rename_rate_per_s", 5.0),
            ("read_rate_per_s", 20.0),
        ]
    };
    vec![
        // Every read asks Product: never stale.
        (
            "request-response",
            vec![("read_rate_per_s", 6.0)],
            no_fault(),
        ),
        // Renames leave the copies of names in orders stale (update_both=0).
        (
            "duplication",
            vec![("rename_rate_per_s", 3.0), ("read_rate_per_s", 6.0)],
            no_fault(),
        ),
        // Renames reach Order's copy half a second later: reads in between are stale.
        (
            "eventual-consistency",
            vec![
                ("rename_rate_per_s", 3.0),
                ("read_rate_per_s", 6.0),
                ("broker_delay_ms", 500.0),
            ],
            no_fault(),
        ),
        // Shipping's work outlasts the ack timeout: under a visibility timeout every delivery to
        // Shipping is delivered again and applied twice; under RabbitMQ's rule none is.
        (
            "event-driven",
            vec![("shipping_work_ms", 400.0), ("shipping_down_for_s", 0.0)],
            no_fault(),
        ),
        (
            "event-driven",
            vec![
                ("shipping_work_ms", 400.0),
                ("shipping_down_for_s", 0.0),
                ("redelivery", 1.0),
            ],
            no_fault(),
        ),
        ("event-driven", broker_crash, vec!["crash:Broker@2+0.3"]),
        // The coordinator crashes at its 4th rename and flags it when it restarts 1 s later; no
        // participant refuses, so nothing is rolled back and no read is aborted.
        (
            "gateway",
            vec![
                ("rename_rate_per_s", 3.0),
                ("coordinator_crash_at_rename", 4.0),
                ("coordinator_restart_after_s", 1.0),
                ("product_failure_pct", 0.0),
                ("order_failure_pct", 0.0),
            ],
            no_fault(),
        ),
        // Product refuses every rename: under the saga, Order applies each before the refusal is
        // known and reads in between return names rolled back a moment later (aborted reads);
        // under two-phase commit Order only holds them prepared, and no read returns one.
        ("gateway", saga_refused(0.0), no_fault()),
        ("gateway", saga_refused(1.0), no_fault()),
        // Two-phase commit, the coordinator crashing after deciding its 4th rename and
        // restarting 1 s later: both rows stay in doubt meanwhile; nothing is half done.
        (
            "gateway",
            vec![
                ("protocol", 1.0),
                ("rename_rate_per_s", 3.0),
                ("coordinator_crash_at_rename", 4.0),
                ("coordinator_restart_after_s", 1.0),
                ("product_failure_pct", 0.0),
                ("order_failure_pct", 0.0),
            ],
            no_fault(),
        ),
        // Ratings change while the cache keeps serving the old ones for 10 s.
        (
            "hybrid",
            vec![
                ("read_rate_per_s", 6.0),
                ("rating_change_rate_per_s", 3.0),
                ("rename_rate_per_s", 2.0),
            ],
            no_fault(),
        ),
    ]
}

fn kinds(trace: &Trace) -> BTreeSet<AnomalyKind> {
    check(&trace.header, &trace.events)
        .iter()
        .map(|a| a.kind)
        .collect()
}

fn ended_normally(trace: &Trace) -> bool {
    matches!(
        trace.events.last().map(|e| &e.event),
        Some(Event::RunEnded {
            reason: EndReason::ReachedUntil,
            ..
        })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_shows_the_same_kinds_of_anomaly_live_as_simulated() {
    let dir = TempDir::new("live-check");
    // Started one after the other, the live runs go on side by side.
    let mut runs = Vec::new();
    for (scenario, knobs, faults) in cases() {
        let mut request = request(scenario, RUN_S, &knobs);
        request.faults = faults.iter().map(|f| f.to_string()).collect();
        let config = LiveConfig {
            storage: Storage::Dir(dir.path().to_path_buf()),
            ..LiveConfig::default()
        };
        let live = LiveRun::start(&request, config)
            .await
            .expect("the live run starts");
        runs.push((scenario, request, live));
    }
    let mut mismatches = Vec::new();
    for (scenario, request, live) in runs {
        live.finished().await;
        let live = live.trace();
        let simulated = engine::simulate(&request).unwrap();
        assert!(
            ended_normally(&live),
            "{scenario}: the live run ended early"
        );
        assert!(ended_normally(&simulated), "{scenario}");
        let (live_kinds, simulated_kinds) = (kinds(&live), kinds(&simulated));
        let live_counts = counts(&check(&live.header, &live.events));
        let simulated_counts = counts(&check(&simulated.header, &simulated.events));
        println!("{scenario}: simulated {simulated_counts:?}\n{scenario}: live {live_counts:?}");
        if live_kinds != simulated_kinds {
            mismatches.push(format!(
                "{scenario}: simulated {simulated_kinds:?}, live {live_kinds:?}"
            ));
        }
        let expected: &[AnomalyKind] = match scenario {
            _ if !request.faults.is_empty() => &[AnomalyKind::ConfirmedEventNeverApplied],
            "request-response" => &[],
            "duplication" | "eventual-consistency" | "hybrid" => &[AnomalyKind::StaleRead],
            "gateway" if request.knobs.get("protocol") == Some(&1.0) => {
                let crashes = request.knobs.get("coordinator_crash_at_rename") != Some(&0.0);
                let in_doubt_us = summarize(&live).coordination.in_doubt_max_us;
                println!("{scenario} 2pc: in doubt at most {in_doubt_us} µs live");
                if crashes {
                    // Down 1 s between deciding and telling: both rows wait at least that long.
                    assert!(in_doubt_us >= 1_000_000, "live in doubt {in_doubt_us} µs");
                }
                &[]
            }
            "gateway" if request.knobs.get("product_failure_pct") == Some(&100.0) => {
                &[AnomalyKind::AbortedRead]
            }
            "gateway" => &[AnomalyKind::PartialUpdate],
            "event-driven" if request.knobs.get("redelivery") == Some(&1.0) => {
                &[AnomalyKind::DuplicateApplied]
            }
            "event-driven" => &[],
            _ => continue,
        };
        assert_eq!(
            simulated_kinds,
            expected.iter().copied().collect(),
            "{scenario} simulated: {simulated_counts:?}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "live and simulated runs differ:\n{}",
        mismatches.join("\n")
    );
}
