//! The world a run takes place in, as a scenario builds it — services, links, copies, network,
//! faults — and what every driver (the simulation in the `engine` crate, and the live runtime)
//! writes the same way: the trace's header, a service's starting rows, and the narration of
//! crashes, restarts and network faults.

use crate::protocol::{
    CopyDecl, Event, Fault, FaultSpec, LinkId, LinkSpec, PROTOCOL_VERSION, ServiceId, ServiceInfo,
    ServiceRole, TraceHeader,
};
use crate::service::{Row, Service, Tables};
use crate::time::Micros;

/// Builds a fresh instance of a service's state machine, at start and after each restart.
pub type MachineFactory = Box<dyn Fn() -> Box<dyn Service>>;

/// One service as a scenario sets it up.
pub struct ServiceSetup {
    /// Its name and role; its id is its index.
    pub info: ServiceInfo,
    /// Makes its state machine.
    pub make: MachineFactory,
    /// Rows its tables hold when the run starts: `(table, key, row)`.
    pub initial_rows: Vec<(String, String, Row)>,
}

/// Writes a service's starting rows into `tables`, handing the `RowWritten` of each to `record`:
/// the simulation and the live runtime start every service this one way. Not generic, so it is
/// built once, with this crate: once per service per run, it needs no speed.
pub fn seed_tables(
    service: ServiceId,
    rows: Vec<(String, String, Row)>,
    tables: &mut dyn Tables,
    record: &mut dyn FnMut(Event),
) {
    for (table, key, row) in rows {
        record(Event::RowWritten {
            service,
            table: table.clone(),
            key: key.clone(),
            value: row.value.clone(),
            version: row.version,
        });
        tables.put(&table, &key, row);
    }
}

/// What a service's crash means, as the simulation and the live runtime narrate it.
pub fn crash_narration(info: &ServiceInfo) -> String {
    let name = &info.name;
    match info.role {
        // Its queues are the machine's state, not rows of its tables: as the simulation models
        // an in-memory broker, a crash loses what waited in them.
        ServiceRole::Broker => format!(
            "{name} crashes: its queues were in its memory, so the events waiting in them are lost \
             (a broker with durable queues, such as RabbitMQ, would keep them), and publishes to \
             it are refused."
        ),
        _ => {
            format!("{name} crashes: what it held in memory is gone, and calls to it are refused.")
        }
    }
}

/// What a service's restart means, as the simulation and the live runtime narrate it.
pub fn restart_narration(name: &str) -> String {
    format!("{name} restarts, with its database intact.")
}

/// What is run, as the trace's header names it.
pub struct RunInfo {
    /// The scenario's name.
    pub scenario: String,
    /// The seed the run's generator was made from.
    pub seed: u64,
    /// Every knob's value.
    pub knobs: crate::protocol::KnobMap,
    /// The run covers `0..until`.
    pub until: Micros,
}

/// Everything a run needs, as built by a scenario.
pub struct World {
    /// The services, indexed by id.
    pub services: Vec<ServiceSetup>,
    /// Which services talk, for drawing.
    pub links: Vec<(ServiceId, ServiceId)>,
    /// Tables that copy other tables.
    pub copies: Vec<CopyDecl>,
    /// How the network behaves.
    pub network: LinkSpec,
    /// Faults set by the scenario's knobs.
    pub faults: Vec<FaultSpec>,
    /// A first narration line: what this run shows.
    pub intro: String,
}

/// The header of a trace of `world` run as `run`; every driver writes this one.
pub fn trace_header(run: &RunInfo, world: &World) -> TraceHeader {
    TraceHeader {
        protocol_version: PROTOCOL_VERSION,
        scenario: run.scenario.clone(),
        seed: run.seed,
        until: run.until,
        knobs: run.knobs.clone(),
        services: world.services.iter().map(|s| s.info.clone()).collect(),
        links: world.links.clone(),
        network: world.network,
        copies: world.copies.clone(),
        faults: world.faults.clone(),
    }
}

/// A caption for a network fault beginning or ending; every driver narrates faults with it.
pub fn describe_fault(fault: &Fault, services: &[ServiceInfo], begins: bool) -> String {
    let name = |id: ServiceId| services[id.0 as usize].name.clone();
    let link = |link: LinkId| match link {
        LinkId::All => "every link".to_string(),
        LinkId::Between(a, b) => format!("the {}–{} link", name(a), name(b)),
    };
    match (fault, begins) {
        (Fault::Crash { service }, _) => format!("{} crashes.", name(*service)),
        (Fault::Slow { service, factor }, true) => format!(
            "{} slows down: messages to and from it take {factor}× as long.",
            name(*service)
        ),
        (Fault::Slow { service, .. }, false) => format!("{} is fast again.", name(*service)),
        (Fault::Partition { link: l }, true) => format!(
            "Network partition: {} loses every message, and no sender is told.",
            link(*l)
        ),
        (Fault::Partition { link: l }, false) => {
            format!("The partition heals: {} works again.", link(*l))
        }
        (Fault::Drop { link: l, percent }, true) => {
            format!(
                "{} starts losing {percent} % of its messages.",
                capitalized(&link(*l))
            )
        }
        (Fault::Duplicate { link: l, percent }, true) => format!(
            "{} starts delivering {percent} % of its messages twice.",
            capitalized(&link(*l))
        ),
        (Fault::Reorder { link: l, percent }, true) => format!(
            "{} starts holding back {percent} % of its messages, so later ones overtake them.",
            capitalized(&link(*l))
        ),
        (
            Fault::Drop { link: l, .. }
            | Fault::Duplicate { link: l, .. }
            | Fault::Reorder { link: l, .. },
            false,
        ) => {
            format!("{} behaves again.", capitalized(&link(*l)))
        }
    }
}

/// `text` with its first letter capitalized: an ASCII one (every narration starts with one),
/// so the page carries no Unicode case tables.
fn capitalized(text: &str) -> String {
    let mut text = text.to_string();
    if let Some(first) = text.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narration_starts_with_a_capital() {
        assert_eq!(capitalized("every link"), "Every link");
        assert_eq!(
            capitalized("the Order–Product link"),
            "The Order–Product link"
        );
        assert_eq!(capitalized(""), "");
        let services = [
            ServiceInfo {
                id: ServiceId(0),
                name: "Order".into(),
                role: ServiceRole::Service,
            },
            ServiceInfo {
                id: ServiceId(1),
                name: "Product".into(),
                role: ServiceRole::Service,
            },
        ];
        let drop = Fault::Drop {
            link: LinkId::Between(ServiceId(0), ServiceId(1)),
            percent: 10,
        };
        assert!(
            describe_fault(&drop, &services, false).starts_with("The Order–Product link"),
            "{}",
            describe_fault(&drop, &services, false)
        );
    }
}
