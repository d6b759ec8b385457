//! `/ws`: a viewer asks for runs and receives their traces as [`ServerFrame`]s.
//!
//! Each socket has a receive half, which reads the viewer's [`ClientFrame`]s and starts runs, and
//! a send half, which forwards the current run's frames; the two are joined with `select!`, so
//! when either ends the other is dropped. A simulated run is computed on a blocking thread and
//! handed over through a bounded channel: a viewer that reads slowly only slows its own run. A
//! new `run` drops the receiver of the old one, which stops the old run at its next frame.
//!
//! A live run is shared: every viewer watching it reads the same frames from a bounded broadcast,
//! so the services never wait for a viewer. A viewer that lags behind the broadcast is sent a
//! `resync` frame and the run again from its header. In a crowd, each viewer's writes are paced
//! by the server's write budget ([`crate::ViewerWriteBudget`]) and carry every frame that came
//! meanwhile, so the server's writes per second stay bounded however many watch.

use crate::error::HttpError;
use crate::live::LiveRun;
use crate::live::trace_log::{SharedFrame, Subscription, TraceLog};
use crate::state::{AppState, Busy, ControlHold, StartLiveError, ViewerPlace};
use crate::stream::{FrameText, StreamStopped, stream_frames};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientFrame, LiveRole, RunRequest, ServerFrame};
use shared::scenario::ScenarioError;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, error, info};

/// Commands from the receive half to the send half, kept in order so an error about a frame
/// reaches the viewer after everything asked for before it.
#[derive(Debug)]
enum Command {
    /// Forward this run's frames from now on, dropping the run in progress.
    Stream(mpsc::Receiver<FrameText>),
    /// Say what the viewer may do with a live run, then forward its frames from its header on,
    /// dropping the run in progress.
    Watch { role: LiveRole, feed: LiveFeed },
    /// Tell the viewer its last frame was refused.
    Refuse(String),
}

/// A live run's frames for one viewer: what happened before it joined, then the broadcast.
struct LiveFeed {
    replay: VecDeque<SharedFrame>,
    frames: broadcast::Receiver<SharedFrame>,
    log: Arc<TraceLog>,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("replay", &self.replay.len())
            .finish_non_exhaustive()
    }
}

impl LiveFeed {
    fn new(subscription: Subscription, log: Arc<TraceLog>) -> LiveFeed {
        LiveFeed {
            replay: subscription.replay.into(),
            frames: subscription.frames,
            log,
        }
    }

    /// The next frame; after a lag, a `resync` frame and then the run again from its header.
    async fn next(&mut self) -> Option<FrameText> {
        if let Some(frame) = self.replay.pop_front() {
            return Some((*frame).clone());
        }
        match self.frames.recv().await {
            Ok(frame) => Some((*frame).clone()),
            Err(broadcast::error::RecvError::Lagged(missed_frames)) => {
                Some(self.resync(missed_frames))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next frame if one is there already, as [`LiveFeed::next`] would return it.
    fn try_next(&mut self) -> Option<FrameText> {
        if let Some(frame) = self.replay.pop_front() {
            return Some((*frame).clone());
        }
        match self.frames.try_recv() {
            Ok(frame) => Some((*frame).clone()),
            Err(broadcast::error::TryRecvError::Lagged(missed_frames)) => {
                Some(self.resync(missed_frames))
            }
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                None
            }
        }
    }

    /// Starts the run over from its header after falling `missed_frames` behind, and returns
    /// the `resync` frame that tells the viewer so.
    fn resync(&mut self, missed_frames: u64) -> FrameText {
        debug!("a viewer fell {missed_frames} frame(s) behind a live run: resyncing it");
        let subscription = self.log.subscribe();
        self.replay = subscription.replay.into();
        self.frames = subscription.frames;
        FrameText {
            json: frame_json(&ServerFrame::Resync { missed_frames }).into(),
            is_end: false,
        }
    }
}

/// Where the send half takes frames from.
enum Source {
    Simulated(mpsc::Receiver<FrameText>),
    Live(LiveFeed),
}

/// How many commands may wait for the send half; the receive half waits beyond that.
const COMMANDS_BUFFERED: usize = 4;

/// The most frames one write to a socket takes (those waiting beyond it go in the next), so a
/// late joiner's replay of a long run is written a slice at a time, like the run itself.
const FRAMES_PER_WRITE_MAX: usize = 64;

/// The address a request came from, when the server was started with connection info.
pub(crate) struct PeerAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// Upgrades to a WebSocket if the page and host are allowed (403 otherwise) and a viewer place
/// is free, overall (503 otherwise) and for its address (429 otherwise).
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, HttpError> {
    state.config().access.check(&headers)?;
    let place = state.try_admit_viewer(peer)?;
    // A frame is never larger than a message, so no socket makes the server buffer more.
    let bytes_max = state.config().control_frame_bytes_max;
    let ws = ws
        .max_message_size(bytes_max)
        .max_frame_size(bytes_max)
        .read_buffer_size(VIEWER_READ_BUFFER_BYTES)
        .write_buffer_size(VIEWER_WRITE_BUFFER_BYTES);
    Ok(ws
        .on_failed_upgrade(|err| debug!("a viewer's upgrade failed: {err}"))
        .on_upgrade(move |socket| watch(socket, state, place)))
}

/// The read buffer each socket holds from the start (the socket library's default is 128 KiB):
/// a viewer sends small commands, and a larger message is read in more pieces. A thousand
/// viewers hold a thousand of these.
const VIEWER_READ_BUFFER_BYTES: usize = 8 * 1024;

/// A batch of frames is written out once its bytes reach this (the rest at the flush), so a
/// socket's write buffer keeps at most this much and one frame (the default is 128 KiB).
const VIEWER_WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// How long the server tries to say goodbye to a viewer it closes.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves one viewer until it leaves, its socket fails, it stops answering pings, or the server
/// stops.
async fn watch(socket: WebSocket, state: AppState, place: ViewerPlace) {
    debug!(viewers = state.viewers_connected(), "a viewer connected");
    let (mut sink, stream) = socket.split();
    let (commands_sender, commands) = mpsc::channel(COMMANDS_BUFFERED);
    let mut stopping = state.stopping();
    let unanswered_pings = AtomicU32::new(0);
    let close = tokio::select! {
        close = send_frames(&mut sink, commands, &state, &unanswered_pings) => close,
        () = receive_frames(stream, commands_sender, &state, &unanswered_pings) => None,
        _ = stopping.wait_for(|stopping| *stopping) => Some(CloseFrame {
            code: close_code::AWAY,
            reason: "the server is shutting down".into(),
        }),
    };
    // Closing is best effort: the viewer may be gone, or too slow to take even this.
    let closing = async {
        if let Some(frame) = close {
            let _ = sink.send(Message::Close(Some(frame))).await;
        }
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, closing).await;
    drop(place);
    debug!(viewers = state.viewers_connected(), "a viewer left");
}

/// Forwards frames of the current run and refusals, until the receive half ends or the socket
/// fails. Returns the close frame to send, if the viewer is dropped for a reason of ours.
///
/// Every frame waiting when a write begins goes out in that write (up to
/// [`FRAMES_PER_WRITE_MAX`]). After a write to a live run's viewer, the next frame waits for the
/// viewer's share of the server's write budget ([`crate::ViewerWriteBudget`]), so in a crowd
/// each write carries the frames of that pause. What waits meanwhile is the live run's bounded
/// broadcast, shared by every viewer: a viewer overtaken by it is resynchronized as before.
async fn send_frames(
    sink: &mut SplitSink<WebSocket, Message>,
    mut commands: mpsc::Receiver<Command>,
    state: &AppState,
    unanswered_pings: &AtomicU32,
) -> Option<CloseFrame> {
    let config = state.config();
    let timeout = config.viewer_send_timeout;
    let mut pings = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_every,
        config.ping_every,
    );
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut current: Option<Source> = None;
    let mut last_was_end = true;
    // No frame of a live run is written before then (the write budget's pause).
    let mut next_write_at = tokio::time::Instant::now();
    let mut batch: Vec<Message> = Vec::with_capacity(FRAMES_PER_WRITE_MAX);
    loop {
        tokio::select! {
            // Commands first, so a new run replaces the old one without waiting for its frames.
            biased;
            _ = pings.tick() => {
                if unanswered_pings.fetch_add(1, Ordering::Relaxed) >= config.pings_unanswered_max {
                    debug!("a viewer left {} pings unanswered: closing it", config.pings_unanswered_max);
                    return Some(CloseFrame {
                        code: close_code::POLICY,
                        reason: "no answer to pings".into(),
                    });
                }
                batch.push(Message::Ping(Default::default()));
            }
            command = commands.recv() => match command? {
                Command::Stream(frames) => {
                    current = Some(Source::Simulated(frames));
                    last_was_end = false;
                    continue;
                }
                Command::Watch { role, feed } => {
                    current = Some(Source::Live(feed));
                    last_was_end = false;
                    batch.push(Message::Text(frame_json(&ServerFrame::LiveRole(role)).into()));
                }
                Command::Refuse(message) => batch.push(Message::Text(error_frame(message).into())),
            },
            frame = async {
                if next_write_at > tokio::time::Instant::now() {
                    tokio::time::sleep_until(next_write_at).await;
                }
                next_frame(&mut current).await
            } => match frame {
                Some(frame) => {
                    batch.push(take_frame(frame, &mut current, &mut last_was_end));
                    // The frames that came meanwhile go out in the same write.
                    while batch.len() < FRAMES_PER_WRITE_MAX && !last_was_end {
                        let Some(frame) = try_next_frame(&mut current) else {
                            break;
                        };
                        batch.push(take_frame(frame, &mut current, &mut last_was_end));
                    }
                }
                None => {
                    current = None;
                    if last_was_end {
                        continue;
                    }
                    // The run's thread ended without its last frame: it failed, and was logged.
                    last_was_end = true;
                    batch.push(Message::Text(
                        error_frame("the run stopped early because of a server error".into())
                            .into(),
                    ));
                }
            },
        };
        match tokio::time::timeout(timeout, write_all(sink, &mut batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                debug!("a viewer's socket failed: {err}");
                return None;
            }
            Err(_) => {
                info!(
                    "a viewer took more than {timeout:?} to take a frame: dropping it so its run stops"
                );
                return Some(CloseFrame {
                    code: close_code::AGAIN,
                    reason: "too slow: the viewer did not keep up".into(),
                });
            }
        }
        // A viewer catching up (joining late, or after a resync) is not held back: it must
        // reach the broadcast before the broadcast overtakes it.
        if let Some(Source::Live(feed)) = &current
            && feed.replay.is_empty()
        {
            let wait = config.viewer_writes.wait(state.viewers_connected());
            if !wait.is_zero() {
                next_write_at = tokio::time::Instant::now() + wait;
            }
        }
    }
}

/// `frame` as a message; once the run's `end` is taken there is no current run any more.
fn take_frame(frame: FrameText, current: &mut Option<Source>, last_was_end: &mut bool) -> Message {
    *last_was_end = frame.is_end;
    if frame.is_end {
        // A live run's broadcast stays open after its end; nothing more comes.
        *current = None;
    }
    Message::Text(frame.json)
}

/// Writes `batch` (emptying it) to the socket with one flush: the socket library gathers the
/// messages in its write buffer, so a batch costs one system call where it fits.
async fn write_all(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut Vec<Message>,
) -> Result<(), axum::Error> {
    for message in batch.drain(..) {
        sink.feed(message).await?;
    }
    sink.flush().await
}

/// An `error` frame as JSON.
fn error_frame(message: String) -> String {
    frame_json(&ServerFrame::Error { message })
}

/// A frame of a few string fields as JSON: that cannot fail.
fn frame_json(frame: &ServerFrame) -> String {
    serde_json::to_string(frame).expect("a small frame serializes")
}

/// The current run's next frame if it is there already.
fn try_next_frame(current: &mut Option<Source>) -> Option<FrameText> {
    match current {
        Some(Source::Simulated(frames)) => frames.try_recv().ok(),
        Some(Source::Live(feed)) => feed.try_next(),
        None => None,
    }
}

/// The next frame of the current run, or never when there is none.
async fn next_frame(current: &mut Option<Source>) -> Option<FrameText> {
    match current {
        Some(Source::Simulated(frames)) => frames.recv().await,
        Some(Source::Live(feed)) => feed.next().await,
        None => std::future::pending().await,
    }
}

/// Reads the viewer's frames and turns each into a command, until the viewer closes.
async fn receive_frames(
    mut stream: SplitStream<WebSocket>,
    commands: mpsc::Sender<Command>,
    state: &AppState,
    unanswered_pings: &AtomicU32,
) {
    // This socket's hold on the control of the live run it started, if it did.
    let mut control: Option<ControlHold> = None;
    while let Some(message) = stream.next().await {
        let answer = match message {
            Ok(Message::Text(text)) => command_for(text.as_str(), state, &mut control).await,
            Ok(Message::Binary(_)) => vec![Command::Refuse(
                "binary frames are not understood: send JSON text frames such as \
                 {\"type\":\"run\",\"scenario\":\"request-response\",\"seed\":1,\"until_s\":30}"
                    .into(),
            )],
            Ok(Message::Pong(_)) => {
                unanswered_pings.store(0, Ordering::Relaxed);
                continue;
            }
            // Pings are answered by the socket itself.
            Ok(Message::Ping(_)) => continue,
            Ok(Message::Close(_)) => return,
            Err(err) => {
                debug!("a viewer's socket failed while reading: {err}");
                return;
            }
        };
        for command in answer {
            if commands.send(command).await.is_err() {
                return;
            }
        }
    }
}

/// What to do about one text frame from the viewer; nothing for a live command that was taken
/// (its effect shows in the live trace). `control` is the socket's hold on the control of the
/// live run it started.
async fn command_for(
    text: &str,
    state: &AppState,
    control: &mut Option<ControlHold>,
) -> Vec<Command> {
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(err) => {
            return vec![Command::Refuse(format!(
                "cannot read the frame: {err}; expected JSON such as \
                 {{\"type\":\"run\",\"scenario\":\"request-response\",\"seed\":1,\"until_s\":30}}"
            ))];
        }
    };
    let held = control.as_ref().map(|hold| hold.token.clone());
    let token_of = |token: Option<String>| token.or_else(|| held.clone());
    match frame {
        ClientFrame::Run(request) => vec![match start_run(request, state).await {
            Ok(frames) => Command::Stream(frames),
            Err(err) => Command::Refuse(err.to_string()),
        }],
        ClientFrame::LiveStart { request, token } => {
            let token = token_of(token);
            match state.start_live(&request, token.as_deref()).await {
                Ok((run, hold)) => {
                    info!(scenario = %request.scenario, "a viewer started a live run");
                    let role = LiveRole::Control {
                        token: hold.token.clone(),
                    };
                    *control = Some(hold);
                    vec![watch_live(&run, role)]
                }
                // Someone else's run goes on: this viewer is told, and watches it.
                Err(err @ StartLiveError::Watching(_)) => {
                    let mut answer = vec![Command::Refuse(err.to_string())];
                    if let Some(run) = state.live() {
                        let role = state.live_role(token.as_deref());
                        answer.push(watch_live(&run, role));
                    }
                    answer
                }
                Err(err @ StartLiveError::Failed(_)) => vec![Command::Refuse(err.to_string())],
            }
        }
        ClientFrame::LiveWatch => vec![match state.live() {
            Some(run) => watch_live(&run, state.live_role(held.as_deref())),
            None => Command::Refuse(NO_LIVE_RUN.into()),
        }],
        ClientFrame::LiveControl { command, token } => {
            let Some(run) = state.live() else {
                return vec![Command::Refuse(NO_LIVE_RUN.into())];
            };
            if let LiveRole::Watch { reason } = state.live_role(token_of(token).as_deref()) {
                return vec![Command::Refuse(format!(
                    "the command was not taken: {reason}"
                ))];
            }
            match run.command(command) {
                Ok(()) => Vec::new(),
                Err(err) => vec![Command::Refuse(err.to_string())],
            }
        }
    }
}

/// Watching `run` with `role`.
fn watch_live(run: &LiveRun, role: LiveRole) -> Command {
    Command::Watch {
        role,
        feed: LiveFeed::new(run.subscribe(), run.log().clone()),
    }
}

/// The refusal of a live command when no live run was ever started.
const NO_LIVE_RUN: &str = "no live run has been started: send {\"type\":\"live_start\",…} first";

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The request was wrong; the message says how.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Too many simulations are being computed.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The run's thread failed before it could say; that is logged.
    #[error("the run could not start because of a server error")]
    Engine,
}

/// Checks `request` and starts computing its run on a blocking thread.
async fn start_run(
    request: RunRequest,
    state: &AppState,
) -> Result<mpsc::Receiver<FrameText>, StartError> {
    let place = state.simulation_place().await?;
    let config = state.config();
    let (frames_sender, frames) = mpsc::channel(config.frames_buffered.max(1));
    let (started_sender, started) = oneshot::channel();
    let events_per_frame = config.events_per_frame;
    let run = tokio::task::spawn_blocking(move || {
        let _place = place;
        // The run is checked here because a `Sim` must stay on the thread that drives it.
        let sim = match engine::start(&request) {
            Ok(sim) => sim,
            Err(err) => {
                let _ = started_sender.send(Err(err));
                return;
            }
        };
        let _ = started_sender.send(Ok(()));
        info!(
            scenario = %request.scenario,
            seed = request.seed,
            until_s = request.until_s,
            "streaming a run"
        );
        match stream_frames(sim, events_per_frame, &frames_sender) {
            Ok(()) => debug!("a run was streamed to its end"),
            Err(StreamStopped::Cancelled) => debug!("a run was cancelled by its viewer"),
            Err(err @ StreamStopped::Serialize(_)) => error!("a run stopped: {err}"),
        }
    });
    tokio::spawn(async move {
        if let Err(err) = run.await {
            error!("a run's thread failed: {err}");
        }
    });
    match started.await {
        Ok(Ok(())) => Ok(frames),
        Ok(Err(err)) => Err(err.into()),
        Err(_) => Err(StartError::Engine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::trace_log::LogBounds;
    use shared::protocol::{EndReason, Event, TraceHasher};

    fn log() -> Arc<TraceLog> {
        let request = RunRequest {
            scenario: "request-response".into(),
            seed: 1,
            until_s: 1.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let prepared = shared::scenario::prepare(&request, shared::scenario::Driver::Live).unwrap();
        let header = shared::world::trace_header(&prepared.run, &prepared.world);
        let bounds = LogBounds {
            events_per_frame: 1,
            frames_buffered: 2,
            max_events: 1_000,
        };
        Arc::new(TraceLog::new(header, bounds).unwrap())
    }

    fn narrate(log: &TraceLog, n: usize) {
        log.record(Event::Narration {
            text: format!("event {n}"),
        });
    }

    #[tokio::test]
    async fn a_viewer_taking_waiting_frames_is_resynchronized_as_one_waiting_for_them() {
        let log = log();
        let mut feed = LiveFeed::new(log.subscribe(), log.clone());
        assert!(
            feed.try_next()
                .unwrap()
                .json
                .as_str()
                .starts_with(r#"{"type":"header""#)
        );
        assert_eq!(feed.try_next(), None, "nothing more yet");
        narrate(&log, 0);
        let frame = feed.try_next().unwrap();
        assert!(frame.json.as_str().contains("event 0"), "{frame:?}");
        for n in 1..10 {
            narrate(&log, n);
        }
        let resync = feed.try_next().unwrap();
        assert_eq!(
            shared::json::from_str::<ServerFrame>(resync.json.as_str()).unwrap(),
            ServerFrame::Resync { missed_frames: 7 }
        );
        // The run again from its header: the header and the ten events so far, then nothing.
        let replayed: Vec<FrameText> = std::iter::from_fn(|| feed.try_next()).collect();
        assert_eq!(replayed.len(), 11);
        assert!(replayed[0].json.as_str().starts_with(r#"{"type":"header""#));
        assert!(replayed[10].json.as_str().contains("event 9"));
    }

    #[tokio::test]
    async fn a_lagging_viewer_is_told_then_sent_the_whole_run_again() {
        let log = log();
        let mut feed = LiveFeed::new(log.subscribe(), log.clone());
        let header = feed.next().await.unwrap();
        assert!(header.json.as_str().starts_with(r#"{"type":"header""#));
        for n in 0..10 {
            narrate(&log, n);
        }
        let resync = feed.next().await.unwrap();
        assert_eq!(
            shared::json::from_str::<ServerFrame>(resync.json.as_str()).unwrap(),
            ServerFrame::Resync { missed_frames: 8 }
        );
        // After the resync: the header, every event from the start, new ones as they come, and
        // the end with its hash.
        let mut frames = Vec::new();
        for _ in 0..11 {
            frames.push(feed.next().await.unwrap());
        }
        for n in 10..12 {
            narrate(&log, n);
            frames.push(feed.next().await.unwrap());
        }
        log.finish(EndReason::Stopped);
        frames.push(feed.next().await.unwrap());
        frames.push(feed.next().await.unwrap());
        assert!(frames.last().unwrap().is_end, "the run's end arrives");
        let mut hasher = TraceHasher::default();
        let mut texts = Vec::new();
        for frame in frames {
            match shared::json::from_str::<ServerFrame>(frame.json.as_str()).unwrap() {
                ServerFrame::Header(header) => hasher.add_header(&header),
                ServerFrame::Events { events } => {
                    for event in &events {
                        hasher.add_event(event);
                        if let Event::Narration { text } = &event.event {
                            texts.push(text.clone());
                        }
                    }
                }
                ServerFrame::End { trace_hash, events } => {
                    assert_eq!(trace_hash, hasher.hex());
                    assert_eq!(events, 13);
                    assert!(frame.is_end);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let expected: Vec<String> = (0..12).map(|n| format!("event {n}")).collect();
        assert_eq!(texts, expected, "nothing missed, nothing repeated");
    }
}
