//! The services of the article, each a sans-IO state machine (see [`crate::service`]).

mod broker;
mod client;
mod names;
mod order;
mod product;

pub use broker::{Broker, BrokerConfig, Subscription};
pub use client::{Client, ClientConfig, Operation, READ_ORDER_OP, RENAME_PRODUCT_OP, RequestKind};
pub use names::{initial_product_name, renamed_product_name};
pub use order::{Order, OrderConfig, ProductSource};
pub use product::{Product, ProductConfig};

/// Order's table of orders: key order id, value the comma-separated product ids.
pub const ORDERS_TABLE: &str = "orders";
/// Product's table of products: key product id, value its name.
pub const PRODUCTS_TABLE: &str = "products";
/// Order's local copy of product names: key product id, value the name.
pub const PRODUCT_NAMES_COPY_TABLE: &str = "product_names";
/// Order's lines, each with the product name stored when the order was placed: key
/// `order/product`, value the name.
pub const ORDER_LINES_TABLE: &str = "order_lines";
