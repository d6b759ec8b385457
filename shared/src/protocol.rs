//! The trace: the one contract between every source (simulation, live backend, recorded file) and
//! every view. Only the types in this module are serialized; changing them is a versioned act.
//!
//! A trace is a [`TraceHeader`] followed by [`TraceEvent`]s in time order. As JSON lines, the
//! header is the first line and each event one line after it.

use crate::decimal::Decimal;
use crate::slot_map::{SlotMap, SlotSet};
use crate::time::Micros;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Knob values by name, in the order of their names. A [`SlotMap`], not a `BTreeMap<String, f64>`,
/// so that it shares the tree of every map keyed by a `String` (about 7.6 KB of the page's
/// WebAssembly for a tree of its own); it reads and writes the same JSON.
pub type KnobMap = SlotMap<String, f64>;

mod label;
mod read;
mod row_key;
mod write;

pub use label::Label;
pub use row_key::RowKey;

/// The version of this format. Bump it on any change that an old reader would misread.
///
/// 2: network faults begin and end in the trace (`fault_begins`, `fault_ends`), so what was
/// unavailable when is read from the trace alone; a coordinator's rollback says which write it
/// aborted (`write_aborted`).
pub const PROTOCOL_VERSION: u32 = 2;

/// A service of the run, by index into [`TraceHeader::services`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceId(pub u16);

impl crate::slot_map::DenseKey for ServiceId {
    fn number(self) -> usize {
        usize::from(self.0)
    }
}

/// A message, unique within a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MsgId(pub u64);

impl MsgId {
    /// The message's number: its key in a [`MsgMap`] or [`MsgSet`].
    pub fn key(self) -> u64 {
        self.0
    }
}

/// A map by message, keyed by [`MsgId::key`]: a `SlotMap<u64, _>`'s tree is the one every map
/// keyed by a `u64` shares, where `MsgId` keys compiled to a tree of their own.
pub type MsgMap<V> = SlotMap<u64, V>;

/// A set of messages, keyed by [`MsgId::key`] for the same reason as [`MsgMap`].
pub type MsgSet = SlotSet<u64>;

/// A client operation, unique within a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub u64);

impl OpId {
    /// The operation's number: its key in an [`OpMap`] or [`OpSet`].
    pub fn key(self) -> u64 {
        self.0
    }
}

/// A map by operation, keyed by [`OpId::key`]: a `SlotMap<u64, _>`'s tree is the one every map
/// keyed by a `u64` shares, where `OpId` keys compiled to a tree of their own.
pub type OpMap<V> = SlotMap<u64, V>;

/// A set of operations, keyed by [`OpId::key`] for the same reason as [`OpMap`].
pub type OpSet = SlotSet<u64>;

/// What a service is, so views can draw it apart.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceRole {
    /// Generates the workload: the users of the system.
    Client,
    /// A microservice with its own database.
    Service,
    /// A message broker holding one queue per subscriber.
    Broker,
    /// Coordinates one update across several services and rolls it back on failure (the gateway
    /// pattern); it has its own database, a log of the updates it runs.
    Coordinator,
}

/// One service of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceInfo {
    /// Its id, equal to its index in the header.
    pub id: ServiceId,
    /// Its display name, such as `Order`.
    pub name: String,
    /// What it is.
    pub role: ServiceRole,
}

/// A table that holds a copy of another service's table, so views can mark stale rows.
///
/// A copy row's key is its source row's key, or ends with `/` and it when the copy holds one
/// row per use: `3/7` is product 7's name as order 3 stored it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CopyDecl {
    /// The service holding the copy.
    pub copy_service: ServiceId,
    /// The copy's table name.
    pub copy_table: String,
    /// The service owning the source of truth.
    pub source_service: ServiceId,
    /// The source table name.
    pub source_table: String,
}

impl CopyDecl {
    /// The key of the source row that the copy row at `copy_key` copies.
    pub fn source_key(copy_key: &str) -> &str {
        copy_key.rsplit('/').next().unwrap_or(copy_key)
    }
}

/// How every link of the network behaves.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkSpec {
    /// The smallest one-way delay.
    pub latency: Micros,
    /// Up to this much is added to each message's delay, uniformly.
    pub jitter: Micros,
    /// Messages lost per million sent.
    pub loss_per_million: u32,
}

/// The first line of a trace: what was run, and the topology.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceHeader {
    /// Always [`PROTOCOL_VERSION`] when written; readers reject other versions.
    pub protocol_version: u32,
    /// The scenario's name, such as `request-response`.
    pub scenario: String,
    /// The seed of the run's generator.
    pub seed: u64,
    /// The run covers `0..until`.
    pub until: Micros,
    /// Every knob's value, defaults included.
    pub knobs: KnobMap,
    /// The services, indexed by [`ServiceId`].
    pub services: Vec<ServiceInfo>,
    /// Which services talk to each other, as unordered pairs.
    pub links: Vec<(ServiceId, ServiceId)>,
    /// How those links behave, so views know how long a hop takes before it arrives.
    pub network: LinkSpec,
    /// Tables that copy other tables.
    pub copies: Vec<CopyDecl>,
    /// Every fault of the run, from its knobs and from the faults asked for, in order of start
    /// (none when absent).
    pub faults: Vec<FaultSpec>,
}

/// A fault injected into a run for a while: by a scenario's knobs, by `--fault` on the command
/// line, by the URL, or by a click in the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultSpec {
    /// When it begins.
    pub at: Micros,
    /// How long it lasts; `None` means until the run ends.
    pub lasts: Option<Micros>,
    /// What goes wrong.
    pub fault: Fault,
}

impl FaultSpec {
    /// When it ends, if it does.
    pub fn ends_at(&self) -> Option<Micros> {
        self.lasts.map(|lasts| self.at + lasts)
    }
}

/// What goes wrong while a [`FaultSpec`] is in force.
/// Read by hand (`protocol/read.rs`): serde's derive for tagged enums weighs on the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The service crashes, and restarts when the fault ends.
    Crash {
        /// Which service.
        service: ServiceId,
    },
    /// Every message to or from the service takes `factor` times as long.
    Slow {
        /// Which service.
        service: ServiceId,
        /// How many times slower; at least 2.
        factor: u32,
    },
    /// The link loses every message, both ways, and no sender is told.
    Partition {
        /// The link.
        link: LinkId,
    },
    /// The link loses this share of its messages.
    Drop {
        /// The link.
        link: LinkId,
        /// Percent of messages lost, 1 to 100.
        percent: u32,
    },
    /// The link delivers a second copy of this share of its messages.
    Duplicate {
        /// The link.
        link: LinkId,
        /// Percent of messages duplicated, 1 to 100.
        percent: u32,
    },
    /// The link holds back this share of its messages for one to three extra hops, so they
    /// arrive after messages sent later.
    Reorder {
        /// The link.
        link: LinkId,
        /// Percent of messages held back, 1 to 100.
        percent: u32,
    },
}

/// A link a fault applies to: between two services (both ways), or every link.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkId {
    /// Every link of the network.
    All,
    /// The link between two services, both ways.
    Between(ServiceId, ServiceId),
}

impl Fault {
    /// The services the fault names: its service, or its link's two (none for every link).
    fn services(&self) -> [Option<ServiceId>; 2] {
        match self {
            Fault::Crash { service } | Fault::Slow { service, .. } => [Some(*service), None],
            Fault::Partition { link }
            | Fault::Drop { link, .. }
            | Fault::Duplicate { link, .. }
            | Fault::Reorder { link, .. } => match link {
                LinkId::All => [None, None],
                LinkId::Between(a, b) => [Some(*a), Some(*b)],
            },
        }
    }
}

impl LinkId {
    /// True when a message from `from` to `to` travels on this link.
    pub fn carries(self, from: ServiceId, to: ServiceId) -> bool {
        match self {
            LinkId::All => true,
            LinkId::Between(a, b) => (a, b) == (from, to) || (b, a) == (from, to),
        }
    }
}

/// One thing that happened, at a time since the run started.
/// Read by hand (`protocol/read.rs`): serde's derive for tagged enums weighs on the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEvent {
    /// When it happened.
    pub at: Micros,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// The kind of a message, which views show by colour and shape.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A call that waits for an answer.
    Request,
    /// The answer to a request.
    Response,
    /// A fact published or delivered through a broker.
    Event,
    /// The acknowledgement of a delivered event.
    Ack,
    /// A compensation: it undoes an update that a coordinator could not complete everywhere (a
    /// saga's rollback), or drops an update prepared under two-phase commit (an abort).
    Rollback,
}

impl MessageKind {
    /// Its name as the trace's JSON spells it, which the page also uses as a CSS class.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
            MessageKind::Event => "event",
            MessageKind::Ack => "ack",
            MessageKind::Rollback => "rollback",
        }
    }
}

/// Why a message never arrived.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The network lost it.
    Lost,
    /// The receiver was down: the connection was refused.
    ReceiverDown,
    /// The link was partitioned: the message vanished and its sender was not told.
    Partitioned,
}

// `DropReason::COUNT` counts every reason (they index `Metrics::dropped_by_reason`).
const _: () = assert!(DropReason::Partitioned as usize + 1 == DropReason::COUNT);

impl DropReason {
    /// How many reasons there are.
    pub const COUNT: usize = 3;

    /// Plain words for captions and logs.
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::Lost => "lost by the network",
            DropReason::ReceiverDown => "refused: the receiver is down",
            DropReason::Partitioned => "lost: the link is partitioned",
        }
    }
}

/// How a client operation ended.
/// Read by hand (`protocol/read.rs`): serde's derive for tagged enums weighs on the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed, and why.
    Failed {
        /// A short explanation such as `Product timed out after 500 ms`.
        reason: String,
    },
    /// It was answered, but with less than it asked for: a read answered from a fallback (a
    /// name Order remembered, or none) because a circuit breaker kept it from calling Product.
    Degraded {
        /// What was left out or stood in for, such as `circuit open: 1 name cached`.
        reason: String,
    },
}

impl Outcome {
    /// True when it was answered: [`Outcome::Ok`], or [`Outcome::Degraded`] (an answer all the
    /// same, whose versions are judged like any other).
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Degraded { .. })
    }

    /// True for [`Outcome::Degraded`].
    pub fn is_degraded(&self) -> bool {
        matches!(self, Outcome::Degraded { .. })
    }
}

/// The state of a circuit breaker, as the trace records it when it changes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are not made: reads get the fallback until the cool-down ends.
    Open,
    /// The cool-down ended: one call (the probe) goes through; its answer closes or reopens it.
    HalfOpen,
}

impl CircuitState {
    /// Its name in captions and on the map, such as `half-open`.
    pub fn name(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

/// A value a read returned, and which version of its source of truth it reflects, so a fold of
/// the trace can tell whether the read was stale.
///
/// A read reports one for each row it saw, so the simulation makes several per read: the table is
/// borrowed when it is a service's own constant name, and a numeric key is held as its digits,
/// so that making one allocates nothing (issue 9's engine benchmark).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed {
    /// The service owning the source of truth.
    pub source_service: ServiceId,
    /// The source table.
    pub source_table: Cow<'static, str>,
    /// The row's key.
    pub key: RowKey,
    /// The version the read saw.
    pub version: u64,
}

impl Observed {
    /// The source row the read saw, as `(service, table, key)`.
    pub fn source_row(&self) -> (ServiceId, String, String) {
        (
            self.source_service,
            self.source_table.to_string(),
            self.key.to_string(),
        )
    }

    /// The bytes it holds on the heap: its table's and key's text, unless borrowed or inline.
    pub fn heap_capacity(&self) -> usize {
        let table = match &self.source_table {
            Cow::Owned(table) => table.capacity(),
            Cow::Borrowed(_) => 0,
        };
        let key = match &self.key {
            RowKey::Text(key) => key.capacity(),
            RowKey::Number(_) => 0,
        };
        table + key
    }
}

/// Why a run ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// It reached the requested end time.
    ReachedUntil,
    /// It reached the bound on trace events or on pending work.
    Budget,
    /// It was stopped from outside (a live run).
    Stopped,
}

/// Everything a trace can record.
/// Read by hand (`protocol/read.rs`): serde's derive for tagged enums weighs on the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A service started or restarted.
    ServiceUp {
        /// Which one.
        service: ServiceId,
    },
    /// A service crashed or was stopped.
    ServiceDown {
        /// Which one.
        service: ServiceId,
    },
    /// A message left its sender.
    Sent {
        /// Its id.
        msg: MsgId,
        /// The sender.
        from: ServiceId,
        /// The receiver.
        to: ServiceId,
        /// Request, response, event or ack.
        kind: MessageKind,
        /// A short label such as `GET /products/7`.
        label: Label,
        /// The client operation it serves, if any.
        op: Option<OpId>,
        /// The message whose handling sent it, if any.
        caused_by: Option<MsgId>,
    },
    /// A message reached its receiver.
    Delivered {
        /// Which one.
        msg: MsgId,
    },
    /// The network made a second copy of a message, which travels on its own from the same
    /// sender to the same receiver.
    Duplicated {
        /// The message copied.
        msg: MsgId,
        /// The copy's id.
        copy: MsgId,
    },
    /// A message will never arrive.
    Dropped {
        /// Which one.
        msg: MsgId,
        /// Why.
        reason: DropReason,
    },
    /// A row of a service's own table was written.
    RowWritten {
        /// The service owning the table.
        service: ServiceId,
        /// The table.
        table: String,
        /// The row's key.
        key: String,
        /// The row's new value.
        value: String,
        /// The row's new version; each write of a source row increments it.
        version: u64,
    },
    /// The length of a queue changed.
    QueueDepth {
        /// The service holding the queue (a broker).
        service: ServiceId,
        /// The queue, named after its subscriber.
        queue: String,
        /// Messages waiting or unacknowledged.
        depth: u32,
    },
    /// A service with limited capacity ([`crate::services::Capacity`]) changed how many requests
    /// it is working on or has waiting. Only services given a capacity record it, so runs without
    /// one keep their traces.
    ServiceLoad {
        /// The service.
        service: ServiceId,
        /// Its workers: how many requests it works on at once; 0 means unlimited.
        workers: u32,
        /// Requests being worked on now.
        busy: u32,
        /// Requests waiting for a worker now.
        waiting: u32,
    },
    /// A client operation began.
    OpStarted {
        /// Its id.
        op: OpId,
        /// What it does, such as `read order`.
        name: String,
        /// The client running it.
        client: ServiceId,
    },
    /// A client operation ended.
    OpFinished {
        /// Its id.
        op: OpId,
        /// Ok, or failed and why.
        outcome: Outcome,
        /// Time from its start to its end.
        latency: Micros,
        /// The versions a read saw, for staleness.
        observed: Vec<Observed>,
    },
    /// A subscriber finished handling an event the broker delivered: it applied it, or dropped it
    /// as one it had already processed. The same event handled twice is a duplicate.
    EventHandled {
        /// The subscriber.
        service: ServiceId,
        /// The event's id ([`DomainEvent::id`]), such as `OrderCreated#12`.
        event_id: String,
        /// When the event was published, so views can tell how long it took to arrive.
        published_at: Micros,
        /// False when the subscriber dropped it as already processed.
        applied: bool,
    },
    /// A coordinator found an update it had left half done (it crashed mid-way), so the copies of
    /// row `key` may disagree; views count it and show it as an inconsistency.
    PartialUpdateFlagged {
        /// The coordinator.
        service: ServiceId,
        /// The key of the row whose copies may disagree, such as a product id.
        key: String,
        /// What was left undone, in plain words.
        text: String,
    },
    /// A write that will never be confirmed: the coordinator of an update rolled it back, so
    /// every read that returned this version of the row read an aborted write.
    WriteAborted {
        /// The service that decided (a coordinator).
        service: ServiceId,
        /// The service owning the source of truth.
        source_service: ServiceId,
        /// The source table.
        source_table: String,
        /// The row's key.
        key: String,
        /// The version that is rolled back.
        version: u64,
    },
    /// A network fault began: a slow service, a partition, lost, duplicated or reordered
    /// messages. (A crash shows as `service_down` and `service_up`.) Faults stack: each stays in
    /// force until its own `fault_ends`.
    FaultBegins {
        /// What goes wrong.
        fault: Fault,
    },
    /// A network fault that began earlier ended.
    FaultEnds {
        /// The fault, as it began.
        fault: Fault,
    },
    /// A circuit breaker of `service` on its calls to `peer` changed state. Absent from runs
    /// without a breaker.
    CircuitChanged {
        /// The caller holding the breaker (Order).
        service: ServiceId,
        /// The service it calls (Product).
        peer: ServiceId,
        /// The new state.
        state: CircuitState,
    },
    /// A sentence explaining what just happened.
    Narration {
        /// The sentence.
        text: String,
    },
    /// The run ended; messages still in flight stay in flight.
    RunEnded {
        /// Why it ended.
        reason: EndReason,
        /// Messages sent but neither delivered nor dropped when it ended.
        messages_in_flight: u64,
    },
}

/// What one message carries between services. Views see only its label; the live runtime sends
/// it as the body of real HTTP calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// Client → Order: read an order with its product names.
    ReadOrder {
        /// The order.
        order: u64,
    },
    /// Order → client: the order with its product names.
    OrderDetails {
        /// The order.
        order: u64,
        /// Its products, as Order knows them.
        items: Vec<ProductName>,
        /// Why some names are a fallback (remembered, or unavailable at version 0), when they
        /// are; absent for a full answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        degraded: Option<String>,
    },
    /// Order → Product: look a product up.
    GetProduct {
        /// The product.
        product: u64,
        /// When the caller gives up on this call (run time), if it says: Product drops the
        /// lookup instead of doing it once this has passed. Absent without deadlines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<Micros>,
    },
    /// Product → Order: the product as Product knows it.
    ProductInfo(ProductName),
    /// Client → Product: rename a product.
    RenameProduct {
        /// The product.
        product: u64,
        /// Its new name.
        name: String,
    },
    /// Product → client: the rename is stored.
    Renamed {
        /// The product.
        product: u64,
        /// Its new version.
        version: u64,
    },
    /// Product → Order: a product was renamed; update every copy of its name (the "update both"
    /// way of keeping duplicated data in step).
    UpdateProductName(ProductName),
    /// Order → Product: that many copies now hold the new name.
    ProductNameUpdated {
        /// The product.
        product: u64,
        /// How many order lines were rewritten.
        rows: u64,
    },
    /// Publisher → broker: publish an event on a topic.
    Publish(DomainEvent),
    /// Broker → subscriber: one delivery of a queued event.
    Deliver {
        /// The delivery's tag, echoed by the ack.
        tag: u64,
        /// True when this event was delivered before without an ack.
        redelivered: bool,
        /// The event.
        event: DomainEvent,
    },
    /// Broker → publisher: the event is stored in every queue that subscribes to it.
    PublishConfirmed {
        /// The event's id ([`DomainEvent::id`]).
        event_id: String,
    },
    /// Subscriber → broker: the delivery is processed.
    Ack {
        /// The delivery's tag.
        tag: u64,
    },
    /// Client → Order: create an order.
    CreateOrder {
        /// Its number, chosen by the client so that a retried create is recognised.
        order: u64,
        /// The products ordered, one unit each.
        products: Vec<u64>,
    },
    /// Order → client: the order is stored.
    OrderAccepted {
        /// The order.
        order: u64,
    },
    /// Coordinator → Product and Order: store this name at this version (the gateway pattern).
    /// A service applies it only when `version` is newer than its row, and answers `Renamed`.
    ApplyRename {
        /// The product.
        product: u64,
        /// Its new name.
        name: String,
        /// The version the coordinator gave this update.
        version: u64,
    },
    /// Coordinator → Product and Order: undo a failed update by storing the old name again, at a
    /// version newer than the update's, so no row moves backwards and a late update cannot land.
    RollBackRename {
        /// The product.
        product: u64,
        /// The name it had before the failed update.
        name: String,
        /// The rollback's version, one past the failed update's.
        version: u64,
    },
    /// Coordinator → Product and Order, under two-phase commit: hold this name at this version
    /// in the table of prepared names, keep serving the committed one, and lock the row against
    /// other renames until the decision. A service votes yes with `Renamed` or no with `Failed`.
    PrepareRename {
        /// The product.
        product: u64,
        /// The name to hold.
        name: String,
        /// The version the coordinator gave this update.
        version: u64,
    },
    /// Coordinator → Product and Order, under two-phase commit: the update prepared at `version`
    /// is committed; store the held name and unlock the row. Answered `Renamed`, also when
    /// repeated.
    CommitRename {
        /// The product.
        product: u64,
        /// The name committed.
        name: String,
        /// The prepared update's version.
        version: u64,
    },
    /// Coordinator → Product and Order, under two-phase commit: drop the update prepared at
    /// `version` (or refuse it for good if its prepare has not arrived) and unlock the row.
    /// Answered `Renamed`, also when repeated.
    AbortRename {
        /// The product.
        product: u64,
        /// The name that is not taken.
        name: String,
        /// The aborted update's version.
        version: u64,
    },
    /// Any service → caller: the request failed.
    Failed {
        /// Why.
        reason: String,
    },
    // The hybrid scenario's Ride and Driver.
    /// Client → Ride: read a ride with its driver's name, rating and car.
    ReadRide {
        /// The ride.
        ride: u64,
    },
    /// Ride → client: the ride with its driver, as Ride knows them.
    RideDetails {
        /// The ride.
        ride: u64,
        /// The driver's name, from Ride's own copy.
        driver: DriverName,
        /// The driver's rating and car, from Ride's cache or from Driver.
        details: DriverDetails,
    },
    /// Ride → Driver: look a driver's rating and car up.
    GetDriverDetails {
        /// The driver.
        driver: u64,
    },
    /// Driver → Ride: the driver's rating and car as Driver knows them.
    DriverDetailsInfo(DriverDetails),
    /// Client → Driver: rename a driver.
    RenameDriver {
        /// The driver.
        driver: u64,
        /// The new name.
        name: String,
    },
    /// Client → Driver: change a driver's rating.
    RateDriver {
        /// The driver.
        driver: u64,
        /// The new rating, in tenths of a star (47 is 4.7★).
        rating_tenths: u32,
    },
    /// Driver → client: the new name is stored.
    DriverRenamed {
        /// The driver.
        driver: u64,
        /// The new version of the driver's `drivers` row.
        version: u64,
    },
    /// Driver → client: the new rating is stored.
    DriverRated {
        /// The driver.
        driver: u64,
        /// The new version of the driver's `driver_details` row.
        version: u64,
    },
}

/// A product's name at a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductName {
    /// The product.
    pub product: u64,
    /// Its name.
    pub name: String,
    /// The version of Product's row this name comes from.
    pub version: u64,
}

/// An order as Order announces it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewOrder {
    /// The order.
    pub order: u64,
    /// Its products, one unit each.
    pub products: Vec<u64>,
    /// When Order stored it and published the event.
    pub created_at: Micros,
}

/// A driver's name at a version of Driver's `drivers` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverName {
    /// The driver.
    pub driver: u64,
    /// Their name.
    pub name: String,
    /// The version of Driver's row this name comes from.
    pub version: u64,
}

/// A driver's rating and car at a version of Driver's `driver_details` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverDetails {
    /// The driver.
    pub driver: u64,
    /// The rating, in tenths of a star (48 is 4.8★).
    pub rating_tenths: u32,
    /// The car, such as `Toyota Prius`.
    pub car: String,
    /// The version of Driver's row these come from.
    pub version: u64,
}

impl DriverDetails {
    /// The rating as people write it, such as `4.8★`.
    pub fn rating_text(&self) -> String {
        rating_text(self.rating_tenths)
    }
}

/// A rating in tenths of a star as people write it: 48 → `4.8★`.
pub fn rating_text(rating_tenths: u32) -> String {
    format!("{}.{}★", rating_tenths / 10, rating_tenths % 10)
}

/// A fact a service publishes through the broker. Read by hand (`read.rs`): the derived reader of
/// an internally tagged enum buffers the object first, and the page reads these back from a durable
/// queue's rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DomainEvent {
    /// Product renamed a product.
    ProductUpdated(ProductName),
    /// Order stored a new order.
    OrderCreated(NewOrder),
    /// Driver renamed a driver.
    DriverUpdated(DriverName),
}

impl DomainEvent {
    /// The topic it is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            DomainEvent::ProductUpdated(_) => "product",
            DomainEvent::OrderCreated(_) => "order",
            DomainEvent::DriverUpdated(_) => "driver",
        }
    }

    /// An id unique to this event within a run, however often it is delivered: what an
    /// idempotent consumer remembers, such as `OrderCreated#12`.
    pub fn id(&self) -> String {
        match self {
            DomainEvent::ProductUpdated(p) => format!("ProductUpdated#{}v{}", p.product, p.version),
            DomainEvent::OrderCreated(o) => format!("OrderCreated#{}", o.order),
            DomainEvent::DriverUpdated(d) => format!("DriverUpdated#{}v{}", d.driver, d.version),
        }
    }

    /// The event in words for captions, such as `OrderCreated #12`.
    pub fn caption(&self) -> String {
        match self {
            DomainEvent::ProductUpdated(p) => {
                format!("ProductUpdated #{} (v{})", p.product, p.version)
            }
            DomainEvent::OrderCreated(o) => format!("OrderCreated #{}", o.order),
            DomainEvent::DriverUpdated(d) => {
                format!("DriverUpdated #{} (v{})", d.driver, d.version)
            }
        }
    }

    /// A short label such as `ProductUpdated{id:7,v:3}`.
    pub fn label(&self) -> String {
        match self {
            DomainEvent::ProductUpdated(p) => {
                format!("ProductUpdated{{id:{},v:{}}}", p.product, p.version)
            }
            DomainEvent::OrderCreated(o) => format!("OrderCreated{{order:{}}}", o.order),
            DomainEvent::DriverUpdated(d) => {
                format!("DriverUpdated{{id:{},v:{}}}", d.driver, d.version)
            }
        }
    }
}

impl Payload {
    /// When the caller gives up on this request, if it said (a lookup under `deadlines=on`).
    pub fn deadline(&self) -> Option<Micros> {
        match self {
            Payload::GetProduct { deadline, .. } => *deadline,
            _ => None,
        }
    }

    /// Request, response, event or ack.
    pub fn kind(&self) -> MessageKind {
        match self {
            Payload::ReadOrder { .. }
            | Payload::GetProduct { .. }
            | Payload::RenameProduct { .. }
            | Payload::UpdateProductName(_)
            | Payload::CreateOrder { .. }
            | Payload::ApplyRename { .. }
            | Payload::PrepareRename { .. }
            | Payload::CommitRename { .. }
            | Payload::ReadRide { .. }
            | Payload::GetDriverDetails { .. }
            | Payload::RenameDriver { .. }
            | Payload::RateDriver { .. } => MessageKind::Request,
            Payload::RollBackRename { .. } | Payload::AbortRename { .. } => MessageKind::Rollback,
            Payload::OrderDetails { .. }
            | Payload::ProductInfo(_)
            | Payload::Renamed { .. }
            | Payload::ProductNameUpdated { .. }
            | Payload::OrderAccepted { .. }
            | Payload::Failed { .. }
            | Payload::RideDetails { .. }
            | Payload::DriverDetailsInfo(_)
            | Payload::DriverRenamed { .. }
            | Payload::DriverRated { .. } => MessageKind::Response,
            Payload::Publish(_) | Payload::Deliver { .. } => MessageKind::Event,
            Payload::Ack { .. } | Payload::PublishConfirmed { .. } => MessageKind::Ack,
        }
    }

    /// A short label for views, in the style of the HTTP call or event it stands for.
    ///
    /// The labels of request/response's reads, sent with nearly every message of its runs, are
    /// joined from their parts in place ([`Label::join`]) rather than formatted: in the page's
    /// WebAssembly, built for size, `format!` is a run of calls through `core::fmt` and each
    /// `String` an allocation (issue 9's engine benchmark).
    pub fn label(&self) -> Label {
        Label::from(match self {
            Payload::ReadOrder { order } => {
                return Label::join(&["GET /orders/", &Decimal::new(*order)]);
            }
            Payload::OrderDetails {
                order,
                items,
                degraded,
            } => match degraded {
                None => {
                    return Label::join(&[
                        "200 order ",
                        &Decimal::new(*order),
                        ": ",
                        &Decimal::new(items.len() as u64),
                        " item(s)",
                    ]);
                }
                Some(_) => format!("200 order {order}: {} item(s), degraded", items.len()),
            },
            Payload::GetProduct {
                product,
                deadline: None,
            } => return Label::join(&["GET /products/", &Decimal::new(*product)]),
            Payload::GetProduct {
                product,
                deadline: Some(deadline),
            } => format!("GET /products/{product} (deadline {deadline})"),
            Payload::ProductInfo(p) => {
                return Label::join(&["200 ", &p.name, " (v", &Decimal::new(p.version), ")"]);
            }
            Payload::RenameProduct { product, name } => format!("PUT /products/{product} {name}"),
            Payload::Renamed { product, version } => {
                format!("200 product {product} now v{version}")
            }
            Payload::UpdateProductName(p) => {
                format!(
                    "PUT /order-lines?product={} {} (v{})",
                    p.product, p.name, p.version
                )
            }
            Payload::ProductNameUpdated { product, rows } => {
                format!("200 {rows} line(s) of product {product} updated")
            }
            Payload::Publish(event) => format!("publish {}", event.label()),
            Payload::Deliver {
                event, redelivered, ..
            } => {
                if *redelivered {
                    format!("{} (redelivery)", event.label())
                } else {
                    event.label()
                }
            }
            Payload::CreateOrder { order, products } => {
                let products: Vec<String> = products.iter().map(u64::to_string).collect();
                format!("POST /orders {order} [{}]", products.join(","))
            }
            Payload::OrderAccepted { order } => format!("201 order {order} created"),
            Payload::Ack { tag } => format!("ack #{tag}"),
            Payload::PublishConfirmed { event_id } => format!("confirm {event_id}"),
            Payload::ApplyRename {
                product,
                name,
                version,
            } => format!("PUT /products/{product} {name} v{version}"),
            Payload::RollBackRename {
                product,
                name,
                version,
            } => format!("ROLLBACK product {product} → {name} v{version}"),
            Payload::PrepareRename {
                product,
                name,
                version,
            } => format!("PREPARE product {product} → {name} v{version}"),
            Payload::CommitRename {
                product,
                name,
                version,
            } => format!("COMMIT product {product} → {name} v{version}"),
            Payload::AbortRename {
                product,
                name,
                version,
            } => format!("ABORT product {product} → {name} v{version}"),
            Payload::Failed { reason } => format!("503 {reason}"),
            Payload::ReadRide { ride } => format!("GET /rides/{ride}"),
            Payload::RideDetails {
                ride,
                driver,
                details,
            } => format!(
                "200 ride {ride}: {}, {} {}",
                driver.name,
                details.rating_text(),
                details.car
            ),
            Payload::GetDriverDetails { driver } => format!("GET /drivers/{driver}/details"),
            Payload::DriverDetailsInfo(d) => {
                format!("200 {} {} (v{})", d.rating_text(), d.car, d.version)
            }
            Payload::RenameDriver { driver, name } => format!("PUT /drivers/{driver} {name}"),
            Payload::RateDriver {
                driver,
                rating_tenths,
            } => format!(
                "PUT /drivers/{driver}/rating {}",
                rating_text(*rating_tenths)
            ),
            Payload::DriverRenamed { driver, version } => {
                format!("200 driver {driver} name now v{version}")
            }
            Payload::DriverRated { driver, version } => {
                format!("200 driver {driver} rating now v{version}")
            }
        })
    }
}

/// What to run: a scenario, a seed, how long, and knob values (missing knobs take defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The scenario's name.
    pub scenario: String,
    /// The seed of the run's generator.
    pub seed: u64,
    /// How many seconds of the run to compute.
    pub until_s: f64,
    /// Knob values by name.
    #[serde(default)]
    pub knobs: KnobMap,
    /// Faults to inject, each written like `crash:Product@10+5` (see `shared::scenario::faults`).
    #[serde(default)]
    pub faults: Vec<String>,
}

/// A viewer's message to the server over `/ws`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Stream the trace of this run (replacing any run being streamed).
    Run(RunRequest),
    /// Start this scenario live on the server's real services and watch it, replacing the live
    /// run in progress (which every viewer then sees end) if this viewer controls it, nobody
    /// does any more, or it has ended; otherwise the viewer is told it watches that run.
    LiveStart {
        /// What to run.
        #[serde(flatten)]
        request: RunRequest,
        /// The control token of the run in progress, from its [`LiveRole::Control`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Watch the live run in progress from its beginning.
    LiveWatch,
    /// Change the live run in progress: only its controller may (or anyone, on a server started
    /// with `--open-control`).
    LiveControl {
        /// The change.
        #[serde(flatten)]
        command: LiveCommand,
        /// The run's control token, from its [`LiveRole::Control`]; the socket that started the
        /// run may leave it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
}

/// What a viewer may do with the live run it watches; sent before the run's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum LiveRole {
    /// This viewer started the run and controls it; the token proves it in later frames.
    Control {
        /// The run's control token.
        token: String,
    },
    /// Every viewer controls the run (a server started with `--open-control`).
    Shared,
    /// This viewer watches a run another controls.
    Watch {
        /// Why, in words for the person watching.
        reason: String,
    },
}

/// A change to a live run, asked for by a viewer; each shows in the trace as it takes effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LiveCommand {
    /// End the run now.
    Stop,
    /// Start (`on`) or stop the load: the client services come up or go down.
    Load {
        /// True to run the workload, false to pause it.
        on: bool,
    },
    /// Crash a service: its listener closes, so calls to it are refused; its tables stay.
    Crash {
        /// Which service.
        service: ServiceId,
    },
    /// Restart a crashed service from its tables.
    Restart {
        /// Which service.
        service: ServiceId,
    },
    /// Put a fault in force from now until it is healed: a slow service, a partition, lost,
    /// duplicated or reordered messages (a crash fault crashes the service).
    Fault {
        /// What goes wrong.
        fault: Fault,
    },
    /// End the faults of this kind on this service or link, whatever their factor or share
    /// (healing a crash restarts the service).
    Heal {
        /// The kind and target to heal.
        fault: Fault,
    },
}

/// One message between two live services, as the body of the HTTP request that carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireMessage {
    /// Its id in the run.
    pub id: MsgId,
    /// The sender.
    pub from: ServiceId,
    /// The receiver.
    pub to: ServiceId,
    /// The client operation it serves.
    pub op: Option<OpId>,
    /// The message whose handling sent it.
    pub caused_by: Option<MsgId>,
    /// What it carries.
    pub payload: Payload,
}

/// The server's message to a viewer over `/ws`.
/// Read by hand (`protocol/read.rs`): serde's derive for tagged enums weighs on the page.
// The header (240 bytes since its knobs are a `SlotMap`) comes once per stream and frames are
// matched as soon as they are read, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A new trace begins.
    Header(TraceHeader),
    /// The next events of the trace, in order.
    Events {
        /// The events.
        events: Vec<TraceEvent>,
    },
    /// The trace is complete.
    End {
        /// [`Trace::hash_hex`] of the whole trace, so the viewer can check what it received.
        trace_hash: String,
        /// How many events were sent.
        events: u64,
    },
    /// The last request was refused; nothing is streamed for it.
    Error {
        /// What was wrong, in words meant for the person who asked.
        message: String,
    },
    /// The viewer fell behind a live run and frames were skipped: what it holds is void, and the
    /// run is sent again from its `header`, which follows.
    Resync {
        /// How many frames it missed.
        missed_frames: u64,
    },
    /// What this viewer may do with the live run whose header follows.
    LiveRole(LiveRole),
}

/// The numbers of one run, as `crosstalk simulate --format summary` prints them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The scenario.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The run's requested length in seconds.
    pub until_s: f64,
    /// Why the run ended; `None` when the trace has no `run_ended` (a live run still going).
    pub end_reason: Option<EndReason>,
    /// How far the run got, in seconds: when it ended, or its last event. Below `until_s` when
    /// the run was cut short; every rate is per second of this.
    pub simulated_s: f64,
    /// How many trace events the run produced.
    pub events: u64,
    /// [`Trace::hash_hex`].
    pub trace_hash: String,
    /// Operations that succeeded.
    pub ops_ok: u64,
    /// Operations that failed.
    pub ops_failed: u64,
    /// Per operation name, such as `read order`.
    pub by_operation: SlotMap<String, OpSummary>,
    /// Operations that returned a version older than one already confirmed (written or read)
    /// before they began.
    pub stale_reads: u64,
    /// The largest replication lag of any copy row at any moment of the run, lags still growing
    /// at the end included, in µs. A copy row's lag at t is t minus when its source first wrote
    /// a version the copy has not applied; zero while it holds the latest.
    pub staleness_max_us: u64,
    /// The mean replication lag over every copy row and every moment it existed, in µs.
    pub staleness_mean_us: u64,
    /// The largest served lag of any successful read, in µs: how long before the read began its
    /// source first wrote a version newer than what the read returned (zero when it missed
    /// none). Judges values served from a source, a copy or a cache alike.
    pub served_lag_max_us: u64,
    /// The mean served lag over successful reads, up-to-date ones included, in µs.
    pub served_lag_mean_us: u64,
    /// Writes to a copy row that replaced a newer version with an older one: events applied out
    /// of order, which a version check refuses.
    pub copy_regressions: u64,
    /// Bytes of values held in copies of other services' tables when the run ended.
    pub duplicated_bytes: u64,
    /// The deepest any broker queue got.
    pub queue_depth_max: u32,
    /// Messages sent per finished operation, background traffic (events, acks) included.
    pub messages_per_op: f64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Second copies made by the network.
    pub messages_duplicated: u64,
    /// Messages dropped, for any reason.
    pub messages_dropped: u64,
    /// Messages neither delivered nor dropped when the run ended.
    pub messages_in_flight_at_end: u64,
    /// The deepest each queue got, by queue name; empty without queues.
    #[serde(default, skip_serializing_if = "SlotMap::is_empty")]
    pub queue_depth_max_by_queue: SlotMap<String, u32>,
    /// What each subscriber did with the events delivered to it, by service name; empty
    /// unless subscribers report [`Event::EventHandled`].
    #[serde(default, skip_serializing_if = "SlotMap::is_empty")]
    pub consumers: SlotMap<String, ConsumerSummary>,
    /// The gateway pattern's numbers (zero elsewhere).
    #[serde(flatten)]
    pub coordination: CoordinationSummary,
    /// What deadlines, retries and a circuit breaker did (zero without them).
    #[serde(flatten)]
    pub resilience: ResilienceSummary,
    /// Per operation name: the synchronous calls between services it caused.
    #[serde(default)]
    pub calls_by_operation: SlotMap<String, CallSummary>,
    /// Stale answers per source table of the stale row, such as `driver_details` for a rating
    /// served from an outdated cache entry.
    #[serde(default)]
    pub stale_reads_by_table: SlotMap<String, u64>,
    /// What the anomaly checker (`shared::check`) found, by kind (`stale_read`, …), every kind
    /// listed.
    #[serde(default)]
    pub anomalies: SlotMap<String, u64>,
    /// How loaded each service with a capacity was, by service name; empty when no service has
    /// one (`service_load` events).
    #[serde(default, skip_serializing_if = "SlotMap::is_empty")]
    pub capacity: SlotMap<String, CapacitySummary>,
}

/// How loaded one service with a capacity (workers, a service time, a bounded queue) was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacitySummary {
    /// Its workers; 0 means unlimited.
    pub workers: u32,
    /// The most requests it worked on at once.
    pub busy_max: u32,
    /// Busy workers on average over the run (the time-integral of busy workers ÷ `simulated_s`).
    pub busy_mean: f64,
    /// `busy_mean ÷ workers`, between 0 and 1; `None` with unlimited workers.
    pub utilisation: Option<f64>,
    /// The most requests waiting for a worker at once.
    pub waiting_max: u32,
    /// Requests it refused because its queue was full (`503 overloaded: …`).
    pub shed: u64,
}

/// What one subscriber did with the events delivered to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerSummary {
    /// Distinct events it applied.
    pub events_applied: u64,
    /// Deliveries of an event it had already handled.
    pub duplicates_delivered: u64,
    /// Duplicates it applied again (no idempotency check).
    pub duplicates_applied: u64,
    /// Duplicates it dropped as already processed.
    pub duplicates_dropped: u64,
    /// Mean time from an event's publication to its first application, in µs.
    pub delivery_lag_mean_us: u64,
    /// Longest time from an event's publication to its first application, in µs.
    pub delivery_lag_max_us: u64,
}

/// What resilience on a call path did (docs/METRICS.md, "Resilience").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResilienceSummary {
    /// Operations answered degraded ([`Outcome::Degraded`]): a fallback stood in for a call.
    #[serde(default)]
    pub degraded_reads: u64,
    /// Calls between services (requests sent while handling another message) that reached
    /// their receiver: in request/response, Product's load.
    #[serde(default)]
    pub calls_received: u64,
    /// Work a service dropped undone because its caller's deadline had passed.
    #[serde(default)]
    pub dropped_past_deadline: u64,
    /// Times a circuit breaker opened.
    #[serde(default)]
    pub breaker_opened: u64,
    /// Calls made through an open breaker, or beyond a half-open breaker's one probe.
    #[serde(default)]
    pub calls_while_breaker_open: u64,
}

/// What coordinating updates cost and left behind (the gateway pattern).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoordinationSummary {
    /// Rollback messages sent, retries included.
    pub rollbacks_sent: u64,
    /// Updates a coordinator found half done after a crash, and flagged.
    pub partial_updates_flagged: u64,
    /// Successful reads that returned a version whose write was later (or already) rolled back:
    /// they saw a name that never became true ([`Event::WriteAborted`]).
    pub aborted_reads: u64,
    /// Copy rows whose name or version differs from their source when the run ended.
    pub inconsistent_rows_at_end: u64,
    /// Under two-phase commit: the longest a participant's row stayed prepared (in doubt,
    /// locked) before its decision arrived, or until the end if none did, in µs.
    #[serde(default)]
    pub in_doubt_max_us: u64,
    /// Under two-phase commit: participant rows still prepared (in doubt) when the run ended.
    #[serde(default)]
    pub rows_in_doubt_at_end: u64,
    /// Under two-phase commit: prepares a participant refused because the row was locked by
    /// another prepared update.
    #[serde(default)]
    pub prepares_refused_locked: u64,
}

/// The synchronous calls of one kind of operation (see `shared::call_metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    /// Requests services sent to other services on behalf of these operations.
    pub calls: u64,
    /// Calls per operation started.
    pub calls_per_op: f64,
    /// The share of the client's requests answered without a call: a cache's hit ratio where
    /// each miss costs one call. `None` when these operations made no call at all, so no cache
    /// stands between them and another service.
    pub cache_hit_ratio: Option<f64>,
}

/// The numbers of one kind of operation (all zero, by `Default`, for a kind that never ran).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// How many succeeded.
    pub ok: u64,
    /// How many failed.
    pub failed: u64,
    /// Median latency of the successful ones, in µs.
    pub p50_us: u64,
    /// 95th-percentile latency of the successful ones, in µs.
    pub p95_us: u64,
    /// 99th-percentile latency of the successful ones, in µs.
    pub p99_us: u64,
    /// Successes per second of the time the run actually covered ([`RunSummary::simulated_s`]).
    pub throughput_per_s: f64,
    /// Messages tagged with one of these operations, per operation.
    pub messages_per_op: f64,
    /// Of those that began while a service or link on their path was unavailable (down,
    /// partitioned, losing every message), as the trace shows it: how many succeeded.
    pub ok_during_outage: u64,
    /// See [`OpSummary::ok_during_outage`]: how many failed.
    pub failed_during_outage: u64,
    /// Of those that began while a service was down, on their path or not, by that service's
    /// name: how many succeeded and failed (the comparison's availability while the source of
    /// truth is down). Empty when no service went down.
    #[serde(default, skip_serializing_if = "SlotMap::is_empty")]
    pub began_while_down: SlotMap<String, OutcomeCounts>,
}

/// How many operations succeeded and failed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Succeeded.
    pub ok: u64,
    /// Failed.
    pub failed: u64,
}

/// The article's trade-off table, measured: one workload run under each pattern, healthy and
/// with the source of truth down for a while. `crosstalk compare` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// What every run did: the knobs they share, the outage, the seed and length.
    pub workload: String,
    /// One row per pattern.
    pub rows: Vec<ComparisonRow>,
}

/// One pattern's numbers in a [`Comparison`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// The scenario.
    pub scenario: String,
    /// Its title.
    pub title: String,
    /// The service that owns the names, crashed in the outage run.
    pub source_of_truth: String,
    /// The row's own knobs beyond the shared workload (the gateway's `protocol` for its 2PC
    /// row), so that opening the row opens that run.
    #[serde(default, skip_serializing_if = "SlotMap::is_empty")]
    pub knobs: KnobMap,
    /// Median read latency when healthy, in µs.
    pub read_p50_us: u64,
    /// 99th-percentile read latency when healthy, in µs.
    pub read_p99_us: u64,
    /// Median write (rename) latency when healthy, in µs.
    pub write_p50_us: u64,
    /// Successful operations per second when healthy.
    pub throughput_per_s: f64,
    /// Reads when healthy that returned a name older than one already confirmed.
    pub stale_reads: u64,
    /// Stale reads as a share of successful reads, in percent.
    pub stale_read_pct: f64,
    /// Of the reads that began while the source of truth was down, the share that succeeded,
    /// in percent ([`OpSummary::began_while_down`]).
    pub read_availability_pct: f64,
    /// Of the writes that began while the source of truth was down, the share that succeeded,
    /// in percent.
    pub write_availability_pct: f64,
    /// Messages sent per operation when healthy, background traffic included.
    pub messages_per_op: f64,
    /// Bytes held in copies of the source's data at the end of the healthy run.
    pub duplicated_bytes: u64,
    /// Both runs' summaries, for everything else.
    pub healthy: RunSummary,
    /// See [`ComparisonRow::healthy`].
    pub outage: RunSummary,
}

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A line was not valid JSON of the expected shape.
    #[error("line {line}: {source}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What was wrong, and where in the line.
        source: crate::json::Error,
    },
    /// The header names a version this build cannot read.
    #[error(
        "trace format version {found} is not supported (this build reads version {PROTOCOL_VERSION})"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// There was no header line.
    #[error("the trace is empty: expected a header line")]
    Empty,
    /// An event names a service the header does not list.
    #[error("line {line}: service {service} is not one of the header's {services} services")]
    UnknownService {
        /// 1-based line number.
        line: usize,
        /// The service's id.
        service: u16,
        /// How many services the header lists (ids 0 to one less).
        services: usize,
    },
}

/// A whole trace in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// What was run.
    pub header: TraceHeader,
    /// What happened, in time order.
    pub events: Vec<TraceEvent>,
}

impl Trace {
    /// The trace as JSON lines: the header, then one event per line.
    pub fn to_jsonl(&self) -> String {
        let mut out = header_line(&self.header);
        for event in &self.events {
            out.push_str(&event_line(event));
        }
        out
    }

    /// Reads JSON lines written by [`Trace::to_jsonl`]; blank lines are ignored.
    pub fn from_jsonl(text: &str) -> Result<Trace, TraceError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or(TraceError::Empty)?;
        let header = parse_header(first)?;
        let services = header.services.len();
        let events = lines
            .map(|(i, line)| {
                let event: TraceEvent =
                    crate::json::from_str(line).map_err(|source| TraceError::Malformed {
                        line: i + 1,
                        source,
                    })?;
                // Services are indexes into the header's list, and the page keeps some maps
                // as vectors by service: an id past the list is refused, not allocated for.
                match event.event.unknown_service(services) {
                    Some(service) => Err(TraceError::UnknownService {
                        line: i + 1,
                        service: service.0,
                        services,
                    }),
                    None => Ok(event),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Trace { header, events })
    }

    /// A 64-bit FNV-1a hash of [`Trace::to_jsonl`], as 16 hex digits: equal traces, equal hashes.
    pub fn hash_hex(&self) -> String {
        let mut hasher = TraceHasher::default();
        hasher.add_header(&self.header);
        for event in &self.events {
            hasher.add_event(event);
        }
        hasher.hex()
    }
}

impl Event {
    /// The first service the event names that is not one of `services` services (an id at or
    /// past `services`), if any.
    fn unknown_service(&self, services: usize) -> Option<ServiceId> {
        let known = |id: &ServiceId| usize::from(id.0) < services;
        let named: &[ServiceId] = match self {
            Event::ServiceUp { service }
            | Event::ServiceDown { service }
            | Event::RowWritten { service, .. }
            | Event::QueueDepth { service, .. }
            | Event::ServiceLoad { service, .. }
            | Event::EventHandled { service, .. }
            | Event::PartialUpdateFlagged { service, .. } => std::slice::from_ref(service),
            Event::Sent { from, to, .. } => &[*from, *to],
            Event::OpStarted { client, .. } => std::slice::from_ref(client),
            Event::OpFinished { observed, .. } => {
                return observed
                    .iter()
                    .map(|seen| seen.source_service)
                    .find(|id| !known(id));
            }
            Event::WriteAborted {
                service,
                source_service,
                ..
            } => &[*service, *source_service],
            Event::FaultBegins { fault } | Event::FaultEnds { fault } => {
                return fault.services().into_iter().flatten().find(|id| !known(id));
            }
            Event::CircuitChanged { service, peer, .. } => &[*service, *peer],
            Event::Delivered { .. }
            | Event::Duplicated { .. }
            | Event::Dropped { .. }
            | Event::Narration { .. }
            | Event::RunEnded { .. } => &[],
        };
        named.iter().copied().find(|id| !known(id))
    }
}

/// Parses and checks a header line.
pub fn parse_header(line: &str) -> Result<TraceHeader, TraceError> {
    let header: TraceHeader =
        crate::json::from_str(line).map_err(|source| TraceError::Malformed { line: 1, source })?;
    if header.protocol_version != PROTOCOL_VERSION {
        return Err(TraceError::UnsupportedVersion {
            found: header.protocol_version,
        });
    }
    let services = header.services.len();
    let links = header.links.iter().flat_map(|(a, b)| [*a, *b]);
    let copies = header
        .copies
        .iter()
        .flat_map(|c| [c.copy_service, c.source_service]);
    let faults = header
        .faults
        .iter()
        .flat_map(|f| f.fault.services())
        .flatten();
    if let Some(service) = links
        .chain(copies)
        .chain(faults)
        .find(|id| usize::from(id.0) >= services)
    {
        return Err(TraceError::UnknownService {
            line: 1,
            service: service.0,
            services,
        });
    }
    Ok(header)
}

/// The header as one JSON line, newline included.
pub fn header_line(header: &TraceHeader) -> String {
    let mut line = crate::json::to_string(header);
    line.push('\n');
    line
}

/// An event as one JSON line, newline included.
pub fn event_line(event: &TraceEvent) -> String {
    let mut line = crate::json::to_string(event);
    line.push('\n');
    line
}

/// Hashes a trace as it streams by, equal to [`Trace::hash_hex`] of the whole.
#[derive(Clone, Debug)]
pub struct TraceHasher {
    state: u64,
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            state: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl TraceHasher {
    fn add_bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state ^= *byte as u64;
            self.state = self.state.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds the header line.
    pub fn add_header(&mut self, header: &TraceHeader) {
        self.add_bytes(header_line(header).as_bytes());
    }

    /// Adds one event line.
    pub fn add_event(&mut self, event: &TraceEvent) {
        self.add_bytes(event_line(event).as_bytes());
    }

    /// The hash so far, as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trace {
        Trace {
            header: TraceHeader {
                protocol_version: PROTOCOL_VERSION,
                scenario: "request-response".into(),
                seed: 3,
                until: Micros::from_secs(1),
                knobs: KnobMap::from([("read_rate".to_string(), 2.5)]),
                services: vec![
                    ServiceInfo {
                        id: ServiceId(0),
                        name: "Client".into(),
                        role: ServiceRole::Client,
                    },
                    ServiceInfo {
                        id: ServiceId(1),
                        name: "Order".into(),
                        role: ServiceRole::Service,
                    },
                ],
                links: vec![(ServiceId(0), ServiceId(1))],
                network: crate::protocol::LinkSpec {
                    latency: Micros::from_millis(40),
                    jitter: Micros::from_millis(10),
                    loss_per_million: 0,
                },
                copies: vec![],
                faults: Vec::new(),
            },
            events: vec![
                TraceEvent {
                    at: Micros(10),
                    event: Event::Sent {
                        msg: MsgId(1),
                        from: ServiceId(0),
                        to: ServiceId(1),
                        kind: MessageKind::Request,
                        label: "GET /orders/1".into(),
                        op: Some(OpId(1)),
                        caused_by: None,
                    },
                },
                TraceEvent {
                    at: Micros(20),
                    event: Event::Dropped {
                        msg: MsgId(1),
                        reason: DropReason::Lost,
                    },
                },
                TraceEvent {
                    at: Micros(30),
                    event: Event::OpFinished {
                        op: OpId(1),
                        outcome: Outcome::Failed {
                            reason: "timed out".into(),
                        },
                        latency: Micros(20),
                        observed: vec![],
                    },
                },
            ],
        }
    }

    #[test]
    fn jsonl_round_trips_and_hash_is_stable() {
        let trace = sample();
        let text = trace.to_jsonl();
        assert_eq!(text.lines().count(), 4);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with(r#"{"at":10,"type":"sent","msg":1"#),
            "{text}"
        );
        let back = Trace::from_jsonl(&text).unwrap();
        assert_eq!(back, trace);
        assert_eq!(back.hash_hex(), trace.hash_hex());
        let mut changed = trace.clone();
        changed.events[0].at = Micros(11);
        assert_ne!(changed.hash_hex(), trace.hash_hex());
    }

    #[test]
    fn reading_rejects_bad_input_with_its_line() {
        let check = |text: &str, expected: &str| {
            let err = Trace::from_jsonl(text).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        };
        check("", "empty");
        check("not json", "line 1");
        let good = sample().to_jsonl();
        check(
            &good.replace(
                &format!("\"protocol_version\":{PROTOCOL_VERSION}"),
                "\"protocol_version\":99",
            ),
            "version 99 is not supported",
        );
        check(
            &format!("{good}{{\"at\":5,\"type\":\"teleported\"}}\n"),
            "line 5",
        );
        // Services are indexes into the header's list (the page keeps maps by service as
        // vectors): one past it is refused, in an event and in the header.
        check(
            &format!("{good}{{\"at\":40,\"type\":\"service_down\",\"service\":2}}\n"),
            "line 5: service 2 is not one of the header's 2 services",
        );
        check(
            &format!(
                "{good}{{\"at\":40,\"type\":\"circuit_changed\",\"service\":1,\"peer\":65535,\"state\":\"open\"}}\n"
            ),
            "line 5: service 65535 is not one of",
        );
        check(
            &good.replace("\"to\":1,", "\"to\":7,"),
            "line 2: service 7 is not one of",
        );
        check(
            &good.replace("\"links\":[[0,1]]", "\"links\":[[0,9]]"),
            "line 1: service 9 is not one of",
        );
        let mut with_fault = sample();
        with_fault.events.push(TraceEvent {
            at: Micros(40),
            event: Event::FaultBegins {
                fault: Fault::Partition {
                    link: LinkId::Between(ServiceId(1), ServiceId(3)),
                },
            },
        });
        check(&with_fault.to_jsonl(), "line 5: service 3 is not one of");
        with_fault.events[3].event = Event::FaultBegins {
            fault: Fault::Partition { link: LinkId::All },
        };
        assert_eq!(
            Trace::from_jsonl(&with_fault.to_jsonl()).unwrap(),
            with_fault
        );
    }

    #[test]
    fn labels_read_like_the_calls_they_stand_for() {
        let check = |payload: Payload, label: &str, kind: MessageKind| {
            assert_eq!(payload.label(), label);
            assert_eq!(payload.kind(), kind);
        };
        check(
            Payload::GetProduct {
                product: 7,
                deadline: None,
            },
            "GET /products/7",
            MessageKind::Request,
        );
        let updated = DomainEvent::ProductUpdated(ProductName {
            product: 7,
            name: "Lamp".into(),
            version: 3,
        });
        check(
            Payload::Publish(updated.clone()),
            "publish ProductUpdated{id:7,v:3}",
            MessageKind::Event,
        );
        check(
            Payload::Deliver {
                tag: 1,
                redelivered: true,
                event: updated,
            },
            "ProductUpdated{id:7,v:3} (redelivery)",
            MessageKind::Event,
        );
        check(Payload::Ack { tag: 4 }, "ack #4", MessageKind::Ack);
        check(
            Payload::RollBackRename {
                product: 3,
                name: "Oak Chair".into(),
                version: 6,
            },
            "ROLLBACK product 3 → Oak Chair v6",
            MessageKind::Rollback,
        );
        check(
            Payload::PrepareRename {
                product: 3,
                name: "Smart Oak Chair".into(),
                version: 5,
            },
            "PREPARE product 3 → Smart Oak Chair v5",
            MessageKind::Request,
        );
        check(
            Payload::CommitRename {
                product: 3,
                name: "Smart Oak Chair".into(),
                version: 5,
            },
            "COMMIT product 3 → Smart Oak Chair v5",
            MessageKind::Request,
        );
        check(
            Payload::AbortRename {
                product: 3,
                name: "Smart Oak Chair".into(),
                version: 5,
            },
            "ABORT product 3 → Smart Oak Chair v5",
            MessageKind::Rollback,
        );
        check(
            Payload::Failed {
                reason: "Product timed out".into(),
            },
            "503 Product timed out",
            MessageKind::Response,
        );
    }

    #[test]
    fn a_kind_is_named_as_the_json_spells_it() {
        use MessageKind::*;
        for kind in [Request, Response, Event, Ack, Rollback] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }
}

#[cfg(test)]
mod live_frame_tests {
    use super::*;

    #[test]
    fn live_frames_read_and_write_with_or_without_a_token() {
        let check = |text: &str, frame: ClientFrame| {
            assert_eq!(
                serde_json::from_str::<ClientFrame>(text).unwrap(),
                frame,
                "{text}"
            );
            let again = serde_json::to_string(&frame).unwrap();
            assert_eq!(serde_json::from_str::<ClientFrame>(&again).unwrap(), frame);
        };
        check(
            r#"{"type":"live_control","action":"crash","service":2}"#,
            ClientFrame::LiveControl {
                command: LiveCommand::Crash {
                    service: ServiceId(2),
                },
                token: None,
            },
        );
        check(
            r#"{"type":"live_control","action":"stop","token":"abc"}"#,
            ClientFrame::LiveControl {
                command: LiveCommand::Stop,
                token: Some("abc".into()),
            },
        );
        check(
            r#"{"type":"live_start","scenario":"gateway","seed":1,"until_s":30,"token":"t"}"#,
            ClientFrame::LiveStart {
                request: RunRequest {
                    scenario: "gateway".into(),
                    seed: 1,
                    until_s: 30.0,
                    knobs: Default::default(),
                    faults: Vec::new(),
                },
                token: Some("t".into()),
            },
        );
        let role = ServerFrame::LiveRole(LiveRole::Watch {
            reason: "why".into(),
        });
        let text = serde_json::to_string(&role).unwrap();
        assert_eq!(
            text,
            r#"{"type":"live_role","role":"watch","reason":"why"}"#
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"live_control"}"#).is_err());
    }
}
