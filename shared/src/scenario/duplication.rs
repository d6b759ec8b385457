//! Duplication: each order stored its product names when it was placed; reads touch only Order.

use super::workload::{
    LINK_LATENCY, ORDERS, PRODUCTS_PER_ORDER, READ_RATE, RENAME_RATE, down_at, down_for, network,
    order_rows, outage, product_table, read_orders, rename_products, setup,
};
use super::{KnobSpec, Knobs};
use crate::protocol::{CopyDecl, ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::service::Row;
use crate::services::{
    Client, ClientConfig, ORDER_LINES_TABLE, Order, OrderConfig, PRODUCTS_TABLE, Product,
    ProductConfig, ProductSource, initial_product_name,
};
use crate::time::Micros;
use crate::world::World;

const UPDATE_BOTH: KnobSpec = KnobSpec {
    name: "update_both",
    label: "Update both",
    unit: "on = 1",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "1: a rename in Product also rewrites every order line holding that name, synchronously, \
           before the user is answered. 0: Product alone is renamed and the copies go stale.",
};
const READS: KnobSpec = KnobSpec {
    default: 4.0,
    ..READ_RATE
};
const PRODUCT_DOWN_AT: KnobSpec = down_at("product_down_at_s", "Product down at", 15.0);
const PRODUCT_DOWN_FOR: KnobSpec = down_for("product_down_for_s", "Product down for", 0.0);
const ORDER_DOWN_AT: KnobSpec = down_at("order_down_at_s", "Order down at", 20.0);
const ORDER_DOWN_FOR: KnobSpec = down_for("order_down_for_s", "Order down for", 0.0);

pub const KNOBS: &[KnobSpec] = &[
    UPDATE_BOTH,
    RENAME_RATE,
    READS,
    PRODUCTS_PER_ORDER,
    LINK_LATENCY,
    PRODUCT_DOWN_AT,
    PRODUCT_DOWN_FOR,
    ORDER_DOWN_AT,
    ORDER_DOWN_FOR,
];

const CLIENT: ServiceId = ServiceId(0);
const ORDER: ServiceId = ServiceId(1);
const PRODUCT: ServiceId = ServiceId(2);

/// One order line per product of each order, holding the name the product had then.
fn order_lines(orders: &[(String, String, Row)]) -> Vec<(String, String, Row)> {
    orders
        .iter()
        .flat_map(|(_, order, row)| {
            row.value.split(',').map(move |product| {
                let name = product
                    .parse()
                    .map_or_else(|_| String::from("?"), initial_product_name);
                let line = Row {
                    value: name,
                    version: 1,
                };
                (
                    ORDER_LINES_TABLE.to_string(),
                    format!("{order}/{product}"),
                    line,
                )
            })
        })
        .collect()
}

pub fn build(knobs: &Knobs, rng: &mut SimRng) -> World {
    let network = network(knobs);
    let update_both = knobs.get(UPDATE_BOTH.name) == 1.0;
    // Waiting for Order takes one round trip; leave room for jitter.
    let update_timeout = Micros::from_secs(1) + Micros(network.latency.0 * 4);
    let client = ClientConfig {
        operations: vec![
            read_orders(knobs, ORDER, PRODUCT),
            rename_products(knobs, PRODUCT, PRODUCT),
        ],
        timeout: update_timeout + Micros::from_secs(1) + Micros(network.latency.0 * 4),
    };
    let order = OrderConfig {
        source: ProductSource::OrderLines { orders: ORDERS },
        apply_only_newer: true,
        publish_orders: None,
        refuse_updates_per_million: 0,
    };
    let product = ProductConfig::with_copies_in(ORDER, update_both, update_timeout);
    let mut order_initial = order_rows(knobs.get(PRODUCTS_PER_ORDER.name) as u64, rng);
    order_initial.extend(order_lines(&order_initial));
    let mut faults = outage(knobs, PRODUCT, &PRODUCT_DOWN_AT, &PRODUCT_DOWN_FOR);
    faults.extend(outage(knobs, ORDER, &ORDER_DOWN_AT, &ORDER_DOWN_FOR));
    let mut links = vec![(CLIENT, ORDER), (CLIENT, PRODUCT)];
    if update_both {
        links.push((PRODUCT, ORDER));
    }
    let intro = if update_both {
        "Each order stored its product names when it was placed, so reads touch only Order. A rename now \
         rewrites every order line holding that product before the user hears back: copies stay right, \
         renames get slower, and they fail when Order is down."
    } else {
        "Each order stored its product names when it was placed, so reads touch only Order and never wait \
         for Product. But a rename changes only Product: every order line holding the old name is now stale."
    };
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
        ],
        links,
        copies: vec![CopyDecl {
            copy_service: ORDER,
            copy_table: ORDER_LINES_TABLE.to_string(),
            source_service: PRODUCT,
            source_table: PRODUCTS_TABLE.to_string(),
        }],
        network,
        faults,
        intro: intro.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_of_every_order_gets_a_line_with_its_first_name() {
        let orders = vec![(
            "orders".to_string(),
            "3".to_string(),
            Row {
                value: "2,7".into(),
                version: 1,
            },
        )];
        let lines = order_lines(&orders);
        let keys: Vec<(&str, &str)> = lines
            .iter()
            .map(|(_, key, row)| (key.as_str(), row.value.as_str()))
            .collect();
        assert_eq!(keys, vec![("3/2", "Oak Chair"), ("3/7", "Coffee Mill")]);
    }
}
