//! What every request handler shares: the server's configuration, the bound on viewers, and the
//! signal that tells open viewers the server is going away.

use crate::access::AccessPolicy;
use crate::error::HttpError;
use crate::live::{LiveConfig, LiveError, LiveRun};
use shared::protocol::{LiveRole, RunRequest};
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
    /// How often a live run's viewers are written to when many watch.
    pub viewer_writes: ViewerWriteBudget,
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
    /// Every viewer may control the live run (`--open-control`, for a classroom), not only the
    /// one who started it.
    pub open_control: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            dist_dir: PathBuf::from("dist"),
            max_viewers: 1_000,
            events_per_frame: 500,
            frames_buffered: 4,
            viewer_send_timeout: Duration::from_secs(30),
            viewer_writes: ViewerWriteBudget::default(),
            control_frame_bytes_max: 64 * 1024,
            ping_every: Duration::from_secs(15),
            pings_unanswered_max: 2,
            max_viewers_per_address: 64,
            simulations_max: 4,
            simulations_waiting_max: 16,
            live: LiveConfig::default(),
            access: AccessPolicy::default(),
            open_control: false,
        }
    }
}

/// How often the server writes to the sockets of a live run's viewers when many watch.
///
/// After each write, a viewer's sender waits `viewers ÷ writes_per_s` before the next one, and
/// the frames that arrive meanwhile go out together in that next write. The writes to all
/// viewers together then stay near `writes_per_s` however many watch, instead of one write (a
/// syscall and a wakeup) per viewer per frame; each event waits at most one such pause more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerWriteBudget {
    /// The writes per second to all viewers together the server aims at; 0 never waits.
    pub writes_per_s: u32,
    /// Below this many connected viewers, nobody waits: the writes are few anyway.
    pub from_viewers: usize,
    /// The longest pause, whatever the crowd: the bound on the delay it adds.
    pub wait_max: Duration,
}

impl Default for ViewerWriteBudget {
    fn default() -> Self {
        ViewerWriteBudget {
            writes_per_s: 25_000,
            from_viewers: 500,
            wait_max: Duration::from_millis(100),
        }
    }
}

impl ViewerWriteBudget {
    /// How long a viewer's sender waits after a write while `viewers` are connected.
    pub fn wait(&self, viewers: usize) -> Duration {
        if self.writes_per_s == 0 || viewers < self.from_viewers {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(viewers as f64 / f64::from(self.writes_per_s)).min(self.wait_max)
    }
}

/// Why a viewer watches a live run it cannot change.
const WATCHING: &str = "you are watching: another viewer started this live run and controls it; \
     you can start your own once it ends or its starter leaves (a server started with \
     --open-control lets every viewer control it)";

/// The live run, its control token, and how many sockets hold its control.
struct LiveSlot {
    run: Arc<LiveRun>,
    token: String,
    controllers: Arc<AtomicUsize>,
}

impl LiveSlot {
    fn matches(&self, token: Option<&str>) -> bool {
        token.is_some_and(|token| constant_time_eq(token.as_bytes(), self.token.as_bytes()))
    }

    fn hold(&self) -> ControlHold {
        self.controllers.fetch_add(1, Ordering::SeqCst);
        ControlHold {
            token: self.token.clone(),
            controllers: self.controllers.clone(),
        }
    }
}

/// A socket's hold on a live run's control, given up when the socket ends (dropped): once no
/// socket holds it, another viewer may start a run in its place.
pub(crate) struct ControlHold {
    /// The run's control token.
    pub token: String,
    controllers: Arc<AtomicUsize>,
}

impl Drop for ControlHold {
    fn drop(&mut self) {
        self.controllers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a live run was not started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartLiveError {
    /// The request or the run failed.
    #[error("the live run did not start: {0}")]
    Failed(#[from] LiveError),
    /// Another viewer controls the run in progress.
    #[error("the live run was not replaced: {0}")]
    Watching(String),
}

/// 128 random bits as hex, from the system's generator.
fn control_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: SipHash under the process's random keys is still unpredictable.
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(i);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes as long whatever the first differing byte, so timing tells nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    /// The one live run every viewer shares, if one was started, and who controls it.
    live: Arc<Mutex<Option<LiveSlot>>>,
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
        lock(&self.live).as_ref().map(|slot| slot.run.clone())
    }

    /// Checks `request`, then stops the live run in progress, if any (its viewers see it
    /// end), waits until it has let go of its ports, threads, files and queues, and starts
    /// `request` live in its place. A request that is wrong, or from a viewer who may not
    /// replace the run (see [`AppState::may_start_live`]), leaves the run in progress alone.
    /// Returns the new run and the hold on its control for the viewer who started it.
    pub(crate) async fn start_live(
        &self,
        request: &RunRequest,
        token: Option<&str>,
    ) -> Result<(Arc<LiveRun>, ControlHold), StartLiveError> {
        scenario::prepare(request, scenario::Driver::Live).map_err(LiveError::from)?;
        // One start at a time, so each replacement waits for the run before it.
        let _starting = self.live_starting.lock().await;
        self.may_start_live(token)
            .map_err(StartLiveError::Watching)?;
        self.stop_live().await;
        let run = Arc::new(LiveRun::start(request, self.config.live.clone()).await?);
        let slot = LiveSlot {
            run: run.clone(),
            token: control_token(),
            controllers: Arc::new(AtomicUsize::new(0)),
        };
        let hold = slot.hold();
        *lock(&self.live) = Some(slot);
        Ok((run, hold))
    }

    /// Whether a viewer holding `token` (or none) may start a run in place of the one in
    /// progress: when control is open, when there is none or it has ended, when it holds the
    /// run's token, or when the viewer who started it has left. Otherwise, why not.
    pub(crate) fn may_start_live(&self, token: Option<&str>) -> Result<(), String> {
        let live = lock(&self.live);
        match live.as_ref() {
            _ if self.config.open_control => Ok(()),
            None => Ok(()),
            Some(slot) if slot.run.is_finished() || slot.matches(token) => Ok(()),
            Some(slot) if slot.controllers.load(Ordering::SeqCst) == 0 => Ok(()),
            Some(_) => Err(WATCHING.to_string()),
        }
    }

    /// What a viewer holding `token` (or none) may do with the live run in progress.
    pub(crate) fn live_role(&self, token: Option<&str>) -> LiveRole {
        if self.config.open_control {
            return LiveRole::Shared;
        }
        match lock(&self.live).as_ref() {
            Some(slot) if slot.matches(token) => LiveRole::Control {
                token: slot.token.clone(),
            },
            _ => LiveRole::Watch {
                reason: WATCHING.to_string(),
            },
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_waits_its_share_of_the_write_budget_only_in_a_crowd() {
        let check = |writes_per_s: u32, viewers: usize, expected_ms: u64| {
            let budget = ViewerWriteBudget {
                writes_per_s,
                ..ViewerWriteBudget::default()
            };
            assert_eq!(
                budget.wait(viewers),
                Duration::from_millis(expected_ms),
                "{viewers} viewers, {writes_per_s} writes/s"
            );
        };
        check(25_000, 1, 0);
        check(25_000, 499, 0);
        check(25_000, 500, 20);
        check(25_000, 1_000, 40);
        check(25_000, 2_000, 80);
        check(25_000, 5_000, 100);
        check(50_000, 1_000, 20);
        check(0, 1_000, 0);
    }
}
