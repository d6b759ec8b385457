//! The metrics charts as plain data: read latency, replication lag and queue depth over the whole run,
//! sampled in equal buckets, accumulated as the trace arrives.

use shared::event_store::EventStore;
use shared::fold::WorldState;
use shared::protocol::{Event, TraceEvent, TraceHeader};
use shared::time::Micros;

/// How many buckets the run is cut into.
pub const BUCKETS: usize = 120;

/// One chart's points: a value per bucket, `None` where there is nothing to plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// What it shows, for its heading.
    pub title: &'static str,
    /// The unit of its values, for its axis.
    pub unit: &'static str,
    /// One value per bucket.
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// The largest value, for the axis.
    pub fn max(&self) -> f64 {
        self.values.iter().flatten().copied().fold(0.0, f64::max)
    }
}

/// The charts of a whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Charts {
    /// The run's end: the charts' time axis runs from zero to it.
    pub end: Micros,
    /// Mean latency of the operations that succeeded in each bucket, in milliseconds.
    pub latency: Series,
    /// The replication lag of the copy row furthest behind at each bucket's end, in
    /// milliseconds.
    pub staleness: Series,
    /// Messages waiting in every queue at each bucket's end.
    pub queue_depth: Series,
    /// The utilisation of the busiest service with a capacity in each bucket, in %: its busy
    /// workers ÷ its workers, averaged over the bucket. Empty when no service has a bounded pool.
    pub utilisation: Series,
}

/// The charts, accumulated as events arrive: each event is folded once, when it is added, so
/// a streamed or sliced trace costs the same as a whole one, and reading the charts costs one
/// pass over the buckets.
#[derive(Clone, Debug)]
pub struct ChartsAccumulator {
    end: Micros,
    bucket_us: u64,
    state: WorldState,
    latency_sum_us: Vec<u64>,
    latency_count: Vec<u64>,
    staleness: Vec<Option<f64>>,
    queue_depth: Vec<Option<f64>>,
    utilisation: Vec<Option<f64>>,
    /// Each service's busy time (µs) at the previous bucket's end, by id.
    busy_us_before: shared::slot_map::DenseMap<shared::protocol::ServiceId, u64>,
    /// The previous bucket's end.
    previous_end: Micros,
    /// The first bucket not closed yet: its events may not all be here.
    open_bucket: usize,
}

impl ChartsAccumulator {
    /// No events yet, for a run with `header`.
    pub fn new(header: &TraceHeader) -> ChartsAccumulator {
        let end = header.until.max(Micros(1));
        ChartsAccumulator {
            end,
            bucket_us: end.0.div_ceil(BUCKETS as u64).max(1),
            state: WorldState::sparing(header),
            latency_sum_us: vec![0; BUCKETS],
            latency_count: vec![0; BUCKETS],
            staleness: vec![None; BUCKETS],
            queue_depth: vec![None; BUCKETS],
            utilisation: vec![None; BUCKETS],
            busy_us_before: shared::slot_map::DenseMap::new(),
            previous_end: Micros::ZERO,
            open_bucket: 0,
        }
    }

    fn bucket_end(&self, bucket: usize) -> Micros {
        Micros(self.bucket_us * (bucket as u64 + 1)).min(self.end)
    }

    /// The world folded over every event added so far.
    pub fn world(&self) -> &WorldState {
        &self.state
    }

    /// Adds the next event; `earlier` begins with the events added before it (its world may
    /// recall a table's history from them: [`WorldState::apply_stored`]). An event past a bucket's end closes that bucket: every event of it
    /// is here. Events after the run's end are not charted.
    pub fn add(&mut self, event: &TraceEvent, earlier: &EventStore) {
        while self.open_bucket < BUCKETS && event.at > self.bucket_end(self.open_bucket) {
            self.close_open_bucket();
        }
        if self.open_bucket == BUCKETS {
            return;
        }
        if let Event::OpFinished {
            outcome, latency, ..
        } = &event.event
            && outcome.is_ok()
        {
            self.latency_sum_us[self.open_bucket] += latency.0;
            self.latency_count[self.open_bucket] += 1;
        }
        self.state.apply_stored(event, earlier);
    }

    /// No more events will come: closes the bucket of the last event, measured at that event
    /// (`docs/METRICS.md`, "The charts"). Buckets after it stay empty: a run cut short did not
    /// reach them, and lags or queues there would be extrapolated, not measured.
    pub fn finish(&mut self) {
        if self.open_bucket < BUCKETS && self.state.events_applied > 0 {
            let measured_at = self.bucket_end(self.open_bucket).min(self.state.now);
            self.close_open_bucket_at(measured_at);
        }
    }

    fn close_open_bucket(&mut self) {
        self.close_open_bucket_at(self.bucket_end(self.open_bucket));
    }

    fn close_open_bucket_at(&mut self, measured_at: Micros) {
        let bucket = self.open_bucket;
        let stale_us = self.state.metrics.staleness.open_max(measured_at).0;
        self.staleness[bucket] = Some(stale_us as f64 / 1_000.0);
        let depth: u32 = self
            .state
            .queue_depths
            .values()
            .flat_map(|queues| queues.values())
            .sum();
        self.queue_depth[bucket] = Some(f64::from(depth));
        self.utilisation[bucket] = self.busiest_utilisation(measured_at);
        self.previous_end = measured_at;
        self.open_bucket += 1;
    }

    /// The largest utilisation, in %, of the services with a bounded pool between the previous
    /// bucket's end and `until`; `None` when there is none.
    fn busiest_utilisation(&mut self, until: Micros) -> Option<f64> {
        let span = until.saturating_sub(self.previous_end).0;
        let loads = &self.state.metrics.loads;
        let mut busiest: Option<f64> = None;
        for (service, now) in loads.all_now() {
            let busy_us = loads.busy_us(service, until);
            let before = self.busy_us_before.insert(service, busy_us).unwrap_or(0);
            if now.workers == 0 || span == 0 {
                continue;
            }
            let percent = busy_us.saturating_sub(before) as f64 * 100.0
                / (span as f64 * f64::from(now.workers));
            busiest = Some(busiest.map_or(percent, |b| b.max(percent)));
        }
        busiest
    }

    /// The charts as far as buckets are closed (latency as far as events are here).
    pub fn charts(&self) -> Charts {
        let latency = self
            .latency_sum_us
            .iter()
            .zip(&self.latency_count)
            .map(|(sum, count)| (*count > 0).then(|| *sum as f64 / *count as f64 / 1_000.0))
            .collect();
        Charts {
            end: self.end,
            latency: Series {
                title: "Latency of operations that succeeded",
                unit: "ms",
                values: latency,
            },
            staleness: Series {
                title: "Replication lag of the copy furthest behind",
                unit: "ms",
                values: self.staleness.clone(),
            },
            queue_depth: Series {
                title: "Messages waiting in queues",
                unit: "",
                values: self.queue_depth.clone(),
            },
            utilisation: Series {
                title: "Utilisation of the busiest service",
                unit: "%",
                values: self.utilisation.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_index::TraceIndex;
    use shared::protocol::RunRequest;

    fn charts(index: &TraceIndex) -> Charts {
        index.charts().charts()
    }

    fn index(scenario: &str, knobs: &[(&str, f64)]) -> TraceIndex {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 2,
            until_s: 30.0,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        TraceIndex::complete(trace.header, trace.events)
    }

    #[test]
    fn latency_is_the_mean_of_each_buckets_successes() {
        let index = index("request-response", &[]);
        let charts = charts(&index);
        assert_eq!(charts.latency.values.len(), BUCKETS);
        // Check a bucket by hand: the first, after the start, with a success.
        let bucket_us = charts.end.0.div_ceil(BUCKETS as u64);
        let bucket = (1..BUCKETS)
            .find(|&b| charts.latency.values[b].is_some())
            .unwrap();
        let (lo, hi) = (bucket_us * bucket as u64, bucket_us * (bucket as u64 + 1));
        let latencies: Vec<u64> = index
            .events()
            .iter()
            .filter(|e| e.at.0 > lo && e.at.0 <= hi)
            .filter_map(|e| match &e.event {
                Event::OpFinished {
                    outcome, latency, ..
                } if outcome.is_ok() => Some(latency.0),
                _ => None,
            })
            .collect();
        assert!(!latencies.is_empty());
        let mean_ms = latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1_000.0;
        assert!((charts.latency.values[bucket].unwrap() - mean_ms).abs() < 1e-9);
        assert!(charts.latency.max() > 0.0);
    }

    #[test]
    fn queues_and_staleness_rise_while_order_is_down() {
        let index = index("eventual-consistency", &[]);
        let charts = charts(&index);
        assert!(charts.queue_depth.max() >= 1.0, "{:?}", charts.queue_depth);
        assert!(charts.staleness.max() > 0.0, "{:?}", charts.staleness);
        assert!(charts.staleness.values.iter().all(Option::is_some));
    }

    #[test]
    fn utilisation_is_the_busiest_services_busy_share_of_each_bucket() {
        let plain = charts(&index("request-response", &[]));
        assert!(plain.utilisation.values.iter().all(Option::is_none));
        // Product: 2 workers of 100 ms each, offered 30 calls/s while it can do 20.
        let loaded = index(
            "request-response",
            &[
                ("read_rate_per_s", 10.0),
                ("product_workers", 2.0),
                ("product_service_ms", 100.0),
                ("product_down_for_s", 0.0),
                ("product_slow_for_s", 0.0),
                // Enough of Order's connections that its pool does not hold the calls back.
                ("pool_size", 64.0),
                ("call_timeout_ms", 5_000.0),
            ],
        );
        let charts = charts(&loaded);
        let values: Vec<f64> = charts
            .utilisation
            .values
            .iter()
            .flatten()
            .copied()
            .collect();
        assert!(values.len() > 100, "{values:?}");
        assert!(
            values.iter().all(|v| (0.0..=100.0 + 1e-9).contains(v)),
            "{values:?}"
        );
        // Saturated once the first reads arrive: the second half is at 100 % or near it.
        let late = &values[values.len() / 2..];
        assert!(
            late.iter().sum::<f64>() / late.len() as f64 > 95.0,
            "{late:?}"
        );
        // The buckets' mean is the summary's utilisation.
        let summary = shared::metrics::summarize(&shared::protocol::Trace {
            header: loaded.header().clone(),
            events: loaded.events().to_vec(),
        });
        let overall = summary.capacity["Product"].utilisation.unwrap() * 100.0;
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - overall).abs() < 0.5, "{mean} vs {overall}");
    }

    #[test]
    fn a_streamed_trace_is_charted_as_far_as_it_is_known() {
        let whole = index("request-response", &[]);
        let mut part = TraceIndex::new(whole.header().clone());
        let half: Vec<_> = whole
            .events()
            .iter()
            .filter(|e| e.at < Micros::from_secs(15))
            .collect();
        part.append(half);
        let charts = charts(&part);
        let known = charts
            .queue_depth
            .values
            .iter()
            .filter(|v| v.is_some())
            .count();
        assert!(
            (55..=60).contains(&known),
            "{known} buckets known of {BUCKETS}"
        );
    }

    #[test]
    fn a_run_cut_short_leaves_the_buckets_after_its_end_empty() {
        use shared::protocol::EndReason;
        let whole = index("eventual-consistency", &[]);
        let ten_s = Micros::from_secs(10);
        let mut events: Vec<TraceEvent> = whole
            .events()
            .iter()
            .filter(|e| e.at <= ten_s && !matches!(e.event, Event::RunEnded { .. }))
            .collect();
        events.push(TraceEvent {
            at: ten_s,
            event: Event::RunEnded {
                reason: EndReason::Budget,
                messages_in_flight: 0,
            },
        });
        let cut = TraceIndex::complete(whole.header().clone(), events);
        let cut_charts = charts(&cut);
        // 30 s in 120 buckets of 250 ms: the run reached the end of bucket 39.
        for series in [&cut_charts.staleness, &cut_charts.queue_depth] {
            assert!(
                series.values[..40].iter().all(Option::is_some),
                "{series:?}"
            );
            assert!(
                series.values[40..].iter().all(Option::is_none),
                "{series:?}"
            );
        }
        assert_eq!(
            cut_charts.staleness.values[..40],
            charts(&whole).staleness.values[..40]
        );
    }

    /// The charts by the definition: one pass over the events of each bucket, a bucket charted
    /// once every event of it is known.
    fn from_scratch(index: &TraceIndex) -> Charts {
        let mut whole = ChartsAccumulator::new(index.header());
        for event in index.events().iter() {
            whole.add(&event, index.events());
        }
        if index.is_complete() {
            whole.finish();
        }
        whole.charts()
    }

    #[test]
    fn charts_added_a_slice_at_a_time_equal_charts_of_the_whole() {
        for scenario in ["eventual-consistency", "event-driven", "gateway"] {
            let whole = index(scenario, &[]);
            let mut sliced = TraceIndex::new(whole.header().clone());
            for slice in whole.events().to_vec().chunks(97) {
                sliced.append(slice.iter().cloned());
                assert_eq!(charts(&sliced), from_scratch(&sliced), "{scenario}");
            }
            sliced.finish();
            assert_eq!(charts(&sliced), charts(&whole), "{scenario}");
            assert!(charts(&whole).staleness.values.iter().all(Option::is_some));
        }
    }
}
