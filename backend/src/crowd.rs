//! `crosstalk crowd`: the load tool. It opens N real WebSocket viewers of one live run against a
//! real server — by default a `crosstalk serve` it starts as a child process, so the server's
//! memory is its own — and reports what they received: events per second, the delay from an
//! event to a viewer (p50, p99), resyncs, and the server's memory.
//!
//! One viewer starts the run (`live_start`); once its header arrives, the others watch it
//! (`live_watch`). Every viewer reads every frame: an `events` frame is scanned for the `at` of
//! each event rather than parsed, so a thousand viewers in one process cost little beside the
//! server they measure.
//!
//! The server's clock is not the viewers': a delay is measured as `arrival − at` on the viewers'
//! clock, minus the smallest such value seen by any viewer over the run. So the fastest delivery
//! of the run counts as zero delay; every reported delay is low by that much (under a
//! millisecond on one machine, where events wait for the next flush of at most 20 ms).

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use shared::protocol::{ClientFrame, RunRequest};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// The delay histogram's resolution, in µs.
const BUCKET_US: u64 = 10;
/// The histogram covers this much of `arrival − at` (the clocks' offset plus the delay).
const HISTOGRAM_SPAN_US: u64 = 120_000_000;
/// Viewers connecting at once; the rest wait, so the server's accept backlog never overflows.
const CONNECTS_AT_ONCE: usize = 64;
/// How often the server's memory is read.
const MEMORY_POLL: Duration = Duration::from_millis(100);

/// Where the crowd's server is.
#[derive(Clone, Debug)]
pub enum CrowdServer {
    /// Start `crosstalk serve` from this executable as a child process, with room for the crowd.
    Spawn {
        /// The `crosstalk` binary.
        binary: PathBuf,
        /// Extra arguments for `serve`, such as `--broker …`.
        extra_args: Vec<String>,
    },
    /// A server already running: its `ws://…/ws` address, and its process id for its memory.
    Running {
        /// The socket's address.
        url: String,
        /// Its process, when on this machine.
        pid: Option<u32>,
    },
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct CrowdConfig {
    /// How many viewers watch the run, the one starting it included.
    pub viewers: usize,
    /// The live run.
    pub request: RunRequest,
    /// Events before this time of the run are not measured (start-up).
    pub warmup: Duration,
    /// The server.
    pub server: CrowdServer,
}

/// What the crowd saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrowdReport {
    /// The scenario.
    pub scenario: String,
    /// Viewers asked for.
    pub viewers: usize,
    /// Viewers whose upgrade succeeded.
    pub connected: usize,
    /// Viewers refused at the upgrade (with the first reason).
    pub refused: usize,
    /// Why the first refused viewer was refused.
    pub refused_reason: Option<String>,
    /// Viewers that received the run's `end` frame.
    pub complete: usize,
    /// Events the viewers received after the warm-up, all viewers together.
    pub events_measured: u64,
    /// Of those, per second of the measured part of the run, all viewers together.
    pub events_per_s_total: f64,
    /// The same per viewer (the mean over connected viewers).
    pub events_per_s_per_viewer: f64,
    /// Median delay from an event to a viewer, in µs.
    pub delay_p50_us: u64,
    /// 99th-percentile delay, in µs.
    pub delay_p99_us: u64,
    /// The longest delay, in µs.
    pub delay_max_us: u64,
    /// `resync` frames, all viewers together.
    pub resyncs: u64,
    /// `error` frames, all viewers together.
    pub errors: u64,
    /// The server's resident memory before the viewers connected, in KiB.
    pub server_rss_before_kib: Option<u64>,
    /// The server's highest resident memory during the run, in KiB.
    pub server_rss_peak_kib: Option<u64>,
}

/// Why the crowd could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum CrowdError {
    /// Setting up the server or the viewers failed.
    #[error("{0}")]
    Setup(String),
    /// The server refused the run.
    #[error("the server refused the run: {0}")]
    Refused(String),
}

/// What every viewer adds to.
struct Tally {
    /// Counts of `arrival − at` in buckets of [`BUCKET_US`], on the crowd's clock.
    histogram: Vec<AtomicU32>,
    overflow: AtomicU64,
    events: AtomicU64,
    resyncs: AtomicU64,
    errors: AtomicU64,
    complete: AtomicU64,
    /// The earliest and latest arrival of a measured event, µs on the crowd's clock.
    first_arrival_us: AtomicU64,
    last_arrival_us: AtomicU64,
    epoch: Instant,
    warmup_us: u64,
}

impl Tally {
    fn new(warmup: Duration) -> Tally {
        Tally {
            histogram: (0..HISTOGRAM_SPAN_US / BUCKET_US)
                .map(|_| AtomicU32::new(0))
                .collect(),
            overflow: AtomicU64::new(0),
            events: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            complete: AtomicU64::new(0),
            first_arrival_us: AtomicU64::new(u64::MAX),
            last_arrival_us: AtomicU64::new(0),
            epoch: Instant::now(),
            warmup_us: warmup.as_micros() as u64,
        }
    }

    /// Counts the events of one `events` frame that arrived now.
    fn events_frame(&self, text: &str) {
        let arrival_us = self.epoch.elapsed().as_micros() as u64;
        let mut measured = 0;
        for at in event_times(text) {
            if at < self.warmup_us {
                continue;
            }
            measured += 1;
            let bucket = arrival_us.saturating_sub(at) / BUCKET_US;
            match self.histogram.get(bucket as usize) {
                Some(count) => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.overflow.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if measured > 0 {
            self.events.fetch_add(measured, Ordering::Relaxed);
            self.first_arrival_us
                .fetch_min(arrival_us, Ordering::Relaxed);
            self.last_arrival_us
                .fetch_max(arrival_us, Ordering::Relaxed);
        }
    }

    /// p50, p99 and max of the delays, the smallest `arrival − at` counting as zero.
    fn delays(&self) -> (u64, u64, u64) {
        let counts: Vec<u64> = self
            .histogram
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .collect();
        let total: u64 = counts.iter().sum::<u64>() + self.overflow.load(Ordering::Relaxed);
        let Some(first) = counts.iter().position(|c| *c > 0) else {
            return (0, 0, 0);
        };
        let at_rank = |rank: u64| {
            let mut seen = 0;
            for (bucket, count) in counts.iter().enumerate() {
                seen += count;
                if seen > rank {
                    return (bucket - first) as u64 * BUCKET_US;
                }
            }
            HISTOGRAM_SPAN_US
        };
        let last = counts.iter().rposition(|c| *c > 0).unwrap_or(first);
        let max = if self.overflow.load(Ordering::Relaxed) > 0 {
            HISTOGRAM_SPAN_US
        } else {
            (last - first) as u64 * BUCKET_US
        };
        (at_rank(total / 2), at_rank(total * 99 / 100), max)
    }
}

/// The `at` of every event in an `events` frame's JSON, without parsing the rest: each event is
/// an object that begins with its time (`{"at":123,…`).
pub fn event_times(text: &str) -> impl Iterator<Item = u64> + '_ {
    const MARK: &str = "{\"at\":";
    text.match_indices(MARK).filter_map(|(start, _)| {
        let digits = &text[start + MARK.len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

/// The frame's `type`, read from its start (`{"type":"events",…`).
fn frame_type(text: &str) -> &str {
    text.strip_prefix("{\"type\":\"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// A `crosstalk serve` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(
    binary: &PathBuf,
    viewers: usize,
    extra: &[String],
) -> Result<ServerProcess, CrowdError> {
    let mut child = Command::new(binary)
        .args(["serve", "--bind", "127.0.0.1:0", "--in-memory"])
        .args(["--max-viewers", &(viewers + 8).to_string()])
        .args(["--max-viewers-per-address", &(viewers + 8).to_string()])
        .args(extra)
        .env("RUST_LOG", "warn,backend=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CrowdError::Setup(format!("cannot start {}: {e}", binary.display())))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            return Err(CrowdError::Setup(
                "the server exited before listening".into(),
            ));
        };
        if let Some((_, url)) = line.split_once("crosstalk: serving http://") {
            break url.trim().to_string();
        }
    };
    // Keep reading its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(ServerProcess {
        child,
        url: format!("ws://{addr}/ws"),
    })
}

/// Resident memory of process `pid`, in KiB (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs the crowd and reports what it saw.
pub async fn crowd(config: CrowdConfig) -> Result<CrowdReport, CrowdError> {
    let setup = |e: &dyn std::fmt::Display| CrowdError::Setup(e.to_string());
    let (_process, url, pid) = match &config.server {
        CrowdServer::Spawn { binary, extra_args } => {
            let process = spawn_server(binary, config.viewers, extra_args)?;
            let url = process.url.clone();
            let pid = process.child.id();
            (Some(process), url, Some(pid))
        }
        CrowdServer::Running { url, pid } => (None, url.clone(), *pid),
    };
    let rss_before = pid.and_then(rss_kib);

    // Connect everyone first, a batch at a time.
    let mut sockets: Vec<Socket> = Vec::with_capacity(config.viewers);
    let mut refused = 0;
    let mut refused_reason = None;
    let mut pending = futures_util::stream::iter(0..config.viewers)
        .map(|_| tokio_tungstenite::connect_async(url.clone()))
        .buffer_unordered(CONNECTS_AT_ONCE);
    while let Some(connected) = pending.next().await {
        match connected {
            Ok((socket, _)) => sockets.push(socket),
            Err(err) => {
                refused += 1;
                refused_reason.get_or_insert_with(|| match &err {
                    tokio_tungstenite::tungstenite::Error::Http(response) => format!(
                        "{} {}",
                        response.status(),
                        response
                            .body()
                            .as_ref()
                            .map(|b| String::from_utf8_lossy(b).trim().to_string())
                            .unwrap_or_default()
                    ),
                    other => other.to_string(),
                });
            }
        }
    }
    let connected = sockets.len();
    let mut sockets = sockets.into_iter();
    let Some(mut starter) = sockets.next() else {
        return Err(CrowdError::Setup(format!(
            "no viewer could connect: {}",
            refused_reason.unwrap_or_default()
        )));
    };

    let memory_peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let (done, done_signal) = watch::channel(false);
    if let Some(pid) = pid {
        let peak = memory_peak.clone();
        let mut done_signal = done_signal.clone();
        tokio::spawn(async move {
            loop {
                if let Some(rss) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::select! {
                    () = tokio::time::sleep(MEMORY_POLL) => {}
                    _ = done_signal.changed() => return,
                }
            }
        });
    }

    let tally = Arc::new(Tally::new(config.warmup));
    let start = serde_json::to_string(&ClientFrame::LiveStart {
        request: config.request.clone(),
        token: None,
    })
    .map_err(|e| setup(&e))?;
    starter
        .send(Message::text(start))
        .await
        .map_err(|e| setup(&e))?;
    // Wait for the run's header before the others watch, so they watch this run.
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), starter.next())
            .await
            .map_err(|_| CrowdError::Setup("no header within 60 s".into()))?;
        let Some(Ok(Message::Text(text))) = message else {
            if let Some(Err(err)) = message {
                return Err(setup(&err));
            }
            continue;
        };
        match frame_type(text.as_str()) {
            "header" => break,
            "error" => return Err(CrowdError::Refused(text.to_string())),
            _ => {}
        }
    }
    let run_length = Duration::from_secs_f64(config.request.until_s.max(0.0));
    let deadline = Instant::now() + run_length + Duration::from_secs(60);
    let mut viewers = tokio::task::JoinSet::new();
    viewers.spawn(watch_run(starter, None, tally.clone(), deadline));
    let watch = serde_json::to_string(&ClientFrame::LiveWatch).map_err(|e| setup(&e))?;
    for socket in sockets {
        viewers.spawn(watch_run(
            socket,
            Some(watch.clone()),
            tally.clone(),
            deadline,
        ));
    }
    while viewers.join_next().await.is_some() {}
    let _ = done.send(true);

    let (p50, p99, max) = tally.delays();
    let events = tally.events.load(Ordering::Relaxed);
    let first = tally.first_arrival_us.load(Ordering::Relaxed);
    let last = tally.last_arrival_us.load(Ordering::Relaxed);
    let seconds = if last > first {
        (last - first) as f64 / 1e6
    } else {
        0.0
    };
    let per_s = |n: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
    Ok(CrowdReport {
        scenario: config.request.scenario.clone(),
        viewers: config.viewers,
        connected,
        refused,
        refused_reason,
        complete: tally.complete.load(Ordering::Relaxed) as usize,
        events_measured: events,
        events_per_s_total: per_s(events as f64),
        events_per_s_per_viewer: per_s(events as f64) / connected.max(1) as f64,
        delay_p50_us: p50,
        delay_p99_us: p99,
        delay_max_us: max,
        resyncs: tally.resyncs.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        server_rss_before_kib: rss_before,
        server_rss_peak_kib: pid.map(|_| memory_peak.load(Ordering::Relaxed)),
    })
}

/// One viewer: asks to watch (unless it started the run), then reads until the run's end.
async fn watch_run(mut socket: Socket, ask: Option<String>, tally: Arc<Tally>, deadline: Instant) {
    if let Some(ask) = ask
        && socket.send(Message::text(ask)).await.is_err()
    {
        return;
    }
    let read_all = async {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            match frame_type(text.as_str()) {
                "events" => tally.events_frame(text.as_str()),
                "resync" => {
                    tally.resyncs.fetch_add(1, Ordering::Relaxed);
                }
                "error" => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
                "end" => {
                    tally.complete.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                _ => {}
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline.into(), read_all).await;
    let _ = socket.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::ServerFrame;

    #[test]
    fn event_times_are_the_ats_serde_reads() {
        let request = RunRequest {
            scenario: "event-driven".into(),
            seed: 4,
            until_s: 20.0,
            knobs: Default::default(),
            faults: vec!["crash:Shipping@2+3".into()],
        };
        let trace = shared::scenario::simulate(&request).unwrap();
        for events in trace.events.chunks(97) {
            let frame = ServerFrame::Events {
                events: events.to_vec(),
            };
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(frame_type(&text), "events");
            let scanned: Vec<u64> = event_times(&text).collect();
            let parsed: Vec<u64> = events.iter().map(|e| e.at.0).collect();
            assert_eq!(scanned, parsed);
        }
    }

    #[test]
    fn delays_count_from_the_fastest_arrival() {
        let tally = Tally::new(Duration::ZERO);
        // 100 events: offsets 1_000 µs + delay (0..100) × 10 µs.
        for delay in 0..100u64 {
            let bucket = (1_000 + delay * 10) / BUCKET_US;
            tally.histogram[bucket as usize].fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(tally.delays(), (500, 990, 990));
    }
}
