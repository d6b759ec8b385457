//! The heaviest runs: each scenario for the longest run at the knobs that make it record the
//! most. The event budget (`shared/tests/budget.rs`) and the page's memory per event
//! (`frontend/tests/index_memory.rs`) are measured on them.

use super::MAX_UNTIL_S;
use crate::protocol::RunRequest;

/// The rates the page offered at most when the budget was set (issue 9): reads and orders 50 a
/// second, renames and rating changes 20 a second. Later the rate knobs were raised to 5,000/s
/// for the live benchmark; a simulated run that fast ends at the budget (see ARCHITECTURE.md).
pub const READS_PER_S: f64 = 50.0;
pub const RENAMES_PER_S: f64 = 20.0;

/// Each scenario at the knobs that make it record the most: every rate at its highest, the most
/// products per order, the fastest links, no outage (the gateway under each protocol; the
/// scenarios that publish, with a dual write and through an outbox).
pub fn heaviest_runs() -> Vec<RunRequest> {
    let (r, n) = (READS_PER_S, RENAMES_PER_S);
    let runs: Vec<(&str, Vec<(&str, f64)>)> = vec![
        (
            "request-response",
            vec![
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("pool_size", 64.0),
                ("link_latency_ms", 1.0),
                ("product_slow_for_s", 0.0),
                ("product_down_for_s", 0.0),
            ],
        ),
        // With a capacity in front of Order and Product each request records its load twice,
        // when it starts and when it is done (and once when it waits).
        (
            "request-response",
            vec![
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("pool_size", 64.0),
                ("link_latency_ms", 1.0),
                ("product_slow_for_s", 0.0),
                ("product_down_for_s", 0.0),
                ("product_workers", 4.0),
                ("product_service_ms", 1.0),
                ("order_workers", 4.0),
                ("order_service_ms", 1.0),
            ],
        ),
        (
            "duplication",
            vec![
                ("update_both", 1.0),
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("product_down_for_s", 0.0),
                ("order_down_for_s", 0.0),
            ],
        ),
        (
            "eventual-consistency",
            vec![
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("broker_delay_ms", 0.0),
                ("order_down_for_s", 0.0),
                ("product_down_for_s", 0.0),
            ],
        ),
        (
            "event-driven",
            vec![
                ("order_rate_per_s", r),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("redelivery", 1.0),
                ("idempotent", 1.0),
                ("durable", 1.0),
                ("inventory_work_ms", 0.0),
                ("shipping_work_ms", 0.0),
                ("shipping_down_for_s", 0.0),
            ],
        ),
        (
            "eventual-consistency",
            vec![
                ("publish", 1.0),
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("broker_delay_ms", 0.0),
                ("order_down_for_s", 0.0),
                ("product_down_for_s", 0.0),
            ],
        ),
        (
            "event-driven",
            vec![
                ("publish", 1.0),
                ("order_rate_per_s", r),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("redelivery", 1.0),
                ("idempotent", 1.0),
                ("durable", 1.0),
                ("inventory_work_ms", 0.0),
                ("shipping_work_ms", 0.0),
                ("shipping_down_for_s", 0.0),
            ],
        ),
        (
            "gateway",
            vec![
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("product_down_for_s", 0.0),
            ],
        ),
        (
            "gateway",
            vec![
                ("protocol", 1.0),
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("product_down_for_s", 0.0),
            ],
        ),
        (
            "hybrid",
            vec![
                ("read_rate_per_s", r),
                ("rename_rate_per_s", n),
                ("rating_change_rate_per_s", n),
                ("cache_ttl_ms", 0.0),
                ("link_latency_ms", 1.0),
                ("broker_delay_ms", 0.0),
                ("driver_down_for_s", 0.0),
            ],
        ),
    ];
    runs.into_iter()
        .map(|(scenario, knobs)| RunRequest {
            scenario: scenario.into(),
            seed: 1,
            until_s: MAX_UNTIL_S,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: Vec::new(),
        })
        .collect()
}

/// A short name for heaviest run `request`: its scenario and the knobs that tell the runs of
/// one scenario apart (`protocol`, `publish`, `product_workers`).
pub fn heaviest_run_label(request: &RunRequest) -> String {
    let variant: String = request
        .knobs
        .iter()
        .filter(|(name, _)| ["protocol", "publish", "product_workers"].contains(&name.as_str()))
        .map(|(name, value)| format!(" {name}={value}"))
        .collect();
    format!("{}{variant}", request.scenario)
}
