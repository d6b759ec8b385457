//! Driving the simulation and cutting its trace into pieces: batches of events for the command
//! line, and serialized [`ServerFrame`]s for a viewer's socket.
//!
//! Everything here is synchronous: a [`Sim`] is not `Send`, so it is created and driven on one
//! blocking thread, and only serialized text crosses to the async side.

use axum::extract::ws::Utf8Bytes;
use engine::Sim;
use shared::protocol::{ServerFrame, TraceEvent, TraceHasher};
use tokio::sync::mpsc;

/// The trace events of a run, in order, in batches of at most `batch_len`.
///
/// The first batch starts with the events the run emits as it is set up; the last ends with
/// `run_ended`. Only the last batch may be shorter than `batch_len`.
pub struct EventBatches {
    sim: Sim,
    batch_len: usize,
    pending: Vec<TraceEvent>,
    sim_finished: bool,
}

impl EventBatches {
    /// Batches of `sim`'s events; a `batch_len` of zero is taken as one.
    pub fn new(sim: Sim, batch_len: usize) -> EventBatches {
        EventBatches {
            sim,
            batch_len: batch_len.max(1),
            pending: Vec::new(),
            sim_finished: false,
        }
    }
}

impl Iterator for EventBatches {
    type Item = Vec<TraceEvent>;

    fn next(&mut self) -> Option<Vec<TraceEvent>> {
        // The engine bounds its own trace and pending work, so this loop ends.
        while self.pending.len() < self.batch_len && !self.sim_finished {
            self.sim_finished = !self.sim.step();
            self.pending.append(&mut self.sim.drain_events());
        }
        if self.pending.is_empty() {
            return None;
        }
        let rest = self
            .pending
            .split_off(self.batch_len.min(self.pending.len()));
        Some(std::mem::replace(&mut self.pending, rest))
    }
}

/// One serialized frame for a viewer. Cloning it shares the bytes: a live frame is serialized
/// once and the same bytes go to every viewer's socket.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameText {
    /// The frame as JSON.
    pub json: Utf8Bytes,
    /// True for the `end` frame, the last one of a complete trace.
    pub is_end: bool,
}

/// Why a stream stopped before its `end` frame.
#[derive(Debug, thiserror::Error)]
pub enum StreamStopped {
    /// The viewer went away or asked for another run: nobody receives the frames any more.
    #[error("the viewer no longer receives this run")]
    Cancelled,
    /// A frame could not be serialized.
    #[error("cannot serialize a frame: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Streams `sim`'s whole trace into `frames`: a `header`, `events` frames of at most
/// `events_per_frame` events, and an `end` frame with the trace's hash.
///
/// Blocks while `frames` is full, so a slow viewer slows only its own run; returns
/// [`StreamStopped::Cancelled`] as soon as the receiver is dropped.
pub fn stream_frames(
    sim: Sim,
    events_per_frame: usize,
    frames: &mpsc::Sender<FrameText>,
) -> Result<(), StreamStopped> {
    let send = |frame: &ServerFrame| -> Result<(), StreamStopped> {
        let frame = FrameText {
            json: serde_json::to_string(frame)?.into(),
            is_end: matches!(frame, ServerFrame::End { .. }),
        };
        frames
            .blocking_send(frame)
            .map_err(|_| StreamStopped::Cancelled)
    };
    let mut hasher = TraceHasher::default();
    let header = sim.header().clone();
    hasher.add_header(&header);
    send(&ServerFrame::Header(header))?;
    let mut n_events = 0u64;
    for events in EventBatches::new(sim, events_per_frame) {
        for event in &events {
            hasher.add_event(event);
        }
        n_events += events.len() as u64;
        send(&ServerFrame::Events { events })?;
    }
    send(&ServerFrame::End {
        trace_hash: hasher.hex(),
        events: n_events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{RunRequest, Trace};

    fn request(scenario: &str, seed: u64, until_s: f64) -> RunRequest {
        RunRequest {
            scenario: scenario.to_string(),
            seed,
            until_s,
            knobs: Default::default(),
            faults: Vec::new(),
        }
    }

    #[test]
    fn batches_are_bounded_and_add_up_to_the_whole_trace() {
        let check = |request: RunRequest, batch_len: usize| {
            let whole = engine::simulate(&request).unwrap();
            let sim = engine::start(&request).unwrap();
            let batches: Vec<_> = EventBatches::new(sim, batch_len).collect();
            let (last, full) = batches.split_last().unwrap();
            assert!(full.iter().all(|b| b.len() == batch_len.max(1)));
            assert!(!last.is_empty() && last.len() <= batch_len.max(1));
            assert_eq!(batches.concat(), whole.events, "batch_len {batch_len}");
        };
        check(request("request-response", 1, 5.0), 0);
        check(request("request-response", 1, 5.0), 1);
        check(request("request-response", 2, 30.0), 500);
        check(request("eventual-consistency", 3, 12.5), 7);
        check(request("eventual-consistency", 3, 0.001), 100_000);
    }

    #[test]
    fn frames_rebuild_the_trace_and_end_with_its_hash() {
        let request = request("eventual-consistency", 9, 20.0);
        let expected = engine::simulate(&request).unwrap();
        let (sender, mut receiver) = mpsc::channel(1_000_000);
        stream_frames(engine::start(&request).unwrap(), 64, &sender).unwrap();
        drop(sender);
        let mut frames = Vec::new();
        while let Ok(frame) = receiver.try_recv() {
            frames.push(frame);
        }
        let (end, rest) = frames.split_last().unwrap();
        assert!(end.is_end && rest.iter().all(|f| !f.is_end));
        let mut parsed = rest
            .iter()
            .map(|f| shared::json::from_str::<ServerFrame>(f.json.as_str()).unwrap());
        let Some(ServerFrame::Header(header)) = parsed.next() else {
            panic!("the first frame is not a header");
        };
        let mut events = Vec::new();
        for frame in parsed {
            let ServerFrame::Events { events: batch } = frame else {
                panic!("expected events, got {frame:?}");
            };
            assert!(!batch.is_empty() && batch.len() <= 64);
            events.extend(batch);
        }
        let received = Trace { header, events };
        assert_eq!(received, expected);
        assert_eq!(
            shared::json::from_str::<ServerFrame>(end.json.as_str()).unwrap(),
            ServerFrame::End {
                trace_hash: expected.hash_hex(),
                events: expected.events.len() as u64,
            }
        );
    }

    #[test]
    fn a_dropped_receiver_stops_the_stream() {
        let (sender, receiver) = mpsc::channel(2);
        drop(receiver);
        let sim = engine::start(&request("request-response", 1, 600.0)).unwrap();
        let stopped = stream_frames(sim, 10, &sender).unwrap_err();
        assert!(matches!(stopped, StreamStopped::Cancelled), "{stopped}");
    }
}
