//! The metrics charts as plain data: read latency, replication lag and queue depth over the whole run,
//! sampled in equal buckets by one pass over the trace.

use crate::trace_index::TraceIndex;
use shared::fold::WorldState;
use shared::protocol::Event;
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
}

/// The charts of `index`, over the part of the run known so far.
pub fn charts(index: &TraceIndex) -> Charts {
    let end = index.header().until.max(Micros(1));
    let bucket_us = end.0.div_ceil(BUCKETS as u64).max(1);
    let mut state = WorldState::new(index.header());
    let mut latency_sum_us = vec![0u64; BUCKETS];
    let mut latency_count = vec![0u64; BUCKETS];
    let mut staleness = vec![None; BUCKETS];
    let mut queue_depth = vec![None; BUCKETS];
    let known = index.known_until();
    let mut events = index.events().iter().peekable();
    for bucket in 0..BUCKETS {
        let bucket_end = Micros(bucket_us * (bucket as u64 + 1)).min(end);
        while let Some(event) = events.next_if(|e| e.at <= bucket_end) {
            if let Event::OpFinished {
                outcome, latency, ..
            } = &event.event
                && outcome.is_ok()
            {
                latency_sum_us[bucket] += latency.0;
                latency_count[bucket] += 1;
            }
            state.apply(event);
        }
        if bucket_end > known {
            break;
        }
        let stale_us = state.metrics.staleness.open_max(bucket_end).0;
        staleness[bucket] = Some(stale_us as f64 / 1_000.0);
        let depth: u32 = state.queue_depths.values().sum();
        queue_depth[bucket] = Some(f64::from(depth));
    }
    let latency = latency_sum_us
        .iter()
        .zip(&latency_count)
        .map(|(sum, count)| (*count > 0).then(|| *sum as f64 / *count as f64 / 1_000.0))
        .collect();
    Charts {
        end,
        latency: Series {
            title: "Latency of operations that succeeded",
            unit: "ms",
            values: latency,
        },
        staleness: Series {
            title: "Replication lag of the copy furthest behind",
            unit: "ms",
            values: staleness,
        },
        queue_depth: Series {
            title: "Messages waiting in queues",
            unit: "",
            values: queue_depth,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::RunRequest;

    fn index(scenario: &str, knobs: &[(&str, f64)]) -> TraceIndex {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 2,
            until_s: 30.0,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: Vec::new(),
        };
        let trace = shared::scenario::simulate(&request).unwrap();
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
    fn a_streamed_trace_is_charted_as_far_as_it_is_known() {
        let whole = index("request-response", &[]);
        let mut part = TraceIndex::new(whole.header().clone());
        let half: Vec<_> = whole
            .events()
            .iter()
            .filter(|e| e.at < Micros::from_secs(15))
            .cloned()
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
}
