//! The heaviest runs: each scenario for the longest run at the knobs that make it record the
//! most. The event budget (`shared/tests/budget.rs`) and the page's memory per event
//! (`frontend/tests/index_memory.rs`) are measured on them.

use super::{KnobSpec, MAX_UNTIL_S, find};
use crate::protocol::RunRequest;

/// `knobs`, with every rate knob of `scenario` at its highest in a simulated run.
fn at_highest_rates(
    scenario: &'static str,
    knobs: Vec<(&'static str, f64)>,
) -> (&'static str, Vec<(&'static str, f64)>) {
    let rates = find(scenario)
        .unwrap()
        .knobs
        .iter()
        .filter(|knob| knob.is_rate())
        .map(|knob: &KnobSpec| (knob.name, knob.max));
    let knobs = knobs.into_iter().chain(rates).collect();
    (scenario, knobs)
}

/// Each scenario for 600 s (seed 1) at the knobs that make it record the most: every rate at its highest, the most
/// products per order, the fastest links, no outage (the gateway under each protocol; the
/// scenarios that publish, with a dual write and through an outbox).
pub fn heaviest_runs() -> Vec<RunRequest> {
    let request_response = [
        ("products_per_order", 8.0),
        ("pool_size", 64.0),
        ("link_latency_ms", 1.0),
        ("product_slow_for_s", 0.0),
        ("product_down_for_s", 0.0),
    ];
    // With a capacity in front of Order and Product each request records its load twice, when
    // it starts and when it is done (and once when it waits).
    let capacity = [
        ("product_workers", 4.0),
        ("product_service_ms", 1.0),
        ("order_workers", 4.0),
        ("order_service_ms", 1.0),
    ];
    let eventual_consistency = [
        ("products_per_order", 8.0),
        ("link_latency_ms", 1.0),
        ("broker_delay_ms", 0.0),
        ("order_down_for_s", 0.0),
        ("product_down_for_s", 0.0),
    ];
    let event_driven = [
        ("products_per_order", 8.0),
        ("link_latency_ms", 1.0),
        ("redelivery", 1.0),
        ("idempotent", 1.0),
        ("durable", 1.0),
        ("inventory_work_ms", 0.0),
        ("shipping_work_ms", 0.0),
        ("shipping_down_for_s", 0.0),
    ];
    let gateway = [
        ("products_per_order", 8.0),
        ("link_latency_ms", 1.0),
        ("product_down_for_s", 0.0),
    ];
    let outbox = [("publish", 1.0)];
    let two_phase_commit = [("protocol", 1.0)];
    [
        ("request-response", request_response.to_vec()),
        (
            "request-response",
            [&request_response[..], &capacity].concat(),
        ),
        (
            "duplication",
            vec![
                ("update_both", 1.0),
                ("products_per_order", 8.0),
                ("link_latency_ms", 1.0),
                ("product_down_for_s", 0.0),
                ("order_down_for_s", 0.0),
            ],
        ),
        ("eventual-consistency", eventual_consistency.to_vec()),
        ("event-driven", event_driven.to_vec()),
        (
            "eventual-consistency",
            [&outbox[..], &eventual_consistency].concat(),
        ),
        ("event-driven", [&outbox[..], &event_driven].concat()),
        ("gateway", gateway.to_vec()),
        ("gateway", [&two_phase_commit[..], &gateway].concat()),
        (
            "hybrid",
            vec![
                ("cache_ttl_ms", 0.0),
                ("link_latency_ms", 1.0),
                ("broker_delay_ms", 0.0),
                ("driver_down_for_s", 0.0),
            ],
        ),
    ]
    .into_iter()
    .map(|(scenario, knobs)| {
        let (scenario, knobs) = at_highest_rates(scenario, knobs);
        RunRequest {
            scenario: scenario.into(),
            seed: 1,
            until_s: MAX_UNTIL_S,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: Vec::new(),
        }
    })
    .collect()
}

/// A short name for heaviest run `request`: its scenario and the knobs that tell the runs of
/// one scenario apart (`protocol`, `publish`, `product_workers`) or set its load (the rates).
pub fn heaviest_run_label(request: &RunRequest) -> String {
    let variant: String = request
        .knobs
        .iter()
        .filter(|(name, _)| {
            ["protocol", "publish", "product_workers"].contains(&name.as_str())
                || name.ends_with("_per_s")
        })
        .map(|(name, value)| format!(" {name}={}", crate::float_text::shortest(*value)))
        .collect();
    format!("{}{variant}", request.scenario)
}
