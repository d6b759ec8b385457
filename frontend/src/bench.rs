//! The frame-time benchmark (`?bench=<messages>`): a synthetic trace that keeps exactly that many
//! messages in flight at every moment, and the statistics of the frame times measured while it
//! plays.

use crate::trace_index::TraceIndex;
use shared::protocol::{Event, MessageKind, MsgId, RunRequest, TraceEvent};
use shared::time::Micros;
use std::collections::BTreeMap;

/// How long each synthetic message is in flight.
pub const BENCH_HOP: Micros = Micros(2_000_000);
/// How long the synthetic trace lasts; the benchmark loops over it.
pub const BENCH_UNTIL: Micros = Micros(8_000_000);
/// Frames measured before the figures count, while the page settles.
pub const WARMUP_FRAMES: usize = 60;
/// Frames measured for the figures.
pub const MEASURED_FRAMES: usize = 600;

/// A trace over the request-response scenario's services in which `messages` messages are in
/// flight at every moment of `0..BENCH_UNTIL`, spread over every link in both directions.
pub fn synthetic_trace(messages: u32) -> Result<TraceIndex, String> {
    let request = RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: BENCH_UNTIL.as_secs_f64(),
        knobs: BTreeMap::new(),
        faults: Vec::new(),
    };
    let mut header = shared::scenario::start(&request)
        .map_err(|e| e.to_string())?
        .header()
        .clone();
    header.scenario = format!("benchmark-{messages}");
    let routes: Vec<_> = header
        .links
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .collect();
    if routes.is_empty() {
        return Err("the benchmark's scenario has no links".into());
    }
    let kinds = [
        MessageKind::Request,
        MessageKind::Response,
        MessageKind::Event,
        MessageKind::Ack,
    ];
    let n = u64::from(messages.max(1));
    let spacing_us = (BENCH_HOP.0 / n).max(1);
    // Every service is up from the start.
    let mut events: Vec<TraceEvent> = header
        .services
        .iter()
        .map(|s| TraceEvent {
            at: Micros::ZERO,
            event: Event::ServiceUp { service: s.id },
        })
        .collect();
    let mut next_id = 0u64;
    let mut add = |sent: Micros, arrives: Micros, events: &mut Vec<TraceEvent>| {
        let (from, to) = routes[next_id as usize % routes.len()];
        let kind = kinds[next_id as usize % kinds.len()];
        events.push(TraceEvent {
            at: sent,
            event: Event::Sent {
                msg: MsgId(next_id),
                from,
                to,
                kind,
                label: format!("bench {next_id}"),
                op: None,
                caused_by: None,
            },
        });
        events.push(TraceEvent {
            at: arrives,
            event: Event::Delivered {
                msg: MsgId(next_id),
            },
        });
        next_id += 1;
    };
    // At the start, `n` messages already on their way, arriving evenly over the first hop…
    for i in 0..n {
        add(Micros::ZERO, Micros((i + 1) * spacing_us), &mut events);
    }
    // …and from then on one sent for each one that arrives.
    let mut sent = spacing_us;
    while sent < BENCH_UNTIL.0 {
        add(Micros(sent), Micros(sent) + BENCH_HOP, &mut events);
        sent += spacing_us;
    }
    // Sends and arrivals interleave: put them in time order, ties keeping their order.
    events.sort_by_key(|e| e.at);
    Ok(TraceIndex::complete(header, events))
}

/// Frame times, bounded: warm-up frames are dropped, then [`MEASURED_FRAMES`] are kept.
#[derive(Clone, Debug, Default)]
pub struct FrameStats {
    seen: usize,
    samples_ms: Vec<f64>,
}

impl FrameStats {
    /// Records one frame's time; ignored during warm-up and once enough frames are in.
    pub fn record(&mut self, frame_ms: f64) {
        self.seen += 1;
        if self.seen > WARMUP_FRAMES && !self.is_done() && frame_ms.is_finite() {
            self.samples_ms.push(frame_ms);
        }
    }

    /// True once [`MEASURED_FRAMES`] frames are in.
    pub fn is_done(&self) -> bool {
        self.samples_ms.len() >= MEASURED_FRAMES
    }

    /// How many frames count.
    pub fn len(&self) -> usize {
        self.samples_ms.len()
    }

    /// True when no frame counts yet.
    pub fn is_empty(&self) -> bool {
        self.samples_ms.is_empty()
    }

    /// The `p`-th percentile (0–100) of the frames that count, by nearest rank.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.samples_ms.is_empty() {
            return None;
        }
        let mut sorted = self.samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_trace_keeps_the_asked_number_in_flight() {
        for messages in [1, 500, 2_000] {
            let index = synthetic_trace(messages).unwrap();
            for ms in [0, 1, 999, 2_000, 4_321, 7_999] {
                let in_flight = index
                    .messages_in_flight_at(Micros::from_millis(ms), Micros::ZERO)
                    .len();
                assert!(
                    in_flight.abs_diff(messages as usize) <= 1,
                    "{messages} asked, {in_flight} in flight at {ms} ms"
                );
            }
        }
    }

    #[test]
    fn percentiles_by_nearest_rank_after_warm_up() {
        let mut stats = FrameStats::default();
        assert_eq!(stats.percentile(50.0), None);
        for _ in 0..WARMUP_FRAMES {
            stats.record(1_000.0);
        }
        assert!(stats.is_empty(), "warm-up frames do not count");
        for i in 1..=100 {
            stats.record(f64::from(i));
        }
        assert_eq!(stats.len(), 100);
        assert_eq!(stats.percentile(50.0), Some(50.0));
        assert_eq!(stats.percentile(95.0), Some(95.0));
        assert_eq!(stats.percentile(100.0), Some(100.0));
        assert_eq!(stats.percentile(0.0), Some(1.0));
        for _ in 0..(MEASURED_FRAMES * 2) {
            stats.record(1.0);
        }
        assert!(stats.is_done());
        assert_eq!(stats.len(), MEASURED_FRAMES, "bounded");
    }
}
