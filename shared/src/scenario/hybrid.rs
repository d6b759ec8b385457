//! Hybrid, the article's Ride/Driver: Ride keeps each ride's driver and a copy of driver names,
//! kept fresh by DriverUpdated events; it asks Driver synchronously for the rating and car,
//! through a cache with a TTL.

use super::workload::{
    CapacityKnobs, LINK_LATENCY, capacity_knobs, copy_feed_broker, down_at, down_for, every,
    network, outage, setup, with_capacity,
};
use super::{KnobSpec, Knobs};
use crate::protocol::{CopyDecl, ServiceId, ServiceRole};
use crate::rng::SimRng;
use crate::service::Row;
use crate::services::{
    Broker, Client, ClientConfig, DRIVER_DETAILS_TABLE, DRIVER_NAMES_COPY_TABLE, DRIVERS_TABLE,
    Driver, DriverConfig, Operation, RATE_DRIVER_OP, READ_RIDE_OP, RENAME_DRIVER_OP, RIDES_TABLE,
    RequestKind, Ride, RideConfig, details_row_value, driver_car, initial_driver_name,
    initial_rating_tenths, ride_row_value,
};
use crate::time::Micros;
use crate::world::World;

/// Drivers are numbered `1..=DRIVERS`.
pub const DRIVERS: u64 = 8;
/// Rides are numbered `1..=RIDES`.
pub const RIDES: u64 = 20;

const READS: KnobSpec = KnobSpec {
    name: "read_rate_per_s",
    label: "Reads",
    unit: "per s",
    default: 2.0,
    min: 0.0,
    max: 50.0,
    live_max: Some(5_000.0),
    whole: false,
    choices: &[],
    help: "How often riders open a ride with its driver's name, rating and car.",
};
const RENAMES: KnobSpec = KnobSpec {
    name: "rename_rate_per_s",
    label: "Renames",
    unit: "per s",
    default: 0.5,
    min: 0.0,
    max: 20.0,
    live_max: Some(1_000.0),
    whole: false,
    choices: &[],
    help: "How often a driver changes their name in Driver; Ride's copy learns it by event.",
};
const RATING_CHANGES: KnobSpec = KnobSpec {
    name: "rating_change_rate_per_s",
    label: "Rating changes",
    unit: "per s",
    default: 0.5,
    min: 0.0,
    max: 20.0,
    live_max: Some(1_000.0),
    whole: false,
    choices: &[],
    help: "How often a driver's rating changes in Driver; nothing tells Ride's cache.",
};
const CACHE_TTL: KnobSpec = KnobSpec {
    name: "cache_ttl_ms",
    label: "Cache TTL",
    unit: "ms",
    default: 10_000.0,
    min: 0.0,
    max: 120_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long Ride reuses Driver's answer for a driver before asking again; 0 means no cache.",
};
const CALL_TIMEOUT: KnobSpec = KnobSpec {
    name: "call_timeout_ms",
    label: "Ride's call timeout",
    unit: "ms",
    default: 400.0,
    min: 1.0,
    max: 10_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long Ride waits for Driver before failing the read.",
};
const BROKER_DELAY: KnobSpec = KnobSpec {
    name: "broker_delay_ms",
    label: "Broker delay",
    unit: "ms",
    default: 300.0,
    min: 0.0,
    max: 10_000.0,
    live_max: None,
    whole: false,
    choices: &[],
    help: "How long the broker holds each DriverUpdated before delivering it: Ride's copy of the name lags this much.",
};
const DRIVER_DOWN_AT: KnobSpec = down_at("driver_down_at_s", "Driver down at", 15.0);
const DRIVER_DOWN_FOR: KnobSpec = down_for("driver_down_for_s", "Driver down for", 5.0);

/// Driver's capacity: workers, time per request, waiting queue (unlimited by default).
pub const DRIVER_CAPACITY: CapacityKnobs = capacity_knobs!("driver", "Driver");

pub const KNOBS: &[KnobSpec] = &[
    READS,
    RENAMES,
    RATING_CHANGES,
    CACHE_TTL,
    LINK_LATENCY,
    CALL_TIMEOUT,
    BROKER_DELAY,
    DRIVER_DOWN_AT,
    DRIVER_DOWN_FOR,
    DRIVER_CAPACITY.all()[0],
    DRIVER_CAPACITY.all()[1],
    DRIVER_CAPACITY.all()[2],
];

/// Why these knob values do not go together, if they do not.
pub fn refuse(knobs: &Knobs) -> Option<String> {
    DRIVER_CAPACITY.refuse(knobs)
}

const CLIENT: ServiceId = ServiceId(0);
const RIDE: ServiceId = ServiceId(1);
const DRIVER: ServiceId = ServiceId(2);
const BROKER: ServiceId = ServiceId(3);

/// Reads that may wait on Driver at once: far above what the fastest workload keeps waiting
/// (50 reads a second for a 10 s timeout), so only a pathological run meets it.
const MAX_WAITING_READS: usize = 1_000;

fn row(table: &str, key: u64, value: String) -> (String, String, Row) {
    (
        table.to_string(),
        key.to_string(),
        Row { value, version: 1 },
    )
}

/// Driver's own tables: every driver's name, and their rating and car.
fn driver_tables() -> Vec<(String, String, Row)> {
    (1..=DRIVERS)
        .flat_map(|driver| {
            let details = details_row_value(initial_rating_tenths(driver), driver_car(driver));
            [
                row(DRIVERS_TABLE, driver, initial_driver_name(driver)),
                row(DRIVER_DETAILS_TABLE, driver, details),
            ]
        })
        .collect()
}

/// Ride's tables: each ride with a driver picked at random, and its copy of driver names.
fn ride_tables(rng: &mut SimRng) -> Vec<(String, String, Row)> {
    let rides =
        (1..=RIDES).map(|ride| row(RIDES_TABLE, ride, ride_row_value(1 + rng.below(DRIVERS))));
    let names = (1..=DRIVERS)
        .map(|driver| row(DRIVER_NAMES_COPY_TABLE, driver, initial_driver_name(driver)));
    rides.chain(names).collect()
}

fn operation(
    name: &'static str,
    knob: &KnobSpec,
    knobs: &Knobs,
    to: ServiceId,
    request: RequestKind,
) -> Operation {
    Operation {
        name,
        every: every(knobs.get(knob.name)),
        to,
        request,
    }
}

pub fn build(knobs: &Knobs, rng: &mut SimRng) -> World {
    let network = network(knobs);
    let call_timeout = Micros::from_millis_f64(knobs.get(CALL_TIMEOUT.name));
    let cache_ttl = Micros::from_millis_f64(knobs.get(CACHE_TTL.name));
    let client = ClientConfig {
        operations: vec![
            operation(
                READ_RIDE_OP,
                &READS,
                knobs,
                RIDE,
                RequestKind::ReadRide {
                    rides: RIDES,
                    source: DRIVER,
                },
            ),
            operation(
                RENAME_DRIVER_OP,
                &RENAMES,
                knobs,
                DRIVER,
                RequestKind::RenameDriver {
                    drivers: DRIVERS,
                    source: DRIVER,
                },
            ),
            operation(
                RATE_DRIVER_OP,
                &RATING_CHANGES,
                knobs,
                DRIVER,
                RequestKind::RateDriver {
                    drivers: DRIVERS,
                    source: DRIVER,
                },
            ),
        ],
        // The client outwaits Ride's call to Driver, so Ride's own verdict reaches it.
        timeout: call_timeout + Micros::from_secs(1) + Micros(network.latency.0 * 4),
    };
    let ride = RideConfig {
        driver: DRIVER,
        call_timeout,
        cache_ttl,
        cache_capacity: DRIVERS as usize,
        max_waiting_reads: MAX_WAITING_READS,
    };
    let broker = copy_feed_broker(
        "driver",
        RIDE,
        "ride",
        Micros::from_millis_f64(knobs.get(BROKER_DELAY.name)),
        &network,
        false,
    );
    let cache = if cache_ttl == Micros::ZERO {
        "keeps no cache, so every read calls Driver".to_string()
    } else {
        format!(
            "keeps Driver's answers in a cache for {} s",
            crate::float_text::shortest(cache_ttl.as_secs_f64())
        )
    };
    World {
        services: vec![
            setup(
                CLIENT,
                "Client",
                ServiceRole::Client,
                client,
                Client::new,
                vec![],
            ),
            setup(
                RIDE,
                "Ride",
                ServiceRole::Service,
                ride,
                Ride::new,
                ride_tables(rng),
            ),
            with_capacity(
                setup(
                    DRIVER,
                    "Driver",
                    ServiceRole::Service,
                    DriverConfig {
                        broker: Some(BROKER),
                    },
                    Driver::new,
                    driver_tables(),
                ),
                DRIVER_CAPACITY.config(knobs),
            ),
            setup(
                BROKER,
                "Broker",
                ServiceRole::Broker,
                broker,
                Broker::new,
                vec![],
            ),
        ],
        links: vec![
            (CLIENT, RIDE),
            (CLIENT, DRIVER),
            (RIDE, DRIVER),
            (DRIVER, BROKER),
            (BROKER, RIDE),
        ],
        copies: vec![CopyDecl {
            copy_service: RIDE,
            copy_table: DRIVER_NAMES_COPY_TABLE.to_string(),
            source_service: DRIVER,
            source_table: DRIVERS_TABLE.to_string(),
        }],
        network,
        faults: outage(knobs, DRIVER, &DRIVER_DOWN_AT, &DRIVER_DOWN_FOR),
        intro: format!(
            "Ride answers each read with the driver's name from its own copy, kept fresh by DriverUpdated \
             events, and asks Driver for the rating and car. It {cache}."
        ),
    }
}
