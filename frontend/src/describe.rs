//! Trace events in words, for the event log.

use crate::format;
use crate::selection::Selection;
use crate::trace_index::TraceIndex;
use shared::protocol::{CircuitState, EndReason, Event, Outcome};
use shared::scenario::fault_label;

/// How a log line is shown.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tone {
    /// A sentence explaining what happened: emphasized.
    Narration,
    /// A message sent or delivered.
    Message,
    /// Something failed: a drop, a crash, a failed operation.
    Failure,
    /// A row or a queue changed.
    Data,
    /// A client operation started or finished.
    Operation,
    /// A service started, or the run ended.
    Lifecycle,
}

impl Tone {
    /// The CSS class of lines in this tone (prefixed, so it never clashes with the map's
    /// `message` class that tests select).
    pub fn class(self) -> &'static str {
        match self {
            Tone::Narration => "log-narration",
            Tone::Message => "log-message",
            Tone::Failure => "log-failure",
            Tone::Data => "log-data",
            Tone::Operation => "log-operation",
            Tone::Lifecycle => "log-lifecycle",
        }
    }
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// The event's position in the trace, unique within a run.
    pub event_idx: usize,
    /// When, as `12.340 s`.
    pub time: String,
    /// Who: `Order → Product`, `Order.orders`, or empty for narration.
    pub subject: String,
    /// What happened.
    pub detail: String,
    /// How to show it.
    pub tone: Tone,
    /// What selecting the line selects: its message, or its operation.
    pub selects: Selection,
}

impl LogLine {
    /// The whole line as plain text, as a screen reader or a test reads it.
    pub fn text(&self) -> String {
        if self.subject.is_empty() {
            format!("{}  {}", self.time, self.detail)
        } else {
            format!("{}  {}  {}", self.time, self.subject, self.detail)
        }
    }
}

/// The lines of `events` (trace positions, newest first), taking those already in `previous`
/// (also newest first) from there instead of describing them again.
pub fn lines_in(
    index: &TraceIndex,
    events: impl Iterator<Item = usize>,
    previous: Option<&Vec<LogLine>>,
) -> Vec<LogLine> {
    let previous = previous.map_or(&[][..], Vec::as_slice);
    events
        .map(|event_idx| {
            // `previous` is in decreasing order of position.
            match previous.binary_search_by(|line| event_idx.cmp(&line.event_idx)) {
                Ok(found) => previous[found].clone(),
                Err(_) => describe(index, event_idx),
            }
        })
        .collect()
}

/// Event `event_idx` of `index` in words.
pub fn describe(index: &TraceIndex, event_idx: usize) -> LogLine {
    let event = &index
        .events()
        .get(event_idx)
        .expect("the log describes events of its trace");
    let name = |service| index.service_name(service);
    let route = |msg| {
        index.span(msg).map_or_else(
            || (format!("message {}", msg.0), String::new()),
            |span| {
                (
                    format!("{} → {}", name(span.from), name(span.to)),
                    span.label.to_string(),
                )
            },
        )
    };
    let (subject, detail, tone) = match &event.event {
        Event::ServiceUp { service } => (name(*service), "is up".to_string(), Tone::Lifecycle),
        Event::ServiceDown { service } => (name(*service), "is down".to_string(), Tone::Failure),
        Event::Sent {
            from, to, label, ..
        } => (
            format!("{} → {}", name(*from), name(*to)),
            label.clone(),
            Tone::Message,
        ),
        Event::Delivered { msg } => {
            let (subject, label) = route(*msg);
            (subject, format!("delivered: {label}"), Tone::Message)
        }
        Event::Duplicated { msg, .. } => {
            let (subject, label) = route(*msg);
            let detail = format!("{label} duplicated by the network");
            (subject, detail.trim_start().to_string(), Tone::Failure)
        }
        Event::Dropped { msg, reason } => {
            let (subject, label) = route(*msg);
            let detail = format!("{label} dropped: {}", reason.describe());
            (subject, detail.trim_start().to_string(), Tone::Failure)
        }
        Event::RowWritten {
            service,
            table,
            key,
            value,
            version,
        } => (
            format!("{}.{table}", name(*service)),
            format!("[{key}] = {value} (v{version})"),
            Tone::Data,
        ),
        Event::QueueDepth {
            service,
            queue,
            depth,
        } => (
            name(*service),
            format!("queue {queue}: {depth} waiting"),
            Tone::Data,
        ),
        Event::ServiceLoad {
            service,
            workers,
            busy,
            waiting,
        } => (
            name(*service),
            if *workers == 0 {
                format!("{busy} busy, {waiting} waiting")
            } else {
                format!("{busy}/{workers} workers busy, {waiting} waiting")
            },
            Tone::Data,
        ),
        Event::EventHandled {
            service,
            event_id,
            published_at,
            applied,
        } => {
            let age = format::duration(event.at - *published_at);
            let what = if *applied {
                format!("applied {event_id}, published {age} ago")
            } else {
                format!("dropped {event_id}: already processed")
            };
            (name(*service), what, Tone::Data)
        }
        Event::OpStarted {
            op,
            name: op_name,
            client,
        } => (
            name(*client),
            format!("starts {op_name} #{}", op.0),
            Tone::Operation,
        ),
        Event::OpFinished {
            op,
            outcome,
            latency,
            ..
        } => {
            let (subject, what) = index.op(*op).map_or_else(
                || (String::new(), format!("operation #{}", op.0)),
                |(op_name, client)| (name(client), format!("{op_name} #{}", op.0)),
            );
            match outcome {
                Outcome::Ok => (
                    subject,
                    format!("{what} ok in {}", format::duration(*latency)),
                    Tone::Operation,
                ),
                Outcome::Failed { reason } => (
                    subject,
                    format!(
                        "{what} failed after {}: {reason}",
                        format::duration(*latency)
                    ),
                    Tone::Failure,
                ),
                Outcome::Degraded { reason } => (
                    subject,
                    format!(
                        "{what} degraded in {}: {reason}",
                        format::duration(*latency)
                    ),
                    Tone::Operation,
                ),
            }
        }
        Event::PartialUpdateFlagged { service, text, .. } => (
            name(*service),
            format!("flags a partial update: {text}"),
            Tone::Failure,
        ),
        Event::WriteAborted {
            service,
            source_table,
            key,
            version,
            ..
        } => (
            name(*service),
            format!("aborts {source_table}[{key}] v{version}: reads of it saw a write rolled back"),
            Tone::Failure,
        ),
        Event::FaultBegins { fault } => (
            String::new(),
            format!(
                "fault begins: {}",
                fault_label(fault, &index.header().services)
            ),
            Tone::Failure,
        ),
        Event::FaultEnds { fault } => (
            String::new(),
            format!(
                "fault ends: {}",
                fault_label(fault, &index.header().services)
            ),
            Tone::Lifecycle,
        ),
        Event::CircuitChanged {
            service,
            peer,
            state,
        } => (
            name(*service),
            format!("circuit breaker on {} is {}", name(*peer), state.name()),
            match state {
                CircuitState::Closed => Tone::Lifecycle,
                CircuitState::Open | CircuitState::HalfOpen => Tone::Failure,
            },
        ),
        Event::Narration { text } => (String::new(), text.clone(), Tone::Narration),
        Event::RunEnded {
            reason,
            messages_in_flight,
        } => {
            let why = match reason {
                EndReason::ReachedUntil => "reached its end",
                EndReason::Budget => "stopped at the event budget",
                EndReason::Stopped => "was stopped",
            };
            let detail = match messages_in_flight {
                0 => format!("The run {why}."),
                1 => format!("The run {why}; 1 message is still in flight."),
                n => format!("The run {why}; {n} messages are still in flight."),
            };
            (String::new(), detail, Tone::Lifecycle)
        }
    };
    let selects = match &event.event {
        Event::Sent { msg, .. }
        | Event::Delivered { msg }
        | Event::Dropped { msg, .. }
        | Event::Duplicated { copy: msg, .. } => Selection::Message(*msg),
        Event::OpStarted { op, .. } | Event::OpFinished { op, .. } => Selection::Operation(*op),
        _ => Selection::Nothing,
    };
    LogLine {
        event_idx,
        time: format::log_time(event.at),
        subject,
        detail,
        tone,
        selects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{
        DropReason, MessageKind, MsgId, OpId, PROTOCOL_VERSION, ServiceId, ServiceInfo,
        ServiceRole, TraceEvent, TraceHeader,
    };
    use shared::time::Micros;

    fn index(events: Vec<Event>) -> TraceIndex {
        let info = |id, name: &str, role| ServiceInfo {
            id: ServiceId(id),
            name: name.into(),
            role,
        };
        let header = TraceHeader {
            protocol_version: PROTOCOL_VERSION,
            scenario: "test".into(),
            seed: 0,
            until: Micros::from_secs(20),
            knobs: Default::default(),
            services: vec![
                info(0, "Client", ServiceRole::Client),
                info(1, "Order", ServiceRole::Service),
                info(2, "Product", ServiceRole::Service),
            ],
            links: vec![],
            network: shared::protocol::LinkSpec {
                latency: Micros::from_millis(40),
                jitter: Micros::from_millis(10),
                loss_per_million: 0,
            },
            copies: vec![],
            faults: Vec::new(),
        };
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| TraceEvent {
                at: Micros(12_340_000 + i as u64 * 1_000),
                event,
            })
            .collect();
        TraceIndex::complete(header, events)
    }

    fn get_product() -> Event {
        Event::Sent {
            msg: MsgId(4),
            from: ServiceId(1),
            to: ServiceId(2),
            kind: MessageKind::Request,
            label: "GET /products/7".into(),
            op: Some(OpId(1)),
            caused_by: None,
        }
    }

    #[test]
    fn events_read_as_sentences() {
        let index = index(vec![
            get_product(),
            Event::Dropped {
                msg: MsgId(4),
                reason: DropReason::ReceiverDown,
            },
            Event::OpStarted {
                op: OpId(1),
                name: "read order".into(),
                client: ServiceId(0),
            },
            Event::OpFinished {
                op: OpId(1),
                outcome: Outcome::Failed {
                    reason: "Product is down".into(),
                },
                latency: Micros(80_000),
                observed: vec![],
            },
            Event::RowWritten {
                service: ServiceId(1),
                table: "product_names".into(),
                key: "7".into(),
                value: "Eco Coffee Mill".into(),
                version: 2,
            },
            Event::ServiceDown {
                service: ServiceId(2),
            },
            Event::Narration {
                text: "Product crashes.".into(),
            },
            Event::RunEnded {
                reason: EndReason::ReachedUntil,
                messages_in_flight: 2,
            },
            Event::EventHandled {
                service: ServiceId(2),
                event_id: "OrderCreated#7".into(),
                published_at: Micros(12_000_000),
                applied: true,
            },
            Event::EventHandled {
                service: ServiceId(2),
                event_id: "OrderCreated#7".into(),
                published_at: Micros(12_000_000),
                applied: false,
            },
            Event::PartialUpdateFlagged {
                service: ServiceId(1),
                key: "7".into(),
                text: "rename #4 of product 7 was left half done".into(),
            },
        ]);
        let expected = [
            "12.340 s  Order → Product  GET /products/7",
            "12.341 s  Order → Product  GET /products/7 dropped: refused: the receiver is down",
            "12.342 s  Client  starts read order #1",
            "12.343 s  Client  read order #1 failed after 80.0 ms: Product is down",
            "12.344 s  Order.product_names  [7] = Eco Coffee Mill (v2)",
            "12.345 s  Product  is down",
            "12.346 s  Product crashes.",
            "12.347 s  The run reached its end; 2 messages are still in flight.",
            "12.348 s  Product  applied OrderCreated#7, published 348 ms ago",
            "12.349 s  Product  dropped OrderCreated#7: already processed",
            "12.350 s  Order  flags a partial update: rename #4 of product 7 was left half done",
        ];
        for (i, expected) in expected.iter().enumerate() {
            assert_eq!(describe(&index, i).text(), *expected);
        }
        assert_eq!(describe(&index, 6).tone, Tone::Narration);
        assert_eq!(describe(&index, 1).tone, Tone::Failure);
        assert_eq!(describe(&index, 10).tone, Tone::Failure);
        let selects: Vec<Selection> = (0..8).map(|i| describe(&index, i).selects).collect();
        assert_eq!(
            selects,
            [
                Selection::Message(MsgId(4)),
                Selection::Message(MsgId(4)),
                Selection::Operation(OpId(1)),
                Selection::Operation(OpId(1)),
                Selection::Nothing,
                Selection::Nothing,
                Selection::Nothing,
                Selection::Nothing,
            ]
        );
    }

    #[test]
    fn lines_already_described_are_kept_and_the_rest_described() {
        let index = index((0..10).map(|_| get_product()).collect());
        let first = lines_in(&index, [5, 4, 3].into_iter(), None);
        let idx: Vec<usize> = first.iter().map(|l| l.event_idx).collect();
        assert_eq!(idx, vec![5, 4, 3]);
        // A line kept from before is taken as it was, even if describing it now would differ.
        let mut kept = first.clone();
        kept[1].detail = "kept".into();
        let next = lines_in(&index, [6, 5, 4].into_iter(), Some(&kept));
        let got: Vec<(usize, &str)> = next
            .iter()
            .map(|l| (l.event_idx, l.detail.as_str()))
            .collect();
        assert_eq!(got[2], (4, "kept"));
        assert_eq!(next[0], describe(&index, 6));
        assert_eq!(next[1], first[0]);
        assert!(lines_in(&index, std::iter::empty(), Some(&kept)).is_empty());
    }
}
