//! The sans-IO service API: a service is a state machine that takes one [`Input`] at a time and
//! answers through a [`Ctx`], which records effects (messages to send, timers, operations) for the
//! driver to carry out. The simulation and the live runtime are two drivers of the same machines.

use crate::protocol::{Event, MsgId, Observed, OpId, Outcome, Payload, ServiceId};
use crate::rng::SimRng;
use crate::slot_map::SlotMap;
use crate::time::Micros;

/// One message between services, as a service sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Its id.
    pub id: MsgId,
    /// The sender.
    pub from: ServiceId,
    /// The receiver.
    pub to: ServiceId,
    /// The client operation it serves.
    pub op: Option<OpId>,
    /// The message whose handling sent it; for a response, the request it answers.
    pub caused_by: Option<MsgId>,
    /// What it carries.
    pub payload: Payload,
}

impl Envelope {
    /// This message again under another id: the second copy a duplicating network delivers, in
    /// the simulation and live alike.
    pub fn copy_as(&self, id: MsgId) -> Envelope {
        Envelope { id, ..self.clone() }
    }

    /// The `Sent` event that records this message leaving its sender, in the simulation and
    /// live alike.
    pub fn sent_event(&self) -> Event {
        Event::Sent {
            msg: self.id,
            from: self.from,
            to: self.to,
            kind: self.payload.kind(),
            label: self.payload.label(),
            op: self.op,
            caused_by: self.caused_by,
        }
    }
}

/// A timer a service set, as returned by [`Ctx::set_timer`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

impl TimerId {
    /// The timer's number: its key in a [`TimerMap`].
    pub fn key(self) -> u64 {
        self.0
    }
}

/// A service's map by timer, keyed by [`TimerId::key`]: a `SlotMap<u64, _>`'s tree is the one
/// every map keyed by a `u64` shares, where `TimerId` keys compiled to a tree of their own.
pub type TimerMap<V> = SlotMap<u64, V>;

/// What a service reacts to.
#[derive(Debug)]
pub enum Input<'a> {
    /// The service (re)started: rebuild memory from the tables, start periodic work.
    Start,
    /// A message arrived. The driver drops it once handled, so the service may take what it
    /// carries instead of copying it (Order keeps each product name Product answered with).
    Message(&'a mut Envelope),
    /// A timer it set fired.
    Timer(TimerId),
    /// A message it sent was refused because the receiver is down.
    Refused(MsgId),
    /// The connection to this peer closed: the peer crashed, or the network broke the
    /// connection (a lost message on a TCP connection). Drivers tell a broker when one of its
    /// subscribers' connections closes, as RabbitMQ learns it when a consumer's channel closes.
    ConnectionLost(ServiceId),
}

/// A row of a service's own table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The value, as text.
    pub value: String,
    /// The version, incremented by each write at the source of truth.
    pub version: u64,
}

/// A service's own database, read and written synchronously. The simulation keeps it in memory;
/// the live runtime keeps it in SQLite.
pub trait Tables {
    /// The row at `key` of `table`, if any.
    fn get(&self, table: &str, key: &str) -> Option<Row>;
    /// Stores `row` at `key` of `table`.
    fn put(&mut self, table: &str, key: &str, row: Row);
    /// Every row of `table`, ordered by key.
    fn scan(&self, table: &str) -> Vec<(String, Row)>;
    /// Stores every write of `writes` in one local transaction: all of them or none. Tables in
    /// memory cannot fail halfway, so the default stores them one after another; a database
    /// wraps them in a transaction of its own (the live runtime's SQLite does).
    fn put_all(&mut self, writes: &[Write]) {
        for write in writes {
            self.put(&write.table, &write.key, write.row.clone());
        }
    }
}

/// One row to store, as part of a transaction ([`Tables::put_all`], [`Ctx::write_all`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The table.
    pub table: String,
    /// The row's key.
    pub key: String,
    /// What to store there.
    pub row: Row,
}

impl Write {
    /// A write of `value` at `version` to `key` of `table`.
    pub fn new(table: &str, key: &str, value: &str, version: u64) -> Write {
        Write {
            table: table.to_string(),
            key: key.to_string(),
            row: Row {
                value: value.to_string(),
                version,
            },
        }
    }
}

/// Tables in memory, ordered so that iteration is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemTables {
    tables: SlotMap<String, SlotMap<String, Row>>,
}

impl MemTables {
    /// Every row of `table`, by key.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&String, &Row)> {
        self.tables.get(table).into_iter().flatten()
    }
}

impl Tables for MemTables {
    fn get(&self, table: &str, key: &str) -> Option<Row> {
        self.tables.get(table)?.get(key).cloned()
    }

    fn put(&mut self, table: &str, key: &str, row: Row) {
        // Only a table's first row allocates its name (`entry` would take an owned one each time).
        match self.tables.get_mut(table) {
            Some(rows) => rows.insert(key.to_string(), row),
            None => self
                .tables
                .entry(table.to_string())
                .or_default()
                .insert(key.to_string(), row),
        };
    }

    fn scan(&self, table: &str) -> Vec<(String, Row)> {
        self.rows(table)
            .map(|(key, row)| (key.clone(), row.clone()))
            .collect()
    }
}

/// What a service asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send a message (its id is already allocated).
    Send(Envelope),
    /// Fire [`Input::Timer`] after a delay.
    SetTimer {
        /// The timer.
        id: TimerId,
        /// How long from now.
        after: Micros,
    },
    /// The timer will never matter: the service ignores it when it fires (the call it guarded
    /// was answered). A driver may drop it rather than wake the service for nothing, or ignore
    /// this and deliver it as usual.
    CancelTimer(TimerId),
    /// Record a trace event that needs no driver action: rows written, operations, narration.
    Record(Event),
    /// The service dies at this point, as if its process were killed mid-handler: the effects
    /// recorded before this one are carried out (messages already sent stay sent, rows already
    /// written stay written) and nothing after it is ([`Ctx`] records nothing more). Like any
    /// crash, the service's memory and timers are lost and its tables kept; the driver starts it
    /// again ([`Input::Start`]) `restart_after` later. Always the last effect of a handler.
    Crash {
        /// How long the service stays down.
        restart_after: Micros,
    },
}

/// Allocates ids that are unique within a run, shared by every service.
#[derive(Clone, Debug, Default)]
pub struct IdAllocator {
    next_msg: u64,
    next_op: u64,
    next_timer: u64,
}

impl IdAllocator {
    /// A fresh message id, for a driver that copies a message (a duplicating network).
    pub fn fresh_msg(&mut self) -> MsgId {
        self.msg()
    }

    pub(crate) fn msg(&mut self) -> MsgId {
        self.next_msg += 1;
        MsgId(self.next_msg)
    }
    fn op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }
    fn timer(&mut self) -> TimerId {
        self.next_timer += 1;
        TimerId(self.next_timer)
    }
}

/// A service's window on the world while it handles one input.
pub struct Ctx<'a> {
    /// The current time.
    pub now: Micros,
    /// The service handling the input.
    pub me: ServiceId,
    /// The run's one generator.
    pub rng: &'a mut SimRng,
    /// How many times slower than usual this service works now: the largest factor of the
    /// `slow` faults on it in force, 1 when none is. Drivers set it ([`NetworkFaults::slow_factor`]
    /// says how); a service with a capacity multiplies its service time by it.
    ///
    /// [`NetworkFaults::slow_factor`]: crate::in_force::NetworkFaults::slow_factor
    pub slow_factor: u32,
    tables: &'a mut dyn Tables,
    ids: &'a mut IdAllocator,
    effects: Vec<Effect>,
    crashed: bool,
}

impl<'a> Ctx<'a> {
    /// A context for service `me` at `now`.
    pub fn new(
        now: Micros,
        me: ServiceId,
        rng: &'a mut SimRng,
        tables: &'a mut dyn Tables,
        ids: &'a mut IdAllocator,
    ) -> Ctx<'a> {
        Ctx {
            now,
            me,
            rng,
            slow_factor: 1,
            tables,
            ids,
            effects: Vec::new(),
            crashed: false,
        }
    }

    /// Records the effects into `buffer`, an empty vector whose allocation a driver keeps from one
    /// input to the next: the simulation handles an input per message, and an allocation each
    /// was a measurable part of the engine's time in WebAssembly (issue 9).
    pub fn recording_into(mut self, buffer: Vec<Effect>) -> Ctx<'a> {
        debug_assert!(buffer.is_empty() && self.effects.is_empty());
        self.effects = buffer;
        self
    }

    /// Records `effect`, unless the service has already crashed in this handler.
    fn push(&mut self, effect: Effect) {
        if !self.crashed {
            self.effects.push(effect);
        }
    }

    /// The effects recorded so far, in order.
    pub fn into_effects(self) -> Vec<Effect> {
        self.effects
    }

    /// Sends `payload` to `to`; returns the message's id.
    pub fn send(
        &mut self,
        to: ServiceId,
        payload: Payload,
        op: Option<OpId>,
        caused_by: Option<MsgId>,
    ) -> MsgId {
        let id = self.ids.msg();
        self.push(Effect::Send(Envelope {
            id,
            from: self.me,
            to,
            op,
            caused_by,
            payload,
        }));
        id
    }

    /// Answers `request` with `payload`.
    pub fn reply(&mut self, request: &Envelope, payload: Payload) -> MsgId {
        self.send(request.from, payload, request.op, Some(request.id))
    }

    /// Fires [`Input::Timer`] with the returned id after `after`.
    pub fn set_timer(&mut self, after: Micros) -> TimerId {
        let id = self.ids.timer();
        self.push(Effect::SetTimer { id, after });
        id
    }

    /// Says that `timer` no longer matters to this service: when it fires, the service does
    /// nothing, so the driver may skip it ([`Effect::CancelTimer`]). Only for a timer the
    /// service would ignore: the simulation then never delivers it.
    pub fn cancel_timer(&mut self, timer: TimerId) {
        self.push(Effect::CancelTimer(timer));
    }

    /// Reads a row of this service's own table.
    pub fn read(&self, table: &str, key: &str) -> Option<Row> {
        self.tables.get(table, key)
    }

    /// Reads every row of this service's own table, ordered by key.
    pub fn scan(&self, table: &str) -> Vec<(String, Row)> {
        self.tables.scan(table)
    }

    /// Writes a row of this service's own table, and records it in the trace.
    pub fn write(&mut self, table: &str, key: &str, value: &str, version: u64) {
        if self.crashed {
            return;
        }
        self.tables.put(
            table,
            key,
            Row {
                value: value.to_string(),
                version,
            },
        );
        self.push(Effect::Record(Event::RowWritten {
            service: self.me,
            table: table.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            version,
        }));
    }

    /// Writes rows of this service's own tables in one local transaction — all of them or none,
    /// so a crash never leaves one without the others — and records each in the trace.
    pub fn write_all(&mut self, writes: &[Write]) {
        if self.crashed {
            return;
        }
        self.tables.put_all(writes);
        for write in writes {
            self.push(Effect::Record(Event::RowWritten {
                service: self.me,
                table: write.table.clone(),
                key: write.key.clone(),
                value: write.row.value.clone(),
                version: write.row.version,
            }));
        }
    }

    /// Begins a client operation named `name`.
    pub fn start_op(&mut self, name: &str) -> OpId {
        let op = self.ids.op();
        self.push(Effect::Record(Event::OpStarted {
            op,
            name: name.to_string(),
            client: self.me,
        }));
        op
    }

    /// Ends a client operation that began at `started`.
    pub fn finish_op(
        &mut self,
        op: OpId,
        started: Micros,
        outcome: Outcome,
        observed: Vec<Observed>,
    ) {
        let latency = self.now.saturating_sub(started);
        self.push(Effect::Record(Event::OpFinished {
            op,
            outcome,
            latency,
            observed,
        }));
    }

    /// Records a trace event that needs no action from the driver, such as a queue's depth.
    pub fn record(&mut self, event: Event) {
        self.push(Effect::Record(event));
    }

    /// Explains what just happened, in a sentence.
    pub fn narrate(&mut self, text: impl Into<String>) {
        self.push(Effect::Record(Event::Narration { text: text.into() }));
    }

    /// Kills this service here: see [`Effect::Crash`]. Whatever the handler does after this call
    /// is ignored, so a handler may simply return.
    pub fn crash(&mut self, restart_after: Micros) {
        self.push(Effect::Crash { restart_after });
        self.crashed = true;
    }
}

/// A service: a state machine driven one input at a time. Its memory is lost when it crashes;
/// its [`Tables`] are not.
pub trait Service {
    /// Reacts to one input.
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>);

    /// For a broker, who subscribes to which topic, so a driver can set up a real broker (such
    /// as RabbitMQ) to route alike; other services have none.
    fn subscriptions(&self) -> Vec<crate::services::Subscription> {
        Vec::new()
    }

    /// For a broker, how it behaves, so a driver can make a real broker (such as RabbitMQ)
    /// behave alike: its subscriptions, redelivery rule, confirms, durability.
    fn broker_config(&self) -> Option<crate::services::BrokerConfig> {
        None
    }

    /// What a crash of this service, called `name`, loses, in a sentence, when it says more
    /// than the usual (its memory gone, calls to it refused): a broker says whether its queues
    /// survive.
    fn crash_narration(&self, _name: &str) -> Option<String> {
        None
    }
}
