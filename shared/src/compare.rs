//! The article's trade-off section as a measured table: the same workload — reads of orders
//! with their product names, plus renames — under each pattern, once healthy and once with the
//! owner of the names down for a while.

use crate::float_text::{fixed, shortest};
use crate::protocol::{Comparison, ComparisonRow, KnobMap, RunRequest, RunSummary};
use crate::scenario::{catalog, find};
use crate::services::{READ_ORDER_OP, RENAME_PRODUCT_OP};

/// A pattern of the table: its scenario, which service owns the data, and its operations.
struct Pattern {
    scenario: &'static str,
    source_of_truth: &'static str,
    read_op: &'static str,
    write_op: &'static str,
    /// Knobs of the scenario that make this pattern (on top of [`WORKLOAD`]).
    knobs: &'static [(&'static str, f64)],
    /// Its title, when it is not the scenario's.
    title: Option<&'static str>,
}

/// The rows of the table, in the article's order; scenarios not in the catalog are skipped.
const PATTERNS: &[Pattern] = &[
    Pattern {
        scenario: "request-response",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[],
        title: None,
    },
    // Request/response again with Product at capacity: two workers of 180 ms each handle about
    // 11 calls a second, the workload offers 13, so calls queue (10 at most), then are shed.
    Pattern {
        scenario: "request-response",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[("product_workers", 2.0), ("product_service_ms", 180.0)],
        title: Some("Request/response (Product at capacity)"),
    },
    // Request/response again with resilience on Order's calls: retries (three per call), retries
    // under a 10 % retry budget, and a circuit breaker with its fallback. They differ in the
    // outage run; `markdown` prints their own table of it.
    Pattern {
        scenario: "request-response",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[("retries", 3.0)],
        title: Some("Request/response + retries"),
    },
    Pattern {
        scenario: "request-response",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[("retries", 3.0), ("retry_budget_pct", 10.0)],
        title: Some("Request/response + retries + budget"),
    },
    Pattern {
        scenario: "request-response",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[("breaker", 1.0)],
        title: Some("Request/response + breaker"),
    },
    Pattern {
        scenario: "duplication",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[],
        title: None,
    },
    Pattern {
        scenario: "gateway",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[],
        title: None,
    },
    // The gateway again under two-phase commit: no name a reader sees is ever rolled back, for a
    // round trip more per rename.
    Pattern {
        scenario: "gateway",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[("protocol", 1.0)],
        title: Some("Gateway (2PC)"),
    },
    Pattern {
        scenario: "eventual-consistency",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[],
        title: None,
    },
    // Eventual consistency again, its events leaving through a transactional outbox: beside the
    // plain row, so the two read side by side.
    Pattern {
        scenario: "eventual-consistency",
        source_of_truth: "Product",
        read_op: READ_ORDER_OP,
        write_op: RENAME_PRODUCT_OP,
        knobs: &[("publish", 1.0)],
        title: Some("Eventual consistency (outbox)"),
    },
    Pattern {
        scenario: "hybrid",
        source_of_truth: "Driver",
        read_op: "read ride",
        write_op: "rename driver",
        knobs: &[],
        title: None,
    },
];

/// The patterns whose scenarios are in the catalog, in the table's order.
fn patterns() -> impl Iterator<Item = (&'static Pattern, &'static crate::scenario::ScenarioSpec)> {
    PATTERNS
        .iter()
        .filter_map(|pattern| Some((pattern, find(pattern.scenario).ok()?)))
}

/// The shared workload: every knob a scenario has of these takes this value.
const WORKLOAD: &[(&str, f64)] = &[
    ("read_rate_per_s", 4.0),
    ("rename_rate_per_s", 1.0),
    ("products_per_order", 3.0),
    ("link_latency_ms", 40.0),
    // The shared workload changes names only; the hybrid's rating changes stay out of it.
    ("rating_change_rate_per_s", 0.0),
    // Outages come only from the comparison's own fault, and nothing is slow.
    ("product_down_for_s", 0.0),
    ("order_down_for_s", 0.0),
    ("driver_down_for_s", 0.0),
    ("coordinator_down_for_s", 0.0),
    ("product_slow_factor", 1.0),
    // The connection pool is not what this table compares.
    ("pool_size", 64.0),
    // Nor are the gateway's injected refusals and coordinator crash: its rollbacks and partial
    // updates have their own lesson.
    ("product_failure_pct", 0.0),
    ("order_failure_pct", 0.0),
    ("coordinator_crash_at_rename", 0.0),
];

/// How long each run lasts, in seconds.
pub const RUN_S: f64 = 30.0;
/// The outage run: the owner of the names is down from 10 s for 10 s.
pub const OUTAGE_AT_S: u64 = 10;
/// See [`OUTAGE_AT_S`].
pub const OUTAGE_FOR_S: u64 = 10;

/// The runs of the comparison, in order: for each pattern, healthy then with the outage.
pub fn requests(seed: u64) -> Vec<RunRequest> {
    patterns()
        .flat_map(|(pattern, spec)| {
            let knobs: KnobMap = WORKLOAD
                .iter()
                .chain(pattern.knobs)
                .filter(|(name, _)| spec.knobs.iter().any(|knob| knob.name == *name))
                .map(|(name, value)| (name.to_string(), *value))
                .collect();
            let healthy = RunRequest {
                scenario: pattern.scenario.to_string(),
                seed,
                until_s: RUN_S,
                knobs,
                faults: Vec::new(),
            };
            let outage = RunRequest {
                faults: vec![format!(
                    "crash:{}@{OUTAGE_AT_S}+{OUTAGE_FOR_S}",
                    pattern.source_of_truth
                )],
                ..healthy.clone()
            };
            [healthy, outage]
        })
        .collect()
}

/// Builds the table from the summaries of [`requests`], in the same order.
pub fn table(seed: u64, summaries: Vec<RunSummary>) -> Comparison {
    let mut rows = Vec::new();
    let mut runs = summaries.into_iter();
    // The summaries come in the order of `requests`: two per pattern.
    for (pattern, _) in patterns() {
        let (Some(healthy), Some(outage)) = (runs.next(), runs.next()) else {
            break;
        };
        rows.push(row(pattern, healthy, outage));
    }
    let workload = WORKLOAD[..4]
        .iter()
        .map(|(name, value)| format!("{name}={}", shortest(*value)))
        .collect::<Vec<_>>()
        .join(", ");
    Comparison {
        workload: format!(
            "seed {seed}, {} s, {workload}; outage: the owner of the names is down from \
             {OUTAGE_AT_S} s for {OUTAGE_FOR_S} s",
            shortest(RUN_S)
        ),
        rows,
    }
}

fn row(pattern: &Pattern, healthy: RunSummary, outage: RunSummary) -> ComparisonRow {
    let op = |summary: &RunSummary, name: &str| {
        summary.by_operation.get(name).cloned().unwrap_or_default()
    };
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            100.0 * part as f64 / whole as f64
        }
    };
    let (read, write) = (
        op(&healthy, pattern.read_op),
        op(&healthy, pattern.write_op),
    );
    let (read_out, write_out) = (op(&outage, pattern.read_op), op(&outage, pattern.write_op));
    // Whether the operation's path touched the source of truth or not: what the table asks is
    // how the pattern fares while the owner of the names is down.
    let availability = |stats: &crate::protocol::OpSummary| {
        let counts = stats
            .began_while_down
            .get(pattern.source_of_truth)
            .copied()
            .unwrap_or_default();
        percent(counts.ok, counts.ok + counts.failed)
    };
    let title = pattern.title.unwrap_or_else(|| {
        catalog()
            .iter()
            .find(|spec| spec.name == pattern.scenario)
            .map_or(pattern.scenario, |spec| spec.title)
    });
    ComparisonRow {
        scenario: pattern.scenario.to_string(),
        title: title.to_string(),
        source_of_truth: pattern.source_of_truth.to_string(),
        knobs: pattern
            .knobs
            .iter()
            .map(|(name, value)| (name.to_string(), *value))
            .collect(),
        read_p50_us: read.p50_us,
        read_p99_us: read.p99_us,
        write_p50_us: write.p50_us,
        throughput_per_s: read.throughput_per_s + write.throughput_per_s,
        stale_reads: healthy.stale_reads,
        stale_read_pct: percent(healthy.stale_reads, read.ok),
        read_availability_pct: availability(&read_out),
        write_availability_pct: availability(&write_out),
        messages_per_op: healthy.messages_per_op,
        duplicated_bytes: healthy.duplicated_bytes,
        healthy,
        outage,
    }
}

/// The table in Markdown, one row per pattern.
pub fn markdown(comparison: &Comparison) -> String {
    let mut text = format!(
        "Workload: {}.\n\n\
         | pattern | read p50 | read p99 | write p50 | ops/s | stale reads | served lag max | aborted reads | copy regressions | reads ok during outage | writes ok during outage | messages/op | duplicated bytes |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        comparison.workload
    );
    let ms = |us: u64| format!("{} ms", fixed(us as f64 / 1_000.0, 0));
    for row in &comparison.rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} ({} %) | {} | {} | {} | {} % | {} % | {} | {} |\n",
            row.title,
            ms(row.read_p50_us),
            ms(row.read_p99_us),
            ms(row.write_p50_us),
            fixed(row.throughput_per_s, 1),
            row.stale_reads,
            fixed(row.stale_read_pct, 0),
            ms(row.healthy.served_lag_max_us),
            row.healthy.coordination.aborted_reads,
            row.healthy.copy_regressions,
            fixed(row.read_availability_pct, 0),
            fixed(row.write_availability_pct, 0),
            fixed(row.messages_per_op, 1),
            row.duplicated_bytes,
        ));
    }
    text.push_str(&resilience_markdown(comparison));
    text
}

/// The request/response rows' outage run, where resilience shows: what a read cost and what
/// Product was asked (docs/METRICS.md, "Resilience").
fn resilience_markdown(comparison: &Comparison) -> String {
    let rows: Vec<&ComparisonRow> = comparison
        .rows
        .iter()
        .filter(|row| {
            row.scenario == "request-response" && !row.knobs.contains_key("product_workers")
        })
        .collect();
    if rows.len() < 2 {
        return String::new();
    }
    let mut text = String::from(
        "\nRequest/response while Product is down (the outage run):\n\n\
         | pattern | read p50 | read p99 | failed reads | degraded reads | calls/read | calls Product received | breaker opened |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let ms = |us: u64| format!("{} ms", fixed(us as f64 / 1_000.0, 0));
    for row in rows {
        let outage = &row.outage;
        let read = outage
            .by_operation
            .get(READ_ORDER_OP)
            .cloned()
            .unwrap_or_default();
        let calls_per_read = outage
            .calls_by_operation
            .get(READ_ORDER_OP)
            .map_or(0.0, |calls| calls.calls_per_op);
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.title,
            ms(read.p50_us),
            ms(read.p99_us),
            read.failed,
            outage.resilience.degraded_reads,
            fixed(calls_per_read, 2),
            outage.resilience.calls_received,
            outage.resilience.breaker_opened,
        ));
    }
    text
}
