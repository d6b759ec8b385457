//! The numbers that carry each lesson, accumulated as the trace is folded (see [`crate::fold`]),
//! and the summary of a whole run.

mod aborted;
mod delivery;
mod in_doubt;
mod load;
mod outages;
mod resilience;
mod staleness;

pub use aborted::AbortedReads;
pub use delivery::{ConsumerStats, DeliveryStats};
pub use in_doubt::InDoubt;
pub use load::{LoadNow, Loads};
pub use outages::Unavailable;
pub use resilience::ResilienceStats;
pub use staleness::{CopyRow, Latest, ServedLag, SourceRow, Staleness};

use crate::call_metrics::CallMetrics;
use crate::fold::WorldState;
use crate::protocol::{
    CallSummary, CoordinationSummary, DropReason, Event, Observed, OpId, OpMap, OpSummary,
    OutcomeCounts, ResilienceSummary, RunSummary, ServiceId, Trace, TraceHeader,
};
use crate::services::is_read_op;
use crate::shared_log::SharedLog;
use crate::shared_map::SharedMap;
use crate::slot_map::{DenseMap, SlotMap, SlotSet};
use crate::time::Micros;

/// Counts and latencies of one kind of operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpStats {
    /// Succeeded.
    pub ok: u64,
    /// Failed.
    pub failed: u64,
    /// Messages sent on behalf of operations of this kind.
    pub messages: u64,
    /// Of those that began while a service or link on their path was unavailable: succeeded.
    pub ok_during_outage: u64,
    /// Of those that began while a service or link on their path was unavailable: failed.
    pub failed_during_outage: u64,
    /// Of those that began while a service was down, whether on their path or not: how they
    /// fared, by that service.
    pub began_while_down: DenseMap<ServiceId, OutcomeCounts>,
    /// Latencies of the successful ones, kept sorted.
    latencies_sorted: Vec<Micros>,
    /// Beside each latency, how many events of the trace had been applied once its operation
    /// finished: the latencies of a fold of the first n events are those at most n.
    latencies_events: Vec<u32>,
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

    /// Operations that ended, either way.
    pub fn finished(&self) -> u64 {
        self.ok + self.failed
    }

    fn record(
        &mut self,
        ok: bool,
        latency: Micros,
        during_outage: bool,
        services_down: &[ServiceId],
        events_applied: u32,
    ) {
        for service in services_down {
            let counts = self.began_while_down.entry(*service).or_default();
            if ok {
                counts.ok += 1;
            } else {
                counts.failed += 1;
            }
        }
        if ok {
            self.ok += 1;
            let at = self.latencies_sorted.partition_point(|l| *l <= latency);
            self.latencies_sorted.insert(at, latency);
            self.latencies_events.insert(at, events_applied);
        } else {
            self.failed += 1;
        }
        match (during_outage, ok) {
            (true, true) => self.ok_during_outage += 1,
            (true, false) => self.failed_during_outage += 1,
            (false, _) => {}
        }
    }
}

/// An operation that began and has not ended.
#[derive(Clone, Debug, PartialEq)]
struct RunningOp {
    name: String,
    started: Micros,
    /// What was unavailable when it began; `None` when nothing was.
    unavailable_at_start: Option<Box<Unavailable>>,
    /// Set once one of its messages took a hop that was unavailable when it began.
    during_outage: bool,
}

/// Everything counted so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Per operation name.
    pub ops: SlotMap<String, OpStats>,
    /// Successful operations that returned a version older than one already confirmed — by a
    /// write's answer or by another read — before they began.
    pub stale_reads: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Second copies of messages made by the network.
    pub messages_duplicated: u64,
    /// Messages dropped, by reason: indexed by `DropReason as usize` (an array, not a
    /// `BTreeMap`, whose tree code of its own would weigh on the page).
    pub dropped_by_reason: [u64; DropReason::COUNT],
    /// Replication lag of copies.
    pub staleness: Staleness,
    /// How far behind their sources the values that reads returned were.
    pub served_lag: ServedLag,
    /// Writes to a copy that replaced a newer version with an older one: events applied out
    /// of order.
    pub copy_regressions: u64,
    /// The deepest each queue has been, by broker, then queue.
    pub queue_depth_max: DenseMap<ServiceId, SlotMap<String, u32>>,
    /// Event delivery through brokers: duplicates and delivery lag per subscriber.
    pub delivery: DeliveryStats,
    running_ops: OpMap<RunningOp>,
    /// The name of every operation seen, as its place in `op_name_list`, so messages sent after
    /// it ended still count for it. A number, not a copy of the name: the page keeps snapshots
    /// of this state, and a run has a million operations at most but a handful of names.
    op_names: SharedMap<OpId, u32>,
    /// Each operation name once, in the order first seen.
    op_name_list: Vec<String>,
    /// Versions confirmed to clients, with when, in increasing order of both.
    confirmed: SharedMap<SourceRow, SharedLog<(Micros, u64)>>,
    /// What is unavailable now, from the trace's `service_down`/`service_up` and
    /// `fault_begins`/`fault_ends`.
    pub unavailable: Unavailable,
    /// Of [`Metrics::stale_reads`], how many were stale in each source table, such as
    /// `driver_details` for a rating served from an outdated cache entry. A read stale in two
    /// tables counts in both.
    pub stale_reads_by_table: SlotMap<String, u64>,
    /// Synchronous calls per operation: calls per read and a cache's hit ratio.
    pub calls: CallMetrics,
    /// Rollbacks and partial updates (the gateway pattern).
    pub coordination: Coordination,
    /// Degraded reads, calls received, deadlines and circuit breakers.
    pub resilience: ResilienceStats,
    /// Busy workers, waiting requests and requests shed by services with a capacity.
    pub loads: Loads,
}

/// What coordinating updates across services cost and left behind (the gateway pattern).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coordination {
    /// Rollback messages sent, retries included.
    pub rollbacks_sent: u64,
    /// Updates a coordinator found half done after a crash, by the key they touched, in the
    /// order found.
    pub partial_updates_flagged: Vec<String>,
    /// Reads that returned a version a coordinator rolled back.
    pub aborted_reads: AbortedReads,
    /// Two-phase commit's rows in doubt and prepares refused by a lock.
    pub in_doubt: InDoubt,
}

impl Metrics {
    /// These metrics without the latencies of operations, which are the bulk of what they
    /// hold and which a fold further along holds too: see [`Metrics::restore_latencies`].
    pub fn without_latencies(&self) -> Metrics {
        let mut stripped = self.clone();
        // `retain` keeping every entry: the one way the map hands out its values to change.
        stripped.ops.retain(|_, stats| {
            stats.latencies_sorted = Vec::new();
            stats.latencies_events = Vec::new();
            true
        });
        stripped
    }

    /// Puts back the latencies [`Metrics::without_latencies`] left out, taken from `ahead`, the
    /// metrics of a fold of the same trace at least `events_applied` events long: those of the
    /// operations that finished within the first `events_applied` events, still sorted.
    pub fn restore_latencies(&mut self, ahead: &Metrics, events_applied: usize) {
        self.ops.retain(|name, stats| {
            let Some(later) = ahead.ops.get(name) else {
                return true;
            };
            let (latencies, events): (Vec<Micros>, Vec<u32>) = later
                .latencies_sorted
                .iter()
                .zip(&later.latencies_events)
                .filter(|(_, n)| **n as usize <= events_applied)
                .map(|(latency, n)| (*latency, *n))
                .unzip();
            stats.latencies_sorted = latencies;
            stats.latencies_events = events;
            true
        });
    }

    /// Nothing counted yet, for a run with `header`.
    pub fn new(_header: &TraceHeader) -> Metrics {
        Metrics::default()
    }

    pub(crate) fn op_started(&mut self, op: OpId, name: &str, now: Micros) {
        let running = RunningOp {
            name: name.to_string(),
            started: now,
            unavailable_at_start: (!self.unavailable.is_empty())
                .then(|| Box::new(self.unavailable.clone())),
            during_outage: false,
        };
        self.running_ops.insert(op.key(), running);
        let number = match self.op_name_list.iter().position(|known| known == name) {
            Some(number) => number,
            None => {
                self.op_name_list.push(name.to_string());
                self.op_name_list.len() - 1
            }
        };
        self.op_names.insert(
            op,
            u32::try_from(number).expect("fewer than 2³² operation names"),
        );
    }

    pub(crate) fn message_sent(&mut self, op: Option<OpId>, from: ServiceId, to: ServiceId) {
        self.messages_sent += 1;
        let Some(op) = op else {
            return;
        };
        if let Some(&number) = self.op_names.get(&op) {
            let name = &self.op_name_list[number as usize];
            match self.ops.get_mut(name) {
                Some(stats) => stats.messages += 1,
                None => self.ops.entry(name.clone()).or_default().messages += 1,
            }
        }
        if let Some(running) = self.running_ops.get_mut(&op.key())
            && let Some(unavailable) = &running.unavailable_at_start
            && unavailable.blocks(from, to)
        {
            running.during_outage = true;
        }
    }

    /// The deepest any queue has been (0 when no queue ever held a message).
    pub fn deepest_queue(&self) -> u32 {
        self.queue_depth_max
            .values()
            .flat_map(|queues| queues.values())
            .copied()
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn queue_depth(&mut self, service: ServiceId, queue: &str, depth: u32) {
        let maxima = self.queue_depth_max.entry(service).or_default();
        match maxima.get_mut(queue) {
            Some(max) => *max = (*max).max(depth),
            None => {
                maxima.insert(queue.to_string(), depth);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn op_finished(
        &mut self,
        op: OpId,
        ok: bool,
        latency: Micros,
        observed: &[Observed],
        now: Micros,
        events_applied: usize,
        latest: &dyn Fn(&Observed) -> Latest,
    ) {
        let Some(running) = self.running_ops.remove(&op.key()) else {
            return;
        };
        let is_read = is_read_op(&running.name);
        let services_down: Vec<ServiceId> = running
            .unavailable_at_start
            .as_deref()
            .map(|u| u.services_down().collect())
            .unwrap_or_default();
        self.ops.entry(running.name).or_default().record(
            ok,
            latency,
            running.during_outage,
            &services_down,
            u32::try_from(events_applied).expect("fewer than 2³² events"),
        );
        if !ok {
            return;
        }
        self.coordination.aborted_reads.read_returned(op, observed);
        let stale_tables = self.tables_seen_older_than_confirmed(running.started, observed);
        if !stale_tables.is_empty() {
            self.stale_reads += 1;
        }
        for table in stale_tables {
            *self.stale_reads_by_table.entry(table).or_default() += 1;
        }
        if is_read {
            let missed_since = observed
                .iter()
                .filter_map(|seen| {
                    self.staleness
                        .anchor(&seen.source_row(), latest(seen), seen.version)
                })
                .min();
            self.served_lag.read_served(running.started, missed_since);
        }
        for seen in observed {
            let history = self
                .confirmed
                .get_or_insert_with(seen.source_row(), SharedLog::new);
            if history
                .last()
                .is_none_or(|(_, version)| seen.version > *version)
            {
                history.push((now, seen.version));
            }
        }
    }

    /// The source tables in which a version older than one confirmed at or before `started` was
    /// seen; empty when the answer was fresh.
    fn tables_seen_older_than_confirmed(
        &self,
        started: Micros,
        observed: &[Observed],
    ) -> SlotSet<String> {
        observed
            .iter()
            .filter(|seen| {
                let row = seen.source_row();
                self.confirmed.get(&row).is_some_and(|history| {
                    let known = history.partition_point(|(at, _)| *at <= started);
                    known > 0 && history.get(known - 1).is_some_and(|c| c.1 > seen.version)
                })
            })
            .map(|seen| seen.source_table.to_string())
            .collect()
    }

    /// Operations still running.
    pub fn ops_running(&self) -> usize {
        self.running_ops.len()
    }

    /// Messages dropped for any reason.
    pub fn messages_dropped(&self) -> u64 {
        self.dropped_by_reason.iter().sum()
    }

    /// The stats of operation `name`, or empty ones.
    pub fn op(&self, name: &str) -> OpStats {
        self.ops.get(name).cloned().unwrap_or_default()
    }

    /// Operations that ended, of every kind.
    pub fn ops_finished(&self) -> u64 {
        self.ops.values().map(OpStats::finished).sum()
    }
}

/// A service's name in `header`, or its number when the header does not list it.
pub fn service_name(header: &TraceHeader, service: ServiceId) -> String {
    header
        .services
        .get(service.0 as usize)
        .map_or_else(|| format!("service {}", service.0), |s| s.name.clone())
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
    // Rates are per second the run actually covered: a run the event budget cut at 200 s of
    // 600 s did its work in 200 s.
    let simulated_s = state.now.as_secs_f64();
    let per = |count: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            count as f64 / of as f64
        }
    };
    let by_operation: SlotMap<String, OpSummary> = metrics
        .ops
        .iter()
        .map(|(name, stats)| {
            let summary = OpSummary {
                ok: stats.ok,
                failed: stats.failed,
                p50_us: stats.percentile(50).0,
                p95_us: stats.percentile(95).0,
                p99_us: stats.percentile(99).0,
                throughput_per_s: if simulated_s > 0.0 {
                    stats.ok as f64 / simulated_s
                } else {
                    0.0
                },
                messages_per_op: per(stats.messages, stats.finished()),
                ok_during_outage: stats.ok_during_outage,
                failed_during_outage: stats.failed_during_outage,
                began_while_down: stats
                    .began_while_down
                    .iter()
                    .map(|(service, counts)| (service_name(&trace.header, *service), *counts))
                    .collect::<SlotMap<_, _>>(),
            };
            (name.clone(), summary)
        })
        .collect::<SlotMap<_, _>>();
    RunSummary {
        scenario: trace.header.scenario.clone(),
        seed: trace.header.seed,
        until_s: trace.header.until.as_secs_f64(),
        end_reason: state.ended,
        simulated_s,
        events: trace.events.len() as u64,
        trace_hash: trace.hash_hex(),
        ops_ok: by_operation.values().map(|s| s.ok).sum(),
        ops_failed: by_operation.values().map(|s| s.failed).sum(),
        by_operation,
        stale_reads: metrics.stale_reads,
        staleness_max_us: metrics.staleness.max(state.now).0,
        staleness_mean_us: metrics.staleness.mean(state.now).0,
        served_lag_max_us: metrics.served_lag.max().0,
        served_lag_mean_us: metrics.served_lag.mean().0,
        copy_regressions: metrics.copy_regressions,
        duplicated_bytes: state.duplicated_bytes(),
        queue_depth_max: metrics.deepest_queue(),
        messages_per_op: per(metrics.messages_sent, metrics.ops_finished()),
        messages_sent: metrics.messages_sent,
        messages_duplicated: metrics.messages_duplicated,
        messages_dropped: metrics.messages_dropped(),
        messages_in_flight_at_end: in_flight_at_end,
        queue_depth_max_by_queue: metrics
            .queue_depth_max
            .values()
            .flat_map(|queues| queues.iter())
            .map(|(queue, depth)| (queue.clone(), *depth))
            .collect::<SlotMap<_, _>>(),
        consumers: metrics.delivery.consumer_summaries(&trace.header),
        coordination: CoordinationSummary {
            rollbacks_sent: metrics.coordination.rollbacks_sent,
            partial_updates_flagged: metrics.coordination.partial_updates_flagged.len() as u64,
            aborted_reads: metrics.coordination.aborted_reads.count(),
            inconsistent_rows_at_end: state.inconsistent_rows().len() as u64,
            in_doubt_max_us: metrics.coordination.in_doubt.max(state.now).0,
            rows_in_doubt_at_end: metrics.coordination.in_doubt.rows(),
            prepares_refused_locked: metrics.coordination.in_doubt.prepares_refused_locked,
        },
        resilience: ResilienceSummary {
            degraded_reads: metrics.resilience.degraded_ops,
            calls_received: metrics.resilience.calls_received,
            dropped_past_deadline: metrics.resilience.dropped_past_deadline,
            breaker_opened: metrics.resilience.breaker_opened,
            calls_while_breaker_open: metrics.resilience.calls_while_breaker_open,
        },
        calls_by_operation: metrics
            .calls
            .by_op
            .iter()
            .map(|(name, calls)| {
                let summary = CallSummary {
                    calls: calls.calls,
                    calls_per_op: calls.calls_per_op(),
                    cache_hit_ratio: (calls.calls > 0).then(|| calls.cache_hit_ratio()),
                };
                (name.clone(), summary)
            })
            .collect::<SlotMap<_, _>>(),
        stale_reads_by_table: metrics.stale_reads_by_table.clone(),
        anomalies: crate::check::counts_by_name(&crate::check::check(&trace.header, &trace.events)),
        capacity: metrics.loads.summaries(&trace.header, state.now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_stale_in_each_table_where_it_began_after_a_newer_version_was_confirmed() {
        let seen = |table: &'static str, version| Observed {
            source_service: ServiceId(2),
            source_table: table.into(),
            key: "3".into(),
            version,
        };
        let mut metrics = Metrics::default();
        let op = |metrics: &mut Metrics, started_ms, finished_ms, observed: &[Observed]| {
            let id = OpId(metrics.ops_finished() + 1);
            metrics.op_started(id, "op", Micros::from_millis(started_ms));
            let now = Micros::from_millis(finished_ms);
            metrics.op_finished(id, true, Micros::ZERO, observed, now, 0, &|_| None);
        };
        // A rating change to v2 and a rename to v5 are confirmed at 50 ms.
        op(
            &mut metrics,
            0,
            50,
            &[seen("driver_details", 2), seen("drivers", 5)],
        );
        // Began before the confirmation: fresh.
        op(
            &mut metrics,
            10,
            60,
            &[seen("driver_details", 1), seen("drivers", 4)],
        );
        assert_eq!(metrics.stale_reads, 0);
        // Began after: stale in the details only, then in both.
        op(
            &mut metrics,
            70,
            110,
            &[seen("driver_details", 1), seen("drivers", 5)],
        );
        op(
            &mut metrics,
            120,
            160,
            &[seen("driver_details", 1), seen("drivers", 4)],
        );
        assert_eq!(metrics.stale_reads, 2);
        let by_table: Vec<(&str, u64)> = metrics
            .stale_reads_by_table
            .iter()
            .map(|(table, count)| (table.as_str(), *count))
            .collect();
        assert_eq!(by_table, vec![("driver_details", 2), ("drivers", 1)]);
    }

    #[test]
    fn a_run_cut_short_reports_where_it_ended_and_rates_per_second_it_ran() {
        use crate::protocol::{EndReason, LinkSpec, Outcome, PROTOCOL_VERSION, TraceEvent};
        let at = |ms, event| TraceEvent {
            at: Micros::from_millis(ms),
            event,
        };
        let mut events = Vec::new();
        for op in 1..=4 {
            let started = op * 400;
            events.push(at(
                started,
                Event::OpStarted {
                    op: OpId(op),
                    name: "read".into(),
                    client: ServiceId(0),
                },
            ));
            events.push(at(
                started + 100,
                Event::OpFinished {
                    op: OpId(op),
                    outcome: Outcome::Ok,
                    latency: Micros::from_millis(100),
                    observed: Vec::new(),
                },
            ));
        }
        events.push(at(
            2_000,
            Event::RunEnded {
                reason: EndReason::Budget,
                messages_in_flight: 0,
            },
        ));
        let header = TraceHeader {
            protocol_version: PROTOCOL_VERSION,
            scenario: "test".into(),
            seed: 1,
            until: Micros::from_secs(10),
            knobs: Default::default(),
            services: Vec::new(),
            links: Vec::new(),
            network: LinkSpec {
                latency: Micros::ZERO,
                jitter: Micros::ZERO,
                loss_per_million: 0,
            },
            copies: Vec::new(),
            faults: Vec::new(),
        };
        let summary = summarize(&Trace { header, events });
        assert_eq!(summary.until_s, 10.0);
        assert_eq!(summary.end_reason, Some(EndReason::Budget));
        assert_eq!(summary.simulated_s, 2.0);
        assert_eq!(
            summary.by_operation["read"].throughput_per_s, 2.0,
            "4 reads in the 2 s the run covered, not in the 10 s asked for"
        );
    }

    #[test]
    fn percentiles_use_nearest_rank_over_successes() {
        let check = |latencies: &[u64], percent: u32, expected: u64| {
            let mut stats = OpStats::default();
            for l in latencies {
                stats.record(true, Micros(*l), false, &[], 0);
            }
            stats.record(false, Micros(1_000_000), false, &[], 0);
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
