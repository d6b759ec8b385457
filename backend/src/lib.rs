//! Crosstalk's server and command line.
//!
//! The server serves the built page from a `dist` directory, streams simulated traces to viewers
//! over `/ws` (the `ws` module states the protocol's rules), and answers `/healthz`. The
//! command line (`crosstalk simulate`, `crosstalk scenarios`) prints the same traces and the
//! catalog; [`cli`] holds its work so `main.rs` only parses arguments.
//!
//! The trace itself is computed by `shared`, never here: the server only drives the engine and
//! cuts its output into frames, so a trace from `/ws`, from `simulate` and from the page's own
//! engine are the same bytes.

#![warn(missing_docs)]

pub mod access;
pub mod bench;
pub mod cli;
pub mod crowd;
pub mod error;
pub mod headers;
pub mod http;
pub mod live;
pub mod secret;
pub mod state;
pub mod stream;
mod ws;

pub use error::HttpError;
pub use state::{AppState, ServerConfig};

use axum::Router;
use axum::middleware;
use axum::routing::get;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// The server's routes: `/healthz`, `/ws`, and the built page for everything else, all with
/// the security headers (see `headers`).
pub fn app(state: AppState) -> Router {
    let static_files = http::static_files(state.config().dist_dir.clone());
    let page_policy = headers::PagePolicy::new(state.config().dist_dir.clone());
    Router::new()
        .route("/healthz", get(http::healthz))
        .route("/ws", get(ws::upgrade))
        .fallback_service(static_files)
        .layer(middleware::from_fn_with_state(
            page_policy,
            headers::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets open
/// requests finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves a whole server: [`app`] on `listener` until `shutdown` completes, then tells every
/// viewer the server is going away and waits up to `viewers_grace` for their sockets to close.
///
/// Viewers need this step because an upgraded WebSocket is no longer an HTTP request, so
/// [`run`]'s graceful shutdown does not wait for it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    viewers_grace: Duration,
) -> std::io::Result<()> {
    let dist_dir = &state.config().dist_dir;
    if !dist_dir.join("index.html").is_file() {
        warn!(
            "{} has no index.html: the page answers 503 until it is built with `trunk build --release`",
            dist_dir.display()
        );
    }
    info!("crosstalk: serving http://{}", listener.local_addr()?);
    let viewers = state.clone();
    let shutdown = async move {
        shutdown.await;
        info!("shutting down: closing viewers and finishing open requests");
        viewers.stop_viewers();
    };
    run(listener, app(state.clone()), shutdown).await?;
    state.stop_live();
    if tokio::time::timeout(viewers_grace, state.viewers_closed())
        .await
        .is_err()
    {
        warn!(
            "{} viewer(s) did not close within {viewers_grace:?}; dropping them",
            state.viewers_connected()
        );
    }
    Ok(())
}

/// Completes on Ctrl-C, or on SIGTERM where there are signals.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(err) => {
                warn!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in colour only on a terminal.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (as in tests) keeps the first subscriber, which is what is wanted.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
