//! Reading the trace's types ([`TraceEvent`], [`Outcome`], [`Fault`], [`ServerFrame`],
//! [`TraceHeader`] and the plain structs they hold), and the broker's stored events
//! ([`DomainEvent`], which the simulation reads back from a durable queue's table in the page
//! too), with [`crate::json`]'s reader: no serde deserializer, no visitors.
//!
//! serde's reading side (serde_json's deserializer, serde's traits, and the derived or
//! hand-written visitors on top) was about 55 KB of the page's WebAssembly (issue 9). Here each
//! type is read once into a struct of every field any of its variants has (each optional), by
//! [`read_fields!`]: one loop over the object's keys per struct, a key no field has skipped, a
//! key given twice refused, `null` taken as not given, each field read by [`read_into`] (one copy
//! per type of field). Then the tag picks the variant, and [`check`] finds its required fields
//! among those given (by their indices, in the order serde's derive checked them) before any is
//! taken out of the struct: one way to fail, one drop. The page writes these types by hand
//! (`protocol/write.rs`), byte for byte as serde's derive did, so the JSON and the trace's hash
//! do not change.
//!
//! What this accepts is what serde's derived code accepted, in any key order, with these
//! differences: a field that the tagged variant does not have is still read as the type it has
//! in the variants that do (the derived code skipped it unread), a tag is only a string (serde's
//! derived enum reader also took `{"name": null}`, which nothing writes), and an object is only
//! an object (the derived struct reader also took its fields' values as an array, which nothing
//! writes). A trace's header line is read with a header frame's fields, so a frame's key in it
//! (`type`, `events`, …) is read as the frame's (the derived reader skipped it). A knob's value
//! is read by [`crate::decimal_text::parse_f64`] (see [`crate::json`]): it refuses a number of
//! more than 19 significant digits or above about 10^46, which nothing writes. The errors say
//! what serde's said (`missing field`, `unknown variant`, `duplicate field`, `invalid type`)
//! with the line and column.
//!
//! The server's own types that serde's derive still reads (a live run's [`super::WireMessage`]
//! and its [`super::Payload`], a viewer's [`super::ClientFrame`]) hold a [`DomainEvent`] or a
//! [`Fault`]: those two read through here there too ([`deserialize_through_reader!`]). The
//! tests below check that every scenario's trace reads back equal to what was written, with its
//! keys in written and in alphabetical order.

use super::{
    CircuitState, CopyDecl, DomainEvent, DriverName, DropReason, EndReason, Event, Fault,
    FaultSpec, LinkId, LinkSpec, LiveRole, MessageKind, MsgId, NewOrder, Observed, OpId, Outcome,
    ProductName, ServerFrame, ServiceId, ServiceInfo, ServiceRole, TraceEvent, TraceHeader,
};
use crate::json::{self, FromJson, Reader, required, tag, unknown_variant};
use crate::time::Micros;

/// Reads a struct whose fields are all `Option`s (and `Default`) from a JSON object, as
/// `#[derive(Deserialize)]` would: each key read once, a key no field has skipped, a key given
/// twice the error "duplicate field", a field not given `None`. Its code is one loop per struct.
macro_rules! read_fields {
    ($name:ident as $index:ident { $($field:ident = $text:literal,)* }) => {
        /// The index of each field of the struct of this name, in its [`read_fields!`].
        #[allow(non_camel_case_types, dead_code)]
        #[derive(Clone, Copy)]
        enum $index {
            $($field,)*
        }

        read_fields!($name { $($field = $text,)* });
    };
    ($name:ident { $($field:ident = $text:literal,)* }) => {
        impl $name {
            /// The JSON keys, in the fields' order.
            #[allow(dead_code)]
            const NAMES: &[&str] = &[$($text,)*];

            /// Reads the struct and which of its fields were given, not `null` (bit `i` for field
            /// `i`): those that are `Some`.
            fn read_seen(r: &mut Reader<'_>) -> json::Result<(Self, u64)> {
                #[allow(non_camel_case_types)]
                #[derive(Clone, Copy)]
                enum Field {
                    $($field,)*
                }
                const FIELDS: &[Field] = &[$(Field::$field,)*];
                let mut fields = $name::default();
                let (mut seen, mut nulls) = (0u64, 0u64);
                r.object(concat!("struct ", stringify!($name)))?;
                while let Some(index) = r.next_field(Self::NAMES)? {
                    let Some(&field) = FIELDS.get(index) else {
                        r.skip()?;
                        continue;
                    };
                    if seen & 1 << index != 0 {
                        return Err(r.error(format!("duplicate field `{}`", Self::NAMES[index])));
                    }
                    seen |= 1 << index;
                    // `null` is a field not given (`None`), as an `Option`'s reader reads it.
                    if r.null()? {
                        nulls |= 1 << index;
                        continue;
                    }
                    match field {
                        $(Field::$field => read_into(r, &mut fields.$field)?,)*
                    }
                }
                Ok((fields, seen & !nulls))
            }
        }

        impl FromJson for $name {
            fn read(r: &mut Reader<'_>) -> json::Result<Self> {
                Self::read_seen(r).map(|(fields, _)| fields)
            }
        }
    };
}

/// Checks that each field of `required` (indices in `names`, in the order serde's derive checks
/// them) was `seen`: the first that was not is the error "missing field". Checking every field
/// before taking any out of its struct leaves one way to fail, so one drop of the struct.
#[inline(never)]
fn check(r: &Reader<'_>, seen: u64, names: &[&str], required: &[u8]) -> json::Result<()> {
    match required.iter().find(|&&i| seen & 1 << i == 0) {
        Some(&i) => Err(json::missing(r, names[usize::from(i)])),
        None => Ok(()),
    }
}

/// [`check`] for a struct whose every field is required, in the order of `names`.
#[inline(never)]
fn check_all(r: &Reader<'_>, seen: u64, names: &[&str]) -> json::Result<()> {
    let missing = !seen & ((1 << names.len()) - 1);
    match missing {
        0 => Ok(()),
        _ => Err(json::missing(r, names[missing.trailing_zeros() as usize])),
    }
}

/// A field [`check`]ed to be there. Only ever `None` by a bug here.
fn got<T>(value: Option<T>) -> T {
    value.expect("a field checked present")
}

/// Reads a field of a [`read_fields!`] struct into its place: one copy per type of field, not
/// per field.
#[inline(never)]
fn read_into<T: FromJson>(r: &mut Reader<'_>, field: &mut Option<T>) -> json::Result<()> {
    set(field, Some(T::read(r)?));
    Ok(())
}

/// Sets a field of a [`read_fields!`] struct that was `None` (not seen before): nothing to drop,
/// so no code to drop the value replaced, in every field's arm.
#[inline(always)]
fn set<T>(field: &mut Option<T>, value: Option<T>) {
    std::mem::forget(std::mem::replace(field, value));
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
        impl FromJson for $name {
            fn read(r: &mut Reader<'_>) -> json::Result<Self> {
                const NAMES: &[&str] = &[$($text,)*];
                const VARIANTS: &[$name] = &[$($name::$variant,)*];
                tag(r, NAMES).map(|index| VARIANTS[index])
            }
        }
    };
}

/// serde's `Deserialize` for a type read here, for the server's derived readers of its own
/// types that hold one (not the page's: nothing there calls it). serde reads the value as a
/// `serde_json::Value`, written back as text for [`crate::json`] to read: one reader of the
/// type's shape, and these messages are small.
macro_rules! deserialize_through_reader {
    ($($name:ty),*) => {$(
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
                json::from_str(&value.to_string()).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_through_reader!(DomainEvent, Fault);

/// A newtype read as the number it holds.
macro_rules! read_number {
    ($($name:ident($inner:ident),)*) => {$(
        impl FromJson for $name {
            fn read(r: &mut Reader<'_>) -> json::Result<Self> {
                r.$inner().map($name)
            }
        }
    )*};
}

read_number!(Micros(u64), MsgId(u64), OpId(u64), ServiceId(u16),);

/// `"all"`, or `{"between": [a, b]}`, as serde's derive writes the enum (and `{"all": null}`,
/// which it also read).
impl FromJson for LinkId {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        const NAMES: &[&str] = &["all", "between"];
        if r.peek() == Some(b'"') {
            return match tag(r, NAMES)? {
                0 => Ok(LinkId::All),
                _ => Err(r.error("invalid type: unit variant, expected tuple variant")),
            };
        }
        r.object("enum LinkId")?;
        let Some(key) = r.next_key()? else {
            return Err(r.error("invalid value: empty map, expected enum LinkId"));
        };
        let link = match &*key {
            "all" => {
                if !r.null()? {
                    return Err(r.invalid_type("unit variant"));
                }
                LinkId::All
            }
            "between" => {
                let (a, b) = FromJson::read(r)?;
                LinkId::Between(a, b)
            }
            other => return Err(unknown_variant(r, other, NAMES)),
        };
        if r.next_key()?.is_some() {
            return Err(r.error("expected `}`"));
        }
        Ok(link)
    }
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

read_fields!(EventFields as EventField {
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

fn drop_reason(r: &Reader<'_>, name: &str) -> json::Result<DropReason> {
    match name {
        "lost" => Ok(DropReason::Lost),
        "receiver_down" => Ok(DropReason::ReceiverDown),
        "partitioned" => Ok(DropReason::Partitioned),
        _ => Err(unknown_variant(
            r,
            name,
            &["lost", "receiver_down", "partitioned"],
        )),
    }
}

fn end_reason(r: &Reader<'_>, name: &str) -> json::Result<EndReason> {
    match name {
        "reached_until" => Ok(EndReason::ReachedUntil),
        "budget" => Ok(EndReason::Budget),
        "stopped" => Ok(EndReason::Stopped),
        _ => Err(unknown_variant(
            r,
            name,
            &["reached_until", "budget", "stopped"],
        )),
    }
}

/// The fields each [`EventType`] needs, in the order serde's derive checked them (by the
/// variant's fields' order).
const EVENT_REQUIRED: [&[u8]; 19] = {
    use EventField::*;
    macro_rules! fields {
        ($($field:ident),*) => {
            &[$($field as u8),*]
        };
    }
    [
        fields![service],
        fields![service],
        fields![msg, from, to, kind, label],
        fields![msg],
        fields![msg, copy],
        fields![msg, reason],
        fields![service, table, key, value, version],
        fields![service, queue, depth],
        fields![service, workers, busy, waiting],
        fields![op, name, client],
        fields![op, outcome, latency, observed],
        fields![service, event_id, published_at, applied],
        fields![service, key, text],
        fields![service, source_service, source_table, key, version],
        fields![fault],
        fields![fault],
        fields![service, peer, state],
        fields![text],
        fields![reason, messages_in_flight],
    ]
};

impl EventFields {
    fn into_event(self, seen: u64, r: &Reader<'_>) -> json::Result<TraceEvent> {
        let f = self;
        let at = required(r, f.at, "at")?;
        let tag = required(r, f.tag, "type")?;
        check(r, seen, Self::NAMES, EVENT_REQUIRED[tag as usize])?;
        // Read before any field is taken out of `f`, like every check that can fail.
        let (mut dropped, mut ended) = (DropReason::Lost, EndReason::ReachedUntil);
        match tag {
            EventType::Dropped => dropped = drop_reason(r, f.reason.as_deref().unwrap_or(""))?,
            EventType::RunEnded => ended = end_reason(r, f.reason.as_deref().unwrap_or(""))?,
            _ => {}
        }
        let event = match tag {
            EventType::ServiceUp => Event::ServiceUp {
                service: got(f.service),
            },
            EventType::ServiceDown => Event::ServiceDown {
                service: got(f.service),
            },
            EventType::Sent => Event::Sent {
                msg: got(f.msg),
                from: got(f.from),
                to: got(f.to),
                kind: got(f.kind),
                label: got(f.label).into(),
                op: f.op,
                caused_by: f.caused_by,
            },
            EventType::Delivered => Event::Delivered { msg: got(f.msg) },
            EventType::Duplicated => Event::Duplicated {
                msg: got(f.msg),
                copy: got(f.copy),
            },
            EventType::Dropped => Event::Dropped {
                msg: got(f.msg),
                reason: dropped,
            },
            EventType::RowWritten => Event::RowWritten {
                service: got(f.service),
                table: got(f.table),
                key: got(f.key),
                value: got(f.value),
                version: got(f.version),
            },
            EventType::QueueDepth => Event::QueueDepth {
                service: got(f.service),
                queue: got(f.queue),
                depth: got(f.depth),
            },
            EventType::ServiceLoad => Event::ServiceLoad {
                service: got(f.service),
                workers: got(f.workers),
                busy: got(f.busy),
                waiting: got(f.waiting),
            },
            EventType::OpStarted => Event::OpStarted {
                op: got(f.op),
                name: got(f.name),
                client: got(f.client),
            },
            EventType::OpFinished => Event::OpFinished {
                op: got(f.op),
                outcome: got(f.outcome),
                latency: got(f.latency),
                observed: got(f.observed),
            },
            EventType::EventHandled => Event::EventHandled {
                service: got(f.service),
                event_id: got(f.event_id),
                published_at: got(f.published_at),
                applied: got(f.applied),
            },
            EventType::PartialUpdateFlagged => Event::PartialUpdateFlagged {
                service: got(f.service),
                key: got(f.key),
                text: got(f.text),
            },
            EventType::WriteAborted => Event::WriteAborted {
                service: got(f.service),
                source_service: got(f.source_service),
                source_table: got(f.source_table),
                key: got(f.key),
                version: got(f.version),
            },
            EventType::FaultBegins => Event::FaultBegins {
                fault: got(f.fault),
            },
            EventType::FaultEnds => Event::FaultEnds {
                fault: got(f.fault),
            },
            EventType::CircuitChanged => Event::CircuitChanged {
                service: got(f.service),
                peer: got(f.peer),
                state: got(f.state),
            },
            EventType::Narration => Event::Narration { text: got(f.text) },
            EventType::RunEnded => Event::RunEnded {
                reason: ended,
                messages_in_flight: got(f.messages_in_flight),
            },
        };
        Ok(TraceEvent { at, event })
    }
}

impl FromJson for TraceEvent {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (fields, seen) = EventFields::read_seen(r)?;
        fields.into_event(seen, r)
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

impl FromJson for Outcome {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = OutcomeFields::read_seen(r)?;
        let status = required(r, f.status, "status")?;
        if !matches!(status, OutcomeStatus::Ok) {
            check_all(r, seen, OutcomeFields::NAMES)?;
        }
        Ok(match status {
            OutcomeStatus::Ok => Outcome::Ok,
            OutcomeStatus::Failed => Outcome::Failed {
                reason: got(f.reason),
            },
            OutcomeStatus::Degraded => Outcome::Degraded {
                reason: got(f.reason),
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

read_fields!(DomainEventFields as DomainEventField {
    event = "event",
    product = "product",
    name = "name",
    version = "version",
    order = "order",
    products = "products",
    created_at = "created_at",
    driver = "driver",
});

impl FromJson for DomainEvent {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        const REQUIRED: [&[u8]; 3] = {
            use DomainEventField::*;
            [
                &[product as u8, name as u8, version as u8],
                &[order as u8, products as u8, created_at as u8],
                &[driver as u8, name as u8, version as u8],
            ]
        };
        let (f, seen) = DomainEventFields::read_seen(r)?;
        let kind = required(r, f.event, "event")?;
        check(r, seen, DomainEventFields::NAMES, REQUIRED[kind as usize])?;
        Ok(match kind {
            DomainEventKind::ProductUpdated => DomainEvent::ProductUpdated(ProductName {
                product: got(f.product),
                name: got(f.name),
                version: got(f.version),
            }),
            DomainEventKind::OrderCreated => DomainEvent::OrderCreated(NewOrder {
                order: got(f.order),
                products: got(f.products),
                created_at: got(f.created_at),
            }),
            DomainEventKind::DriverUpdated => DomainEvent::DriverUpdated(DriverName {
                driver: got(f.driver),
                name: got(f.name),
                version: got(f.version),
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

read_fields!(FaultFields as FaultField {
    kind = "kind",
    service = "service",
    factor = "factor",
    link = "link",
    percent = "percent",
});

impl FromJson for Fault {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        const REQUIRED: [&[u8]; 6] = {
            use FaultField::*;
            [
                &[service as u8],
                &[service as u8, factor as u8],
                &[link as u8],
                &[link as u8, percent as u8],
                &[link as u8, percent as u8],
                &[link as u8, percent as u8],
            ]
        };
        let (f, seen) = FaultFields::read_seen(r)?;
        let kind = required(r, f.kind, "kind")?;
        check(r, seen, FaultFields::NAMES, REQUIRED[kind as usize])?;
        Ok(match kind {
            FaultKind::Crash => Fault::Crash {
                service: got(f.service),
            },
            FaultKind::Slow => Fault::Slow {
                service: got(f.service),
                factor: got(f.factor),
            },
            FaultKind::Partition => Fault::Partition { link: got(f.link) },
            FaultKind::Drop => Fault::Drop {
                link: got(f.link),
                percent: got(f.percent),
            },
            FaultKind::Duplicate => Fault::Duplicate {
                link: got(f.link),
                percent: got(f.percent),
            },
            FaultKind::Reorder => Fault::Reorder {
                link: got(f.link),
                percent: got(f.percent),
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

impl FromJson for EventsField {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        match r.peek() {
            Some(b'[') => Vec::read(r).map(EventsField::Batch),
            Some(b'0'..=b'9') => r.u64().map(EventsField::Count),
            _ => Err(r.invalid_type("a list of trace events or a count")),
        }
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

read_fields!(FrameFields as FrameField {
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

/// The fields a header needs (all of [`TraceHeader`]'s but its `faults`), in its order.
const HEADER_REQUIRED: &[u8] = {
    use FrameField::*;
    &[
        protocol_version as u8,
        scenario as u8,
        seed as u8,
        until as u8,
        knobs as u8,
        services as u8,
        links as u8,
        network as u8,
        copies as u8,
    ]
};

impl FrameFields {
    /// The header a `header` frame or a trace's first line gives, its fields [`check`]ed.
    fn into_header(self) -> TraceHeader {
        let f = self;
        TraceHeader {
            protocol_version: got(f.protocol_version),
            scenario: got(f.scenario),
            seed: got(f.seed),
            until: got(f.until),
            knobs: got(f.knobs),
            services: got(f.services),
            links: got(f.links),
            network: got(f.network),
            copies: got(f.copies),
            faults: f.faults.unwrap_or_default(),
        }
    }
}

/// A trace's first line: the header's fields, without a `type` (read, if there, as a frame's).
impl FromJson for TraceHeader {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = FrameFields::read_seen(r)?;
        check(r, seen, FrameFields::NAMES, HEADER_REQUIRED)?;
        Ok(f.into_header())
    }
}

impl FromJson for ServerFrame {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        use FrameField as F;
        let (f, seen) = FrameFields::read_seen(r)?;
        let tag = required(r, f.tag, "type")?;
        // Every check that can fail, before any field is taken out of `f`.
        let required: &[u8] = match tag {
            FrameType::Header => HEADER_REQUIRED,
            FrameType::Events => &[F::events as u8],
            FrameType::End => &[F::trace_hash as u8, F::events as u8],
            FrameType::Error => &[F::message as u8],
            FrameType::Resync => &[F::missed_frames as u8],
            FrameType::LiveRole => &[F::role as u8],
        };
        check(r, seen, FrameFields::NAMES, required)?;
        let expected = match (tag, &f.events) {
            (FrameType::Events, Some(EventsField::Count(_))) => "a list of trace events",
            (FrameType::End, Some(EventsField::Batch(_))) => "u64",
            _ => "",
        };
        if !expected.is_empty() {
            return Err(r.error(format!(
                "invalid type: the other kind of `events`, expected {expected}"
            )));
        }
        if let FrameType::LiveRole = tag {
            let role: &[u8] = match got(f.role) {
                RoleKind::Control => &[F::token as u8],
                RoleKind::Shared => &[],
                RoleKind::Watch => &[F::reason as u8],
            };
            check(r, seen, FrameFields::NAMES, role)?;
        }
        Ok(match tag {
            FrameType::Header => ServerFrame::Header(f.into_header()),
            FrameType::Events => match got(f.events) {
                EventsField::Batch(events) => ServerFrame::Events { events },
                EventsField::Count(_) => unreachable!("checked above"),
            },
            FrameType::End => ServerFrame::End {
                trace_hash: got(f.trace_hash),
                events: match got(f.events) {
                    EventsField::Count(count) => count,
                    EventsField::Batch(_) => unreachable!("checked above"),
                },
            },
            FrameType::Error => ServerFrame::Error {
                message: got(f.message),
            },
            FrameType::Resync => ServerFrame::Resync {
                missed_frames: got(f.missed_frames),
            },
            FrameType::LiveRole => ServerFrame::LiveRole(match got(f.role) {
                RoleKind::Control => LiveRole::Control {
                    token: got(f.token),
                },
                RoleKind::Shared => LiveRole::Shared,
                RoleKind::Watch => LiveRole::Watch {
                    reason: got(f.reason),
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

impl FromJson for ServiceInfo {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = ServiceInfoFields::read_seen(r)?;
        check_all(r, seen, ServiceInfoFields::NAMES)?;
        Ok(ServiceInfo {
            id: got(f.id),
            name: got(f.name),
            role: got(f.role),
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

impl FromJson for CopyDecl {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = CopyDeclFields::read_seen(r)?;
        check_all(r, seen, CopyDeclFields::NAMES)?;
        Ok(CopyDecl {
            copy_service: got(f.copy_service),
            copy_table: got(f.copy_table),
            source_service: got(f.source_service),
            source_table: got(f.source_table),
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

impl FromJson for LinkSpec {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = LinkSpecFields::read_seen(r)?;
        check_all(r, seen, LinkSpecFields::NAMES)?;
        Ok(LinkSpec {
            latency: got(f.latency),
            jitter: got(f.jitter),
            loss_per_million: got(f.loss_per_million),
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

impl FromJson for FaultSpec {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = FaultSpecFields::read_seen(r)?;
        check(r, seen, FaultSpecFields::NAMES, &[0, 2])?;
        Ok(FaultSpec {
            at: got(f.at),
            // Absent or null: until the run ends, as with serde's derive.
            lasts: f.lasts,
            fault: got(f.fault),
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

impl FromJson for Observed {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (f, seen) = ObservedFields::read_seen(r)?;
        check_all(r, seen, ObservedFields::NAMES)?;
        Ok(Observed {
            source_service: got(f.source_service),
            source_table: got(f.source_table).into(),
            key: got(f.key).into(),
            version: got(f.version),
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
            })
            // A service with a capacity, so its load is written too.
            .chain(std::iter::once(simulate(&RunRequest {
                scenario: "request-response".into(),
                seed: 5,
                until_s: 5.0,
                knobs: [
                    ("product_workers".to_string(), 1.0),
                    ("product_service_ms".to_string(), 100.0),
                ]
                .into(),
                faults: vec![],
            })))
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
            // Written by hand (`protocol/write.rs`) byte for byte as serde_json writes them.
            let serde_line = |line: String| line + "\n";
            assert_eq!(
                header_line(&trace.header),
                serde_line(serde_json::to_string(&trace.header).unwrap())
            );
            for event in &trace.events {
                assert_eq!(
                    event_line(event),
                    serde_line(serde_json::to_string(event).unwrap())
                );
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
            assert_eq!(json::from_str::<ServerFrame>(&json).unwrap(), frame);
            let sorted = keys_sorted(&json);
            assert_eq!(json::from_str::<ServerFrame>(&sorted).unwrap(), frame);
        }
        let header = serde_json::to_value(ServerFrame::Header(trace.header.clone())).unwrap();
        let mut without_faults = header.clone();
        without_faults.as_object_mut().unwrap().remove("faults");
        let read: ServerFrame = json::from_str(&without_faults.to_string()).unwrap();
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
                json::from_str::<DomainEvent>(&json).unwrap(),
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
                json::from_str::<DomainEvent>(&reordered).unwrap(),
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
            // Also from bytes through serde (as the live runtime reads them off the broker),
            // which reads through `json` too.
            assert_eq!(
                serde_json::from_slice::<DomainEvent>(json.as_bytes()).unwrap(),
                event
            );
        }
        let error = |json: &str| json::from_str::<DomainEvent>(json).unwrap_err().to_string();
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
        let error = |json: &str| json::from_str::<TraceEvent>(json).unwrap_err().to_string();
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
            json::from_str::<TraceEvent>(extra).unwrap(),
            TraceEvent {
                at: Micros(1),
                event: Event::Delivered { msg: MsgId(4) },
            }
        );
        check(
            r#"{"at":1,"type":"op_finished","op":1,"outcome":{"status":"failed"},"latency":3,"observed":[]}"#,
            "missing field `reason`",
        );
        let frame = |json: &str| json::from_str::<ServerFrame>(json).unwrap_err().to_string();
        assert!(frame(r#"{"type":"events","events":3}"#).contains("list of trace events"));
        assert!(frame(r#"{"type":"end","trace_hash":"00","events":[]}"#).contains("u64"));
        assert!(frame(r#"{"type":"header","protocol_version":1}"#).contains("missing field"));
        // A fault's `lasts` may be null or absent (until the run ends), as with serde's derive.
        for json in [
            r#"{"at":5,"fault":{"kind":"crash","service":2}}"#,
            r#"{"lasts":null,"fault":{"kind":"crash","service":2},"at":5}"#,
        ] {
            assert_eq!(
                json::from_str::<super::super::FaultSpec>(json).unwrap(),
                super::super::FaultSpec {
                    at: Micros(5),
                    lasts: None,
                    fault: Fault::Crash {
                        service: ServiceId(2),
                    },
                }
            );
        }
        let service = |json: &str| json::from_str::<ServiceInfo>(json).map_err(|e| e.to_string());
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
        let read: TraceEvent = json::from_str(sent).unwrap();
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
