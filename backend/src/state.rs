//! What every request handler shares: the server's configuration, the bound on viewers, and the
//! signal that tells open viewers the server is going away.

use crate::access::AccessPolicy;
use crate::error::HttpError;
use crate::live::{LiveConfig, LiveError, LiveRun};
use shared::protocol::RunRequest;
use shared::scenario;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How the server behaves; [`ServerConfig::default`] is what `crosstalk serve` uses.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// The directory holding the built page (`index.html`, the wasm, the JavaScript).
    pub dist_dir: PathBuf,
    /// The most viewers streaming at once over `/ws`; one more is refused with 503.
    pub max_viewers: usize,
    /// The most trace events in one `events` frame.
    pub events_per_frame: usize,
    /// The most frames a viewer's run computes ahead of what its socket has taken.
    pub frames_buffered: usize,
    /// How long one frame may wait for a viewer's socket before that viewer is dropped.
    pub viewer_send_timeout: Duration,
    /// The largest message, and so the largest frame, a viewer may send, in bytes.
    pub control_frame_bytes_max: usize,
    /// How often each viewer is pinged.
    pub ping_every: Duration,
    /// Pings a viewer may leave unanswered; at the next one its socket is closed.
    pub pings_unanswered_max: u32,
    /// The most viewers from one address at once; one more is refused with 429.
    pub max_viewers_per_address: usize,
    /// The most simulations computed at once for `run` frames.
    pub simulations_max: usize,
    /// The most `run` frames waiting for one of those; one more is refused as busy.
    pub simulations_waiting_max: usize,
    /// How live runs started from the page behave.
    pub live: LiveConfig,
    /// Which pages and host names may open `/ws`.
    pub access: AccessPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            dist_dir: PathBuf::from("dist"),
            max_viewers: 32,
            events_per_frame: 500,
            frames_buffered: 4,
            viewer_send_timeout: Duration::from_secs(30),
            control_frame_bytes_max: 64 * 1024,
            ping_every: Duration::from_secs(15),
            pings_unanswered_max: 2,
            max_viewers_per_address: 64,
            simulations_max: 4,
            simulations_waiting_max: 16,
            live: LiveConfig::default(),
            access: AccessPolicy::default(),
        }
    }
}

/// How long a stopped live run may take to let go of its ports, threads, files and queues.
pub const LIVE_CLOSE_TIMEOUT: Duration = Duration::from_secs(4);

/// A viewer's place: given back when dropped.
pub(crate) struct ViewerPlace {
    _permit: OwnedSemaphorePermit,
    _address: Option<AddressPlace>,
}

/// One of an address's places.
struct AddressPlace {
    ip: IpAddr,
    counts: Arc<Mutex<BTreeMap<IpAddr, usize>>>,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Every place for simulations is taken and the line for them is full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server is busy: {running} simulations are being computed and {waiting} wait; try again in a moment, or compute the run in the page (Source: In the page)"
)]
pub struct Busy {
    running: usize,
    waiting: usize,
}

/// Leaves the line of waiting simulations when dropped.
struct LeaveLine<'a>(&'a AtomicUsize);

impl Drop for LeaveLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The state shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    config: Arc<ServerConfig>,
    viewers: Arc<Semaphore>,
    /// Viewers connected from each address.
    per_address: Arc<Mutex<BTreeMap<IpAddr, usize>>>,
    /// Places for simulations computed on the server, and the requests waiting for one.
    simulations: Arc<Semaphore>,
    simulations_waiting: Arc<AtomicUsize>,
    stopping: watch::Sender<bool>,
    /// The one live run every viewer shares, if one was started.
    live: Arc<Mutex<Option<Arc<LiveRun>>>>,
    /// Held while a live run is being replaced.
    live_starting: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("viewers_connected", &self.viewers_connected())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for a server configured by `config`.
    pub fn new(config: ServerConfig) -> AppState {
        let viewers = Arc::new(Semaphore::new(config.max_viewers));
        let (stopping, _) = watch::channel(false);
        AppState {
            simulations: Arc::new(Semaphore::new(config.simulations_max.max(1))),
            simulations_waiting: Arc::new(AtomicUsize::new(0)),
            per_address: Arc::new(Mutex::new(BTreeMap::new())),
            config: Arc::new(config),
            viewers,
            stopping,
            live: Arc::new(Mutex::new(None)),
            live_starting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// How many viewers are connected to `/ws` now.
    pub fn viewers_connected(&self) -> usize {
        self.config.max_viewers - self.viewers.available_permits()
    }

    /// Tells every open viewer to close, and refuses new ones from now on.
    pub fn stop_viewers(&self) {
        self.stopping.send_replace(true);
    }

    /// Waits until no viewer is connected; after [`AppState::stop_viewers`], until the last has
    /// closed its socket.
    pub async fn viewers_closed(&self) {
        // Each session holds one permit until it ends, so getting them all means none is left.
        // They are given back at once: while stopping, `try_admit_viewer` refuses everyone anyway.
        let all = u32::try_from(self.config.max_viewers).unwrap_or(u32::MAX);
        let _ = self.viewers.acquire_many(all).await;
    }

    /// Takes a viewer's place, held until the returned place is dropped: one of all viewers',
    /// and one of its address's (when the address is known).
    pub(crate) fn try_admit_viewer(&self, peer: Option<IpAddr>) -> Result<ViewerPlace, HttpError> {
        if *self.stopping.borrow() {
            return Err(HttpError::ShuttingDown);
        }
        let address = match peer {
            Some(ip) => {
                let mut counts = lock(&self.per_address);
                let count = counts.entry(ip).or_insert(0);
                if *count >= self.config.max_viewers_per_address {
                    return Err(HttpError::TooManyFromOneAddress {
                        max: self.config.max_viewers_per_address,
                    });
                }
                *count += 1;
                Some(AddressPlace {
                    ip,
                    counts: self.per_address.clone(),
                })
            }
            None => None,
        };
        let permit = Arc::clone(&self.viewers).try_acquire_owned().map_err(|_| {
            HttpError::TooManyViewers {
                max_viewers: self.config.max_viewers,
            }
        })?;
        Ok(ViewerPlace {
            _permit: permit,
            _address: address,
        })
    }

    /// A place to compute a simulation: at once, after waiting in a bounded line, or refused
    /// when the line is full.
    pub(crate) async fn simulation_place(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.simulations.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = self.simulations_waiting.fetch_add(1, Ordering::SeqCst);
        let _leave_line = LeaveLine(&self.simulations_waiting);
        if waiting >= self.config.simulations_waiting_max {
            return Err(Busy {
                running: self.config.simulations_max,
                waiting: self.config.simulations_waiting_max,
            });
        }
        self.simulations
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy {
                running: self.config.simulations_max,
                waiting,
            })
    }

    /// The live run in progress or last ended, if any.
    pub fn live(&self) -> Option<Arc<LiveRun>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Checks `request`, then stops the live run in progress, if any (its viewers see it
    /// end), waits until it has let go of its ports, threads, files and queues, and starts
    /// `request` live in its place. A request that is wrong leaves the run in progress alone.
    pub async fn start_live(&self, request: &RunRequest) -> Result<Arc<LiveRun>, LiveError> {
        scenario::prepare(request)?;
        // One start at a time, so each replacement waits for the run before it.
        let _starting = self.live_starting.lock().await;
        self.stop_live().await;
        let run = Arc::new(LiveRun::start(request, self.config.live.clone()).await?);
        *lock(&self.live) = Some(run.clone());
        Ok(run)
    }

    /// Stops the live run in progress, if any, and waits until it has let go of everything
    /// (at most [`LIVE_CLOSE_TIMEOUT`]).
    pub async fn stop_live(&self) {
        let Some(run) = self.live() else { return };
        run.stop();
        if tokio::time::timeout(LIVE_CLOSE_TIMEOUT, run.closed())
            .await
            .is_err()
        {
            tracing::warn!("the live run did not close within {LIVE_CLOSE_TIMEOUT:?}");
        }
    }

    /// A receiver that turns true when the server is stopping.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}
