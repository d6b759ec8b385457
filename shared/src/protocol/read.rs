//! Reading the trace's tagged types ([`TraceEvent`], [`Outcome`], [`Fault`], [`ServerFrame`]),
//! and the broker's stored events ([`DomainEvent`], which the simulation reads back from a durable
//! queue's table in the page too), without serde's derived code for internally tagged and flattened enums.
//!
//! That derived code first copies the whole object into a generic buffer, then reads the
//! variant from the buffer: one more copy of every event, and about 60 KB of the page's
//! WebAssembly. Here each type is read once into a struct of every field any of its variants has
//! (each optional), then the tag picks the variant and checks that its fields are there. Writing
//! is unchanged (derived), so the JSON and the trace's hash are too.
//!
//! The structs of fields are read by [`read_fields!`], not derived either, and so are the plain
//! structs the trace's header and events hold ([`ServiceInfo`], [`CopyDecl`], [`LinkSpec`],
//! [`FaultSpec`], [`Observed`]) and [`TraceHeader`] (a trace's first line, read with a header
//! frame's fields): a derived struct reader also reads each key as bytes and as a number and the
//! whole struct from an array, and its code was about 26 KB of the page's WebAssembly for
//! `TraceEvent` and `ServerFrame` alone.
//!
//! What this accepts is what the derived code accepted, in any key order, with three differences:
//! a field that the tagged variant does not have is still read as the type it has in the variants
//! that do (the derived code skipped it unread), a tag is only a string (serde's derived enum
//! reader also took `{"name": null}`, which nothing writes), and an object is only an object (the
//! derived struct reader also took its fields' values as an array, which nothing writes). A
//! trace's header line is read with a header frame's fields, so a frame's key in it (`type`,
//! `events`, …) is read as the frame's (the derived reader skipped it). The tests below check that every scenario's trace
//! reads back equal to what was written, with its keys in written and in alphabetical order.

use super::{
    CircuitState, CopyDecl, DomainEvent, DriverName, DropReason, EndReason, Event, Fault,
    FaultSpec, LinkId, LinkSpec, LiveRole, MessageKind, MsgId, NewOrder, Observed, OpId, Outcome,
    ProductName, ServerFrame, ServiceId, ServiceInfo, ServiceRole, TraceEvent, TraceHeader,
};
use crate::time::Micros;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A field the tagged variant needs, or serde's usual "missing field" error.
fn required<T, E: de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

/// Reads a tag (a variant's name) as its index in `names`; an unknown one is serde's usual
/// "unknown variant" error. One function for every tag type instead of a derived reader each.
fn tag<'de, D: Deserializer<'de>>(
    deserializer: D,
    names: &'static [&'static str],
) -> Result<usize, D::Error> {
    struct TagVisitor(&'static [&'static str]);
    impl Visitor<'_> for TagVisitor {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("variant identifier")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<usize, E> {
            self.0
                .iter()
                .position(|name| *name == text)
                .ok_or_else(|| E::unknown_variant(text, self.0))
        }
    }
    deserializer.deserialize_str(TagVisitor(names))
}

/// A key of a [`read_fields!`] struct, read as its index in the struct's list of names
/// (`names.len()` for a key no field has). One reader for every such struct's keys instead of a
/// derived one each.
struct FieldName(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldName {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<usize, E> {
        Ok(self
            .0
            .iter()
            .position(|name| *name == text)
            .unwrap_or(self.0.len()))
    }
}

/// Reads a struct whose fields are all `Option`s (and `Default`) from a JSON object, as
/// `#[derive(Deserialize)]` would: each key read once with [`FieldName`], a key no field has
/// skipped, a key given twice serde's usual "duplicate field" error, a field not given `None`.
/// Unlike the derived reader it takes no array in place of the object (nothing writes one), and
/// its code is one loop per struct: no second reader of the keys (as bytes, as numbers) and no
/// reader of the array form.
macro_rules! read_fields {
    ($name:ident { $($field:ident = $text:literal,)* }) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[allow(non_camel_case_types)]
                #[derive(Clone, Copy)]
                enum Field {
                    $($field,)*
                }
                const NAMES: &[&str] = &[$($text,)*];
                const FIELDS: &[Field] = &[$(Field::$field,)*];
                struct FieldsVisitor;
                impl<'de> Visitor<'de> for FieldsVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut fields = $name::default();
                        let mut seen = 0u64;
                        while let Some(index) = map.next_key_seed(FieldName(NAMES))? {
                            let Some(&field) = FIELDS.get(index) else {
                                map.next_value::<de::IgnoredAny>()?;
                                continue;
                            };
                            if seen & 1 << index != 0 {
                                return Err(de::Error::duplicate_field(NAMES[index]));
                            }
                            seen |= 1 << index;
                            match field {
                                $(Field::$field => fields.$field = map.next_value()?,)*
                            }
                        }
                        Ok(fields)
                    }
                }
                deserializer.deserialize_map(FieldsVisitor)
            }
        }
    };
}

/// A tag type of unit variants, each read from its name with [`tag`].
macro_rules! tag_enum {
    ($(#[$doc:meta])* enum $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        enum $name {
            $($variant,)*
        }

        read_tag!($name { $($variant = $text,)* });
    };
}

/// Reads a unit-variant enum (here or in `protocol`) from its variant's name with [`tag`].
macro_rules! read_tag {
    ($name:ident { $($variant:ident = $text:literal,)* }) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$($text,)*];
                const VARIANTS: &[$name] = &[$($name::$variant,)*];
                tag(deserializer, NAMES).map(|index| VARIANTS[index])
            }
        }
    };
}

read_tag!(MessageKind {
    Request = "request",
    Response = "response",
    Event = "event",
    Ack = "ack",
    Rollback = "rollback",
});
read_tag!(ServiceRole {
    Client = "client",
    Service = "service",
    Broker = "broker",
    Coordinator = "coordinator",
});
read_tag!(CircuitState {
    Closed = "closed",
    Open = "open",
    HalfOpen = "half_open",
});

tag_enum! {
    /// [`Event`]'s `type`, as the JSON spells it.
    enum EventType {
        ServiceUp = "service_up",
        ServiceDown = "service_down",
        Sent = "sent",
        Delivered = "delivered",
        Duplicated = "duplicated",
        Dropped = "dropped",
        RowWritten = "row_written",
        QueueDepth = "queue_depth",
        ServiceLoad = "service_load",
        OpStarted = "op_started",
        OpFinished = "op_finished",
        EventHandled = "event_handled",
        PartialUpdateFlagged = "partial_update_flagged",
        WriteAborted = "write_aborted",
        FaultBegins = "fault_begins",
        FaultEnds = "fault_ends",
        CircuitChanged = "circuit_changed",
        Narration = "narration",
        RunEnded = "run_ended",
    }
}

/// Every field of a [`TraceEvent`] line.
#[derive(Default)]
struct EventFields {
    at: Option<Micros>,
    tag: Option<EventType>,
    service: Option<ServiceId>,
    msg: Option<MsgId>,
    from: Option<ServiceId>,
    to: Option<ServiceId>,
    kind: Option<MessageKind>,
    label: Option<String>,
    op: Option<OpId>,
    caused_by: Option<MsgId>,
    copy: Option<MsgId>,
    /// A [`DropReason`] or an [`EndReason`], by the tag.
    reason: Option<String>,
    table: Option<String>,
    key: Option<String>,
    value: Option<String>,
    version: Option<u64>,
    queue: Option<String>,
    depth: Option<u32>,
    workers: Option<u32>,
    busy: Option<u32>,
    waiting: Option<u32>,
    name: Option<String>,
    client: Option<ServiceId>,
    outcome: Option<Outcome>,
    latency: Option<Micros>,
    observed: Option<Vec<Observed>>,
    event_id: Option<String>,
    published_at: Option<Micros>,
    applied: Option<bool>,
    text: Option<String>,
    messages_in_flight: Option<u64>,
    source_service: Option<ServiceId>,
    source_table: Option<String>,
    fault: Option<Fault>,
    peer: Option<ServiceId>,
    state: Option<CircuitState>,
}

read_fields!(EventFields {
    at = "at",
    tag = "type",
    service = "service",
    msg = "msg",
    from = "from",
    to = "to",
    kind = "kind",
    label = "label",
    op = "op",
    caused_by = "caused_by",
    copy = "copy",
    reason = "reason",
    table = "table",
    key = "key",
    value = "value",
    version = "version",
    queue = "queue",
    depth = "depth",
    workers = "workers",
    busy = "busy",
    waiting = "waiting",
    name = "name",
    client = "client",
    outcome = "outcome",
    latency = "latency",
    observed = "observed",
    event_id = "event_id",
    published_at = "published_at",
    applied = "applied",
    text = "text",
    messages_in_flight = "messages_in_flight",
    source_service = "source_service",
    source_table = "source_table",
    fault = "fault",
    peer = "peer",
    state = "state",
});

fn drop_reason<E: de::Error>(name: &str) -> Result<DropReason, E> {
    match name {
        "lost" => Ok(DropReason::Lost),
        "receiver_down" => Ok(DropReason::ReceiverDown),
        "partitioned" => Ok(DropReason::Partitioned),
        _ => Err(E::unknown_variant(
            name,
            &["lost", "receiver_down", "partitioned"],
        )),
    }
}

fn end_reason<E: de::Error>(name: &str) -> Result<EndReason, E> {
    match name {
        "reached_until" => Ok(EndReason::ReachedUntil),
        "budget" => Ok(EndReason::Budget),
        "stopped" => Ok(EndReason::Stopped),
        _ => Err(E::unknown_variant(
            name,
            &["reached_until", "budget", "stopped"],
        )),
    }
}

impl EventFields {
    fn into_event<E: de::Error>(self) -> Result<TraceEvent, E> {
        let f = self;
        let at = required(f.at, "at")?;
        let event = match required(f.tag, "type")? {
            EventType::ServiceUp => Event::ServiceUp {
                service: required(f.service, "service")?,
            },
            EventType::ServiceDown => Event::ServiceDown {
                service: required(f.service, "service")?,
            },
            EventType::Sent => Event::Sent {
                msg: required(f.msg, "msg")?,
                from: required(f.from, "from")?,
                to: required(f.to, "to")?,
                kind: required(f.kind, "kind")?,
                label: required(f.label, "label")?,
                op: f.op,
                caused_by: f.caused_by,
            },
            EventType::Delivered => Event::Delivered {
                msg: required(f.msg, "msg")?,
            },
            EventType::Duplicated => Event::Duplicated {
                msg: required(f.msg, "msg")?,
                copy: required(f.copy, "copy")?,
            },
            EventType::Dropped => Event::Dropped {
                msg: required(f.msg, "msg")?,
                reason: drop_reason(&required::<_, E>(f.reason, "reason")?)?,
            },
            EventType::RowWritten => Event::RowWritten {
                service: required(f.service, "service")?,
                table: required(f.table, "table")?,
                key: required(f.key, "key")?,
                value: required(f.value, "value")?,
                version: required(f.version, "version")?,
            },
            EventType::QueueDepth => Event::QueueDepth {
                service: required(f.service, "service")?,
                queue: required(f.queue, "queue")?,
                depth: required(f.depth, "depth")?,
            },
            EventType::ServiceLoad => Event::ServiceLoad {
                service: required(f.service, "service")?,
                workers: required(f.workers, "workers")?,
                busy: required(f.busy, "busy")?,
                waiting: required(f.waiting, "waiting")?,
            },
            EventType::OpStarted => Event::OpStarted {
                op: required(f.op, "op")?,
                name: required(f.name, "name")?,
                client: required(f.client, "client")?,
            },
            EventType::OpFinished => Event::OpFinished {
                op: required(f.op, "op")?,
                outcome: required(f.outcome, "outcome")?,
                latency: required(f.latency, "latency")?,
                observed: required(f.observed, "observed")?,
            },
            EventType::EventHandled => Event::EventHandled {
                service: required(f.service, "service")?,
                event_id: required(f.event_id, "event_id")?,
                published_at: required(f.published_at, "published_at")?,
                applied: required(f.applied, "applied")?,
            },
            EventType::PartialUpdateFlagged => Event::PartialUpdateFlagged {
                service: required(f.service, "service")?,
                key: required(f.key, "key")?,
                text: required(f.text, "text")?,
            },
            EventType::WriteAborted => Event::WriteAborted {
                service: required(f.service, "service")?,
                source_service: required(f.source_service, "source_service")?,
                source_table: required(f.source_table, "source_table")?,
                key: required(f.key, "key")?,
                version: required(f.version, "version")?,
            },
            EventType::FaultBegins => Event::FaultBegins {
                fault: required(f.fault, "fault")?,
            },
            EventType::FaultEnds => Event::FaultEnds {
                fault: required(f.fault, "fault")?,
            },
            EventType::CircuitChanged => Event::CircuitChanged {
                service: required(f.service, "service")?,
                peer: required(f.peer, "peer")?,
                state: required(f.state, "state")?,
            },
            EventType::Narration => Event::Narration {
                text: required(f.text, "text")?,
            },
            EventType::RunEnded => Event::RunEnded {
                reason: end_reason(&required::<_, E>(f.reason, "reason")?)?,
                messages_in_flight: required(f.messages_in_flight, "messages_in_flight")?,
            },
        };
        Ok(TraceEvent { at, event })
    }
}

impl<'de> Deserialize<'de> for TraceEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EventFields::deserialize(deserializer)?.into_event()
    }
}

tag_enum! {
    /// [`Outcome`]'s `status`.
    enum OutcomeStatus {
        Ok = "ok",
        Failed = "failed",
        Degraded = "degraded",
    }
}

/// Every field of an [`Outcome`].
#[derive(Default)]
struct OutcomeFields {
    status: Option<OutcomeStatus>,
    reason: Option<String>,
}

read_fields!(OutcomeFields {
    status = "status",
    reason = "reason",
});

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = OutcomeFields::deserialize(deserializer)?;
        Ok(match required(f.status, "status")? {
            OutcomeStatus::Ok => Outcome::Ok,
            OutcomeStatus::Failed => Outcome::Failed {
                reason: required(f.reason, "reason")?,
            },
            OutcomeStatus::Degraded => Outcome::Degraded {
                reason: required(f.reason, "reason")?,
            },
        })
    }
}

tag_enum! {
    /// [`DomainEvent`]'s `event`.
    enum DomainEventKind {
        ProductUpdated = "product_updated",
        OrderCreated = "order_created",
        DriverUpdated = "driver_updated",
    }
}

/// Every field of a [`DomainEvent`].
#[derive(Default)]
struct DomainEventFields {
    event: Option<DomainEventKind>,
    product: Option<u64>,
    name: Option<String>,
    version: Option<u64>,
    order: Option<u64>,
    products: Option<Vec<u64>>,
    created_at: Option<Micros>,
    driver: Option<u64>,
}

read_fields!(DomainEventFields {
    event = "event",
    product = "product",
    name = "name",
    version = "version",
    order = "order",
    products = "products",
    created_at = "created_at",
    driver = "driver",
});

impl<'de> Deserialize<'de> for DomainEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = DomainEventFields::deserialize(deserializer)?;
        Ok(match required(f.event, "event")? {
            DomainEventKind::ProductUpdated => DomainEvent::ProductUpdated(ProductName {
                product: required(f.product, "product")?,
                name: required(f.name, "name")?,
                version: required(f.version, "version")?,
            }),
            DomainEventKind::OrderCreated => DomainEvent::OrderCreated(NewOrder {
                order: required(f.order, "order")?,
                products: required(f.products, "products")?,
                created_at: required(f.created_at, "created_at")?,
            }),
            DomainEventKind::DriverUpdated => DomainEvent::DriverUpdated(DriverName {
                driver: required(f.driver, "driver")?,
                name: required(f.name, "name")?,
                version: required(f.version, "version")?,
            }),
        })
    }
}

tag_enum! {
    /// [`Fault`]'s `kind`.
    enum FaultKind {
        Crash = "crash",
        Slow = "slow",
        Partition = "partition",
        Drop = "drop",
        Duplicate = "duplicate",
        Reorder = "reorder",
    }
}

/// Every field of a [`Fault`].
#[derive(Default)]
struct FaultFields {
    kind: Option<FaultKind>,
    service: Option<ServiceId>,
    factor: Option<u32>,
    link: Option<LinkId>,
    percent: Option<u32>,
}

read_fields!(FaultFields {
    kind = "kind",
    service = "service",
    factor = "factor",
    link = "link",
    percent = "percent",
});

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = FaultFields::deserialize(deserializer)?;
        Ok(match required(f.kind, "kind")? {
            FaultKind::Crash => Fault::Crash {
                service: required(f.service, "service")?,
            },
            FaultKind::Slow => Fault::Slow {
                service: required(f.service, "service")?,
                factor: required(f.factor, "factor")?,
            },
            FaultKind::Partition => Fault::Partition {
                link: required(f.link, "link")?,
            },
            FaultKind::Drop => Fault::Drop {
                link: required(f.link, "link")?,
                percent: required(f.percent, "percent")?,
            },
            FaultKind::Duplicate => Fault::Duplicate {
                link: required(f.link, "link")?,
                percent: required(f.percent, "percent")?,
            },
            FaultKind::Reorder => Fault::Reorder {
                link: required(f.link, "link")?,
                percent: required(f.percent, "percent")?,
            },
        })
    }
}

tag_enum! {
    /// [`ServerFrame`]'s `type`.
    enum FrameType {
        Header = "header",
        Events = "events",
        End = "end",
        Error = "error",
        Resync = "resync",
        LiveRole = "live_role",
    }
}

tag_enum! {
    /// [`LiveRole`]'s `role`.
    enum RoleKind {
        Control = "control",
        Shared = "shared",
        Watch = "watch",
    }
}

/// A frame's `events`: the events of an `events` frame, or how many were sent in an `end` frame.
enum EventsField {
    Batch(Vec<TraceEvent>),
    Count(u64),
}

impl<'de> Deserialize<'de> for EventsField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventsVisitor;
        impl<'de> Visitor<'de> for EventsVisitor {
            type Value = EventsField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of trace events or a count")
            }
            fn visit_u64<E: de::Error>(self, count: u64) -> Result<EventsField, E> {
                Ok(EventsField::Count(count))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventsField, A::Error> {
                let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(event) = seq.next_element()? {
                    events.push(event);
                }
                Ok(EventsField::Batch(events))
            }
        }
        deserializer.deserialize_any(EventsVisitor)
    }
}

/// Every field of a [`ServerFrame`]: a header's, then the other frames'.
#[derive(Default)]
struct FrameFields {
    tag: Option<FrameType>,
    protocol_version: Option<u32>,
    scenario: Option<String>,
    seed: Option<u64>,
    until: Option<Micros>,
    knobs: Option<super::KnobMap>,
    services: Option<Vec<ServiceInfo>>,
    links: Option<Vec<(ServiceId, ServiceId)>>,
    network: Option<LinkSpec>,
    copies: Option<Vec<CopyDecl>>,
    faults: Option<Vec<FaultSpec>>,
    events: Option<EventsField>,
    trace_hash: Option<String>,
    message: Option<String>,
    missed_frames: Option<u64>,
    role: Option<RoleKind>,
    token: Option<String>,
    reason: Option<String>,
}

read_fields!(FrameFields {
    tag = "type",
    protocol_version = "protocol_version",
    scenario = "scenario",
    seed = "seed",
    until = "until",
    knobs = "knobs",
    services = "services",
    links = "links",
    network = "network",
    copies = "copies",
    faults = "faults",
    events = "events",
    trace_hash = "trace_hash",
    message = "message",
    missed_frames = "missed_frames",
    role = "role",
    token = "token",
    reason = "reason",
});

impl FrameFields {
    /// The header a `header` frame or a trace's first line gives.
    fn into_header<E: de::Error>(self) -> Result<TraceHeader, E> {
        let f = self;
        Ok(TraceHeader {
            protocol_version: required(f.protocol_version, "protocol_version")?,
            scenario: required(f.scenario, "scenario")?,
            seed: required(f.seed, "seed")?,
            until: required(f.until, "until")?,
            knobs: required(f.knobs, "knobs")?,
            services: required(f.services, "services")?,
            links: required(f.links, "links")?,
            network: required(f.network, "network")?,
            copies: required(f.copies, "copies")?,
            faults: f.faults.unwrap_or_default(),
        })
    }
}

/// A trace's first line: the header's fields, without a `type` (read, if there, as a frame's).
impl<'de> Deserialize<'de> for TraceHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        FrameFields::deserialize(deserializer)?.into_header()
    }
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = FrameFields::deserialize(deserializer)?;
        let wrong_events = |expected: &str| {
            de::Error::invalid_type(
                de::Unexpected::Other("the other kind of `events`"),
                &expected,
            )
        };
        Ok(match required(f.tag, "type")? {
            FrameType::Header => ServerFrame::Header(f.into_header()?),
            FrameType::Events => match required(f.events, "events")? {
                EventsField::Batch(events) => ServerFrame::Events { events },
                EventsField::Count(_) => return Err(wrong_events("a list of trace events")),
            },
            FrameType::End => ServerFrame::End {
                trace_hash: required(f.trace_hash, "trace_hash")?,
                events: match required(f.events, "events")? {
                    EventsField::Count(count) => count,
                    EventsField::Batch(_) => return Err(wrong_events("u64")),
                },
            },
            FrameType::Error => ServerFrame::Error {
                message: required(f.message, "message")?,
            },
            FrameType::Resync => ServerFrame::Resync {
                missed_frames: required(f.missed_frames, "missed_frames")?,
            },
            FrameType::LiveRole => ServerFrame::LiveRole(match required(f.role, "role")? {
                RoleKind::Control => LiveRole::Control {
                    token: required(f.token, "token")?,
                },
                RoleKind::Shared => LiveRole::Shared,
                RoleKind::Watch => LiveRole::Watch {
                    reason: required(f.reason, "reason")?,
                },
            }),
        })
    }
}

/// Every field of a [`ServiceInfo`].
#[derive(Default)]
struct ServiceInfoFields {
    id: Option<ServiceId>,
    name: Option<String>,
    role: Option<ServiceRole>,
}

read_fields!(ServiceInfoFields {
    id = "id",
    name = "name",
    role = "role",
});

impl<'de> Deserialize<'de> for ServiceInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = ServiceInfoFields::deserialize(deserializer)?;
        Ok(ServiceInfo {
            id: required(f.id, "id")?,
            name: required(f.name, "name")?,
            role: required(f.role, "role")?,
        })
    }
}

/// Every field of a [`CopyDecl`].
#[derive(Default)]
struct CopyDeclFields {
    copy_service: Option<ServiceId>,
    copy_table: Option<String>,
    source_service: Option<ServiceId>,
    source_table: Option<String>,
}

read_fields!(CopyDeclFields {
    copy_service = "copy_service",
    copy_table = "copy_table",
    source_service = "source_service",
    source_table = "source_table",
});

impl<'de> Deserialize<'de> for CopyDecl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = CopyDeclFields::deserialize(deserializer)?;
        Ok(CopyDecl {
            copy_service: required(f.copy_service, "copy_service")?,
            copy_table: required(f.copy_table, "copy_table")?,
            source_service: required(f.source_service, "source_service")?,
            source_table: required(f.source_table, "source_table")?,
        })
    }
}

/// Every field of a [`LinkSpec`].
#[derive(Default)]
struct LinkSpecFields {
    latency: Option<Micros>,
    jitter: Option<Micros>,
    loss_per_million: Option<u32>,
}

read_fields!(LinkSpecFields {
    latency = "latency",
    jitter = "jitter",
    loss_per_million = "loss_per_million",
});

impl<'de> Deserialize<'de> for LinkSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = LinkSpecFields::deserialize(deserializer)?;
        Ok(LinkSpec {
            latency: required(f.latency, "latency")?,
            jitter: required(f.jitter, "jitter")?,
            loss_per_million: required(f.loss_per_million, "loss_per_million")?,
        })
    }
}

/// Every field of a [`FaultSpec`].
#[derive(Default)]
struct FaultSpecFields {
    at: Option<Micros>,
    lasts: Option<Micros>,
    fault: Option<Fault>,
}

read_fields!(FaultSpecFields {
    at = "at",
    lasts = "lasts",
    fault = "fault",
});

impl<'de> Deserialize<'de> for FaultSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = FaultSpecFields::deserialize(deserializer)?;
        Ok(FaultSpec {
            at: required(f.at, "at")?,
            // Absent or null: until the run ends, as with serde's derive.
            lasts: f.lasts,
            fault: required(f.fault, "fault")?,
        })
    }
}

/// Every field of an [`Observed`].
#[derive(Default)]
struct ObservedFields {
    source_service: Option<ServiceId>,
    source_table: Option<String>,
    key: Option<String>,
    version: Option<u64>,
}

read_fields!(ObservedFields {
    source_service = "source_service",
    source_table = "source_table",
    key = "key",
    version = "version",
});

impl<'de> Deserialize<'de> for Observed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = ObservedFields::deserialize(deserializer)?;
        Ok(Observed {
            source_service: required(f.source_service, "source_service")?,
            source_table: required(f.source_table, "source_table")?.into(),
            key: required(f.key, "key")?.into(),
            version: required(f.version, "version")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Trace, TraceEvent};
    use super::*;
    use crate::protocol::{RunRequest, event_line, header_line};
    use crate::scenario::{catalog, simulate};
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;

    /// Every scenario, with one fault of each kind, and a service with a capacity, so every kind
    /// of event and fault is written.
    fn traces() -> Vec<Trace> {
        catalog()
            .iter()
            .map(|spec| {
                let names: Vec<String> = simulate(&RunRequest {
                    scenario: spec.name.into(),
                    seed: 1,
                    until_s: 1.0,
                    knobs: Default::default(),
                    faults: vec![],
                })
                .unwrap()
                .header
                .services
                .iter()
                .map(|s| s.name.clone())
                .collect();
                let (a, b) = (&names[names.len() - 2], &names[names.len() - 1]);
                let faults = [
                    format!("crash:{b}@4+3"),
                    format!("slow:{a}*3@2+4"),
                    format!("partition:{a}-{b}@9+2"),
                    "drop:*=10%@12+3".to_string(),
                    "duplicate:*=20%@15+3".to_string(),
                    "reorder:*=20%@18".to_string(),
                ];
                simulate(&RunRequest {
                    scenario: spec.name.into(),
                    seed: 5,
                    until_s: 24.0,
                    knobs: Default::default(),
                    faults: faults.to_vec(),
                })
                .unwrap()
            })
            // A service with a capacity, so its load is written too.
            .chain(std::iter::once(
                simulate(&RunRequest {
                    scenario: "request-response".into(),
                    seed: 5,
                    until_s: 5.0,
                    knobs: [
                        ("product_workers".to_string(), 1.0),
                        ("product_service_ms".to_string(), 100.0),
                    ]
                    .into(),
                    faults: vec![],
                })
                .unwrap(),
            ))
            .collect()
    }

    /// The same JSON with its keys in alphabetical order (serde_json's `Value` sorts them).
    fn keys_sorted(line: &str) -> String {
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(line).unwrap()).unwrap()
    }

    #[test]
    fn every_scenarios_trace_reads_back_as_written_in_any_key_order() {
        let mut types = BTreeSet::new();
        let mut fault_kinds = BTreeSet::new();
        for trace in traces() {
            let text = trace.to_jsonl();
            let back = Trace::from_jsonl(&text).unwrap();
            assert_eq!(back, trace, "{}", trace.header.scenario);
            assert_eq!(back.to_jsonl(), text);
            assert_eq!(back.hash_hex(), trace.hash_hex());
            for fault in &trace.header.faults {
                let json = serde_json::to_value(&fault.fault).unwrap();
                fault_kinds.insert(json["kind"].as_str().unwrap().to_string());
            }
            let sorted_header = keys_sorted(header_line(&trace.header).trim_end());
            assert_ne!(format!("{sorted_header}\n"), header_line(&trace.header));
            let mut sorted = sorted_header + "\n";
            for event in &trace.events {
                let line = event_line(event);
                let json: serde_json::Value = serde_json::from_str(&line).unwrap();
                types.insert(json["type"].as_str().unwrap().to_string());
                sorted.push_str(&keys_sorted(&line));
                sorted.push('\n');
            }
            assert_eq!(Trace::from_jsonl(&sorted).unwrap(), trace);
        }
        assert_eq!(
            types.len(),
            18,
            "every kind of event was written: {types:?}"
        );
        assert_eq!(fault_kinds.len(), 6, "every kind of fault: {fault_kinds:?}");
    }

    #[test]
    fn every_server_frame_reads_back_as_written_in_any_key_order() {
        let trace = traces().swap_remove(0);
        let end = trace
            .events
            .iter()
            .rposition(|e| matches!(e.event, Event::RunEnded { .. }))
            .unwrap();
        let mut ended = trace.events[end].clone();
        let mut frames = vec![
            ServerFrame::Header(trace.header.clone()),
            ServerFrame::Events {
                events: trace.events[..50].to_vec(),
            },
            ServerFrame::Events { events: vec![] },
            ServerFrame::End {
                trace_hash: trace.hash_hex(),
                events: trace.events.len() as u64,
            },
            ServerFrame::Error {
                message: "unknown scenario".into(),
            },
            ServerFrame::Resync { missed_frames: 3 },
            ServerFrame::LiveRole(LiveRole::Control {
                token: "0f3a".into(),
            }),
            ServerFrame::LiveRole(LiveRole::Shared),
            ServerFrame::LiveRole(LiveRole::Watch {
                reason: "another viewer controls this run".into(),
            }),
        ];
        for reason in [EndReason::Budget, EndReason::Stopped] {
            if let Event::RunEnded { reason: r, .. } = &mut ended.event {
                *r = reason;
            }
            frames.push(ServerFrame::Events {
                events: vec![ended.clone()],
            });
        }
        for frame in frames {
            let json = serde_json::to_string(&frame).unwrap();
            assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame);
            let sorted = keys_sorted(&json);
            assert_eq!(serde_json::from_str::<ServerFrame>(&sorted).unwrap(), frame);
        }
        let header = serde_json::to_value(ServerFrame::Header(trace.header.clone())).unwrap();
        let mut without_faults = header.clone();
        without_faults.as_object_mut().unwrap().remove("faults");
        let read: ServerFrame = serde_json::from_value(without_faults).unwrap();
        let ServerFrame::Header(read) = read else {
            panic!("not a header: {read:?}")
        };
        assert!(read.faults.is_empty(), "faults default to none");
    }

    #[test]
    fn domain_events_read_back_as_written_in_any_key_order_and_bad_ones_are_refused() {
        let events = [
            DomainEvent::ProductUpdated(ProductName {
                product: 7,
                name: "Lamp \"XL\"".into(),
                version: 3,
            }),
            DomainEvent::OrderCreated(NewOrder {
                order: 12,
                products: vec![1, 7],
                created_at: Micros::from_millis(1_500),
            }),
            DomainEvent::OrderCreated(NewOrder {
                order: 13,
                products: vec![],
                created_at: Micros::ZERO,
            }),
            DomainEvent::DriverUpdated(DriverName {
                driver: 2,
                name: "Ana".into(),
                version: 1,
            }),
        ];
        for event in events {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(
                serde_json::from_str::<DomainEvent>(&json).unwrap(),
                event,
                "{json}"
            );
            // The tag last, and a field no variant has (the derived reader skipped those too).
            let mut fields: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(&json).unwrap();
            let tag = fields.remove("event").unwrap();
            let mut reordered = serde_json::to_string(&fields).unwrap();
            reordered.pop();
            let reordered = format!(r#"{reordered},"extra":[1],"event":{tag}}}"#);
            assert_eq!(
                serde_json::from_str::<DomainEvent>(&reordered).unwrap(),
                event,
                "{reordered}"
            );
            // Inside the payloads that carry one (the live runtime's HTTP bodies).
            for payload in [
                crate::protocol::Payload::Publish(event.clone()),
                crate::protocol::Payload::Deliver {
                    tag: 4,
                    redelivered: true,
                    event: event.clone(),
                },
            ] {
                let json = serde_json::to_string(&payload).unwrap();
                let read: crate::protocol::Payload = serde_json::from_str(&json).unwrap();
                assert_eq!(read, payload, "{json}");
            }
            // Also from bytes, as the live runtime reads them off the broker.
            assert_eq!(
                serde_json::from_slice::<DomainEvent>(json.as_bytes()).unwrap(),
                event
            );
        }
        let error = |json: &str| {
            serde_json::from_str::<DomainEvent>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(error(r#"{"product":1,"name":"a","version":1}"#).contains("missing field `event`"));
        assert!(
            error(r#"{"event":"product_updated","product":1,"version":1}"#)
                .contains("missing field `name`")
        );
        assert!(
            error(r#"{"event":"order_created","order":1,"products":[]}"#)
                .contains("missing field `created_at`")
        );
        assert!(
            error(r#"{"event":"driver_moved","driver":1}"#)
                .contains("unknown variant `driver_moved`")
        );
        assert!(
            error(r#"{"event":"driver_updated","driver":"x","name":"a","version":1}"#)
                .contains("invalid type")
        );
    }

    #[test]
    fn bad_input_is_refused_with_what_is_wrong() {
        let error = |json: &str| {
            serde_json::from_str::<TraceEvent>(json)
                .unwrap_err()
                .to_string()
        };
        let check = |json: &str, expected: &str| {
            let err = error(json);
            assert!(
                err.contains(expected),
                "{json}: {err:?} should say {expected:?}"
            );
        };
        check(r#"{"at":1,"type":"delivered"}"#, "missing field `msg`");
        check(r#"{"type":"delivered","msg":1}"#, "missing field `at`");
        check(r#"{"at":1,"msg":1}"#, "missing field `type`");
        check(
            r#"{"at":1,"type":"teleported"}"#,
            "unknown variant `teleported`",
        );
        check(
            r#"{"at":1,"type":"dropped","msg":1,"reason":"budget"}"#,
            "unknown variant `budget`",
        );
        check(
            r#"{"at":1,"type":"run_ended","reason":"lost","messages_in_flight":0}"#,
            "unknown variant `lost`",
        );
        check(r#"{"at":1,"type":"delivered","msg":"one"}"#, "invalid type");
        check(
            r#"{"at":1,"type":"delivered","msg":1,"msg":2}"#,
            "duplicate field `msg`",
        );
        check(
            r#"{"at":1,"type":"delivered","msg":null,"msg":2}"#,
            "duplicate field `msg`",
        );
        check(r#"[1,"delivered",null,3]"#, "invalid type: sequence");
        check(
            r#"{"at":1,"type":"delivered","msg":null}"#,
            "missing field `msg`",
        );
        // A key no variant has is skipped, whatever its value.
        let extra = r#"{"at":1,"extra":{"a":[1,{"b":null}]},"type":"delivered","msg":4}"#;
        assert_eq!(
            serde_json::from_str::<TraceEvent>(extra).unwrap(),
            TraceEvent {
                at: Micros(1),
                event: Event::Delivered { msg: MsgId(4) },
            }
        );
        check(
            r#"{"at":1,"type":"op_finished","op":1,"outcome":{"status":"failed"},"latency":3,"observed":[]}"#,
            "missing field `reason`",
        );
        let frame = |json: &str| {
            serde_json::from_str::<ServerFrame>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(frame(r#"{"type":"events","events":3}"#).contains("list of trace events"));
        assert!(frame(r#"{"type":"end","trace_hash":"00","events":[]}"#).contains("u64"));
        assert!(frame(r#"{"type":"header","protocol_version":1}"#).contains("missing field"));
        // A fault's `lasts` may be null or absent (until the run ends), as with serde's derive.
        for json in [
            r#"{"at":5,"fault":{"kind":"crash","service":2}}"#,
            r#"{"lasts":null,"fault":{"kind":"crash","service":2},"at":5}"#,
        ] {
            assert_eq!(
                serde_json::from_str::<super::super::FaultSpec>(json).unwrap(),
                super::super::FaultSpec {
                    at: Micros(5),
                    lasts: None,
                    fault: Fault::Crash {
                        service: ServiceId(2),
                    },
                }
            );
        }
        let service =
            |json: &str| serde_json::from_str::<ServiceInfo>(json).map_err(|e| e.to_string());
        assert!(
            service(r#"{"id":0,"name":"Order"}"#)
                .unwrap_err()
                .contains("missing field `role`")
        );
        assert!(
            service(r#"{"id":0,"name":"A","role":"client","name":"B"}"#)
                .unwrap_err()
                .contains("duplicate field `name`")
        );
        assert_eq!(
            service(r#"{"role":"broker","extra":[],"name":"Bus","id":3}"#).unwrap(),
            ServiceInfo {
                id: ServiceId(3),
                name: "Bus".into(),
                role: ServiceRole::Broker,
            }
        );
        // Sent's `op` and `caused_by` may be null or absent, as with serde's derive.
        let sent = r#"{"at":1,"type":"sent","msg":1,"from":0,"to":1,"kind":"request","label":"x"}"#;
        let read: TraceEvent = serde_json::from_str(sent).unwrap();
        assert_eq!(
            read.event,
            Event::Sent {
                msg: MsgId(1),
                from: ServiceId(0),
                to: ServiceId(1),
                kind: MessageKind::Request,
                label: "x".into(),
                op: None,
                caused_by: None,
            }
        );
    }
}
