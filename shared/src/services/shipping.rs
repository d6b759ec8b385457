//! Shipping: starts a shipment for each new order, in its own `shipments` table. It runs as a
//! [`super::Consumer`].

use super::SHIPMENTS_TABLE;
use crate::protocol::NewOrder;
use crate::service::Ctx;

/// Starts a shipment of `order`; returns how many shipments the order now has. More than one
/// means a parcel went out twice.
pub(super) fn start_shipment(order: &NewOrder, ctx: &mut Ctx<'_>) -> u64 {
    let key = order.order.to_string();
    let times = ctx.read(SHIPMENTS_TABLE, &key).map_or(0, |row| row.version) + 1;
    let value = format!("shipped{}", super::times_suffix(times));
    ctx.write(SHIPMENTS_TABLE, &key, &value, times);
    times
}
