//! The client: the users of the system. It starts operations at jittered intervals (reads of
//! orders, renames of products), and ends each with the answer, a refusal or its own timeout.

use super::{PRODUCTS_TABLE, renamed_product_name};
use crate::protocol::{MsgId, Observed, OpId, Outcome, Payload, ServiceId};
use crate::service::{Ctx, Input, Service, TimerId};
use crate::time::Micros;
use std::collections::BTreeMap;

/// The client's workload and wiring.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The Order service, which answers reads.
    pub order: ServiceId,
    /// The Product service, which takes renames and owns product names.
    pub product: ServiceId,
    /// Mean time between reads; zero for no reads.
    pub read_every: Micros,
    /// Mean time between renames; zero for no renames.
    pub rename_every: Micros,
    /// Orders are numbered `1..=orders`.
    pub orders: u64,
    /// Products are numbered `1..=products`.
    pub products: u64,
    /// How long the client waits for any answer.
    pub timeout: Micros,
}

/// Names of the client's operations, as they appear in the trace.
pub const READ_ORDER_OP: &str = "read order";
/// See [`READ_ORDER_OP`].
pub const RENAME_PRODUCT_OP: &str = "rename product";

#[derive(Debug)]
struct PendingOp {
    op: OpId,
    started: Micros,
    timer: TimerId,
}

#[derive(Copy, Clone, Debug, PartialEq)]
enum ClientTimer {
    NextRead,
    NextRename,
    Timeout(MsgId),
}

/// The client.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    pending: BTreeMap<MsgId, PendingOp>,
    timers: BTreeMap<TimerId, ClientTimer>,
}

impl Client {
    /// A client with no operation in progress.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            config,
            pending: BTreeMap::new(),
            timers: BTreeMap::new(),
        }
    }

    /// Schedules the next operation after a uniformly jittered interval averaging `every`.
    fn schedule(&mut self, every: Micros, which: ClientTimer, ctx: &mut Ctx<'_>) {
        if every == Micros::ZERO {
            return;
        }
        let after = Micros(every.0 / 2 + ctx.rng.below(every.0));
        let timer = ctx.set_timer(after);
        self.timers.insert(timer, which);
    }

    fn start(&mut self, name: &str, to: ServiceId, payload: Payload, ctx: &mut Ctx<'_>) {
        let op = ctx.start_op(name);
        let request = ctx.send(to, payload, Some(op), None);
        let timer = ctx.set_timer(self.config.timeout);
        self.timers.insert(timer, ClientTimer::Timeout(request));
        self.pending.insert(
            request,
            PendingOp {
                op,
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
        if let Some(pending) = self.pending.remove(&request) {
            self.timers.remove(&pending.timer);
            ctx.finish_op(pending.op, pending.started, outcome, observed);
        }
    }
}

impl Service for Client {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => {
                self.schedule(self.config.read_every, ClientTimer::NextRead, ctx);
                self.schedule(self.config.rename_every, ClientTimer::NextRename, ctx);
            }
            Input::Timer(timer) => match self.timers.remove(&timer) {
                Some(ClientTimer::NextRead) => {
                    let order = 1 + ctx.rng.below(self.config.orders);
                    self.start(
                        READ_ORDER_OP,
                        self.config.order,
                        Payload::ReadOrder { order },
                        ctx,
                    );
                    self.schedule(self.config.read_every, ClientTimer::NextRead, ctx);
                }
                Some(ClientTimer::NextRename) => {
                    let product = 1 + ctx.rng.below(self.config.products);
                    let name = renamed_product_name(product, ctx.rng);
                    self.start(
                        RENAME_PRODUCT_OP,
                        self.config.product,
                        Payload::RenameProduct { product, name },
                        ctx,
                    );
                    self.schedule(self.config.rename_every, ClientTimer::NextRename, ctx);
                }
                Some(ClientTimer::Timeout(request)) => {
                    let reason = format!("no answer within {}", self.config.timeout);
                    self.finish(request, Outcome::Failed { reason }, Vec::new(), ctx);
                }
                None => {}
            },
            Input::Message(answer) => {
                let Some(request) = answer.caused_by else {
                    return;
                };
                let (outcome, observed) = match &answer.payload {
                    Payload::OrderDetails { items, .. } => {
                        let observed = items
                            .iter()
                            .map(|item| Observed {
                                source_service: self.config.product,
                                source_table: PRODUCTS_TABLE.to_string(),
                                key: item.product.to_string(),
                                version: item.version,
                            })
                            .collect();
                        (Outcome::Ok, observed)
                    }
                    Payload::Renamed { .. } => (Outcome::Ok, Vec::new()),
                    Payload::Failed { reason } => (
                        Outcome::Failed {
                            reason: reason.clone(),
                        },
                        Vec::new(),
                    ),
                    _ => return,
                };
                self.finish(request, outcome, observed, ctx);
            }
            Input::Refused(request) => {
                let reason = "connection refused: the service is down".to_string();
                self.finish(request, Outcome::Failed { reason }, Vec::new(), ctx);
            }
        }
    }
}
