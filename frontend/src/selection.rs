//! What the person has selected — a service, a link, a message or an operation — as one piece of
//! state every view reads: the map, the sequence diagram, the log and the tables highlight it,
//! and other features (injecting a fault on a service or link) can act on it.
//!
//! Services are named rather than numbered, so a selection in a URL survives a change of
//! scenario or seed that renumbers them.

use crate::trace_index::TraceIndex;
use shared::protocol::{Event, MsgId, MsgMap, MsgSet, OpId, OpSet, ServiceId};
use shared::slot_map::{DenseSet, SlotMap};

/// The selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Nothing selected.
    #[default]
    Nothing,
    /// A service, by name.
    Service(String),
    /// The link between two services, by name, in the order the header lists the link.
    Link(String, String),
    /// One message and the chain of messages that caused it and that it caused.
    Message(MsgId),
    /// Every message of one client operation.
    Operation(OpId),
    /// The events proving one anomaly, by its position in the run's list of anomalies.
    Anomaly(usize),
}

impl Selection {
    /// The selection as a URL value: `service:Order`, `link:Order~Product`, `msg:42`, `op:7`,
    /// `anomaly:3`; empty when nothing is selected.
    pub fn to_param(&self) -> String {
        match self {
            Selection::Nothing => String::new(),
            Selection::Service(name) => format!("service:{name}"),
            Selection::Link(a, b) => format!("link:{a}~{b}"),
            Selection::Message(msg) => format!("msg:{}", msg.0),
            Selection::Operation(op) => format!("op:{}", op.0),
            Selection::Anomaly(position) => format!("anomaly:{position}"),
        }
    }

    /// Reads [`Selection::to_param`]'s text back.
    pub fn parse(text: &str) -> Option<Selection> {
        let (kind, value) = text.split_once(':')?;
        let named = |name: &str| (!name.is_empty()).then(|| name.to_string());
        match kind {
            "service" => named(value).map(Selection::Service),
            "link" => {
                let (a, b) = value.split_once('~')?;
                Some(Selection::Link(named(a)?, named(b)?))
            }
            "msg" => value.parse().ok().map(|id| Selection::Message(MsgId(id))),
            "op" => value.parse().ok().map(|id| Selection::Operation(OpId(id))),
            "anomaly" => value.parse().ok().map(Selection::Anomaly),
            _ => None,
        }
    }

    /// The selected service's id in `index`, when a service is selected.
    pub fn service(&self, index: &TraceIndex) -> Option<ServiceId> {
        match self {
            Selection::Service(name) => service_id(index, name),
            _ => None,
        }
    }

    /// The selected link's two ends in `index`, when a link is selected.
    pub fn link(&self, index: &TraceIndex) -> Option<(ServiceId, ServiceId)> {
        match self {
            Selection::Link(a, b) => Some((service_id(index, a)?, service_id(index, b)?)),
            _ => None,
        }
    }
}

fn service_id(index: &TraceIndex, name: &str) -> Option<ServiceId> {
    index
        .header()
        .services
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.id)
}

/// The messages a selection highlights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Highlight {
    /// Highlighted messages.
    pub messages: MsgSet,
    /// The operation they serve, when there is one.
    pub op: Option<OpId>,
    /// Highlighted events, by their position in the trace, ascending and each once: an anomaly's
    /// proof, a handful (a `Vec` rather than a `BTreeSet`, whose code the page would carry
    /// for this type alone).
    pub events: Vec<usize>,
}

impl Highlight {
    /// True when `msg` is highlighted.
    pub fn has(&self, msg: MsgId) -> bool {
        self.messages.contains(&msg.key())
    }
}

/// The services a selection concerns: the service itself, a link's two ends, or every sender and
/// receiver of the highlighted messages. The tables panel marks their tables.
pub fn services_involved(
    index: &TraceIndex,
    selection: &Selection,
    highlight: &Highlight,
) -> DenseSet<ServiceId> {
    match selection {
        Selection::Nothing => DenseSet::new(),
        Selection::Service(_) => selection
            .service(index)
            .into_iter()
            .collect::<DenseSet<_>>(),
        Selection::Link(..) => selection
            .link(index)
            .map(|(a, b)| [a, b].into_iter().collect::<DenseSet<_>>())
            .unwrap_or_default(),
        Selection::Message(_) | Selection::Operation(_) | Selection::Anomaly(_) => highlight
            .messages
            .iter()
            .filter_map(|msg| index.span(MsgId(*msg)))
            .flat_map(|span| [span.from, span.to])
            .collect::<DenseSet<_>>(),
    }
}

/// Messages within this many causation steps of a selected message are followed; a bound that
/// no real chain reaches, so a malformed trace with a cycle cannot loop forever.
const CHAIN_STEPS_MAX: usize = 10_000;

/// What `selection` highlights in `index`: a message's whole causation chain (every ancestor
/// and every descendant), an operation's messages, a link's or a service's messages.
pub fn highlight(index: &TraceIndex, selection: &Selection) -> Highlight {
    match selection {
        Selection::Nothing => Highlight::default(),
        Selection::Message(msg) => causation_chain(index, *msg),
        Selection::Operation(op) => Highlight {
            messages: index
                .spans()
                .filter(|s| s.op == Some(*op))
                .map(|s| s.msg.key())
                .collect::<MsgSet>(),
            op: Some(*op),
            events: Vec::new(),
        },
        Selection::Anomaly(position) => anomaly_proof(index, *position),
        Selection::Service(_) | Selection::Link(..) => {
            let service = selection.service(index);
            let link = selection.link(index);
            let on_link = |a: ServiceId, b: ServiceId| {
                link.is_some_and(|(x, y)| (a, b) == (x, y) || (a, b) == (y, x))
            };
            Highlight {
                messages: index
                    .spans()
                    .filter(|s| {
                        service.is_some_and(|id| s.from == id || s.to == id)
                            || on_link(s.from, s.to)
                    })
                    .map(|s| s.msg.key())
                    .collect::<MsgSet>(),
                op: None,
                events: Vec::new(),
            }
        }
    }
}

/// How many events after a write a handler's first message may come: its other writes and its
/// narration come between.
const HANDLER_EVENTS_MAX: usize = 16;

/// The message `service` was handling when it did event `event_idx` (a write, an event applied),
/// as the trace tells it: a handler's effects are recorded together at one moment, its writes
/// before its messages, and each message it sends names the one it handles (`caused_by`). So it
/// is the cause of the first message `service` sends at that moment, after the event; none when
/// it sends nothing caused.
pub fn message_handled_at(
    index: &TraceIndex,
    event_idx: usize,
    service: ServiceId,
) -> Option<MsgId> {
    let events = index.events();
    let at = events.get(event_idx)?.at;
    events
        .iter_from(event_idx + 1)
        .take(HANDLER_EVENTS_MAX)
        .take_while(|e| e.at == at)
        .find_map(|e| match &e.event {
            Event::Sent {
                from, caused_by, ..
            } if *from == service => Some(*caused_by),
            _ => None,
        })
        .flatten()
}

/// `msg`, the messages that led to it, and every message sent because of it, however far down.
pub fn causation_chain(index: &TraceIndex, msg: MsgId) -> Highlight {
    let Some(span) = index.span(msg) else {
        return Highlight::default();
    };
    let mut children: MsgMap<Vec<MsgId>> = SlotMap::new();
    for s in index.spans() {
        if let Some(parent) = s.caused_by {
            children.entry(parent.key()).or_default().push(s.msg);
        }
    }
    let mut messages = [msg.key()].into_iter().collect::<MsgSet>();
    // Up to the root.
    let mut cursor = span.caused_by;
    while let Some(parent) = cursor {
        if messages.len() > CHAIN_STEPS_MAX || !messages.insert(parent.key()) {
            break;
        }
        cursor = index.span(parent).and_then(|s| s.caused_by);
    }
    // Down through everything it caused.
    let mut to_visit = vec![msg];
    while let Some(next) = to_visit.pop() {
        for child in children.get(&next.key()).into_iter().flatten() {
            if messages.len() <= CHAIN_STEPS_MAX && messages.insert(child.key()) {
                to_visit.push(*child);
            }
        }
    }
    Highlight {
        messages,
        op: span.op,
        events: Vec::new(),
    }
}

/// The events proving anomaly `position` of `index`, and the messages they concern: a message's
/// send, copy, delivery or drop; the message a service was handling when it wrote a row or
/// applied an event (see [`message_handled_at`]); and every message of an operation whose start
/// or end is among them (a stale read's two operations, say). Nothing for a position the run
/// does not have.
pub fn anomaly_proof(index: &TraceIndex, position: usize) -> Highlight {
    let Some(anomaly) = index.anomalies().anomalies().get(position) else {
        return Highlight::default();
    };
    let mut messages = MsgSet::new();
    let mut ops = OpSet::new();
    for (event_idx, event) in anomaly
        .events
        .iter()
        .filter_map(|&i| Some((i, index.events().get(i)?)))
    {
        match &event.event {
            Event::Sent { msg, .. } | Event::Delivered { msg } | Event::Dropped { msg, .. } => {
                messages.insert(msg.key());
            }
            Event::Duplicated { copy, .. } => {
                messages.insert(copy.key());
            }
            Event::OpStarted { op, .. } | Event::OpFinished { op, .. } => {
                ops.insert(op.key());
            }
            Event::RowWritten { service, .. } | Event::EventHandled { service, .. } => {
                messages.extend(message_handled_at(index, event_idx, *service).map(MsgId::key));
            }
            _ => {}
        }
    }
    if !ops.is_empty() {
        messages.extend(
            index
                .spans()
                .filter(|s| s.op.is_some_and(|op| ops.contains(&op.key())))
                .map(|s| s.msg.key()),
        );
    }
    Highlight {
        messages,
        op: None,
        events: {
            let mut events = anomaly.events.clone();
            // The one sort the page compiles (`shared::ordered`), not a second one for `usize`.
            shared::ordered::sort_by_key(&mut events, |&event| event);
            events.dedup();
            events
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::RunRequest;
    use shared::slot_map::SlotSet;

    #[test]
    fn selections_round_trip_through_their_url_values() {
        let cases = [
            Selection::Nothing,
            Selection::Service("Product".into()),
            Selection::Link("Order".into(), "Product".into()),
            Selection::Message(MsgId(42)),
            Selection::Operation(OpId(7)),
            Selection::Anomaly(3),
        ];
        for selection in cases {
            let text = selection.to_param();
            let back = if text.is_empty() {
                Some(Selection::Nothing)
            } else {
                Selection::parse(&text)
            };
            assert_eq!(back, Some(selection.clone()), "{text}");
        }
        for bad in [
            "",
            "service:",
            "link:Order",
            "link:~B",
            "msg:x",
            "op:-1",
            "zone:1",
            "anomaly:-2",
        ] {
            assert_eq!(Selection::parse(bad), None, "{bad}");
        }
    }

    fn index() -> TraceIndex {
        let request = RunRequest {
            scenario: "request-response".into(),
            seed: 2,
            until_s: 5.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        TraceIndex::complete(trace.header, trace.events)
    }

    #[test]
    fn a_message_chain_follows_causes_up_and_effects_down() {
        let index = index();
        // A call from Order to Product: caused by the client's request, causing a response.
        let call = index
            .spans()
            .find(|s| s.caused_by.is_some() && index.service_name(s.from) == "Order")
            .expect("Order calls Product");
        let chain = causation_chain(&index, call.msg);
        let parent = call.caused_by.unwrap();
        assert!(chain.has(call.msg) && chain.has(parent));
        assert!(
            index
                .spans()
                .filter(|s| s.caused_by == Some(call.msg))
                .all(|s| chain.has(s.msg)),
            "every message it caused"
        );
        // Every message in the chain is linked to another one in it, and they share an operation.
        for msg in &chain.messages {
            let span = index.span(MsgId(*msg)).unwrap();
            assert_eq!(span.op, call.op, "{msg:?}");
        }
        assert_eq!(chain.op, call.op);
        assert!(chain.messages.len() >= 3, "{:?}", chain.messages);
        assert_eq!(
            causation_chain(&index, MsgId(u64::MAX)),
            Highlight::default()
        );
    }

    #[test]
    fn an_operation_a_service_and_a_link_highlight_their_messages() {
        let index = index();
        let op = index.spans().find_map(|s| s.op).unwrap();
        let of_op = highlight(&index, &Selection::Operation(op));
        assert!(!of_op.messages.is_empty());
        assert!(
            of_op
                .messages
                .iter()
                .all(|m| index.span(MsgId(*m)).unwrap().op == Some(op))
        );

        let product = highlight(&index, &Selection::Service("Product".into()));
        let link = highlight(&index, &Selection::Link("Order".into(), "Product".into()));
        assert!(!link.messages.is_empty());
        // Every message on the Order–Product link touches Product.
        assert!(link.messages.is_subset(&product.messages));
        let missing = highlight(&index, &Selection::Service("Nowhere".into()));
        assert!(missing.messages.is_empty());

        let names = |selection: &Selection| -> Vec<String> {
            let lit = highlight(&index, selection);
            services_involved(&index, selection, &lit)
                .iter()
                .map(|id| index.service_name(*id))
                .collect()
        };
        assert_eq!(names(&Selection::Service("Product".into())), ["Product"]);
        assert_eq!(
            names(&Selection::Link("Order".into(), "Product".into())),
            ["Order", "Product"]
        );
        assert_eq!(
            names(&Selection::Operation(op)),
            ["Client", "Order", "Product"]
        );
        assert!(names(&Selection::Nothing).is_empty());
    }

    #[test]
    fn an_anomaly_highlights_its_events_and_the_messages_of_its_operations() {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 4,
            until_s: 5.0,
            knobs: shared::protocol::KnobMap::from([
                ("read_rate_per_s".to_string(), 2.0),
                ("rename_rate_per_s".to_string(), 1.0),
                ("broker_delay_ms".to_string(), 1000.0),
                ("products_per_order".to_string(), 1.0),
            ]),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        let index = TraceIndex::complete(trace.header, trace.events);
        // docs/METRICS.md's worked example: two stale reads, the first proven by #62, #65, #70.
        let anomalies = index.anomalies().anomalies();
        assert_eq!(anomalies.len(), 2, "{anomalies:?}");
        let lit = highlight(&index, &Selection::Anomaly(0));
        assert_eq!(lit.events, vec![62, 65, 70]);
        // Its proof names two operations (op 3's rename, op 4's read): their messages light up.
        let ops: SlotSet<OpId> = lit
            .messages
            .iter()
            .filter_map(|msg| index.span(MsgId(*msg)).and_then(|s| s.op))
            .collect();
        assert_eq!(ops, SlotSet::from([OpId(3), OpId(4)]));
        assert_eq!(
            lit.messages.len(),
            index
                .spans()
                .filter(|s| s.op.is_some_and(|op| ops.contains(&op)))
                .count()
        );
        assert_eq!(
            highlight(&index, &Selection::Anomaly(2)),
            Highlight::default()
        );
    }

    #[test]
    fn a_duplicate_applied_highlights_both_deliveries_of_the_event() {
        let request = RunRequest {
            scenario: "event-driven".into(),
            seed: 1,
            until_s: 30.0,
            knobs: shared::protocol::KnobMap::from([("redelivery".to_string(), 1.0)]),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        let index = TraceIndex::complete(trace.header, trace.events);
        let position = index
            .anomalies()
            .anomalies()
            .iter()
            .position(|a| a.kind == shared::check::AnomalyKind::DuplicateApplied)
            .expect("SQS's rule redelivers a late-acked order");
        let lit = highlight(&index, &Selection::Anomaly(position));
        // Two `event_handled`, each the handling of a delivery from the broker to Shipping.
        assert_eq!(lit.events.len(), 2);
        let routes: Vec<(String, String)> = lit
            .messages
            .iter()
            .map(|msg| {
                let span = index.span(MsgId(*msg)).unwrap();
                (index.service_name(span.from), index.service_name(span.to))
            })
            .collect();
        assert_eq!(
            routes,
            vec![
                ("Broker".to_string(), "Shipping".to_string()),
                ("Broker".to_string(), "Shipping".to_string())
            ]
        );
    }
}
