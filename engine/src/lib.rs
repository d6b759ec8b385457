//! The deterministic discrete-event engine: virtual time, one seeded generator, a network with
//! latency, jitter and loss, and faults (crashes, slow services, partitions, lost, duplicated and
//! reordered messages) that begin and end on schedule, and services that crash themselves ([`Effect::Crash`]).
//!
//! Work is queued by `(time, seq)`, so ties run first-in, first-out and a seed always yields the
//! same trace. Both the trace and the queue of pending work are bounded; a run that reaches a
//! bound ends early with [`EndReason::Budget`].
//!
//! It is a crate of its own for one reason: the page builds it at `opt-level = 2` and the rest
//! at `"z"` (the workspace's `Cargo.toml`). Built for size, it ran 0.62–0.67× as fast in
//! Chromium as natively; issue 9 asks for 0.7×. The services, scenarios and protocol it runs
//! stay in `shared`, built for size.

use shared::in_force::{CrashCause, CrashCauses, FaultOrigin, NetworkFaults};
use shared::network;
use shared::protocol::{
    DropReason, EndReason, Event, Fault, LinkSpec, MsgId, RunRequest, ServiceId, ServiceRole,
    Trace, TraceEvent, TraceHeader,
};
use shared::rng::SimRng;
use shared::scenario::{Driver, PreparedRun, ScenarioError, prepare};
use shared::service::{Ctx, Effect, Envelope, IdAllocator, Input, MemTables, Service, TimerId};
use shared::slot_map::DenseMap;
use shared::time::Micros;
use shared::world::{
    MachineFactory, RunInfo, World, crash_narration, describe_fault, restart_narration,
    seed_tables, trace_header,
};
use std::collections::{BinaryHeap, VecDeque};

/// The most trace events one run may produce: room for a 600 s run at the highest knobs of
/// every scenario (the heaviest, request/response and event-driven at 50 reads or orders a
/// second, record 1.22–1.29 M; `shared/tests/budget.rs`) with 55 % to spare, while the page,
/// at about 53 bytes an event for request/response, holds a trace at the bound in about
/// 110 MB. A run past it ends with [`EndReason::Budget`].
pub const MAX_TRACE_EVENTS: usize = 2_000_000;
/// The most pieces of pending work (messages in flight, timers, faults) at once.
pub const MAX_PENDING: usize = 200_000;
/// The most trace events [`Sim::drain_events`] makes room for in advance: a slice of the page's
/// work is a few hundred; a whole run drained at once leaves no room held for nothing.
const DRAIN_CAPACITY_MAX: usize = 4_096;

/// Checks a request and sets up its simulated run, ready to [`Sim::step`].
pub fn start(request: &RunRequest) -> Result<Sim, ScenarioError> {
    let PreparedRun { run, world, rng } = prepare(request, Driver::Simulation)?;
    Ok(Sim::new(run, world, rng))
}

/// Runs a request to its end and returns the whole trace.
pub fn simulate(request: &RunRequest) -> Result<Trace, ScenarioError> {
    let mut sim = start(request)?;
    while sim.step() {}
    // The header moved out, not cloned: a clone here was the engine's own copy of the header's
    // maps' code, built for speed, in the page.
    Ok(Trace {
        header: sim.header,
        events: sim.events_out,
    })
}

/// Runs every request of [`shared::compare::requests`] and builds the table.
pub fn compare(seed: u64) -> Result<shared::protocol::Comparison, ScenarioError> {
    let summaries = shared::compare::requests(seed)
        .iter()
        .map(|request| simulate(request).map(|trace| shared::metrics::summarize(&trace)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(shared::compare::table(seed, summaries))
}

enum Work {
    Start(ServiceId),
    /// The fault at this index of the header's list begins.
    FaultBegins(usize),
    /// The fault at this index of the header's list ends.
    FaultEnds(usize),
    /// A service that crashed itself ([`Effect::Crash`]) starts again.
    Restart(ServiceId),
    Arrive(Envelope),
    Lose {
        msg: MsgId,
        reason: DropReason,
        from: ServiceId,
        to: ServiceId,
    },
    Timer {
        service: ServiceId,
        incarnation: u32,
        timer: TimerId,
    },
}

/// The work waiting to run, taken in order of time and then of scheduling. The heap holds only
/// that key and the index of the work in a slab: sifting moves 24 bytes instead of a whole
/// envelope. In the page's WebAssembly, built for size, sifting whole entries took a fifth of
/// the engine's time (issue 9).
///
/// Timers skip the heap: each waits in a first-in-first-out lane of the timers set with the
/// same delay, which are due in the order they were set. A call timeout is set for every call
/// and nearly always cancelled, yet waits its whole delay: on issue 9's big run they made most of
/// the heap and of its sifting. The next work is the earliest of the heap's top and the lanes'
/// fronts, so the order is exactly a single heap's.
#[derive(Default)]
struct Agenda {
    order: BinaryHeap<Due>,
    /// At most [`TIMER_LANES`] lanes; an empty lane is taken over by the next new delay, and a
    /// timer whose delay has no lane and finds none free goes on the heap.
    lanes: Vec<Lane>,
    works: Vec<Option<Work>>,
    /// Indexes of `works` whose work has run, reused before `works` grows.
    free: Vec<u32>,
    next_seq: u64,
}

/// Timer lanes at most: a service sets timers with a few fixed delays (a call timeout, an
/// operation's timeout, a retry's backoff); more distinct delays at once queue on the heap.
const TIMER_LANES: usize = 4;

/// An entry of [`Agenda`]'s heap, which is a max-heap: the earliest `(at, seq)` is the greatest.
/// The comparisons are forced inline because the page is built for size, where a call per
/// comparison costs more than the comparison (issue 9's engine benchmark).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Due {
    at: Micros,
    seq: u64,
    slot: u32,
}

impl Ord for Due {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Due {
    #[inline(always)]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
    #[inline(always)]
    fn le(&self, other: &Self) -> bool {
        (other.at, other.seq) <= (self.at, self.seq)
    }
}

/// Timers set with one delay, so due in the order they were set: those of `dues` from `head`
/// on. A vector read from a moving head rather than a `VecDeque`, whose code the page would
/// carry for this alone; the run-through entries are dropped once they are half of it.
struct Lane {
    delay: Micros,
    dues: Vec<Due>,
    head: usize,
}

impl Lane {
    fn front(&self) -> Option<&Due> {
        self.dues.get(self.head)
    }

    fn len(&self) -> usize {
        self.dues.len() - self.head
    }

    fn pop_front(&mut self) -> Option<Due> {
        let due = *self.dues.get(self.head)?;
        self.head += 1;
        let len = self.dues.len();
        if self.head * 2 >= len {
            self.dues.copy_within(self.head.., 0);
            self.dues.truncate(len - self.head);
            self.head = 0;
        }
        Some(due)
    }
}

/// Where the next work waits.
enum Next {
    Heap,
    Lane(usize),
}

impl Agenda {
    fn len(&self) -> usize {
        self.order.len() + self.lanes.iter().map(Lane::len).sum::<usize>()
    }

    /// Where the earliest work waits, and when it is due.
    fn next(&self) -> Option<(Micros, Next)> {
        let mut next = self.order.peek().map(|due| (due, Next::Heap));
        for (index, lane) in self.lanes.iter().enumerate() {
            if let Some(front) = lane.front()
                && next.as_ref().is_none_or(|(best, _)| front > *best)
            {
                next = Some((front, Next::Lane(index)));
            }
        }
        next.map(|(due, next)| (due.at, next))
    }

    /// When the next work is due.
    fn next_at(&self) -> Option<Micros> {
        self.next().map(|(at, _)| at)
    }

    /// Queues a piece of work due `at`; returns the empty slot of `works` to [`put`] it in.
    fn reserve(&mut self, at: Micros) -> &mut Option<Work> {
        let due = self.due(at);
        let slot = due.slot;
        self.order.push(due);
        &mut self.works[slot as usize]
    }

    /// Queues a timer set `now` to fire `after` later, in its delay's lane; returns the empty
    /// slot of `works` to [`put`] it in.
    fn reserve_timer(&mut self, now: Micros, after: Micros) -> &mut Option<Work> {
        let lane = match self.lanes.iter().position(|lane| lane.delay == after) {
            Some(lane) => Some(lane),
            None if self.lanes.len() < TIMER_LANES => {
                self.lanes.push(Lane {
                    delay: after,
                    dues: Vec::new(),
                    head: 0,
                });
                Some(self.lanes.len() - 1)
            }
            None => self.lanes.iter().position(|lane| lane.len() == 0),
        };
        let Some(lane) = lane else {
            return self.reserve(now + after);
        };
        let due = self.due(now + after);
        let slot = due.slot;
        self.lanes[lane].delay = after;
        self.lanes[lane].dues.push(due);
        &mut self.works[slot as usize]
    }

    /// The next key, and an empty slot of `works` for its work.
    fn due(&mut self, at: Micros) -> Due {
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.works.push(None);
                (self.works.len() - 1) as u32
            }
        };
        Due {
            at,
            seq: self.next_seq,
            slot,
        }
    }

    /// Takes the earliest work, if it is due by `until`.
    fn pop_due_by(&mut self, until: Micros) -> Option<(Micros, Work)> {
        let (at, next) = self.next().filter(|(at, _)| *at <= until)?;
        let Due { slot, .. } = match next {
            Next::Heap => self.order.pop(),
            Next::Lane(lane) => self.lanes[lane].pop_front(),
        }?;
        self.free.push(slot);
        let work = self.works[slot as usize]
            .take()
            .expect("every queued slot holds work");
        Some((at, work))
    }
}

/// Puts `work` in `slot`, which [`Agenda::reserve`] returned: it is empty, so there is nothing
/// to drop. In the page's WebAssembly, built for size, an assignment called the drop glue between
/// building the work and storing it, which kept its 120 bytes copied twice (issue 9's engine
/// benchmark).
#[inline(always)]
fn put(slot: &mut Option<Work>, work: Work) {
    let empty = slot.replace(work);
    debug_assert!(empty.is_none());
    std::mem::forget(empty);
}

struct Slot {
    name: String,
    make: MachineFactory,
    machine: Option<Box<dyn Service>>,
    /// Counts restarts, so timers set before a crash never fire into the new instance.
    incarnation: u32,
    tables: MemTables,
}

/// A simulated run.
pub struct Sim {
    header: TraceHeader,
    network: LinkSpec,
    rng: SimRng,
    ids: IdAllocator,
    agenda: Agenda,
    now: Micros,
    slots: Vec<Slot>,
    messages_in_flight: usize,
    /// Why each service is down, if it is: it restarts when the last cause ends.
    crash_causes: CrashCauses,
    /// The network faults in force now.
    network_faults: NetworkFaults,
    /// Each broker's subscribers, as `(broker, subscriber)`: the connections a broker watches.
    subscribers: Vec<(ServiceId, ServiceId)>,
    /// When the last message on each connection to or from a broker arrives: see [`Sim::launch`].
    channel_clear_at: DenseMap<ServiceId, DenseMap<ServiceId, Micros>>,
    events_out: Vec<TraceEvent>,
    /// The allocation [`Ctx`] records effects into, kept between inputs.
    effects_buffer: Vec<Effect>,
    /// The timers set and not yet fired, by id from `first_timer` on: false once fired or
    /// cancelled ([`Effect::CancelTimer`]). Most timers guard a call that is answered in time,
    /// and a quarter of the big run's pieces of work were such timers, each waking a service
    /// for nothing; a cancelled timer keeps its place in the agenda (so the pending work and
    /// the steps are as before) but is dropped when due. Ids are handed out in order, so this
    /// is a window from the oldest timer still waiting.
    timers_waiting: VecDeque<bool>,
    first_timer: u64,
    events_total: usize,
    finished: bool,
}

impl Sim {
    /// A run of `world`, whose every random choice comes from `rng`.
    // Never inlined into `start` (it runs once per run): inlined, the page measured +159 B brotli
    // (−30 B gzip), over the budget.
    #[inline(never)]
    pub fn new(run: RunInfo, world: World, rng: SimRng) -> Sim {
        let header = trace_header(&run, &world);
        let mut sim = Sim {
            header,
            network: world.network,
            rng,
            ids: IdAllocator::default(),
            agenda: Agenda::default(),
            now: Micros::ZERO,
            slots: Vec::new(),
            messages_in_flight: 0,
            crash_causes: CrashCauses::new(world.services.len()),
            network_faults: NetworkFaults::default(),
            subscribers: Vec::new(),
            channel_clear_at: DenseMap::new(),
            events_out: Vec::new(),
            effects_buffer: Vec::new(),
            timers_waiting: VecDeque::new(),
            first_timer: 0,
            events_total: 0,
            finished: false,
        };
        sim.emit(Event::Narration { text: world.intro });
        for (index, setup) in world.services.into_iter().enumerate() {
            let service = ServiceId(index as u16);
            // Making a machine has no effect beyond itself, so one made here only tells who
            // subscribes to a broker.
            for subscription in (setup.make)().subscriptions() {
                sim.subscribers.push((service, subscription.subscriber));
            }
            let mut tables = MemTables::default();
            seed_tables(service, setup.initial_rows, &mut tables, &mut |event| {
                sim.emit(event)
            });
            sim.slots.push(Slot {
                name: setup.info.name,
                make: setup.make,
                machine: None,
                incarnation: 0,
                tables,
            });
            sim.schedule(Micros::ZERO, Work::Start(service));
        }
        let fault_times: Vec<(Micros, Option<Micros>)> = sim
            .header
            .faults
            .iter()
            .map(|spec| (spec.at, spec.ends_at()))
            .collect();
        for (index, (at, ends_at)) in fault_times.into_iter().enumerate() {
            sim.schedule(at, Work::FaultBegins(index));
            if let Some(ends_at) = ends_at {
                sim.schedule(ends_at, Work::FaultEnds(index));
            }
        }
        sim
    }

    /// What is being run.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The current virtual time.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// True once the run has ended and emitted [`Event::RunEnded`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A service's tables as they are now.
    pub fn tables(&self, service: ServiceId) -> &MemTables {
        &self.slots[service.0 as usize].tables
    }

    /// Takes the trace events produced since the last call.
    ///
    /// The next ones are recorded into a vector sized for as many as these (up to
    /// [`DRAIN_CAPACITY_MAX`]): a driver drains a slice of work at a time, and a vector grown
    /// from empty for each was a realloc, and a copy of the events so far, at every doubling.
    pub fn drain_events(&mut self) -> Vec<TraceEvent> {
        let capacity = self.events_out.len().min(DRAIN_CAPACITY_MAX);
        std::mem::replace(&mut self.events_out, Vec::with_capacity(capacity))
    }

    /// Runs the next piece of work. Returns false once the run has ended.
    pub fn step(&mut self) -> bool {
        if self.finished {
            return false;
        }
        if self.events_total >= MAX_TRACE_EVENTS || self.agenda.len() > MAX_PENDING {
            self.finish(EndReason::Budget);
            return false;
        }
        let Some((at, work)) = self.agenda.pop_due_by(self.header.until) else {
            self.now = self.header.until;
            self.finish(EndReason::ReachedUntil);
            return false;
        };
        self.now = at;
        self.run(work);
        true
    }

    /// Runs every piece of work due at or before `t` (capped at the run's end).
    pub fn run_until(&mut self, t: Micros) {
        while !self.finished
            && self
                .agenda
                .next_at()
                .is_some_and(|at| at <= t.min(self.header.until))
        {
            self.step();
        }
        if t >= self.header.until {
            while self.step() {}
        }
    }

    fn schedule(&mut self, at: Micros, work: Work) {
        put(self.agenda.reserve(at), work);
    }

    // Forced inline: the page is built for size, where the call took the event as a pointer and
    // copied it twice, into a `TraceEvent` and then into the vector (two `memory.copy` calls
    // per trace event in WebAssembly); inlined, the event is built in place and copied once.
    #[inline(always)]
    fn emit(&mut self, event: Event) {
        self.events_total += 1;
        self.events_out.push(TraceEvent {
            at: self.now,
            event,
        });
    }

    fn finish(&mut self, reason: EndReason) {
        self.finished = true;
        self.emit(Event::RunEnded {
            reason,
            messages_in_flight: self.messages_in_flight as u64,
        });
    }

    fn is_up(&self, service: ServiceId) -> bool {
        self.slots[service.0 as usize].machine.is_some()
    }

    fn run(&mut self, mut work: Work) {
        match work {
            Work::Start(service) => self.start(service),
            Work::FaultBegins(index) => self.fault_begins(index),
            Work::FaultEnds(index) => self.fault_ends(index),
            Work::Restart(service) => {
                if self.crash_causes.remove(service, CrashCause::OwnCrash) {
                    self.restart(service);
                }
            }
            // Lent, not moved: in the page's WebAssembly, built for size, moving the envelope out
            // of the work copied its 100 bytes once more per message (issue 9's benchmark).
            Work::Arrive(ref mut envelope) => self.arrive(envelope),
            Work::Lose {
                msg,
                reason,
                from,
                to,
            } => {
                self.messages_in_flight -= 1;
                self.emit(Event::Dropped { msg, reason });
                // A connection carries its messages or breaks: a message lost between a broker
                // and a subscriber means their connection broke, and the broker learns it.
                for (broker, subscriber) in self.subscribers.clone() {
                    if (broker, subscriber) == (from, to) || (subscriber, broker) == (from, to) {
                        self.connection_lost(broker, subscriber);
                    }
                }
            }
            Work::Timer {
                service,
                incarnation,
                timer,
            } => {
                if self.timer_done(timer)
                    && self.is_up(service)
                    && self.slots[service.0 as usize].incarnation == incarnation
                {
                    self.handle(service, Input::Timer(timer));
                }
            }
        }
    }

    fn fault_begins(&mut self, index: usize) {
        let fault = self.header.faults[index].fault.clone();
        if let Fault::Crash { service } = fault {
            if self.crash_causes.add(service, CrashCause::Fault(index)) {
                self.crash(service);
            }
        } else {
            self.network_faults
                .begin(FaultOrigin::Scheduled(index), fault.clone());
            let text = describe_fault(&fault, &self.header.services, true);
            self.emit(Event::FaultBegins { fault });
            self.emit(Event::Narration { text });
        }
    }

    fn fault_ends(&mut self, index: usize) {
        let fault = self.header.faults[index].fault.clone();
        if let Fault::Crash { service } = fault {
            // Another crash may still cover the service: it stays down until the last one ends.
            if self.crash_causes.remove(service, CrashCause::Fault(index)) {
                self.restart(service);
            }
        } else if self.network_faults.end_scheduled(index).is_some() {
            let text = describe_fault(&fault, &self.header.services, false);
            self.emit(Event::FaultEnds { fault });
            self.emit(Event::Narration { text });
        }
    }

    /// Starts a crashed service again, unless something already has.
    fn restart(&mut self, service: ServiceId) {
        if !self.is_up(service) {
            let text = restart_narration(&self.slots[service.0 as usize].name);
            self.emit(Event::Narration { text });
            self.start(service);
        }
    }

    fn start(&mut self, service: ServiceId) {
        let slot = &mut self.slots[service.0 as usize];
        slot.machine = Some((slot.make)());
        self.emit(Event::ServiceUp { service });
        self.handle(service, Input::Start);
    }

    fn crash(&mut self, service: ServiceId) {
        let slot = &mut self.slots[service.0 as usize];
        let Some(machine) = slot.machine.take() else {
            return;
        };
        slot.incarnation += 1;
        let info = &self.header.services[service.0 as usize];
        let text = machine
            .crash_narration(&info.name)
            .unwrap_or_else(|| crash_narration(info));
        self.emit(Event::ServiceDown { service });
        self.emit(Event::Narration { text });
        // Its connections close with it: every broker it subscribes to learns it at once.
        for (broker, subscriber) in self.subscribers.clone() {
            if subscriber == service {
                self.connection_lost(broker, subscriber);
            }
        }
    }

    /// Tells `broker`, if it is up, that its connection to `subscriber` closed.
    fn connection_lost(&mut self, broker: ServiceId, subscriber: ServiceId) {
        if self.is_up(broker) {
            self.handle(broker, Input::ConnectionLost(subscriber));
        }
    }

    /// True for a connection to or from a broker, which keeps its messages in order as one TCP
    /// connection (an AMQP channel) does.
    fn is_ordered_channel(&self, from: ServiceId, to: ServiceId) -> bool {
        let role = |id: ServiceId| self.header.services[id.0 as usize].role;
        role(from) == ServiceRole::Broker || role(to) == ServiceRole::Broker
    }

    fn arrive(&mut self, envelope: &mut Envelope) {
        self.messages_in_flight -= 1;
        if !self.is_up(envelope.to) {
            self.emit(Event::Dropped {
                msg: envelope.id,
                reason: DropReason::ReceiverDown,
            });
            // Like a refused TCP connection, the sender learns of it at once.
            if self.is_up(envelope.from) {
                self.handle(envelope.from, Input::Refused(envelope.id));
            }
            return;
        }
        self.emit(Event::Delivered { msg: envelope.id });
        self.handle(envelope.to, Input::Message(envelope));
    }

    fn handle(&mut self, service: ServiceId, input: Input<'_>) {
        let slot = &mut self.slots[service.0 as usize];
        let Some(mut machine) = slot.machine.take() else {
            return;
        };
        let incarnation = slot.incarnation;
        let mut ctx = Ctx::new(
            self.now,
            service,
            &mut self.rng,
            &mut slot.tables,
            &mut self.ids,
        )
        .recording_into(std::mem::take(&mut self.effects_buffer));
        ctx.slow_factor = self.network_faults.slow_factor(service);
        machine.handle(input, &mut ctx);
        let mut effects = ctx.into_effects();
        self.slots[service.0 as usize].machine = Some(machine);
        for effect in effects.drain(..) {
            match effect {
                Effect::Send(envelope) => self.send(envelope),
                Effect::SetTimer { id, after } => {
                    self.timer_set(id);
                    put(
                        self.agenda.reserve_timer(self.now, after),
                        Work::Timer {
                            service,
                            incarnation,
                            timer: id,
                        },
                    )
                }
                Effect::CancelTimer(id) => {
                    self.timer_done(id);
                }
                Effect::Record(event) => self.emit(event),
                Effect::Crash { restart_after } => {
                    // Timers set above carry the old incarnation, so they never fire.
                    self.crash_causes.add(service, CrashCause::OwnCrash);
                    self.crash(service);
                    self.schedule(self.now + restart_after, Work::Restart(service));
                    break;
                }
            }
        }
        self.effects_buffer = effects;
    }

    /// Notes `timer` as waiting. Timers are set in the order of their ids (a crash may skip
    /// some, which stay marked done).
    fn timer_set(&mut self, timer: TimerId) {
        if self.timers_waiting.is_empty() {
            self.first_timer = timer.0;
        }
        let Some(index) = timer.0.checked_sub(self.first_timer) else {
            return; // Never: ids are handed out in order, and those below `first_timer` are done.
        };
        // A push per id rather than `resize`, which compiles to more code in the page.
        while self.timers_waiting.len() < index as usize {
            self.timers_waiting.push_back(false);
        }
        self.timers_waiting.push_back(true);
    }

    /// Marks `timer` fired or cancelled; returns whether it was still waiting, so whether a
    /// timer now due is delivered.
    fn timer_done(&mut self, timer: TimerId) -> bool {
        let Some(index) = timer.0.checked_sub(self.first_timer) else {
            return false;
        };
        let waiting = self
            .timers_waiting
            .get_mut(index as usize)
            .map(std::mem::take)
            .unwrap_or(false);
        while self.timers_waiting.front() == Some(&false) {
            self.timers_waiting.pop_front();
            self.first_timer += 1;
        }
        waiting
    }

    fn send(&mut self, envelope: Envelope) {
        self.emit(envelope.sent_event());
        let original = envelope.id;
        if let Some(copy) = self.launch(envelope) {
            self.emit(Event::Duplicated {
                msg: original,
                copy: copy.id,
            });
            self.launch(*copy);
        }
    }

    /// Puts a message on the network. Returns the second copy to launch when the network
    /// duplicates it, boxed: nearly always there is none, and returning an `Option<Envelope>`
    /// copied the whole envelope back out for `None` too in the page's WebAssembly, built for
    /// size (issue 9's engine benchmark).
    fn launch(&mut self, envelope: Envelope) -> Option<Box<Envelope>> {
        self.messages_in_flight += 1;
        let fate = network::fate(
            &self.network,
            self.network_faults.iter(),
            envelope.from,
            envelope.to,
            &mut self.rng,
        );
        let mut at = self.now + fate.delay;
        // On a connection to or from a broker, jitter never lets a message overtake the one
        // sent before it: it arrives no earlier than that one (ties keep their send order).
        // Only a reorder fault holds one back for later ones to pass.
        let (from, to) = (envelope.from, envelope.to);
        if fate.lost.is_none() && !fate.held_back && self.is_ordered_channel(from, to) {
            let clear_at = self
                .channel_clear_at
                .entry(from)
                .or_default()
                .entry(to)
                .or_default();
            at = at.max(*clear_at);
            *clear_at = at;
        }
        let copy = fate.duplicated.then(|| duplicate(&mut self.ids, &envelope));
        match fate.lost {
            Some(reason) => self.schedule(
                at,
                Work::Lose {
                    msg: envelope.id,
                    reason,
                    from,
                    to,
                },
            ),
            // Built where it is stored: handed to `schedule`, the envelope was copied once more.
            None => put(self.agenda.reserve(at), Work::Arrive(envelope)),
        }
        copy
    }
}

/// The network's second copy of `envelope`, under a fresh id. Cold and out of line: nearly every
/// message has none. (Written inline in [`Sim::launch`] instead, the page measured −204 B gzip
/// but +90 B brotli, over the budget.)
#[cold]
#[inline(never)]
fn duplicate(ids: &mut IdAllocator, envelope: &Envelope) -> Box<Envelope> {
    Box::new(envelope.copy_as(ids.fresh_msg()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{FaultSpec, Payload, ServiceInfo};
    use shared::service::Input;
    use shared::service::Tables;
    use shared::world::ServiceSetup;
    use std::collections::BTreeMap;

    /// Schedules work and timers at random on an [`Agenda`] (times only move forward, as in a
    /// run), popping as it goes, and checks that the work comes out in the order of a single
    /// heap: by due time, then by scheduling. `delays` are the timer delays drawn from: more of
    /// them than there are lanes sends some timers to the heap.
    fn agenda_pops_in_schedule_order(seed: u64, delays: &[u64]) {
        println!("seed {seed}, delays {delays:?}");
        let mut rng = shared::rng::SimRng::new(seed);
        let mut agenda = Agenda::default();
        // What is waiting, as (due, scheduled as n-th); each work carries its n.
        let mut waiting = std::collections::BTreeSet::new();
        let (mut now, mut scheduled) = (Micros(0), 0usize);
        for _ in 0..20_000 {
            match rng.below(3) {
                0 => {
                    let at = now + Micros(rng.below(5_000));
                    put(agenda.reserve(at), Work::FaultBegins(scheduled));
                    waiting.insert((at, scheduled));
                    scheduled += 1;
                }
                1 => {
                    let after = Micros(delays[rng.below(delays.len() as u64) as usize]);
                    put(
                        agenda.reserve_timer(now, after),
                        Work::FaultBegins(scheduled),
                    );
                    waiting.insert((now + after, scheduled));
                    scheduled += 1;
                }
                _ => {
                    let expected = waiting.pop_first();
                    let popped = agenda.pop_due_by(Micros(u64::MAX));
                    match (expected, popped) {
                        (None, None) => {}
                        (Some((at, n)), Some((popped_at, Work::FaultBegins(m)))) => {
                            assert_eq!((popped_at, m), (at, n), "seed {seed}");
                            now = at;
                        }
                        (expected, _) => panic!("seed {seed}: expected {expected:?}"),
                    }
                }
            }
            assert_eq!(agenda.len(), waiting.len(), "seed {seed}");
        }
        let due_by = now + Micros(2_000);
        while let Some((at, Work::FaultBegins(n))) = agenda.pop_due_by(due_by) {
            assert_eq!(waiting.pop_first(), Some((at, n)), "seed {seed}");
        }
        assert!(
            waiting.first().is_none_or(|(at, _)| *at > due_by),
            "seed {seed}: work due by {due_by:?} left behind"
        );
    }

    #[test]
    fn timers_in_lanes_come_out_as_from_one_heap() {
        agenda_pops_in_schedule_order(1, &[400]);
        agenda_pops_in_schedule_order(2, &[400, 3_000, 0]);
    }

    #[test]
    fn timers_beyond_the_lanes_wait_on_the_heap_in_order() {
        let delays: Vec<u64> = (0..3 * TIMER_LANES as u64).map(|i| 100 + 250 * i).collect();
        agenda_pops_in_schedule_order(3, &delays);
    }

    /// Sends `GetProduct` to service 1 on start and again on every answer or refusal; counts
    /// what came back in its table.
    struct Pinger {
        timer: Option<TimerId>,
    }
    impl Service for Pinger {
        fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
            match input {
                Input::Start => {
                    ctx.send(
                        ServiceId(1),
                        Payload::GetProduct {
                            product: 1,
                            deadline: None,
                        },
                        None,
                        None,
                    );
                    self.timer = Some(ctx.set_timer(Micros::from_secs(5)));
                }
                Input::Message(_) | Input::Refused(_) => {
                    let key = if matches!(input, Input::Refused(_)) {
                        "refused"
                    } else {
                        "answers"
                    };
                    let count = ctx.read("log", key).map_or(0, |row| row.version) + 1;
                    ctx.write("log", key, "", count);
                    ctx.send(
                        ServiceId(1),
                        Payload::GetProduct {
                            product: 1,
                            deadline: None,
                        },
                        None,
                        None,
                    );
                }
                Input::Timer(timer) => {
                    assert_eq!(
                        Some(timer),
                        self.timer,
                        "only this incarnation's timer fires"
                    );
                    ctx.write("log", "timer", "", 1);
                }
                Input::ConnectionLost(_) => {}
            }
        }
    }

    struct Echo;
    impl Service for Echo {
        fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
            if let Input::Message(message) = input {
                ctx.reply(
                    message,
                    Payload::Renamed {
                        product: 1,
                        version: 1,
                    },
                );
            }
        }
    }

    fn world(network: LinkSpec, faults: Vec<FaultSpec>) -> World {
        let setup = |id: u16, make: MachineFactory| ServiceSetup {
            info: ServiceInfo {
                id: ServiceId(id),
                name: format!("s{id}"),
                role: ServiceRole::Service,
            },
            make,
            initial_rows: vec![],
        };
        World {
            services: vec![
                setup(0, Box::new(|| Box::new(Pinger { timer: None }))),
                setup(1, Box::new(|| Box::new(Echo))),
            ],
            links: vec![(ServiceId(0), ServiceId(1))],
            copies: vec![],
            network,
            faults,
            intro: "test".into(),
        }
    }

    fn new_sim(world: World, until: Micros, seed: u64) -> Sim {
        let run = RunInfo {
            scenario: "engine-test".into(),
            seed,
            knobs: Default::default(),
            until,
        };
        Sim::new(run, world, SimRng::new(seed))
    }

    fn run(world: World, until: Micros, seed: u64) -> (Vec<TraceEvent>, Sim) {
        let mut sim = new_sim(world, until, seed);
        while sim.step() {}
        (sim.drain_events(), sim)
    }

    fn count(log: &MemTables, key: &str) -> u64 {
        log.get("log", key).map_or(0, |row| row.version)
    }

    const STEADY: LinkSpec = LinkSpec {
        latency: Micros::from_millis(10),
        jitter: Micros::from_millis(2),
        loss_per_million: 0,
    };

    #[test]
    fn every_message_takes_latency_plus_at_most_jitter() {
        let (events, sim) = run(world(STEADY, vec![]), Micros::from_secs(1), 1);
        let mut sent_at = BTreeMap::new();
        for event in &events {
            match event.event {
                Event::Sent { msg, .. } => {
                    sent_at.insert(msg, event.at);
                }
                Event::Delivered { msg } => {
                    let delay = event.at - sent_at[&msg];
                    assert!(
                        delay >= STEADY.latency && delay <= STEADY.latency + STEADY.jitter,
                        "{delay}"
                    );
                }
                _ => {}
            }
        }
        // About 1 s / (2 × 11 ms) round trips; the pinger logs each answer.
        let answers = count(sim.tables(ServiceId(0)), "answers");
        assert!((40..=50).contains(&answers), "{answers} round trips");
        assert_eq!(
            count(sim.tables(ServiceId(0)), "timer"),
            0,
            "the 5 s timer is past the end"
        );
    }

    #[test]
    fn ties_run_first_in_first_out() {
        let mut sim = new_sim(world(STEADY, vec![]), Micros::from_secs(1), 1);
        let order: Vec<u64> = (0..5)
            .map(|i| {
                let lose = Work::Lose {
                    msg: MsgId(100 + i),
                    reason: DropReason::Lost,
                    from: ServiceId(0),
                    to: ServiceId(1),
                };
                sim.schedule(Micros(7), lose);
                100 + i
            })
            .collect();
        sim.messages_in_flight += order.len();
        sim.run_until(Micros(7));
        let dropped: Vec<u64> = sim
            .drain_events()
            .iter()
            .filter_map(|e| match e.event {
                Event::Dropped { msg, .. } => Some(msg.0),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, order);
    }

    #[test]
    fn a_lossy_network_drops_with_reason_lost() {
        let lossy = LinkSpec {
            loss_per_million: 1_000_000,
            ..STEADY
        };
        let (events, _) = run(world(lossy, vec![]), Micros::from_secs(1), 3);
        let dropped = events.iter().filter(|e| {
            matches!(
                e.event,
                Event::Dropped {
                    reason: DropReason::Lost,
                    ..
                }
            )
        });
        assert_eq!(
            dropped.count(),
            1,
            "the first ping is lost, and nothing else is ever sent"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e.event, Event::Delivered { .. }))
        );
    }

    #[test]
    fn a_crashed_service_refuses_messages_and_loses_its_timers_but_not_its_tables() {
        let faults = vec![
            FaultSpec {
                at: Micros::from_millis(100),
                lasts: Some(Micros::from_millis(100)),
                fault: Fault::Crash {
                    service: ServiceId(1),
                },
            },
            FaultSpec {
                at: Micros::from_millis(300),
                lasts: Some(Micros::from_millis(10)),
                fault: Fault::Crash {
                    service: ServiceId(0),
                },
            },
        ];
        let (events, sim) = run(world(STEADY, faults), Micros::from_secs(6), 5);
        let mut to_echo = std::collections::BTreeSet::new();
        let mut refused = 0;
        for event in &events {
            match event.event {
                Event::Sent {
                    msg,
                    to: ServiceId(1),
                    ..
                } => {
                    to_echo.insert(msg);
                }
                Event::Dropped {
                    msg,
                    reason: DropReason::ReceiverDown,
                } if to_echo.contains(&msg) => refused += 1,
                _ => {}
            }
        }
        assert!(
            refused >= 5,
            "the pinger keeps hitting the crashed echo: {refused}"
        );
        let log = sim.tables(ServiceId(0));
        assert_eq!(
            count(log, "refused") as usize,
            refused,
            "each refusal reaches the sender, and the count survives its crash"
        );
        // The first incarnation's 5 s timer would fire at 5 s; only the second's fires, at 5.31 s.
        assert_eq!(count(log, "timer"), 1);
        let downs = events
            .iter()
            .filter(|e| matches!(e.event, Event::ServiceDown { .. }))
            .count();
        assert_eq!(downs, 2);
    }

    /// On start, sends one ping, sets a timer, writes a row, crashes, then tries to do it all
    /// again; counts its starts in its table.
    struct Crasher;
    impl Service for Crasher {
        fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
            match input {
                Input::Start => {
                    let starts = ctx.read("log", "starts").map_or(0, |row| row.version) + 1;
                    ctx.write("log", "starts", "", starts);
                    if starts > 1 {
                        return;
                    }
                    ctx.send(
                        ServiceId(1),
                        Payload::GetProduct {
                            product: 1,
                            deadline: None,
                        },
                        None,
                        None,
                    );
                    ctx.set_timer(Micros::from_millis(1));
                    ctx.crash(Micros::from_millis(500));
                    ctx.send(
                        ServiceId(1),
                        Payload::GetProduct {
                            product: 2,
                            deadline: None,
                        },
                        None,
                        None,
                    );
                    ctx.write("log", "after crash", "", 1);
                    ctx.narrate("never said");
                }
                Input::Timer(_) => ctx.write("log", "timer", "", 1),
                _ => {}
            }
        }
    }

    #[test]
    fn a_service_that_crashes_itself_keeps_what_it_did_before_and_restarts_later() {
        let mut world = world(STEADY, vec![]);
        world.services[0].make = Box::new(|| Box::new(Crasher));
        let (events, sim) = run(world, Micros::from_secs(1), 2);
        let sent: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::Sent {
                    label,
                    from: ServiceId(0),
                    ..
                } => Some(label.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(sent, ["GET /products/1"], "only the send before the crash");
        let echo_refused = events.iter().any(|e| {
            matches!(
                e.event,
                Event::Dropped {
                    reason: DropReason::ReceiverDown,
                    ..
                }
            )
        });
        assert!(echo_refused, "the echo's answer finds the crasher down");
        let log = sim.tables(ServiceId(0));
        assert_eq!(count(log, "starts"), 2, "it restarted once");
        assert_eq!(count(log, "after crash"), 0);
        assert_eq!(
            count(log, "timer"),
            0,
            "a timer set before the crash never fires"
        );
        let lifecycle: Vec<(Micros, bool)> = events
            .iter()
            .filter_map(|e| match e.event {
                Event::ServiceUp {
                    service: ServiceId(0),
                } => Some((e.at, true)),
                Event::ServiceDown {
                    service: ServiceId(0),
                } => Some((e.at, false)),
                _ => None,
            })
            .collect();
        assert_eq!(
            lifecycle,
            [
                (Micros::ZERO, true),
                (Micros::ZERO, false),
                (Micros::from_millis(500), true)
            ]
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(&e.event, Event::Narration { text } if text == "never said"))
        );
    }

    /// On start, sets three timers and cancels the second; logs each timer that fires.
    struct Canceller;
    impl Service for Canceller {
        fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
            match input {
                Input::Start => {
                    let timers: Vec<TimerId> = (1..=3)
                        .map(|ms| ctx.set_timer(Micros::from_millis(ms)))
                        .collect();
                    ctx.cancel_timer(timers[1]);
                }
                Input::Timer(timer) => {
                    let fired = ctx.read("log", "fired").map_or(0, |row| row.version) + 1;
                    ctx.write("log", "fired", &timer.0.to_string(), fired);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn a_cancelled_timer_never_fires_and_the_others_do() {
        let mut world = world(STEADY, vec![]);
        world.services[0].make = Box::new(|| Box::new(Canceller));
        let mut sim = new_sim(world, Micros::from_secs(1), 1);
        let mut steps = 0;
        while sim.step() {
            steps += 1;
        }
        let fired: Vec<(Micros, String)> = sim
            .drain_events()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::RowWritten { value, .. } => Some((e.at, value)),
                _ => None,
            })
            .collect();
        // Timer ids are handed out from 1: the second, set for 2 ms, was cancelled.
        assert_eq!(
            fired,
            [
                (Micros::from_millis(1), "1".to_string()),
                (Micros::from_millis(3), "3".to_string())
            ]
        );
        // The cancelled timer still took its turn in the agenda (two starts, three timers), so a
        // run takes the same steps as when services were woken for timers they ignore.
        assert_eq!(steps, 5);
        assert!(sim.timers_waiting.is_empty(), "every timer is done");
    }

    #[test]
    fn a_run_that_outgrows_its_budget_ends_and_says_so() {
        let fast = LinkSpec {
            latency: Micros(1),
            jitter: Micros::ZERO,
            loss_per_million: 0,
        };
        let (events, _) = run(world(fast, vec![]), Micros::from_secs(600), 1);
        // The bound is checked before each step, and one step emits only a few events.
        assert!(
            (MAX_TRACE_EVENTS + 1..MAX_TRACE_EVENTS + 16).contains(&events.len()),
            "{}",
            events.len()
        );
        assert!(matches!(
            events.last().unwrap().event,
            Event::RunEnded {
                reason: EndReason::Budget,
                ..
            }
        ));
    }

    #[test]
    fn run_until_stops_at_the_given_time_and_resumes() {
        let mut whole = new_sim(world(STEADY, vec![]), Micros::from_secs(1), 4);
        while whole.step() {}
        let mut parts = new_sim(world(STEADY, vec![]), Micros::from_secs(1), 4);
        let mut events = Vec::new();
        for ms in (0..=1_000).step_by(250) {
            parts.run_until(Micros::from_millis(ms));
            assert!(parts.now() <= Micros::from_millis(ms));
            events.extend(parts.drain_events());
        }
        assert!(parts.is_finished());
        assert_eq!(events, whole.drain_events());
    }
}
