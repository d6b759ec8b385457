//! Live mode: any scenario's services run for real. Each service is its own axum server on its
//! own loopback port with its own SQLite database, driven by the same sans-IO state machine the
//! simulation drives; messages between them are real HTTP calls; the trace is stamped with the
//! wall clock and streamed to viewers as it happens.
//!
//! [`LiveRun::start`] takes a [`RunRequest`] like the simulation does, so every scenario of the
//! catalog (and every one added later) runs live without code here. See ARCHITECTURE.md for how
//! messages, timers, crashes and the broker map onto real IO.

mod amqp;
mod net;
mod runtime;
pub mod tables;
pub mod trace_log;

use crate::secret::BrokerUrl;
use runtime::{Engine, Work};
use shared::protocol::{
    Fault, LinkId, LiveCommand, Payload, RunRequest, ServiceId, ServiceInfo, Trace, TraceHeader,
};
use shared::scenario::{self, ScenarioError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use trace_log::{LogBounds, Subscription, TraceLog};

/// Where the services keep their databases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// One SQLite file per service (`order.sqlite`, …) in a folder of the run's own inside this
    /// one, kept after the run.
    Dir(PathBuf),
    /// The same, the run's folder removed when the run ends.
    Scratch(PathBuf),
    /// Each database in memory, gone when the run ends.
    Memory,
}

/// What carries events between publishers and subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum BrokerChoice {
    /// The scenario's own broker service, run like every other service.
    #[default]
    Embedded,
    /// RabbitMQ at this `amqp://` URL, in place of the scenario's broker service.
    Amqp(BrokerUrl),
}

/// How a live run behaves, and its bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveConfig {
    /// Where databases live.
    pub storage: Storage,
    /// The broker.
    pub broker: BrokerChoice,
    /// Frames per viewer, events per frame, and events per run.
    pub log: LogBounds,
    /// How often recorded events are sent to viewers.
    pub flush_every: Duration,
    /// The most inputs (arrived messages, timers, commands) waiting for the engine; an arriving
    /// message beyond it is answered 503 and the sender's message is dropped.
    pub inbox_capacity: usize,
    /// The most messages on their way at once across the run; one more is dropped.
    pub calls_in_flight_max: usize,
    /// How long one HTTP call may take to connect and be accepted.
    pub call_timeout: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            storage: Storage::Memory,
            broker: BrokerChoice::Embedded,
            log: LogBounds {
                events_per_frame: 500,
                frames_buffered: 256,
                max_events: 200_000,
            },
            flush_every: Duration::from_millis(20),
            inbox_capacity: 4096,
            calls_in_flight_max: 1024,
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a live run could not start, or a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The request was wrong; the message says how.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A port, a file or a thread could not be had.
    #[error("{0}")]
    Io(String),
    /// The command does not fit this run; the message says how.
    #[error("{0}")]
    BadCommand(String),
    /// The run has ended.
    #[error("the live run has ended")]
    Ended,
    /// Too many inputs are waiting; the command was not taken.
    #[error("the live run is too busy to take the command; try again")]
    Busy,
}

/// A live run in progress (or ended). Dropping it stops the run.
pub struct LiveRun {
    log: Arc<TraceLog>,
    inbox: mpsc::Sender<Work>,
    /// Stops the run; outside the inbox, so it always arrives.
    stop: Arc<watch::Sender<bool>>,
    /// True once the run has let go of everything: ports, threads, files, RabbitMQ queues.
    closed: watch::Receiver<bool>,
    addrs: Vec<SocketAddr>,
    databases: Vec<Option<PathBuf>>,
    external: Vec<ServiceId>,
}

/// How long a run's tasks get to end after the engine has stopped, before they are dropped.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(2);

/// A run's own folder for its databases (mode 0700), created fresh so it is never anybody
/// else's, and removed when dropped if it is scratch space.
struct RunFolder {
    path: PathBuf,
    remove: bool,
}

impl RunFolder {
    fn create(storage: &Storage, name: &str) -> Result<Option<RunFolder>, LiveError> {
        let (parent, remove) = match storage {
            Storage::Memory => return Ok(None),
            Storage::Dir(parent) => (parent, false),
            Storage::Scratch(parent) => (parent, true),
        };
        let fail = |path: &Path, e: std::io::Error| {
            LiveError::Io(format!(
                "cannot create the data folder {}: {e}",
                path.display()
            ))
        };
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .recursive(true)
            .create(parent)
            .map_err(|e| fail(parent, e))?;
        let path = parent.join(name);
        // Not recursive: an existing folder of that name is an error, never reused.
        builder
            .recursive(false)
            .create(&path)
            .map_err(|e| fail(&path, e))?;
        Ok(Some(RunFolder { path, remove }))
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        if self.remove
            && let Err(err) = std::fs::remove_dir_all(&self.path)
        {
            tracing::warn!("cannot remove {}: {err}", self.path.display());
        }
    }
}

/// Says the run is closed when dropped, even if its thread panicked.
struct SayClosed(watch::Sender<bool>);

impl Drop for SayClosed {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

impl LiveRun {
    /// Checks `request`, then starts its services on a thread of their own; returns once every
    /// service listens and holds its initial rows.
    pub async fn start(request: &RunRequest, config: LiveConfig) -> Result<LiveRun, LiveError> {
        let request = request.clone();
        let (ready_sender, ready) = oneshot::channel();
        let (stop, stop_signal) = watch::channel(false);
        let stop = Arc::new(stop);
        let (closed_sender, closed) = watch::channel(false);
        let engine_stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("live {}", request.scenario))
            .spawn(move || {
                // Dropped last, once everything else here is.
                let _closed = SayClosed(closed_sender);
                let run_id = run_id();
                let folder = match RunFolder::create(
                    &config.storage,
                    &format!("{}-{run_id}", request.scenario),
                ) {
                    Ok(folder) => folder,
                    Err(err) => {
                        let _ = ready_sender.send(Err(err));
                        return;
                    }
                };
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("live-io")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_sender.send(Err(LiveError::Io(format!(
                            "cannot start the live runtime: {err}"
                        ))));
                        return;
                    }
                };
                // The machines are not `Send`: the engine is built and driven right here, while
                // its IO runs on the runtime's workers.
                let data = folder.as_ref().map(|f| f.path.as_path());
                runtime.block_on(async move {
                    let started = match scenario::prepare(&request, scenario::Driver::Live) {
                        Ok(prepared) => {
                            Engine::start(prepared, &config, &run_id, data, engine_stop).await
                        }
                        Err(err) => Err(err.into()),
                    };
                    match started {
                        Ok((engine, started)) => {
                            if ready_sender.send(Ok(started)).is_err() {
                                engine.stop();
                            }
                            engine.run(stop_signal).await;
                        }
                        Err(err) => {
                            let _ = ready_sender.send(Err(err));
                        }
                    }
                });
                // Whatever is still on its way (a call, a timer) ends with the runtime; then the
                // folder goes (for scratch space) and the run says it is closed.
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
                drop(folder);
            })
            .map_err(|e| LiveError::Io(format!("cannot start the live thread: {e}")))?;
        let started = ready
            .await
            .map_err(|_| LiveError::Io("the live thread failed while starting".into()))??;
        Ok(LiveRun {
            log: started.log,
            inbox: started.inbox,
            stop,
            closed,
            addrs: started.addrs,
            databases: started.databases,
            external: started.external,
        })
    }

    /// The run's header: scenario, services, links.
    pub fn header(&self) -> &TraceHeader {
        self.log.header()
    }

    /// The address a service listens on (refusing connections while it is down).
    pub fn addr(&self, service: ServiceId) -> Option<SocketAddr> {
        self.addrs.get(service.0 as usize).copied()
    }

    /// A service's database file, when databases are files.
    pub fn database(&self, service: ServiceId) -> Option<&Path> {
        self.databases.get(service.0 as usize)?.as_deref()
    }

    /// The run's trace log, for viewers and measurements.
    pub fn log(&self) -> &Arc<TraceLog> {
        &self.log
    }

    /// The frames so far and a receiver of those to come.
    pub fn subscribe(&self) -> Subscription {
        self.log.subscribe()
    }

    /// The trace so far.
    pub fn trace(&self) -> Trace {
        self.log.trace()
    }

    /// Waits until the run has ended.
    pub async fn finished(&self) {
        self.log.finished().await;
    }

    /// True once the run has ended.
    pub fn is_finished(&self) -> bool {
        self.log.is_finished()
    }

    /// Waits until the run has ended and let go of everything it held: its ports, threads and
    /// files, and its RabbitMQ queues, deleted.
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        // The sender says true before it goes, so an error means closed too.
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Checks `command` against this run and hands it to the engine.
    pub fn command(&self, command: LiveCommand) -> Result<(), LiveError> {
        let services = &self.header().services;
        let check = |service: ServiceId| {
            services.get(service.0 as usize).map(|_| ()).ok_or_else(|| {
                LiveError::BadCommand(format!(
                    "there is no service {}: this run has services 0 to {}",
                    service.0,
                    services.len().saturating_sub(1)
                ))
            })
        };
        match &command {
            LiveCommand::Stop => {
                self.stop();
                return Ok(());
            }
            LiveCommand::Load { .. } => {}
            LiveCommand::Crash { service } | LiveCommand::Restart { service } => {
                check(*service)?;
                if self.external.contains(service) {
                    return Err(LiveError::BadCommand(format!(
                        "{} is RabbitMQ, which this run uses but does not own: it cannot be crashed from here",
                        services[service.0 as usize].name
                    )));
                }
            }
            LiveCommand::Fault { fault } | LiveCommand::Heal { fault } => {
                let in_range = |what: &str, value: u32, max: u32| {
                    if (1..=max).contains(&value) {
                        Ok(())
                    } else {
                        Err(LiveError::BadCommand(format!(
                            "{what} must be from 1 to {max}, not {value}"
                        )))
                    }
                };
                let check_link = |link: &LinkId| match link {
                    LinkId::All => Ok(()),
                    LinkId::Between(a, b) => check(*a).and(check(*b)),
                };
                match fault {
                    Fault::Crash { service } => {
                        check(*service)?;
                        if self.external.contains(service) {
                            return Err(LiveError::BadCommand(format!(
                                "{} is RabbitMQ, which this run uses but does not own: it cannot be crashed from here",
                                services[service.0 as usize].name
                            )));
                        }
                    }
                    Fault::Slow { service, factor } => {
                        check(*service)?;
                        in_range("a slow factor", *factor, MAX_SLOW_FACTOR)?;
                    }
                    Fault::Partition { link } => check_link(link)?,
                    Fault::Drop { link, percent }
                    | Fault::Duplicate { link, percent }
                    | Fault::Reorder { link, percent } => {
                        check_link(link)?;
                        in_range("a share in percent", *percent, 100)?;
                    }
                }
            }
        }
        self.push(Work::Command(command))
    }

    /// Sends `payload` from `from` to `to` now, as if `from`'s machine had sent it: one
    /// operation by hand, through the real services.
    pub fn send_as(
        &self,
        from: ServiceId,
        to: ServiceId,
        payload: Payload,
    ) -> Result<(), LiveError> {
        let services = self.header().services.len();
        if from.0 as usize >= services || to.0 as usize >= services {
            return Err(LiveError::BadCommand(format!(
                "this run has services 0 to {}",
                services.saturating_sub(1)
            )));
        }
        self.push(Work::SendAs { from, to, payload })
    }

    /// Ends the run now. It always arrives: the stop is a signal of its own, not an input
    /// waiting in the inbox behind others.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn push(&self, work: Work) -> Result<(), LiveError> {
        if self.log.is_finished() {
            return Err(LiveError::Ended);
        }
        self.inbox.try_send(work).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => LiveError::Busy,
            mpsc::error::TrySendError::Closed(_) => LiveError::Ended,
        })
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The largest factor a link may be slowed by.
pub const MAX_SLOW_FACTOR: u32 = 100;

/// A name for this run's folder, RabbitMQ exchange and queues, unique on this machine.
fn run_id() -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{run}-{nanos:08x}", std::process::id())
}

/// `order.sqlite` for Order: the service's name in lower case, letters and digits only.
pub fn database_file_name(info: &ServiceInfo) -> String {
    let slug: String = info
        .name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if slug.is_empty() {
        format!("service-{}.sqlite", info.id.0)
    } else {
        format!("{slug}.sqlite")
    }
}
