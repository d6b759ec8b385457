//! The event-driven lesson in numbers: a consumer that is down has its events kept in its queue
//! and applied when it is back; an event delivered again (a lost ack breaks the connection under
//! RabbitMQ's rule; a late ack is enough under SQS's visibility timeout) is applied twice unless
//! the consumer is idempotent.

mod event_driven_checks;

use engine::simulate;
use event_driven_checks::{
    check_exactly_once, check_no_order_lost, check_tables_match_applications, fold, service,
};
use shared::metrics::summarize;
use shared::protocol::{Event, RunRequest, Trace};
use shared::services::SHIPMENTS_TABLE;
use shared::time::Micros;

fn run(seed: u64, knobs: &[(&str, f64)]) -> Trace {
    run_with_faults(seed, knobs, &[])
}

fn run_with_faults(seed: u64, knobs: &[(&str, f64)], faults: &[&str]) -> Trace {
    let knobs = knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    simulate(&RunRequest {
        scenario: "event-driven".into(),
        seed,
        until_s: 30.0,
        knobs,
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .expect("valid request")
}

fn narrated(trace: &Trace, words: &str) -> bool {
    trace.events.iter().any(|e| match &e.event {
        Event::Narration { text } => text.contains(words),
        _ => false,
    })
}

/// The shipping queue's depth over time, as (time, depth).
fn shipping_queue(trace: &Trace) -> Vec<(Micros, u32)> {
    trace
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::QueueDepth { queue, depth, .. } if queue == "shipping" => Some((e.at, *depth)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_downed_consumer_has_its_events_queued_and_applied_when_it_is_back() {
    // The defaults: Shipping is down from 8 s to 16 s while about two orders a second arrive.
    for seed in 1..=5 {
        let trace = run(seed, &[]);
        let queue = shipping_queue(&trace);
        let restart = Micros::from_secs(16);
        let (peak_at, peak) = queue.iter().copied().max_by_key(|(_, d)| *d).unwrap();
        let drained_at = queue
            .iter()
            .find(|(at, depth)| *at > restart && *depth == 0)
            .map(|(at, _)| *at);
        println!(
            "seed {seed}: shipping queue peaks at {peak} ({peak_at}), back to 0 at {drained_at:?}"
        );
        assert!(
            peak >= 12,
            "seed {seed}: 8 s of orders at ~2/s wait: {peak}"
        );
        assert!(
            peak_at >= Micros::from_secs(15) && peak_at <= Micros::from_secs(18),
            "seed {seed}: the queue is deepest around the restart: {peak_at}"
        );
        let drained_at =
            drained_at.unwrap_or_else(|| panic!("seed {seed}: the queue never drained"));
        assert!(
            drained_at < Micros::from_secs(28),
            "seed {seed}: drained at {drained_at}"
        );
        let inventory_peak = summarize(&trace).queue_depth_max_by_queue["inventory"];
        assert!(
            inventory_peak <= 2,
            "seed {seed}: Inventory keeps up: {inventory_peak}"
        );
        let state = fold(&trace);
        assert_eq!(
            check_no_order_lost(&trace, &state, Micros::from_secs(2)),
            Ok(()),
            "seed {seed}"
        );
        assert_eq!(
            check_tables_match_applications(&trace, &state),
            Ok(()),
            "seed {seed}"
        );
        assert!(narrated(
            &trace,
            "The shipping queue's consumer is down: OrderCreated #"
        ));
        assert!(narrated(&trace, "waiting)."));
        assert!(narrated(&trace, "the broker drains the"));
    }
}

#[test]
fn order_never_waits_for_its_consumers() {
    // Order answers after storing the order and handing the event to the broker, so creating an
    // order takes one round trip (two hops of 40–50 ms), with Shipping down or not.
    let trace = run(2, &[]);
    let summary = summarize(&trace);
    let create = &summary.by_operation["create order"];
    println!(
        "create order: {} ok, {} failed, p99 {} µs",
        create.ok, create.failed, create.p99_us
    );
    assert_eq!(create.failed, 0);
    assert!(create.ok >= 45);
    assert!(create.p99_us <= 100_000, "{}", create.p99_us);
    let shipping = &summary.consumers["Shipping"];
    let inventory = &summary.consumers["Inventory"];
    println!(
        "delivery lag mean/max: Inventory {}/{} µs, Shipping {}/{} µs",
        inventory.delivery_lag_mean_us,
        inventory.delivery_lag_max_us,
        shipping.delivery_lag_mean_us,
        shipping.delivery_lag_max_us
    );
    assert!(
        inventory.delivery_lag_max_us < 200_000,
        "Inventory is never down"
    );
    assert!(
        shipping.delivery_lag_max_us > 7_000_000,
        "an order created when Shipping went down waits the whole outage"
    );
}

/// SQS's visibility timeout, instead of RabbitMQ's rule.
const VISIBILITY_TIMEOUT: (&str, f64) = ("redelivery", 1.0);

#[test]
fn under_rabbitmqs_rule_a_slow_consumer_gets_no_duplicate_and_a_lost_ack_makes_one() {
    // Shipping takes 1–3 s per event, far beyond the 250 ms ack timeout: RabbitMQ waits.
    let slow = [("idempotent", 0.0), ("shipping_work_ms", 2_000.0)];
    for seed in 1..=3 {
        let summary = summarize(&run(seed, &slow));
        let shipping = &summary.consumers["Shipping"];
        println!("seed {seed}, RabbitMQ's rule, slow Shipping: {shipping:?}");
        assert!(shipping.events_applied > 5, "seed {seed}: {shipping:?}");
        assert_eq!(shipping.duplicates_delivered, 0, "seed {seed}");
        let sqs = summarize(&run(seed, &[slow[0], slow[1], VISIBILITY_TIMEOUT]));
        println!(
            "seed {seed}, visibility timeout: {:?}",
            sqs.consumers["Shipping"]
        );
        assert!(
            sqs.consumers["Shipping"].duplicates_delivered > 5,
            "seed {seed}: under the visibility timeout the slow consumer gets duplicates"
        );
    }
    // A lost ack breaks the connection: the broker delivers the event again, and Shipping, which
    // applied it already, applies it twice.
    let trace = run_with_faults(
        1,
        &[("idempotent", 0.0)],
        &["drop:Shipping-Broker=30%@0+20"],
    );
    let summary = summarize(&trace);
    let shipping = &summary.consumers["Shipping"];
    println!("lost acks: {shipping:?}");
    assert!(shipping.duplicates_applied >= 3, "{shipping:?}");
    assert!(narrated(&trace, "lost its connection with"));
    assert!(narrated(&trace, "(RabbitMQ's rule)"));
    assert!(!narrated(&trace, "visibility timeout"));
    let state = fold(&trace);
    assert_eq!(check_tables_match_applications(&trace, &state), Ok(()));
    assert_eq!(
        check_no_order_lost(&trace, &state, Micros::from_secs(5)),
        Ok(())
    );
}

#[test]
fn the_default_run_has_no_duplicate_under_rabbitmqs_rule_and_some_under_the_visibility_timeout() {
    // The evidence run: the defaults for 8 s.
    let at_8_s = |knobs: &[(&str, f64)]| {
        let knobs = knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let trace = simulate(&RunRequest {
            scenario: "event-driven".into(),
            seed: 1,
            until_s: 8.0,
            knobs,
            faults: vec![],
        })
        .unwrap();
        let summary = summarize(&trace);
        let duplicates = |name: &str| summary.consumers[name].duplicates_delivered;
        (duplicates("Inventory"), duplicates("Shipping"))
    };
    assert_eq!(at_8_s(&[]), (0, 0));
    assert_eq!(at_8_s(&[VISIBILITY_TIMEOUT]), (0, 3));
}

#[test]
fn without_an_idempotency_check_a_late_ack_under_the_visibility_timeout_makes_a_consumer_apply_an_event_twice()
 {
    // Shipping takes 60–180 ms per event and the broker waits 250 ms for its ack, so with a
    // round trip of 80–100 ms the slowest events are delivered again.
    let trace = run(1, &[("idempotent", 0.0), VISIBILITY_TIMEOUT]);
    let summary = summarize(&trace);
    let shipping = &summary.consumers["Shipping"];
    println!("Shipping: {shipping:?}");
    assert!(shipping.duplicates_applied >= 3, "{shipping:?}");
    assert_eq!(shipping.duplicates_dropped, 0);
    assert_eq!(
        summary.consumers["Inventory"].duplicates_delivered, 0,
        "Inventory is quick enough"
    );
    let state = fold(&trace);
    let shipped_twice = state.tables[service(&trace, "Shipping").0 as usize][SHIPMENTS_TABLE]
        .values()
        .filter(|row| row.version > 1)
        .count() as u64;
    assert_eq!(
        shipped_twice, shipping.duplicates_applied,
        "each duplicate is one more parcel"
    );
    assert!(check_exactly_once(&trace, &state).is_err());
    assert_eq!(check_tables_match_applications(&trace, &state), Ok(()));
    assert!(narrated(
        &trace,
        "within its visibility timeout (250.0 ms, SQS's rule): the broker will deliver it again"
    ));
    assert!(narrated(
        &trace,
        "a second time: without an idempotency check it ships it again."
    ));
}

#[test]
fn an_idempotent_consumer_drops_the_same_duplicates_and_applies_every_order_once() {
    let knobs = [
        ("idempotent", 1.0),
        ("inventory_work_ms", 150.0),
        VISIBILITY_TIMEOUT,
    ];
    let trace = run(1, &knobs);
    let summary = summarize(&trace);
    println!("{:?}", summary.consumers);
    let without = summarize(&run(
        1,
        &[
            ("idempotent", 0.0),
            ("inventory_work_ms", 150.0),
            VISIBILITY_TIMEOUT,
        ],
    ));
    for name in ["Inventory", "Shipping"] {
        let consumer = &summary.consumers[name];
        assert!(consumer.duplicates_dropped >= 3, "{name}: {consumer:?}");
        assert_eq!(consumer.duplicates_applied, 0, "{name}");
        assert_eq!(
            consumer.duplicates_delivered, without.consumers[name].duplicates_delivered,
            "{name}: the same redeliveries happen; only what the consumer does with them differs"
        );
    }
    let state = fold(&trace);
    assert_eq!(check_exactly_once(&trace, &state), Ok(()));
    assert_eq!(check_tables_match_applications(&trace, &state), Ok(()));
    assert_eq!(
        check_no_order_lost(&trace, &state, Micros::from_secs(2)),
        Ok(())
    );
    assert!(narrated(
        &trace,
        "its inbox of processed events already holds it, so it drops the duplicate"
    ));
}

#[test]
fn a_publish_lost_on_the_way_is_sent_again_and_a_network_duplicate_is_dropped_by_the_inbox() {
    // From 5 s to 15 s the Order–Broker link loses 40 % of its messages (publishes and their
    // confirms), and the Broker–Shipping link delivers a second copy of 30 % of its messages.
    let faults = [
        "drop:Order-Broker=40%@5+10",
        "duplicate:Broker-Shipping=30%@5+10",
    ];
    let quiet = [("shipping_down_for_s", 0.0), ("idempotent", 1.0)];
    for seed in 1..=3 {
        let trace = run_with_faults(seed, &quiet, &faults);
        let state = fold(&trace);
        let summary = summarize(&trace);
        println!("seed {seed}: {:?}", summary.consumers);
        assert!(
            narrated(&trace, "Order publishes it again."),
            "seed {seed}: a lost publish is retried"
        );
        assert_eq!(
            check_no_order_lost(&trace, &state, Micros::from_secs(5)),
            Ok(()),
            "seed {seed}"
        );
        assert_eq!(check_exactly_once(&trace, &state), Ok(()), "seed {seed}");
        assert_eq!(
            check_tables_match_applications(&trace, &state),
            Ok(()),
            "seed {seed}"
        );
        assert!(
            summary.consumers["Shipping"].duplicates_dropped > 0,
            "seed {seed}: the network's copies reach Shipping, whose inbox drops them"
        );
    }
}

/// For each connection to or from the broker, how many messages arrived before one sent earlier
/// on the same connection.
fn overtakings(trace: &Trace) -> usize {
    use std::collections::BTreeMap;
    let broker = service(trace, "Broker");
    let mut sent: BTreeMap<
        shared::protocol::MsgId,
        (shared::protocol::ServiceId, shared::protocol::ServiceId),
    > = BTreeMap::new();
    // Per connection, the messages in the order they arrived, by their send order (ids grow).
    let mut arrivals: BTreeMap<_, Vec<u64>> = BTreeMap::new();
    for e in &trace.events {
        match &e.event {
            Event::Sent { msg, from, to, .. } if *from == broker || *to == broker => {
                sent.insert(*msg, (*from, *to));
            }
            Event::Delivered { msg } => {
                if let Some(channel) = sent.get(msg) {
                    arrivals.entry(*channel).or_default().push(msg.0);
                }
            }
            _ => {}
        }
    }
    arrivals
        .values()
        .map(|ids| ids.windows(2).filter(|pair| pair[1] < pair[0]).count())
        .sum()
}

#[test]
fn messages_on_a_connection_to_or_from_the_broker_keep_their_order_unless_a_reorder_fault_holds_one_back()
 {
    // 200 ms links with 50 ms of jitter, 20 orders a second: without the rule, jitter alone would
    // let many a message overtake the one before it.
    let knobs = [
        ("link_latency_ms", 200.0),
        ("order_rate_per_s", 20.0),
        ("shipping_work_ms", 5.0),
        ("inventory_work_ms", 5.0),
        ("shipping_down_for_s", 0.0),
    ];
    for seed in 1..=3 {
        let trace = run(seed, &knobs);
        assert_eq!(overtakings(&trace), 0, "seed {seed}");
        let reordered = run_with_faults(seed, &knobs, &["reorder:Order-Broker=30%@0"]);
        let overtaken = overtakings(&reordered);
        println!("seed {seed}: {overtaken} overtakings with the reorder fault");
        assert!(
            overtaken > 10,
            "seed {seed}: a reorder fault still reorders ({overtaken})"
        );
    }
}
