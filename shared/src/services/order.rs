//! Order: answers "read order N with its product names". Where the names come from is the pattern
//! under study: a synchronous call to Product per product, or Order's own copy kept fresh by events.

use super::{ORDERS_TABLE, PRODUCT_NAMES_COPY_TABLE};
use crate::protocol::{DomainEvent, MsgId, Payload, ProductName, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId};
use crate::time::Micros;
use std::collections::BTreeMap;

/// Where Order gets product names from.
#[derive(Clone, Debug)]
pub enum ProductSource {
    /// Request/response: call Product once per product, one call after another.
    CallProduct {
        /// The Product service.
        product: ServiceId,
        /// How long Order waits for each call before failing the read.
        call_timeout: Micros,
    },
    /// Eventual consistency: read the local copy, which broker deliveries keep fresh.
    LocalCopy,
}

/// How Order is wired.
#[derive(Clone, Debug)]
pub struct OrderConfig {
    /// Where product names come from.
    pub source: ProductSource,
}

/// A read waiting on Product.
#[derive(Debug)]
struct PendingRead {
    request: Envelope,
    products: Vec<u64>,
    items: Vec<ProductName>,
    timer: TimerId,
}

/// The Order service.
#[derive(Debug)]
pub struct Order {
    config: OrderConfig,
    /// Reads waiting on a call to Product, by the call's message id.
    pending_by_call: BTreeMap<MsgId, PendingRead>,
    /// The call each timeout timer guards.
    call_by_timer: BTreeMap<TimerId, MsgId>,
    /// Whether the last read that needed Product failed, so an outage is narrated once.
    in_failure_streak: bool,
}

impl Order {
    /// A freshly started Order: no reads in progress.
    pub fn new(config: OrderConfig) -> Order {
        Order {
            config,
            pending_by_call: BTreeMap::new(),
            call_by_timer: BTreeMap::new(),
            in_failure_streak: false,
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
        match self.config.source {
            ProductSource::LocalCopy => {
                let items = products
                    .iter()
                    .map(|product| {
                        let copy = ctx.read(PRODUCT_NAMES_COPY_TABLE, &product.to_string());
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
            ProductSource::CallProduct { .. } => {
                let pending = PendingRead {
                    request: request.clone(),
                    products,
                    items: Vec::new(),
                    timer: TimerId(0),
                };
                self.call_next_product(pending, ctx);
            }
        }
    }

    /// Calls Product for the next product of the read, or answers the read when all are in.
    fn call_next_product(&mut self, mut pending: PendingRead, ctx: &mut Ctx<'_>) {
        let ProductSource::CallProduct {
            product: product_service,
            call_timeout,
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
    }

    fn apply_event(&mut self, event: &DomainEvent, ctx: &mut Ctx<'_>) {
        match event {
            DomainEvent::ProductUpdated(update) => {
                let key = update.product.to_string();
                let current = ctx
                    .read(PRODUCT_NAMES_COPY_TABLE, &key)
                    .map_or(0, |row| row.version);
                // Only a newer version replaces the copy, so late or repeated deliveries cannot
                // roll it back.
                if update.version > current {
                    ctx.write(PRODUCT_NAMES_COPY_TABLE, &key, &update.name, update.version);
                }
            }
        }
    }
}

impl Service for Order {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => {}
            Input::Message(message) => match &message.payload {
                Payload::ReadOrder { order } => self.read_order(message, *order, ctx),
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
                Payload::Deliver { tag, event, .. } => {
                    self.apply_event(event, ctx);
                    ctx.reply(message, Payload::Ack { tag: *tag });
                }
                _ => {}
            },
            Input::Timer(timer) => {
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
        }
    }
}
