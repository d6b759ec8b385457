//! Order: answers "read order N with its product names". Where the names come from is the pattern
//! under study: a synchronous call to Product per product, or Order's own copy kept fresh by events
//! or by a coordinator. It also stores new orders, and announces each as OrderCreated when a
//! broker is configured.

use super::new_orders::{NewOrders, PublishOrders};
use super::rename_participant::handle_coordinated_rename;
use super::resilience::{Admission, CircuitBreaker, Resilience, RetryBudget, backoff_before};
use super::{ORDER_LINES_TABLE, ORDERS_TABLE, PRODUCT_NAMES_COPY_TABLE};
use crate::decimal::Decimal;
use crate::protocol::{CircuitState, DomainEvent, Event, MsgId, Payload, ProductName, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId, TimerMap};
use crate::slot_map::SlotMap;
use crate::time::Micros;
use std::collections::VecDeque;

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
        /// Deadlines, retries and a circuit breaker on these calls; none by default.
        resilience: Resilience,
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

impl OrderConfig {
    /// The resilience of its calls to Product, when it calls Product.
    fn resilience(&self) -> Option<&Resilience> {
        match &self.source {
            ProductSource::CallProduct { resilience, .. } => Some(resilience),
            _ => None,
        }
    }
}

/// A read waiting on Product. It is kept boxed: it moves from map to map at every call to
/// Product (waiting for a connection, waiting on a call, waiting out a backoff), and in the
/// page's WebAssembly, built for size, each move of a value this large is a `memory.copy`,
/// which costs more than the one allocation of the box per read (issue 9's engine benchmark).
#[derive(Debug)]
struct PendingRead {
    request: Envelope,
    products: Vec<u64>,
    items: Vec<ProductName>,
    timer: TimerId,
    /// Retries made for the product being asked for now.
    retries: u32,
    /// Whether the call out now is the circuit breaker's probe.
    probe: bool,
    /// Names answered from the fallback: remembered, and unavailable.
    remembered: u32,
    unavailable: u32,
}

impl PendingRead {
    fn new(request: &Envelope, products: Vec<u64>) -> Box<PendingRead> {
        Box::new(PendingRead {
            request: request.clone(),
            items: Vec::with_capacity(products.len()),
            products,
            timer: TimerId(0),
            retries: 0,
            probe: false,
            remembered: 0,
            unavailable: 0,
        })
    }
}

/// The name a degraded read shows for a product Order has no memory of.
pub const NAME_UNAVAILABLE: &str = "name unavailable";

/// Product names Order remembers for its breaker's fallback, at most.
const REMEMBERED_NAMES_MAX: usize = 10_000;

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
    waiting_for_connection: VecDeque<(Box<PendingRead>, TimerId)>,
    /// Reads waiting on a call to Product, with the call's message id, in no order. There are
    /// at most a pool's worth (each holds a connection), so an answer finds its read by a scan,
    /// as a call's timeout does: a scan of a few dozen ids costs less than a tree's insert and
    /// remove at every call, which in the page's WebAssembly, built for size, are calls through
    /// generic code (issue 9's engine benchmark). No map from timer to call either: an answered
    /// call's timer is cancelled and never fires in a simulation, so timeouts are rare.
    pending_by_call: Vec<(MsgId, Box<PendingRead>)>,
    /// Whether the last read that needed Product failed, so an outage is narrated once.
    in_failure_streak: bool,
    /// Whether the first read and the first event have been explained yet.
    explained_read: bool,
    explained_event: bool,
    /// New orders and their publishes not yet confirmed.
    new_orders: NewOrders,
    /// The circuit breaker on calls to Product, if configured.
    breaker: Option<CircuitBreaker>,
    /// The retry budget, if configured.
    budget: Option<RetryBudget>,
    /// Reads waiting out a backoff before retrying, by the timer that ends it.
    retry_by_timer: TimerMap<Box<PendingRead>>,
    /// The last name Product gave for each product, in memory (lost on a crash): the
    /// breaker's fallback.
    remembered: SlotMap<u64, ProductName>,
    /// Whether retries, and an exhausted budget, have been explained in this stretch.
    explained_retry: bool,
    budget_exhausted: bool,
}

impl Order {
    /// A freshly started Order: no reads in progress.
    pub fn new(config: OrderConfig) -> Order {
        Order {
            connections_in_use: 0,
            waiting_for_connection: VecDeque::new(),
            pending_by_call: Vec::new(),
            in_failure_streak: false,
            explained_read: false,
            explained_event: false,
            new_orders: NewOrders::new(config.publish_orders),
            breaker: config
                .resilience()
                .and_then(|r| r.breaker)
                .map(CircuitBreaker::new),
            budget: config
                .resilience()
                .and_then(|r| r.budget)
                .map(RetryBudget::new),
            retry_by_timer: SlotMap::new(),
            remembered: SlotMap::new(),
            explained_retry: false,
            budget_exhausted: false,
            config,
        }
    }

    fn product_service(&self) -> Option<ServiceId> {
        match self.config.source {
            ProductSource::CallProduct { product, .. } => Some(product),
            _ => None,
        }
    }

    /// Records and narrates a change of the breaker's state.
    fn circuit_changed(&self, state: CircuitState, ctx: &mut Ctx<'_>) {
        let (Some(peer), Some(resilience)) = (self.product_service(), self.config.resilience())
        else {
            return;
        };
        let (failures, open_for) = resilience
            .breaker
            .map_or((0, Micros::ZERO), |b| (b.failures, b.open_for));
        ctx.record(Event::CircuitChanged {
            service: ctx.me,
            peer,
            state,
        });
        ctx.narrate(match state {
            CircuitState::Open => format!(
                "Order's circuit breaker on Product is open (after {failures} failed calls in a row, or a failed probe): for {open_for} reads do not call Product — they answer at once with the names Order remembers, or 'name unavailable', marked degraded."
            ),
            CircuitState::HalfOpen => "Order's circuit breaker is half-open: one read's call goes to Product as a probe; the other reads still get the fallback.".to_string(),
            CircuitState::Closed => "The probe came back: Order's circuit breaker closes, and reads call Product again.".to_string(),
        });
    }

    /// The breaker's word on a call about to be made (always yes without a breaker).
    fn admit(&mut self, ctx: &mut Ctx<'_>) -> Admission {
        let Some(breaker) = self.breaker.as_mut() else {
            return Admission::Call;
        };
        let admission = breaker.admit(ctx.now);
        if admission == Admission::Probe {
            self.circuit_changed(CircuitState::HalfOpen, ctx);
        }
        admission
    }

    /// The fallback for `product`: the name Order remembers, or none.
    fn fallback(&self, pending: &mut PendingRead, product: u64) -> ProductName {
        match self.remembered.get(&product) {
            Some(name) => {
                pending.remembered += 1;
                name.clone()
            }
            None => {
                pending.unavailable += 1;
                ProductName {
                    product,
                    name: NAME_UNAVAILABLE.to_string(),
                    version: 0,
                }
            }
        }
    }

    /// A call to Product failed: retry it after a backoff if retries and the budget allow, else
    /// answer the product from the fallback if the breaker is no longer closed, else fail the
    /// read as without resilience.
    fn call_failed(&mut self, mut pending: Box<PendingRead>, reason: String, ctx: &mut Ctx<'_>) {
        let Some(resilience) = self.config.resilience().cloned() else {
            return;
        };
        let was_probe = std::mem::take(&mut pending.probe);
        if let Some(state) = self
            .breaker
            .as_mut()
            .and_then(|breaker| breaker.failed(was_probe, ctx.now))
        {
            self.circuit_changed(state, ctx);
        }
        if pending.retries < resilience.retries {
            let allowed = self
                .budget
                .as_mut()
                .is_none_or(|budget| budget.try_retry(ctx.now));
            if allowed {
                self.budget_exhausted = false;
                pending.retries += 1;
                let delay = backoff_before(pending.retries, resilience.backoff, ctx.rng);
                if !self.explained_retry {
                    self.explained_retry = true;
                    ctx.narrate(format!(
                        "Order retries its call to Product ({reason}) after a backoff of {delay} — retry {} of at most {}; each retry doubles the backoff, with jitter. Every retry is one more request for Product.",
                        pending.retries, resilience.retries
                    ));
                }
                let timer = ctx.set_timer(delay);
                self.retry_by_timer.insert(timer.key(), pending);
                return;
            }
            if !self.budget_exhausted {
                self.budget_exhausted = true;
                let percent = resilience.budget.map_or(0, |b| b.percent);
                ctx.narrate(format!(
                    "Order's retry budget is spent: retries may be at most {percent} % of its calls over the last window, so this call is not retried — a struggling Product is not sent a storm of retries."
                ));
            }
        }
        if self
            .breaker
            .as_ref()
            .is_some_and(|breaker| breaker.state() != CircuitState::Closed)
        {
            let Some(&product) = pending.products.get(pending.items.len()) else {
                return;
            };
            let item = self.fallback(&mut pending, product);
            pending.items.push(item);
            pending.retries = 0;
            self.call_next_product(pending, ctx);
            return;
        }
        self.fail_read(pending, reason, ctx);
    }

    fn read_order(&mut self, request: &Envelope, order: u64, ctx: &mut Ctx<'_>) {
        let Some(row) = ctx.read(ORDERS_TABLE, &Decimal::new(order)) else {
            ctx.reply(
                request,
                Payload::Failed {
                    reason: format!("no order {order}"),
                },
            );
            return;
        };
        let products = product_ids(&row.value);
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
                            _ => ctx.read(PRODUCT_NAMES_COPY_TABLE, &Decimal::new(*product)),
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
                ctx.reply(
                    request,
                    Payload::OrderDetails {
                        order,
                        items,
                        degraded: None,
                    },
                );
            }
            ProductSource::CallProduct {
                pool_size,
                call_timeout,
                ..
            } => {
                let pending = PendingRead::new(request, products);
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
    /// Products the circuit breaker keeps it from calling are answered from the fallback.
    fn call_next_product(&mut self, mut pending: Box<PendingRead>, ctx: &mut Ctx<'_>) {
        let ProductSource::CallProduct {
            product: product_service,
            call_timeout,
            ref resilience,
            ..
        } = self.config.source
        else {
            return;
        };
        let deadlines = resilience.deadlines;
        let next = loop {
            let Some(&next) = pending.products.get(pending.items.len()) else {
                self.answer_read(pending, ctx);
                return;
            };
            match self.admit(ctx) {
                Admission::Refuse => {
                    let item = self.fallback(&mut pending, next);
                    pending.items.push(item);
                    pending.retries = 0;
                }
                admission => {
                    pending.probe = admission == Admission::Probe;
                    break next;
                }
            }
        };
        if pending.retries == 0
            && let Some(budget) = self.budget.as_mut()
        {
            budget.first_attempt(ctx.now);
        }
        let call = ctx.send(
            product_service,
            Payload::GetProduct {
                product: next,
                deadline: deadlines.then(|| ctx.now + call_timeout),
            },
            pending.request.op,
            Some(pending.request.id),
        );
        pending.timer = ctx.set_timer(call_timeout);
        self.pending_by_call.push((call, pending));
    }

    /// Every product is in: answers the read (degraded if any name is a fallback) and frees its
    /// connection.
    // Boxed on purpose: a read moves between maps and into here as a pointer; passed by value
    // it would be copied (a `memory.copy` call in the page's WebAssembly). Clippy flags this
    // only on 32-bit targets, where the read is under its size threshold.
    #[allow(clippy::boxed_local)]
    fn answer_read(&mut self, pending: Box<PendingRead>, ctx: &mut Ctx<'_>) {
        let order = match pending.request.payload {
            Payload::ReadOrder { order } => order,
            _ => 0,
        };
        self.in_failure_streak = false;
        let degraded = (pending.remembered + pending.unavailable > 0).then(|| {
            format!(
                "circuit open: {} name(s) remembered by Order, {} unavailable",
                pending.remembered, pending.unavailable
            )
        });
        ctx.reply(
            &pending.request,
            Payload::OrderDetails {
                order,
                items: pending.items,
                degraded,
            },
        );
        self.release_connection(ctx);
    }

    /// The read waiting on `call`, which is answered, refused or given up on: its timeout
    /// no longer matters.
    fn take_pending(&mut self, call: MsgId, ctx: &mut Ctx<'_>) -> Option<Box<PendingRead>> {
        let at = self
            .pending_by_call
            .iter()
            .position(|(waiting, _)| *waiting == call)?;
        let (_, pending) = self.pending_by_call.swap_remove(at);
        ctx.cancel_timer(pending.timer);
        Some(pending)
    }

    #[allow(clippy::boxed_local)] // As `answer_read`'s.
    fn fail_read(&mut self, pending: Box<PendingRead>, reason: String, ctx: &mut Ctx<'_>) {
        if !self.in_failure_streak {
            ctx.narrate(format!(
                "Order could not get a product name: {reason}. The read fails too — Product's trouble cascades to Order's readers."
            ));
            self.in_failure_streak = true;
        }
        ctx.reply(&pending.request, Payload::Failed { reason });
        self.release_connection(ctx);
    }

    /// Product answered a call: the read keeps the name (taken from the message, which is
    /// dropped after this) and goes on to its next product.
    fn product_info(&mut self, message: &mut Envelope, ctx: &mut Ctx<'_>) {
        let Payload::ProductInfo(item) = &mut message.payload else {
            return;
        };
        let Some(mut pending) = message
            .caused_by
            .and_then(|call| self.take_pending(call, ctx))
        else {
            return; // An answer after its timeout: the read already failed.
        };
        let was_probe = std::mem::take(&mut pending.probe);
        if let Some(state) = self
            .breaker
            .as_mut()
            .and_then(|breaker| breaker.succeeded(was_probe))
        {
            self.circuit_changed(state, ctx);
        }
        if self.breaker.is_some()
            && (self.remembered.len() < REMEMBERED_NAMES_MAX
                || self.remembered.contains_key(&item.product))
        {
            self.remembered.insert(item.product, item.clone());
        }
        pending.items.push(ProductName {
            product: item.product,
            name: std::mem::take(&mut item.name),
            version: item.version,
        });
        pending.retries = 0;
        self.call_next_product(pending, ctx);
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
                Payload::ProductInfo(_) => self.product_info(message, ctx),
                Payload::Failed { reason } => {
                    if let Some(pending) = message
                        .caused_by
                        .and_then(|call| self.take_pending(call, ctx))
                    {
                        self.call_failed(pending, format!("Product answered: {reason}"), ctx);
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
                if let Some(pending) = self.retry_by_timer.remove(&timer.key()) {
                    self.call_next_product(pending, ctx);
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
                let Some(call) = self
                    .pending_by_call
                    .iter()
                    .find(|(_, pending)| pending.timer == timer)
                    .map(|(call, _)| *call)
                else {
                    return;
                };
                if let (Some(pending), ProductSource::CallProduct { call_timeout, .. }) =
                    (self.take_pending(call, ctx), &self.config.source)
                {
                    let reason = format!("Product did not answer within {call_timeout}");
                    self.call_failed(pending, reason, ctx);
                }
            }
            Input::Refused(call) => {
                if let Some(pending) = self.take_pending(call, ctx) {
                    self.call_failed(
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

/// The product ids of an order's row, `1,2,3`: each part between commas that reads as a `u64`
/// (as `str::parse` reads it), in order; parts that do not are skipped. Read byte by byte in one
/// pass into a vector sized up front: in the page's WebAssembly, built for size, splitting and
/// parsing were calls per character (a fiftieth of the engine's time in issue 9's benchmark).
fn product_ids(value: &str) -> Vec<u64> {
    let bytes = value.as_bytes();
    let mut ids = Vec::with_capacity(1 + bytes.iter().filter(|&&b| b == b',').count());
    // The part read so far: its number while it reads as one, None once it cannot.
    let mut id = Some(0u64);
    let mut digits = 0;
    let mut start = true;
    for &b in bytes.iter().chain(std::iter::once(&b',')) {
        if b == b',' {
            if let (Some(n), true) = (id, digits > 0) {
                ids.push(n);
            }
            (id, digits, start) = (Some(0), 0, true);
        } else if b == b'+' && start {
            start = false;
        } else {
            start = false;
            digits += 1;
            id = match b.checked_sub(b'0').filter(|d| *d < 10) {
                Some(d) => id
                    .and_then(|n| n.checked_mul(10))
                    .and_then(|n| n.checked_add(u64::from(d))),
                None => None,
            };
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::product_ids;

    #[test]
    fn product_ids_read_as_split_and_parse_read_them() {
        let values = [
            "",
            "1",
            "1,2,3",
            "12,345,6789",
            ",",
            "1,,2",
            ",7,",
            "+5",
            "+",
            "++5",
            "-5",
            "5+",
            "a,1,b2,3c",
            " 1,2 ",
            "18446744073709551615",
            "18446744073709551616,4",
            "0,00,007",
        ];
        for value in values {
            let expected: Vec<u64> = value.split(',').filter_map(|id| id.parse().ok()).collect();
            assert_eq!(product_ids(value), expected, "{value:?}");
        }
    }
}
