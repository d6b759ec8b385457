//! The hybrid scenario (the article's Ride/Driver) teaches what the article says, in numbers:
//! a cache spares calls to Driver, more so the longer its TTL, at the price of stale ratings;
//! reads are slower than eventual consistency's and faster than request/response's; and the
//! synchronous call that remains fails reads while Driver is down and the cache cannot cover.

mod common;

use engine::simulate;
use shared::call_metrics::OpCalls;
use shared::fold::WorldState;
use shared::metrics::summarize;
use shared::protocol::{Event, Outcome, RunRequest, Trace};
use shared::time::Micros;
use std::collections::BTreeMap;

const READ_RIDE: &str = "read ride";

fn run(scenario: &str, seed: u64, knobs: &[(&str, f64)], faults: &[&str]) -> Trace {
    simulate(&RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: 60.0,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .expect("valid request")
}

/// A healthy hybrid run: Driver never goes down.
fn healthy(seed: u64, knobs: &[(&str, f64)]) -> WorldState {
    let mut all = vec![("driver_down_for_s", 0.0)];
    all.extend_from_slice(knobs);
    fold(&run("hybrid", seed, &all, &[]))
}

fn fold(trace: &Trace) -> WorldState {
    let mut state = WorldState::new(&trace.header);
    for event in &trace.events {
        state.apply(event);
    }
    state
}

/// Reads that showed a version of `table` older than one confirmed before they began.
fn stale_in(state: &WorldState, table: &str) -> u64 {
    state
        .metrics
        .stale_reads_by_table
        .get(table)
        .copied()
        .unwrap_or(0)
}

fn reads(state: &WorldState) -> OpCalls {
    state.metrics.calls.op(READ_RIDE)
}

/// The mean latency of successful operations named `name`.
fn mean_latency(trace: &Trace, name: &str) -> Micros {
    let mut names = BTreeMap::new();
    let (mut total, mut count) = (0, 0);
    for event in &trace.events {
        match &event.event {
            Event::OpStarted { op, name, .. } => {
                names.insert(*op, name.clone());
            }
            Event::OpFinished {
                op,
                outcome: Outcome::Ok,
                latency,
                ..
            } if names.get(op).is_some_and(|n| n == name) => {
                total += latency.0;
                count += 1;
            }
            _ => {}
        }
    }
    assert!(count > 0, "no successful {name}");
    Micros(total / count)
}

/// `(start time, outcome)` of every finished read of a ride.
fn read_outcomes(trace: &Trace) -> Vec<(Micros, Outcome)> {
    let mut started = BTreeMap::new();
    let mut outcomes = Vec::new();
    for event in &trace.events {
        match &event.event {
            Event::OpStarted { op, name, .. } if name == READ_RIDE => {
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
fn a_cache_spares_calls_to_driver_and_no_cache_calls_on_every_read() {
    for seed in [1, 2, 3] {
        let cached = reads(&healthy(seed, &[("cache_ttl_ms", 10_000.0)]));
        let uncached = reads(&healthy(seed, &[("cache_ttl_ms", 0.0)]));
        println!(
            "seed {seed}: calls per read {:.2} with a 10 s cache ({} calls for {} reads), {:.2} without ({} for {})",
            cached.calls_per_op(),
            cached.calls,
            cached.started,
            uncached.calls_per_op(),
            uncached.calls,
            uncached.started
        );
        assert!(cached.started >= 100, "about 2 reads a second for 60 s");
        assert!(cached.calls_per_op() < 0.5, "{cached:?}");
        assert_eq!(
            uncached.calls, uncached.arrived,
            "without a cache, every read that reaches Ride makes exactly one call"
        );
        assert_eq!(uncached.cache_hit_ratio(), 0.0);
    }
}

#[test]
fn a_longer_ttl_gives_a_higher_hit_ratio() {
    let ratios: Vec<f64> = [1_000.0, 5_000.0, 20_000.0, 60_000.0]
        .iter()
        .map(|ttl| reads(&healthy(4, &[("cache_ttl_ms", *ttl)])).cache_hit_ratio())
        .collect();
    println!("hit ratio for TTL 1 s, 5 s, 20 s, 60 s: {ratios:.2?}");
    assert!(ratios.windows(2).all(|w| w[0] < w[1]), "{ratios:?}");
    assert!(ratios[0] < 0.3 && ratios[3] > 0.8, "{ratios:?}");
}

#[test]
fn a_long_ttl_with_frequent_rating_changes_serves_stale_ratings() {
    let stale = |ttl_ms: f64| {
        let state = healthy(
            5,
            &[("cache_ttl_ms", ttl_ms), ("rating_change_rate_per_s", 2.0)],
        );
        let stale = stale_in(&state, "driver_details");
        (stale, reads(&state).started)
    };
    let (long, reads_long) = stale(60_000.0);
    let (none, _) = stale(0.0);
    println!("stale ratings: {long} of {reads_long} reads with a 60 s TTL, {none} without a cache");
    assert!(
        long * 5 > reads_long,
        "over a fifth of reads show an outdated rating"
    );
    assert_eq!(
        none, 0,
        "a read that asks Driver sees every confirmed rating"
    );
}

#[test]
fn hybrid_reads_are_slower_than_eventual_consistency_and_faster_than_request_response() {
    let knobs = [("read_rate_per_s", 2.0), ("rename_rate_per_s", 0.5)];
    let with = |extra: (&'static str, f64)| {
        let mut all = knobs.to_vec();
        all.push(extra);
        all
    };
    let ec = run(
        "eventual-consistency",
        6,
        &with(("order_down_for_s", 0.0)),
        &[],
    );
    let rr = run(
        "request-response",
        6,
        &with(("product_down_for_s", 0.0)),
        &[],
    );
    let hybrid = run("hybrid", 6, &with(("driver_down_for_s", 0.0)), &[]);
    let (ec_ms, hybrid_ms, rr_ms) = (
        mean_latency(&ec, "read order").as_millis_f64(),
        mean_latency(&hybrid, READ_RIDE).as_millis_f64(),
        mean_latency(&rr, "read order").as_millis_f64(),
    );
    let summary = summarize(&hybrid);
    println!(
        "mean read latency: eventual consistency {ec_ms:.1} ms < hybrid {hybrid_ms:.1} ms < request/response {rr_ms:.1} ms; \
         hybrid p50 {} µs, p99 {} µs",
        summary.by_operation[READ_RIDE].p50_us, summary.by_operation[READ_RIDE].p99_us
    );
    assert!(ec_ms < hybrid_ms && hybrid_ms < rr_ms);
    // A miss adds one round trip to Driver: the slowest reads take about twice the fastest.
    assert!(
        summary.by_operation[READ_RIDE].p99_us > 3 * summary.by_operation[READ_RIDE].p50_us / 2
    );
}

#[test]
fn with_driver_down_reads_fail_honestly_unless_the_cache_covers_them() {
    let outage = |ttl_ms: f64| {
        let trace = run(
            "hybrid",
            7,
            &[("cache_ttl_ms", ttl_ms), ("driver_down_for_s", 0.0)],
            &["crash:Driver@10+10"],
        );
        let during: Vec<Outcome> = read_outcomes(&trace)
            .into_iter()
            .filter(|(at, _)| (Micros::from_secs(10)..Micros::from_secs(20)).contains(at))
            .map(|(_, outcome)| outcome)
            .collect();
        let after_ok = read_outcomes(&trace)
            .into_iter()
            .filter(|(at, _)| *at >= Micros::from_secs(21))
            .all(|(_, outcome)| outcome.is_ok());
        (during, after_ok, trace)
    };
    let (uncached, recovered, trace) = outage(0.0);
    assert!(uncached.len() >= 15, "about 2 reads a second for 10 s");
    for outcome in &uncached {
        assert_eq!(
            outcome,
            &Outcome::Failed {
                reason: "Driver is down (connection refused)".into()
            }
        );
    }
    assert!(recovered, "reads recover with Driver");
    let explained = trace.events.iter().any(|e| match &e.event {
        Event::Narration { text } => text.contains("the dependency this pattern keeps"),
        _ => false,
    });
    assert!(explained, "the trace says why reads fail");

    let (cached, _, _) = outage(8_000.0);
    let ok = cached.iter().filter(|o| o.is_ok()).count();
    println!(
        "reads while Driver is down: {ok} of {} answered from a 8 s cache, 0 of {} without",
        cached.len(),
        uncached.len()
    );
    assert!(
        ok > 0 && ok < cached.len(),
        "the cache covers drivers fetched shortly before the crash, not the others"
    );
}

#[test]
fn rides_copy_of_driver_names_catches_up_with_every_rename() {
    let trace = run(
        "hybrid",
        8,
        &[("rename_rate_per_s", 2.0), ("driver_down_for_s", 0.0)],
        &[],
    );
    let state = fold(&trace);
    let summary = summarize(&trace);
    assert!(summary.by_operation["rename driver"].ok >= 60);
    assert_eq!(
        common::check_copies_converge(&state, &trace.header.copies, Micros::from_secs(3)),
        Ok(())
    );
    let stale_names = stale_in(&state, "drivers");
    println!("reads with a name older than a confirmed rename: {stale_names}");
    assert!(
        stale_names > 0,
        "between a rename and its event, Ride's copy shows the old name"
    );
}
