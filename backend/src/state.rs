//! What every request handler shares: the server's configuration, the bound on viewers, and the
//! signal that tells open viewers the server is going away.

use crate::access::AccessPolicy;
use crate::error::HttpError;
use crate::live::{LiveConfig, LiveError, LiveRun};
use shared::protocol::RunRequest;
use std::path::PathBuf;
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
    /// The largest control frame a viewer may send, in bytes.
    pub control_frame_bytes_max: usize,
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
            live: LiveConfig::default(),
            access: AccessPolicy::default(),
        }
    }
}

/// The state shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    config: Arc<ServerConfig>,
    viewers: Arc<Semaphore>,
    stopping: watch::Sender<bool>,
    /// The one live run every viewer shares, if one was started.
    live: Arc<Mutex<Option<Arc<LiveRun>>>>,
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
            config: Arc::new(config),
            viewers,
            stopping,
            live: Arc::new(Mutex::new(None)),
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

    /// Takes a viewer's place, held until the returned permit is dropped.
    pub(crate) fn try_admit_viewer(&self) -> Result<OwnedSemaphorePermit, HttpError> {
        if *self.stopping.borrow() {
            return Err(HttpError::ShuttingDown);
        }
        Arc::clone(&self.viewers)
            .try_acquire_owned()
            .map_err(|_| HttpError::TooManyViewers {
                max_viewers: self.config.max_viewers,
            })
    }

    /// The live run in progress or last ended, if any.
    pub fn live(&self) -> Option<Arc<LiveRun>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the live run in progress, if any (its viewers see it end), and starts `request`
    /// live in its place.
    pub async fn start_live(&self, request: &RunRequest) -> Result<Arc<LiveRun>, LiveError> {
        self.stop_live();
        let run = Arc::new(LiveRun::start(request, self.config.live.clone()).await?);
        let replaced = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(run.clone());
        // Two viewers starting at once: the last one's run stays, the other one ends.
        if let Some(replaced) = replaced {
            replaced.stop();
        }
        Ok(run)
    }

    /// Stops the live run in progress, if any.
    pub fn stop_live(&self) {
        if let Some(run) = self.live() {
            run.stop();
        }
    }

    /// A receiver that turns true when the server is stopping.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}
