//! Seed sweeps: invariants that hold for every seed and for randomized knobs.
//! Each failure names its seed; rerun one with `SWEEP_SEED=<n> cargo test -p shared --test sweeps`.

mod common;
mod event_driven_checks;

use engine::simulate;
use shared::check::{AnomalyKind, check};
use shared::fold::WorldState;
use shared::protocol::{CopyDecl, Event, MsgId, RunRequest, ServiceId, Trace};
use shared::rng::SimRng;
use shared::scenario::{catalog, find};
use shared::time::Micros;
use std::collections::{BTreeMap, BTreeSet};

const SEEDS_PER_SCENARIO: u64 = 250;

/// The seeds to sweep: all of them, or the one in `SWEEP_SEED`.
fn seeds() -> Vec<u64> {
    match std::env::var("SWEEP_SEED") {
        Ok(seed) => vec![seed.parse().expect("SWEEP_SEED is a number")],
        Err(_) => (1..=SEEDS_PER_SCENARIO).collect(),
    }
}

/// A request with every knob drawn at random (from the seed) within a range that still lets
/// the run settle before it ends.
fn randomized_request(scenario: &str, seed: u64) -> RunRequest {
    let spec = find(scenario).unwrap();
    let mut rng = SimRng::new(seed ^ 0x5eed);
    let pick = |rng: &mut SimRng, min: f64, max: f64| {
        min + (max - min) * (rng.below(1_001) as f64 / 1_000.0)
    };
    let mut knobs = shared::protocol::KnobMap::new();
    for knob in spec.knobs {
        let value = match knob.name {
            "products_per_order" => pick(&mut rng, 1.0, 8.0).round(),
            "link_latency_ms" => pick(&mut rng, 1.0, 200.0),
            "call_timeout_ms" => pick(&mut rng, 50.0, 1_000.0),
            "read_rate_per_s"
            | "rename_rate_per_s"
            | "order_rate_per_s"
            | "rating_change_rate_per_s" => pick(&mut rng, 0.0, 10.0),
            "cache_ttl_ms" => pick(&mut rng, 0.0, 30_000.0),
            "broker_delay_ms" => pick(&mut rng, 0.0, 1_000.0),
            "ack_timeout_ms" => pick(&mut rng, 50.0, 2_000.0),
            "inventory_work_ms" | "shipping_work_ms" => pick(&mut rng, 0.0, 300.0),
            "idempotent" | "redelivery" | "durable" | "publish" => rng.below(2) as f64,
            // Crashes between a write and its publish: what the outbox survives and dual write
            // does not (see below, and tests/outbox.rs).
            "crash_after_write_pct" => pick(&mut rng, 0.0, 20.0),
            // Half the seeds each, without a draw, so every other knob's draw is what it was
            // before the gateway had a protocol.
            "protocol" => (seed % 2) as f64,
            // Resilience, likewise from the seed alone: every mix of deadlines, retries with or
            // without a budget, and a breaker opening after 1-4 failures for 100-800 ms.
            "deadlines" => (seed % 2) as f64,
            "retries" => ((seed / 2) % 3) as f64,
            "retry_backoff_ms" => 50.0,
            "retry_budget_pct" if !(seed / 2).is_multiple_of(3) => ((seed / 6) % 2 * 10) as f64,
            "retry_budget_pct" => 0.0,
            "breaker" => ((seed / 12) % 2) as f64,
            "breaker_failures" if (seed / 12) % 2 == 1 => (1 + (seed / 24) % 4) as f64,
            "breaker_open_ms" if (seed / 12) % 2 == 1 => (100 + (seed / 96) % 8 * 100) as f64,
            "breaker_failures" => 5.0,
            "breaker_open_ms" => 1_000.0,
            // Convergence is what the version check promises; without it, see the lesson test.
            "apply_only_newer" => 1.0,
            "update_both" => rng.below(2) as f64,
            "pool_size" => pick(&mut rng, 1.0, 16.0).round(),
            "product_slow_factor" => pick(&mut rng, 1.0, 10.0).round(),
            "product_slow_at_s" => pick(&mut rng, 0.0, 20.0),
            "product_slow_for_s" => pick(&mut rng, 0.0, 10.0),
            "product_failure_pct" | "order_failure_pct" => pick(&mut rng, 0.0, 30.0),
            // Down to below one round trip, so that every update times out.
            "coordinator_timeout_ms" => pick(&mut rng, 20.0, 1_500.0),
            "coordinator_crash_at_rename" => pick(&mut rng, 0.0, 40.0).round(),
            "coordinator_restart_after_s" => pick(&mut rng, 0.1, 5.0),
            // Capacity by the seed, without a draw, so every other knob's draw is what it was
            // before services had one: a quarter of the seeds unlimited (today's behaviour),
            // the rest 1–3 workers of 15–45 ms and queues of 0–18.
            name if name.ends_with("_workers") => (seed % 4) as f64,
            name if name.ends_with("_service_ms") && seed.is_multiple_of(4) => 0.0,
            name if name.ends_with("_service_ms") => 15.0 + 10.0 * (seed % 4) as f64,
            name if name.ends_with("_queue_max") => 3.0 * (seed % 7) as f64,
            name if name.ends_with("_down_at_s") => pick(&mut rng, 0.0, 20.0),
            name if name.ends_with("_down_for_s") => pick(&mut rng, 0.0, 10.0),
            other => panic!("knob {other} needs a range in this sweep"),
        };
        knobs.insert(knob.name.to_string(), value);
    }
    // A restart time with no crash is refused as a mistake: keep its default then.
    if knobs.get("coordinator_crash_at_rename") == Some(&0.0) {
        knobs.insert("coordinator_restart_after_s".into(), 2.0);
    }
    // The broker delivers one event per round trip (prefetch 1, to keep order). Keep renames
    // below half of that capacity, or the queue grows for as long as renames go on.
    if let (Some(rate), Some(latency_ms)) =
        (knobs.get("rename_rate_per_s"), knobs.get("link_latency_ms"))
    {
        let round_trip_s = 2.0 * 1.25 * latency_ms / 1_000.0;
        knobs.insert("rename_rate_per_s".into(), rate.min(0.5 / round_trip_s));
    }
    // Each consumer takes one event per round trip plus its work (up to 1.5× the mean): keep new
    // orders below half of the slower consumer's pace, so a backlog drains.
    if let (Some(rate), Some(latency_ms)) =
        (knobs.get("order_rate_per_s"), knobs.get("link_latency_ms"))
    {
        let work_ms = ["inventory_work_ms", "shipping_work_ms"]
            .iter()
            .filter_map(|name| knobs.get(*name))
            .fold(0.0, |a: f64, b| a.max(*b));
        let cycle_s = (2.0 * 1.25 * latency_ms + 1.5 * work_ms) / 1_000.0;
        knobs.insert("order_rate_per_s".into(), rate.min(0.5 / cycle_s));
    }
    if knobs.get("publish") == Some(&1.0) {
        // The outbox promises its events to durable queues and idempotent consumers; the
        // scenario refuses anything else.
        for name in ["durable", "idempotent"] {
            if knobs.contains_key(name) {
                knobs.insert(name.into(), 1.0);
            }
        }
    } else {
        // Dual write loses the event of a change it crashed before publishing: that is its
        // lesson, not an invariant.
        if knobs.contains_key("crash_after_write_pct") {
            knobs.insert("crash_after_write_pct".into(), 0.0);
        }
    }
    let mut faults = vec![random_network_fault(&mut rng)];
    faults.extend(overlapping_crashes(&knobs, &mut rng));
    RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: 45.0,
        knobs,
        faults,
    }
}

/// For each service a knob takes down, a second crash that overlaps the knob's outage (or
/// begins up to 1 s before it): the service is down while either covers it, and the sweeps'
/// invariants must hold through both.
fn overlapping_crashes(knobs: &shared::protocol::KnobMap, rng: &mut SimRng) -> Vec<String> {
    let mut crashes = Vec::new();
    for (name, at_s) in knobs {
        let Some(service) = name.strip_suffix("_down_at_s") else {
            continue;
        };
        let outage_s = knobs[&format!("{service}_down_for_s")];
        let begins_s = (at_s - 1.0 + (outage_s + 1.0) * rng.below(1_001) as f64 / 1_000.0).max(0.0);
        let lasts_s = 0.5 + 4.5 * rng.below(1_001) as f64 / 1_000.0;
        let mut title = service.to_string();
        title[..1].make_ascii_uppercase();
        crashes.push(format!("crash:{title}@{begins_s:.3}+{lasts_s:.3}"));
    }
    crashes
}

/// A network fault on every link that begins in the first 20 s and heals within 10 s.
fn random_network_fault(rng: &mut SimRng) -> String {
    let kind = ["drop", "duplicate", "reorder"][rng.below(3) as usize];
    let percent = 1 + rng.below(30);
    let at_s = rng.below(20);
    let lasts_s = 1 + rng.below(10);
    format!("{kind}:*={percent}%@{at_s}+{lasts_s}")
}

/// Every sent message is delivered or dropped exactly once, or counted in flight at the end.
fn check_message_accounting(trace: &Trace) -> Result<(), String> {
    let mut open: BTreeSet<MsgId> = BTreeSet::new();
    let mut closed: BTreeSet<MsgId> = BTreeSet::new();
    let mut in_flight_at_end = None;
    for event in &trace.events {
        match event.event {
            Event::Sent { msg, .. } if !open.insert(msg) || closed.contains(&msg) => {
                return Err(format!("message {msg:?} sent twice"));
            }
            Event::Duplicated { copy, .. } if !open.insert(copy) || closed.contains(&copy) => {
                return Err(format!("copy {copy:?} made twice"));
            }
            Event::Delivered { msg } | Event::Dropped { msg, .. } => {
                if !open.remove(&msg) {
                    return Err(format!("message {msg:?} ended without being in flight"));
                }
                closed.insert(msg);
            }
            Event::RunEnded {
                messages_in_flight, ..
            } => in_flight_at_end = Some(messages_in_flight),
            _ => {}
        }
    }
    match in_flight_at_end {
        Some(n) if n == open.len() as u64 => Ok(()),
        Some(n) => Err(format!(
            "{} messages unaccounted for; the run reported {n} in flight",
            open.len()
        )),
        None => Err("the trace has no RunEnded".into()),
    }
}

/// Every copy holds every source version written more than `settle` before the end.
fn check_copies_converge(trace: &Trace, settle: Micros) -> Result<(), String> {
    let mut state = WorldState::new(&trace.header);
    for event in &trace.events {
        state.apply(event);
    }
    common::check_copies_converge(&state, &trace.header.copies, settle)
}

fn sweep(scenario: &str, check: impl Fn(&Trace) -> Result<(), String>) {
    let seeds = seeds();
    println!(
        "{scenario}: seeds {}..={}",
        seeds[0],
        seeds[seeds.len() - 1]
    );
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|&seed| {
            let request = randomized_request(scenario, seed);
            let trace = simulate(&request).unwrap();
            check(&trace).err().map(|e| {
                format!(
                    "seed {seed} ({:?}, faults {:?}): {e}",
                    request.knobs, request.faults
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}

/// The anomaly checker (`shared::check`) against the metrics, kind by kind, as
/// `docs/METRICS.md` ("Anomalies") relates them.
fn check_checker_agrees_with_metrics(trace: &Trace) -> Result<(), String> {
    let summary = shared::metrics::summarize(trace);
    let anomalies = check(&trace.header, &trace.events);
    let count = |kind: AnomalyKind| anomalies.iter().filter(|a| a.kind == kind).count() as u64;
    let duplicates_applied: u64 = summary
        .consumers
        .values()
        .map(|c| c.duplicates_applied)
        .sum();
    let flags = anomalies
        .iter()
        .filter(|a| {
            a.kind == AnomalyKind::PartialUpdate
                && matches!(
                    trace.events[a.events[0]].event,
                    Event::PartialUpdateFlagged { .. }
                )
        })
        .count() as u64;
    let pairs = [
        (
            "stale reads",
            count(AnomalyKind::StaleRead),
            summary.stale_reads,
        ),
        (
            "aborted reads",
            count(AnomalyKind::AbortedRead),
            summary.coordination.aborted_reads,
        ),
        (
            "copy regressions",
            count(AnomalyKind::CopyRegression),
            summary.copy_regressions,
        ),
        (
            "duplicates applied",
            count(AnomalyKind::DuplicateApplied),
            duplicates_applied,
        ),
        (
            "partial updates flagged",
            flags,
            summary.coordination.partial_updates_flagged,
        ),
        // Every service writes its own rows at increasing versions: no write goes below a
        // version a client was told about.
        ("lost updates", count(AnomalyKind::LostUpdate), 0),
        // The sweeps never crash a broker, and a broker that confirmed a publish keeps it until a
        // subscriber acknowledges it.
        (
            "confirmed events never applied",
            count(AnomalyKind::ConfirmedEventNeverApplied),
            0,
        ),
    ];
    for (what, checker, metric) in pairs {
        if checker != metric {
            return Err(format!(
                "the checker finds {checker} {what}, the metrics {metric}"
            ));
        }
    }
    if summary.anomalies != shared::check::counts_by_name(&anomalies) {
        return Err("the summary's anomaly counts are not the checker's".into());
    }
    Ok(())
}

#[test]
fn every_message_is_accounted_for_and_the_checker_agrees_with_the_metrics_in_every_scenario() {
    let totals = std::cell::RefCell::new(BTreeMap::<&str, u64>::new());
    for spec in catalog() {
        sweep(spec.name, |trace| {
            check_message_accounting(trace)?;
            check_checker_agrees_with_metrics(trace)?;
            for anomaly in check(&trace.header, &trace.events) {
                let flagged = matches!(
                    trace.events[anomaly.events[0]].event,
                    Event::PartialUpdateFlagged { .. }
                );
                let name = match anomaly.kind {
                    AnomalyKind::PartialUpdate if flagged => "partial_update (flagged)",
                    AnomalyKind::PartialUpdate => "partial_update (diverged at the end)",
                    kind => kind.name(),
                };
                *totals.borrow_mut().entry(name).or_default() += 1;
            }
            Ok(())
        });
    }
    println!("anomalies over every sweep: {:?}", totals.borrow());
}

#[test]
fn eventual_consistency_copies_converge_once_renames_have_had_time_to_arrive() {
    // The slowest path in this sweep: Order down until 30 s at most, a retry backoff of up to 2 s,
    // then a backlog of up to ~30 events at up to 1 s + 2 × 250 ms each. Run to 45 s, settle 10 s
    // before the end: every rename older than that must be in the copy.
    sweep("eventual-consistency", |trace| {
        check_message_accounting(trace)?;
        check_copies_converge(trace, Micros::from_secs(10))
    });
}

/// With the outbox, every change committed at the source is applied where it is copied, once:
/// the copies converge as without it, and on top no event the broker confirmed is lost and the
/// relay confirmed every outbox row written more than `settle` before the end. Returns how many
/// outbox rows the run wrote and how many publishes the relay made again.
fn check_outbox_delivers(trace: &Trace, settle: Micros) -> Result<(u64, u64), String> {
    let mut state = WorldState::new(&trace.header);
    let mut published = BTreeMap::<String, u64>::new();
    for event in &trace.events {
        state.apply(event);
        if let Event::Sent { label, .. } = &event.event
            && let Some(event_id) = label.strip_prefix("publish ")
        {
            *published.entry(event_id.to_string()).or_default() += 1;
        }
    }
    let settled = state.now - settle;
    let mut rows = 0;
    for (service, tables) in state.tables.iter().enumerate() {
        for (key, row) in tables
            .get(shared::services::OUTBOX_TABLE)
            .into_iter()
            .flatten()
        {
            rows += 1;
            if row.written_at <= settled && !row.value.starts_with("sent: ") {
                return Err(format!(
                    "service {service}'s outbox row {key} ({}) is still unconfirmed at the end, \
                     written at {}",
                    row.value, row.written_at
                ));
            }
        }
    }
    let anomalies = check(&trace.header, &trace.events);
    for kind in [
        AnomalyKind::ConfirmedEventNeverApplied,
        AnomalyKind::DuplicateApplied,
        AnomalyKind::CopyRegression,
    ] {
        if let Some(anomaly) = anomalies.iter().find(|a| a.kind == kind) {
            return Err(format!("{}: {}", kind.name(), anomaly.text));
        }
    }
    let again = published.values().map(|n| n - 1).sum();
    Ok((rows, again))
}

#[test]
fn the_outbox_applies_every_committed_change_exactly_once_where_it_is_copied_or_consumed() {
    // Both scenarios, half their seeds with the outbox (randomized_request draws `publish`),
    // with crashes between write and publish, a network fault and crashes of the services.
    let totals = std::cell::RefCell::new((0u64, 0u64, 0u64));
    sweep("eventual-consistency", |trace| {
        if trace.header.knobs.get("publish") != Some(&1.0) {
            return Ok(());
        }
        check_message_accounting(trace)?;
        check_copies_converge(trace, Micros::from_secs(10))?;
        let (rows, again) = check_outbox_delivers(trace, Micros::from_secs(10))?;
        let mut totals = totals.borrow_mut();
        totals.0 += 1;
        totals.1 += rows;
        totals.2 += again;
        Ok(())
    });
    sweep("event-driven", |trace| {
        if trace.header.knobs.get("publish") != Some(&1.0) {
            return Ok(());
        }
        let state = event_driven_checks::fold(trace);
        event_driven_checks::check_no_order_lost(trace, &state, Micros::from_secs(10))?;
        event_driven_checks::check_exactly_once(trace, &state)?;
        let (rows, again) = check_outbox_delivers(trace, Micros::from_secs(10))?;
        let mut totals = totals.borrow_mut();
        totals.0 += 1;
        totals.1 += rows;
        totals.2 += again;
        Ok(())
    });
    let (runs, rows, again) = totals.into_inner();
    println!(
        "outbox sweep: {runs} runs with the outbox, {rows} outbox rows, {again} publishes made again"
    );
    if seeds().len() > 1 {
        assert!(
            runs > 0 && rows > 0 && again > 0,
            "the sweep exercises the relay"
        );
    }
}

#[test]
fn duplication_that_updates_both_never_serves_a_name_older_than_a_confirmed_rename() {
    // Faults may make the synchronous update fail — then the rename fails too, and is never
    // confirmed. What the pattern promises is that a confirmed rename is in every copy.
    let seeds = seeds();
    let mut failures = Vec::new();
    for &seed in &seeds {
        let mut request = randomized_request("duplication", seed);
        request.knobs.insert("update_both".into(), 1.0);
        let trace = simulate(&request).unwrap();
        let summary = shared::metrics::summarize(&trace);
        if summary.stale_reads > 0 {
            failures.push(format!(
                "seed {seed} ({:?}, faults {:?}): {} stale reads",
                request.knobs, request.faults, summary.stale_reads
            ));
        }
    }
    println!(
        "duplication with update_both: seeds {}..={}",
        seeds[0],
        seeds[seeds.len() - 1]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn request_response_reads_are_never_stale_because_they_ask_the_source() {
    // A breaker's fallback is a name Order remembers, which a rename may have passed by: only
    // degraded reads may be stale.
    sweep("request-response", |trace| {
        let summary = shared::metrics::summarize(trace);
        let stale = summary.stale_reads;
        if stale <= summary.resilience.degraded_reads {
            Ok(())
        } else {
            Err(format!(
                "{stale} stale reads, {} degraded",
                summary.resilience.degraded_reads
            ))
        }
    });
}

/// From the trace alone: no call from a breaker's caller to its callee while the breaker is
/// open, and one at most (the probe) while it is half-open. A crash of the caller forgets its
/// breaker (closed again).
fn check_breaker_calls_only_probes_while_open(trace: &Trace) -> Result<(), String> {
    use shared::protocol::{CircuitState, MessageKind};
    let mut breakers: BTreeMap<(ServiceId, ServiceId), (CircuitState, u32)> = BTreeMap::new();
    for (idx, event) in trace.events.iter().enumerate() {
        match &event.event {
            Event::CircuitChanged {
                service,
                peer,
                state,
            } => {
                breakers.insert((*service, *peer), (*state, 0));
            }
            Event::ServiceDown { service } => breakers.retain(|(caller, _), _| caller != service),
            Event::Sent {
                from,
                to,
                kind: MessageKind::Request,
                caused_by: Some(_),
                label,
                ..
            } => {
                if let Some((state, calls)) = breakers.get_mut(&(*from, *to)) {
                    *calls += 1;
                    match state {
                        CircuitState::Open => {
                            return Err(format!(
                                "event {idx} at {}: {label} while the breaker is open",
                                event.at
                            ));
                        }
                        CircuitState::HalfOpen if *calls > 1 => {
                            return Err(format!(
                                "event {idx} at {}: {label} is a second call while half-open",
                                event.at
                            ));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn request_response_breaker_never_calls_product_while_open_except_its_probes() {
    sweep("request-response", |trace| {
        check_breaker_calls_only_probes_while_open(trace)?;
        let summary = shared::metrics::summarize(trace);
        if summary.resilience.calls_while_breaker_open != 0 {
            return Err("the metric counts calls through an open breaker".into());
        }
        // A breaker that opened shows its fallback in degraded reads, or no read came.
        if trace.header.knobs.get("breaker") != Some(&1.0) && summary.resilience.degraded_reads > 0
        {
            return Err("degraded reads without a breaker".into());
        }
        Ok(())
    });
    // The invariant is exercised: over the full sweep, breakers opened and probed.
    if std::env::var("SWEEP_SEED").is_err() {
        let (mut opened, mut probes) = (0, 0);
        for seed in seeds() {
            let trace = simulate(&randomized_request("request-response", seed)).unwrap();
            opened += u64::from(shared::metrics::summarize(&trace).resilience.breaker_opened > 0);
            probes += trace
                .events
                .iter()
                .filter(|e| {
                    matches!(
                        &e.event,
                        Event::CircuitChanged {
                            state: shared::protocol::CircuitState::HalfOpen,
                            ..
                        }
                    )
                })
                .count();
        }
        println!("request-response: the breaker opened in {opened} runs, {probes} probes");
        assert!(
            opened >= 10 && probes >= 10,
            "{opened} runs, {probes} probes"
        );
    }
}

#[test]
fn event_driven_loses_no_order_while_a_consumer_is_down_and_applies_once_when_idempotent() {
    // Inventory and Shipping are down until 30 s at most; the broker retries every second at
    // most, and orders arrive at under half the pace a consumer drains. Every order older than
    // 10 s at the end of a 45 s run must have reached both.
    sweep("event-driven", |trace| {
        check_message_accounting(trace)?;
        let state = event_driven_checks::fold(trace);
        event_driven_checks::check_no_order_lost(trace, &state, Micros::from_secs(10))?;
        event_driven_checks::check_tables_match_applications(trace, &state)?;
        if trace.header.knobs["idempotent"] == 1.0 {
            event_driven_checks::check_exactly_once(trace, &state)?;
        }
        Ok(())
    });
}

/// The id of the service named `name`.
fn service_named(trace: &Trace, name: &str) -> Result<ServiceId, String> {
    trace
        .header
        .services
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.id)
        .ok_or_else(|| format!("no service named {name}"))
}

/// What one gateway run did, for the sweep's coverage figures.
#[derive(Default)]
struct GatewayRun {
    two_phase: bool,
    confirmed: u64,
    in_doubt_settled: u64,
    rollbacks: u64,
    partial_updates_flagged: u64,
    inconsistent_rows_at_end: u64,
}

/// The gateway's promises: it confirms a rename only while Product and Order hold the same name
/// at the rename's version; every coordinator restart after a crash flags the update it left
/// half done; and once everything has had `settle` to land, Order's copy equals Product's table
/// except where a partial update was flagged. Under two-phase commit nothing is ever half done:
/// no read returns an aborted name, nothing is flagged, no difference lasts, and every prepared
/// row is decided once everything has had `settle` to land.
fn check_gateway(trace: &Trace, settle: Micros) -> Result<GatewayRun, String> {
    let coordinator = service_named(trace, "Coordinator")?;
    let (product, order) = (
        service_named(trace, "Product")?,
        service_named(trace, "Order")?,
    );
    let mut state = WorldState::new(&trace.header);
    let mut run = GatewayRun {
        two_phase: trace.header.knobs.get("protocol") == Some(&1.0),
        ..GatewayRun::default()
    };
    let mut in_doubt: BTreeMap<(ServiceId, String), Micros> = BTreeMap::new();
    let (mut restarts, mut last_start) = (0, None);
    for event in &trace.events {
        state.apply(event);
        match &event.event {
            Event::ServiceUp { service } if *service == coordinator => {
                restarts += u64::from(last_start.is_some());
                last_start = Some(event.at);
            }
            Event::PartialUpdateFlagged { .. } => {
                let restarting = restarts > 0 && last_start == Some(event.at);
                if !restarting {
                    return Err(format!(
                        "a partial update flagged at {} outside a restart",
                        event.at
                    ));
                }
            }
            Event::RowWritten {
                service,
                table,
                key,
                value,
                ..
            } if table == "prepared_names" => {
                if in_doubt.remove(&(*service, key.clone())).is_some() {
                    run.in_doubt_settled += 1;
                }
                if value.starts_with("prepared at ") {
                    in_doubt.insert((*service, key.clone()), event.at);
                }
            }
            Event::Sent { from, label, .. } if *from == coordinator => {
                // "200 product 3 now v5": the coordinator confirms a rename to the client.
                let Some(rest) = label.strip_prefix("200 product ") else {
                    continue;
                };
                run.confirmed += 1;
                let (key, version) = rest
                    .split_once(" now v")
                    .ok_or_else(|| format!("unexpected confirmation {label:?}"))?;
                let source = state.row(product, "products", key);
                let copy = state.row(order, "product_names", key);
                let agree = match (source, copy) {
                    (Some(s), Some(c)) => {
                        s.value == c.value
                            && s.version == c.version
                            && s.version.to_string() == version
                    }
                    _ => false,
                };
                if !agree {
                    return Err(format!(
                        "at {} the coordinator confirmed {label:?} while Product holds {source:?} and Order {copy:?}",
                        event.at
                    ));
                }
            }
            _ => {}
        }
    }
    let flagged = &state.metrics.coordination.partial_updates_flagged;
    run.rollbacks = state.metrics.coordination.rollbacks_sent;
    run.partial_updates_flagged = flagged.len() as u64;
    if run.two_phase {
        let anomalies = check(&trace.header, &trace.events);
        if let Some(a) = anomalies.iter().find(|a| {
            matches!(
                a.kind,
                AnomalyKind::AbortedRead | AnomalyKind::PartialUpdate
            )
        }) {
            return Err(format!("two-phase commit showed {:?}: {}", a.kind, a.text));
        }
        if !flagged.is_empty() {
            return Err(format!("two-phase commit flagged {flagged:?}"));
        }
        let settled = state.now - settle;
        if let Some(((service, key), since)) = in_doubt.iter().find(|(_, since)| **since < settled)
        {
            return Err(format!(
                "{service:?}'s row {key} is still in doubt at the end, prepared at {since}"
            ));
        }
    } else if restarts > 0 && flagged.is_empty() {
        return Err(format!(
            "the coordinator restarted {restarts} time(s) after a crash but flagged nothing"
        ));
    }
    let settled = state.now - settle;
    for (copy, key) in state.inconsistent_rows() {
        run.inconsistent_rows_at_end += 1;
        let source = state.row(
            copy.source_service,
            &copy.source_table,
            CopyDecl::source_key(key),
        );
        let copied = state.row(copy.copy_service, &copy.copy_table, key);
        let recent = [source, copied]
            .iter()
            .flatten()
            .any(|row| row.written_at > settled);
        if !recent && !flagged.iter().any(|k| k == key) {
            return Err(format!(
                "product {key} differs for good and nobody flagged it: Product {source:?}, Order {copied:?}"
            ));
        }
    }
    Ok(run)
}

#[test]
fn gateway_confirms_only_agreed_renames_and_every_lasting_difference_is_flagged() {
    let totals = std::cell::RefCell::new(GatewayRun::default());
    let two_phase_runs = std::cell::Cell::new(0);
    // Product is down until 30 s at most; rollbacks retry at most 5 s apart; 15 s is ample.
    sweep("gateway", |trace| {
        check_message_accounting(trace)?;
        let run = check_gateway(trace, Micros::from_secs(15))?;
        let mut totals = totals.borrow_mut();
        totals.confirmed += run.confirmed;
        totals.rollbacks += run.rollbacks;
        totals.partial_updates_flagged += run.partial_updates_flagged;
        totals.inconsistent_rows_at_end += run.inconsistent_rows_at_end;
        totals.in_doubt_settled += run.in_doubt_settled;
        two_phase_runs.set(two_phase_runs.get() + u64::from(run.two_phase));
        Ok(())
    });
    let totals = totals.into_inner();
    println!(
        "gateway sweep: {} renames confirmed, {} rollback messages, {} partial updates flagged, \
         {} rows inconsistent at the end; {} runs under two-phase commit, {} prepared rows decided",
        totals.confirmed,
        totals.rollbacks,
        totals.partial_updates_flagged,
        totals.inconsistent_rows_at_end,
        two_phase_runs.get(),
        totals.in_doubt_settled
    );
    if seeds().len() > 1 {
        assert!(
            totals.confirmed > 0 && totals.rollbacks > 0 && totals.partial_updates_flagged > 0,
            "the sweep exercises confirmations, rollbacks and crashes"
        );
        assert!(
            two_phase_runs.get() > 0 && totals.in_doubt_settled > 0,
            "the sweep exercises two-phase commit"
        );
    }
}

/// Every copy holds every source version written more than `settle` before the end, except a
/// version whose event the network lost on its way to the broker.
///
/// FIXME: a publish is fire-and-forget, so a lost one is lost for good and the copy stays behind
/// until the next change of that row — the dual-write problem. A transactional outbox with
/// publisher confirms re-sends it (eventual consistency and event-driven have one,
/// `publish=outbox`); the hybrid's Driver has none yet, so this check asserts its behaviour.
fn check_copies_converge_unless_publish_lost(trace: &Trace, settle: Micros) -> Result<(), String> {
    let mut state = WorldState::new(&trace.header);
    let mut labels: BTreeMap<MsgId, &str> = BTreeMap::new();
    let mut lost_publishes: Vec<&str> = Vec::new();
    for event in &trace.events {
        state.apply(event);
        match &event.event {
            Event::Sent { msg, label, .. } if label.starts_with("publish ") => {
                labels.insert(*msg, label);
            }
            Event::Dropped { msg, .. } => lost_publishes.extend(labels.get(msg)),
            _ => {}
        }
    }
    let settled = state.now - settle;
    for copy in &trace.header.copies {
        let source = &state.tables[copy.source_service.0 as usize][&copy.source_table];
        let copied = &state.tables[copy.copy_service.0 as usize][&copy.copy_table];
        for (key, row) in source {
            let copy_version = copied.get(key).map_or(0, |r| r.version);
            let event_lost = || {
                let event = format!("{{id:{key},v:{}}}", row.version);
                lost_publishes.iter().any(|label| label.ends_with(&event))
            };
            if row.written_at <= settled && copy_version < row.version && !event_lost() {
                return Err(format!(
                    "{}[{key}] is v{copy_version} but the source reached v{} at {} and its event \
                     reached the broker",
                    copy.copy_table, row.version, row.written_at
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn hybrid_copies_of_driver_names_converge_once_renames_have_had_time_to_arrive() {
    // As for eventual consistency: Driver down until 30 s at most, then the broker's backlog
    // drains; every rename older than 10 s before the end must be in Ride's copy, unless the
    // network lost its event before the broker had it.
    sweep("hybrid", |trace| {
        check_message_accounting(trace)?;
        check_copies_converge_unless_publish_lost(trace, Micros::from_secs(10))
    });
}

#[test]
fn a_lost_publish_leaves_the_copy_behind_for_good() {
    // Every publish from Driver to the broker is lost from 5 s to 7 s. Pinned here so the FIXME
    // above stays visible: today the copy never learns of those renames unless the same driver
    // is renamed again.
    let request = RunRequest {
        scenario: "hybrid".into(),
        seed: 3,
        until_s: 9.0,
        knobs: shared::protocol::KnobMap::from([
            ("rename_rate_per_s".to_string(), 2.0),
            ("driver_down_for_s".to_string(), 0.0),
        ]),
        faults: vec!["drop:Driver-Broker=100%@5+2".into()],
    };
    let trace = simulate(&request).unwrap();
    let lagging = check_copies_converge(&trace, Micros::from_secs(1));
    assert!(
        lagging
            .as_ref()
            .is_err_and(|e| e.starts_with("driver_names[")),
        "{lagging:?}"
    );
    assert_eq!(
        check_copies_converge_unless_publish_lost(&trace, Micros::from_secs(1)),
        Ok(())
    );
}
