//! The engine of a live run: the same loop as the simulation's, with real IO at its edges.
//!
//! One task owns every service's state machine and database and handles one input at a time,
//! exactly as the `engine` crate does; what differs is where inputs come from and where effects go.
//! Messages arrive over HTTP on each service's own port, timers (and each message's delay on its
//! link) are kept and fired by the engine on the wall clock, and the clock is the wall clock
//! since the run started. The machines are not `Send`, so the engine runs on a
//! thread of its own (see [`super::LiveRun::start`]); everything it spawns is plain data.

use super::amqp::AmqpBroker;
use super::net::Network;
use super::tables::SqliteTables;
use super::trace_log::TraceLog;
use super::{BrokerChoice, LiveConfig, LiveError};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared::in_force::{CrashCause, CrashCauses, FaultOrigin};
use shared::network::Fate;
use shared::protocol::Fault;
use shared::protocol::{
    DomainEvent, DropReason, EndReason, Event, LiveCommand, MsgId, Payload, ServiceId, ServiceInfo,
    ServiceRole, WireMessage,
};
use shared::rng::SimRng;
use shared::scenario::PreparedRun;
use shared::service::{Ctx, Effect, Envelope, IdAllocator, Input, Service, TimerId};
use shared::time::Micros;
use shared::world::{
    MachineFactory, crash_narration, describe_fault, restart_narration, seed_tables,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// One input for the engine.
#[derive(Debug)]
pub(crate) enum Work {
    /// A message arrived at its receiver's port.
    Arrive(WireMessage),
    /// A message's receiver refused the connection.
    Refused { sender: ServiceId, msg: MsgId },
    /// A service's timer fired.
    Timer {
        service: ServiceId,
        incarnation: u32,
        timer: TimerId,
    },
    /// The fault at this index of the header's faults begins.
    FaultBegins(usize),
    /// The fault at this index of the header's faults ends.
    FaultEnds(usize),
    /// A service that crashed itself is due to restart.
    OwnRestart(ServiceId),
    /// A viewer's (already checked) command.
    Command(LiveCommand),
    /// Send `payload` from `from` to `to`, as if `from`'s machine had.
    SendAs {
        from: ServiceId,
        to: ServiceId,
        payload: Payload,
    },
    /// RabbitMQ confirmed a publish: answer its publisher as the broker service would.
    Reply {
        broker: ServiceId,
        publisher: ServiceId,
        publish: MsgId,
        payload: Payload,
    },
    /// The connection between a broker and one of its subscribers broke (a message on it was
    /// lost): the broker learns it, as it does when the subscriber crashes.
    ConnectionLost {
        broker: ServiceId,
        subscriber: ServiceId,
    },
    /// RabbitMQ delivered an event for `subscriber`: send it on as the broker service.
    Deliver {
        broker: ServiceId,
        subscriber: ServiceId,
        tag: u64,
        redelivered: bool,
        event: DomainEvent,
    },
}

/// What each service's HTTP handler needs.
#[derive(Clone)]
struct Door {
    service: ServiceId,
    inbox: mpsc::Sender<Work>,
}

/// One service: its machine (absent while down), its database and its listener.
struct Node {
    info: ServiceInfo,
    make: MachineFactory,
    machine: Option<Box<dyn Service>>,
    /// Counts restarts, so timers set before a crash never fire into the new instance.
    incarnation: u32,
    tables: SqliteTables,
    rng: SimRng,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
    /// For a broker replaced by RabbitMQ: the connection standing in for its machine.
    amqp: Option<Arc<AmqpBroker>>,
}

/// The running engine.
pub(crate) struct Engine {
    log: Arc<TraceLog>,
    nodes: Vec<Node>,
    ids: IdAllocator,
    network: Arc<Network>,
    http: reqwest::Client,
    calls: Arc<Semaphore>,
    /// How many permits `calls` has: no message queue holds more.
    calls_in_flight_max: usize,
    call_timeout: Duration,
    inbox_sender: mpsc::Sender<Work>,
    inbox: mpsc::Receiver<Work>,
    /// Ends the run (a viewer's stop arrives here too, never through the inbox).
    stop: Arc<watch::Sender<bool>>,
    /// When the run's time is up.
    until: tokio::time::Instant,
    /// Whether the "too many calls" narration was said since calls last had room.
    said_calls_full: bool,
    /// Why each service is down, if it is: it restarts when the last cause ends.
    crash_causes: CrashCauses,
    /// Each broker's subscribers, as `(broker, subscriber)`: the connections a broker watches.
    subscribers: Vec<(ServiceId, ServiceId)>,
    /// The messages waiting their turn on each connection to or from a broker, which keeps
    /// their order as one TCP connection (an AMQP channel) does: see [`Engine::launch`].
    channels: BTreeMap<(ServiceId, ServiceId), mpsc::Sender<BoxFuture<'static, ()>>>,
    /// Work due later (timers, scheduled faults, restarts), by when it is due, then in the order
    /// it was set. The engine fires it itself, to the tens of microseconds: see [`Engine::run`].
    timers: BTreeMap<(Instant, u64), Later>,
    /// Numbers the entries of `timers`.
    timers_set: u64,
}

/// What the engine does when an entry of its timers is due.
enum Later {
    /// Handle this input.
    Work(Work),
    /// Start this message's job: its delay on the link is over.
    Launch(BoxFuture<'static, ()>),
}

/// Within this much of a timer's due time the engine stops waiting on tokio's timer (which
/// rounds up to its millisecond tick) and waits in short real sleeps, so a timer fires within
/// tens of microseconds of when it is due, as in the simulation.
const PRECISE_WAIT: Duration = Duration::from_millis(2);

/// The longest of those short sleeps: how long an arriving message may wait for the engine
/// while it waits for a timer.
const PRECISE_STEP: Duration = Duration::from_micros(100);

/// How long deleting a run's RabbitMQ queues may take when it ends.
const AMQP_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the starter of a run learns once it is up.
pub(crate) struct Started {
    pub log: Arc<TraceLog>,
    pub inbox: mpsc::Sender<Work>,
    pub addrs: Vec<SocketAddr>,
    pub databases: Vec<Option<PathBuf>>,
    /// Services that are RabbitMQ, not a machine: they cannot be crashed from here.
    pub external: Vec<ServiceId>,
}

impl Engine {
    /// Sets up every service (database with its initial rows, listener, machine) and the run's
    /// timers; the run's clock starts here.
    pub(crate) async fn start(
        prepared: PreparedRun,
        config: &LiveConfig,
        run_id: &str,
        data: Option<&Path>,
        stop: Arc<watch::Sender<bool>>,
    ) -> Result<(Engine, Started), LiveError> {
        let PreparedRun {
            run,
            world,
            mut rng,
        } = prepared;
        let header = shared::world::trace_header(&run, &world);
        let log =
            Arc::new(TraceLog::new(header, config.log).map_err(|e| LiveError::Io(e.to_string()))?);
        let (inbox_sender, inbox) = mpsc::channel(config.inbox_capacity.max(1));
        log.record(Event::Narration { text: world.intro });
        let mut nodes = Vec::new();
        let mut databases = Vec::new();
        let services = Self::start_services(
            world.services,
            config,
            run_id,
            data,
            &log,
            &inbox_sender,
            &mut rng,
            &mut nodes,
            &mut databases,
        )
        .await;
        if let Err(err) = services {
            // Queues declared for a run that never started are deleted all the same.
            close_brokers(&mut nodes).await;
            return Err(err);
        }
        let network = Arc::new(Network::new(world.network, rng.fork()));
        // Connections are kept and reused between calls to the same service: a crash closes
        // them all (see `serve_node`), so the next call finds the port closed and is refused.
        let http = reqwest::Client::builder()
            .connect_timeout(config.call_timeout)
            .build()
            .map_err(|e| LiveError::Io(format!("cannot set up the HTTP client: {e}")))?;
        let started = Started {
            log: log.clone(),
            inbox: inbox_sender.clone(),
            addrs: nodes.iter().map(|n| n.addr).collect(),
            databases,
            external: nodes
                .iter()
                .filter(|n| n.amqp.is_some())
                .map(|n| n.info.id)
                .collect(),
        };
        let until =
            tokio::time::Instant::from_std(log.started() + Duration::from_micros(run.until.0));
        let service_count = nodes.len();
        let subscribers = nodes
            .iter()
            .flat_map(|node| {
                let broker = node.info.id;
                (node.make)()
                    .subscriptions()
                    .into_iter()
                    .map(move |s| (broker, s.subscriber))
            })
            .collect();
        let mut engine = Engine {
            log,
            nodes,
            ids: IdAllocator::default(),
            network,
            http,
            calls: Arc::new(Semaphore::new(config.calls_in_flight_max.max(1))),
            calls_in_flight_max: config.calls_in_flight_max.max(1),
            call_timeout: config.call_timeout,
            inbox_sender,
            inbox,
            stop,
            until,
            said_calls_full: false,
            crash_causes: CrashCauses::new(service_count),
            subscribers,
            channels: BTreeMap::new(),
            timers: BTreeMap::new(),
            timers_set: 0,
        };
        for (index, spec) in world.faults.iter().enumerate() {
            if let Some(ends_at) = spec.ends_at() {
                engine.at(ends_at, Work::FaultEnds(index));
            }
            engine.at(spec.at, Work::FaultBegins(index));
        }
        spawn_flusher(engine.log.clone(), config.flush_every);
        for index in 0..engine.nodes.len() {
            engine.start_machine(ServiceId(index as u16));
        }
        Ok((engine, started))
    }

    /// Sets up each service: its database with its initial rows, its listener, and RabbitMQ in
    /// place of a broker when asked. What was set up is in `nodes` even when one fails.
    #[allow(clippy::too_many_arguments)]
    async fn start_services(
        services: Vec<shared::world::ServiceSetup>,
        config: &LiveConfig,
        run_id: &str,
        data: Option<&Path>,
        log: &Arc<TraceLog>,
        inbox_sender: &mpsc::Sender<Work>,
        rng: &mut SimRng,
        nodes: &mut Vec<Node>,
        databases: &mut Vec<Option<PathBuf>>,
    ) -> Result<(), LiveError> {
        for setup in services {
            let service = setup.info.id;
            let (mut tables, path) = open_tables(data, &setup.info)?;
            seed_tables(service, setup.initial_rows, &mut tables, &mut |event| {
                log.record(event);
            });
            let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
                LiveError::Io(format!("cannot listen for {}: {e}", setup.info.name))
            })?;
            let addr = listener
                .local_addr()
                .map_err(|e| LiveError::Io(e.to_string()))?;
            let door = Door {
                service,
                inbox: inbox_sender.clone(),
            };
            let amqp = match (&config.broker, setup.info.role) {
                (BrokerChoice::Amqp(url), ServiceRole::Broker) => {
                    let Some(broker_config) = (setup.make)().broker_config() else {
                        return Err(LiveError::Io(format!(
                            "{} has no broker to stand in for",
                            setup.info.name
                        )));
                    };
                    let broker = AmqpBroker::connect(
                        url,
                        run_id.to_string(),
                        service,
                        broker_config,
                        log.clone(),
                        inbox_sender.clone(),
                    )
                    .await
                    .map_err(|e| {
                        let why = url.scrub(&e.to_string());
                        LiveError::Io(format!("cannot use RabbitMQ at {url}: {why}"))
                    })?;
                    Some(broker)
                }
                _ => None,
            };
            databases.push(path);
            nodes.push(Node {
                info: setup.info,
                make: setup.make,
                machine: None,
                incarnation: 0,
                tables,
                rng: rng.fork(),
                addr,
                server: Some(tokio::spawn(serve_node(listener, door))),
                amqp,
            });
        }
        Ok(())
    }

    /// Ends the run at the next chance.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Handles inputs until the run ends (stopped, its time up, or its budget spent), then
    /// closes every listener and deletes its RabbitMQ queues. A panic while handling an input
    /// ends the run the same way.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let until = self.until;
        tighten_timer_slack();
        let handled = std::panic::AssertUnwindSafe(async {
            loop {
                if *stop.borrow() {
                    return EndReason::Stopped;
                }
                if tokio::time::Instant::now() >= until {
                    return EndReason::ReachedUntil;
                }
                // Every timer due by now, in order, before the next input.
                let now = Instant::now();
                while let Some(entry) = self.timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    match entry.remove() {
                        Later::Work(work) => self.work(work),
                        Later::Launch(job) => {
                            tokio::spawn(job);
                        }
                    }
                    if self.log.is_full() {
                        return EndReason::Budget;
                    }
                }
                let next_due = self.timers.first_key_value().map(|(&(due, _), _)| due);
                let work = match self.inbox.try_recv() {
                    Ok(work) => work,
                    // Every sender is gone: nobody can reach the run any more.
                    Err(mpsc::error::TryRecvError::Disconnected) => return EndReason::Stopped,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if let Some(due) = next_due
                            && due <= now + PRECISE_WAIT
                        {
                            // This thread is the engine's own: a short real sleep holds up
                            // nothing else.
                            std::thread::sleep(
                                due.saturating_duration_since(now).min(PRECISE_STEP),
                            );
                            continue;
                        }
                        let wake = next_due
                            .map(|due| due.checked_sub(PRECISE_WAIT).unwrap_or(now))
                            .map(tokio::time::Instant::from_std)
                            .map_or(until, |wake| wake.min(until));
                        tokio::select! {
                            biased;
                            _ = stop.wait_for(|stop| *stop) => return EndReason::Stopped,
                            () = tokio::time::sleep_until(wake) => continue,
                            work = self.inbox.recv() => match work {
                                Some(work) => work,
                                None => return EndReason::Stopped,
                            },
                        }
                    }
                };
                self.work(work);
                if self.log.is_full() {
                    return EndReason::Budget;
                }
            }
        })
        .catch_unwind()
        .await;
        let reason = handled.unwrap_or_else(|_| {
            tracing::error!("a live run failed while handling an input; it ends here");
            self.log.record(Event::Narration {
                text: "The live run stopped because of a server error.".into(),
            });
            EndReason::Stopped
        });
        self.log.finish(reason);
        for node in &mut self.nodes {
            if let Some(server) = node.server.take() {
                server.abort();
            }
        }
        close_brokers(&mut self.nodes).await;
    }

    /// Does `work` at `at` on the run's clock.
    fn at(&mut self, at: Micros, work: Work) {
        let due = self.log.started() + Duration::from_micros(at.0);
        self.due(due, work);
    }

    /// Does `work` once `due` has come (see [`Engine::run`]).
    fn due(&mut self, due: Instant, work: Work) {
        self.timers_set += 1;
        self.timers
            .insert((due, self.timers_set), Later::Work(work));
    }

    fn work(&mut self, work: Work) {
        match work {
            Work::Arrive(message) => self.arrive(message),
            Work::Refused { sender, msg } => {
                let recorded = self.log.record(Event::Dropped {
                    msg,
                    reason: DropReason::ReceiverDown,
                });
                // Like a refused TCP connection, the sender learns of it at once.
                if recorded {
                    match self.node(sender).amqp.clone() {
                        Some(amqp) => amqp.refused(msg),
                        None => self.handle(sender, Input::Refused(msg)),
                    }
                }
            }
            Work::Timer {
                service,
                incarnation,
                timer,
            } => {
                if self.node(service).incarnation == incarnation {
                    self.handle(service, Input::Timer(timer));
                }
            }
            Work::FaultBegins(index) => {
                let fault = self.log.header().faults[index].fault.clone();
                self.fault_begins(FaultOrigin::Scheduled(index), fault);
            }
            Work::FaultEnds(index) => self.fault_ends(index),
            Work::OwnRestart(service) => {
                if self.crash_causes.remove(service, CrashCause::OwnCrash) {
                    self.restart(service);
                }
            }
            Work::Command(command) => self.command(command),
            Work::SendAs { from, to, payload } => {
                self.send_as(from, to, payload);
            }
            Work::Reply {
                broker,
                publisher,
                publish,
                payload,
            } => {
                let now = self.log.now();
                let node = &mut self.nodes[broker.0 as usize];
                let mut ctx = Ctx::new(now, broker, &mut node.rng, &mut node.tables, &mut self.ids);
                ctx.send(publisher, payload, None, Some(publish));
                let effects = ctx.into_effects();
                let incarnation = node.incarnation;
                self.carry_out(broker, incarnation, effects);
            }
            Work::ConnectionLost { broker, subscriber } => {
                self.connection_lost(broker, subscriber);
            }
            Work::Deliver {
                broker,
                subscriber,
                tag,
                redelivered,
                event,
            } => {
                let deliver = Payload::Deliver {
                    tag,
                    redelivered,
                    event,
                };
                let msg = self.send_as(broker, subscriber, deliver);
                if let Some(amqp) = &self.node(broker).amqp {
                    amqp.sent_delivery(msg, tag);
                }
            }
        }
    }

    /// Sends `payload` from `from` to `to` as if `from`'s machine had; returns the message.
    fn send_as(&mut self, from: ServiceId, to: ServiceId, payload: Payload) -> MsgId {
        let now = self.log.now();
        let node = &mut self.nodes[from.0 as usize];
        let mut ctx = Ctx::new(now, from, &mut node.rng, &mut node.tables, &mut self.ids);
        let msg = ctx.send(to, payload, None, None);
        let effects = ctx.into_effects();
        let incarnation = node.incarnation;
        self.carry_out(from, incarnation, effects);
        msg
    }

    fn node(&self, service: ServiceId) -> &Node {
        &self.nodes[service.0 as usize]
    }

    /// Tells `broker` (its machine, or RabbitMQ's stand-in) that its connection to `subscriber`
    /// closed.
    fn connection_lost(&mut self, broker: ServiceId, subscriber: ServiceId) {
        match self.node(broker).amqp.clone() {
            Some(amqp) => amqp.connection_lost(subscriber),
            None => self.handle(broker, Input::ConnectionLost(subscriber)),
        }
    }

    /// True for a connection to or from a broker, which keeps its messages in order.
    fn is_ordered_channel(&self, from: ServiceId, to: ServiceId) -> bool {
        let role = |id: ServiceId| self.nodes.get(id.0 as usize).map(|n| n.info.role);
        role(from) == Some(ServiceRole::Broker) || role(to) == Some(ServiceRole::Broker)
    }

    fn command(&mut self, command: LiveCommand) {
        match command {
            LiveCommand::Stop => self.stop(),
            LiveCommand::Load { on } => {
                let clients: Vec<ServiceId> = self
                    .nodes
                    .iter()
                    .filter(|n| n.info.role == ServiceRole::Client)
                    .map(|n| n.info.id)
                    .collect();
                for client in clients {
                    let name = self.node(client).info.name.clone();
                    if on {
                        self.crash_causes.clear(client);
                        self.restart_with(
                            client,
                            format!("The load resumes: {name} starts again."),
                        );
                    } else if self.crash_causes.add(client, CrashCause::Command) {
                        self.crash(
                            client,
                            Some(format!("The load stops: {name} sends nothing more.")),
                        );
                    }
                }
            }
            LiveCommand::Crash { service } => {
                self.fault_begins(FaultOrigin::Command, Fault::Crash { service })
            }
            // A viewer's restart, or healing a crash, overrides every crash covering the service.
            LiveCommand::Restart { service }
            | LiveCommand::Heal {
                fault: Fault::Crash { service },
            } => {
                self.crash_causes.clear(service);
                self.restart(service);
            }
            LiveCommand::Fault { fault } => self.fault_begins(FaultOrigin::Command, fault),
            LiveCommand::Heal { fault } => {
                for healed in self.network.heal(&fault) {
                    self.record_fault(healed, false);
                }
            }
        }
    }

    /// A fault begins: a crash stops its service, unless another crash already has; any other
    /// fault changes the network, on top of those in force.
    fn fault_begins(&mut self, origin: FaultOrigin, fault: Fault) {
        if let Fault::Crash { service } = fault {
            let cause = match origin {
                FaultOrigin::Scheduled(index) => CrashCause::Fault(index),
                FaultOrigin::Command => CrashCause::Command,
            };
            if self.crash_causes.add(service, cause) {
                self.crash(service, None);
            }
            return;
        }
        self.network.begin(origin, fault.clone());
        self.record_fault(fault, true);
    }

    /// The scheduled fault at `index` ends: a crashed service restarts unless another crash
    /// still covers it; the network loses this fault and keeps the others.
    fn fault_ends(&mut self, index: usize) {
        if let Fault::Crash { service } = self.log.header().faults[index].fault {
            if self.crash_causes.remove(service, CrashCause::Fault(index)) {
                self.restart(service);
            }
            return;
        }
        if let Some(fault) = self.network.end_scheduled(index) {
            self.record_fault(fault, false);
        }
    }

    /// Records a network fault beginning or ending, and narrates it, as the simulation does.
    fn record_fault(&self, fault: Fault, begins: bool) {
        let text = describe_fault(&fault, &self.log.header().services, begins);
        self.log.record(if begins {
            Event::FaultBegins { fault }
        } else {
            Event::FaultEnds { fault }
        });
        self.log.record(Event::Narration { text });
    }

    /// Stops a service as a crash does: its listener closes (calls to it are refused), its
    /// memory and timers are lost, its database stays.
    fn crash(&mut self, service: ServiceId, narration: Option<String>) {
        let node = &mut self.nodes[service.0 as usize];
        let Some(machine) = node.machine.take() else {
            return;
        };
        node.incarnation += 1;
        if let Some(server) = node.server.take() {
            server.abort();
        }
        let text = narration.unwrap_or_else(|| {
            machine
                .crash_narration(&node.info.name)
                .unwrap_or_else(|| crash_narration(&node.info))
        });
        self.log.record(Event::ServiceDown { service });
        self.log.record(Event::Narration { text });
        // Its connections close with it: every broker it subscribes to learns it at once.
        for (broker, subscriber) in self.subscribers.clone() {
            if subscriber == service {
                self.connection_lost(broker, subscriber);
            }
        }
    }

    fn restart(&mut self, service: ServiceId) {
        let text = restart_narration(&self.node(service).info.name);
        self.restart_with(service, text);
    }

    /// Starts a stopped service again on its own port, from its database.
    fn restart_with(&mut self, service: ServiceId, narration: String) {
        let node = &mut self.nodes[service.0 as usize];
        if node.machine.is_some() {
            return;
        }
        let listener = match std::net::TcpListener::bind(node.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
        {
            Ok(listener) => listener,
            Err(err) => {
                warn!(
                    "{} cannot listen on {} again: {err}",
                    node.info.name, node.addr
                );
                let text = format!(
                    "{} cannot restart: its port {} is taken ({err}).",
                    node.info.name,
                    node.addr.port()
                );
                self.log.record(Event::Narration { text });
                return;
            }
        };
        let door = Door {
            service,
            inbox: self.inbox_sender.clone(),
        };
        node.server = Some(tokio::spawn(serve_node(listener, door)));
        self.log.record(Event::Narration { text: narration });
        self.start_machine(service);
    }

    fn start_machine(&mut self, service: ServiceId) {
        let node = &mut self.nodes[service.0 as usize];
        if node.amqp.is_some() {
            // RabbitMQ runs on its own; its queues and deliveries need no machine here.
            self.log.record(Event::ServiceUp { service });
            return;
        }
        node.machine = Some((node.make)());
        self.log.record(Event::ServiceUp { service });
        self.handle(service, Input::Start);
    }

    fn arrive(&mut self, message: WireMessage) {
        let Some(node) = self.nodes.get(message.to.0 as usize) else {
            return;
        };
        if node.machine.is_none() {
            // It reached a connection the crashed service had open: refused all the same.
            if self.log.record(Event::Dropped {
                msg: message.id,
                reason: DropReason::ReceiverDown,
            }) {
                self.handle(message.from, Input::Refused(message.id));
            }
            return;
        }
        if !self.log.record(Event::Delivered { msg: message.id }) {
            return;
        }
        let mut envelope = Envelope {
            id: message.id,
            from: message.from,
            to: message.to,
            op: message.op,
            caused_by: message.caused_by,
            payload: message.payload,
        };
        self.handle(envelope.to, Input::Message(&mut envelope));
    }

    fn handle(&mut self, service: ServiceId, input: Input<'_>) {
        let now = self.log.now();
        let Some(node) = self.nodes.get_mut(service.0 as usize) else {
            return;
        };
        let Some(machine) = node.machine.as_mut() else {
            return;
        };
        let mut ctx = Ctx::new(now, service, &mut node.rng, &mut node.tables, &mut self.ids);
        ctx.slow_factor = self.network.slow_factor(service);
        machine.handle(input, &mut ctx);
        let effects = ctx.into_effects();
        let incarnation = node.incarnation;
        self.carry_out(service, incarnation, effects);
    }

    /// Carries out a machine's effects. Every kind of effect is matched here, so a new one
    /// fails to compile until the live runtime knows what to do with it.
    fn carry_out(&mut self, service: ServiceId, incarnation: u32, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(envelope) => self.send(envelope),
                Effect::SetTimer { id, after } => {
                    let due = Instant::now() + Duration::from_micros(after.0);
                    let timer = Work::Timer {
                        service,
                        incarnation,
                        timer: id,
                    };
                    self.due(due, timer);
                }
                // The service ignores the timer when it fires: delivered as usual.
                Effect::CancelTimer(_) => {}
                Effect::Record(event) => {
                    self.log.record(event);
                }
                // A service's own failpoint: it dies here, for real (its port closes), and
                // comes back when the scenario says.
                Effect::Crash { restart_after } => {
                    self.crash_causes.add(service, CrashCause::OwnCrash);
                    self.crash(service, None);
                    let due = Instant::now() + Duration::from_micros(restart_after.0);
                    self.due(due, Work::OwnRestart(service));
                }
            }
        }
    }

    /// Sends a message: records it, and puts it (and a copy, when the network duplicates it)
    /// on the network.
    fn send(&mut self, envelope: Envelope) {
        self.log.record(envelope.sent_event());
        let fate = self.network.fate(envelope.from, envelope.to);
        let copy = fate.duplicated.then(|| {
            let copy = envelope.copy_as(self.ids.fresh_msg());
            self.log.record(Event::Duplicated {
                msg: envelope.id,
                copy: copy.id,
            });
            copy
        });
        self.launch(envelope, fate);
        if let Some(copy) = copy {
            let fate = self.network.fate(copy.from, copy.to);
            self.launch(copy, fate);
        }
    }

    /// Puts a message on the network: after the delay its fate gives, an HTTP
    /// `POST /messages` to its receiver's port (or, to RabbitMQ, an AMQP publish or ack).
    fn launch(&mut self, envelope: Envelope, fate: Fate) {
        let Ok(permit) = self.calls.clone().try_acquire_owned() else {
            // The bound on open calls: the message is not sent, as a full connection pool fails.
            self.log.record(Event::Dropped {
                msg: envelope.id,
                reason: DropReason::Lost,
            });
            if !self.said_calls_full {
                self.said_calls_full = true;
                let text =
                    "Too many calls are open at once: new messages are dropped until some finish.";
                self.log.record(Event::Narration { text: text.into() });
            }
            return;
        };
        self.said_calls_full = false;
        let Some(receiver) = self.nodes.get(envelope.to.0 as usize) else {
            return;
        };
        let due = Instant::now() + Duration::from_micros(fate.delay.0);
        let log = self.log.clone();
        let (from, to) = (envelope.from, envelope.to);
        let ordered = self.is_ordered_channel(from, to);
        if let Some(reason) = fate.lost {
            // A connection carries its messages or breaks: a message lost between a broker and
            // a subscriber means their connection broke, and the broker learns it.
            let broken = self
                .subscribers
                .iter()
                .copied()
                .find(|&(b, s)| (b, s) == (from, to) || (s, b) == (from, to));
            let inbox = self.inbox_sender.clone();
            let job = async move {
                let _permit = permit;
                log.record(Event::Dropped {
                    msg: envelope.id,
                    reason,
                });
                if let Some((broker, subscriber)) = broken {
                    let _ = inbox
                        .send(Work::ConnectionLost { broker, subscriber })
                        .await;
                }
            };
            self.go(job.boxed(), due, ordered && !fate.held_back, (from, to));
            return;
        }
        if let Some(amqp) = receiver.amqp.clone() {
            let job = async move {
                let _permit = permit;
                match &envelope.payload {
                    Payload::Publish(event) => {
                        amqp.publish(envelope.id, envelope.from, event).await;
                    }
                    Payload::Ack { tag } => amqp.ack(envelope.id, *tag).await,
                    _ => {
                        log.record(Event::Delivered { msg: envelope.id });
                    }
                }
            };
            self.go(job.boxed(), due, ordered && !fate.held_back, (from, to));
            return;
        }
        let url = format!("http://{}/messages", receiver.addr);
        let message = WireMessage {
            id: envelope.id,
            from: envelope.from,
            to: envelope.to,
            op: envelope.op,
            caused_by: envelope.caused_by,
            payload: envelope.payload,
        };
        let inbox = self.inbox_sender.clone();
        let request = self
            .http
            .post(url)
            .json(&message)
            .timeout(self.call_timeout);
        let job = async move {
            let _permit = permit;
            match request.send().await {
                Ok(response) if response.status() == StatusCode::ACCEPTED => {}
                Ok(response) => {
                    debug!("message {:?} rejected: {}", message.id, response.status());
                    log.record(Event::Dropped {
                        msg: message.id,
                        reason: DropReason::Lost,
                    });
                }
                Err(err) if err.is_connect() => {
                    let refused = Work::Refused {
                        sender: message.from,
                        msg: message.id,
                    };
                    let _ = inbox.send(refused).await;
                }
                Err(err) => {
                    debug!("message {:?} failed: {err}", message.id);
                    log.record(Event::Dropped {
                        msg: message.id,
                        reason: DropReason::Lost,
                    });
                }
            }
        };
        self.go(job.boxed(), due, ordered && !fate.held_back, (from, to));
    }

    /// Runs a message's `job` once `due` has come: on a connection that keeps its order, after
    /// every job queued on it before (so jitter never lets a message overtake the one sent
    /// before it, and the receiver's inbox gets them in order), waiting on a tokio timer;
    /// otherwise on its own, started by the engine when due (see [`Engine::run`]).
    fn go(
        &mut self,
        job: BoxFuture<'static, ()>,
        due: Instant,
        in_order: bool,
        channel: (ServiceId, ServiceId),
    ) {
        if !in_order {
            self.timers_set += 1;
            self.timers
                .insert((due, self.timers_set), Later::Launch(job));
            return;
        }
        let job = async move {
            tokio::time::sleep_until(due.into()).await;
            job.await;
        }
        .boxed();
        // Each job holds one of the permits of `calls`, so a queue never holds more than those.
        let capacity = self.calls_in_flight_max;
        let sender = self.channels.entry(channel).or_insert_with(|| {
            let (sender, mut jobs) = mpsc::channel::<BoxFuture<'static, ()>>(capacity);
            tokio::spawn(async move {
                while let Some(job) = jobs.recv().await {
                    job.await;
                }
            });
            sender
        });
        if let Err(err) = sender.try_send(job) {
            // Cannot happen while permits bound the jobs; run it unordered rather than lose it.
            let job = match err {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job
                }
            };
            tokio::spawn(job);
        }
    }
}

/// Asks Linux to end this thread's short sleeps (the engine's, waiting for a timer) within 1 µs
/// of when they are due instead of its default 50 µs of slack. Best effort: where it is refused
/// or not Linux, a timer fires that much later.
fn tighten_timer_slack() {
    #[cfg(target_os = "linux")]
    if let Err(err) = std::fs::write("/proc/thread-self/timerslack_ns", "1000") {
        debug!("cannot tighten the engine thread's timer slack: {err}");
    }
}

/// Deletes the queues of every broker RabbitMQ stands in for, each within a bound of time.
async fn close_brokers(nodes: &mut [Node]) {
    for node in nodes {
        if let Some(amqp) = node.amqp.take()
            && tokio::time::timeout(AMQP_CLOSE_TIMEOUT, amqp.close())
                .await
                .is_err()
        {
            warn!(
                "RabbitMQ did not delete {}'s queues within {AMQP_CLOSE_TIMEOUT:?}; they expire after ten idle minutes",
                node.info.name
            );
        }
    }
}

/// Opens a service's database: a new file in the run's own folder, or memory.
fn open_tables(
    data: Option<&Path>,
    info: &ServiceInfo,
) -> Result<(SqliteTables, Option<PathBuf>), LiveError> {
    let fail =
        |e: rusqlite::Error| LiveError::Io(format!("cannot open {}'s database: {e}", info.name));
    match data {
        None => Ok((SqliteTables::open_in_memory().map_err(fail)?, None)),
        Some(folder) => {
            // The folder is the run's own and new, so the file is too.
            let path = folder.join(super::database_file_name(info));
            Ok((SqliteTables::open_file(&path).map_err(fail)?, Some(path)))
        }
    }
}

/// Flushes the log's pending events every `every`, so viewers see them within that time.
fn spawn_flusher(log: Arc<TraceLog>, every: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !log.is_finished() {
            ticks.tick().await;
            log.flush();
        }
    });
}

/// The largest message a live service takes, in bytes: far above any `WireMessage`.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024;

/// Serves one service's port until aborted: `POST /messages` takes a message, `GET /healthz`.
/// Each connection is served (keep-alive) by a task this one owns, so aborting it — a crash —
/// closes the listener and every open connection at once, as a process that dies does.
async fn serve_node(listener: TcpListener, door: Door) {
    let app = Router::new()
        .route("/messages", post(take_message))
        .route("/healthz", get(|| async { "ok" }))
        // A larger body is refused with 413 before it is read.
        .layer(DefaultBodyLimit::max(MESSAGE_BYTES_MAX))
        .with_state(door);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                warn!("a live service cannot accept a connection: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                debug!("a live service's connection ended: {err}");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Hands an arriving message to the engine: 202 once it is queued, 503 when the engine's inbox
/// is full (the bound on work waiting), 400 when it was sent to the wrong port.
async fn take_message(
    State(door): State<Door>,
    axum::Json(message): axum::Json<WireMessage>,
) -> (StatusCode, &'static str) {
    if message.to != door.service {
        return (
            StatusCode::BAD_REQUEST,
            "this message is for another service",
        );
    }
    match door.inbox.try_send(Work::Arrive(message)) {
        Ok(()) => (StatusCode::ACCEPTED, "accepted"),
        Err(mpsc::error::TrySendError::Full(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "too busy: try again later")
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "the run has ended")
        }
    }
}
