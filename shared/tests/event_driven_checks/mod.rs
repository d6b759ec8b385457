//! Checks of the event-driven scenario, shared by its lesson test and the seed sweep.

use shared::fold::WorldState;
use shared::protocol::{ServiceId, Trace};
use shared::scenario::INITIAL_STOCK;
use shared::services::{ORDERS_TABLE, RESERVATIONS_TABLE, SHIPMENTS_TABLE, STOCK_TABLE};
use shared::time::Micros;

/// The whole trace folded.
pub fn fold(trace: &Trace) -> WorldState {
    let mut state = WorldState::new(&trace.header);
    for event in &trace.events {
        state.apply(event);
    }
    state
}

/// The id of the service named `name`.
pub fn service(trace: &Trace, name: &str) -> ServiceId {
    trace
        .header
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
        .id
}

/// Every order Order stored more than `settle` before the end reached Inventory and Shipping.
pub fn check_no_order_lost(
    trace: &Trace,
    state: &WorldState,
    settle: Micros,
) -> Result<(), String> {
    let settled = state.now - settle;
    let (order, inventory, shipping) = (
        service(trace, "Order"),
        service(trace, "Inventory"),
        service(trace, "Shipping"),
    );
    let orders = state.tables[order.0 as usize].get(ORDERS_TABLE);
    for (key, row) in orders.into_iter().flatten() {
        if row.written_at > settled {
            continue;
        }
        if state.row(inventory, RESERVATIONS_TABLE, key).is_none() {
            return Err(format!(
                "order {key} (created at {}) never reached Inventory",
                row.written_at
            ));
        }
        if state.row(shipping, SHIPMENTS_TABLE, key).is_none() {
            return Err(format!(
                "order {key} (created at {}) never reached Shipping",
                row.written_at
            ));
        }
    }
    Ok(())
}

/// The consumers' tables agree with what they reported applying: each order's reservation and
/// shipment count their applications, and each product's stock is what it started with less one
/// unit per application of an order holding it.
pub fn check_tables_match_applications(trace: &Trace, state: &WorldState) -> Result<(), String> {
    let (order, inventory, shipping) = (
        service(trace, "Order"),
        service(trace, "Inventory"),
        service(trace, "Shipping"),
    );
    let delivery = &state.metrics.delivery;
    let mut taken: std::collections::BTreeMap<String, i64> = Default::default();
    let orders = state.tables[order.0 as usize].get(ORDERS_TABLE);
    for (key, row) in orders.into_iter().flatten() {
        let event_id = format!("OrderCreated#{key}");
        for (consumer, table) in [(inventory, RESERVATIONS_TABLE), (shipping, SHIPMENTS_TABLE)] {
            let applied = delivery.times_applied(consumer, &event_id) as u64;
            let recorded = state.row(consumer, table, key).map_or(0, |r| r.version);
            if applied != recorded {
                return Err(format!(
                    "{table}[{key}] counts {recorded} application(s) but the trace reports {applied}"
                ));
            }
        }
        let applied = i64::from(delivery.times_applied(inventory, &event_id));
        for product in row.value.split(',') {
            *taken.entry(product.to_string()).or_default() += applied;
        }
    }
    let stock = state.tables[inventory.0 as usize].get(STOCK_TABLE);
    for (product, row) in stock.into_iter().flatten() {
        let expected = INITIAL_STOCK - taken.get(product).copied().unwrap_or(0);
        if row.value != expected.to_string() {
            return Err(format!(
                "stock[{product}] is {} but should be {expected}",
                row.value
            ));
        }
    }
    Ok(())
}

/// No consumer applied any event twice.
pub fn check_exactly_once(trace: &Trace, state: &WorldState) -> Result<(), String> {
    for (name, table) in [
        ("Inventory", RESERVATIONS_TABLE),
        ("Shipping", SHIPMENTS_TABLE),
    ] {
        let consumer = service(trace, name);
        let rows = state.tables[consumer.0 as usize].get(table);
        if let Some((key, row)) = rows.into_iter().flatten().find(|(_, row)| row.version > 1) {
            return Err(format!("{name} applied order {key} {} times", row.version));
        }
    }
    let duplicates = state.metrics.delivery.duplicates_applied();
    if duplicates > 0 {
        return Err(format!("{duplicates} duplicate(s) applied"));
    }
    Ok(())
}
