//! `crosstalk live --bench`: how fast the live trace reaches a viewer. It serves the backend on a
//! free loopback port, starts the run from a real WebSocket viewer (as the page does), and for
//! every event received measures the time from the event (its `at` on the run's clock) to its
//! arrival at the viewer.

use crate::live::LiveConfig;
use crate::{AppState, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use shared::protocol::{ClientFrame, RunRequest, ServerFrame};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// What one benchmark run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveBench {
    /// The scenario.
    pub scenario: String,
    /// Events the viewer received.
    pub events: u64,
    /// From the header's arrival to the end frame's, in seconds.
    pub seconds: f64,
    /// Events received per second over that time.
    pub events_per_s: f64,
    /// Median delay from an event to the viewer, in µs.
    pub delay_p50_us: u64,
    /// 99th-percentile delay, in µs.
    pub delay_p99_us: u64,
    /// The longest delay, in µs.
    pub delay_max_us: u64,
    /// How many times the viewer fell behind and was resynchronized.
    pub resyncs: u64,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up the server or the socket failed.
    #[error("{0}")]
    Setup(String),
    /// The server refused the run.
    #[error("the server refused the run: {0}")]
    Refused(String),
}

/// Runs `request` live behind a real server and measures it from one viewer.
pub async fn live_bench(request: &RunRequest, live: LiveConfig) -> Result<LiveBench, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| setup(&e))?;
    let addr = listener.local_addr().map_err(|e| setup(&e))?;
    let state = AppState::new(ServerConfig {
        live,
        ..ServerConfig::default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(
        listener,
        state.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let (mut viewer, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .map_err(|e| setup(&e))?;
    let start = serde_json::to_string(&ClientFrame::LiveStart {
        request: request.clone(),
        token: None,
    })
    .map_err(|e| setup(&e))?;
    viewer
        .send(Message::text(start))
        .await
        .map_err(|e| setup(&e))?;
    let mut delays_us = Vec::new();
    let mut resyncs = 0;
    let mut first_header: Option<Instant> = None;
    let mut ended_at = None;
    while let Some(message) = viewer.next().await {
        let Message::Text(text) = message.map_err(|e| setup(&e))? else {
            continue;
        };
        let received = Instant::now();
        match shared::json::from_str::<ServerFrame>(text.as_str()).map_err(|e| setup(&e))? {
            ServerFrame::Header(_) => {
                first_header.get_or_insert(received);
            }
            ServerFrame::LiveRole(_) => {}
            ServerFrame::Events { events } => {
                let started = state
                    .live()
                    .map(|run| run.log().started())
                    .ok_or_else(|| BenchError::Setup("the live run vanished".into()))?;
                let now_us = received.duration_since(started).as_micros() as u64;
                delays_us.extend(events.iter().map(|e| now_us.saturating_sub(e.at.0)));
            }
            ServerFrame::Resync { .. } => {
                resyncs += 1;
                delays_us.clear();
            }
            ServerFrame::End { .. } => {
                ended_at = Some(received);
                break;
            }
            ServerFrame::Error { message } => return Err(BenchError::Refused(message)),
        }
    }
    let _ = viewer.close(None).await;
    let _ = stop.send(());
    let _ = server.await;
    let (Some(first), Some(last)) = (first_header, ended_at) else {
        return Err(BenchError::Setup("the run did not end".into()));
    };
    delays_us.sort_unstable();
    let seconds = last.duration_since(first).as_secs_f64();
    let percentile = |p: usize| {
        delays_us
            .get((delays_us.len().saturating_sub(1)) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    Ok(LiveBench {
        scenario: request.scenario.clone(),
        events: delays_us.len() as u64,
        seconds,
        events_per_s: delays_us.len() as f64 / seconds.max(1e-9),
        delay_p50_us: percentile(50),
        delay_p99_us: percentile(99),
        delay_max_us: delays_us.last().copied().unwrap_or(0),
        resyncs,
    })
}
