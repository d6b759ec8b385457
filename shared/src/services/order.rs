//! Order: answers "read order N with its product names". Where the names come from is the pattern
//! under study: a synchronous call to Product per product, or Order's own copy kept fresh by events
//! or by a coordinator. It also stores new orders, and announces each as OrderCreated when a
//! broker is configured.

use super::new_orders::{NewOrders, PublishOrders};
use super::rename_participant::handle_coordinated_rename;
use super::{ORDER_LINES_TABLE, ORDERS_TABLE, PRODUCT_NAMES_COPY_TABLE};
use crate::protocol::{DomainEvent, Event, MsgId, Payload, ProductName, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId};
use crate::time::Micros;
use std::collections::{BTreeMap, VecDeque};

/// Where Order gets product names from.
#[derive(Clone, Debug)]
pub enum ProductSource {
    /// Request/response: call Product once per product, one call after another.
    CallProduct {
        /// The Product service.
        product: ServiceId,
        /// How long Order waits for each call, and for a free connection, before failing the read.
        call_timeout: Micros,
        /// Connections to Product: each read waiting on Product holds one.
        pool_size: usize,
    },
    /// Eventual consistency: read the local copy, which broker deliveries keep fresh.
    LocalCopy,
    /// Duplication: read the names each order stored when it was placed.
    OrderLines {
        /// Orders are numbered `1..=orders`; a rename rewrites the lines of each.
        orders: u64,
    },
}

/// How Order is wired.
#[derive(Clone, Debug)]
pub struct OrderConfig {
    /// Where product names come from.
    pub source: ProductSource,
    /// Whether an event updates the local copy only when it carries a newer version than the
    /// copy holds. Without this check, an older event arriving late rolls the copy back.
    pub apply_only_newer: bool,
    /// Where and how new orders are published as OrderCreated, if at all.
    pub publish_orders: Option<PublishOrders>,
    /// The chance, per million, that it refuses a coordinator's update of its copy.
    pub refuse_updates_per_million: u32,
}

/// A read waiting on Product.
#[derive(Debug)]
struct PendingRead {
    request: Envelope,
    products: Vec<u64>,
    items: Vec<ProductName>,
    timer: TimerId,
}

/// Reads that wait for a free connection at most; more fail at once. Ten times the largest pool.
pub const POOL_WAITING_MAX: usize = 640;

/// The queue of reads waiting for a connection, as the trace names it.
pub const POOL_QUEUE: &str = "reads waiting for a connection";

/// The Order service.
#[derive(Debug)]
pub struct Order {
    config: OrderConfig,
    /// Connections to Product held by reads now.
    connections_in_use: usize,
    /// Reads waiting for a connection, oldest first, with the timer that gives up on each.
    waiting_for_connection: VecDeque<(PendingRead, TimerId)>,
    /// Reads waiting on a call to Product, by the call's message id.
    pending_by_call: BTreeMap<MsgId, PendingRead>,
    /// The call each timeout timer guards.
    call_by_timer: BTreeMap<TimerId, MsgId>,
    /// Whether the last read that needed Product failed, so an outage is narrated once.
    in_failure_streak: bool,
    /// Whether the first read and the first event have been explained yet.
    explained_read: bool,
    explained_event: bool,
    /// New orders and their publishes not yet confirmed.
    new_orders: NewOrders,
}

impl Order {
    /// A freshly started Order: no reads in progress.
    pub fn new(config: OrderConfig) -> Order {
        Order {
            connections_in_use: 0,
            waiting_for_connection: VecDeque::new(),
            pending_by_call: BTreeMap::new(),
            call_by_timer: BTreeMap::new(),
            in_failure_streak: false,
            explained_read: false,
            explained_event: false,
            new_orders: NewOrders::new(config.publish_orders),
            config,
        }
    }

    fn read_order(&mut self, request: &Envelope, order: u64, ctx: &mut Ctx<'_>) {
        let Some(row) = ctx.read(ORDERS_TABLE, &order.to_string()) else {
            ctx.reply(
                request,
                Payload::Failed {
                    reason: format!("no order {order}"),
                },
            );
            return;
        };
        let products: Vec<u64> = row
            .value
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect();
        if !self.explained_read {
            self.explained_read = true;
            let n = products.len();
            ctx.narrate(match self.config.source {
                ProductSource::CallProduct { .. } => format!(
                    "Order asks Product for each of order {order}'s {n} product names, one call after another: the read waits for {n} round trips."
                ),
                ProductSource::LocalCopy => format!(
                    "Order answers order {order} from its own copy of product names: no call to Product, one round trip in all."
                ),
                ProductSource::OrderLines { .. } => format!(
                    "Order answers order {order} with the names the order stored when it was placed: no call to Product."
                ),
            });
        }
        match self.config.source {
            ProductSource::LocalCopy | ProductSource::OrderLines { .. } => {
                let items = products
                    .iter()
                    .map(|product| {
                        let copy = match self.config.source {
                            ProductSource::OrderLines { .. } => {
                                ctx.read(ORDER_LINES_TABLE, &format!("{order}/{product}"))
                            }
                            _ => ctx.read(PRODUCT_NAMES_COPY_TABLE, &product.to_string()),
                        };
                        let (name, version) =
                            copy.map_or((String::from("?"), 0), |row| (row.value, row.version));
                        ProductName {
                            product: *product,
                            name,
                            version,
                        }
                    })
                    .collect();
                ctx.reply(request, Payload::OrderDetails { order, items });
            }
            ProductSource::CallProduct {
                pool_size,
                call_timeout,
                ..
            } => {
                let pending = PendingRead {
                    request: request.clone(),
                    products,
                    items: Vec::new(),
                    timer: TimerId(0),
                };
                if self.connections_in_use < pool_size {
                    self.connections_in_use += 1;
                    self.call_next_product(pending, ctx);
                } else if self.waiting_for_connection.len() >= POOL_WAITING_MAX {
                    let reason = format!(
                        "connection pool exhausted: {POOL_WAITING_MAX} reads already wait for one"
                    );
                    ctx.reply(&pending.request, Payload::Failed { reason });
                } else {
                    if self.waiting_for_connection.is_empty() {
                        ctx.narrate(format!(
                            "All {pool_size} of Order's connections to Product are busy waiting on it: new reads queue for a connection — the pool is exhausted."
                        ));
                    }
                    let timer = ctx.set_timer(call_timeout);
                    self.waiting_for_connection.push_back((pending, timer));
                    self.record_waiting(ctx);
                }
            }
        }
    }

    fn record_waiting(&self, ctx: &mut Ctx<'_>) {
        ctx.record(Event::QueueDepth {
            service: ctx.me,
            queue: POOL_QUEUE.to_string(),
            depth: self.waiting_for_connection.len() as u32,
        });
    }

    /// A read is done with its connection: hand it to the oldest waiting read, if any.
    fn release_connection(&mut self, ctx: &mut Ctx<'_>) {
        match self.waiting_for_connection.pop_front() {
            Some((next, _)) => {
                self.record_waiting(ctx);
                self.call_next_product(next, ctx);
            }
            None => self.connections_in_use = self.connections_in_use.saturating_sub(1),
        }
    }

    /// Calls Product for the next product of the read, or answers the read when all are in.
    fn call_next_product(&mut self, mut pending: PendingRead, ctx: &mut Ctx<'_>) {
        let ProductSource::CallProduct {
            product: product_service,
            call_timeout,
            ..
        } = self.config.source
        else {
            return;
        };
        let Some(&next) = pending.products.get(pending.items.len()) else {
            let order = match pending.request.payload {
                Payload::ReadOrder { order } => order,
                _ => 0,
            };
            self.in_failure_streak = false;
            ctx.reply(
                &pending.request,
                Payload::OrderDetails {
                    order,
                    items: pending.items,
                },
            );
            self.release_connection(ctx);
            return;
        };
        let call = ctx.send(
            product_service,
            Payload::GetProduct { product: next },
            pending.request.op,
            Some(pending.request.id),
        );
        pending.timer = ctx.set_timer(call_timeout);
        self.call_by_timer.insert(pending.timer, call);
        self.pending_by_call.insert(call, pending);
    }

    fn take_pending(&mut self, call: MsgId) -> Option<PendingRead> {
        let pending = self.pending_by_call.remove(&call)?;
        self.call_by_timer.remove(&pending.timer);
        Some(pending)
    }

    fn fail_read(&mut self, pending: PendingRead, reason: String, ctx: &mut Ctx<'_>) {
        if !self.in_failure_streak {
            ctx.narrate(format!(
                "Order could not get a product name: {reason}. The read fails too — Product's trouble cascades to Order's readers."
            ));
            self.in_failure_streak = true;
        }
        ctx.reply(&pending.request, Payload::Failed { reason });
        self.release_connection(ctx);
    }

    /// Rewrites the stored name in every order line of the product; returns how many.
    fn update_order_lines(&mut self, update: &ProductName, ctx: &mut Ctx<'_>) -> u64 {
        let ProductSource::OrderLines { orders } = self.config.source else {
            return 0;
        };
        let mut rows = 0;
        for order in 1..=orders {
            let key = format!("{order}/{}", update.product);
            if ctx
                .read(ORDER_LINES_TABLE, &key)
                .is_some_and(|row| row.version < update.version)
            {
                ctx.write(ORDER_LINES_TABLE, &key, &update.name, update.version);
                rows += 1;
            }
        }
        rows
    }

    fn apply_event(&mut self, event: &DomainEvent, ctx: &mut Ctx<'_>) {
        match event {
            DomainEvent::ProductUpdated(update) => {
                let key = update.product.to_string();
                let current = ctx
                    .read(PRODUCT_NAMES_COPY_TABLE, &key)
                    .map_or(0, |row| row.version);
                let (product, version) = (update.product, update.version);
                if update.version > current {
                    ctx.write(PRODUCT_NAMES_COPY_TABLE, &key, &update.name, update.version);
                    if !self.explained_event {
                        self.explained_event = true;
                        ctx.narrate(format!(
                            "ProductUpdated v{version} reaches Order: its copy of product {product} is fresh again, until the next rename."
                        ));
                    }
                } else if self.config.apply_only_newer {
                    ctx.narrate(format!(
                        "Order ignores ProductUpdated v{version} for product {product}: its copy already has v{current}. The version check keeps a late event from rolling the copy back."
                    ));
                } else {
                    ctx.write(PRODUCT_NAMES_COPY_TABLE, &key, &update.name, update.version);
                    ctx.narrate(format!(
                        "Order applies ProductUpdated v{version} for product {product} after v{current}: the events arrived out of order, and without a version check the copy now holds an older name — no later event will repair it until the next rename."
                    ));
                }
            }
            // Order publishes these; it does not subscribe to them.
            DomainEvent::OrderCreated(_) => {}
            // Order subscribes to no topic of Driver's.
            DomainEvent::DriverUpdated(_) => {}
        }
    }
}

impl Service for Order {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => self.new_orders.start(ctx),
            Input::Message(message)
                if handle_coordinated_rename(
                    message,
                    PRODUCT_NAMES_COPY_TABLE,
                    self.config.refuse_updates_per_million,
                    ctx,
                ) => {}
            Input::Message(message) => match &message.payload {
                Payload::ReadOrder { order } => self.read_order(message, *order, ctx),
                Payload::CreateOrder { order, products } => {
                    self.new_orders.create(message, *order, products, ctx)
                }
                Payload::PublishConfirmed { event_id } => self.new_orders.confirmed(event_id, ctx),
                Payload::ProductInfo(item) => {
                    let Some(mut pending) =
                        message.caused_by.and_then(|call| self.take_pending(call))
                    else {
                        return; // An answer after its timeout: the read already failed.
                    };
                    pending.items.push(item.clone());
                    self.call_next_product(pending, ctx);
                }
                Payload::Failed { reason } => {
                    if let Some(pending) =
                        message.caused_by.and_then(|call| self.take_pending(call))
                    {
                        self.fail_read(pending, format!("Product answered: {reason}"), ctx);
                    }
                }
                Payload::UpdateProductName(update) => {
                    let rows = self.update_order_lines(update, ctx);
                    let product = update.product;
                    ctx.reply(message, Payload::ProductNameUpdated { product, rows });
                }
                Payload::Deliver { tag, event, .. } => {
                    self.apply_event(event, ctx);
                    ctx.reply(message, Payload::Ack { tag: *tag });
                }
                _ => {}
            },
            Input::Timer(timer) => {
                if self.new_orders.timer(timer, ctx) {
                    return;
                }
                let gave_up = self
                    .waiting_for_connection
                    .iter()
                    .position(|(_, waiting)| *waiting == timer)
                    .and_then(|at| self.waiting_for_connection.remove(at));
                if let Some((pending, _)) = gave_up {
                    self.record_waiting(ctx);
                    let reason = "no free connection to Product in time (pool exhausted)";
                    ctx.reply(
                        &pending.request,
                        Payload::Failed {
                            reason: reason.into(),
                        },
                    );
                    return;
                }
                let Some(call) = self.call_by_timer.get(&timer).copied() else {
                    return;
                };
                if let (Some(pending), ProductSource::CallProduct { call_timeout, .. }) =
                    (self.take_pending(call), &self.config.source)
                {
                    let reason = format!("Product did not answer within {call_timeout}");
                    self.fail_read(pending, reason, ctx);
                }
            }
            Input::Refused(call) => {
                if let Some(pending) = self.take_pending(call) {
                    self.fail_read(
                        pending,
                        "Product is down (connection refused)".to_string(),
                        ctx,
                    );
                }
            }
            // Only a broker watches its peers' connections.
            Input::ConnectionLost(_) => {}
        }
    }
}
