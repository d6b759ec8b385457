//! What the scenarios share: the shop's data, the network, outages, and the knobs that set them.

use super::{KnobSpec, Knobs};
use crate::protocol::{Fault, FaultSpec, LinkSpec, ServiceId, ServiceInfo, ServiceRole};
use crate::rng::SimRng;
use crate::service::{Row, Service};
use crate::services::{
    BrokerConfig, Capacity, CapacityConfig, CrashAfterWrite, ORDERS_TABLE, Operation,
    PRODUCTS_TABLE, READ_ORDER_OP, RENAME_PRODUCT_OP, Redelivery, RequestKind, Subscription,
    initial_product_name,
};
use crate::time::Micros;
use crate::world::ServiceSetup;

/// Products are numbered `1..=PRODUCTS`.
pub const PRODUCTS: u64 = 8;
/// Orders are numbered `1..=ORDERS`.
pub const ORDERS: u64 = 20;
/// Events a broker's queue holds before the broker rejects more: far above what any workload
/// leaves waiting, so only a consumer down for minutes reaches it.
pub const QUEUE_CAPACITY: usize = 10_000;

pub const READ_RATE: KnobSpec = KnobSpec {
    name: "read_rate_per_s",
    label: "Reads",
    unit: "per s",
    default: 2.0,
    min: 0.0,
    max: 50.0,
    live_max: Some(5_000.0),
    whole: false,
    choices: &[],
    help: "How often clients read an order with its product names.",
};

pub const RENAME_RATE: KnobSpec = KnobSpec {
    name: "rename_rate_per_s",
    label: "Renames",
    unit: "per s",
    default: 1.0,
    min: 0.0,
    max: 20.0,
    live_max: Some(1_000.0),
    whole: false,
    choices: &[],
    help: "How often someone renames a product in Product.",
};

pub const PRODUCTS_PER_ORDER: KnobSpec = KnobSpec {
    name: "products_per_order",
    label: "Products per order",
    unit: "",
    default: 3.0,
    min: 1.0,
    max: PRODUCTS as f64,
    live_max: None,
    whole: true,
    choices: &[],
    help: "How many products each order holds, so how many names a read needs.",
};

pub const LINK_LATENCY: KnobSpec = KnobSpec {
    name: "link_latency_ms",
    label: "Link latency",
    unit: "ms",
    default: 40.0,
    min: 1.0,
    max: 2_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "One-way network delay of every link; up to a quarter more is added at random.",
};

/// How a service publishes the event of a change it stores: right after the write, from memory
/// (dual write), or through a transactional outbox.
pub const PUBLISH: KnobSpec = KnobSpec {
    name: "publish",
    label: "Publish",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &["dual-write", "outbox"],
    help: "How a change and its event leave the service. 0, dual-write: it stores the change, then \
           publishes the event from memory; a crash between the two, or a publish lost on the way, \
           loses the event. 1, outbox: the change and an outbox row holding the event commit in one \
           local transaction, and a relay publishes outbox rows with publisher confirms, again until \
           confirmed; the broker keeps queues durable and the consumer drops what it already applied.",
};

/// True when `knobs` choose the transactional outbox.
pub fn uses_outbox(knobs: &Knobs) -> bool {
    knobs.get(PUBLISH.name) >= 1.0
}

/// How long a service that crashed between a write and its publish stays down.
pub const CRASH_AFTER_WRITE_RESTART: Micros = Micros::from_millis(500);

/// A knob for the chance that `service` crashes right after storing a change, before
/// publishing its event.
pub const fn crash_after_write(name: &'static str, label: &'static str) -> KnobSpec {
    KnobSpec {
        name,
        label,
        unit: "%",
        default: 0.0,
        min: 0.0,
        max: 100.0,
        live_max: None,
        whole: false,
        choices: &[],
        help: "The chance that the service crashes right after storing a change and before publishing \
               its event (it restarts 0.5 s later): dual write loses that event, the outbox publishes \
               it when the service is back.",
    }
}

/// The crash after a write that `knob` asks for, if any.
pub fn crash_after_write_fault(knobs: &Knobs, knob: &KnobSpec) -> Option<CrashAfterWrite> {
    let pct = knobs.get(knob.name);
    (pct > 0.0).then(|| CrashAfterWrite {
        per_million: (pct * 10_000.0).round() as u32,
        restart_after: CRASH_AFTER_WRITE_RESTART,
    })
}

/// A knob for when a service goes down, in seconds; `for` 0 means never.
pub const fn down_at(name: &'static str, label: &'static str, default: f64) -> KnobSpec {
    KnobSpec {
        name,
        label,
        unit: "s",
        default,
        min: 0.0,
        max: super::MAX_UNTIL_S,
        live_max: None,
        whole: false,
        choices: &[],
        help: "When the service crashes, in seconds from the start.",
    }
}

/// A knob for how long a service stays down, in seconds; 0 means it never goes down.
pub const fn down_for(name: &'static str, label: &'static str, default: f64) -> KnobSpec {
    KnobSpec {
        name,
        label,
        unit: "s",
        default,
        min: 0.0,
        max: super::MAX_UNTIL_S,
        live_max: None,
        whole: false,
        choices: &[],
        help: "How long the service stays down before it restarts; 0 means it never goes down.",
    }
}

/// The mean interval of something happening `rate_per_s` times a second; zero for never.
pub fn every(rate_per_s: f64) -> Micros {
    if rate_per_s <= 0.0 {
        Micros::ZERO
    } else {
        Micros::from_secs_f64(1.0 / rate_per_s)
    }
}

/// Clients reading orders from `order` at `knobs`' read rate; product names belong to `product`.
pub fn read_orders(knobs: &Knobs, order: ServiceId, product: ServiceId) -> Operation {
    Operation {
        name: READ_ORDER_OP,
        every: every(knobs.get(READ_RATE.name)),
        to: order,
        request: RequestKind::ReadOrder {
            orders: ORDERS,
            source: product,
        },
    }
}

/// Clients renaming products through `to` at `knobs`' rename rate; names belong to `product`.
pub fn rename_products(knobs: &Knobs, to: ServiceId, product: ServiceId) -> Operation {
    Operation {
        name: RENAME_PRODUCT_OP,
        every: every(knobs.get(RENAME_RATE.name)),
        to,
        request: RequestKind::RenameProduct {
            products: PRODUCTS,
            source: product,
        },
    }
}

/// Every link behaves alike: the latency knob, a quarter of it as jitter, no loss.
pub fn network(knobs: &Knobs) -> LinkSpec {
    let latency = Micros::from_millis_f64(knobs.get(LINK_LATENCY.name));
    LinkSpec {
        latency,
        jitter: Micros(latency.0 / 4),
        loss_per_million: 0,
    }
}

/// A crash at `at_knob` and a restart `for_knob` later, when `for_knob` is above zero.
pub fn outage(
    knobs: &Knobs,
    service: ServiceId,
    at_knob: &KnobSpec,
    for_knob: &KnobSpec,
) -> Vec<FaultSpec> {
    let down_for = Micros::from_secs_f64(knobs.get(for_knob.name));
    if down_for == Micros::ZERO {
        return Vec::new();
    }
    vec![FaultSpec {
        at: Micros::from_secs_f64(knobs.get(at_knob.name)),
        lasts: Some(down_for),
        fault: Fault::Crash { service },
    }]
}

/// The broker that keeps one service's copy fresh: `subscriber` reads `topic` from its own
/// `queue`, each event held `delivery_delay` in the broker first. With `outbox`, the publisher
/// relays from a transactional outbox: the broker confirms each publish once its durable queue
/// holds it.
///
/// FIXME: without the outbox, publishers of copy updates fire and forget (no confirms), so a
/// publish the network loses leaves that copy behind until the row changes again (the hybrid
/// has no outbox yet; eventual consistency has `publish=outbox`).
pub fn copy_feed_broker(
    topic: &'static str,
    subscriber: ServiceId,
    queue: &str,
    delivery_delay: Micros,
    network: &LinkSpec,
    outbox: bool,
) -> BrokerConfig {
    BrokerConfig {
        subscriptions: vec![Subscription {
            topic,
            subscriber,
            queue: queue.to_string(),
        }],
        delivery_delay,
        redelivery: Redelivery::RabbitMq,
        // Used only under the visibility timeout. An ack takes one round trip; waiting four
        // leaves room for jitter before redelivering.
        ack_timeout: Micros::from_secs(1) + Micros(network.latency.0 * 8),
        retry_backoff_max: Micros::from_secs(2),
        queue_capacity: QUEUE_CAPACITY,
        // A relay marks a row sent on the confirm, so the broker must confirm, and only once
        // the event is durable: a confirmed event lost in a broker crash would never come back.
        confirm_publishes: outbox,
        // Dual-write publishers do not wait for confirms, so nothing promised survives anyway;
        // a crash of this broker loses what waited (see the FIXME above).
        durable: outbox,
    }
}

/// The relay's confirm timeout: a confirm takes one round trip; waiting four leaves room for
/// jitter (as event-driven's Order waits).
pub fn confirm_timeout(network: &LinkSpec) -> Micros {
    Micros::from_secs(1) + Micros(network.latency.0 * 8)
}

/// A service of the topology: the simulation makes its machine with `new(config)` at start and
/// again after each crash.
pub fn setup<C, M>(
    id: ServiceId,
    name: &str,
    role: ServiceRole,
    config: C,
    new: fn(C) -> M,
    initial_rows: Vec<(String, String, Row)>,
) -> ServiceSetup
where
    C: Clone + 'static,
    M: Service + 'static,
{
    ServiceSetup {
        info: ServiceInfo {
            id,
            name: name.to_string(),
            role,
        },
        make: Box::new(move || Box::new(new(config.clone()))),
        initial_rows,
    }
}

/// `table`'s rows holding every product's starting name at version 1.
pub fn product_rows(table: &str) -> Vec<(String, String, Row)> {
    (1..=PRODUCTS)
        .map(|product| {
            (
                table.to_string(),
                product.to_string(),
                Row {
                    value: initial_product_name(product),
                    version: 1,
                },
            )
        })
        .collect()
}

/// Product's own table.
pub fn product_table() -> Vec<(String, String, Row)> {
    product_rows(PRODUCTS_TABLE)
}

/// Order's orders, each holding `products_per_order` distinct products picked at random.
pub fn order_rows(products_per_order: u64, rng: &mut SimRng) -> Vec<(String, String, Row)> {
    (1..=ORDERS)
        .map(|order| {
            let mut products: Vec<u64> = Vec::new();
            while (products.len() as u64) < products_per_order.min(PRODUCTS) {
                let product = 1 + rng.below(PRODUCTS);
                if !products.contains(&product) {
                    products.push(product);
                }
            }
            let value = products
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            (
                ORDERS_TABLE.to_string(),
                order.to_string(),
                Row { value, version: 1 },
            )
        })
        .collect()
}

/// The three knobs of a service's capacity, named after `service` (such as `product`): its
/// workers (`{service}_workers`, 0 for unlimited), its mean service time per request
/// (`{service}_service_ms`, 0 for instant: today's behaviour, the default) and its waiting queue
/// (`{service}_queue_max`). At their defaults they are left out of the trace's header.
pub struct CapacityKnobs {
    /// `{service}_workers`.
    pub workers: KnobSpec,
    /// `{service}_service_ms`.
    pub service_ms: KnobSpec,
    /// `{service}_queue_max`.
    pub queue_max: KnobSpec,
}

/// The largest worker pool and waiting queue a knob may ask for.
pub const WORKERS_MAX: f64 = 256.0;
/// The longest waiting queue a knob may ask for.
pub const QUEUE_MAX_MAX: f64 = 10_000.0;
/// The queue a service with workers gets unless told otherwise.
pub const QUEUE_MAX_DEFAULT: f64 = 10.0;

impl CapacityKnobs {
    /// Every knob, for a scenario's list.
    pub const fn all(&self) -> [KnobSpec; 3] {
        [self.workers, self.service_ms, self.queue_max]
    }

    /// The capacity the knobs ask for; unlimited (wrapping nothing) at the defaults.
    pub fn config(&self, knobs: &Knobs) -> CapacityConfig {
        CapacityConfig {
            workers: knobs.get(self.workers.name) as u32,
            service_time: Micros::from_millis_f64(knobs.get(self.service_ms.name)),
            queue_max: knobs.get(self.queue_max.name) as u32,
        }
    }

    /// Why these knob values do not go together, if they do not: workers limit nothing while
    /// requests take no time.
    pub fn refuse(&self, knobs: &Knobs) -> Option<String> {
        let config = self.config(knobs);
        (config.workers > 0 && config.is_unlimited()).then(|| {
            format!(
                "{} = {} limits nothing while {} is 0 (requests take no time); give {} a time, \
                 such as {}=50",
                self.workers.name,
                config.workers,
                self.service_ms.name,
                self.service_ms.name,
                self.service_ms.name
            )
        })
    }
}

/// The capacity knobs of the service `$service` (a name such as `"product"`), labelled `$label`.
macro_rules! capacity_knobs {
    ($service:literal, $label:literal) => {
        $crate::scenario::workload::CapacityKnobs {
            workers: $crate::scenario::KnobSpec {
                name: concat!($service, "_workers"),
                label: concat!($label, "'s workers"),
                unit: "",
                default: 0.0,
                min: 0.0,
                max: $crate::scenario::workload::WORKERS_MAX,
                live_max: None,
                whole: true,
                choices: &[],
                help: concat!(
                    "How many requests ",
                    $label,
                    " works on at once; more wait in its queue. 0 means unlimited."
                ),
            },
            service_ms: $crate::scenario::KnobSpec {
                name: concat!($service, "_service_ms"),
                label: concat!($label, "'s time per request"),
                unit: "ms",
                default: 0.0,
                min: 0.0,
                max: 10_000.0,
                live_max: None,
                whole: false,
                choices: &[],
                help: concat!(
                    "How long ",
                    $label,
                    " works on each request, on average (drawn between half and 1.5 times it; \
                     a slow fault multiplies it). 0 means it answers at once."
                ),
            },
            queue_max: $crate::scenario::KnobSpec {
                name: concat!($service, "_queue_max"),
                label: concat!($label, "'s queue"),
                unit: "",
                default: $crate::scenario::workload::QUEUE_MAX_DEFAULT,
                min: 0.0,
                max: $crate::scenario::workload::QUEUE_MAX_MAX,
                live_max: None,
                whole: true,
                choices: &[],
                help: concat!(
                    "How many requests may wait for one of ",
                    $label,
                    "'s workers; one more is refused at once (503 overloaded)."
                ),
            },
        }
    };
}
pub(crate) use capacity_knobs;

/// `setup` with a capacity in front of its machine, unless `capacity` is unlimited (then `setup`
/// as it is, so the run's trace is what it was without the knobs).
pub fn with_capacity(setup: ServiceSetup, capacity: CapacityConfig) -> ServiceSetup {
    if capacity.is_unlimited() {
        return setup;
    }
    let ServiceSetup {
        info,
        make,
        initial_rows,
    } = setup;
    let name = info.name.clone();
    ServiceSetup {
        info,
        make: Box::new(move || Box::new(Capacity::new(make(), capacity, &name))),
        initial_rows,
    }
}
