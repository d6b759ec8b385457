//! `crosstalk`: serve the page and live traces, simulate a run, or list the scenarios.
//!
//! Only argument parsing and exit codes live here; the work is in the `backend` library.

use anyhow::Context;
use backend::access::{AccessPolicy, Origin};
use backend::cli::{self, CatalogFormat, CliError, CompareFormat, SimulateFormat};
use backend::crowd::{CrowdConfig, CrowdServer, crowd};
use backend::live::{BrokerChoice, LiveConfig, Storage};
use backend::secret::BrokerUrl;
use backend::{AppState, ServerConfig, ViewerWriteBudget};
use clap::{Parser, Subcommand};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Watch microservices share data.
#[derive(Debug, Parser)]
#[command(name = "crosstalk", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the built page, live traces over /ws, and /healthz.
    Serve {
        /// The address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// The directory holding the built page (`trunk build --release` writes it).
        #[arg(long, default_value = "dist")]
        dist: PathBuf,
        /// The most viewers streaming at once; more are refused with 503.
        #[arg(long, default_value_t = ServerConfig::default().max_viewers)]
        max_viewers: usize,
        /// The most viewers from one address at once; more are refused with 429. Behind a
        /// reverse proxy every viewer comes from the proxy's address: raise it to --max-viewers.
        #[arg(long, default_value_t = ServerConfig::default().max_viewers_per_address)]
        max_viewers_per_address: usize,
        /// Let every viewer control the live run (start, stop, crash, …), as in a classroom;
        /// by default only the viewer who started it does, and the others watch.
        #[arg(long)]
        open_control: bool,
        /// Let pages at this origin (such as https://blog.example, which embeds the page) open
        /// /ws; the page's own origin always may. Repeat for more origins. Also the host names
        /// the server answers to, besides IP addresses and localhost.
        #[arg(long = "allow-origin", value_name = "ORIGIN", value_parser = Origin::parse)]
        allow_origin: Vec<Origin>,
        /// The writes per second to a live run's viewers, all together, the server aims at once
        /// 500 or more watch: after each write a viewer waits viewers ÷ this (at most 100 ms),
        /// and the frames that come meanwhile go out in its next write. 0: never wait.
        #[arg(long, value_name = "WRITES", default_value_t = ViewerWriteBudget::default().writes_per_s)]
        viewer_writes_per_s: u32,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Run a scenario live: real services on loopback ports, each with its own SQLite database,
    /// talking over HTTP and a broker; print its trace or its numbers when it ends.
    Live {
        /// The scenario, such as request-response (see `crosstalk scenarios`).
        #[arg(long)]
        scenario: String,
        /// The seed of the services' generators (the workload's choices).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        seed: u64,
        /// How many seconds to run [default: the scenario's own length]; Ctrl-C ends it sooner.
        #[arg(long = "for", value_name = "SECONDS", allow_negative_numbers = true)]
        for_s: Option<f64>,
        /// Set a knob, such as read_rate_per_s=5; repeat for more knobs.
        #[arg(long = "set", value_name = "KNOB=VALUE")]
        set: Vec<String>,
        /// Inject a fault, as for `simulate` (crash:Product@10+5, partition:Order-Product@3+2, …);
        /// repeat for more faults.
        #[arg(long = "fault", value_name = "FAULT")]
        fault: Vec<String>,
        /// jsonl: the whole trace as JSON lines; summary: one line of JSON with the numbers.
        #[arg(long, value_enum, default_value_t)]
        format: SimulateFormat,
        /// Instead of the trace, measure how fast it reaches a WebSocket viewer and print that.
        #[arg(long)]
        bench: bool,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// The load tool: open many real WebSocket viewers of one live run and print what they
    /// received (events per second, event-to-viewer delay, resyncs, the server's memory).
    Crowd {
        /// How many viewers watch, the one starting the run included.
        #[arg(long, default_value_t = 100)]
        viewers: usize,
        /// The scenario run live.
        #[arg(long, default_value = "request-response")]
        scenario: String,
        /// The seed of the services' generators.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        seed: u64,
        /// How many seconds the run lasts.
        #[arg(long = "for", value_name = "SECONDS", default_value_t = 20.0)]
        for_s: f64,
        /// Set a knob, such as read_rate_per_s=50; repeat for more knobs.
        #[arg(long = "set", value_name = "KNOB=VALUE")]
        set: Vec<String>,
        /// Seconds at the start of the run that are not measured.
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
        warmup: f64,
        /// Watch a server already running at this ws:// address instead of starting one.
        #[arg(long, value_name = "WS_URL")]
        url: Option<String>,
        /// That server's process id, to read its memory and CPU time.
        #[arg(long, requires = "url")]
        server_pid: Option<u32>,
        /// An argument for the `crosstalk serve` the tool starts, such as
        /// --server-arg=--viewer-writes-per-s=0; repeat for more.
        #[arg(
            long = "server-arg",
            value_name = "ARG",
            allow_hyphen_values = true,
            conflicts_with = "url"
        )]
        server_arg: Vec<String>,
    },
    /// Run a scenario and print its trace or its numbers.
    Simulate {
        /// The scenario, such as request-response (see `crosstalk scenarios`).
        #[arg(long)]
        scenario: String,
        /// The seed of the run's generator: same seed, same trace.
        // Negative numbers are taken as values so that `--seed -1` is called an invalid seed.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        seed: u64,
        /// How many seconds to run [default: the scenario's own length].
        #[arg(long, allow_negative_numbers = true)]
        until: Option<f64>,
        /// Set a knob, such as read_rate_per_s=5; repeat for more knobs.
        #[arg(long = "set", value_name = "KNOB=VALUE")]
        set: Vec<String>,
        /// Inject a fault, such as crash:Product@10+5, slow:Product*4@10+5,
        /// partition:Order-Product@10+5, drop:Order-Product=20%@0, duplicate:*=10%@0,
        /// reorder:Broker-Order=30%@0 (times in seconds; without +DURATION it lasts to the end);
        /// repeat for more faults.
        #[arg(long = "fault", value_name = "FAULT")]
        fault: Vec<String>,
        /// jsonl: the whole trace as JSON lines; summary: one line of JSON with the numbers.
        #[arg(long, value_enum, default_value_t)]
        format: SimulateFormat,
    },
    /// Run one workload under every pattern, healthy and with the source of truth down, and
    /// print the article's trade-off table with measured numbers.
    Compare {
        /// The seed of every run.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        seed: u64,
        /// markdown: a table for reading or pasting; json: everything, for scripts.
        #[arg(long, value_enum, default_value_t)]
        format: CompareFormat,
    },
    /// Check a recorded trace (JSON lines, as simulate, live or the page write it) for
    /// anomalies: stale and aborted reads, copy regressions, duplicates applied, confirmed events
    /// never applied, lost and partial updates. Prints the count of each kind and the first
    /// anomalies with the events that prove them. Exits 0 whatever it finds (unless
    /// --fail-on-anomaly), 2 when the file cannot be read or is not a trace.
    Check {
        /// The trace file.
        file: PathBuf,
        /// How many anomalies to list after the counts.
        #[arg(long, default_value_t = 20)]
        first: usize,
        /// Exit with 3 when any anomaly is found, for scripts that gate on a clean run.
        #[arg(long)]
        fail_on_anomaly: bool,
    },
    /// List the scenarios and their knobs.
    Scenarios {
        /// text for reading, json for scripts.
        #[arg(long, value_enum, default_value_t)]
        format: CatalogFormat,
    },
}

/// Where live services keep their databases.
#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// Keep live services' SQLite files here, one per service, in a new folder for each run
    /// (mode 0700), kept after the run [default: such a folder under crosstalk-live in the
    /// system's temporary folder, removed when the run ends].
    #[arg(long, value_name = "DIR", conflicts_with = "in_memory")]
    data: Option<PathBuf>,
    /// Keep live services' databases in memory instead of files.
    #[arg(long)]
    in_memory: bool,
    /// Carry events through RabbitMQ at this URL, such as amqp://guest:guest@127.0.0.1:5672/%2f,
    /// instead of the embedded broker.
    // Checked after parsing, not by clap, whose message would repeat the value and its password.
    #[arg(long, value_name = "AMQP_URL", value_parser = |text: &str| Ok::<_, String>(BrokerUrl::new(text)))]
    broker: Option<BrokerUrl>,
}

/// Accepts `amqp://…` URLs only (the connection is plain, for a broker on this machine).
fn check_broker_url(url: &BrokerUrl) -> Result<(), CliError> {
    if url.expose().starts_with("amqp://") {
        Ok(())
    } else {
        Err(CliError::BadArgument(format!(
            "--broker {url} is not an amqp:// URL; use one such as amqp://guest:guest@127.0.0.1:5672/%2f"
        )))
    }
}

impl LiveArgs {
    fn config(self) -> Result<LiveConfig, CliError> {
        if let Some(url) = &self.broker {
            check_broker_url(url)?;
        }
        let storage = if self.in_memory {
            Storage::Memory
        } else {
            match self.data {
                Some(dir) => Storage::Dir(dir),
                None => Storage::Scratch(std::env::temp_dir().join("crosstalk-live")),
            }
        };
        Ok(LiveConfig {
            storage,
            broker: self
                .broker
                .map_or(BrokerChoice::Embedded, BrokerChoice::Amqp),
            ..LiveConfig::default()
        })
    }
}

/// How long the server takes at most to stop after Ctrl-C or SIGTERM: the live run ends and
/// its queues are deleted, viewers are told, open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);

/// Completes on the first Ctrl-C or SIGTERM; a second one exits the process at once.
async fn first_signal() {
    backend::shutdown_signal().await;
    tokio::spawn(async {
        backend::shutdown_signal().await;
        let _ = writeln!(std::io::stderr(), "crosstalk: a second signal: exiting now");
        std::process::exit(130);
    });
}

fn main() -> ExitCode {
    // Clap prints its own usage errors and exits with 2.
    let args = Args::parse();
    backend::init_tracing();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit_for(&err),
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Serve {
            bind,
            dist,
            max_viewers,
            max_viewers_per_address,
            open_control,
            allow_origin,
            viewer_writes_per_s,
            live,
        } => serve(
            ServerConfig {
                dist_dir: dist,
                max_viewers,
                max_viewers_per_address,
                open_control,
                access: AccessPolicy {
                    allowed_origins: allow_origin,
                },
                live: live.config()?,
                viewer_writes: ViewerWriteBudget {
                    writes_per_s: viewer_writes_per_s,
                    ..ViewerWriteBudget::default()
                },
                ..ServerConfig::default()
            },
            bind,
        ),
        Command::Live {
            scenario,
            seed,
            for_s,
            set,
            fault,
            format,
            bench,
            live,
        } => {
            let request =
                cli::run_request(&scenario, seed, for_s, &set, &fault).map_err(CliError::from)?;
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let mut out = BufWriter::new(std::io::stdout().lock());
            if bench {
                let measured =
                    runtime.block_on(backend::bench::live_bench(&request, live.config()?))?;
                serde_json::to_writer(&mut out, &measured).context("cannot write the output")?;
                writeln!(out).map_err(CliError::from)?;
                out.flush().map_err(CliError::from)?;
                return Ok(());
            }
            let warning = runtime.block_on(cli::live(
                &request,
                live.config()?,
                format,
                first_signal(),
                &mut out,
            ))?;
            warn(warning);
            Ok(())
        }
        Command::Crowd {
            viewers,
            scenario,
            seed,
            for_s,
            set,
            warmup,
            url,
            server_pid,
            server_arg,
        } => {
            let request = cli::run_request(&scenario, seed, Some(for_s), &set, &[])
                .map_err(CliError::from)?;
            let server = match url {
                Some(url) => CrowdServer::Running {
                    url,
                    pid: server_pid,
                },
                None => CrowdServer::Spawn {
                    binary: std::env::current_exe().context("cannot find this executable")?,
                    extra_args: server_arg,
                },
            };
            let config = CrowdConfig {
                viewers: viewers.max(1),
                request,
                warmup: Duration::from_secs_f64(warmup.max(0.0)),
                server,
            };
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let report = runtime.block_on(crowd(config))?;
            let mut out = BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer(&mut out, &report).context("cannot write the output")?;
            writeln!(out).map_err(CliError::from)?;
            out.flush().map_err(CliError::from)?;
            Ok(())
        }
        Command::Simulate {
            scenario,
            seed,
            until,
            set,
            fault,
            format,
        } => {
            let request =
                cli::run_request(&scenario, seed, until, &set, &fault).map_err(CliError::from)?;
            let mut out = BufWriter::new(std::io::stdout().lock());
            let warning = cli::simulate(&request, format, &mut out)?;
            warn(warning);
            Ok(())
        }
        Command::Compare { seed, format } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            cli::compare(seed, format, &mut out)?;
            out.flush().map_err(CliError::from)?;
            Ok(())
        }
        Command::Check {
            file,
            first,
            fail_on_anomaly,
        } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            let report = cli::check_file(&file, first, &mut out)?;
            if fail_on_anomaly && report.anomalies > 0 {
                return Err(AnomaliesFound(report.anomalies).into());
            }
            Ok(())
        }
        Command::Scenarios { format } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            cli::scenarios(format, &mut out)?;
            out.flush().map_err(CliError::from)?;
            Ok(())
        }
    }
}

/// `check --fail-on-anomaly` found some: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0} anomalies found")]
struct AnomaliesFound(u64);

fn serve(config: ServerConfig, bind: String) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let state = AppState::new(config);
        backend::serve(listener, state, first_signal(), SHUTDOWN_GRACE)
            .await
            .context("the server failed")
    })
}

/// Prints a run's warning, such as a run cut short, on stderr (stdout holds the output).
fn warn(warning: Option<String>) {
    if let Some(warning) = warning {
        let _ = writeln!(std::io::stderr(), "crosstalk: {warning}");
    }
}

/// Reports `err` on one line and picks the exit code: 2 for bad input, 1 for anything else,
/// and a quiet success when stdout's reader went away (`crosstalk simulate ... | head`).
fn exit_for(err: &anyhow::Error) -> ExitCode {
    let cli_error = err.downcast_ref::<CliError>();
    if cli_error.is_some_and(CliError::is_broken_pipe) {
        return ExitCode::SUCCESS;
    }
    // Writing to stderr can fail too (a closed terminal); there is nobody left to tell then.
    let _ = writeln!(std::io::stderr(), "crosstalk: error: {err:#}");
    if err.downcast_ref::<AnomaliesFound>().is_some() {
        return ExitCode::from(3);
    }
    match cli_error {
        Some(CliError::BadInput(_) | CliError::BadArgument(_) | CliError::BadTrace(_)) => {
            ExitCode::from(2)
        }
        _ => ExitCode::FAILURE,
    }
}
