//! The scenarios: each a lesson of the article, with a default topology, workload and knobs.

mod duplication;
mod event_driven;
mod eventual_consistency;
mod faults;
mod gateway;
mod heaviest;
mod hybrid;
mod knobs;
mod request_response;
pub use heaviest::{heaviest_run_label, heaviest_runs};
pub use request_response::big_run;
mod workload;

pub use event_driven::INITIAL_STOCK;
pub use faults::{SLOW_FACTOR_MAX, fault_label, fault_text, parse_fault};
pub use knobs::{Driver, KnobSpec, Knobs, parse_knob_assignment};

use crate::float_text::{exp, exp_fixed, shortest};
use crate::protocol::RunRequest;
use crate::rng::SimRng;
use crate::time::Micros;
use crate::world::{RunInfo, World};

/// The longest run, in seconds, that may be requested.
pub const MAX_UNTIL_S: f64 = 600.0;

/// One scenario of the catalog.
pub struct ScenarioSpec {
    /// Its name on the command line, in URLs and in traces, such as `request-response`.
    pub name: &'static str,
    /// Its title in the page.
    pub title: &'static str,
    /// The lesson it shows, in a sentence or two.
    pub lesson: &'static str,
    /// The run length the page starts with.
    pub default_until_s: f64,
    /// Its knobs.
    pub knobs: &'static [KnobSpec],
    build: fn(&Knobs, &mut SimRng) -> World,
    /// Why these knob values do not go together, if they do not.
    refuse: fn(&Knobs) -> Option<String>,
}

/// For scenarios whose knobs all go together.
fn any_combination(_: &Knobs) -> Option<String> {
    None
}

/// Every scenario, in the order the page lists them.
pub fn catalog() -> &'static [ScenarioSpec] {
    &CATALOG
}

static CATALOG: [ScenarioSpec; 6] = [
    ScenarioSpec {
        name: "request-response",
        title: "Request/response",
        lesson: "Order asks Product for every product name on every read. Each call adds a round trip, and when \
                 Product is down or slow, Order's reads fail too: a cascading failure. Give Product a capacity \
                 (workers and a time per request): beyond it calls wait in its queue, then are refused \
                 (503 overloaded), and the system delivers less than it is asked. Resilience knobs: \
                 deadlines let Product drop work nobody waits for; retries without a retry budget \
                 multiply the calls a struggling Product gets (a retry storm), a budget holds them \
                 near none; a circuit breaker answers reads at once from Order's memory, degraded, \
                 and probes until Product is back.",
        default_until_s: 30.0,
        knobs: request_response::KNOBS,
        build: request_response::build,
        refuse: request_response::refuse,
    },
    ScenarioSpec {
        name: "duplication",
        title: "Duplication",
        lesson: "Each order keeps the product names it was placed with. Reads need no call to Product, so \
                 they are fast and survive Product's outage — but a rename leaves every stored copy stale, \
                 unless the rename also updates them all, which makes renames slow and fragile.",
        default_until_s: 30.0,
        knobs: duplication::KNOBS,
        build: duplication::build,
        refuse: any_combination,
    },
    ScenarioSpec {
        name: "eventual-consistency",
        title: "Eventual consistency",
        lesson: "Product publishes ProductUpdated; Order keeps its own copy of product names. Reads never call \
                 Product, so they stay fast and survive Product's outage — but until an event arrives, they \
                 return the old name. Publishing right after the write (dual write) loses the event when \
                 the publish is lost, the broker is down or Product crashes in between, and the copy stays \
                 behind for good; with publish=outbox the rename and its event commit in one transaction \
                 and a relay publishes until the broker confirms, so the copy always catches up.",
        default_until_s: 30.0,
        knobs: eventual_consistency::KNOBS,
        build: eventual_consistency::build,
        refuse: eventual_consistency::refuse,
    },
    ScenarioSpec {
        name: "event-driven",
        title: "Event-driven",
        lesson: "Order publishes OrderCreated and moves on; Inventory and Shipping each read it from their own \
                 queue. A consumer that is down finds its events waiting when it is back, and durable queues keep \
                 them across a broker crash. An event is delivered again when its consumer's connection closes \
                 before its ack (RabbitMQ's rule) — or, under SQS's visibility timeout, when the ack is merely \
                 late: without an idempotency check, the consumer applies it twice. An Order that crashes \
                 between storing an order and publishing it loses the event, unless it publishes through a \
                 transactional outbox (publish=outbox).",
        default_until_s: 30.0,
        knobs: event_driven::KNOBS,
        build: event_driven::build,
        refuse: event_driven::refuse,
    },
    ScenarioSpec {
        name: "gateway",
        title: "Gateway (coordinator)",
        lesson: "A coordinator sends each rename to Product and to Order and waits for both, so a confirmed \
                 rename is everywhere — but the user waits for the slower service, any failure means a \
                 rollback, readers can see a rename before it is decided and then see it rolled back \
                 (aborted reads), and a coordinator crash mid-way leaves a partial update. With \
                 protocol=2pc (two-phase commit) both first prepare the rename and commit it only on the \
                 coordinator's logged decision: no aborted reads, but slower renames, and a coordinator \
                 crash leaves rows in doubt, locked, until it recovers.",
        default_until_s: 30.0,
        knobs: gateway::KNOBS,
        build: gateway::build,
        refuse: gateway::refuse,
    },
    ScenarioSpec {
        name: "hybrid",
        title: "Hybrid (Ride/Driver)",
        lesson: "Ride keeps each ride's driver and a copy of driver names, kept fresh by events, and asks \
                 Driver only for the rating and car — through a cache. Fewer calls and a smaller copy, but \
                 reads still wait on Driver when the cache misses, fail when Driver is down, and a cached \
                 rating can be stale.",
        default_until_s: 30.0,
        knobs: hybrid::KNOBS,
        build: hybrid::build,
        refuse: hybrid::refuse,
    },
];

/// Errors in what was asked to run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// No scenario has that name.
    #[error("unknown scenario {name:?}; known scenarios: {known}")]
    UnknownScenario {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// The scenario has no knob of that name.
    #[error("scenario {scenario} has no knob {knob:?}; its knobs: {known}")]
    UnknownKnob {
        /// The scenario.
        scenario: String,
        /// The knob given.
        knob: String,
        /// The knobs that exist, comma-separated.
        known: String,
    },
    /// A knob's value is outside its range for the run's driver.
    #[error(
        "knob {knob} = {} is out of range: it must be between {} and {} {unit}{}",
        shortest(*.value),
        shortest(*.min),
        shortest(*.max),
        live_range(*.live_max)
    )]
    KnobOutOfRange {
        /// The knob.
        knob: String,
        /// The value given.
        value: f64,
        /// Its smallest value.
        min: f64,
        /// Its largest value for the run's driver.
        max: f64,
        /// Its unit.
        unit: String,
        /// Its largest value in a live run, for a simulated run of a knob that goes further live.
        live_max: Option<f64>,
    },
    /// A knob that counts things was given a fraction.
    #[error("knob {knob} = {} must be a whole number", shortest(*.value))]
    KnobNotWhole {
        /// The knob.
        knob: String,
        /// The value given.
        value: f64,
    },
    /// A rate above zero so small that the time to its next occurrence does not fit the clock.
    #[error(
        "knob {knob} = {} per s is too small: the next one would come about {} s later, beyond \
         what the clock can count; give 0 for never, or at least {} per s",
        exp(*.value),
        exp_fixed(*.interval_s, 0),
        exp(*.min)
    )]
    RateTooSmall {
        /// The knob.
        knob: String,
        /// The value given.
        value: f64,
        /// The mean interval it asks for, in seconds.
        interval_s: f64,
        /// The smallest rate above zero a rate knob takes.
        min: f64,
    },
    /// Knob values that each are in range but do not go together.
    #[error("scenario {scenario} cannot run with these knobs: {reason}")]
    KnobsConflict {
        /// The scenario.
        scenario: String,
        /// Which knobs, and why.
        reason: String,
    },
    /// A `KNOB=VALUE` assignment could not be read.
    #[error("cannot read {text:?}: expected KNOB=VALUE with a number, such as read_rate_per_s=5")]
    BadAssignment {
        /// The text given.
        text: String,
    },
    /// A fault could not be read.
    #[error("cannot read fault {text:?}: {reason}")]
    BadFault {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The run length is outside `0 < until ≤ MAX_UNTIL_S`.
    #[error(
        "run length {} s is out of range: it must be more than 0 and at most {} s",
        shortest(*.until_s),
        shortest(MAX_UNTIL_S)
    )]
    UntilOutOfRange {
        /// The length given.
        until_s: f64,
    },
}

/// The end of a knob's range error that says a live run takes more.
fn live_range(live_max: Option<f64>) -> String {
    live_max.map_or(String::new(), |live_max| {
        format!(
            " in a simulated run; a live run takes up to {}",
            shortest(live_max)
        )
    })
}

/// The scenario named `name`.
pub fn find(name: &str) -> Result<&'static ScenarioSpec, ScenarioError> {
    catalog()
        .iter()
        .find(|spec| spec.name == name)
        .ok_or_else(|| ScenarioError::UnknownScenario {
            name: name.to_string(),
            known: catalog()
                .iter()
                .map(|spec| spec.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A checked request's world, before any driver runs it: what the simulation and the live
/// runtime both start from.
pub struct PreparedRun {
    /// What is run, for the trace's header.
    pub run: RunInfo,
    /// The services, links and faults the scenario built.
    pub world: World,
    /// The run's generator, after the world took its fork.
    pub rng: SimRng,
}

/// Checks a request, its knobs in their ranges for `driver`, and builds its world.
// Never inlined: its one caller in the page is `engine::start`, which the page builds for speed,
// and inlined there this code (run once per run) was built for speed too: 1 KB more page.
#[inline(never)]
pub fn prepare(request: &RunRequest, driver: Driver) -> Result<PreparedRun, ScenarioError> {
    let spec = find(&request.scenario)?;
    let knobs = Knobs::resolve(spec, &request.knobs, driver)?;
    if !(request.until_s > 0.0 && request.until_s <= MAX_UNTIL_S) {
        return Err(ScenarioError::UntilOutOfRange {
            until_s: request.until_s,
        });
    }
    let mut rng = SimRng::new(request.seed);
    let mut world = (spec.build)(&knobs, &mut rng.fork());
    let services: Vec<_> = world.services.iter().map(|s| s.info.clone()).collect();
    for text in &request.faults {
        world.faults.push(parse_fault(text, &services)?);
    }
    // Stable, so faults starting together keep the order they were given in.
    crate::ordered::sort_by_key(&mut world.faults, |spec| spec.at);
    let run = RunInfo {
        scenario: spec.name.to_string(),
        seed: request.seed,
        knobs: header_knobs(spec, &knobs),
        until: Micros::from_secs_f64(request.until_s),
    };
    Ok(PreparedRun { run, world, rng })
}

/// Knobs added after traces were recorded and shared: at their default they are left out of the
/// trace's header, so a run that does not use them keeps its trace, byte for byte, and its hash.
/// A header without one of them means its default (as [`Knobs::resolve`] fills it in).
const LEFT_OUT_AT_DEFAULT: &[&str] = &[
    "protocol",
    "publish",
    "crash_after_write_pct",
    "deadlines",
    "retries",
    "retry_backoff_ms",
    "retry_budget_pct",
    "breaker",
    "breaker_failures",
    "breaker_open_ms",
    "product_workers",
    "product_service_ms",
    "product_queue_max",
    "order_workers",
    "order_service_ms",
    "order_queue_max",
    "driver_workers",
    "driver_service_ms",
    "driver_queue_max",
];

/// The knobs a trace's header records: every knob, except those of [`LEFT_OUT_AT_DEFAULT`] at
/// their default.
fn header_knobs(spec: &ScenarioSpec, knobs: &Knobs) -> crate::protocol::KnobMap {
    let mut values = knobs.values().clone();
    for knob in spec.knobs {
        if LEFT_OUT_AT_DEFAULT.contains(&knob.name) && values.get(knob.name) == Some(&knob.default)
        {
            values.remove(knob.name);
        }
    }
    values
}

/// Runs a request to its end with the `engine` crate, for this crate's unit tests. The engine
/// links this crate as it is built for everyone else, so here its request and trace are other
/// types: they cross over as JSON, the trace checked to write back to the very same text, so
/// nothing is lost on the way (the reader's own tests rely on that).
#[cfg(test)]
pub(crate) fn simulate(request: &RunRequest) -> crate::protocol::Trace {
    let request = serde_json::from_str(&serde_json::to_string(request).unwrap()).unwrap();
    let text = engine::simulate(&request)
        .expect("a valid request")
        .to_jsonl();
    let trace = crate::protocol::Trace::from_jsonl(&text).expect("the engine's trace reads");
    assert_eq!(trace.to_jsonl(), text, "the trace crossed over unchanged");
    trace
}
