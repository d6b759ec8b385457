//! `/ws`: a viewer asks for runs and receives their traces as [`ServerFrame`]s.
//!
//! Each socket has a receive half, which reads the viewer's [`ClientFrame`]s and starts runs, and
//! a send half, which forwards the current run's frames; the two are joined with `select!`, so
//! when either ends the other is dropped. A run is computed on a blocking thread and handed over
//! through a bounded channel: a viewer that reads slowly only slows its own run. A new `run`
//! drops the receiver of the old one, which stops the old run at its next frame.

use crate::error::HttpError;
use crate::state::AppState;
use crate::stream::{FrameText, StreamStopped, stream_frames};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientFrame, RunRequest, ServerFrame};
use shared::scenario::{self, ScenarioError};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tracing::{debug, error, info};

/// Commands from the receive half to the send half, kept in order so an error about a frame
/// reaches the viewer after everything asked for before it.
#[derive(Debug)]
enum Command {
    /// Forward this run's frames from now on, dropping the run in progress.
    Stream(mpsc::Receiver<FrameText>),
    /// Tell the viewer its last frame was refused.
    Refuse(String),
}

/// How many commands may wait for the send half; the receive half waits beyond that.
const COMMANDS_BUFFERED: usize = 4;

/// Upgrades to a WebSocket if a viewer place is free, and answers 503 otherwise.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
) -> Result<Response, HttpError> {
    let permit = state.try_admit_viewer()?;
    let ws = ws.max_message_size(state.config().control_frame_bytes_max);
    Ok(ws
        .on_failed_upgrade(|err| debug!("a viewer's upgrade failed: {err}"))
        .on_upgrade(move |socket| watch(socket, state, permit)))
}

/// Serves one viewer until it leaves, its socket fails, or the server stops.
async fn watch(socket: WebSocket, state: AppState, permit: OwnedSemaphorePermit) {
    debug!(viewers = state.viewers_connected(), "a viewer connected");
    let (mut sink, stream) = socket.split();
    let (commands_sender, commands) = mpsc::channel(COMMANDS_BUFFERED);
    let mut stopping = state.stopping();
    let close = tokio::select! {
        close = send_frames(&mut sink, commands, &state) => close,
        () = receive_frames(stream, commands_sender, &state) => None,
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
    let _ = tokio::time::timeout(state.config().viewer_send_timeout, closing).await;
    drop(permit);
    debug!(viewers = state.viewers_connected(), "a viewer left");
}

/// Forwards frames of the current run and refusals, until the receive half ends or the socket
/// fails. Returns the close frame to send, if the viewer is dropped for a reason of ours.
async fn send_frames(
    sink: &mut SplitSink<WebSocket, Message>,
    mut commands: mpsc::Receiver<Command>,
    state: &AppState,
) -> Option<CloseFrame> {
    let timeout = state.config().viewer_send_timeout;
    let mut current: Option<mpsc::Receiver<FrameText>> = None;
    let mut last_was_end = true;
    loop {
        let text = tokio::select! {
            // Commands first, so a new run replaces the old one without waiting for its frames.
            biased;
            command = commands.recv() => match command? {
                Command::Stream(frames) => {
                    current = Some(frames);
                    last_was_end = false;
                    continue;
                }
                Command::Refuse(message) => error_frame(message),
            },
            frame = next_frame(&mut current) => match frame {
                Some(frame) => {
                    last_was_end = frame.is_end;
                    frame.json
                }
                None => {
                    current = None;
                    if last_was_end {
                        continue;
                    }
                    // The run's thread ended without its last frame: it failed, and was logged.
                    last_was_end = true;
                    error_frame("the run stopped early because of a server error".into())
                }
            },
        };
        match tokio::time::timeout(timeout, sink.send(Message::Text(text.into()))).await {
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
    }
}

/// An `error` frame as JSON.
fn error_frame(message: String) -> String {
    // A frame of one string field cannot fail to serialize.
    serde_json::to_string(&ServerFrame::Error { message }).expect("an error frame serializes")
}

/// The next frame of the current run, or never when there is none.
async fn next_frame(current: &mut Option<mpsc::Receiver<FrameText>>) -> Option<FrameText> {
    match current {
        Some(frames) => frames.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads the viewer's frames and turns each into a command, until the viewer closes.
async fn receive_frames(
    mut stream: SplitStream<WebSocket>,
    commands: mpsc::Sender<Command>,
    state: &AppState,
) {
    while let Some(message) = stream.next().await {
        let command = match message {
            Ok(Message::Text(text)) => command_for(text.as_str(), state).await,
            Ok(Message::Binary(_)) => Command::Refuse(
                "binary frames are not understood: send JSON text frames such as \
                 {\"type\":\"run\",\"scenario\":\"request-response\",\"seed\":1,\"until_s\":30}"
                    .into(),
            ),
            // Pings are answered by the socket itself.
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => return,
            Err(err) => {
                debug!("a viewer's socket failed while reading: {err}");
                return;
            }
        };
        if commands.send(command).await.is_err() {
            return;
        }
    }
}

/// What to do about one text frame from the viewer.
async fn command_for(text: &str, state: &AppState) -> Command {
    let request = match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Run(request)) => request,
        Err(err) => {
            return Command::Refuse(format!(
                "cannot read the frame: {err}; expected JSON such as \
                 {{\"type\":\"run\",\"scenario\":\"request-response\",\"seed\":1,\"until_s\":30}}"
            ));
        }
    };
    match start_run(request, state).await {
        Ok(frames) => Command::Stream(frames),
        Err(err) => Command::Refuse(err.to_string()),
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The request was wrong; the message says how.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The run's thread failed before it could say; that is logged.
    #[error("the run could not start because of a server error")]
    Engine,
}

/// Checks `request` and starts computing its run on a blocking thread.
async fn start_run(
    request: RunRequest,
    state: &AppState,
) -> Result<mpsc::Receiver<FrameText>, StartError> {
    let config = state.config();
    let (frames_sender, frames) = mpsc::channel(config.frames_buffered.max(1));
    let (started_sender, started) = oneshot::channel();
    let events_per_frame = config.events_per_frame;
    let run = tokio::task::spawn_blocking(move || {
        // The run is checked here because a `Sim` must stay on the thread that drives it.
        let sim = match scenario::start(&request) {
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
