//! The trace of a live run: events stamped with wall-clock microseconds since the run started,
//! cut into frames, kept for viewers who join late or fall behind, and fanned out to every viewer.
//!
//! Fan-out goes through a bounded `broadcast` channel: the services never wait for a viewer. A
//! viewer whose receiver lags is told with a `resync` frame and sent the run again from its
//! header (see [`TraceLog::subscribe`]); the history is bounded because the run ends with
//! [`EndReason::Budget`] once it holds `max_events` events.

use crate::stream::FrameText;
use shared::protocol::{
    EndReason, Event, MsgId, ServerFrame, Trace, TraceEvent, TraceHasher, TraceHeader,
};
use shared::time::Micros;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{broadcast, watch};

/// A frame shared by every viewer.
pub type SharedFrame = Arc<FrameText>;

/// A viewer's view of the run: the frames so far, then the frames to come.
pub struct Subscription {
    /// Every frame sent before the viewer subscribed, header first.
    pub replay: Vec<SharedFrame>,
    /// The frames after those; lagging behind it means resynchronizing.
    pub frames: broadcast::Receiver<SharedFrame>,
}

/// The bounds of a trace log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBounds {
    /// The most events in one `events` frame.
    pub events_per_frame: usize,
    /// The most frames a viewer may lag behind before it is resynchronized.
    pub frames_buffered: usize,
    /// The most events a run records; the run ends when it reaches them.
    pub max_events: usize,
}

struct LogState {
    pending: Vec<TraceEvent>,
    last_at: Micros,
    /// Messages sent and neither delivered nor dropped yet: each gets exactly one ending.
    open: BTreeSet<MsgId>,
    hasher: TraceHasher,
    n_events: u64,
    history: Vec<SharedFrame>,
    ended: bool,
}

/// The live trace; shared by the services' driver, the HTTP handlers and every viewer.
pub struct TraceLog {
    header: TraceHeader,
    started: Instant,
    bounds: LogBounds,
    state: Mutex<LogState>,
    frames: broadcast::Sender<SharedFrame>,
    ended: watch::Sender<bool>,
}

impl TraceLog {
    /// A log of a run described by `header`, whose clock starts now.
    pub fn new(header: TraceHeader, bounds: LogBounds) -> Result<TraceLog, serde_json::Error> {
        let mut hasher = TraceHasher::default();
        hasher.add_header(&header);
        let header_frame = Arc::new(FrameText {
            json: serde_json::to_string(&ServerFrame::Header(header.clone()))?.into(),
            is_end: false,
        });
        let (frames, _) = broadcast::channel(bounds.frames_buffered.max(1));
        let (ended, _) = watch::channel(false);
        Ok(TraceLog {
            header,
            started: Instant::now(),
            bounds,
            state: Mutex::new(LogState {
                pending: Vec::new(),
                last_at: Micros::ZERO,
                open: BTreeSet::new(),
                hasher,
                n_events: 0,
                history: vec![header_frame],
                ended: false,
            }),
            frames,
            ended,
        })
    }

    /// The run's header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Wall-clock time since the run started.
    pub fn now(&self) -> Micros {
        Micros(u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// The instant the run's clock counts from, to compare with a viewer's clock.
    pub fn started(&self) -> Instant {
        self.started
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `event` now. A message's `delivered` or `dropped` is kept only for a message sent
    /// and not yet ended, so every message ends at most once whichever side notices first.
    /// Returns false when the event was not recorded (ended already, or the run is over).
    pub fn record(&self, event: Event) -> bool {
        let mut state = self.lock();
        if state.ended {
            return false;
        }
        let ends_a_message_not_open = match &event {
            Event::Sent { msg, .. } | Event::Duplicated { copy: msg, .. } => {
                state.open.insert(*msg);
                false
            }
            Event::Delivered { msg } | Event::Dropped { msg, .. } => !state.open.remove(msg),
            _ => false,
        };
        if ends_a_message_not_open {
            return false;
        }
        // Events are stamped under the lock, so their times never go backwards.
        let at = self.now().max(state.last_at);
        state.last_at = at;
        state.pending.push(TraceEvent { at, event });
        if state.pending.len() >= self.bounds.events_per_frame {
            self.flush_locked(&mut state);
        }
        true
    }

    /// True once the run has recorded as many events as it may.
    pub fn is_full(&self) -> bool {
        let state = self.lock();
        state.n_events as usize + state.pending.len() >= self.bounds.max_events
    }

    /// Messages sent and not yet delivered or dropped.
    pub fn messages_in_flight(&self) -> u64 {
        self.lock().open.len() as u64
    }

    /// Sends the events recorded since the last flush as one frame.
    pub fn flush(&self) {
        let mut state = self.lock();
        self.flush_locked(&mut state);
    }

    fn flush_locked(&self, state: &mut LogState) {
        if state.pending.is_empty() {
            return;
        }
        let events = std::mem::take(&mut state.pending);
        for event in &events {
            state.hasher.add_event(event);
        }
        state.n_events += events.len() as u64;
        self.publish(state, &ServerFrame::Events { events }, false);
    }

    fn publish(&self, state: &mut LogState, frame: &ServerFrame, is_end: bool) {
        let json = match serde_json::to_string(frame) {
            Ok(json) => json,
            Err(err) => {
                // Trace types always serialize; should one ever fail, viewers see a hash mismatch.
                tracing::error!("cannot serialize a live frame: {err}");
                return;
            }
        };
        let frame = Arc::new(FrameText {
            json: json.into(),
            is_end,
        });
        state.history.push(frame.clone());
        // No receiver is fine: nobody watches yet.
        let _ = self.frames.send(frame);
    }

    /// Ends the trace: `run_ended`, the last events, and the `end` frame with the hash.
    /// Later calls do nothing.
    pub fn finish(&self, reason: EndReason) {
        let mut state = self.lock();
        if state.ended {
            return;
        }
        let at = self.now().max(state.last_at);
        let messages_in_flight = state.open.len() as u64;
        state.pending.push(TraceEvent {
            at,
            event: Event::RunEnded {
                reason,
                messages_in_flight,
            },
        });
        self.flush_locked(&mut state);
        state.ended = true;
        let end = ServerFrame::End {
            trace_hash: state.hasher.hex(),
            events: state.n_events,
        };
        self.publish(&mut state, &end, true);
        drop(state);
        self.ended.send_replace(true);
    }

    /// True once [`TraceLog::finish`] ran.
    pub fn is_finished(&self) -> bool {
        *self.ended.borrow()
    }

    /// Waits until the run has ended.
    pub async fn finished(&self) {
        let mut ended = self.ended.subscribe();
        // The sender lives as long as `self`, so this only returns once it is true.
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// The frames so far and a receiver of the ones after, taken together so that none is
    /// missed or repeated.
    pub fn subscribe(&self) -> Subscription {
        let state = self.lock();
        Subscription {
            replay: state.history.clone(),
            frames: self.frames.subscribe(),
        }
    }

    /// The trace recorded so far (flushed events only), parsed back from its frames.
    pub fn trace(&self) -> Trace {
        let history = self.lock().history.clone();
        let mut events = Vec::new();
        for frame in &history {
            if let Ok(ServerFrame::Events { events: batch }) =
                shared::json::from_str(frame.json.as_str())
            {
                events.extend(batch);
            }
        }
        Trace {
            header: self.header.clone(),
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{DropReason, MessageKind, ServiceId};

    fn log(frames_buffered: usize) -> TraceLog {
        let request = shared::protocol::RunRequest {
            scenario: "request-response".into(),
            seed: 1,
            until_s: 1.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let prepared = shared::scenario::prepare(&request, shared::scenario::Driver::Live).unwrap();
        let header = shared::world::trace_header(&prepared.run, &prepared.world);
        TraceLog::new(
            header,
            LogBounds {
                events_per_frame: 2,
                frames_buffered,
                max_events: 100,
            },
        )
        .unwrap()
    }

    fn sent(msg: u64) -> Event {
        Event::Sent {
            msg: MsgId(msg),
            from: ServiceId(0),
            to: ServiceId(1),
            kind: MessageKind::Request,
            label: "GET /orders/1".into(),
            op: None,
            caused_by: None,
        }
    }

    #[test]
    fn a_message_ends_once_and_only_after_it_was_sent() {
        let log = log(16);
        assert!(
            !log.record(Event::Delivered { msg: MsgId(1) }),
            "never sent"
        );
        assert!(log.record(sent(1)));
        assert_eq!(log.messages_in_flight(), 1);
        assert!(log.record(Event::Dropped {
            msg: MsgId(1),
            reason: DropReason::ReceiverDown
        }));
        assert!(
            !log.record(Event::Delivered { msg: MsgId(1) }),
            "ended already"
        );
        assert_eq!(log.messages_in_flight(), 0);
    }

    #[test]
    fn the_end_frame_hashes_what_viewers_received() {
        let log = log(16);
        let mut viewer = log.subscribe();
        for msg in 1..=5 {
            log.record(sent(msg));
        }
        log.finish(EndReason::Stopped);
        assert!(!log.record(sent(9)), "nothing after the end");
        let mut frames = viewer.replay;
        while let Ok(frame) = viewer.frames.try_recv() {
            frames.push(frame);
        }
        let parsed: Vec<ServerFrame> = frames
            .iter()
            .map(|f| shared::json::from_str(f.json.as_str()).unwrap())
            .collect();
        let mut hasher = TraceHasher::default();
        let mut times = Vec::new();
        for frame in &parsed {
            match frame {
                ServerFrame::Header(header) => hasher.add_header(header),
                ServerFrame::Events { events } => {
                    assert!(events.len() <= 2);
                    for event in events {
                        hasher.add_event(event);
                        times.push(event.at);
                    }
                }
                ServerFrame::End { trace_hash, events } => {
                    assert_eq!(*trace_hash, hasher.hex());
                    assert_eq!(*events, 6, "five sends and run_ended");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(frames.last().unwrap().is_end);
        assert_eq!(log.trace().events.len(), 6);
    }

    #[test]
    fn every_viewer_gets_the_same_bytes_of_a_frame() {
        let log = log(16);
        let mut first = log.subscribe();
        let mut second = log.subscribe();
        log.record(sent(1));
        log.record(sent(2));
        let (a, b) = (
            first.frames.try_recv().unwrap(),
            second.frames.try_recv().unwrap(),
        );
        // Serialized once: both point at one buffer, whatever they are cloned into.
        let (a, b) = ((*a).clone(), (*b).clone());
        assert_eq!(a.json.as_str().as_ptr(), b.json.as_str().as_ptr());
        assert_eq!(
            first.replay[0].json.as_str().as_ptr(),
            second.replay[0].json.as_str().as_ptr()
        );
    }

    #[test]
    fn a_lagging_viewer_is_told_and_a_new_subscription_has_everything() {
        let log = log(2);
        let mut slow = log.subscribe();
        for msg in 1..=20 {
            log.record(sent(msg));
        }
        let Err(broadcast::error::TryRecvError::Lagged(missed)) = slow.frames.try_recv() else {
            panic!("the slow viewer should have lagged");
        };
        assert_eq!(missed, 8, "ten frames sent, two kept");
        let again = log.subscribe();
        assert_eq!(again.replay.len(), 11, "the header and ten frames");
    }
}
