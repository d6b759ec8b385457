//! Event-driven: Order publishes OrderCreated; Inventory and Shipping each consume it from their
//! own queue. A consumer that is down has its events kept in its queue; an event delivered again
//! (after a lost connection, RabbitMQ's rule, or a late ack under SQS's visibility timeout) is
//! applied twice by a consumer without an idempotency check.

use super::workload::{
    LINK_LATENCY, PRODUCTS, PRODUCTS_PER_ORDER, PUBLISH, QUEUE_CAPACITY, confirm_timeout,
    crash_after_write, crash_after_write_fault, down_at, down_for, every, network, outage, setup,
    uses_outbox,
};
use super::{KnobSpec, Knobs};
use crate::protocol::{ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::service::Row;
use crate::services::{
    Broker, BrokerConfig, CREATE_ORDER_OP, Client, ClientConfig, Consumer, ConsumerConfig, Duty,
    Operation, Order, OrderConfig, ProductSource, PublishOrders, Redelivery, RequestKind,
    STOCK_TABLE, Subscription,
};
use crate::time::Micros;
use crate::world::World;

const ORDER_RATE: KnobSpec = KnobSpec {
    name: "order_rate_per_s",
    label: "New orders",
    unit: "per s",
    default: 2.0,
    min: 0.0,
    max: 50.0,
    live_max: Some(5_000.0),
    whole: false,
    choices: &[],
    help: "How often clients create an order.",
};
const ITEMS_PER_ORDER: KnobSpec = KnobSpec {
    default: 2.0,
    help: "How many products each new order holds: Inventory takes one unit of each from stock.",
    ..PRODUCTS_PER_ORDER
};
const REDELIVERY: KnobSpec = KnobSpec {
    name: "redelivery",
    label: "Redelivery",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &["rabbitmq", "visibility-timeout"],
    help: "When the broker delivers an unacknowledged event again. 0, rabbitmq: when the \
           consumer's connection closes (it crashed, or the network broke it), never because an \
           ack is late. 1, visibility-timeout: SQS's rule, when no ack came within the ack \
           timeout, even from a consumer that is only slow.",
};
const ACK_TIMEOUT: KnobSpec = KnobSpec {
    name: "ack_timeout_ms",
    label: "Ack timeout",
    unit: "ms",
    default: 250.0,
    min: 10.0,
    max: 10_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "With redelivery=visibility-timeout (SQS's visibility timeout): how long the broker \
           waits for a consumer's ack before delivering the event again. Shorter than a \
           consumer's work plus a round trip, and events arrive twice. RabbitMQ has no such \
           timeout.",
};
const INVENTORY_WORK: KnobSpec = KnobSpec {
    name: "inventory_work_ms",
    label: "Inventory work",
    unit: "ms",
    default: 30.0,
    min: 0.0,
    max: 5_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long Inventory takes to process an event, on average (each takes 0.5× to 1.5× this).",
};
const SHIPPING_WORK: KnobSpec = KnobSpec {
    name: "shipping_work_ms",
    label: "Shipping work",
    unit: "ms",
    default: 120.0,
    min: 0.0,
    max: 5_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long Shipping takes to process an event, on average (each takes 0.5× to 1.5× this).",
};
const IDEMPOTENT: KnobSpec = KnobSpec {
    name: "idempotent",
    label: "Idempotent consumers",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "1: each consumer keeps an inbox of processed event ids and drops duplicates. 0: it \
           applies whatever it is delivered.",
};
const DURABLE: KnobSpec = KnobSpec {
    name: "durable",
    label: "Durable queues",
    unit: "",
    default: 1.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "1: the broker's queues are rows of its own tables, written before it confirms a \
           publish, so a confirmed event survives a broker crash (RabbitMQ's durable queues with \
           persistent messages). 0: they are its memory, and a broker crash loses what waited \
           in them, confirmed or not (try crash:Broker@12+1).",
};
const INVENTORY_DOWN_AT: KnobSpec = down_at("inventory_down_at_s", "Inventory down at", 20.0);
const INVENTORY_DOWN_FOR: KnobSpec = down_for("inventory_down_for_s", "Inventory down for", 0.0);
const SHIPPING_DOWN_AT: KnobSpec = down_at("shipping_down_at_s", "Shipping down at", 8.0);
const SHIPPING_DOWN_FOR: KnobSpec = down_for("shipping_down_for_s", "Shipping down for", 8.0);
const ORDER_CRASH_AFTER_WRITE: KnobSpec =
    crash_after_write("crash_after_write_pct", "Order crashes after a write");

pub const KNOBS: &[KnobSpec] = &[
    ORDER_RATE,
    ITEMS_PER_ORDER,
    LINK_LATENCY,
    REDELIVERY,
    ACK_TIMEOUT,
    INVENTORY_WORK,
    SHIPPING_WORK,
    IDEMPOTENT,
    DURABLE,
    INVENTORY_DOWN_AT,
    INVENTORY_DOWN_FOR,
    SHIPPING_DOWN_AT,
    SHIPPING_DOWN_FOR,
    PUBLISH,
    ORDER_CRASH_AFTER_WRITE,
];

/// Knob values that do not go together, in words.
pub fn refuse(knobs: &Knobs) -> Option<String> {
    if !uses_outbox(knobs) {
        return None;
    }
    if knobs.get(DURABLE.name) < 1.0 {
        return Some(
            "publish=outbox needs durable=1: the relay marks an outbox row sent once the broker \
             confirms it, and a broker keeping its queues in memory loses confirmed events in a \
             crash, which nothing would then publish again; set durable=1"
                .to_string(),
        );
    }
    (knobs.get(IDEMPOTENT.name) < 1.0).then(|| {
        "publish=outbox needs idempotent=1: the relay publishes again any event the broker has not \
         confirmed, so consumers get some twice and must drop what they already applied; set \
         idempotent=1"
            .to_string()
    })
}

const CLIENT: ServiceId = ServiceId(0);
const ORDER: ServiceId = ServiceId(1);
const BROKER: ServiceId = ServiceId(2);
const INVENTORY: ServiceId = ServiceId(3);
const SHIPPING: ServiceId = ServiceId(4);

/// Units of each product Inventory holds when the run starts.
pub const INITIAL_STOCK: i64 = 100;

pub fn build(knobs: &Knobs, _rng: &mut SimRng) -> World {
    let network = network(knobs);
    let client = ClientConfig {
        operations: vec![Operation {
            name: CREATE_ORDER_OP,
            every: every(knobs.get(ORDER_RATE.name)),
            to: ORDER,
            request: RequestKind::CreateOrder {
                products: PRODUCTS,
                products_per_order: knobs.get(ITEMS_PER_ORDER.name) as u64,
            },
        }],
        timeout: Micros::from_secs(2) + Micros(network.latency.0 * 4),
    };
    let order = OrderConfig {
        source: ProductSource::LocalCopy,
        apply_only_newer: true,
        publish_orders: Some(PublishOrders {
            broker: BROKER,
            confirm_timeout: confirm_timeout(&network),
            outbox: uses_outbox(knobs),
            crash_after_write: crash_after_write_fault(knobs, &ORDER_CRASH_AFTER_WRITE),
        }),
        refuse_updates_per_million: 0,
    };
    let subscribe = |subscriber, queue: &str| Subscription {
        topic: "order",
        subscriber,
        queue: queue.to_string(),
    };
    let redelivery = if knobs.get(REDELIVERY.name) >= 1.0 {
        Redelivery::VisibilityTimeout
    } else {
        Redelivery::RabbitMq
    };
    let durable = knobs.get(DURABLE.name) >= 1.0;
    let broker = BrokerConfig {
        subscriptions: vec![
            subscribe(INVENTORY, "inventory"),
            subscribe(SHIPPING, "shipping"),
        ],
        delivery_delay: Micros::ZERO,
        redelivery,
        ack_timeout: Micros::from_millis_f64(knobs.get(ACK_TIMEOUT.name)),
        retry_backoff_max: Micros::from_secs(1),
        queue_capacity: QUEUE_CAPACITY,
        // Every order matters: Order publishes again whatever the broker does not confirm.
        confirm_publishes: true,
        durable,
    };
    let idempotent = knobs.get(IDEMPOTENT.name) >= 1.0;
    let consumer = |name: &str, duty, work: &KnobSpec| ConsumerConfig {
        name: name.to_string(),
        duty,
        work: Micros::from_millis_f64(knobs.get(work.name)),
        idempotent,
    };
    let inventory = consumer("Inventory", Duty::ReserveStock, &INVENTORY_WORK);
    let shipping = consumer("Shipping", Duty::StartShipment, &SHIPPING_WORK);
    let stock = (1..=PRODUCTS)
        .map(|product| {
            let row = Row {
                value: INITIAL_STOCK.to_string(),
                version: 1,
            };
            (STOCK_TABLE.to_string(), product.to_string(), row)
        })
        .collect();
    let mut faults = outage(knobs, INVENTORY, &INVENTORY_DOWN_AT, &INVENTORY_DOWN_FOR);
    faults.extend(outage(
        knobs,
        SHIPPING,
        &SHIPPING_DOWN_AT,
        &SHIPPING_DOWN_FOR,
    ));
    let redelivered = match redelivery {
        Redelivery::RabbitMq => {
            "The broker follows RabbitMQ: it delivers an unacknowledged event again only when the \
             consumer's connection closes (it crashed, or the network broke it), never because an \
             ack is late."
        }
        Redelivery::VisibilityTimeout => {
            "The broker follows SQS's visibility timeout, not RabbitMQ: an event not acknowledged \
             within the ack timeout is delivered again, even to a consumer that is only slow."
        }
    };
    let kept = if durable {
        "Its queues are durable, rows of its own tables written before it confirms a publish: a \
         confirmed event survives a broker crash."
    } else {
        "Its queues are in its memory: a broker crash loses what waited in them, even events it \
         confirmed."
    };
    let dedup = if idempotent {
        "Each consumer keeps an inbox of the events it processed and drops any it sees again."
    } else {
        "Consumers apply whatever they are delivered: a redelivered event is applied twice."
    };
    let publish = if uses_outbox(knobs) {
        " Order writes each order and an outbox row holding its OrderCreated in one transaction; a \
         relay publishes outbox rows until the broker confirms each, so a crash of Order only delays \
         an event."
    } else {
        ""
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
                vec![],
            ),
            setup(
                BROKER,
                "Broker",
                ServiceRole::Broker,
                broker,
                Broker::new,
                vec![],
            ),
            setup(
                INVENTORY,
                "Inventory",
                ServiceRole::Service,
                inventory,
                Consumer::new,
                stock,
            ),
            setup(
                SHIPPING,
                "Shipping",
                ServiceRole::Service,
                shipping,
                Consumer::new,
                vec![],
            ),
        ],
        links: vec![
            (CLIENT, ORDER),
            (ORDER, BROKER),
            (BROKER, INVENTORY),
            (BROKER, SHIPPING),
        ],
        copies: vec![],
        network,
        faults,
        intro: format!(
            "Clients create orders. Order stores each one and publishes OrderCreated to the broker, which keeps \
             one queue per subscriber: Inventory takes the items from stock, Shipping starts a shipment. Order \
             never waits for either.{publish} {redelivered} {kept} {dedup}"
        ),
    }
}
