//! The state of the world at a time: a fold of the trace up to that time. Views draw it; the
//! metrics are computed from it. Knows nothing of where the trace came from.

use crate::event_store::EventStore;
use crate::metrics::{Latest, Metrics};
use crate::protocol::{
    CircuitState, CopyDecl, EndReason, Event, MessageKind, MsgId, MsgMap, OpId, ServiceId,
    TraceEvent, TraceHeader,
};
use crate::shared_map::SharedMap;
use crate::slot_map::{DenseMap, SlotMap};
use crate::time::Micros;

/// A row as a view shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowView {
    /// The value.
    pub value: String,
    /// The version.
    pub version: u64,
    /// When it was last written.
    pub written_at: Micros,
}

/// A message on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInFlight {
    /// Its id.
    pub msg: MsgId,
    /// The sender.
    pub from: ServiceId,
    /// The receiver.
    pub to: ServiceId,
    /// Its kind.
    pub kind: MessageKind,
    /// Its label.
    pub label: String,
    /// The operation it serves.
    pub op: Option<OpId>,
    /// When it was sent.
    pub sent_at: Micros,
}

/// One service's tables: table name → key → row.
pub type ServiceTables = SlotMap<String, TableRows>;

/// One table's rows: key → row. Copies of the world share the chunks of rows they have in
/// common (see [`SharedMap`]).
pub type TableRows = SharedMap<String, RowView>;

/// Everything known at [`WorldState::now`].
#[derive(Clone, Debug, PartialEq)]
pub struct WorldState {
    /// The time of the last event applied.
    pub now: Micros,
    /// Whether each service is up, by id.
    pub services_up: Vec<bool>,
    /// Each service's tables, by id.
    pub tables: Vec<ServiceTables>,
    /// Messages sent and not yet delivered or dropped.
    pub in_flight: MsgMap<MessageInFlight>,
    /// Queue depths by broker, then queue (nested, so no tree is keyed by `(ServiceId, String)`).
    pub queue_depths: DenseMap<ServiceId, SlotMap<String, u32>>,
    /// The state of each circuit breaker by (caller, callee), once it changed: a link without
    /// an entry has no breaker, or one that never left closed.
    /// By caller, then callee.
    pub circuits: DenseMap<ServiceId, DenseMap<ServiceId, CircuitState>>,
    /// The numbers so far.
    pub metrics: Metrics,
    /// How many events have been applied.
    pub events_applied: usize,
    /// Set once the trace's last event is applied.
    pub ended: Option<EndReason>,
    copies: Vec<CopyDecl>,
}

impl WorldState {
    /// The world before the first event of a trace with `header`.
    pub fn new(header: &TraceHeader) -> WorldState {
        let n = header.services.len();
        WorldState {
            now: Micros::ZERO,
            services_up: vec![false; n],
            tables: vec![ServiceTables::new(); n],
            in_flight: SlotMap::new(),
            queue_depths: DenseMap::new(),
            circuits: DenseMap::new(),
            metrics: Metrics::new(header),
            events_applied: 0,
            ended: None,
            copies: header.copies.clone(),
        }
    }

    /// The world before the first event, for a fold that keeps many copies of it (the
    /// page's): its source rows keep a history of their versions only in the tables copies
    /// copy, and in a table a read observes from the first such read on, when
    /// [`WorldState::apply_stored`] recalls the table's history from the events before. The
    /// other rows' histories (most of a run's writes: stock counts, outboxes, queues) are never
    /// read. It must be fed with [`WorldState::apply_stored`]; its metrics are the same as a
    /// [`WorldState::new`] world's.
    pub fn sparing(header: &TraceHeader) -> WorldState {
        let mut world = WorldState::new(header);
        let copied = header.copies.iter();
        world.metrics.staleness.keep_only(
            copied
                .map(|c| (c.source_service, c.source_table.clone()))
                .collect(),
        );
        world
    }

    /// Applies `event`, the next event after those this world has applied, with which `earlier`
    /// begins (it may hold more). A read of a table whose history this world left out
    /// ([`WorldState::sparing`]) first recalls that history from `earlier`, once per table:
    /// a scan of the events so far.
    pub fn apply_stored(&mut self, event: &TraceEvent, earlier: &EventStore) {
        if let Event::OpFinished { observed, .. } = &event.event {
            for seen in observed {
                let (service, table) = (seen.source_service, &seen.source_table);
                if !self.metrics.staleness.keeps(service, table) {
                    self.recall_history(service, table, earlier.iter().take(self.events_applied));
                }
            }
        }
        self.apply(event);
    }

    /// Keeps the history of `service`'s `table` from now on, recalling it from `earlier`, the
    /// events this world has applied: each write of one of its rows is passed to the staleness
    /// again as [`WorldState::apply`] passed it, with the version the tables held before it.
    fn recall_history(
        &mut self,
        service: ServiceId,
        table: &str,
        earlier: impl Iterator<Item = TraceEvent>,
    ) {
        self.metrics.staleness.keep(service, table);
        // A copy's rows are not sources: they keep no history.
        if self.copy_source(service, table).is_some() {
            return;
        }
        let listed = (service.0 as usize) < self.tables.len();
        let staleness = &mut self.metrics.staleness;
        let mut latest: SlotMap<String, (u64, Micros)> = SlotMap::new();
        for event in earlier {
            if let Event::RowWritten {
                service: written,
                table: of,
                key,
                version,
                ..
            } = &event.event
                && (*written, of.as_str()) == (service, table)
            {
                let before = listed.then(|| latest.get(key).copied());
                let row = (service, table.to_string(), key.clone());
                staleness.source_written(&row, before, *version, event.at);
                latest.insert(key.clone(), (*version, event.at));
            }
        }
    }

    /// The row at `key` of `service`'s `table`.
    pub fn row(&self, service: ServiceId, table: &str, key: &str) -> Option<&RowView> {
        self.tables.get(service.0 as usize)?.get(table)?.get(key)
    }

    /// The source that `service`'s `table` copies, if it is a copy.
    pub fn copy_source(&self, service: ServiceId, table: &str) -> Option<&CopyDecl> {
        self.copies
            .iter()
            .find(|c| c.copy_service == service && c.copy_table == table)
    }

    /// True when this row is a copy whose source holds a newer version.
    pub fn is_stale(&self, service: ServiceId, table: &str, key: &str) -> bool {
        let Some(copy) = self.copy_source(service, table) else {
            return false;
        };
        let copy_version = self.row(service, table, key).map_or(0, |row| row.version);
        let source_version = self
            .row(
                copy.source_service,
                &copy.source_table,
                CopyDecl::source_key(key),
            )
            .map_or(0, |row| row.version);
        source_version > copy_version
    }

    /// Bytes of values held in copies of other services' tables: the price of duplication.
    pub fn duplicated_bytes(&self) -> u64 {
        self.copies
            .iter()
            .filter_map(|copy| {
                self.tables
                    .get(copy.copy_service.0 as usize)?
                    .get(&copy.copy_table)
            })
            .flat_map(|rows| rows.values())
            .map(|row| row.value.len() as u64)
            .sum()
    }

    /// Every copy row whose value or version differs from its source row's, as `(copy, copy
    /// key)`: unlike [`WorldState::is_stale`], a copy ahead of its source counts too.
    pub fn inconsistent_rows(&self) -> Vec<(&CopyDecl, &str)> {
        let mut found = Vec::new();
        for copy in &self.copies {
            let Some(copied) = self
                .tables
                .get(copy.copy_service.0 as usize)
                .and_then(|tables| tables.get(&copy.copy_table))
            else {
                continue;
            };
            for (key, row) in copied {
                let source = self.row(
                    copy.source_service,
                    &copy.source_table,
                    CopyDecl::source_key(key),
                );
                let same = source.is_some_and(|s| s.value == row.value && s.version == row.version);
                if !same {
                    found.push((copy, key.as_str()));
                }
            }
        }
        found
    }

    /// Applies the next event of the trace.
    pub fn apply(&mut self, event: &TraceEvent) {
        self.now = event.at;
        self.events_applied += 1;
        self.metrics.calls.apply(event);
        self.metrics.resilience.apply(&event.event);
        self.metrics.unavailable.apply(&event.event);
        self.metrics
            .coordination
            .in_doubt
            .apply(&event.event, event.at);
        self.metrics.loads.apply(&event.event, event.at);
        match &event.event {
            Event::ServiceUp { service } => self.set_up(*service, true),
            Event::ServiceDown { service } => {
                self.set_up(*service, false);
                // A crash forgets a breaker (it lives in memory): it comes back closed.
                self.circuits.remove(service);
            }
            Event::Sent {
                msg,
                from,
                to,
                kind,
                label,
                op,
                ..
            } => {
                self.metrics.message_sent(*op, *from, *to);
                if *kind == MessageKind::Rollback {
                    self.metrics.coordination.rollbacks_sent += 1;
                }
                self.in_flight.insert(
                    msg.key(),
                    MessageInFlight {
                        msg: *msg,
                        from: *from,
                        to: *to,
                        kind: *kind,
                        label: label.as_str().to_string(),
                        op: *op,
                        sent_at: event.at,
                    },
                );
            }
            Event::Duplicated { msg, copy } => {
                self.metrics.messages_duplicated += 1;
                if let Some(original) = self.in_flight.get(&msg.key()) {
                    let copy_in_flight = MessageInFlight {
                        msg: *copy,
                        sent_at: event.at,
                        ..original.clone()
                    };
                    self.in_flight.insert(copy.key(), copy_in_flight);
                }
            }
            Event::Delivered { msg } => {
                self.in_flight.remove(&msg.key());
            }
            Event::Dropped { msg, reason } => {
                self.in_flight.remove(&msg.key());
                self.metrics.dropped_by_reason[*reason as usize] += 1;
            }
            Event::RowWritten {
                service,
                table,
                key,
                value,
                version,
            } => {
                let row = RowView {
                    value: value.clone(),
                    version: *version,
                    written_at: event.at,
                };
                let latest_before = self.latest(*service, table, key);
                let is_copy = self.copy_source(*service, table).is_some();
                if is_copy && latest_before.flatten().is_some_and(|(v, _)| v > *version) {
                    self.metrics.copy_regressions += 1;
                }
                if let Some(tables) = self.tables.get_mut(service.0 as usize) {
                    tables
                        .entry(table.clone())
                        .or_default()
                        .insert(key.clone(), row);
                }
                // Every row that is not a copy is a source of truth: its history of versions
                // judges both its copies (replication lag) and the reads served from it.
                if !is_copy {
                    let source_row = (*service, table.clone(), key.clone());
                    self.metrics.staleness.source_written(
                        &source_row,
                        latest_before,
                        *version,
                        event.at,
                    );
                }
                self.track_staleness(*service, table, key);
            }
            // Folded by `metrics.loads` above.
            Event::ServiceLoad { .. } => {}
            Event::QueueDepth {
                service,
                queue,
                depth,
            } => {
                let queues = self.queue_depths.entry(*service).or_default();
                queues.insert(queue.clone(), *depth);
                self.metrics.queue_depth(*service, queue, *depth);
            }
            Event::EventHandled {
                service,
                event_id,
                published_at,
                applied,
            } => self.metrics.delivery.event_handled(
                *service,
                event_id,
                *published_at,
                *applied,
                event.at,
            ),
            Event::OpStarted { op, name, .. } => self.metrics.op_started(*op, name, event.at),
            Event::OpFinished {
                op,
                outcome,
                latency,
                observed,
            } => {
                let tables = &self.tables;
                self.metrics.op_finished(
                    *op,
                    outcome.is_ok(),
                    *latency,
                    observed,
                    event.at,
                    self.events_applied,
                    &|seen| latest_in(tables, seen.source_service, &seen.source_table, &seen.key),
                );
            }
            Event::PartialUpdateFlagged { key, .. } => {
                self.metrics
                    .coordination
                    .partial_updates_flagged
                    .push(key.clone());
            }
            Event::WriteAborted {
                source_service,
                source_table,
                key,
                version,
                ..
            } => self.metrics.coordination.aborted_reads.write_aborted(
                (*source_service, source_table.clone(), key.clone()),
                *version,
            ),
            Event::CircuitChanged {
                service,
                peer,
                state,
            } => {
                self.circuits
                    .entry(*service)
                    .or_default()
                    .insert(*peer, *state);
            }
            Event::Narration { .. } | Event::FaultBegins { .. } | Event::FaultEnds { .. } => {}
            Event::RunEnded { reason, .. } => self.ended = Some(*reason),
        }
    }

    /// This world without the latencies of its operations, for a snapshot that a fold further
    /// along can fill in again ([`WorldState::restore_latencies`]): they are the one part of the
    /// world that grows with the run and cannot share its storage with other copies, since
    /// each new latency goes in among the old ones.
    pub fn without_latencies(&self) -> WorldState {
        WorldState {
            metrics: self.metrics.without_latencies(),
            ..self.clone()
        }
    }

    /// Puts back the latencies [`WorldState::without_latencies`] left out, from `ahead`, a fold
    /// of the same trace at least as far along.
    pub fn restore_latencies(&mut self, ahead: &WorldState) {
        debug_assert!(ahead.events_applied >= self.events_applied);
        self.metrics
            .restore_latencies(&ahead.metrics, self.events_applied);
    }

    /// The row's latest version and when it was written, as the tables hold it (see
    /// [`Latest`]).
    fn latest(&self, service: ServiceId, table: &str, key: &str) -> Latest {
        latest_in(&self.tables, service, table, key)
    }

    fn set_up(&mut self, service: ServiceId, up: bool) {
        if let Some(slot) = self.services_up.get_mut(service.0 as usize) {
            *slot = up;
        }
    }

    /// Updates the replication lag of every copy of the row just written: a source write may
    /// leave its copies behind, a copy write may catch one up.
    fn track_staleness(&mut self, service: ServiceId, table: &str, key: &str) {
        let now = self.now;
        for index in 0..self.copies.len() {
            let copy = &self.copies[index];
            let source_row = |key: &str| {
                (
                    copy.source_service,
                    copy.source_table.clone(),
                    CopyDecl::source_key(key).to_string(),
                )
            };
            let copy_keys: Vec<String> =
                if copy.source_service == service && copy.source_table == table {
                    self.tables[copy.copy_service.0 as usize]
                        .get(&copy.copy_table)
                        .into_iter()
                        .flat_map(|rows| rows.keys())
                        .filter(|copy_key| CopyDecl::source_key(copy_key) == key)
                        .cloned()
                        .collect()
                } else if copy.copy_service == service && copy.copy_table == table {
                    vec![key.to_string()]
                } else {
                    continue;
                };
            for copy_key in copy_keys {
                let copy_version = self
                    .row(copy.copy_service, &copy.copy_table, &copy_key)
                    .map_or(0, |row| row.version);
                let latest = latest_in(
                    &self.tables,
                    copy.source_service,
                    &copy.source_table,
                    CopyDecl::source_key(&copy_key),
                );
                let anchor =
                    self.metrics
                        .staleness
                        .anchor(&source_row(&copy_key), latest, copy_version);
                self.metrics
                    .staleness
                    .observe((index, copy_key), anchor, now);
            }
        }
    }
}

/// The latest version of `service`'s row `key` of `table` and when it was written, as `tables`
/// hold it: `Some(None)` before its first write, `None` for a service they do not list.
fn latest_in(tables: &[ServiceTables], service: ServiceId, table: &str, key: &str) -> Latest {
    let tables = tables.get(service.0 as usize)?;
    Some(
        tables
            .get(table)
            .and_then(|rows| rows.get(key))
            .map(|row| (row.version, row.written_at)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Observed, Outcome, PROTOCOL_VERSION, ServiceInfo, ServiceRole};

    const ORDER: ServiceId = ServiceId(0);
    const PRODUCT: ServiceId = ServiceId(1);

    fn header() -> TraceHeader {
        let info = |id, name: &str| ServiceInfo {
            id: ServiceId(id),
            name: name.into(),
            role: ServiceRole::Service,
        };
        TraceHeader {
            protocol_version: PROTOCOL_VERSION,
            scenario: "test".into(),
            seed: 0,
            until: Micros::from_secs(10),
            knobs: Default::default(),
            services: vec![info(0, "Order"), info(1, "Product")],
            links: vec![(ORDER, PRODUCT)],
            network: crate::protocol::LinkSpec {
                latency: Micros::from_millis(40),
                jitter: Micros::from_millis(10),
                loss_per_million: 0,
            },
            copies: vec![CopyDecl {
                copy_service: ORDER,
                copy_table: "names".into(),
                source_service: PRODUCT,
                source_table: "products".into(),
            }],
            faults: Vec::new(),
        }
    }

    fn write(at: u64, service: ServiceId, table: &str, version: u64) -> TraceEvent {
        let event = Event::RowWritten {
            service,
            table: table.into(),
            key: "7".into(),
            value: format!("v{version}"),
            version,
        };
        TraceEvent {
            at: Micros(at),
            event,
        }
    }

    /// An operation from `at` to `at + 5` µs that saw (or stored) `version` of product 7.
    fn read(at: u64, op: u64, version: u64) -> [TraceEvent; 2] {
        let observed = vec![Observed {
            source_service: PRODUCT,
            source_table: "products".into(),
            key: "7".into(),
            version,
        }];
        [
            TraceEvent {
                at: Micros(at),
                event: Event::OpStarted {
                    op: OpId(op),
                    name: "read".into(),
                    client: ORDER,
                },
            },
            TraceEvent {
                at: Micros(at + 5),
                event: Event::OpFinished {
                    op: OpId(op),
                    outcome: Outcome::Ok,
                    latency: Micros(5),
                    observed,
                },
            },
        ]
    }

    #[test]
    fn a_copy_is_stale_from_the_source_write_until_it_catches_up() {
        let mut state = WorldState::new(&header());
        let mut events = vec![
            write(0, PRODUCT, "products", 1),
            write(0, ORDER, "names", 1),
        ];
        events.extend(read(10, 1, 1));
        events.push(write(100, PRODUCT, "products", 2));
        // The rename's answer confirms v2 at 125; a read that began before that may see v1.
        events.extend(read(120, 2, 2));
        events.extend(read(122, 3, 1));
        events.extend(read(150, 4, 1));
        events.extend(read(160, 5, 2));
        for event in &events {
            state.apply(event);
        }
        assert!(state.is_stale(ORDER, "names", "7"));
        assert_eq!(
            state.metrics.stale_reads, 1,
            "only the read that began after v2 was confirmed and saw v1 is stale"
        );
        assert_eq!(state.metrics.staleness.open_max(Micros(400)), Micros(300));
        state.apply(&write(400, ORDER, "names", 2));
        assert!(!state.is_stale(ORDER, "names", "7"));
        assert_eq!(state.metrics.staleness.max(Micros(500)), Micros(300));
        assert_eq!(state.metrics.staleness.open_max(Micros(500)), Micros::ZERO);
    }

    /// The served lag of a read that saw v1 of product 7 after v2 and v3 were written (at 100
    /// and 200 µs), in a trace whose products no copy copies, folded by `fold`.
    fn lag_of_a_read_behind_two_writes(
        fold: impl FnOnce(&TraceHeader, &[TraceEvent]) -> WorldState,
    ) -> Micros {
        let mut header = header();
        header.copies.clear();
        let mut events: Vec<TraceEvent> = [0, 100, 200]
            .iter()
            .zip(1..)
            .map(|(at, version)| write(*at, PRODUCT, "products", version))
            .collect();
        let mut a_read = read(300, 1, 1);
        if let Event::OpStarted { name, .. } = &mut a_read[0].event {
            // A read, for the served lag (`is_read_op`).
            *name = "read order".into();
        }
        events.extend(a_read);
        fold(&header, &events).metrics.served_lag.max()
    }

    #[test]
    fn a_sparing_world_recalls_a_tables_history_when_a_read_first_observes_it() {
        let full = lag_of_a_read_behind_two_writes(|header, events| {
            let mut state = WorldState::new(header);
            events.iter().for_each(|event| state.apply(event));
            state
        });
        // Behind from v2's write, at 100.
        assert_eq!(full, Micros(200));
        let sparing = lag_of_a_read_behind_two_writes(|header, events| {
            let mut state = WorldState::sparing(header);
            let mut stored = EventStore::new();
            for event in events {
                state.apply_stored(event, &stored);
                stored.push(event);
            }
            assert!(state.metrics.staleness.keeps(PRODUCT, "products"));
            state
        });
        assert_eq!(sparing, full);
        // Without the events before, it could only anchor at the latest write, v3's.
        let forgetful = lag_of_a_read_behind_two_writes(|header, events| {
            let mut state = WorldState::sparing(header);
            events.iter().for_each(|event| state.apply(event));
            state
        });
        assert_eq!(forgetful, Micros(100));
    }

    /// Every scenario's heaviest run, 10 s of it, folded by a full world and a sparing one (as
    /// the page folds it: the events stored as they come): the same metrics at every event, and
    /// at the end the same world but for the histories the sparing one never needed.
    #[test]
    fn a_sparing_world_measures_what_a_full_one_does() {
        let mut left_out = Vec::new();
        for mut request in crate::scenario::heaviest_runs() {
            request.until_s = 10.0;
            let label = crate::scenario::heaviest_run_label(&request);
            let trace = crate::scenario::simulate(&request);
            let mut full = WorldState::new(&trace.header);
            let mut sparing = WorldState::sparing(&trace.header);
            let mut stored = EventStore::new();
            for (i, event) in trace.events.iter().enumerate() {
                full.apply(event);
                sparing.apply_stored(event, &stored);
                stored.push(event);
                let (a, b) = (&full.metrics, &sparing.metrics);
                assert_eq!(a.served_lag, b.served_lag, "{label}, event {i}");
                assert_eq!(a.stale_reads, b.stale_reads, "{label}, event {i}");
                let lags = |s: &crate::metrics::Staleness| {
                    (s.open_count(), s.max(event.at), s.mean(event.at))
                };
                assert_eq!(lags(&a.staleness), lags(&b.staleness), "{label}, event {i}");
            }
            let kept = full.metrics.staleness.kept_as(&sparing.metrics.staleness);
            left_out.push((label.clone(), full.metrics.staleness.len() - kept.len()));
            full.metrics.staleness = kept;
            assert!(full == sparing, "{label}");
        }
        println!("histories left out: {left_out:?}");
        // Event-driven's stock counts, queues and outboxes are neither copied nor read.
        let event_driven = left_out
            .iter()
            .filter(|(label, _)| label.starts_with("event-driven"));
        assert!(event_driven.clone().count() == 2 && event_driven.clone().all(|(_, n)| *n > 0));
    }

    #[test]
    fn a_copy_behind_or_ahead_of_its_source_is_inconsistent() {
        let mut state = WorldState::new(&header());
        let keys = |state: &WorldState| -> Vec<String> {
            state
                .inconsistent_rows()
                .iter()
                .map(|(_, key)| key.to_string())
                .collect()
        };
        state.apply(&write(0, PRODUCT, "products", 1));
        state.apply(&write(0, ORDER, "names", 1));
        assert!(keys(&state).is_empty());
        state.apply(&write(10, PRODUCT, "products", 2));
        assert_eq!(keys(&state), ["7"], "behind");
        state.apply(&write(20, ORDER, "names", 3));
        assert_eq!(keys(&state), ["7"], "ahead");
        assert!(!state.is_stale(ORDER, "names", "7"), "ahead is not stale");
        state.apply(&write(30, PRODUCT, "products", 3));
        assert!(keys(&state).is_empty());
    }

    #[test]
    fn messages_leave_flight_when_delivered_or_dropped() {
        let mut state = WorldState::new(&header());
        let sent = |msg| TraceEvent {
            at: Micros(1),
            event: Event::Sent {
                msg: MsgId(msg),
                from: ORDER,
                to: PRODUCT,
                kind: MessageKind::Request,
                label: "GET".into(),
                op: None,
                caused_by: None,
            },
        };
        state.apply(&sent(1));
        state.apply(&sent(2));
        assert_eq!(state.in_flight.len(), 2);
        state.apply(&TraceEvent {
            at: Micros(2),
            event: Event::Delivered { msg: MsgId(1) },
        });
        state.apply(&TraceEvent {
            at: Micros(3),
            event: Event::Dropped {
                msg: MsgId(2),
                reason: crate::protocol::DropReason::ReceiverDown,
            },
        });
        assert!(state.in_flight.is_empty());
        assert_eq!(state.metrics.messages_sent, 2);
        assert_eq!(state.metrics.messages_dropped(), 1);
    }
}
