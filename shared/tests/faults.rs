//! Faults injected by text: each one changes the run only from the moment it begins, and does
//! what it says.

use engine::simulate;
use shared::protocol::{DomainEvent, DropReason, Event, RunRequest, Trace, TraceEvent};
use shared::scenario::catalog;
use shared::services::{ORDERS_TABLE, SHIPMENTS_TABLE};
use shared::time::Micros;

fn run(scenario: &str, seed: u64, faults: &[&str]) -> Trace {
    simulate(&RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: 30.0,
        knobs: Default::default(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .unwrap()
}

fn before(trace: &Trace, t: Micros) -> Vec<&TraceEvent> {
    trace.events.iter().filter(|e| e.at < t).collect()
}

/// Clicking a fault into a run at 2 s leaves everything before 2 s as it was: the page can
/// rerun with the fault and the past stays put.
#[test]
fn a_fault_changes_nothing_before_it_begins() {
    // From 2 s, before any scenario's own outage: a crash inside one would change nothing, since
    // a service is down while any crash covers it.
    let kinds = [
        "crash:{b}@2+3",
        "slow:{b}*4@2+3",
        "partition:{a}-{b}@2+3",
        "drop:*=50%@2+3",
        "duplicate:*=50%@2+3",
        "reorder:*=50%@2+3",
    ];
    for spec in catalog() {
        let healthy = run(spec.name, 7, &[]);
        let names: Vec<&str> = healthy
            .header
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        // The last two services, so every scenario has a link between them to break.
        let (a, b) = (names[names.len() - 2], names[names.len() - 1]);
        for kind in kinds {
            let fault = kind.replace("{a}", a).replace("{b}", b);
            let faulty = run(spec.name, 7, &[&fault]);
            let t = Micros::from_secs(2);
            assert_eq!(
                before(&faulty, t),
                before(&healthy, t),
                "{} with {fault}",
                spec.name
            );
            assert_ne!(
                faulty.events, healthy.events,
                "{} with {fault} changes something",
                spec.name
            );
            assert_eq!(faulty.header.faults.len(), healthy.header.faults.len() + 1);
        }
    }
}

fn count(trace: &Trace, test: impl Fn(&Event) -> bool) -> usize {
    trace.events.iter().filter(|e| test(&e.event)).count()
}

#[test]
fn a_partition_loses_messages_silently_until_it_heals() {
    let trace = run("request-response", 3, &["partition:Order-Product@5+5"]);
    let partitioned: Vec<Micros> = trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.event,
                Event::Dropped {
                    reason: DropReason::Partitioned,
                    ..
                }
            )
        })
        .map(|e| e.at)
        .collect();
    assert!(!partitioned.is_empty());
    // A message sent just before the heal may land just after it.
    let latest_landing = Micros::from_secs(10) + Micros::from_millis(100);
    assert!(
        partitioned
            .iter()
            .all(|at| (Micros::from_secs(5)..latest_landing).contains(at))
    );
    let read_failures_during = trace
        .events
        .iter()
        .filter(|e| (Micros::from_secs(6)..Micros::from_secs(10)).contains(&e.at))
        .filter(|e| matches!(&e.event, Event::OpFinished { outcome, .. } if !outcome.is_ok()))
        .count();
    assert!(
        read_failures_during > 0,
        "reads time out while Order cannot reach Product"
    );
}

#[test]
fn duplicated_messages_are_announced_and_travel_on_their_own() {
    let trace = run("eventual-consistency", 5, &["duplicate:*=40%@0"]);
    let copies = count(&trace, |e| matches!(e, Event::Duplicated { .. }));
    assert!(copies > 20, "{copies} copies");
    let healthy = run("eventual-consistency", 5, &[]);
    let delivered = |t: &Trace| count(t, |e| matches!(e, Event::Delivered { .. }));
    assert!(delivered(&trace) > delivered(&healthy));
}

#[test]
fn a_slow_service_makes_its_calls_slower() {
    let p50 = |trace: &Trace| shared::metrics::summarize(trace).by_operation["read order"].p50_us;
    let healthy = run("request-response", 2, &[]);
    let slow = run("request-response", 2, &["slow:Product*3@0"]);
    // Reads make 1 hop each way to Order and 2 per product to Product; Product's hops triple.
    assert!(
        p50(&slow) > 2 * p50(&healthy),
        "{} vs {}",
        p50(&slow),
        p50(&healthy)
    );
}

/// Orders stored by Order in the first 28 s that Shipping never shipped (the last two seconds'
/// may still be on their way when the run ends).
fn unshipped(trace: &Trace) -> usize {
    let keys = |table: &str| {
        trace
            .events
            .iter()
            .filter(|e| table == SHIPMENTS_TABLE || e.at < Micros::from_secs(28))
            .filter_map(|e| match &e.event {
                Event::RowWritten { table: t, key, .. } if t == table => Some(key.clone()),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    keys(ORDERS_TABLE)
        .difference(&keys(SHIPMENTS_TABLE))
        .count()
}

fn run_event_driven(seed: u64, durable: f64, faults: &[&str]) -> Trace {
    simulate(&RunRequest {
        scenario: "event-driven".into(),
        seed,
        until_s: 30.0,
        knobs: [("durable".to_string(), durable)].into(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .unwrap()
}

fn narrated(trace: &Trace, start: &str) -> bool {
    trace
        .events
        .iter()
        .any(|e| matches!(&e.event, Event::Narration { text } if text.starts_with(start)))
}

/// Shipping is down (8–16 s by default) so OrderCreated events wait in its queue; the broker
/// crashes at 12 s, after confirming them, so Order never publishes them again. With durable
/// queues (the default, as RabbitMQ keeps them) they are rows of the broker's tables and every
/// order ships; with `durable=0` the queues were the broker's memory, those orders are never
/// shipped, and the narration says so.
#[test]
fn a_crashed_broker_keeps_confirmed_events_in_durable_queues_and_loses_them_in_memory() {
    for seed in [3, 4] {
        let healthy = unshipped(&run_event_driven(seed, 1.0, &[]));
        let durable = run_event_driven(seed, 1.0, &["crash:Broker@12+1"]);
        let in_memory = run_event_driven(seed, 0.0, &["crash:Broker@12+1"]);
        let (kept, lost) = (unshipped(&durable), unshipped(&in_memory));
        println!(
            "seed {seed}: orders never shipped: {healthy} healthy, {kept} with durable queues, \
             {lost} with queues in memory"
        );
        assert_eq!(healthy, 0, "seed {seed}");
        assert!(
            lost > 5,
            "seed {seed}: the events that waited in Shipping's queue are lost"
        );
        assert!(narrated(
            &in_memory,
            "Broker crashes: its queues were in its memory"
        ));
        assert_eq!(
            kept, 0,
            "seed {seed}: durable queues keep what they confirmed"
        );
        assert!(narrated(&durable, "Broker crashes: its queues are durable"));
        assert!(narrated(
            &durable,
            "The broker reads its durable queues back from its tables"
        ));
    }
}

/// The confirm follows the durable write: each event the broker confirms is already a row of
/// the queue's table when the confirm leaves.
#[test]
fn a_durable_broker_confirms_only_what_it_wrote() {
    let trace = run_event_driven(1, 1.0, &[]);
    // How many queues hold each event id, by the rows written so far.
    let mut written: std::collections::BTreeMap<String, u32> = Default::default();
    let mut confirms = 0;
    for e in &trace.events {
        match &e.event {
            Event::RowWritten { table, value, .. } if table.starts_with("queue_") => {
                if let Ok(event) = serde_json::from_str::<DomainEvent>(value) {
                    *written.entry(event.id()).or_default() += 1;
                }
            }
            Event::Sent { label, .. } if label.starts_with("confirm ") => {
                confirms += 1;
                let event_id = label.trim_start_matches("confirm ");
                assert_eq!(
                    written.get(event_id),
                    Some(&2),
                    "{event_id} is a row of both queues before it is confirmed"
                );
            }
            _ => {}
        }
    }
    assert!(confirms > 20, "{confirms}");
}

/// When and whether `service` went down or came up, in order.
fn lifecycle(trace: &Trace, service: &str) -> Vec<(Micros, bool)> {
    let id = trace
        .header
        .services
        .iter()
        .find(|s| s.name == service)
        .unwrap()
        .id;
    trace
        .events
        .iter()
        .filter_map(|e| match e.event {
            Event::ServiceUp { service } if service == id => Some((e.at, true)),
            Event::ServiceDown { service } if service == id => Some((e.at, false)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_service_stays_down_until_the_last_crash_covering_it_ends() {
    // Product crashes 5–15 s and again 8–10 s: the second crash's end must not restart it.
    let trace = simulate(&RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: 20.0,
        knobs: [("product_down_for_s", 0.0), ("product_slow_for_s", 0.0)]
            .map(|(k, v)| (k.to_string(), v))
            .into(),
        faults: vec!["crash:Product@5+10".into(), "crash:Product@8+2".into()],
    })
    .unwrap();
    let s = Micros::from_secs;
    assert_eq!(
        lifecycle(&trace, "Product"),
        [(Micros::ZERO, true), (s(5), false), (s(15), true)],
        "down from the first crash until the last one ends"
    );
}

#[test]
fn a_service_that_crashed_itself_stays_down_while_a_crash_fault_covers_it() {
    // The coordinator crashes itself at its 15th rename and asks to restart 2 s later; a crash
    // fault from just after that until 6 s later keeps it down until the fault ends.
    let healthy = run("gateway", 2, &[]);
    let own_crash = lifecycle(&healthy, "Coordinator")[1];
    assert!(!own_crash.1, "{own_crash:?}");
    let fault_at = own_crash.0 + Micros::from_millis(500);
    let fault = format!("crash:Coordinator@{}+6", fault_at.as_secs_f64());
    let faulty = run("gateway", 2, &[&fault]);
    assert_eq!(
        lifecycle(&faulty, "Coordinator"),
        [
            (Micros::ZERO, true),
            own_crash,
            (fault_at + Micros::from_secs(6), true)
        ]
    );
}
