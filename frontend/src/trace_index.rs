//! The trace as the views need it: events in order, each message's span from send to delivery or
//! drop, and the folded world state at any time, cached so that playing forward is cheap.

use crate::anomalies::AnomalyLog;
use crate::charts::ChartsAccumulator;
use crate::snapshots::FoldCache;
use shared::event_store::EventStore;
use shared::fold::WorldState;
use shared::protocol::{
    DropReason, Event, MessageKind, MsgId, OpId, ServiceId, TraceEvent, TraceHeader,
};
use shared::slot_map::SlotSet;
use shared::time::Micros;
use std::collections::BTreeMap;

/// How far along its link a message whose arrival is not known yet may be drawn.
const OPEN_PROGRESS_MAX: f64 = 0.9;

/// No event, in a compact index.
const NONE: u32 = u32::MAX;

/// How a message's journey ended, if it has.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SpanEnd {
    /// Not delivered or dropped yet, or still in flight when the run ended.
    Open,
    /// It reached its receiver at this time.
    Delivered(Micros),
    /// It died at this time.
    Dropped(Micros, DropReason),
}

/// One message from its send to its end, read from the events that tell it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct MessageSpan<'a> {
    /// Its id.
    pub msg: MsgId,
    /// The sender.
    pub from: ServiceId,
    /// The receiver.
    pub to: ServiceId,
    /// Its kind.
    pub kind: MessageKind,
    /// Its label.
    pub label: &'a str,
    /// When it was sent.
    pub sent_at: Micros,
    /// How it ended.
    pub end: SpanEnd,
    /// The client operation it serves, if any.
    pub op: Option<OpId>,
    /// The message whose handling sent it, if any.
    pub caused_by: Option<MsgId>,
}

impl MessageSpan<'_> {
    /// When it stopped being in flight, if it has.
    pub fn ended_at(&self) -> Option<Micros> {
        match self.end {
            SpanEnd::Open => None,
            SpanEnd::Delivered(at) | SpanEnd::Dropped(at, _) => Some(at),
        }
    }
}

/// A span as the index keeps it: the numbers of the events telling it (12 bytes).
#[derive(Copy, Clone, Debug)]
struct SpanEvents {
    /// The event at which it left: its send, or the network's copy of another message.
    departed: u32,
    /// The send giving its sender, receiver, kind, label and causes (for a copy, the
    /// original's).
    sent: u32,
    /// Its delivery or drop; [`NONE`] while open.
    ended: u32,
}

/// A number (a span's, an event's) for each id (a message's, an operation's): a vector indexed
/// by id while ids come about densely, as every source numbers them, and a map for ids far
/// beyond (a hand-made trace). 4 bytes an id, where a hash map took about 20.
#[derive(Clone, Debug, Default)]
struct ById {
    dense: Vec<u32>,
    sparse: BTreeMap<u64, u32>,
}

impl ById {
    fn insert(&mut self, id: u64, number: u32) {
        let dense_limit = 2 * self.dense.len() as u64 + 4096;
        if id < dense_limit {
            let i = id as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, NONE);
            }
            self.dense[i] = number;
        } else {
            self.sparse.insert(id, number);
        }
    }

    fn get(&self, id: u64) -> Option<usize> {
        let dense = usize::try_from(id)
            .ok()
            .and_then(|i| self.dense.get(i))
            .filter(|number| **number != NONE);
        dense
            .or_else(|| self.sparse.get(&id))
            .map(|number| *number as usize)
    }

    /// Gives back the vector's room to grow, once no id will come.
    fn shrink_to_fit(&mut self) {
        self.dense.shrink_to_fit();
    }

    fn heap_bytes(&self) -> usize {
        self.dense.capacity() * size_of::<u32>()
            + self.sparse.len() * size_of::<(u64, u32)>() * 3 / 2
    }
}

/// What a message drawn at some time is doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlightState {
    /// On its way.
    Moving,
    /// It died here a moment ago; views flash it.
    Dropped(DropReason),
}

/// A message to draw at a time: where along its link it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Flight<'a> {
    /// Its id.
    pub msg: MsgId,
    /// The sender.
    pub from: ServiceId,
    /// The receiver.
    pub to: ServiceId,
    /// Its kind.
    pub kind: MessageKind,
    /// Its label.
    pub label: &'a str,
    /// How far from sender (0) to receiver (1).
    pub progress: f64,
    /// Moving, or dropped a moment ago.
    pub state: FlightState,
}

/// Heap bytes an index holds, part by part (see [`TraceIndex::heap_bytes`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct HeapBytes {
    /// The events ([`EventStore::heap_bytes`]).
    pub events: usize,
    /// Messages' spans and the lookup by id.
    pub spans: usize,
    /// Narrations, row writes, operations and open spans.
    pub lookups: usize,
}

impl HeapBytes {
    /// Everything counted.
    pub fn total(&self) -> usize {
        self.events + self.spans + self.lookups
    }
}

/// A trace, complete or still streaming, indexed for the views.
#[derive(Clone, Debug)]
pub struct TraceIndex {
    header: TraceHeader,
    events: EventStore,
    spans: Vec<SpanEvents>,
    /// Each message's span, by message id.
    span_by_msg: ById,
    /// Spans with no end yet.
    open_spans: SlotSet<u64>,
    /// The longest span that has ended, so a time query can skip spans sent long before.
    span_us_max: u64,
    /// Indices of narration events.
    narrations: Vec<u32>,
    /// The events writing a row, in order: the tables change only then.
    row_writes: Vec<u32>,
    /// Each operation's start event, by operation id.
    ops: ById,
    complete: bool,
    /// The fold up to the playhead, with snapshots for seeking back.
    cache: FoldCache,
    /// The charts, accumulated as events arrive.
    charts: ChartsAccumulator,
    /// The anomaly checker, fed each event as it arrives.
    anomalies: AnomalyLog,
}

impl TraceIndex {
    /// An index of a trace with `header` and no events yet.
    pub fn new(header: TraceHeader) -> TraceIndex {
        let cache = FoldCache::new(&header);
        let charts = ChartsAccumulator::new(&header);
        let anomalies = AnomalyLog::new(&header);
        TraceIndex {
            header,
            events: EventStore::new(),
            spans: Vec::new(),
            span_by_msg: ById::default(),
            open_spans: SlotSet::new(),
            span_us_max: 0,
            narrations: Vec::new(),
            row_writes: Vec::new(),
            ops: ById::default(),
            complete: false,
            cache,
            charts,
            anomalies,
        }
    }

    /// An index of a whole trace.
    pub fn complete(header: TraceHeader, events: Vec<TraceEvent>) -> TraceIndex {
        let mut index = TraceIndex::new(header);
        index.append(events);
        index.finish();
        index
    }

    /// The trace's header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Every event received so far.
    pub fn events(&self) -> &EventStore {
        &self.events
    }

    /// How many messages have a span.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Span `i`, in the order messages were sent.
    pub fn span_at(&self, i: usize) -> MessageSpan<'_> {
        let span = self.spans[i];
        let sent = self
            .events
            .sent(span.sent as usize)
            .expect("a span's send is a sent event");
        let msg = if span.departed == span.sent {
            sent.msg
        } else {
            self.events
                .copy_made(span.departed as usize)
                .unwrap_or(sent.msg)
        };
        let end = match span.ended {
            NONE => SpanEnd::Open,
            ended => {
                let at = self.events.at(ended as usize);
                match self.events.drop_reason(ended as usize) {
                    Some(reason) => SpanEnd::Dropped(at, reason),
                    None => SpanEnd::Delivered(at),
                }
            }
        };
        MessageSpan {
            msg,
            from: sent.from,
            to: sent.to,
            kind: sent.kind,
            label: sent.label,
            sent_at: self.events.at(span.departed as usize),
            end,
            op: sent.op,
            caused_by: sent.caused_by,
        }
    }

    /// Every message's span, in the order they were sent.
    pub fn spans(
        &self,
    ) -> impl DoubleEndedIterator<Item = MessageSpan<'_>> + ExactSizeIterator + '_ {
        (0..self.spans.len()).map(|i| self.span_at(i))
    }

    /// When span `i` left.
    fn span_sent_at(&self, i: usize) -> Micros {
        self.events.at(self.spans[i].departed as usize)
    }

    /// The latest `most` spans that can show between `from` and `to` (sent by `to`, and not
    /// ended before `from`), in the order they were sent. Walks back from `to` and stops once
    /// it has them, so its work follows `most`, not how many spans the window holds.
    pub fn latest_spans_touching(
        &self,
        from: Micros,
        to: Micros,
        most: usize,
    ) -> impl Iterator<Item = MessageSpan<'_>> {
        let sent_upto = self.spans_sent_before(|at| at <= to);
        let earliest = from.saturating_sub(Micros(self.span_us_max));
        let sent_from = self.spans_sent_before(|at| at < earliest).min(sent_upto);
        let mut latest: Vec<usize> = (sent_from..sent_upto)
            .rev()
            .filter(|&i| self.span_ended_at(i).is_none_or(|end| end >= from))
            .take(most)
            .collect();
        // Spans sent before the window that are still open come before all of those.
        let room = most - latest.len();
        let open_before: Vec<usize> = self
            .open_spans
            .range(..sent_from as u64)
            .rev()
            .take(room)
            .map(|i| *i as usize)
            .collect();
        latest.extend(open_before);
        latest.reverse();
        latest.into_iter().map(|i| self.span_at(i))
    }

    /// How many spans left at times for which `is_before` holds (a prefix, as times grow).
    fn spans_sent_before(&self, is_before: impl Fn(Micros) -> bool) -> usize {
        self.spans
            .partition_point(|s| is_before(self.events.at(s.departed as usize)))
    }

    /// When span `i` ended, if it has.
    fn span_ended_at(&self, i: usize) -> Option<Micros> {
        match self.spans[i].ended {
            NONE => None,
            ended => Some(self.events.at(ended as usize)),
        }
    }

    /// The span of message `msg`.
    pub fn span(&self, msg: MsgId) -> Option<MessageSpan<'_>> {
        self.span_by_msg.get(msg.0).map(|i| self.span_at(i))
    }

    /// True once the whole trace is here.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Marks the trace complete: no more events will come. The index's vectors give back the
    /// room they kept to grow (up to half of each).
    pub fn finish(&mut self) {
        self.complete = true;
        self.charts.finish();
        self.events.shrink_to_fit();
        self.spans.shrink_to_fit();
        self.span_by_msg.shrink_to_fit();
        self.narrations.shrink_to_fit();
        self.row_writes.shrink_to_fit();
        self.ops.shrink_to_fit();
    }

    /// The charts over the events so far.
    pub fn charts(&self) -> &ChartsAccumulator {
        &self.charts
    }

    /// The anomalies the events so far prove.
    pub fn anomalies(&self) -> &AnomalyLog {
        &self.anomalies
    }

    /// How far the trace is known: the run's end once complete, else the last event's time.
    pub fn known_until(&self) -> Micros {
        let last = self.events.last_at().unwrap_or(Micros::ZERO);
        if self.complete {
            self.header.until.max(last)
        } else {
            last
        }
    }

    /// Adds the next events of a streamed trace.
    pub fn append(&mut self, events: impl IntoIterator<Item = TraceEvent>) {
        for event in events {
            let index = u32::try_from(self.events.len()).expect("fewer than 2³² events");
            self.index_event(index, &event);
            self.charts.add(&event, &self.events);
            // The charts fold every event first: their world is the snapshot the playhead's
            // fold would take later, and a copy of it shares its rows.
            self.cache.offer(self.charts.world());
            self.anomalies.push(&event);
            self.events.push(&event);
        }
    }

    fn index_event(&mut self, index: u32, event: &TraceEvent) {
        match &event.event {
            Event::Sent { msg, .. } => self.open_span(
                *msg,
                SpanEvents {
                    departed: index,
                    sent: index,
                    ended: NONE,
                },
            ),
            Event::Duplicated { msg, copy } => {
                // The network's copy travels like the original, from the moment it was made.
                if let Some(original) = self.span_by_msg.get(msg.0) {
                    let sent = self.spans[original].sent;
                    self.open_span(
                        *copy,
                        SpanEvents {
                            departed: index,
                            sent,
                            ended: NONE,
                        },
                    );
                }
            }
            Event::Delivered { msg } | Event::Dropped { msg, .. } => {
                self.end_span(*msg, index, event.at)
            }
            Event::Narration { .. } => self.narrations.push(index),
            Event::RowWritten { .. } => self.row_writes.push(index),
            Event::OpStarted { op, .. } => self.ops.insert(op.0, index),
            _ => {}
        }
    }

    fn open_span(&mut self, msg: MsgId, span: SpanEvents) {
        let span_index = u32::try_from(self.spans.len()).expect("fewer than 2³² spans");
        self.spans.push(span);
        self.span_by_msg.insert(msg.0, span_index);
        self.open_spans.insert(u64::from(span_index));
    }

    fn end_span(&mut self, msg: MsgId, index: u32, at: Micros) {
        let Some(span_index) = self.span_by_msg.get(msg.0) else {
            return;
        };
        let sent_at = self.span_sent_at(span_index);
        self.spans[span_index].ended = index;
        self.open_spans.remove(&(span_index as u64));
        self.span_us_max = self.span_us_max.max((at - sent_at).0);
    }

    /// The name and client of operation `op`, once it has started.
    pub fn op(&self, op: OpId) -> Option<(String, ServiceId)> {
        let started = self.ops.get(op.0)?;
        match self.events.get(started)?.event {
            Event::OpStarted { name, client, .. } => Some((name, client)),
            _ => None,
        }
    }

    /// The display name of `service`, or `#id` for an id the header lacks.
    pub fn service_name(&self, service: ServiceId) -> String {
        self.header
            .services
            .get(service.0 as usize)
            .map_or_else(|| format!("#{}", service.0), |info| info.name.clone())
    }

    /// How many events happened at or before `t`.
    pub fn count_at(&self, t: Micros) -> usize {
        self.events.partition_point(|at| at <= t)
    }

    /// How many rows were written at or before `t`: the tables at `t` change only when this
    /// does.
    pub fn row_writes_at(&self, t: Micros) -> usize {
        self.row_writes
            .partition_point(|&i| self.events.at(i as usize) <= t)
    }

    /// The time of the first event after `t`, for stepping forward.
    pub fn next_event_time(&self, t: Micros) -> Option<Micros> {
        let next = self.count_at(t);
        (next < self.events.len()).then(|| self.events.at(next))
    }

    /// The time of the last event before `t`, for stepping back.
    pub fn previous_event_time(&self, t: Micros) -> Option<Micros> {
        let before = self.events.partition_point(|at| at < t);
        before.checked_sub(1).map(|i| self.events.at(i))
    }

    /// The world after every event at or before `t`. Moving forward applies only the new events;
    /// moving backward starts from the nearest snapshot.
    pub fn state_at(&mut self, t: Micros) -> &WorldState {
        self.fold_to(t);
        self.cache.state()
    }

    /// Brings the cached state to `t`, so [`TraceIndex::state`] can be read alongside the rest
    /// of the index. Returns how many events it applied.
    pub fn fold_to(&mut self, t: Micros) -> usize {
        let target = self.count_at(t);
        self.cache
            .fold_to(&self.events, target, Some(self.charts.world()))
    }

    /// The state as of the last [`TraceIndex::fold_to`].
    pub fn state(&self) -> &WorldState {
        self.cache.state()
    }

    /// How far the player may go. A streamed trace is held back by two hops, so that each
    /// message's arrival is usually known before it is drawn and messages move at their true
    /// pace instead of waiting at the receiver's door.
    pub fn playable_until(&self) -> Micros {
        if self.complete {
            self.known_until()
        } else {
            let playout = Micros(self.expected_hop().0 * 2);
            self.known_until().saturating_sub(playout)
        }
    }

    /// The latest narration at or before `t`, with its time.
    pub fn narration_at(&self, t: Micros) -> Option<(Micros, &str)> {
        let upto = self
            .narrations
            .partition_point(|&i| self.events.at(i as usize) <= t);
        let index = *self.narrations.get(upto.checked_sub(1)?)? as usize;
        Some((self.events.at(index), self.events.narration(index)?))
    }

    /// The expected one-way time of a hop: the network's latency plus its average jitter.
    pub fn expected_hop(&self) -> Micros {
        let network = self.header.network;
        network.latency + Micros(network.jitter.0 / 2)
    }

    /// Every message to draw at `t`: those sent at or before `t` and not yet delivered or dropped,
    /// each with how far along its link it is, plus those dropped within `drop_flash` before
    /// `t`, at the point where they died.
    pub fn messages_in_flight_at(&self, t: Micros, drop_flash: Micros) -> Vec<Flight<'_>> {
        let expected_hop = self.expected_hop();
        let sent_upto = self.spans_sent_before(|at| at <= t);
        // A span that ended can only show at `t` if it was sent within its length plus the flash.
        let earliest = t.saturating_sub(Micros(self.span_us_max) + drop_flash);
        let sent_from = self.spans_sent_before(|at| at < earliest).min(sent_upto);
        let closed = (sent_from..sent_upto).filter(|i| !self.open_spans.contains(&(*i as u64)));
        let open = self
            .open_spans
            .iter()
            .map(|i| *i as usize)
            .take_while(|&i| i < sent_upto);
        let mut flights: Vec<Flight<'_>> = closed
            .chain(open)
            .filter_map(|i| flight_at(self.span_at(i), t, drop_flash, expected_hop))
            .collect();
        shared::ordered::sort_by_key(&mut flights, |f| f.msg);
        flights
    }

    /// Heap bytes the index holds for its trace: the events, the spans and the lookups by
    /// time, counted from their buffers' capacities (maps estimated), so the figure is the same
    /// on every machine. The fold's snapshots, the charts and the anomaly log are not counted.
    pub fn heap_bytes(&self) -> HeapBytes {
        HeapBytes {
            events: self.events.heap_bytes(),
            spans: self.spans.capacity() * size_of::<SpanEvents>() + self.span_by_msg.heap_bytes(),
            lookups: self.narrations.capacity() * size_of::<u32>()
                + self.row_writes.capacity() * size_of::<u32>()
                + self.ops.heap_bytes()
                + self.open_spans.len() * size_of::<(u64, u32)>() * 3 / 2,
        }
    }
}

/// Where `span` is at `t`, if it shows at all.
fn flight_at(
    span: MessageSpan<'_>,
    t: Micros,
    drop_flash: Micros,
    expected_hop: Micros,
) -> Option<Flight<'_>> {
    let elapsed = (t - span.sent_at).0 as f64;
    let (progress, state) = match span.end {
        SpanEnd::Open => {
            let progress = elapsed / expected_hop.0.max(1) as f64;
            (progress.min(OPEN_PROGRESS_MAX), FlightState::Moving)
        }
        SpanEnd::Delivered(at) => {
            if t >= at {
                return None;
            }
            (elapsed / (at - span.sent_at).0 as f64, FlightState::Moving)
        }
        // Every drop happens where the message would have arrived: lost there, or refused by
        // the receiver.
        SpanEnd::Dropped(at, reason) => {
            if t < at {
                (elapsed / (at - span.sent_at).0 as f64, FlightState::Moving)
            } else if t < at + drop_flash {
                (1.0, FlightState::Dropped(reason))
            } else {
                return None;
            }
        }
    };
    Some(Flight {
        msg: span.msg,
        from: span.from,
        to: span.to,
        kind: span.kind,
        label: span.label,
        progress: progress.clamp(0.0, 1.0),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{PROTOCOL_VERSION, RunRequest, ServiceInfo, ServiceRole};

    const A: ServiceId = ServiceId(0);
    const B: ServiceId = ServiceId(1);

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
            until: Micros::from_secs(1),
            knobs: shared::protocol::KnobMap::from([("link_latency_ms".to_string(), 40.0)]),
            services: vec![info(0, "A"), info(1, "B")],
            links: vec![(A, B)],
            network: shared::protocol::LinkSpec {
                latency: Micros::from_millis(40),
                jitter: Micros::from_millis(10),
                loss_per_million: 0,
            },
            copies: vec![],
            faults: Vec::new(),
        }
    }

    fn at(ms: u64, event: Event) -> TraceEvent {
        TraceEvent {
            at: Micros::from_millis(ms),
            event,
        }
    }

    fn sent(ms: u64, msg: u64) -> TraceEvent {
        at(
            ms,
            Event::Sent {
                msg: MsgId(msg),
                from: A,
                to: B,
                kind: MessageKind::Request,
                label: format!("m{msg}").into(),
                op: None,
                caused_by: None,
            },
        )
    }

    fn delivered(ms: u64, msg: u64) -> TraceEvent {
        at(ms, Event::Delivered { msg: MsgId(msg) })
    }

    fn dropped(ms: u64, msg: u64) -> TraceEvent {
        at(
            ms,
            Event::Dropped {
                msg: MsgId(msg),
                reason: DropReason::ReceiverDown,
            },
        )
    }

    /// Message 1: 0–100 ms delivered. Message 2: 50–250 ms dropped. Message 3: sent at 300 ms,
    /// never ends.
    fn sample() -> TraceIndex {
        TraceIndex::complete(
            header(),
            vec![
                sent(0, 1),
                sent(50, 2),
                delivered(100, 1),
                dropped(250, 2),
                sent(300, 3),
            ],
        )
    }

    #[test]
    fn a_network_copy_travels_as_a_span_of_its_own() {
        let copy = at(
            0,
            Event::Duplicated {
                msg: MsgId(1),
                copy: MsgId(9),
            },
        );
        let index = TraceIndex::complete(
            header(),
            vec![sent(0, 1), copy, delivered(100, 1), delivered(120, 9)],
        );
        let span = index.span(MsgId(9)).expect("the copy has a span");
        assert_eq!((span.from, span.to, span.label), (A, B, "m1"));
        assert_eq!(span.end, SpanEnd::Delivered(Micros::from_millis(120)));
    }

    #[test]
    fn spans_record_how_each_message_ended() {
        let index = sample();
        let ends: Vec<SpanEnd> = index.spans().map(|s| s.end).collect();
        assert_eq!(
            ends,
            vec![
                SpanEnd::Delivered(Micros::from_millis(100)),
                SpanEnd::Dropped(Micros::from_millis(250), DropReason::ReceiverDown),
                SpanEnd::Open,
            ]
        );
        assert_eq!(
            index.span(MsgId(2)).unwrap().sent_at,
            Micros::from_millis(50)
        );
        assert!(index.span(MsgId(9)).is_none());
    }

    #[test]
    fn in_flight_progress_at_times() {
        let index = sample();
        let flash = Micros::from_millis(20);
        let check = |ms: u64, expected: &[(u64, f64, FlightState)]| {
            let got: Vec<(u64, f64, FlightState)> = index
                .messages_in_flight_at(Micros::from_millis(ms), flash)
                .iter()
                .map(|f| (f.msg.0, (f.progress * 1000.0).round() / 1000.0, f.state))
                .collect();
            assert_eq!(got, expected, "at {ms} ms");
        };
        use FlightState::{Dropped, Moving};
        check(0, &[(1, 0.0, Moving)]);
        check(25, &[(1, 0.25, Moving)]);
        check(50, &[(1, 0.5, Moving), (2, 0.0, Moving)]);
        check(100, &[(2, 0.25, Moving)]);
        check(150, &[(2, 0.5, Moving)]);
        // A refused message dies at the receiver and flashes there for a moment.
        check(250, &[(2, 1.0, Dropped(DropReason::ReceiverDown))]);
        check(269, &[(2, 1.0, Dropped(DropReason::ReceiverDown))]);
        check(270, &[]);
        // A message with no known end moves at the expected pace (45 ms a hop), then waits.
        check(300, &[(3, 0.0, Moving)]);
        check(318, &[(3, 0.4, Moving)]);
        check(900, &[(3, 0.9, Moving)]);
    }

    #[test]
    fn streamed_traces_grow_and_learn_ends_later() {
        let mut index = TraceIndex::new(header());
        index.append([sent(0, 1)]);
        assert_eq!(index.known_until(), Micros::ZERO);
        let t = Micros::from_millis(30);
        let progress = index.messages_in_flight_at(t, Micros::ZERO)[0].progress;
        assert!((progress - 30.0 / 45.0).abs() < 1e-9, "{progress}");
        index.append([delivered(60, 1)]);
        assert_eq!(index.known_until(), Micros::from_millis(60));
        assert_eq!(
            index.messages_in_flight_at(t, Micros::ZERO)[0].progress,
            0.5
        );
        assert!(!index.is_complete());
        assert_eq!(
            index.playable_until(),
            Micros::ZERO,
            "held back by two 45 ms hops"
        );
        index.append([sent(200, 2)]);
        assert_eq!(index.playable_until(), Micros::from_millis(110));
        index.finish();
        assert_eq!(index.known_until(), Micros::from_secs(1));
        assert_eq!(index.playable_until(), Micros::from_secs(1));
    }

    #[test]
    fn stepping_finds_the_neighbouring_events() {
        let index = sample();
        let check = |ms: u64, next: Option<u64>, previous: Option<u64>| {
            let t = Micros::from_millis(ms);
            assert_eq!(
                index.next_event_time(t),
                next.map(Micros::from_millis),
                "after {ms}"
            );
            assert_eq!(
                index.previous_event_time(t),
                previous.map(Micros::from_millis),
                "before {ms}"
            );
        };
        check(0, Some(50), None);
        check(10, Some(50), Some(0));
        check(100, Some(250), Some(50));
        check(300, None, Some(250));
        check(999, None, Some(300));
    }

    #[test]
    fn narration_is_the_latest_line_up_to_the_playhead() {
        let text = |s: &str| Event::Narration { text: s.into() };
        let index = TraceIndex::complete(
            header(),
            vec![at(0, text("first")), sent(5, 1), at(10, text("second"))],
        );
        let check = |ms: u64, expected: Option<&str>| {
            let got = index.narration_at(Micros::from_millis(ms)).map(|(_, s)| s);
            assert_eq!(got, expected, "at {ms} ms");
        };
        check(0, Some("first"));
        check(9, Some("first"));
        check(10, Some("second"));
        check(500, Some("second"));
        let empty = TraceIndex::new(header());
        assert_eq!(empty.narration_at(Micros::from_secs(1)), None);
    }

    fn from_scratch(index: &TraceIndex, t: Micros) -> WorldState {
        let mut state = WorldState::sparing(index.header());
        for event in index.events().iter().take_while(|e| e.at <= t) {
            state.apply_stored(&event, index.events());
        }
        state
    }

    #[test]
    fn cached_fold_forward_and_backward_equals_fold_from_scratch() {
        for scenario in ["request-response", "eventual-consistency"] {
            let request = RunRequest {
                scenario: scenario.into(),
                seed: 7,
                until_s: 20.0,
                knobs: Default::default(),
                faults: Vec::new(),
            };
            let trace = engine::simulate(&request).unwrap();
            let mut index = TraceIndex::complete(trace.header, trace.events);
            // Forward in small steps, a jump back, forward again, and past the end.
            let times_ms = [
                0, 10, 500, 501, 4_000, 12_345, 11_000, 2, 19_999, 25_000, 13_000,
            ];
            for ms in times_ms {
                let t = Micros::from_millis(ms);
                let expected = from_scratch(&index, t);
                let cached = index.state_at(t).clone();
                assert_eq!(cached, expected, "{scenario} at {ms} ms");
            }
        }
    }

    #[test]
    fn in_flight_agrees_with_the_fold() {
        let request = RunRequest {
            scenario: "request-response".into(),
            seed: 3,
            until_s: 10.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        let mut index = TraceIndex::complete(trace.header, trace.events);
        let mut seen_moving = 0;
        for ms in (0..10_000).step_by(37) {
            let t = Micros::from_millis(ms);
            let moving: Vec<MsgId> = index
                .messages_in_flight_at(t, Micros::ZERO)
                .iter()
                .filter(|f| f.state == FlightState::Moving)
                .map(|f| f.msg)
                .collect();
            let folded: Vec<MsgId> = index
                .state_at(t)
                .in_flight
                .keys()
                .map(|k| MsgId(*k))
                .collect();
            // The fold keeps a message in flight until its end event at the same time is applied,
            // and so does the index (t < end); both agree exactly.
            assert_eq!(moving, folded, "at {ms} ms");
            seen_moving += moving.len();
        }
        assert!(seen_moving > 0, "a run has messages in flight");
    }

    #[test]
    fn the_big_run_is_held_in_at_most_64_bytes_an_event() {
        // Issue 9's big run, computed in slices as the page does.
        let request = shared::scenario::big_run(200.0);
        let mut sim = engine::start(&request).unwrap();
        let mut index = TraceIndex::new(sim.header().clone());
        let mut slice_end = Micros::ZERO;
        while !sim.is_finished() {
            slice_end = slice_end + Micros::from_millis(250);
            sim.run_until(slice_end);
            index.append(sim.drain_events());
        }
        index.finish();
        let events = index.events().len();
        assert_eq!(events, 378_523);
        let bytes = index.heap_bytes();
        let per_event = |b: usize| b as f64 / events as f64;
        println!(
            "{events} events, {} spans: {:.1} B/event (events {:.1}, spans {:.1}, lookups {:.1})",
            index.span_count(),
            per_event(bytes.total()),
            per_event(bytes.events),
            per_event(bytes.spans),
            per_event(bytes.lookups)
        );
        assert!(per_event(bytes.total()) <= 64.0);
        // What the index hands out is what was recorded.
        let span = index.span_at(index.span_count() / 2);
        assert_eq!(index.span(span.msg), Some(span));
    }

    #[test]
    fn the_latest_spans_in_a_window_are_those_a_full_scan_keeps_last() {
        // A run cut short leaves spans open (never delivered); a crash drops some.
        let request = RunRequest {
            scenario: "request-response".into(),
            seed: 8,
            until_s: 6.0,
            knobs: shared::protocol::KnobMap::from([("product_down_for_s".to_string(), 1.0)]),
            faults: vec!["slow:Product*4@2+2".into()],
        };
        let trace = engine::simulate(&request).unwrap();
        let index = TraceIndex::complete(trace.header, trace.events);
        let open = index.spans().filter(|s| s.end == SpanEnd::Open).count();
        let dropped = index
            .spans()
            .filter(|s| matches!(s.end, SpanEnd::Dropped(..)))
            .count();
        println!(
            "{} spans, {open} open, {dropped} dropped",
            index.spans().len()
        );
        for (from_ms, to_ms) in [
            (0, 0),
            (0, 6_000),
            (1_500, 2_500),
            (3_990, 4_000),
            (5_000, 6_100),
        ] {
            let (from, to) = (Micros::from_millis(from_ms), Micros::from_millis(to_ms));
            let all: Vec<MsgId> = index
                .spans()
                .filter(|s| s.sent_at <= to && s.ended_at().is_none_or(|end| end >= from))
                .map(|s| s.msg)
                .collect();
            for most in [0, 1, 7, 400, usize::MAX / 2] {
                let latest: Vec<MsgId> = index
                    .latest_spans_touching(from, to, most)
                    .map(|s| s.msg)
                    .collect();
                let expected = &all[all.len().saturating_sub(most)..];
                assert_eq!(latest, expected, "{from_ms}..{to_ms} ms, {most} most");
            }
        }
    }
}
