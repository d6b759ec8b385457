//! The anomaly checker: reads any trace — simulated, live or recorded — and lists what went wrong
//! in it, each anomaly with the events that prove it (`docs/METRICS.md`, "Anomalies").
//!
//! It reads the trace alone: the header's services and copies, and the events. It shares no code
//! with the metrics (`crate::metrics`), so where both count the same thing the seed sweeps can
//! check one against the other. Feed it events one at a time with [`Checker::push`] and ask for
//! [`Checker::anomalies`] at any moment, or check a whole trace with [`check`].
//!
//! Most kinds are found the moment their proof is complete. Two are judged only once a run has
//! ended normally (`run_ended` with `reached_until`), because before that they may still resolve:
//! a confirmed event never applied, and a copy left diverged by a coordinated update.

use crate::ordered::CollectOrdered;
use crate::protocol::{
    CopyDecl, EndReason, Event, MessageKind, MsgId, MsgMap, MsgSet, Observed, OpId, OpMap, OpSet,
    ServiceId, ServiceRole, TraceEvent, TraceHeader,
};
use crate::slot_map::{DenseMap, DenseSet, SlotMap, SlotSet};
use crate::time::Micros;
use std::collections::BTreeMap;

#[cfg(test)]
mod tests;

/// What kind of anomaly a trace shows.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    /// A successful read returned a version older than one confirmed to a client before it began.
    StaleRead,
    /// A successful read returned a version whose write a coordinator rolled back.
    AbortedRead,
    /// A copy row was replaced by an older version.
    CopyRegression,
    /// A subscriber applied the same event a second time.
    DuplicateApplied,
    /// The broker confirmed a publish to its publisher, and a subscriber never applied the event.
    ConfirmedEventNeverApplied,
    /// A confirmed version of a row was overwritten by a write that did not see it.
    LostUpdate,
    /// An update applied at some participants and not at the others.
    PartialUpdate,
}

impl AnomalyKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [AnomalyKind; 7] = [
        AnomalyKind::StaleRead,
        AnomalyKind::AbortedRead,
        AnomalyKind::CopyRegression,
        AnomalyKind::DuplicateApplied,
        AnomalyKind::ConfirmedEventNeverApplied,
        AnomalyKind::LostUpdate,
        AnomalyKind::PartialUpdate,
    ];

    /// Its name in the summary and on the command line, such as `stale_read`.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::StaleRead => "stale_read",
            AnomalyKind::AbortedRead => "aborted_read",
            AnomalyKind::CopyRegression => "copy_regression",
            AnomalyKind::DuplicateApplied => "duplicate_applied",
            AnomalyKind::ConfirmedEventNeverApplied => "confirmed_event_never_applied",
            AnomalyKind::LostUpdate => "lost_update",
            AnomalyKind::PartialUpdate => "partial_update",
        }
    }
}

/// One anomaly and its proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// What kind it is.
    pub kind: AnomalyKind,
    /// The indices (0-based, the header not counted) of the events that prove it, in trace
    /// order; the last is the event at which the proof was complete.
    pub events: Vec<usize>,
    /// When the proof was complete: the time of the last of [`Anomaly::events`].
    pub at: Micros,
    /// The anomaly in words, naming the operations, rows and events involved.
    pub text: String,
}

/// A row of a source table: the service owning it, the table, the key.
type Row = (ServiceId, String, String);

/// A version of a row that a client was told about.
#[derive(Clone, Debug)]
struct Confirmation {
    at: Micros,
    version: u64,
    /// The `op_finished` that confirmed it.
    event_idx: usize,
    op: OpId,
}

/// The last write of a row.
#[derive(Clone, Debug)]
struct LastWrite {
    version: u64,
    value: String,
    event_idx: usize,
}

/// A confirm message from a broker to a publisher.
#[derive(Clone, Debug)]
struct ConfirmMessage {
    broker: ServiceId,
    event_id: String,
    sent_idx: usize,
}

/// An event whose publish a broker confirmed to its publisher.
#[derive(Clone, Debug)]
struct ConfirmedEvent {
    broker: ServiceId,
    sent_idx: usize,
    delivered_idx: usize,
}

/// Reads a trace event by event and keeps every anomaly found so far.
#[derive(Clone, Debug)]
pub struct Checker {
    copies: Vec<CopyDecl>,
    roles: Vec<ServiceRole>,
    names: Vec<String>,
    anomalies: Vec<Anomaly>,
    /// Events pushed so far: the index of the next one.
    events_seen: usize,
    /// Set once `run_ended` arrives; later events are ignored.
    ended: Option<EndReason>,
    /// Operations running: when and at which event each began.
    running: OpMap<(Micros, usize)>,
    /// Versions confirmed to clients, increasing in time and version.
    confirmed: SlotMap<Row, Vec<Confirmation>>,
    /// Versions rolled back (`write_aborted`), with the event that says so.
    aborted: SlotMap<Row, SlotMap<u64, usize>>,
    /// Reads whose version's fate is still open: by row and version, the operation and its
    /// `op_finished`.
    open_reads: SlotMap<Row, SlotMap<u64, Vec<(OpId, usize)>>>,
    /// Operations already reported as aborted reads.
    aborted_reads: OpSet,
    /// The last write of every row that a check can still read: the rows of copy tables (for
    /// regressions), and with a coordinator the rows of their source tables too (for updates
    /// left half done at the end). Other rows' writes are never looked up again, so they are
    /// not kept: in a run without copies this map stays empty instead of holding every row.
    rows: SlotMap<Row, LastWrite>,
    /// Whether a coordinator runs: only then does the end judge copies against their sources by
    /// value, so only then are the source rows and every kept row's value kept.
    coordinated: bool,
    /// Per subscriber and event id: the event at which it first applied it.
    applied: DenseMap<ServiceId, SlotMap<String, usize>>,
    /// Per kind of event (`OrderCreated`): the services that handled one.
    subscribers: SlotMap<String, DenseSet<ServiceId>>,
    /// Confirm messages on their way to publishers.
    confirms_in_flight: MsgMap<ConfirmMessage>,
    /// Events confirmed to their publisher, by event id, with the first confirm's delivery.
    confirmed_events: SlotMap<String, ConfirmedEvent>,
    /// Per broker queue: its depth now and the last event at which it was empty.
    queues: DenseMap<ServiceId, SlotMap<String, (u32, Option<usize>)>>,
    /// Messages to or from a coordinator still on their way.
    coordinator_messages_in_flight: MsgSet,
    /// Operations that sent a request to a coordinator.
    coordinated_ops: OpSet,
    /// Keys a coordinator flagged as left half done.
    flagged_keys: SlotSet<String>,
}

impl Checker {
    /// A checker for a trace with `header`, before its first event.
    pub fn new(header: &TraceHeader) -> Checker {
        Checker {
            coordinated: header
                .services
                .iter()
                .any(|s| s.role == ServiceRole::Coordinator),
            copies: header.copies.clone(),
            roles: header.services.iter().map(|s| s.role).collect(),
            names: header.services.iter().map(|s| s.name.clone()).collect(),
            anomalies: Vec::new(),
            events_seen: 0,
            ended: None,
            running: SlotMap::new(),
            confirmed: SlotMap::new(),
            aborted: SlotMap::new(),
            open_reads: SlotMap::new(),
            aborted_reads: SlotSet::new(),
            rows: SlotMap::new(),
            applied: DenseMap::new(),
            subscribers: SlotMap::new(),
            confirms_in_flight: SlotMap::new(),
            confirmed_events: SlotMap::new(),
            queues: DenseMap::new(),
            coordinator_messages_in_flight: SlotSet::new(),
            coordinated_ops: SlotSet::new(),
            flagged_keys: SlotSet::new(),
        }
    }

    /// Every anomaly found so far, in the order found.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// How many events have been pushed.
    pub fn events_seen(&self) -> usize {
        self.events_seen
    }

    /// How many anomalies of each kind so far, every kind listed (zeros included).
    pub fn counts(&self) -> BTreeMap<AnomalyKind, u64> {
        counts(&self.anomalies)
    }

    /// Reads the next event of the trace.
    pub fn push(&mut self, event: &TraceEvent) {
        let idx = self.events_seen;
        self.events_seen += 1;
        if self.ended.is_some() {
            return;
        }
        let at = event.at;
        match &event.event {
            Event::OpStarted { op, .. } => {
                self.running.insert(op.key(), (at, idx));
            }
            Event::OpFinished {
                op,
                outcome,
                observed,
                ..
            } => {
                let Some((started, started_idx)) = self.running.remove(&op.key()) else {
                    return;
                };
                if outcome.is_ok() {
                    self.read_returned(*op, started, started_idx, observed, at, idx);
                }
            }
            Event::WriteAborted {
                source_service,
                source_table,
                key,
                version,
                ..
            } => {
                let row = (*source_service, source_table.clone(), key.clone());
                self.write_aborted(row, *version, at, idx);
            }
            Event::RowWritten {
                service,
                table,
                key,
                value,
                version,
            } => self.row_written(*service, table, key, value, *version, at, idx),
            Event::EventHandled {
                service,
                event_id,
                applied,
                ..
            } => {
                self.subscribers
                    .entry(event_kind(event_id).to_string())
                    .or_default()
                    .insert(*service);
                if *applied {
                    self.event_applied(*service, event_id, at, idx);
                }
            }
            Event::Sent {
                msg,
                from,
                to,
                kind,
                label,
                op,
                ..
            } => self.sent(*msg, *from, *to, *kind, label, *op, idx),
            Event::Duplicated { msg, copy } => {
                if let Some(confirm) = self.confirms_in_flight.get(&msg.key()).cloned() {
                    self.confirms_in_flight.insert(copy.key(), confirm);
                }
                if self.coordinator_messages_in_flight.contains(&msg.key()) {
                    self.coordinator_messages_in_flight.insert(copy.key());
                }
            }
            Event::Delivered { msg } => {
                self.coordinator_messages_in_flight.remove(&msg.key());
                if let Some(confirm) = self.confirms_in_flight.remove(&msg.key()) {
                    self.confirmed_events
                        .entry(confirm.event_id)
                        .or_insert(ConfirmedEvent {
                            broker: confirm.broker,
                            sent_idx: confirm.sent_idx,
                            delivered_idx: idx,
                        });
                }
            }
            Event::Dropped { msg, .. } => {
                self.coordinator_messages_in_flight.remove(&msg.key());
                self.confirms_in_flight.remove(&msg.key());
            }
            Event::QueueDepth {
                service,
                queue,
                depth,
            } => {
                let entry = self
                    .queues
                    .entry(*service)
                    .or_default()
                    .entry(queue.clone())
                    .or_default();
                entry.0 = *depth;
                if *depth == 0 {
                    entry.1 = Some(idx);
                }
            }
            Event::PartialUpdateFlagged { key, text, .. } => {
                self.flagged_keys.insert(key.clone());
                self.found(
                    AnomalyKind::PartialUpdate,
                    vec![idx],
                    at,
                    format!("a coordinator flagged its update of {key} as half done: {text}"),
                );
            }
            Event::RunEnded { reason, .. } => {
                self.ended = Some(*reason);
                if *reason == EndReason::ReachedUntil {
                    self.judge_at_end(at, idx);
                }
            }
            Event::ServiceUp { .. }
            | Event::CircuitChanged { .. }
            | Event::ServiceDown { .. }
            | Event::ServiceLoad { .. }
            | Event::FaultBegins { .. }
            | Event::FaultEnds { .. }
            | Event::Narration { .. } => {}
        }
    }

    fn found(&mut self, kind: AnomalyKind, mut events: Vec<usize>, at: Micros, text: String) {
        crate::ordered::sort_by_key(&mut events, |&event| event);
        events.dedup();
        self.anomalies.push(Anomaly {
            kind,
            events,
            at,
            text,
        });
    }

    fn role(&self, service: ServiceId) -> Option<ServiceRole> {
        self.roles.get(service.0 as usize).copied()
    }

    fn name(&self, service: ServiceId) -> String {
        self.names
            .get(service.0 as usize)
            .cloned()
            .unwrap_or_else(|| format!("service {}", service.0))
    }

    fn is_copy(&self, service: ServiceId, table: &str) -> bool {
        self.copies
            .iter()
            .any(|c| c.copy_service == service && c.copy_table == table)
    }

    fn is_copy_source(&self, service: ServiceId, table: &str) -> bool {
        self.copies
            .iter()
            .any(|c| c.source_service == service && c.source_table == table)
    }

    /// A successful operation that began at `started` returned `observed`: stale and aborted
    /// reads, then what it confirms.
    fn read_returned(
        &mut self,
        op: OpId,
        started: Micros,
        started_idx: usize,
        observed: &[Observed],
        at: Micros,
        idx: usize,
    ) {
        // Stale: some row older than a version confirmed at or before it began.
        let stale = observed.iter().find_map(|seen| {
            let history = self.confirmed.get(&seen.source_row())?;
            let known = history.partition_point(|c| c.at <= started);
            let newest = history.get(known.checked_sub(1)?)?;
            (newest.version > seen.version).then(|| (seen, newest.clone()))
        });
        if let Some((seen, newest)) = stale {
            let text = format!(
                "op {} returned {}[{}] v{} although v{} was confirmed to op {} before it began",
                op.0, seen.source_table, seen.key, seen.version, newest.version, newest.op.0
            );
            self.found(
                AnomalyKind::StaleRead,
                vec![started_idx, newest.event_idx, idx],
                at,
                text,
            );
        }
        // Aborted: a version rolled back already, or later (kept open until decided).
        for seen in observed {
            let row = seen.source_row();
            if let Some(&aborted_idx) = self
                .aborted
                .get(&row)
                .and_then(|versions| versions.get(&seen.version))
            {
                self.aborted_read(op, seen, idx, aborted_idx, at);
                continue;
            }
            let versions = self.open_reads.entry(row).or_default();
            // A newer version exists: the fate of older ones was decided before it was written.
            *versions = versions.split_off(&seen.version);
            versions.entry(seen.version).or_default().push((op, idx));
        }
        // What it confirms.
        for seen in observed {
            let history = self.confirmed.entry(seen.source_row()).or_default();
            if history.last().is_none_or(|c| seen.version > c.version) {
                history.push(Confirmation {
                    at,
                    version: seen.version,
                    event_idx: idx,
                    op,
                });
            }
        }
    }

    fn aborted_read(
        &mut self,
        op: OpId,
        seen: &Observed,
        read_idx: usize,
        aborted_idx: usize,
        at: Micros,
    ) {
        if !self.aborted_reads.insert(op.key()) {
            return;
        }
        let text = format!(
            "op {} returned {}[{}] v{}, a write that was rolled back",
            op.0, seen.source_table, seen.key, seen.version
        );
        self.found(
            AnomalyKind::AbortedRead,
            vec![read_idx, aborted_idx],
            at,
            text,
        );
    }

    fn write_aborted(&mut self, row: Row, version: u64, at: Micros, idx: usize) {
        let reads = self
            .open_reads
            .get_mut(&row)
            .and_then(|versions| versions.remove(&version))
            .unwrap_or_default();
        for (op, read_idx) in reads {
            let seen = Observed {
                source_service: row.0,
                source_table: row.1.clone().into(),
                key: row.2.clone().into(),
                version,
            };
            self.aborted_read(op, &seen, read_idx, idx, at);
        }
        self.aborted.entry(row).or_default().insert(version, idx);
    }

    #[allow(clippy::too_many_arguments)]
    fn row_written(
        &mut self,
        service: ServiceId,
        table: &str,
        key: &str,
        value: &str,
        version: u64,
        at: Micros,
        idx: usize,
    ) {
        let row: Row = (service, table.to_string(), key.to_string());
        let copy = self.is_copy(service, table);
        if !copy {
            self.check_lost_update(&row, version, at, idx);
        }
        let kept = copy || (self.coordinated && self.is_copy_source(service, table));
        if !kept {
            return;
        }
        let before = self.rows.get(&row).cloned();
        if copy && let Some(before) = before.filter(|b| b.version > version) {
            let text = format!(
                "{}'s {table}[{key}] went back from v{} to v{version}",
                self.name(service),
                before.version
            );
            self.found(
                AnomalyKind::CopyRegression,
                vec![before.event_idx, idx],
                at,
                text,
            );
        }
        let value = if self.coordinated {
            value.to_string()
        } else {
            String::new()
        };
        self.rows.insert(
            row,
            LastWrite {
                version,
                value,
                event_idx: idx,
            },
        );
    }

    /// A write of a source row at a version older than one already confirmed to a client: it
    /// did not build on what the client was told, so that confirmed write is lost.
    fn check_lost_update(&mut self, row: &Row, version: u64, at: Micros, idx: usize) {
        let Some(newest) = self.confirmed.get(row).and_then(|h| h.last()).cloned() else {
            return;
        };
        if version < newest.version {
            let text = format!(
                "{}[{}] written at v{version}, over v{} confirmed to op {}",
                row.1, row.2, newest.version, newest.op.0
            );
            self.found(
                AnomalyKind::LostUpdate,
                vec![newest.event_idx, idx],
                at,
                text,
            );
        }
    }

    fn event_applied(&mut self, subscriber: ServiceId, event_id: &str, at: Micros, idx: usize) {
        let first = self.applied.get(&subscriber);
        if let Some(&first_idx) = first.and_then(|applied| applied.get(event_id)) {
            let text = format!(
                "{} applied {event_id} again (first at event #{first_idx})",
                self.name(subscriber)
            );
            self.found(
                AnomalyKind::DuplicateApplied,
                vec![first_idx, idx],
                at,
                text,
            );
        } else {
            let applied = self.applied.entry(subscriber).or_default();
            applied.insert(event_id.to_string(), idx);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sent(
        &mut self,
        msg: MsgId,
        from: ServiceId,
        to: ServiceId,
        kind: MessageKind,
        label: &str,
        op: Option<OpId>,
        idx: usize,
    ) {
        let from_role = self.role(from);
        let to_role = self.role(to);
        if from_role == Some(ServiceRole::Coordinator) || to_role == Some(ServiceRole::Coordinator)
        {
            self.coordinator_messages_in_flight.insert(msg.key());
            if let Some(op) = op.filter(|_| to_role == Some(ServiceRole::Coordinator)) {
                self.coordinated_ops.insert(op.key());
            }
        }
        // The broker's answer to a publish: `confirm <event id>` (`Payload::PublishConfirmed`).
        if from_role == Some(ServiceRole::Broker)
            && kind == MessageKind::Ack
            && let Some(event_id) = label.strip_prefix("confirm ")
        {
            self.confirms_in_flight.insert(
                msg.key(),
                ConfirmMessage {
                    broker: from,
                    event_id: event_id.to_string(),
                    sent_idx: idx,
                },
            );
        }
    }

    /// The judgments that need a run that ended normally, at its `run_ended`.
    fn judge_at_end(&mut self, at: Micros, idx: usize) {
        self.judge_confirmed_events(at, idx);
        self.judge_coordinated_copies(at, idx);
    }

    /// A confirmed event that a subscriber of its kind never applied is lost for that
    /// subscriber once the subscriber's queue has been empty since the confirm arrived: the event
    /// is then in no queue of its, so it will never be applied there. While the queue has not
    /// drained since, the event may still wait in it, and is not judged.
    ///
    /// A subscriber of a kind (`OrderCreated`, the part of the event id before `#`) is a service
    /// that handled some event of that kind in the run; its queue is the broker's queue named
    /// after it (case aside). Without such a queue, nothing is judged.
    fn judge_confirmed_events(&mut self, at: Micros, idx: usize) {
        let mut lost = Vec::new();
        for (event_id, confirmed) in &self.confirmed_events {
            let kind = event_kind(event_id);
            let Some(subscribers) = self.subscribers.get(kind) else {
                continue;
            };
            for subscriber in subscribers.iter() {
                if self
                    .applied
                    .get(subscriber)
                    .is_some_and(|applied| applied.contains_key(event_id.as_str()))
                {
                    continue;
                }
                let Some(name) = self.names.get(subscriber.0 as usize) else {
                    continue;
                };
                let mut queues = self.queues.get(&confirmed.broker).into_iter().flatten();
                let drained = queues.find_map(|(queue, state)| {
                    let (_, last_empty) = state;
                    queue
                        .eq_ignore_ascii_case(name)
                        .then_some(*last_empty)
                        .flatten()
                        .filter(|empty_idx| *empty_idx > confirmed.delivered_idx)
                });
                if let Some(drained_idx) = drained {
                    let events = vec![
                        confirmed.sent_idx,
                        confirmed.delivered_idx,
                        drained_idx,
                        idx,
                    ];
                    let text = format!(
                        "the broker confirmed {event_id} to its publisher; {name} never applied \
                         it, and its queue has drained since"
                    );
                    lost.push((events, text));
                }
            }
        }
        for (events, text) in lost {
            self.found(AnomalyKind::ConfirmedEventNeverApplied, events, at, text);
        }
    }

    /// With a coordinator keeping copies in step: a source row whose copies differ from it when
    /// the run ends, while the coordinator is quiet (no message of its own on the way, no
    /// operation it serves still running), was updated at some participants and not at the
    /// others. Keys the coordinator flagged itself are reported once, by their flag.
    fn judge_coordinated_copies(&mut self, at: Micros, idx: usize) {
        let has_coordinator = self.roles.contains(&ServiceRole::Coordinator);
        let busy = !self.coordinator_messages_in_flight.is_empty()
            || self
                .coordinated_ops
                .iter()
                .any(|op| self.running.contains_key(op));
        if !has_coordinator || busy {
            return;
        }
        // By copy, then by source key: no tree keyed by `(usize, String)`.
        let mut diverged: Vec<SlotMap<String, Vec<usize>>> =
            self.copies.iter().map(|_| SlotMap::new()).collect();
        for (copy_index, copy) in self.copies.iter().enumerate() {
            for (row, write) in self
                .rows
                .range((copy.copy_service, copy.copy_table.clone(), String::new())..)
            {
                if row.0 != copy.copy_service || row.1 != copy.copy_table {
                    break;
                }
                let source_key = CopyDecl::source_key(&row.2).to_string();
                if self.flagged_keys.contains(&source_key) {
                    continue;
                }
                let source = self.rows.get(&(
                    copy.source_service,
                    copy.source_table.clone(),
                    source_key.clone(),
                ));
                let same =
                    source.is_some_and(|s| s.value == write.value && s.version == write.version);
                if !same {
                    let events = diverged[copy_index].entry(source_key).or_default();
                    events.push(write.event_idx);
                    events.extend(source.map(|s| s.event_idx));
                }
            }
        }
        for (copy_index, rows) in diverged.into_iter().enumerate() {
            for (key, mut events) in rows {
                let copy = &self.copies[copy_index];
                let text = format!(
                    "{}[{key}] and its copy in {} differ at the end: an update reached one and \
                     not the other",
                    copy.source_table, copy.copy_table
                );
                events.push(idx);
                self.found(AnomalyKind::PartialUpdate, events, at, text);
            }
        }
    }
}

/// The kind of an event from its id: `OrderCreated` for `OrderCreated#12`.
fn event_kind(event_id: &str) -> &str {
    event_id.split('#').next().unwrap_or(event_id)
}

/// How many anomalies of each kind, every kind listed (zeros included).
pub fn counts(anomalies: &[Anomaly]) -> BTreeMap<AnomalyKind, u64> {
    let mut counts: BTreeMap<AnomalyKind, u64> =
        AnomalyKind::ALL.iter().map(|kind| (*kind, 0)).collect_map();
    for anomaly in anomalies {
        *counts.entry(anomaly.kind).or_default() += 1;
    }
    counts
}

/// The same counts by kind name, as the run summary carries them. Counted kind by kind rather
/// than through [`counts`]: the page then carries no `BTreeMap<AnomalyKind, _>` code.
pub fn counts_by_name(anomalies: &[Anomaly]) -> SlotMap<String, u64> {
    AnomalyKind::ALL
        .iter()
        .map(|kind| {
            let count = anomalies.iter().filter(|a| a.kind == *kind).count() as u64;
            (kind.name().to_string(), count)
        })
        .collect()
}

/// Checks a whole trace: every anomaly, in the order found.
pub fn check(header: &TraceHeader, events: &[TraceEvent]) -> Vec<Anomaly> {
    let mut checker = Checker::new(header);
    for event in events {
        checker.push(event);
    }
    checker.anomalies
}
