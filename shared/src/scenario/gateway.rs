//! Gateway (coordinator): a coordinator sends each rename to Product and to Order at once, waits
//! for both, and rolls both back when either fails (`protocol=saga`); or has both prepare it,
//! logs its decision, then has both commit or abort (`protocol=2pc`). Reads come from Order's copy.

use super::workload::{
    LINK_LATENCY, PRODUCTS, PRODUCTS_PER_ORDER, READ_RATE, RENAME_RATE, down_at, down_for, network,
    order_rows, outage, product_rows, product_table, read_orders, rename_products, setup,
};
use super::{KnobSpec, Knobs};
use crate::protocol::{CopyDecl, ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::service::Row;
use crate::services::{
    Client, ClientConfig, Coordinator, CoordinatorConfig, LogEntry, Order, OrderConfig,
    PRODUCT_NAMES_COPY_TABLE, PRODUCTS_TABLE, Product, ProductConfig, ProductSource, Protocol,
    RENAME_LOG_TABLE, initial_product_name,
};
use crate::time::Micros;
use crate::world::World;

const RENAMES: KnobSpec = KnobSpec {
    help: "How often someone renames a product, through the coordinator.",
    ..RENAME_RATE
};
const PRODUCT_FAILURE: KnobSpec = KnobSpec {
    name: "product_failure_pct",
    label: "Product refuses",
    unit: "%",
    default: 5.0,
    min: 0.0,
    max: 100.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "The chance that Product refuses an update: the coordinator then rolls the rename back.",
};
const ORDER_FAILURE: KnobSpec = KnobSpec {
    name: "order_failure_pct",
    label: "Order refuses",
    unit: "%",
    default: 5.0,
    min: 0.0,
    max: 100.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "The chance that Order refuses an update of its copy: the coordinator then rolls the rename back.",
};
const COORDINATOR_TIMEOUT: KnobSpec = KnobSpec {
    name: "coordinator_timeout_ms",
    label: "Coordinator's timeout",
    unit: "ms",
    default: 500.0,
    min: 1.0,
    max: 10_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long the coordinator waits for both services before it rolls the rename back; also the longest a rename may wait behind another of the same product.",
};
const CRASH_AT_RENAME: KnobSpec = KnobSpec {
    name: "coordinator_crash_at_rename",
    label: "Coordinator crashes at rename #",
    unit: "",
    default: 15.0,
    min: 0.0,
    max: 100_000.0,
    live_max: None,
    whole: true,
    choices: &[],
    help: "The coordinator crashes during this rename (counted from the start); 0 for never. Saga: after sending it to Product and before sending it to Order. 2pc: after logging its decision (commit or abort) and before sending it, so whoever prepared the rename holds it in doubt until the coordinator restarts.",
};
const RESTART_AFTER: KnobSpec = KnobSpec {
    name: "coordinator_restart_after_s",
    label: "Coordinator restarts after",
    unit: "s",
    default: 2.0,
    min: 0.1,
    max: super::MAX_UNTIL_S,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long the crashed coordinator stays down before it restarts and reads its log.",
};
const PROTOCOL: KnobSpec = KnobSpec {
    name: "protocol",
    label: "Protocol",
    unit: "",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    live_max: None,
    whole: true,
    choices: &["saga", "2pc"],
    help: "How the coordinator makes a rename happen at both services. 0, saga: both apply it at \
           once and roll it back when either fails, so a reader can see a name that never \
           commits. 1, 2pc (two-phase commit): both prepare it (the new name held, the old one \
           still served, the row locked), the coordinator logs its decision, then both commit or \
           abort: no aborted reads, but a round trip more per rename, and rows stay in doubt \
           while the coordinator is down between deciding and telling.",
};
const PRODUCT_DOWN_AT: KnobSpec = down_at("product_down_at_s", "Product down at", 22.0);
const PRODUCT_DOWN_FOR: KnobSpec = down_for("product_down_for_s", "Product down for", 4.0);

pub const KNOBS: &[KnobSpec] = &[
    PROTOCOL,
    RENAMES,
    READ_RATE,
    PRODUCTS_PER_ORDER,
    LINK_LATENCY,
    PRODUCT_FAILURE,
    ORDER_FAILURE,
    COORDINATOR_TIMEOUT,
    CRASH_AT_RENAME,
    RESTART_AFTER,
    PRODUCT_DOWN_AT,
    PRODUCT_DOWN_FOR,
];

const CLIENT: ServiceId = ServiceId(0);
const COORDINATOR: ServiceId = ServiceId(1);
const ORDER: ServiceId = ServiceId(2);
const PRODUCT: ServiceId = ServiceId(3);

/// Renames waiting behind an earlier rename of the same product before the coordinator refuses more.
const WAITING_CAPACITY: usize = 32;

fn per_million(percent: f64) -> u32 {
    (percent * 10_000.0).round() as u32
}

/// The protocol the knobs pick.
fn protocol(knobs: &Knobs) -> Protocol {
    if knobs.get(PROTOCOL.name) >= 1.0 {
        Protocol::TwoPhaseCommit
    } else {
        Protocol::Saga
    }
}

/// Why these knobs make no sense together, if they do not: a restart time changed from its
/// default although the coordinator never crashes would change nothing, silently.
pub fn refuse(knobs: &Knobs) -> Option<String> {
    let restart_after = knobs.get(RESTART_AFTER.name);
    let never_crashes = knobs.get(CRASH_AT_RENAME.name) == 0.0;
    (never_crashes && restart_after != RESTART_AFTER.default).then(|| {
        format!(
            "{}={} has no effect: the coordinator never crashes ({}=0); give a rename number to \
             crash at, or leave {} at its default",
            RESTART_AFTER.name,
            crate::float_text::shortest(restart_after),
            CRASH_AT_RENAME.name,
            RESTART_AFTER.name
        )
    })
}

pub fn build(knobs: &Knobs, rng: &mut SimRng) -> World {
    let network = network(knobs);
    let timeout = Micros::from_millis_f64(knobs.get(COORDINATOR_TIMEOUT.name));
    let client = ClientConfig {
        operations: vec![
            read_orders(knobs, ORDER, PRODUCT),
            rename_products(knobs, COORDINATOR, PRODUCT),
        ],
        // A rename may wait up to one timeout behind another, then take up to one more, plus the
        // round trip to the coordinator: the client outwaits all that, so the coordinator's
        // verdict always reaches it.
        timeout: Micros(timeout.0 * 2 + network.latency.0 * 3) + Micros::from_secs(1),
    };
    let crash_at = knobs.get(CRASH_AT_RENAME.name) as u64;
    let coordinator = CoordinatorConfig {
        product: PRODUCT,
        order: ORDER,
        products: PRODUCTS,
        timeout,
        crash_at_rename: (crash_at > 0).then_some(crash_at),
        restart_after: Micros::from_secs_f64(knobs.get(RESTART_AFTER.name)),
        waiting_capacity: WAITING_CAPACITY,
        protocol: protocol(knobs),
    };
    let order = OrderConfig {
        source: ProductSource::LocalCopy,
        apply_only_newer: true,
        publish_orders: None,
        refuse_updates_per_million: per_million(knobs.get(ORDER_FAILURE.name)),
    };
    let product = ProductConfig::coordinated(per_million(knobs.get(PRODUCT_FAILURE.name)));
    let mut order_initial = order_rows(knobs.get(PRODUCTS_PER_ORDER.name) as u64, rng);
    order_initial.extend(product_rows(PRODUCT_NAMES_COPY_TABLE));
    let log_initial = (1..=PRODUCTS)
        .map(|id| {
            let entry = LogEntry::initial(&initial_product_name(id));
            let row = Row {
                value: entry.to_value(),
                version: 1,
            };
            (RENAME_LOG_TABLE.to_string(), id.to_string(), row)
        })
        .collect();
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
                COORDINATOR,
                "Coordinator",
                ServiceRole::Coordinator,
                coordinator,
                Coordinator::new,
                log_initial,
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
        links: vec![
            (CLIENT, COORDINATOR),
            (CLIENT, ORDER),
            (COORDINATOR, PRODUCT),
            (COORDINATOR, ORDER),
        ],
        copies: vec![CopyDecl {
            copy_service: ORDER,
            copy_table: PRODUCT_NAMES_COPY_TABLE.to_string(),
            source_service: PRODUCT,
            source_table: PRODUCTS_TABLE.to_string(),
        }],
        network,
        faults: outage(knobs, PRODUCT, &PRODUCT_DOWN_AT, &PRODUCT_DOWN_FOR),
        intro: match protocol(knobs) {
            Protocol::Saga => SAGA_INTRO,
            Protocol::TwoPhaseCommit => TWO_PHASE_INTRO,
        }
        .to_string(),
    }
}

const SAGA_INTRO: &str = "Renames go to the Coordinator. It sends each one to Product and to Order at once and answers \
                only when both have applied it; if either refuses, is down or is too slow, it rolls both back \
                and the rename fails. Reads come from Order's copy, which is never behind a confirmed rename — \
                but Order applies a rename before the coordinator decides, so a read in between can return a \
                name that is rolled back a moment later: an aborted read.";

const TWO_PHASE_INTRO: &str = "Renames go to the Coordinator, which runs two-phase commit. First both Product and \
                Order prepare the rename: each holds the new name in its table of prepared names, keeps \
                serving the committed one, and locks the row against other renames. When both vote yes, the \
                coordinator logs its decision, then tells both to commit; if either votes no, is down or is \
                too slow, it logs an abort and tells both. Readers never see an undecided name — but each \
                rename takes a round trip more, and a coordinator that crashes after deciding leaves both \
                rows in doubt, locked, until it restarts and sends its decision again.";
