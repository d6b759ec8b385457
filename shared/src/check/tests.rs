//! Each kind of anomaly on a small hand-written trace: found with the events that prove it, and
//! not found in the case next to it that is fine.

use super::*;
use crate::protocol::{LinkSpec, Outcome, PROTOCOL_VERSION, ServiceInfo};

const CLIENT: ServiceId = ServiceId(0);
const ORDER: ServiceId = ServiceId(1);
const PRODUCT: ServiceId = ServiceId(2);
const BROKER: ServiceId = ServiceId(3);
const COORDINATOR: ServiceId = ServiceId(4);

fn header() -> TraceHeader {
    let service = |id: u16, name: &str, role| ServiceInfo {
        id: ServiceId(id),
        name: name.into(),
        role,
    };
    TraceHeader {
        protocol_version: PROTOCOL_VERSION,
        scenario: "test".into(),
        seed: 1,
        until: Micros::from_secs(10),
        knobs: Default::default(),
        services: vec![
            service(0, "Client", ServiceRole::Client),
            service(1, "Order", ServiceRole::Service),
            service(2, "Product", ServiceRole::Service),
            service(3, "Broker", ServiceRole::Broker),
            service(4, "Coordinator", ServiceRole::Coordinator),
        ],
        links: Vec::new(),
        network: LinkSpec {
            latency: Micros::ZERO,
            jitter: Micros::ZERO,
            loss_per_million: 0,
        },
        copies: vec![CopyDecl {
            copy_service: ORDER,
            copy_table: "product_names".into(),
            source_service: PRODUCT,
            source_table: "products".into(),
        }],
        faults: Vec::new(),
    }
}

/// A trace written one event per millisecond.
#[derive(Default)]
struct Script {
    events: Vec<TraceEvent>,
}

impl Script {
    fn push(&mut self, event: Event) -> usize {
        let at = Micros::from_millis(self.events.len() as u64 + 1);
        self.events.push(TraceEvent { at, event });
        self.events.len() - 1
    }

    fn start(&mut self, op: u64) -> usize {
        self.push(Event::OpStarted {
            op: OpId(op),
            name: "read order".into(),
            client: CLIENT,
        })
    }

    fn finish(&mut self, op: u64, observed: &[(&str, u64)]) -> usize {
        self.push(Event::OpFinished {
            op: OpId(op),
            outcome: Outcome::Ok,
            latency: Micros::ZERO,
            observed: observed
                .iter()
                .map(|(key, version)| Observed {
                    source_service: PRODUCT,
                    source_table: "products".into(),
                    key: key.to_string().into(),
                    version: *version,
                })
                .collect(),
        })
    }

    fn write(&mut self, service: ServiceId, key: &str, value: &str, version: u64) -> usize {
        let table = if service == PRODUCT {
            "products"
        } else {
            "product_names"
        };
        self.push(Event::RowWritten {
            service,
            table: table.into(),
            key: key.into(),
            value: value.into(),
            version,
        })
    }

    fn send(&mut self, msg: u64, from: ServiceId, to: ServiceId, kind: MessageKind, label: &str) {
        self.push(Event::Sent {
            msg: MsgId(msg),
            from,
            to,
            kind,
            label: label.into(),
            op: None,
            caused_by: None,
        });
    }

    fn handled(&mut self, service: ServiceId, event_id: &str, applied: bool) -> usize {
        self.push(Event::EventHandled {
            service,
            event_id: event_id.into(),
            published_at: Micros::ZERO,
            applied,
        })
    }

    fn end(&mut self, reason: EndReason) -> usize {
        self.push(Event::RunEnded {
            reason,
            messages_in_flight: 0,
        })
    }

    fn check(&self) -> Vec<(AnomalyKind, Vec<usize>)> {
        check(&header(), &self.events)
            .into_iter()
            .map(|a| (a.kind, a.events))
            .collect()
    }
}

#[test]
fn a_read_that_began_after_a_newer_version_was_confirmed_is_stale() {
    let mut s = Script::default();
    s.start(1);
    // Began before the confirmation: fresh, although it returned v1.
    s.start(2);
    let confirmed = s.finish(1, &[("7", 2)]);
    let started = s.start(3);
    s.finish(2, &[("7", 1)]);
    let stale = s.finish(3, &[("7", 1), ("8", 1)]);
    assert_eq!(
        s.check(),
        vec![(AnomalyKind::StaleRead, vec![confirmed, started, stale])]
    );
}

#[test]
fn a_read_of_a_version_rolled_back_before_or_after_it_is_aborted_once() {
    let mut s = Script::default();
    s.start(1);
    let read_before = s.finish(1, &[("7", 2), ("8", 4)]);
    let abort = |s: &mut Script, key: &str, version| {
        s.push(Event::WriteAborted {
            service: COORDINATOR,
            source_service: PRODUCT,
            source_table: "products".into(),
            key: key.into(),
            version,
        })
    };
    let aborted_7 = abort(&mut s, "7", 2);
    s.start(2);
    let read_after = s.finish(2, &[("7", 2)]);
    abort(&mut s, "8", 4);
    // A read of a version nobody rolled back.
    s.start(3);
    s.finish(3, &[("7", 3)]);
    assert_eq!(
        s.check(),
        vec![
            (AnomalyKind::AbortedRead, vec![read_before, aborted_7]),
            (AnomalyKind::AbortedRead, vec![aborted_7, read_after]),
        ]
    );
}

#[test]
fn a_copy_row_replaced_by_an_older_version_regresses_and_a_source_row_does_not() {
    let mut s = Script::default();
    s.write(PRODUCT, "7", "Tent", 3);
    s.write(PRODUCT, "7", "Tent", 3);
    let newer = s.write(ORDER, "1/7", "Tent", 3);
    let older = s.write(ORDER, "1/7", "Old tent", 2);
    s.write(ORDER, "1/7", "Tent", 3);
    assert_eq!(
        s.check(),
        vec![(AnomalyKind::CopyRegression, vec![newer, older])]
    );
}

#[test]
fn a_subscriber_applying_an_event_twice_is_a_duplicate_and_dropping_it_is_not() {
    let mut s = Script::default();
    let first = s.handled(ORDER, "OrderCreated#1", true);
    s.handled(PRODUCT, "OrderCreated#1", true);
    s.handled(ORDER, "OrderCreated#1", false);
    let again = s.handled(ORDER, "OrderCreated#1", true);
    assert_eq!(
        s.check(),
        vec![(AnomalyKind::DuplicateApplied, vec![first, again])]
    );
}

/// A broker confirming `event_id` to Order in message `msg`: the confirm's send and delivery.
fn confirm(s: &mut Script, msg: u64, event_id: &str) -> (usize, usize) {
    s.send(
        msg,
        BROKER,
        ORDER,
        MessageKind::Ack,
        &format!("confirm {event_id}"),
    );
    let sent = s.events.len() - 1;
    let delivered = s.push(Event::Delivered { msg: MsgId(msg) });
    (sent, delivered)
}

fn depth(s: &mut Script, queue: &str, depth: u32) -> usize {
    s.push(Event::QueueDepth {
        service: BROKER,
        queue: queue.into(),
        depth,
    })
}

#[test]
fn a_confirmed_event_a_subscriber_never_applied_is_lost_once_its_queue_drained_after_it() {
    let mut s = Script::default();
    // Order and Product subscribe to OrderCreated (they handled #0); their queues are named
    // after them.
    s.handled(ORDER, "OrderCreated#0", true);
    s.handled(PRODUCT, "OrderCreated#0", true);
    depth(&mut s, "order", 2);
    depth(&mut s, "product", 2);
    let (sent, delivered) = confirm(&mut s, 1, "OrderCreated#1");
    s.handled(PRODUCT, "OrderCreated#1", true);
    // #2 reaches both; #3's confirm is lost on the way; #4 is still queued at the end.
    confirm(&mut s, 2, "OrderCreated#2");
    s.handled(ORDER, "OrderCreated#2", true);
    s.handled(PRODUCT, "OrderCreated#2", true);
    s.send(3, BROKER, ORDER, MessageKind::Ack, "confirm OrderCreated#3");
    s.push(Event::Dropped {
        msg: MsgId(3),
        reason: crate::protocol::DropReason::Lost,
    });
    let order_empty = depth(&mut s, "order", 0);
    depth(&mut s, "product", 0);
    depth(&mut s, "order", 1);
    depth(&mut s, "product", 1);
    confirm(&mut s, 4, "OrderCreated#4");
    let mut stopped = Script {
        events: s.events.clone(),
    };
    let end = s.end(EndReason::ReachedUntil);
    assert_eq!(
        s.check(),
        vec![(
            AnomalyKind::ConfirmedEventNeverApplied,
            vec![sent, delivered, order_empty, end]
        )],
        "Order never applied #1"
    );
    stopped.end(EndReason::Stopped);
    assert_eq!(stopped.check(), vec![], "a run stopped early is not judged");
}

#[test]
fn a_write_below_a_confirmed_version_loses_an_update_and_a_rewrite_of_it_does_not() {
    let mut s = Script::default();
    s.write(PRODUCT, "7", "Tent", 1);
    s.write(PRODUCT, "7", "Big tent", 2);
    s.start(1);
    let confirmed = s.finish(1, &[("7", 2)]);
    // The confirmed version written again (a rollback reaching the source late): not lost.
    s.write(PRODUCT, "7", "Big tent", 2);
    let older = s.write(PRODUCT, "7", "Tent", 1);
    s.write(PRODUCT, "7", "Newest tent", 3);
    assert_eq!(
        s.check(),
        vec![(AnomalyKind::LostUpdate, vec![confirmed, older])]
    );
}

#[test]
fn a_coordinated_update_left_at_one_participant_is_partial_when_the_run_ends() {
    let mut s = Script::default();
    let flag = s.push(Event::PartialUpdateFlagged {
        service: COORDINATOR,
        key: "8".into(),
        text: "rename of 8 to v2".into(),
    });
    s.write(PRODUCT, "7", "Tent", 1);
    let copy = s.write(ORDER, "1/7", "Tent", 1);
    let product = s.write(PRODUCT, "7", "Big tent", 2);
    // Product 8 differs too, but was flagged: reported once, by its flag.
    s.write(PRODUCT, "8", "Lamp", 2);
    s.write(ORDER, "1/8", "Old lamp", 1);
    let mut busy = Script {
        events: s.events.clone(),
    };
    let end = s.end(EndReason::ReachedUntil);
    assert_eq!(
        s.check(),
        vec![
            (AnomalyKind::PartialUpdate, vec![flag]),
            (AnomalyKind::PartialUpdate, vec![copy, product, end]),
        ]
    );
    // While a coordinator's message is on its way, the update may still complete: not judged.
    busy.send(
        9,
        COORDINATOR,
        ORDER,
        MessageKind::Request,
        "PUT /products/7",
    );
    busy.end(EndReason::ReachedUntil);
    assert_eq!(busy.check(), vec![(AnomalyKind::PartialUpdate, vec![flag])]);
}

#[test]
fn the_incremental_checker_finds_what_the_one_shot_check_finds_at_every_prefix() {
    let mut s = Script::default();
    s.start(1);
    s.finish(1, &[("7", 2)]);
    s.start(2);
    s.finish(2, &[("7", 1)]);
    s.handled(ORDER, "OrderCreated#1", true);
    s.handled(ORDER, "OrderCreated#1", true);
    let mut checker = Checker::new(&header());
    for (n, event) in s.events.iter().enumerate() {
        checker.push(event);
        assert_eq!(checker.anomalies(), check(&header(), &s.events[..=n]));
    }
    assert_eq!(checker.events_seen(), s.events.len());
    let counts = checker.counts();
    assert_eq!(counts.len(), AnomalyKind::ALL.len());
    assert_eq!(counts[&AnomalyKind::StaleRead], 1);
    assert_eq!(counts[&AnomalyKind::DuplicateApplied], 1);
    assert_eq!(counts[&AnomalyKind::LostUpdate], 0);
    // The summary's counts by name are the same counts, every kind listed.
    let by_name = counts_by_name(checker.anomalies());
    let expected: Vec<(String, u64)> = counts
        .iter()
        .map(|(kind, count)| (kind.name().to_string(), *count))
        .collect_map()
        .into_iter()
        .collect();
    assert_eq!(by_name.into_iter().collect::<Vec<_>>(), expected);
}

#[test]
fn the_checker_keeps_the_last_write_only_of_rows_a_check_reads() {
    let mut s = Script::default();
    s.write(PRODUCT, "7", "Tent", 1);
    s.write(ORDER, "1/7", "Tent", 1);
    s.push(Event::RowWritten {
        service: ORDER,
        table: "orders".into(),
        key: "1".into(),
        value: "7".into(),
        version: 1,
    });
    let kept = |header: &TraceHeader| {
        let mut checker = Checker::new(header);
        for event in &s.events {
            checker.push(event);
        }
        let rows: Vec<(String, String, String)> = checker
            .rows
            .iter()
            .map(|((_, table, key), write)| (table.clone(), key.clone(), write.value.clone()))
            .collect();
        rows
    };
    // With a coordinator: the copy rows and their sources, with their values (compared at the
    // end); the orders table, which no check reads, not at all.
    assert_eq!(
        kept(&header()),
        vec![
            ("product_names".into(), "1/7".into(), "Tent".into()),
            ("products".into(), "7".into(), "Tent".into())
        ]
    );
    // Without one: the copy rows alone, for regressions, which compare versions only.
    let mut uncoordinated = header();
    uncoordinated.services.pop();
    assert_eq!(
        kept(&uncoordinated),
        vec![("product_names".into(), "1/7".into(), String::new())]
    );
    // Without copies: nothing.
    uncoordinated.copies.clear();
    assert_eq!(kept(&uncoordinated), Vec::new());
}
