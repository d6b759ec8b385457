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
pub use state::{AppState, ServerConfig, ViewerWriteBudget};

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
    let page_policy = headers::PagePolicy::new(state.config().dist_dir.clone());
    Router::new()
        .route("/ws", get(ws::upgrade))
        .merge(http::routes(state.config().dist_dir.clone()))
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
    // Each viewer's address, for the bound on viewers per address.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves a whole server: [`app`] on `listener` until `shutdown` completes; then, within
/// `grace` in all, ends the live run (deleting its RabbitMQ queues), tells every viewer the
/// server is going away and lets open requests finish. Whatever is not done by then is left.
///
/// Viewers need their own step because an upgraded WebSocket is no longer an HTTP request, so
/// [`run`]'s graceful shutdown does not wait for it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let dist_dir = &state.config().dist_dir;
    if !dist_dir.join("index.html").is_file() {
        warn!(
            "{} has no index.html: the page answers 503 until it is built with `trunk build --release`",
            dist_dir.display()
        );
    }
    info!("crosstalk: serving http://{}", listener.local_addr()?);
    let (began, mut deadline) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        began.send_replace(Some(tokio::time::Instant::now() + grace));
        info!("shutting down: ending the live run, closing viewers, finishing open requests");
        stopping.stop_viewers();
        if let Some(run) = stopping.live() {
            run.stop();
        }
    };
    let serving = run(listener, app(state.clone()), shutdown);
    tokio::pin!(serving);
    let served_early = tokio::select! {
        served = &mut serving => Some(served),
        _ = deadline.wait_for(Option::is_some) => None,
    };
    let deadline = (*deadline.borrow()).unwrap_or_else(|| tokio::time::Instant::now() + grace);
    // The live run first, so its queues never outlive the server; then open requests.
    let finishing = async {
        state.stop_live().await;
        match served_early {
            Some(served) => served,
            None => (&mut serving).await,
        }
    };
    match tokio::time::timeout_at(deadline, finishing).await {
        Ok(served) => served?,
        Err(_) => warn!("the server did not finish within {grace:?}; leaving what is left"),
    }
    if tokio::time::timeout_at(deadline, state.viewers_closed())
        .await
        .is_err()
    {
        warn!(
            "{} viewer(s) did not close within {grace:?}; dropping them",
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
