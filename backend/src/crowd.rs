//! `crosstalk crowd`: the load tool. It opens N real WebSocket viewers of one live run against a
//! real server — by default a `crosstalk serve` it starts as a child process, so the server's
//! memory and CPU time are its own — and reports what they received: events per second, the
//! delay from an event to a viewer (p50, p99), resyncs, the server's memory, and how the
//! machine's cores were spent meanwhile (server, this tool, everything else, idle).
//!
//! One viewer starts the run (`live_start`); once its header arrives, the others watch it
//! (`live_watch`). Every viewer reads every frame, but the tool shares the machine with the
//! server it measures, so a viewer does little with one: the first viewer to receive an `events`
//! frame scans it for the `at` of each event (rather than parsing it), and every viewer then
//! only notes when it received that frame. Delays are counted once the run is over.
//!
//! The server's clock is not the viewers': a delay is measured as `arrival − at` on the viewers'
//! clock, minus the smallest such value seen by any viewer over the run. So the fastest delivery
//! of the run counts as zero delay; every reported delay is low by that much (under a
//! millisecond on one machine, where events wait for the next flush of at most 20 ms).

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use shared::protocol::{ClientFrame, RunRequest};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// The delay histogram's resolution, in µs.
const BUCKET_US: u64 = 10;
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
    /// How the machine's cores were spent over the measured part of the run (Linux).
    pub cpu_cores: Option<CpuSplit>,
    /// The machine's 1-minute load average when the viewers connected and when the run ended.
    pub load_average_1m: [Option<f64>; 2],
}

/// Cores in use on average over an interval, by whom: the four add up to `cpus`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CpuSplit {
    /// The server process, all its threads (the live services run in it).
    pub server: f64,
    /// This tool.
    pub tool: f64,
    /// Every other process and the kernel's own work: other work sharing the machine.
    pub other: f64,
    /// Nobody.
    pub idle: f64,
    /// The machine's cores.
    pub cpus: usize,
}

/// Clock ticks spent so far, read from `/proc`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuSample {
    /// All cores' ticks, busy or idle.
    total: u64,
    /// Of those, idle (and waiting for IO).
    idle: u64,
    cpus: usize,
    server: Option<u64>,
    tool: u64,
}

/// Reads the machine's and the two processes' ticks now.
fn cpu_sample(server_pid: Option<u32>) -> Option<CpuSample> {
    let (total, idle, cpus) = machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let process = |path: String| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|stat| process_ticks(&stat))
    };
    Some(CpuSample {
        total,
        idle,
        cpus,
        server: server_pid.and_then(|pid| process(format!("/proc/{pid}/stat"))),
        tool: process("/proc/self/stat".into())?,
    })
}

/// All ticks, idle ticks and the number of cores, from `/proc/stat`.
fn machine_ticks(stat: &str) -> Option<(u64, u64, usize)> {
    let mut lines = stat.lines();
    let all = lines.next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is counted in user already).
    let ticks: Vec<u64> = all
        .split_whitespace()
        .take(8)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let cpus = lines
        .take_while(|line| line.starts_with("cpu"))
        .count()
        .max(1);
    Some((ticks.iter().sum(), ticks.get(3)? + ticks.get(4)?, cpus))
}

/// A process's user and system ticks, from its `/proc/<pid>/stat`.
fn process_ticks(stat: &str) -> Option<u64> {
    // Its name, in parentheses, may hold spaces: the fields are counted after it. utime and
    // stime are the 14th and 15th fields; the state, the 3rd, comes first after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The cores used between two samples.
fn cpu_split(before: &CpuSample, after: &CpuSample) -> Option<CpuSplit> {
    let total = after.total.checked_sub(before.total).filter(|t| *t > 0)?;
    let cores = |ticks: u64| ticks as f64 * after.cpus as f64 / total as f64;
    let idle = after.idle.saturating_sub(before.idle);
    let server = match (before.server, after.server) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => 0,
    };
    let tool = after.tool.saturating_sub(before.tool);
    // The processes' times and the machine's are counted apart, so over a short interval the
    // two processes may seem to have used more than all busy cores: the rest is then idle.
    let busy = total.saturating_sub(idle).max(server + tool).min(total);
    Some(CpuSplit {
        server: cores(server),
        tool: cores(tool),
        other: cores(busy.saturating_sub(server + tool)),
        idle: cores(total - busy),
        cpus: after.cpus,
    })
}

/// The 1-minute load average (Linux).
fn load_average_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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

/// An `events` frame as the viewers received it: the times of its events after the warm-up,
/// scanned once by the first viewer to receive it, and when each viewer received it.
struct FrameRecord {
    ats: Vec<u64>,
    arrivals_us: Mutex<Vec<u64>>,
}

/// Tells `events` frames apart without reading them whole: their length and the times of their
/// first and last events. Two different frames of one run alike in all three are unlikely, and
/// would only blur the delays a little.
type FrameKey = (usize, Option<u64>, Option<u64>);

/// What every viewer adds to.
struct Tally {
    /// Every `events` frame received.
    frames: Mutex<HashMap<FrameKey, Arc<FrameRecord>>>,
    resyncs: AtomicU64,
    errors: AtomicU64,
    complete: AtomicU64,
    epoch: Instant,
    warmup_us: u64,
}

/// Locks `mutex`, whose plain data stays usable if a viewer's task panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Delays and counts of events, over all viewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Delays {
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    /// Events received after the warm-up, all viewers together.
    events: u64,
    /// The first and last arrival of such an event, µs on the crowd's clock.
    first_arrival_us: u64,
    last_arrival_us: u64,
}

impl Tally {
    fn new(warmup: Duration) -> Tally {
        Tally {
            frames: Mutex::new(HashMap::new()),
            resyncs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            complete: AtomicU64::new(0),
            epoch: Instant::now(),
            warmup_us: warmup.as_micros() as u64,
        }
    }

    /// Notes an `events` frame that arrived now.
    fn events_frame(&self, text: &str) {
        let arrival_us = self.epoch.elapsed().as_micros() as u64;
        let key = (text.len(), event_times(text).next(), last_event_time(text));
        let known = lock(&self.frames).get(&key).cloned();
        let record = known.unwrap_or_else(|| {
            let record = Arc::new(FrameRecord {
                ats: event_times(text)
                    .filter(|at| *at >= self.warmup_us)
                    .collect(),
                arrivals_us: Mutex::new(Vec::new()),
            });
            lock(&self.frames).entry(key).or_insert(record).clone()
        });
        if !record.ats.is_empty() {
            lock(&record.arrivals_us).push(arrival_us);
        }
    }

    /// The delays of every measured event to every viewer.
    fn delays(&self) -> Delays {
        let frames = lock(&self.frames);
        let frames: Vec<(&[u64], Vec<u64>)> = frames
            .values()
            .map(|record| (&record.ats[..], lock(&record.arrivals_us).clone()))
            .collect();
        delays(&frames)
    }
}

/// p50, p99 and max of `arrival − at` over every event and arrival of each frame, the smallest
/// counting as zero, in buckets of [`BUCKET_US`]; and the events' count and first and last
/// arrival.
fn delays(frames: &[(&[u64], Vec<u64>)]) -> Delays {
    let pairs = || {
        frames.iter().flat_map(|(ats, arrivals)| {
            arrivals
                .iter()
                .flat_map(move |arrival| ats.iter().map(move |at| arrival.saturating_sub(*at)))
        })
    };
    let Some(fastest) = pairs().min() else {
        return Delays {
            p50_us: 0,
            p99_us: 0,
            max_us: 0,
            events: 0,
            first_arrival_us: 0,
            last_arrival_us: 0,
        };
    };
    let slowest = pairs().max().unwrap_or(fastest);
    // As many buckets as the spread of the delays needs: the run's length at most.
    let mut counts = vec![0u64; ((slowest - fastest) / BUCKET_US) as usize + 1];
    for offset in pairs() {
        counts[((offset - fastest) / BUCKET_US) as usize] += 1;
    }
    let total: u64 = counts.iter().sum();
    let at_rank = |rank: u64| {
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen > rank {
                return bucket as u64 * BUCKET_US;
            }
        }
        (counts.len() as u64 - 1) * BUCKET_US
    };
    let arrivals = || {
        frames
            .iter()
            .flat_map(|(_, arrivals)| arrivals.iter().copied())
    };
    Delays {
        p50_us: at_rank(total / 2),
        p99_us: at_rank(total * 99 / 100),
        max_us: (counts.len() as u64 - 1) * BUCKET_US,
        events: total,
        first_arrival_us: arrivals().min().unwrap_or(0),
        last_arrival_us: arrivals().max().unwrap_or(0),
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

/// The `at` of the last event in an `events` frame's JSON.
fn last_event_time(text: &str) -> Option<u64> {
    const MARK: &str = "{\"at\":";
    let digits = &text[text.rfind(MARK)? + MARK.len()..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
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
    // What it said before it listened, to tell why it did not (a flag it refused, a port).
    let mut said = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CrowdError::Setup(format!(
                "the server exited before listening: {}",
                said.join(" ")
            )));
        };
        if let Some((_, url)) = line.split_once("crosstalk: serving http://") {
            break url.trim().to_string();
        }
        if said.len() < 20 {
            said.push(line.trim().to_string());
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
    let load_before = load_average_1m();

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
    // The machine's cores are counted over the measured part of the run, from the warm-up's end.
    let warmup = config.warmup;
    let cpu_start = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        cpu_sample(pid)
    });
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
    let cpu_end = cpu_sample(pid);
    let load_after = load_average_1m();
    let _ = done.send(true);
    // A run shorter than its warm-up has no measured part.
    let cpu_start = if cpu_start.is_finished() {
        cpu_start.await.ok().flatten()
    } else {
        cpu_start.abort();
        None
    };
    let cpu_cores = match (cpu_start, cpu_end) {
        (Some(start), Some(end)) => cpu_split(&start, &end),
        _ => None,
    };

    let delays = tally.delays();
    let events = delays.events;
    let first = delays.first_arrival_us;
    let last = delays.last_arrival_us;
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
        delay_p50_us: delays.p50_us,
        delay_p99_us: delays.p99_us,
        delay_max_us: delays.max_us,
        resyncs: tally.resyncs.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        server_rss_before_kib: rss_before,
        server_rss_peak_kib: pid.map(|_| memory_peak.load(Ordering::Relaxed)),
        cpu_cores,
        load_average_1m: [load_before, load_after],
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
        let trace = engine::simulate(&request).unwrap();
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
        // One event; 100 viewers received it 1_000 µs + delay (0..100) × 10 µs after its time.
        let arrivals: Vec<u64> = (0..100u64).map(|delay| 1_500 + delay * 10).collect();
        let delays = delays(&[(&[500], arrivals)]);
        assert_eq!(
            (delays.p50_us, delays.p99_us, delays.max_us, delays.events),
            (500, 990, 990, 100)
        );
        assert_eq!(
            (delays.first_arrival_us, delays.last_arrival_us),
            (1_500, 2_490)
        );
    }

    #[test]
    fn delays_count_every_event_of_a_frame_for_every_viewer() {
        // Two frames of two events; two viewers, one 20 µs after the other.
        let delays = delays(&[
            (&[0, 100], vec![1_000, 1_020]),
            (&[200, 300], vec![1_200, 1_220]),
        ]);
        // Offsets 1_000, 900, 1_020, 920, 1_000, 900, 1_020, 920: from 900, delays 0, 0, 20, 20,
        // 100, 100, 120, 120.
        assert_eq!(
            (delays.p50_us, delays.p99_us, delays.max_us, delays.events),
            (100, 120, 120, 8)
        );
        assert_eq!(delays.events, 8);
        assert_eq!(
            super::delays(&[(&[], vec![])]),
            Delays {
                p50_us: 0,
                p99_us: 0,
                max_us: 0,
                events: 0,
                first_arrival_us: 0,
                last_arrival_us: 0
            }
        );
    }

    #[test]
    fn frames_are_scanned_once_for_all_viewers() {
        let tally = Tally::new(Duration::from_micros(150));
        let frame = r#"{"type":"events","events":[{"at":100,"event":{}},{"at":200,"event":{}},{"at":300,"event":{}}]}"#;
        for _ in 0..3 {
            tally.events_frame(frame);
        }
        let frames = lock(&tally.frames);
        assert_eq!(frames.len(), 1);
        let record = frames.values().next().unwrap();
        assert_eq!(
            record.ats,
            vec![200, 300],
            "the warm-up's events are not measured"
        );
        assert_eq!(lock(&record.arrivals_us).len(), 3);
        assert_eq!(last_event_time(frame), Some(300));
    }

    #[test]
    fn cpu_time_is_read_from_proc() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n\
                    cpu1 50 3 25 400 10 2 1 0 0 0\nintr 12345\n";
        assert_eq!(machine_ticks(stat), Some((980, 820, 2)));
        let process = "4242 (crosstalk (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                       170 30 0 0 20 0 9 0 100 1000000 500 18446744073709551615";
        assert_eq!(process_ticks(process), Some(200));
        let before = CpuSample {
            total: 1_000,
            idle: 400,
            cpus: 2,
            server: Some(100),
            tool: 50,
        };
        let after = CpuSample {
            total: 1_400,
            idle: 450,
            cpus: 2,
            server: Some(300),
            tool: 150,
        };
        // 400 ticks over 2 cores: 200 ticks per core. Server 200, tool 100, idle 50, other 50.
        assert_eq!(
            cpu_split(&before, &after),
            Some(CpuSplit {
                server: 1.0,
                tool: 0.5,
                other: 0.25,
                idle: 0.25,
                cpus: 2
            })
        );
        // The processes counted 10 ticks more than the machine's busy ones: nobody else ran,
        // and the four still add up to the machine's cores.
        let skewed = CpuSample {
            idle: 510,
            server: Some(310),
            ..after
        };
        assert_eq!(
            cpu_split(&before, &skewed),
            Some(CpuSplit {
                server: 1.05,
                tool: 0.5,
                other: 0.0,
                idle: 0.45,
                cpus: 2
            })
        );
    }
}
