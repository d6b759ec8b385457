//! The numbers that carry each lesson, accumulated as the trace is folded (see [`crate::fold`]),
//! and the summary of a whole run.

use crate::fold::WorldState;
use crate::protocol::{DropReason, Event, OpId, OpSummary, RunSummary, Trace};
use crate::time::Micros;
use std::collections::BTreeMap;

/// Counts and latencies of one kind of operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpStats {
    /// Succeeded.
    pub ok: u64,
    /// Failed.
    pub failed: u64,
    /// Latencies of the successful ones, kept sorted.
    latencies_sorted: Vec<Micros>,
}

impl OpStats {
    /// The `percent`th-percentile latency of successful operations (nearest rank), or zero.
    pub fn percentile(&self, percent: u32) -> Micros {
        let n = self.latencies_sorted.len();
        if n == 0 {
            return Micros::ZERO;
        }
        let rank = (percent as usize * n).div_ceil(100).clamp(1, n);
        self.latencies_sorted[rank - 1]
    }

    fn record(&mut self, ok: bool, latency: Micros) {
        if ok {
            self.ok += 1;
            let at = self.latencies_sorted.partition_point(|l| *l <= latency);
            self.latencies_sorted.insert(at, latency);
        } else {
            self.failed += 1;
        }
    }
}

/// How long copies lag behind their sources.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Staleness {
    /// Since when each stale copy row (by copy index and key) has been stale.
    open: BTreeMap<(usize, String), Micros>,
    closed_max: Micros,
    closed_total: Micros,
    closed_count: u64,
}

impl Staleness {
    /// Records whether a copy row is stale at `now`, opening or closing its window.
    pub fn observe(&mut self, row: (usize, String), stale: bool, now: Micros) {
        match (stale, self.open.get(&row).copied()) {
            (true, None) => {
                self.open.insert(row, now);
            }
            (false, Some(since)) => {
                self.open.remove(&row);
                let window = now - since;
                self.closed_max = self.closed_max.max(window);
                self.closed_total = self.closed_total + window;
                self.closed_count += 1;
            }
            _ => {}
        }
    }

    /// How many copy rows are stale now.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The age of the oldest open window at `now`: the current staleness.
    pub fn open_max(&self, now: Micros) -> Micros {
        self.open
            .values()
            .map(|since| now - *since)
            .max()
            .unwrap_or(Micros::ZERO)
    }

    /// The longest closed window.
    pub fn max(&self) -> Micros {
        self.closed_max
    }

    /// The mean closed window, or zero.
    pub fn mean(&self) -> Micros {
        Micros(
            self.closed_total
                .0
                .checked_div(self.closed_count)
                .unwrap_or(0),
        )
    }
}

/// Everything counted so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Per operation name.
    pub ops: BTreeMap<String, OpStats>,
    /// Successful reads that returned an older version than the source held.
    pub stale_reads: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Second copies of messages made by the network.
    pub messages_duplicated: u64,
    /// Messages dropped, by reason.
    pub dropped_by_reason: BTreeMap<DropReason, u64>,
    /// Staleness of copies.
    pub staleness: Staleness,
    running_ops: BTreeMap<OpId, String>,
}

impl Metrics {
    pub(crate) fn op_started(&mut self, op: OpId, name: &str) {
        self.running_ops.insert(op, name.to_string());
    }

    pub(crate) fn op_finished(&mut self, op: OpId, ok: bool, latency: Micros, stale: bool) {
        let Some(name) = self.running_ops.remove(&op) else {
            return;
        };
        self.ops.entry(name).or_default().record(ok, latency);
        if stale {
            self.stale_reads += 1;
        }
    }

    /// Operations still running.
    pub fn ops_running(&self) -> usize {
        self.running_ops.len()
    }

    /// Messages dropped for any reason.
    pub fn messages_dropped(&self) -> u64 {
        self.dropped_by_reason.values().sum()
    }

    /// The stats of operation `name`, or empty ones.
    pub fn op(&self, name: &str) -> OpStats {
        self.ops.get(name).cloned().unwrap_or_default()
    }
}

/// Folds a whole trace and sums it up.
pub fn summarize(trace: &Trace) -> RunSummary {
    let mut state = WorldState::new(&trace.header);
    let mut in_flight_at_end = 0;
    for event in &trace.events {
        state.apply(event);
        if let Event::RunEnded {
            messages_in_flight, ..
        } = event.event
        {
            in_flight_at_end = messages_in_flight;
        }
    }
    let metrics = &state.metrics;
    let by_operation: BTreeMap<String, OpSummary> = metrics
        .ops
        .iter()
        .map(|(name, stats)| {
            let summary = OpSummary {
                ok: stats.ok,
                failed: stats.failed,
                p50_us: stats.percentile(50).0,
                p99_us: stats.percentile(99).0,
            };
            (name.clone(), summary)
        })
        .collect();
    RunSummary {
        scenario: trace.header.scenario.clone(),
        seed: trace.header.seed,
        until_s: trace.header.until.as_secs_f64(),
        events: trace.events.len() as u64,
        trace_hash: trace.hash_hex(),
        ops_ok: by_operation.values().map(|s| s.ok).sum(),
        ops_failed: by_operation.values().map(|s| s.failed).sum(),
        by_operation,
        stale_reads: metrics.stale_reads,
        staleness_max_us: metrics
            .staleness
            .max()
            .max(metrics.staleness.open_max(state.now))
            .0,
        messages_sent: metrics.messages_sent,
        messages_dropped: metrics.messages_dropped(),
        messages_in_flight_at_end: in_flight_at_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank_over_successes() {
        let check = |latencies: &[u64], percent: u32, expected: u64| {
            let mut stats = OpStats::default();
            for l in latencies {
                stats.record(true, Micros(*l));
            }
            stats.record(false, Micros(1_000_000));
            assert_eq!(
                stats.percentile(percent),
                Micros(expected),
                "p{percent} of {latencies:?}"
            );
        };
        check(&[], 50, 0);
        check(&[5], 99, 5);
        check(&[30, 10, 20], 50, 20);
        check(&(1..=100).collect::<Vec<_>>(), 99, 99);
        check(&(1..=100).collect::<Vec<_>>(), 50, 50);
    }
}
