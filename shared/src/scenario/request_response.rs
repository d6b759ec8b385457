//! Request/response: Order calls Product once per product on every read.

use super::workload::{
    LINK_LATENCY, PRODUCTS_PER_ORDER, READ_RATE, RENAME_RATE, down_at, down_for, network,
    order_rows, outage, product_table, read_orders, rename_products, setup,
};
use super::{KnobSpec, Knobs};
use crate::protocol::{ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::services::{
    Client, ClientConfig, Order, OrderConfig, Product, ProductConfig, ProductSource,
};
use crate::sim::World;
use crate::time::Micros;

const CALL_TIMEOUT: KnobSpec = KnobSpec {
    name: "call_timeout_ms",
    label: "Order's call timeout",
    unit: "ms",
    default: 400.0,
    min: 1.0,
    max: 10_000.0,
    whole: false,
    help: "How long Order waits for each call to Product before failing the read.",
};
const PRODUCT_DOWN_AT: KnobSpec = down_at("product_down_at_s", "Product down at", 10.0);
const PRODUCT_DOWN_FOR: KnobSpec = down_for("product_down_for_s", "Product down for", 8.0);

const RENAMES: KnobSpec = KnobSpec {
    default: 0.5,
    ..RENAME_RATE
};

pub const KNOBS: &[KnobSpec] = &[
    READ_RATE,
    RENAMES,
    PRODUCTS_PER_ORDER,
    LINK_LATENCY,
    CALL_TIMEOUT,
    PRODUCT_DOWN_AT,
    PRODUCT_DOWN_FOR,
];

const CLIENT: ServiceId = ServiceId(0);
const ORDER: ServiceId = ServiceId(1);
const PRODUCT: ServiceId = ServiceId(2);

pub fn build(knobs: &Knobs, rng: &mut SimRng) -> World {
    let products_per_order = knobs.get(PRODUCTS_PER_ORDER.name) as u64;
    let call_timeout = Micros::from_millis_f64(knobs.get(CALL_TIMEOUT.name));
    let client = ClientConfig {
        operations: vec![
            read_orders(knobs, ORDER, PRODUCT),
            rename_products(knobs, PRODUCT, PRODUCT),
        ],
        // The client outwaits Order's whole chain of calls, so Order's own verdict reaches it.
        timeout: Micros(call_timeout.0 * products_per_order) + Micros::from_secs(1),
    };
    let order = OrderConfig {
        source: ProductSource::CallProduct {
            product: PRODUCT,
            call_timeout,
        },
    };
    World {
        services: vec![
            setup(
                CLIENT.0,
                "Client",
                ServiceRole::Client,
                Box::new(move || Box::new(Client::new(client.clone()))),
                vec![],
            ),
            setup(
                ORDER.0,
                "Order",
                ServiceRole::Service,
                Box::new(move || Box::new(Order::new(order.clone()))),
                order_rows(products_per_order, rng),
            ),
            setup(
                PRODUCT.0,
                "Product",
                ServiceRole::Service,
                Box::new(|| Box::new(Product::new(ProductConfig { broker: None }))),
                product_table(),
            ),
        ],
        links: vec![(CLIENT, ORDER), (ORDER, PRODUCT)],
        copies: vec![],
        network: network(knobs),
        faults: outage(knobs, PRODUCT, &PRODUCT_DOWN_AT, &PRODUCT_DOWN_FOR),
        intro: format!(
            "Each read of an order makes Order call Product {products_per_order} time(s), one after another: \
             the read takes the sum of those round trips."
        ),
    }
}
