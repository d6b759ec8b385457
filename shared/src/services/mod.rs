//! The services of the article, each a sans-IO state machine (see [`crate::service`]).

mod broker;
mod capacity;
mod client;
mod consumer;
mod coordinator;
mod driver;
mod fleet;
mod inventory;
mod names;
mod new_orders;
mod order;
mod outbox;
mod product;
mod rename_participant;
mod resilience;
mod ride;
mod shipping;

pub use broker::{Broker, BrokerConfig, Redelivery, Subscription};
pub use capacity::{Capacity, CapacityConfig, OVERLOADED_LABEL_PREFIX};
pub use client::{
    CREATE_ORDER_OP, Client, ClientConfig, Operation, RATE_DRIVER_OP, READ_ORDER_OP, READ_RIDE_OP,
    RENAME_DRIVER_OP, RENAME_PRODUCT_OP, RequestKind, is_read_op,
};
pub use consumer::{Consumer, ConsumerConfig, Duty, MAX_JOBS_IN_PROGRESS};
pub use coordinator::{
    Coordinator, CoordinatorConfig, LogEntry, LogState, Protocol, RENAME_LOG_TABLE,
};
pub use driver::{Driver, DriverConfig};
pub use fleet::{
    details_row_value, driver_car, initial_driver_name, initial_rating_tenths, new_rating_tenths,
    parse_details_row, renamed_driver_name,
};
pub use names::{initial_product_name, renamed_product_name};
pub use new_orders::{MAX_UNCONFIRMED_PUBLISHES, PublishOrders};
pub use order::{Order, OrderConfig, ProductSource};
pub use outbox::{
    CrashAfterWrite, MAX_OUTBOX_PENDING, OUTBOX_TABLE, Outbox, OutboxConfig, RELAY_BATCH_MAX,
    RELAY_EVERY,
};
pub use product::{DEADLINE_EXCEEDED_LABEL_PREFIX, Product, ProductConfig};
pub use rename_participant::{LOCKED_REFUSAL_LABEL_PREFIX, PREPARED_PREFIX};
pub use resilience::{
    Admission, BreakerConfig, CircuitBreaker, Resilience, RetryBudget, RetryBudgetConfig,
    backoff_before,
};
pub use ride::{Ride, RideConfig, ride_row_value};

/// Order's table of orders: key order id, value the comma-separated product ids.
pub const ORDERS_TABLE: &str = "orders";
/// Product's table of products: key product id, value its name.
pub const PRODUCTS_TABLE: &str = "products";
/// Order's local copy of product names: key product id, value the name.
pub const PRODUCT_NAMES_COPY_TABLE: &str = "product_names";
/// Under two-phase commit, the names a participant (Product or Order) holds prepared, beside
/// its committed table: key product id, value `prepared at T s: NAME` while in doubt (locked),
/// then `committed: NAME` or `aborted: NAME`; version the update's.
pub const PREPARED_NAMES_TABLE: &str = "prepared_names";
/// Order's lines, each with the product name stored when the order was placed: key
/// `order/product`, value the name.
pub const ORDER_LINES_TABLE: &str = "order_lines";
/// Inventory's units in stock: key product id, value the units left (below zero: backordered).
pub const STOCK_TABLE: &str = "stock";
/// Inventory's record of the stock it took for each order: key order id, value the products;
/// the version counts how many times it was taken.
pub const RESERVATIONS_TABLE: &str = "reservations";
/// Shipping's shipments: key order id; the version counts the shipments sent for the order.
pub const SHIPMENTS_TABLE: &str = "shipments";
/// An idempotent consumer's inbox: key the id of each event it has processed.
pub const INBOX_TABLE: &str = "processed_events";

/// ` ×N` after a value applied `times` times, nothing after one applied once.
fn times_suffix(times: u64) -> String {
    if times > 1 {
        format!(" ×{times}")
    } else {
        String::new()
    }
}
/// Ride's table of rides: key ride id, value `driver N`.
pub const RIDES_TABLE: &str = "rides";
/// Driver's table of drivers: key driver id, value their name.
pub const DRIVERS_TABLE: &str = "drivers";
/// Driver's table of ratings and cars: key driver id, value such as `4.8★ Toyota Prius`.
pub const DRIVER_DETAILS_TABLE: &str = "driver_details";
/// Ride's local copy of driver names: key driver id, value the name.
pub const DRIVER_NAMES_COPY_TABLE: &str = "driver_names";
