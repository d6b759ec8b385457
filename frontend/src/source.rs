//! Where traces come from, as plain logic: the simulation run in the page, and the frames of a
//! trace streamed by the backend, checked against the hash the backend sends at the end. The
//! WebSocket itself lives in [`crate::ws`].

use crate::computation::{Computation, ComputeTimes};
use crate::trace_index::TraceIndex;
use shared::float_text::fixed;
use shared::protocol::{LiveRole, PROTOCOL_VERSION, RunRequest, ServerFrame, TraceHasher};

/// What the status line says about the current run.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    /// Nothing asked yet.
    Idle,
    /// Waiting for the backend to answer.
    Connecting,
    /// Being computed in the page, a slice at a time; the beginning already plays.
    Computing {
        /// Events so far.
        events: usize,
        /// How far the run has got, in percent.
        percent: u8,
    },
    /// Computed in the page.
    Computed {
        /// Events in the trace.
        events: usize,
        /// The trace's hash.
        hash: String,
        /// How long computing took, when the clock measured it.
        times: Option<ComputeTimes>,
    },
    /// Part of the trace has arrived from the backend.
    Streaming {
        /// Events so far.
        events: u64,
        /// The hash of what arrived so far.
        hash: String,
    },
    /// The whole trace arrived and its hash matches the backend's.
    Verified {
        /// Events in the trace.
        events: u64,
        /// The trace's hash.
        hash: String,
    },
    /// The whole trace arrived but its hash differs from the backend's.
    Mismatch {
        /// Events received.
        events: u64,
        /// The hash of what arrived.
        hash: String,
        /// The hash the backend announced.
        expected: String,
    },
    /// A recorded trace file was read.
    Recorded {
        /// Events in the trace.
        events: usize,
        /// The trace's hash.
        hash: String,
        /// Where it came from: a file name or an address.
        from: String,
    },
    /// The run could not be shown.
    Failed {
        /// What went wrong and what to do, for the person watching.
        message: String,
        /// The hash of whatever arrived before the failure.
        hash: Option<String>,
    },
}

/// The message shown when the backend cannot be reached.
pub const BACKEND_UNREACHABLE: &str = "Backend not reachable — start it with `crosstalk serve` (or choose \"In the page\" as the source), then press Run.";

impl RunStatus {
    /// What the map says while it has no run: a run refused or failed points to the status
    /// line, which says why (it may be far below the map on a narrow page).
    pub fn map_placeholder(&self) -> &'static str {
        match self {
            RunStatus::Failed { .. } => "This run could not be shown: the status line says why.",
            _ => "No run to show yet.",
        }
    }

    /// The status line, as plain text (the hash included).
    pub fn line(&self) -> String {
        let (before, after) = self.line_parts();
        let hash = self.hash();
        if hash.is_empty() {
            format!("{before}{after}")
        } else {
            format!("{before} {hash}{after}")
        }
    }

    /// The status line around the hash: the page shows the hash itself in `#trace-hash`
    /// between these two parts.
    pub fn line_parts(&self) -> (String, String) {
        match self {
            RunStatus::Idle => (
                "Choose a scenario and press Run.".to_string(),
                String::new(),
            ),
            RunStatus::Connecting => ("Connecting to the backend…".to_string(), String::new()),
            RunStatus::Computing { events, percent } => (
                format!("Computing in the page: {percent} % ({events} events so far)…"),
                String::new(),
            ),
            RunStatus::Computed { events, times, .. } => {
                let took = times.map_or(String::new(), |t| {
                    format!(
                        " in {} ms ({} ms of it computing)",
                        fixed(t.elapsed_ms, 0),
                        fixed(t.working_ms, 0)
                    )
                });
                (
                    format!("Computed in the page{took}: {events} events, trace"),
                    String::new(),
                )
            }
            RunStatus::Recorded { events, from, .. } => (
                format!("Recorded trace from {from}: {events} events, trace"),
                String::new(),
            ),
            RunStatus::Streaming { events, .. } => (
                format!("Streaming from the backend: {events} events so far, trace"),
                "…".to_string(),
            ),
            RunStatus::Verified { events, .. } => (
                format!("Streamed from the backend: {events} events, trace"),
                " (hash verified)".to_string(),
            ),
            RunStatus::Mismatch {
                events, expected, ..
            } => (
                format!("Streamed from the backend: {events} events, but what arrived hashes to"),
                format!(
                    " while the backend announced {expected}: something was lost or changed on \
                     the way."
                ),
            ),
            RunStatus::Failed { message, hash } => (
                message.clone(),
                if hash.is_some() {
                    " (what arrived before the failure)".to_string()
                } else {
                    String::new()
                },
            ),
        }
    }

    /// The hash to show: of the whole trace, or of what has arrived so far.
    pub fn hash(&self) -> &str {
        match self {
            RunStatus::Computed { hash, .. }
            | RunStatus::Recorded { hash, .. }
            | RunStatus::Streaming { hash, .. }
            | RunStatus::Verified { hash, .. }
            | RunStatus::Mismatch { hash, .. } => hash,
            RunStatus::Failed {
                hash: Some(hash), ..
            } => hash,
            _ => "",
        }
    }

    /// The `data-ready` attribute of `#trace-hash`: `true` once the whole trace is here (and,
    /// when streamed, its hash matched), `mismatch` when it did not, else `false`.
    pub fn ready(&self) -> &'static str {
        match self {
            RunStatus::Computed { .. }
            | RunStatus::Recorded { .. }
            | RunStatus::Verified { .. } => "true",
            RunStatus::Mismatch { .. } => "mismatch",
            _ => "false",
        }
    }

    /// How far a computation in the page has got, in percent, while it computes.
    pub fn computing_percent(&self) -> Option<u8> {
        match self {
            RunStatus::Computing { percent, .. } => Some(*percent),
            _ => None,
        }
    }

    /// True when the line reports a problem.
    pub fn is_problem(&self) -> bool {
        matches!(self, RunStatus::Mismatch { .. } | RunStatus::Failed { .. })
    }
}

/// Runs `request` in the page at once: the whole trace, indexed, and its hash.
pub fn compute_in_page(request: &RunRequest) -> Result<(TraceIndex, String), String> {
    let mut computation = Computation::start(request)?;
    let mut index = TraceIndex::new(computation.header().clone());
    while !computation.is_finished() {
        index.append(computation.slice(COMPUTE_SLICE_STEPS));
    }
    index.finish();
    Ok((index, computation.hash_hex()))
}

/// Pieces of simulation work between two looks at the clock while computing in the page.
pub const COMPUTE_SLICE_STEPS: usize = 256;

/// What a frame changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamChange {
    /// A new trace began: views start over.
    NewTrace,
    /// More events arrived.
    MoreEvents,
    /// The trace is complete.
    Complete,
    /// Nothing more will come for this run.
    Failed,
    /// The viewer fell behind a live run: the run is sent again from its header, which follows.
    Resynced,
    /// What this viewer may do with the live run that follows.
    Role(LiveRole),
    /// A live command was refused; the run goes on.
    Refused(String),
}

/// Follows one streamed run: builds the index from the backend's frames and checks its hash.
#[derive(Clone, Debug)]
pub struct StreamReceiver {
    hasher: TraceHasher,
    events: u64,
    opened: bool,
    status: RunStatus,
    /// Set once the backend said this is a live run: its refusals then concern commands, not
    /// the stream.
    live: bool,
}

impl Default for StreamReceiver {
    fn default() -> Self {
        StreamReceiver {
            hasher: TraceHasher::default(),
            events: 0,
            opened: false,
            status: RunStatus::Connecting,
            live: false,
        }
    }
}

impl StreamReceiver {
    /// What the status line says now.
    pub fn status(&self) -> &RunStatus {
        &self.status
    }

    /// True once the run has ended, well or badly.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status,
            RunStatus::Verified { .. } | RunStatus::Mismatch { .. } | RunStatus::Failed { .. }
        )
    }

    /// The socket opened.
    pub fn on_open(&mut self) {
        self.opened = true;
    }

    /// One text frame from the socket.
    pub fn on_text(&mut self, text: &str, index: &mut Option<TraceIndex>) -> StreamChange {
        match shared::json::from_str::<ServerFrame>(text) {
            Ok(frame) => self.on_frame(frame, index),
            Err(error) => self.fail(format!(
                "The backend sent a message this page cannot read ({error}). Are the page and \
                 the backend from the same build?"
            )),
        }
    }

    /// One frame from the backend.
    pub fn on_frame(&mut self, frame: ServerFrame, index: &mut Option<TraceIndex>) -> StreamChange {
        if self.is_finished() {
            return StreamChange::Failed;
        }
        match frame {
            ServerFrame::Header(header) => {
                if header.protocol_version != PROTOCOL_VERSION {
                    return self.fail(format!(
                        "The backend speaks trace format version {}; this page reads version \
                         {PROTOCOL_VERSION}. Rebuild one of them.",
                        header.protocol_version
                    ));
                }
                self.hasher = TraceHasher::default();
                self.hasher.add_header(&header);
                self.events = 0;
                *index = Some(TraceIndex::new(header));
                self.status = self.streaming();
                StreamChange::NewTrace
            }
            ServerFrame::Events { events } => {
                let Some(index) = index.as_mut() else {
                    return self.fail(
                        "The backend sent events before a header; this page cannot place them."
                            .to_string(),
                    );
                };
                for event in &events {
                    self.hasher.add_event(event);
                }
                self.events += events.len() as u64;
                index.append(events);
                self.status = self.streaming();
                StreamChange::MoreEvents
            }
            ServerFrame::End { trace_hash, .. } => {
                let Some(index) = index.as_mut() else {
                    return self.fail("The backend ended a run it never began.".to_string());
                };
                index.finish();
                let hash = self.hasher.hex();
                self.status = if hash == trace_hash {
                    RunStatus::Verified {
                        events: self.events,
                        hash,
                    }
                } else {
                    RunStatus::Mismatch {
                        events: self.events,
                        hash,
                        expected: trace_hash,
                    }
                };
                StreamChange::Complete
            }
            ServerFrame::Error { message } if self.live => StreamChange::Refused(message),
            ServerFrame::Error { message } => {
                self.fail(format!("The backend refused the run: {message}"))
            }
            ServerFrame::Resync { .. } => StreamChange::Resynced,
            ServerFrame::LiveRole(role) => {
                self.live = true;
                StreamChange::Role(role)
            }
        }
    }

    /// The socket reported an error or closed. Before the end of the trace, that is a failure.
    pub fn on_closed(&mut self) -> StreamChange {
        if self.is_finished() {
            return StreamChange::Failed;
        }
        let message = if !self.opened {
            BACKEND_UNREACHABLE.to_string()
        } else if matches!(self.status, RunStatus::Connecting) {
            "The backend closed the connection before sending a trace. Is `crosstalk serve` \
             still running?"
                .to_string()
        } else {
            format!(
                "The backend closed the connection after {} events, before the trace ended. \
                 Is `crosstalk serve` still running?",
                self.events
            )
        };
        self.fail(message)
    }

    fn streaming(&self) -> RunStatus {
        RunStatus::Streaming {
            events: self.events,
            hash: self.hasher.hex(),
        }
    }

    fn fail(&mut self, message: String) -> StreamChange {
        let hash = (self.events > 0).then(|| self.hasher.hex());
        self.status = RunStatus::Failed { message, hash };
        StreamChange::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::Trace;

    fn trace() -> Trace {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 4,
            until_s: 5.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        engine::simulate(&request).unwrap()
    }

    /// The frames a backend sends for `trace`, in chunks of 100 events.
    fn frames(trace: &Trace) -> Vec<ServerFrame> {
        let mut frames = vec![ServerFrame::Header(trace.header.clone())];
        for chunk in trace.events.chunks(100) {
            frames.push(ServerFrame::Events {
                events: chunk.to_vec(),
            });
        }
        frames.push(ServerFrame::End {
            trace_hash: trace.hash_hex(),
            events: trace.events.len() as u64,
        });
        frames
    }

    /// Feeds `frames` as JSON text, as the socket delivers them.
    fn receive(frames: &[ServerFrame]) -> (StreamReceiver, Option<TraceIndex>, Vec<StreamChange>) {
        let mut receiver = StreamReceiver::default();
        receiver.on_open();
        let mut index = None;
        let changes = frames
            .iter()
            .map(|f| receiver.on_text(&serde_json::to_string(f).unwrap(), &mut index))
            .collect();
        (receiver, index, changes)
    }

    #[test]
    fn the_map_points_to_the_status_line_when_a_run_cannot_be_shown() {
        let refused = RunStatus::Failed {
            message: "This run cannot start: publish=outbox needs idempotent=1".into(),
            hash: None,
        };
        assert!(refused.map_placeholder().contains("status line"));
        assert_eq!(RunStatus::Idle.map_placeholder(), "No run to show yet.");
        assert_eq!(
            RunStatus::Connecting.map_placeholder(),
            "No run to show yet."
        );
    }

    #[test]
    fn a_streamed_trace_equals_the_one_computed_in_the_page() {
        let trace = trace();
        let (receiver, index, changes) = receive(&frames(&trace));
        assert_eq!(changes.first(), Some(&StreamChange::NewTrace));
        assert_eq!(changes.last(), Some(&StreamChange::Complete));
        let index = index.unwrap();
        assert!(index.is_complete());
        assert_eq!(index.events().to_vec(), trace.events);
        let status = receiver.status();
        assert_eq!(status.ready(), "true");
        assert_eq!(status.hash(), trace.hash_hex());
        assert!(
            status.line().ends_with("(hash verified)"),
            "{}",
            status.line()
        );
        let (_, in_page_hash) = compute_in_page(&RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 4,
            until_s: 5.0,
            knobs: Default::default(),
            faults: Vec::new(),
        })
        .unwrap();
        assert_eq!(
            in_page_hash,
            status.hash(),
            "both sources show the same run"
        );
    }

    #[test]
    fn a_changed_trace_is_reported_as_a_mismatch() {
        let trace = trace();
        let mut frames = frames(&trace);
        if let ServerFrame::Events { events } = &mut frames[1] {
            events.pop();
        }
        let (receiver, _, _) = receive(&frames);
        assert_eq!(receiver.status().ready(), "mismatch");
        assert!(receiver.status().is_problem());
        assert!(receiver.status().line().contains(&trace.hash_hex()));
    }

    #[test]
    fn failures_explain_themselves() {
        let check = |frames: &[ServerFrame], close: bool, opened: bool, expected: &str| {
            let mut receiver = StreamReceiver::default();
            if opened {
                receiver.on_open();
            }
            let mut index = None;
            for frame in frames {
                receiver.on_frame(frame.clone(), &mut index);
            }
            if close {
                receiver.on_closed();
            }
            let line = receiver.status().line();
            assert!(
                line.contains(expected),
                "{line:?} should contain {expected:?}"
            );
            assert_eq!(receiver.status().ready(), "false");
        };
        let trace = trace();
        let all = frames(&trace);
        check(
            &[],
            true,
            false,
            "Backend not reachable — start it with `crosstalk serve`",
        );
        check(&[], true, true, "before sending a trace");
        check(
            &all[..2],
            true,
            true,
            "after 100 events, before the trace ended",
        );
        check(
            &[ServerFrame::Error {
                message: "unknown scenario \"x\"".into(),
            }],
            false,
            true,
            "refused the run: unknown scenario",
        );
        check(&all[1..2], false, true, "events before a header");
        let mut old = trace.header.clone();
        old.protocol_version = 0;
        check(&[ServerFrame::Header(old)], false, true, "version 0");
        let mut receiver = StreamReceiver::default();
        receiver.on_open();
        assert_eq!(
            receiver.on_text("{nonsense", &mut None),
            StreamChange::Failed
        );
        assert!(receiver.status().line().contains("cannot read"));
    }

    #[test]
    fn status_lines_read_well() {
        let computed = RunStatus::Computed {
            events: 906,
            hash: "778673e14573c882".into(),
            times: Some(ComputeTimes {
                elapsed_ms: 20.2,
                working_ms: 12.4,
            }),
        };
        assert_eq!(
            computed.line(),
            "Computed in the page in 20 ms (12 ms of it computing): 906 events, trace 778673e14573c882"
        );
        assert_eq!(computed.ready(), "true");
        // A clock that stood still (virtual time) is not read as "0 ms".
        let unmeasured = RunStatus::Computed {
            events: 906,
            hash: "778673e14573c882".into(),
            times: None,
        };
        assert_eq!(
            unmeasured.line(),
            "Computed in the page: 906 events, trace 778673e14573c882"
        );
        let idle = RunStatus::Idle;
        assert_eq!(idle.line(), "Choose a scenario and press Run.");
        assert_eq!((idle.hash(), idle.ready()), ("", "false"));
    }

    #[test]
    fn a_close_after_the_end_changes_nothing() {
        let (mut receiver, _, _) = receive(&frames(&trace()));
        receiver.on_closed();
        assert_eq!(receiver.status().ready(), "true");
    }
}
