//! The client: the users of the system. It runs a workload — a list of operations (reads of
//! orders, renames of products, new orders), each started at jittered intervals — and ends each
//! operation with the answer, a refusal or its own timeout.

use super::{
    DRIVER_DETAILS_TABLE, DRIVERS_TABLE, PRODUCTS_TABLE, new_rating_tenths, renamed_driver_name,
    renamed_product_name,
};
use crate::protocol::{MsgId, MsgMap, Observed, OpId, Outcome, Payload, RowKey, ServiceId};
use crate::rng::SimRng;
use crate::service::{Ctx, Input, Service, TimerId};
use crate::slot_map::SlotMap;
use crate::time::Micros;

/// Names of the client's operations, as they appear in the trace.
pub const READ_ORDER_OP: &str = "read order";
/// See [`READ_ORDER_OP`].
pub const RENAME_PRODUCT_OP: &str = "rename product";
/// See [`READ_ORDER_OP`].
pub const CREATE_ORDER_OP: &str = "create order";
pub const READ_RIDE_OP: &str = "read ride";
/// See [`READ_ORDER_OP`].
pub const RENAME_DRIVER_OP: &str = "rename driver";
/// See [`READ_ORDER_OP`].
pub const RATE_DRIVER_OP: &str = "rate driver";

/// True for the operations that read (`read order`, `read ride`): their answers are what stale
/// reads and served lag judge.
pub fn is_read_op(name: &str) -> bool {
    name.starts_with("read ")
}

/// One kind of operation of the workload.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Its name in the trace, such as [`READ_ORDER_OP`].
    pub name: &'static str,
    /// Mean time between two of them; zero for none.
    pub every: Micros,
    /// The service the client asks.
    pub to: ServiceId,
    /// What it asks.
    pub request: RequestKind,
}

/// What an operation asks, and how its answer is read.
#[derive(Clone, Debug)]
pub enum RequestKind {
    /// Read a random order of `1..=orders` with its product names, owned by `source`.
    ReadOrder {
        /// Orders are numbered `1..=orders`.
        orders: u64,
        /// The service owning product names, whose versions the answer reflects.
        source: ServiceId,
    },
    /// Rename a random product of `1..=products`, owned by `source`.
    RenameProduct {
        /// Products are numbered `1..=products`.
        products: u64,
        /// The service owning product names.
        source: ServiceId,
    },
    /// Create an order of `products_per_order` distinct products of `1..=products`. Its number
    /// is the operation's id: unique within the run, even across restarts of the client, since
    /// ids come from the driver.
    CreateOrder {
        /// Products are numbered `1..=products`.
        products: u64,
        /// How many distinct products each order holds.
        products_per_order: u64,
    },
    /// Read a random ride of `1..=rides` with its driver's name, rating and car, all owned by
    /// `source`.
    ReadRide {
        /// Rides are numbered `1..=rides`.
        rides: u64,
        /// The service owning drivers, whose versions the answer reflects.
        source: ServiceId,
    },
    /// Rename a random driver of `1..=drivers`, owned by `source`.
    RenameDriver {
        /// Drivers are numbered `1..=drivers`.
        drivers: u64,
        /// The service owning drivers.
        source: ServiceId,
    },
    /// Change the rating of a random driver of `1..=drivers`, owned by `source`.
    RateDriver {
        /// Drivers are numbered `1..=drivers`.
        drivers: u64,
        /// The service owning drivers.
        source: ServiceId,
    },
}

impl RequestKind {
    fn payload(&self, op: OpId, rng: &mut SimRng) -> Payload {
        match self {
            RequestKind::ReadOrder { orders, .. } => Payload::ReadOrder {
                order: 1 + rng.below(*orders),
            },
            RequestKind::RenameProduct { products, .. } => {
                let product = 1 + rng.below(*products);
                let name = renamed_product_name(product, rng);
                Payload::RenameProduct { product, name }
            }
            RequestKind::CreateOrder {
                products,
                products_per_order,
            } => {
                let wanted = (*products_per_order).min(*products);
                let mut chosen: Vec<u64> = Vec::new();
                while (chosen.len() as u64) < wanted {
                    let product = 1 + rng.below(*products);
                    if !chosen.contains(&product) {
                        chosen.push(product);
                    }
                }
                Payload::CreateOrder {
                    order: op.0,
                    products: chosen,
                }
            }
            RequestKind::ReadRide { rides, .. } => Payload::ReadRide {
                ride: 1 + rng.below(*rides),
            },
            RequestKind::RenameDriver { drivers, .. } => {
                let driver = 1 + rng.below(*drivers);
                let name = renamed_driver_name(driver, rng);
                Payload::RenameDriver { driver, name }
            }
            RequestKind::RateDriver { drivers, .. } => Payload::RateDriver {
                driver: 1 + rng.below(*drivers),
                rating_tenths: new_rating_tenths(rng),
            },
        }
    }

    /// The versions a successful answer reflects: what a read saw, or what a write stored.
    /// `None` when `answer` is not a success of this kind.
    fn observed(&self, answer: &Payload) -> Option<Vec<Observed>> {
        let seen = |source: ServiceId, table: &'static str, key: u64, version: u64| Observed {
            source_service: source,
            source_table: table.into(),
            key: RowKey::number(key),
            version,
        };
        let product = |source, product, version| seen(source, PRODUCTS_TABLE, product, version);
        match (self, answer) {
            // A name a degraded read could not give (version 0) reflects no version of Product's.
            // Sized up front: collected from a filter, the vector would start at four and grow.
            (RequestKind::ReadOrder { source, .. }, Payload::OrderDetails { items, .. }) => {
                let mut observed = Vec::with_capacity(items.len());
                observed.extend(
                    items
                        .iter()
                        .filter(|item| item.version > 0)
                        .map(|item| product(*source, item.product, item.version)),
                );
                Some(observed)
            }
            (
                RequestKind::RenameProduct { source, .. },
                Payload::Renamed {
                    product: id,
                    version,
                },
            ) => Some(vec![product(*source, *id, *version)]),
            (RequestKind::CreateOrder { .. }, Payload::OrderAccepted { .. }) => Some(Vec::new()),
            // A ride's answer reflects two rows of Driver: the name (through Ride's copy) and the
            // rating and car (through Ride's cache or a call).
            (
                RequestKind::ReadRide { source, .. },
                Payload::RideDetails {
                    driver, details, ..
                },
            ) => Some(vec![
                seen(*source, DRIVERS_TABLE, driver.driver, driver.version),
                seen(
                    *source,
                    DRIVER_DETAILS_TABLE,
                    details.driver,
                    details.version,
                ),
            ]),
            (
                RequestKind::RenameDriver { source, .. },
                Payload::DriverRenamed { driver, version },
            ) => Some(vec![seen(*source, DRIVERS_TABLE, *driver, *version)]),
            (RequestKind::RateDriver { source, .. }, Payload::DriverRated { driver, version }) => {
                Some(vec![seen(*source, DRIVER_DETAILS_TABLE, *driver, *version)])
            }
            _ => None,
        }
    }
}

/// The client's workload.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The operations it runs, each on its own schedule.
    pub operations: Vec<Operation>,
    /// How long the client waits for any answer.
    pub timeout: Micros,
}

#[derive(Debug)]
struct PendingOp {
    op: OpId,
    operation: usize,
    started: Micros,
    timer: TimerId,
}

/// A timer that starts the next operation of this index of the workload, planned for `due`.
#[derive(Copy, Clone, Debug, PartialEq)]
struct NextTimer {
    timer: TimerId,
    operation: usize,
    due: Micros,
}

/// The client.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    /// Operations waiting for their answer, by request; each knows the timer that gives up on it.
    pending: MsgMap<PendingOp>,
    /// The timers that start the next operations: one per kind of operation, so a short vector
    /// found by a scan. (A timeout is found among `pending` by its timer: an answered operation's
    /// timeout is cancelled and never fires in a simulation, and a tree of timers kept an insert
    /// and a remove per operation for it, generic tree code in the page's WebAssembly.)
    next_timers: Vec<NextTimer>,
}

impl Client {
    /// A client with no operation in progress.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            config,
            pending: SlotMap::new(),
            next_timers: Vec::new(),
        }
    }

    /// Plans the next operation a uniformly jittered interval averaging its `every` after
    /// `planned`, when the one before was planned: an open-loop load generator, like wrk2 or
    /// k6's constant arrival rate. A timer that fires late (a live run on a busy machine) does not
    /// push every later operation back; the next one is due as planned, at once if that has
    /// passed. The simulation fires every timer on time, so there `planned` is now.
    fn schedule(&mut self, operation: usize, planned: Micros, ctx: &mut Ctx<'_>) {
        let every = self.config.operations[operation].every;
        if every == Micros::ZERO {
            return;
        }
        let due = planned + Micros(every.0 / 2 + ctx.rng.below(every.0));
        let timer = ctx.set_timer(due.saturating_sub(ctx.now));
        self.next_timers.push(NextTimer {
            timer,
            operation,
            due,
        });
    }

    fn start(&mut self, operation: usize, ctx: &mut Ctx<'_>) {
        let spec = &self.config.operations[operation];
        let op = ctx.start_op(spec.name);
        let payload = spec.request.payload(op, ctx.rng);
        let request = ctx.send(spec.to, payload, Some(op), None);
        let timer = ctx.set_timer(self.config.timeout);
        self.pending.insert(
            request.key(),
            PendingOp {
                op,
                operation,
                started: ctx.now,
                timer,
            },
        );
    }

    fn finish(
        &mut self,
        request: MsgId,
        outcome: Outcome,
        observed: Vec<Observed>,
        ctx: &mut Ctx<'_>,
    ) {
        if let Some(pending) = self.pending.remove(&request.key()) {
            ctx.cancel_timer(pending.timer);
            ctx.finish_op(pending.op, pending.started, outcome, observed);
        }
    }
}

impl Service for Client {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => {
                for operation in 0..self.config.operations.len() {
                    self.schedule(operation, ctx.now, ctx);
                }
            }
            Input::Timer(timer) => {
                if let Some(at) = self.next_timers.iter().position(|t| t.timer == timer) {
                    let NextTimer { operation, due, .. } = self.next_timers.swap_remove(at);
                    self.start(operation, ctx);
                    self.schedule(operation, due, ctx);
                } else if let Some(request) = self
                    .pending
                    .iter()
                    .find(|(_, pending)| pending.timer == timer)
                    .map(|(request, _)| MsgId(*request))
                {
                    let reason = format!("no answer within {}", self.config.timeout);
                    self.finish(request, Outcome::Failed { reason }, Vec::new(), ctx);
                }
            }
            Input::Message(answer) => {
                // A late or duplicated answer finds no pending operation and is ignored.
                let Some(request) = answer.caused_by else {
                    return;
                };
                let Some(pending) = self.pending.get(&request.key()) else {
                    return;
                };
                let kind = &self.config.operations[pending.operation].request;
                let (outcome, observed) = match (&answer.payload, kind.observed(&answer.payload)) {
                    (
                        Payload::OrderDetails {
                            degraded: Some(reason),
                            ..
                        },
                        Some(observed),
                    ) => (
                        Outcome::Degraded {
                            reason: reason.clone(),
                        },
                        observed,
                    ),
                    (_, Some(observed)) => (Outcome::Ok, observed),
                    (Payload::Failed { reason }, None) => (
                        Outcome::Failed {
                            reason: reason.clone(),
                        },
                        Vec::new(),
                    ),
                    (_, None) => return,
                };
                self.finish(request, outcome, observed, ctx);
            }
            Input::Refused(request) => {
                let reason = "connection refused: the service is down".to_string();
                self.finish(request, Outcome::Failed { reason }, Vec::new(), ctx);
            }
            // Only a broker watches its peers' connections.
            Input::ConnectionLost(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Event;
    use crate::service::{Effect, IdAllocator, MemTables};

    /// Fires a client's timers `late` after they are due, as a live engine on a busy machine
    /// does, for one simulated second; returns how many reads it started.
    fn reads_started_in_a_second(late: Micros) -> usize {
        let mut client = Client::new(ClientConfig {
            operations: vec![Operation {
                name: READ_ORDER_OP,
                every: Micros::from_millis(10),
                to: ServiceId(2),
                request: RequestKind::ReadOrder {
                    orders: 5,
                    source: ServiceId(3),
                },
            }],
            timeout: Micros::from_millis(5_000),
        });
        let (mut rng, mut tables, mut ids) =
            (SimRng::new(7), MemTables::default(), IdAllocator::default());
        let mut timers: Vec<(Micros, TimerId)> = Vec::new();
        let (mut now, mut started, mut input) = (Micros::ZERO, 0, None);
        while now <= Micros::from_millis(1_000) {
            let mut ctx = Ctx::new(now, ServiceId(1), &mut rng, &mut tables, &mut ids);
            client.handle(input.map_or(Input::Start, Input::Timer), &mut ctx);
            for effect in ctx.into_effects() {
                match effect {
                    Effect::SetTimer { id, after } => timers.push((now + after, id)),
                    Effect::Record(Event::OpStarted { .. }) => started += 1,
                    _ => {}
                }
            }
            timers.sort();
            let (due, timer) = timers.remove(0);
            (now, input) = (due + late, Some(timer));
        }
        started
    }

    #[test]
    fn timers_that_fire_late_do_not_slow_the_client_down() {
        let on_time = reads_started_in_a_second(Micros::ZERO);
        let late = reads_started_in_a_second(Micros::from_millis(3));
        println!(
            "reads started in 1 s, a read every 10 ms: timers on time {on_time}, 3 ms late {late}"
        );
        assert!((95..=105).contains(&on_time), "{on_time}");
        // Each read is due when planned: lateness delays a read but never the ones after it.
        assert!(late + 1 >= on_time, "on time {on_time}, late {late}");
    }
}
