//! Request/response: Order calls Product once per product on every read.

use super::workload::{
    CapacityKnobs, LINK_LATENCY, PRODUCTS_PER_ORDER, READ_RATE, RENAME_RATE, capacity_knobs,
    down_at, down_for, network, order_rows, outage, product_table, read_orders, rename_products,
    setup, with_capacity,
};
use super::{KnobSpec, Knobs, SLOW_FACTOR_MAX};
use crate::float_text::shortest;
use crate::protocol::{Fault, FaultSpec, RunRequest, ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::services::{
    BreakerConfig, Client, ClientConfig, Order, OrderConfig, Product, ProductConfig, ProductSource,
    Resilience, RetryBudgetConfig,
};
use crate::time::Micros;
use crate::world::World;

const CALL_TIMEOUT: KnobSpec = KnobSpec {
    name: "call_timeout_ms",
    label: "Order's call timeout",
    unit: "ms",
    default: 400.0,
    min: 1.0,
    max: 10_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long Order waits for each call to Product before failing the read.",
};
const POOL_SIZE: KnobSpec = KnobSpec {
    name: "pool_size",
    label: "Order's connections to Product",
    unit: "",
    default: 2.0,
    min: 1.0,
    max: 64.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "How many reads can wait on Product at once; the rest queue for a connection.",
};
const PRODUCT_SLOW_FACTOR: KnobSpec = KnobSpec {
    name: "product_slow_factor",
    label: "Product slows by",
    unit: "×",
    default: 3.0,
    min: 1.0,
    max: SLOW_FACTOR_MAX as f64,
    live_max: None,
    whole: true,
    choices: &[],
    help: "How many times longer Product's messages take while it is slow; 1 means never slow.",
};
const PRODUCT_SLOW_AT: KnobSpec = KnobSpec {
    help: "When Product becomes slow, in seconds from the start.",
    ..down_at("product_slow_at_s", "Product slow at", 3.0)
};
const PRODUCT_SLOW_FOR: KnobSpec = KnobSpec {
    help: "How long Product stays slow; 0 means never.",
    ..down_for("product_slow_for_s", "Product slow for", 5.0)
};
const PRODUCT_DOWN_AT: KnobSpec = down_at("product_down_at_s", "Product down at", 10.0);
const PRODUCT_DOWN_FOR: KnobSpec = down_for("product_down_for_s", "Product down for", 8.0);

const RENAMES: KnobSpec = KnobSpec {
    default: 0.5,
    ..RENAME_RATE
};

const READS: KnobSpec = KnobSpec {
    default: 4.0,
    ..READ_RATE
};

const DEADLINES: KnobSpec = KnobSpec {
    name: "deadlines",
    label: "Deadlines",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &["off", "on"],
    help: "0, off: Product does every lookup it receives. 1, on: each call carries the time \
           Order gives up on it, and Product drops a lookup it starts after that, undone (and \
           says so).",
};
const RETRIES: KnobSpec = KnobSpec {
    name: "retries",
    label: "Retries per call",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 5.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "How many times Order calls Product again after a failed or timed-out call, waiting \
           an exponential backoff with jitter before each; 0 means none.",
};
const RETRY_BACKOFF: KnobSpec = KnobSpec {
    name: "retry_backoff_ms",
    label: "First retry's backoff",
    unit: "ms",
    default: 50.0,
    min: 1.0,
    max: 5_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "The wait before the first retry; each next one doubles it, half of it drawn at random \
           (equal jitter).",
};
const RETRY_BUDGET: KnobSpec = KnobSpec {
    name: "retry_budget_pct",
    label: "Retry budget",
    unit: "%",
    default: 0.0,
    min: 0.0,
    max: 100.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "Finagle's retry budget: over the last 10 s, retries may be at most this share of \
           Order's first calls to Product; 0 means no budget (every allowed retry is made).",
};
const BREAKER: KnobSpec = KnobSpec {
    name: "breaker",
    label: "Circuit breaker",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &["off", "on"],
    help: "0, off: Order calls Product whatever happened before. 1, on: failed calls in a row open a breaker on Order's calls to Product; while open, \
           reads answer at once with the names Order remembers (or 'name unavailable'), marked \
           degraded; after the cool-down one probe call decides whether it closes.",
};
const BREAKER_FAILURES: KnobSpec = KnobSpec {
    name: "breaker_failures",
    label: "Failures that open it",
    unit: "",
    default: 5.0,
    min: 1.0,
    max: 100.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "Failed calls to Product in a row that open the circuit breaker.",
};
const BREAKER_OPEN: KnobSpec = KnobSpec {
    name: "breaker_open_ms",
    label: "Breaker stays open",
    unit: "ms",
    default: 1_000.0,
    min: 10.0,
    max: 60_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long the open breaker refuses calls before it lets one probe through.",
};

/// How far back the retry budget counts calls (Finagle's default `ttl`).
const RETRY_BUDGET_WINDOW: Micros = Micros::from_secs(10);

/// Issue 9's big run, the workload the benchmarks and the memory budgets measure: 50 reads a
/// second, 8 products per order, a pool of 64 connections, 1 ms links, no outage, seed 1, for
/// `until_s` (200 s records 378,523 trace events).
pub fn big_run(until_s: f64) -> RunRequest {
    let knobs = [
        ("read_rate_per_s", 50.0),
        ("products_per_order", 8.0),
        ("pool_size", 64.0),
        ("link_latency_ms", 1.0),
        ("product_slow_for_s", 0.0),
        ("product_down_for_s", 0.0),
    ];
    RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: Vec::new(),
    }
}

/// Product's capacity: workers, time per request, waiting queue (unlimited by default).
pub const PRODUCT_CAPACITY: CapacityKnobs = capacity_knobs!("product", "Product");
/// Order's capacity, likewise.
pub const ORDER_CAPACITY: CapacityKnobs = capacity_knobs!("order", "Order");

pub const KNOBS: &[KnobSpec] = &[
    READS,
    RENAMES,
    PRODUCTS_PER_ORDER,
    LINK_LATENCY,
    CALL_TIMEOUT,
    POOL_SIZE,
    PRODUCT_SLOW_FACTOR,
    PRODUCT_SLOW_AT,
    PRODUCT_SLOW_FOR,
    PRODUCT_DOWN_AT,
    PRODUCT_DOWN_FOR,
    DEADLINES,
    RETRIES,
    RETRY_BACKOFF,
    RETRY_BUDGET,
    BREAKER,
    BREAKER_FAILURES,
    BREAKER_OPEN,
    PRODUCT_CAPACITY.all()[0],
    PRODUCT_CAPACITY.all()[1],
    PRODUCT_CAPACITY.all()[2],
    ORDER_CAPACITY.all()[0],
    ORDER_CAPACITY.all()[1],
    ORDER_CAPACITY.all()[2],
];

/// Why these knob values do not go together, if they do not.
pub fn refuse(knobs: &Knobs) -> Option<String> {
    refuse_resilience(knobs)
        .or_else(|| PRODUCT_CAPACITY.refuse(knobs))
        .or_else(|| ORDER_CAPACITY.refuse(knobs))
}

/// Why these knobs make no sense together, if they do not: settings of a retry or a breaker
/// changed while retries or the breaker are off (they would do nothing).
fn refuse_resilience(knobs: &Knobs) -> Option<String> {
    let changed = |knob: &KnobSpec| knobs.get(knob.name) != knob.default;
    if knobs.get(RETRIES.name) == 0.0 {
        for knob in [&RETRY_BUDGET, &RETRY_BACKOFF] {
            if changed(knob) {
                return Some(format!(
                    "{}={} has no effect: Order makes no retries ({}=0); give retries=1 or more, \
                     or leave {} at its default",
                    knob.name,
                    shortest(knobs.get(knob.name)),
                    RETRIES.name,
                    knob.name
                ));
            }
        }
    }
    if knobs.get(BREAKER.name) == 0.0 {
        for knob in [&BREAKER_FAILURES, &BREAKER_OPEN] {
            if changed(knob) {
                return Some(format!(
                    "{}={} has no effect: there is no circuit breaker (breaker=off); give \
                     breaker=on, or leave {} at its default",
                    knob.name,
                    shortest(knobs.get(knob.name)),
                    knob.name
                ));
            }
        }
    }
    None
}

/// The resilience the knobs ask for.
fn resilience(knobs: &Knobs) -> Resilience {
    let percent = knobs.get(RETRY_BUDGET.name) as u32;
    Resilience {
        deadlines: knobs.get(DEADLINES.name) >= 1.0,
        retries: knobs.get(RETRIES.name) as u32,
        backoff: Micros::from_millis_f64(knobs.get(RETRY_BACKOFF.name)),
        budget: (percent > 0).then_some(RetryBudgetConfig {
            percent,
            window: RETRY_BUDGET_WINDOW,
        }),
        breaker: (knobs.get(BREAKER.name) >= 1.0).then(|| BreakerConfig {
            failures: knobs.get(BREAKER_FAILURES.name) as u32,
            open_for: Micros::from_millis_f64(knobs.get(BREAKER_OPEN.name)),
        }),
    }
}

const CLIENT: ServiceId = ServiceId(0);
const ORDER: ServiceId = ServiceId(1);
const PRODUCT: ServiceId = ServiceId(2);

/// How long the client waits for a read: it outwaits the longest Order can take to give its own
/// verdict, so a read fails with Order's reason (no connection, Product did not answer), not the
/// client's. That is a wait for one of Order's connections (given up after `call_timeout`), then
/// `products_per_order` calls of at most `call_timeout` each, plus the way to Order and back at
/// the network's longest delay, and a second to spare.
/// With retries, each product may take every attempt's timeout and every backoff (at most
/// twice the first backoff's doubling) before Order's verdict.
fn client_timeout(
    call_timeout: Micros,
    products_per_order: u64,
    resilience: &Resilience,
    network: &crate::protocol::LinkSpec,
) -> Micros {
    let retries = u64::from(resilience.retries);
    let backoffs: u64 = (1..=resilience.retries)
        .map(|retry| resilience.backoff.0 << (retry - 1).min(6))
        .sum();
    let per_product = call_timeout.0 * (retries + 1) + backoffs;
    let waits = call_timeout.0 + per_product * products_per_order;
    let round_trip = 2 * (network.latency.0 + network.jitter.0);
    Micros(waits + round_trip) + Micros::from_secs(1)
}

pub fn build(knobs: &Knobs, rng: &mut SimRng) -> World {
    let products_per_order = knobs.get(PRODUCTS_PER_ORDER.name) as u64;
    let call_timeout = Micros::from_millis_f64(knobs.get(CALL_TIMEOUT.name));
    let resilience = resilience(knobs);
    let client = ClientConfig {
        operations: vec![
            read_orders(knobs, ORDER, PRODUCT),
            rename_products(knobs, PRODUCT, PRODUCT),
        ],
        timeout: client_timeout(
            call_timeout,
            products_per_order,
            &resilience,
            &network(knobs),
        ),
    };
    let order = OrderConfig {
        source: ProductSource::CallProduct {
            product: PRODUCT,
            call_timeout,
            pool_size: knobs.get(POOL_SIZE.name) as usize,
            resilience,
        },
        apply_only_newer: true,
        publish_orders: None,
        refuse_updates_per_million: 0,
    };
    let mut faults = outage(knobs, PRODUCT, &PRODUCT_DOWN_AT, &PRODUCT_DOWN_FOR);
    let slow_factor = knobs.get(PRODUCT_SLOW_FACTOR.name) as u32;
    let slow_for = Micros::from_secs_f64(knobs.get(PRODUCT_SLOW_FOR.name));
    if slow_factor >= 2 && slow_for > Micros::ZERO {
        faults.push(FaultSpec {
            at: Micros::from_secs_f64(knobs.get(PRODUCT_SLOW_AT.name)),
            lasts: Some(slow_for),
            fault: Fault::Slow {
                service: PRODUCT,
                factor: slow_factor,
            },
        });
    }
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
            with_capacity(
                setup(
                    ORDER,
                    "Order",
                    ServiceRole::Service,
                    order,
                    Order::new,
                    order_rows(products_per_order, rng),
                ),
                ORDER_CAPACITY.config(knobs),
            ),
            with_capacity(
                setup(
                    PRODUCT,
                    "Product",
                    ServiceRole::Service,
                    ProductConfig::sole_owner(),
                    Product::new,
                    product_table(),
                ),
                PRODUCT_CAPACITY.config(knobs),
            ),
        ],
        links: vec![(CLIENT, ORDER), (ORDER, PRODUCT)],
        copies: vec![],
        network: network(knobs),
        faults,
        intro: format!(
            "Each read of an order makes Order call Product {products_per_order} time(s), one after another: \
             the read takes the sum of those round trips."
        ),
    }
}
