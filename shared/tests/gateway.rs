//! The gateway (coordinator) scenario teaches what the article says, in numbers: a confirmed
//! rename is everywhere at once, the user waits for the slower service, failures mean rollbacks,
//! an outage of Product fails every rename, and a coordinator crash leaves a partial update.
//! Under two-phase commit (`protocol=2pc`): no aborted reads, slower renames, and a coordinator
//! crash after deciding leaves rows in doubt until it recovers.

use engine::simulate;
use shared::fold::WorldState;
use shared::metrics::summarize;
use shared::protocol::{Event, MsgId, OpId, Outcome, RunRequest, ServiceId, Trace};
use shared::services::{LogEntry, LogState, RENAME_LOG_TABLE};
use shared::time::Micros;
use std::collections::BTreeMap;

/// A healthy gateway: nothing refuses, nothing crashes, nothing goes down.
const HEALTHY: [(&str, f64); 4] = [
    ("product_failure_pct", 0.0),
    ("order_failure_pct", 0.0),
    ("coordinator_crash_at_rename", 0.0),
    ("product_down_for_s", 0.0),
];

fn run(seed: u64, until_s: f64, knobs: &[(&str, f64)]) -> Trace {
    // A knob given in `knobs` takes the place of its healthy value.
    let all: shared::protocol::KnobMap = HEALTHY
        .iter()
        .chain(knobs)
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    println!("gateway seed {seed}, knobs {all:?}");
    simulate(&RunRequest {
        scenario: "gateway".into(),
        seed,
        until_s,
        knobs: all,
        faults: vec![],
    })
    .expect("valid request")
}

fn service(trace: &Trace, name: &str) -> ServiceId {
    trace
        .header
        .services
        .iter()
        .find(|s| s.name == name)
        .expect("the gateway has this service")
        .id
}

/// One client operation, as the trace tells it.
#[derive(Clone, Debug)]
struct Op {
    name: String,
    started: Micros,
    finished: Option<(Micros, Outcome)>,
    latency: Micros,
    /// For reads: the version of each product the read saw.
    observed: BTreeMap<String, u64>,
    /// For renames: the product, from the request's label `PUT /products/3 Smart Oak Chair`.
    product: Option<String>,
}

fn ops(trace: &Trace) -> BTreeMap<OpId, Op> {
    let mut ops: BTreeMap<OpId, Op> = BTreeMap::new();
    for event in &trace.events {
        match &event.event {
            Event::OpStarted { op, name, .. } => {
                ops.insert(
                    *op,
                    Op {
                        name: name.clone(),
                        started: event.at,
                        finished: None,
                        latency: Micros::ZERO,
                        observed: BTreeMap::new(),
                        product: None,
                    },
                );
            }
            Event::Sent {
                op: Some(op),
                label,
                caused_by: None,
                ..
            } => {
                if let (Some(entry), Some(rest)) =
                    (ops.get_mut(op), label.strip_prefix("PUT /products/"))
                {
                    entry.product = entry
                        .product
                        .clone()
                        .or_else(|| rest.split_whitespace().next().map(str::to_string));
                }
            }
            Event::OpFinished {
                op,
                outcome,
                latency,
                observed,
            } => {
                if let Some(entry) = ops.get_mut(op) {
                    entry.finished = Some((event.at, outcome.clone()));
                    entry.latency = *latency;
                    entry.observed = observed
                        .iter()
                        .map(|seen| (seen.key.to_string(), seen.version))
                        .collect();
                }
            }
            _ => {}
        }
    }
    ops
}

fn renames(ops: &BTreeMap<OpId, Op>) -> impl Iterator<Item = &Op> {
    ops.values().filter(|op| op.name == "rename product")
}

fn failure_reason(op: &Op) -> Option<&str> {
    match &op.finished {
        Some((_, Outcome::Failed { reason })) => Some(reason),
        _ => None,
    }
}

fn narrations(trace: &Trace) -> Vec<&str> {
    trace
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Narration { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn healthy_a_read_that_starts_after_a_rename_was_confirmed_sees_it() {
    let trace = run(
        3,
        30.0,
        &[("read_rate_per_s", 10.0), ("rename_rate_per_s", 2.0)],
    );
    let coordinator = service(&trace, "Coordinator");
    // The version each confirmation carries: "200 product 3 now v5", sent by the coordinator.
    let mut confirmed: BTreeMap<OpId, u64> = BTreeMap::new();
    for event in &trace.events {
        if let Event::Sent {
            from,
            op: Some(op),
            label,
            ..
        } = &event.event
            && *from == coordinator
            && let Some((_, version)) = label.split_once(" now v")
        {
            confirmed.insert(*op, version.parse().unwrap());
        }
    }
    let ops = ops(&trace);
    let mut reads_checked = 0;
    for (op_id, rename) in ops.iter().filter(|(_, op)| op.name == "rename product") {
        assert!(
            failure_reason(rename).is_none(),
            "{rename:?} failed in a healthy run"
        );
        let Some((confirmed_at, _)) = rename.finished else {
            continue;
        };
        let product = rename.product.as_ref().unwrap();
        let version = confirmed[op_id];
        for read in ops
            .values()
            .filter(|op| op.name == "read order" && op.started >= confirmed_at)
        {
            if let Some(seen) = read.observed.get(product) {
                reads_checked += 1;
                assert!(
                    *seen >= version,
                    "a read at {} saw product {product} v{seen}, confirmed at v{version} at {confirmed_at}",
                    read.started
                );
            }
        }
    }
    let summary = summarize(&trace);
    println!(
        "{} confirmed renames; {reads_checked} later reads checked; {} stale reads",
        confirmed.len(),
        summary.stale_reads
    );
    assert!(confirmed.len() >= 40 && reads_checked >= 1_000);
    assert_eq!(
        summary.stale_reads, 0,
        "the metric agrees: no read is older than a confirmed rename"
    );
    assert_eq!(summary.by_operation["read order"].failed, 0);
    assert_eq!(summary.coordination.rollbacks_sent, 0);
    assert_eq!(summary.coordination.inconsistent_rows_at_end, 0);
}

#[test]
fn the_user_waits_for_the_slower_of_the_two_round_trips() {
    let latency = Micros::from_millis(40);
    let trace = run(5, 30.0, &[("rename_rate_per_s", 2.0)]);
    let coordinator = service(&trace, "Coordinator");
    let (mut sent_at, mut delivered_at) = (BTreeMap::new(), BTreeMap::new());
    // For each operation, the coordinator's updates; for each update, its answer.
    let mut updates: BTreeMap<OpId, Vec<MsgId>> = BTreeMap::new();
    let mut answer_to: BTreeMap<MsgId, MsgId> = BTreeMap::new();
    for event in &trace.events {
        match &event.event {
            Event::Sent {
                msg,
                from,
                op,
                label,
                caused_by,
                ..
            } => {
                sent_at.insert(*msg, event.at);
                if *from == coordinator && label.starts_with("PUT /products/") {
                    updates.entry(op.unwrap()).or_default().push(*msg);
                }
                if let Some(request) = caused_by {
                    answer_to.insert(*request, *msg);
                }
            }
            Event::Delivered { msg } => {
                delivered_at.insert(*msg, event.at);
            }
            _ => {}
        }
    }
    let ops = ops(&trace);
    let mut checked = 0;
    for (op_id, rename) in ops.iter().filter(|(_, op)| op.name == "rename product") {
        assert!(failure_reason(rename).is_none(), "{rename:?}");
        if rename.finished.is_none() {
            continue;
        }
        let round_trips: Vec<Micros> = updates[op_id]
            .iter()
            .map(|update| delivered_at[&answer_to[update]] - sent_at[update])
            .collect();
        assert_eq!(round_trips.len(), 2, "one update to Product, one to Order");
        let slower = round_trips.iter().copied().max().unwrap();
        // Plus the client's own hops to the coordinator and back.
        assert!(
            rename.latency >= slower + latency + latency,
            "{rename:?} took less than its slower round trip {slower} plus two hops"
        );
        checked += 1;
    }
    assert!(checked >= 40, "{checked}");
    let gateway = summarize(&trace).by_operation["rename product"].p50_us;
    let direct = summarize(
        &simulate(&RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 5,
            until_s: 30.0,
            knobs: shared::protocol::KnobMap::from([("order_down_for_s".to_string(), 0.0)]),
            faults: vec![],
        })
        .unwrap(),
    )
    .by_operation["rename product"]
        .p50_us;
    println!("rename p50: through the coordinator {gateway} µs, straight to Product {direct} µs");
    assert!(gateway >= direct + 2 * latency.0, "two more hops at least");
}

#[test]
fn refusals_roll_back_and_leave_no_partial_update() {
    let trace = run(
        8,
        40.0,
        &[
            ("product_failure_pct", 20.0),
            ("order_failure_pct", 20.0),
            ("rename_rate_per_s", 2.0),
        ],
    );
    let ops = ops(&trace);
    let failed: Vec<&str> = renames(&ops).filter_map(failure_reason).collect();
    let summary = summarize(&trace);
    println!(
        "{} renames failed, {} rollback messages",
        failed.len(),
        summary.coordination.rollbacks_sent
    );
    assert!(
        failed.len() >= 10,
        "about a third of ~80 renames: {}",
        failed.len()
    );
    for reason in &failed {
        assert!(
            reason.contains("refused the update; rolled back"),
            "{reason}"
        );
    }
    assert!(summary.coordination.rollbacks_sent >= 2 * failed.len() as u64);
    assert!(
        narrations(&trace)
            .iter()
            .any(|t| t.contains("Product applied it, Order refused the update — rolling back")),
        "the narration names who applied and who refused"
    );
    // Each time the log says a rollback is complete, Product and Order hold the old name again,
    // at the same version.
    let (coordinator, product, order) = (
        service(&trace, "Coordinator"),
        service(&trace, "Product"),
        service(&trace, "Order"),
    );
    let mut state = WorldState::new(&trace.header);
    let mut rollbacks_complete = 0;
    for event in &trace.events {
        state.apply(event);
        if let Event::RowWritten {
            service,
            table,
            key,
            value,
            version,
        } = &event.event
            && *service == coordinator
            && table == RENAME_LOG_TABLE
            && LogEntry::parse(value).unwrap().state == LogState::RolledBack
        {
            rollbacks_complete += 1;
            let name = LogEntry::parse(value).unwrap().to;
            for (who, table) in [(product, "products"), (order, "product_names")] {
                let row = state.row(who, table, key).unwrap();
                assert_eq!(
                    (&row.value, row.version),
                    (&name, *version),
                    "{table}[{key}] after rollback"
                );
            }
        }
    }
    assert_eq!(rollbacks_complete, failed.len());
    assert_eq!(summary.coordination.partial_updates_flagged, 0);
    assert_eq!(summary.coordination.inconsistent_rows_at_end, 0);
}

#[test]
fn renames_fail_while_product_is_down_and_reads_carry_on() {
    let trace = run(
        4,
        30.0,
        &[("product_down_at_s", 10.0), ("product_down_for_s", 8.0)],
    );
    let ops = ops(&trace);
    let during =
        |op: &&Op| op.started >= Micros::from_secs(10) && op.started < Micros::from_secs(17);
    let in_outage: Vec<&Op> = renames(&ops).filter(during).collect();
    assert!(
        in_outage.len() >= 4,
        "about a rename a second: {}",
        in_outage.len()
    );
    for rename in &in_outage {
        let reason = failure_reason(rename).expect("a rename during the outage fails");
        assert!(
            reason.starts_with("Product is down") || reason.starts_with("waited more than"),
            "{reason}"
        );
    }
    let after: Vec<&Op> = renames(&ops)
        .filter(|op| op.started >= Micros::from_secs(20) && op.finished.is_some())
        .collect();
    assert!(after.len() >= 4 && after.iter().all(|op| failure_reason(op).is_none()));
    let reads_failed = ops
        .values()
        .filter(|op| op.name == "read order" && failure_reason(op).is_some())
        .count();
    assert_eq!(reads_failed, 0, "reads come from Order's copy");
    let summary = summarize(&trace);
    assert_eq!(
        summary.coordination.inconsistent_rows_at_end, 0,
        "every rollback landed once Product was back"
    );
}

#[test]
fn a_coordinator_crash_leaves_exactly_its_partial_update_and_flags_it() {
    let trace = run(
        6,
        30.0,
        &[
            ("coordinator_crash_at_rename", 5.0),
            ("coordinator_restart_after_s", 2.0),
        ],
    );
    let (coordinator, order) = (service(&trace, "Coordinator"), service(&trace, "Order"));
    let crash_text = narrations(&trace)
        .into_iter()
        .find(|t| t.starts_with("Coordinator crashes after sending the rename of product"))
        .expect("the crash is narrated")
        .to_string();
    let crashed_product = crash_text
        .trim_start_matches("Coordinator crashes after sending the rename of product ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut state = WorldState::new(&trace.header);
    let mut flagged_at = None;
    for event in &trace.events {
        state.apply(event);
        if let Event::PartialUpdateFlagged { service, key, .. } = &event.event {
            assert_eq!(*service, coordinator);
            assert_eq!(*key, crashed_product);
            assert!(flagged_at.is_none(), "flagged once");
            flagged_at = Some(event.at);
            // Right after the restart, exactly that product differs, and the page marks it stale.
            let differing: Vec<&str> = state.inconsistent_rows().iter().map(|(_, k)| *k).collect();
            assert_eq!(differing, [crashed_product.as_str()]);
            assert!(state.is_stale(order, "product_names", key));
            let log = state.row(coordinator, RENAME_LOG_TABLE, key).unwrap();
            assert_eq!(
                LogEntry::parse(&log.value).unwrap().state,
                LogState::Partial
            );
        }
    }
    let flagged_at = flagged_at.expect("the restarted coordinator flags the partial update");
    println!("{crash_text} Flagged at {flagged_at}.");
    assert!(flagged_at >= Micros::from_secs(2));
    let ops = ops(&trace);
    let crashed: Vec<&Op> = renames(&ops)
        .filter(|op| op.product.as_deref() == Some(crashed_product.as_str()))
        .filter(|op| failure_reason(op).is_some_and(|r| r.starts_with("no answer within")))
        .collect();
    assert_eq!(
        crashed.len(),
        1,
        "the client of the crashed rename hears nothing and times out"
    );
    let summary = summarize(&trace);
    assert_eq!(summary.coordination.partial_updates_flagged, 1);
    assert!(
        summary.coordination.inconsistent_rows_at_end <= 1,
        "only the flagged product may still differ"
    );
}

#[test]
fn renames_beyond_the_waiting_bound_are_refused() {
    // With Product down for 10 s, every product's rollback is retried until Product is back, so
    // renames queue up behind them: 20 a second, each waiting up to 5 s, reach the bound of 32.
    let trace = run(
        2,
        25.0,
        &[
            ("rename_rate_per_s", 20.0),
            ("coordinator_timeout_ms", 5_000.0),
            ("product_down_at_s", 5.0),
            ("product_down_for_s", 10.0),
        ],
    );
    let ops = ops(&trace);
    let busy = renames(&ops)
        .filter_map(failure_reason)
        .filter(|r| *r == "the coordinator is busy: 32 renames are already waiting")
        .count();
    let stale_waits = renames(&ops)
        .filter_map(failure_reason)
        .filter(|r| r.starts_with("waited more than 5.00 s behind another rename of product"))
        .count();
    println!("{busy} renames refused at the bound, {stale_waits} dropped after waiting too long");
    assert!(busy >= 50, "{busy}");
    assert!(stale_waits >= 1, "{stale_waits}");
}

/// The number of rollback messages a rename's two rollbacks may send when every participant
/// answers within a round trip: the first attempt, then retries after backoffs that start at
/// 50–100 ms and double, within the answer's round trip of at most 2 × 1.25 × 40 ms.
const ROLLBACK_MESSAGES_PER_FAILED_RENAME_MAX: u64 = 2 * 3;

#[test]
fn rollbacks_retry_with_backoff_so_a_short_timeout_sends_few() {
    // A 5 ms timeout is shorter than any round trip: every rename times out and is rolled back,
    // and no rollback's answer comes within the timeout either. Retrying every timeout sent
    // thousands of rollbacks; with backoff a rollback is sent a few times until its answer lands.
    let trace = run(
        1,
        30.0,
        &[("coordinator_timeout_ms", 5.0), ("rename_rate_per_s", 1.0)],
    );
    let summary = summarize(&trace);
    let failed = summary.by_operation["rename product"].failed;
    let rollbacks = summary.coordination.rollbacks_sent;
    println!("{failed} renames failed, {rollbacks} rollback messages");
    assert!(failed >= 20, "{failed}");
    assert!(rollbacks >= 2 * failed, "each failure rolls back both");
    assert!(
        rollbacks <= ROLLBACK_MESSAGES_PER_FAILED_RENAME_MAX * failed,
        "{rollbacks} rollback messages for {failed} failed renames"
    );
}

#[test]
fn rollbacks_to_a_service_that_stays_down_back_off_to_their_cap() {
    // Product down for 10 s from 5 s: rollbacks to it are refused, retried after 100 ms, 200 ms,
    // … up to 5 s apart, so over its outage each product's rollback is sent at most a dozen
    // times, not every 100 ms.
    let trace = run(
        3,
        25.0,
        &[("product_down_at_s", 5.0), ("product_down_for_s", 10.0)],
    );
    let summary = summarize(&trace);
    let failed = summary.by_operation["rename product"].failed;
    let rollbacks = summary.coordination.rollbacks_sent;
    println!("{failed} renames failed, {rollbacks} rollback messages");
    assert!(failed >= 5, "{failed}");
    assert!(rollbacks <= 2 * 12 * failed, "{rollbacks} for {failed}");
}

/// Two-phase commit's knob, added to a run's knobs.
const TWO_PHASE: (&str, f64) = ("protocol", 1.0);

fn with_protocol(two_phase: bool, knobs: &[(&'static str, f64)]) -> Vec<(&'static str, f64)> {
    let mut all = knobs.to_vec();
    all.push(("protocol", if two_phase { 1.0 } else { 0.0 }));
    all
}

#[test]
fn two_phase_commit_has_no_aborted_reads_where_the_saga_has_them() {
    // Product refuses 30 % of renames: the saga's Order applies each before the refusal is
    // known, and a read in between returns a name rolled back a moment later. Under 2PC Order
    // only holds the name prepared, and reads are served the committed one.
    let knobs = [
        ("product_failure_pct", 30.0),
        ("read_rate_per_s", 10.0),
        ("rename_rate_per_s", 2.0),
    ];
    for seed in 1..=5 {
        let saga = summarize(&run(seed, 30.0, &with_protocol(false, &knobs)));
        let two_phase = summarize(&run(seed, 30.0, &with_protocol(true, &knobs)));
        println!(
            "seed {seed}: aborted reads saga {}, 2pc {}; writes aborted: rollbacks sent saga {}, aborts sent 2pc {}",
            saga.coordination.aborted_reads,
            two_phase.coordination.aborted_reads,
            saga.coordination.rollbacks_sent,
            two_phase.coordination.rollbacks_sent
        );
        assert!(saga.coordination.aborted_reads > 0, "seed {seed}");
        assert_eq!(
            saga.anomalies["aborted_read"],
            saga.coordination.aborted_reads
        );
        assert_eq!(two_phase.coordination.aborted_reads, 0, "seed {seed}");
        assert_eq!(two_phase.anomalies["aborted_read"], 0, "seed {seed}");
        // Aborts happened (the checker had writes to judge reads against), none half done.
        assert!(two_phase.coordination.rollbacks_sent > 0, "seed {seed}");
        assert_eq!(two_phase.anomalies["partial_update"], 0, "seed {seed}");
        assert_eq!(two_phase.coordination.partial_updates_flagged, 0);
    }
}

#[test]
fn two_phase_commit_writes_take_a_round_trip_more() {
    for seed in 1..=5 {
        let rename_p50 = |two_phase: bool| {
            let summary = summarize(&run(seed, 30.0, &with_protocol(two_phase, &[])));
            assert_eq!(summary.stale_reads, 0, "a confirmed rename is everywhere");
            summary.by_operation["rename product"].p50_us
        };
        let (saga, two_phase) = (rename_p50(false), rename_p50(true));
        println!("seed {seed}: rename p50 saga {saga} µs, 2pc {two_phase} µs");
        // Client → coordinator → participants → coordinator → client is four hops of 40 ms;
        // the commit round adds two more.
        assert!(
            two_phase > saga * 5 / 4,
            "seed {seed}: {two_phase} vs {saga}"
        );
        assert!(
            two_phase > saga + 60_000,
            "seed {seed}: {two_phase} vs {saga}"
        );
    }
}

#[test]
fn a_coordinator_crash_after_deciding_leaves_both_rows_in_doubt_until_it_recovers() {
    for seed in 1..=4 {
        let knobs = [
            TWO_PHASE,
            ("coordinator_crash_at_rename", 3.0),
            ("coordinator_restart_after_s", 2.0),
        ];
        let trace = run(seed, 30.0, &knobs);
        let (coordinator, product, order) = (
            service(&trace, "Coordinator"),
            service(&trace, "Product"),
            service(&trace, "Order"),
        );
        let texts = narrations(&trace);
        assert!(texts.iter().any(|t| t.starts_with("Product prepared '")
            && t.contains("(held, '")
            && t.contains("still served")));
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("Coordinator decided commit for rename #")
                    && t.contains(", logged"))
        );
        let crash_text = texts
            .iter()
            .find(|t| t.starts_with("Coordinator crashes after logging its decision to commit"))
            .expect("the 3rd rename commits (nothing refuses), then the coordinator crashes");
        let crashed_product = crash_text
            .split("whoever prepared product ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_string();
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("Product: product ") && t.contains("was in doubt since")),
            "seed {seed}: Product narrates its doubt when the decision finally arrives"
        );
        // Walk the trace: while the coordinator is down, both rows are prepared (distinguishable
        // in the tables), the committed name is still served, and the log holds the decision.
        let mut state = WorldState::new(&trace.header);
        let (mut crashed_at, mut restarted_at, mut checked_while_down) = (None, None, false);
        for event in &trace.events {
            state.apply(event);
            match &event.event {
                Event::ServiceDown { service } if *service == coordinator => {
                    crashed_at.get_or_insert(event.at);
                }
                Event::ServiceUp { service } if *service == coordinator && crashed_at.is_some() => {
                    restarted_at.get_or_insert(event.at);
                }
                Event::OpStarted { .. } if crashed_at.is_some() && restarted_at.is_none() => {
                    for participant in [product, order] {
                        let held = state
                            .row(participant, "prepared_names", &crashed_product)
                            .expect("a prepared row");
                        assert!(held.value.starts_with("prepared at "), "{held:?}");
                    }
                    let source = state.row(product, "products", &crashed_product).unwrap();
                    let copy = state.row(order, "product_names", &crashed_product).unwrap();
                    assert_eq!(
                        source.version, copy.version,
                        "both still serve the old name"
                    );
                    let held = state
                        .row(order, "prepared_names", &crashed_product)
                        .unwrap();
                    assert!(
                        held.version > copy.version,
                        "the held rename is newer than the served name"
                    );
                    let log = state
                        .row(coordinator, RENAME_LOG_TABLE, &crashed_product)
                        .unwrap();
                    assert_eq!(
                        LogEntry::parse(&log.value).unwrap().state,
                        LogState::Committing
                    );
                    checked_while_down = true;
                }
                _ => {}
            }
        }
        assert!(
            checked_while_down,
            "seed {seed}: an operation began while it was down"
        );
        // After the restart the decision lands: both hold the new name at the same version.
        let source = state.row(product, "products", &crashed_product).unwrap();
        let copy = state.row(order, "product_names", &crashed_product).unwrap();
        assert_eq!((&source.value, source.version), (&copy.value, copy.version));
        let summary = summarize(&trace);
        let down = restarted_at.unwrap().0 - crashed_at.unwrap().0;
        println!(
            "seed {seed}: {crash_text} Down {down} µs; in doubt at most {} µs",
            summary.coordination.in_doubt_max_us
        );
        assert!(summary.coordination.in_doubt_max_us > down, "seed {seed}");
        assert_eq!(summary.coordination.partial_updates_flagged, 0);
        assert_eq!(summary.anomalies["partial_update"], 0);
        // The saga's crash at the same rename leaves nothing in doubt: it leaves a partial update.
        let saga = summarize(&run(seed, 30.0, &with_protocol(false, &knobs[1..])));
        assert_eq!(saga.coordination.in_doubt_max_us, 0);
        assert_eq!(saga.coordination.partial_updates_flagged, 1);
    }
}

#[test]
fn a_restart_time_without_a_crash_is_refused_with_what_to_do() {
    let error = simulate(&RunRequest {
        scenario: "gateway".into(),
        seed: 1,
        until_s: 5.0,
        knobs: [
            ("coordinator_crash_at_rename".to_string(), 0.0),
            ("coordinator_restart_after_s".to_string(), 5.0),
        ]
        .into(),
        faults: vec![],
    })
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "scenario gateway cannot run with these knobs: coordinator_restart_after_s=5 has no effect: the coordinator never \
         crashes (coordinator_crash_at_rename=0); give a rename number to crash at, or leave \
         coordinator_restart_after_s at its default"
    );
    // Its default with no crash, and any restart time with a crash, are fine.
    for (crash_at, restart_after) in [(0.0, 2.0), (3.0, 5.0)] {
        let knobs = [
            ("coordinator_crash_at_rename".to_string(), crash_at),
            ("coordinator_restart_after_s".to_string(), restart_after),
            ("protocol".to_string(), 1.0),
        ];
        let request = RunRequest {
            scenario: "gateway".into(),
            seed: 1,
            until_s: 5.0,
            knobs: knobs.into(),
            faults: vec![],
        };
        assert!(simulate(&request).is_ok(), "{crash_at} {restart_after}");
    }
}

#[test]
fn the_saga_header_leaves_the_protocol_out_so_earlier_traces_keep_their_hash() {
    // Traces recorded before the gateway had a protocol are saga runs: a saga run's header
    // still reads as theirs did, and a 2PC run's says what it is.
    let saga = run(1, 2.0, &[]);
    assert!(
        !saga.header.knobs.contains_key("protocol"),
        "{:?}",
        saga.header.knobs
    );
    assert!(saga.header.knobs.contains_key("coordinator_timeout_ms"));
    let two_phase = run(1, 2.0, &[TWO_PHASE]);
    assert_eq!(two_phase.header.knobs.get("protocol"), Some(&1.0));
}
