//! Eventual consistency: Product publishes ProductUpdated; Order applies it to its own copy.

use super::workload::{
    LINK_LATENCY, PRODUCTS_PER_ORDER, PUBLISH, READ_RATE, RENAME_RATE, confirm_timeout,
    copy_feed_broker, crash_after_write, crash_after_write_fault, down_at, down_for, network,
    order_rows, outage, product_rows, product_table, read_orders, rename_products, setup,
    uses_outbox,
};
use super::{KnobSpec, Knobs};
use crate::protocol::{CopyDecl, ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::services::{
    Broker, Client, ClientConfig, Order, OrderConfig, OutboxConfig, PRODUCT_NAMES_COPY_TABLE,
    PRODUCTS_TABLE, Product, ProductConfig, ProductSource,
};
use crate::time::Micros;
use crate::world::World;

const BROKER_DELAY: KnobSpec = KnobSpec {
    name: "broker_delay_ms",
    label: "Broker delay",
    unit: "ms",
    default: 300.0,
    min: 0.0,
    max: 10_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long the broker holds each event before delivering it: it widens the staleness window.",
};
const APPLY_ONLY_NEWER: KnobSpec = KnobSpec {
    name: "apply_only_newer",
    label: "Version check",
    unit: "on = 1",
    default: 1.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "1: Order applies an event only if it is newer than its copy. 0: it applies every event, so \
           two renames delivered out of order leave the copy wrong for good (try \
           rename_rate_per_s=20 with the fault reorder:Product-Broker=100%@0: renames of one \
           product close enough together for one event to overtake the other; the copy \
           regressions count them).",
};
const READS: KnobSpec = KnobSpec {
    default: 4.0,
    ..READ_RATE
};
const ORDER_DOWN_AT: KnobSpec = down_at("order_down_at_s", "Order down at", 12.0);
const ORDER_DOWN_FOR: KnobSpec = down_for("order_down_for_s", "Order down for", 6.0);
const PRODUCT_DOWN_AT: KnobSpec = down_at("product_down_at_s", "Product down at", 22.0);
const PRODUCT_DOWN_FOR: KnobSpec = down_for("product_down_for_s", "Product down for", 0.0);
const PRODUCT_CRASH_AFTER_WRITE: KnobSpec =
    crash_after_write("crash_after_write_pct", "Product crashes after a write");

pub const KNOBS: &[KnobSpec] = &[
    RENAME_RATE,
    READS,
    PRODUCTS_PER_ORDER,
    BROKER_DELAY,
    APPLY_ONLY_NEWER,
    LINK_LATENCY,
    ORDER_DOWN_AT,
    ORDER_DOWN_FOR,
    PRODUCT_DOWN_AT,
    PRODUCT_DOWN_FOR,
    PUBLISH,
    PRODUCT_CRASH_AFTER_WRITE,
];

/// Knob values that do not go together, in words.
pub fn refuse(knobs: &Knobs) -> Option<String> {
    (uses_outbox(knobs) && knobs.get(APPLY_ONLY_NEWER.name) == 0.0).then(|| {
        "publish=outbox needs apply_only_newer=1: the relay publishes again any event the broker \
         has not confirmed, so Order gets some twice, and late; without the version check a late \
         one rolls its copy back"
            .to_string()
    })
}

const CLIENT: ServiceId = ServiceId(0);
const ORDER: ServiceId = ServiceId(1);
const PRODUCT: ServiceId = ServiceId(2);
const BROKER: ServiceId = ServiceId(3);

pub fn build(knobs: &Knobs, rng: &mut SimRng) -> World {
    let network = network(knobs);
    let client = ClientConfig {
        operations: vec![
            read_orders(knobs, ORDER, PRODUCT),
            rename_products(knobs, PRODUCT, PRODUCT),
        ],
        timeout: Micros::from_secs(2) + Micros(network.latency.0 * 4),
    };
    let outbox = uses_outbox(knobs);
    let broker = copy_feed_broker(
        "product",
        ORDER,
        "order",
        Micros::from_millis_f64(knobs.get(BROKER_DELAY.name)),
        &network,
        outbox,
    );
    let mut product = ProductConfig::publishing_to(BROKER);
    product.outbox = outbox.then(|| OutboxConfig {
        service: "Product",
        broker: BROKER,
        confirm_timeout: confirm_timeout(&network),
    });
    product.crash_after_write = crash_after_write_fault(knobs, &PRODUCT_CRASH_AFTER_WRITE);
    let order = OrderConfig {
        source: ProductSource::LocalCopy,
        apply_only_newer: knobs.get(APPLY_ONLY_NEWER.name) == 1.0,
        publish_orders: None,
        refuse_updates_per_million: 0,
    };
    let mut order_initial = order_rows(knobs.get(PRODUCTS_PER_ORDER.name) as u64, rng);
    order_initial.extend(product_rows(PRODUCT_NAMES_COPY_TABLE));
    let mut faults = outage(knobs, ORDER, &ORDER_DOWN_AT, &ORDER_DOWN_FOR);
    faults.extend(outage(knobs, PRODUCT, &PRODUCT_DOWN_AT, &PRODUCT_DOWN_FOR));
    World {
        services: vec![
            setup(
                CLIENT,
                "Client",
                ServiceRole::Client,
                client,
                Client::new,
                vec![],
            ),
            setup(
                ORDER,
                "Order",
                ServiceRole::Service,
                order,
                Order::new,
                order_initial,
            ),
            setup(
                PRODUCT,
                "Product",
                ServiceRole::Service,
                product,
                Product::new,
                product_table(),
            ),
            setup(
                BROKER,
                "Broker",
                ServiceRole::Broker,
                broker,
                Broker::new,
                vec![],
            ),
        ],
        links: vec![
            (CLIENT, ORDER),
            (CLIENT, PRODUCT),
            (PRODUCT, BROKER),
            (BROKER, ORDER),
        ],
        copies: vec![CopyDecl {
            copy_service: ORDER,
            copy_table: PRODUCT_NAMES_COPY_TABLE.to_string(),
            source_service: PRODUCT,
            source_table: PRODUCTS_TABLE.to_string(),
        }],
        network,
        faults,
        intro: if outbox {
            "Order answers reads from its own copy of product names. Product writes each rename and an \
             outbox row holding its ProductUpdated event in one transaction; a relay publishes outbox rows \
             until the broker confirms each, so a crash or a lost publish only delays the event. Until it \
             arrives, Order's copy is stale."
                .to_string()
        } else {
            "Order answers reads from its own copy of product names. Each rename in Product travels as a \
             ProductUpdated event through the broker; until it arrives, Order's copy is stale."
                .to_string()
        },
    }
}
