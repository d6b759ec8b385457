//! Inventory: keeps stock per product in its own `stock` table, and takes one unit of each
//! ordered product when it hears of a new order. It runs as a [`super::Consumer`].

use super::{RESERVATIONS_TABLE, STOCK_TABLE};
use crate::protocol::NewOrder;
use crate::service::Ctx;

/// Takes one unit of each of `order`'s products from stock (below zero means backordered) and
/// records the reservation; returns how many times this order has now been reserved.
pub(super) fn reserve_stock(order: &NewOrder, ctx: &mut Ctx<'_>) -> u64 {
    for product in &order.products {
        let key = product.to_string();
        let (units, version) = ctx.read(STOCK_TABLE, &key).map_or((0, 0), |row| {
            (row.value.parse::<i64>().unwrap_or(0), row.version)
        });
        ctx.write(STOCK_TABLE, &key, &(units - 1).to_string(), version + 1);
    }
    let key = order.order.to_string();
    let times = ctx
        .read(RESERVATIONS_TABLE, &key)
        .map_or(0, |row| row.version)
        + 1;
    let products: Vec<String> = order.products.iter().map(u64::to_string).collect();
    let value = format!("{}{}", products.join(","), super::times_suffix(times));
    ctx.write(RESERVATIONS_TABLE, &key, &value, times);
    times
}
