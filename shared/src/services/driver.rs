//! Driver: the source of truth for drivers. It owns their names (`drivers`) and their rating and
//! car (`driver_details`), answers lookups of the details, and publishes DriverUpdated on a
//! rename — but not on a rating change: the hybrid pattern fetches details on demand instead.

use super::{DRIVER_DETAILS_TABLE, DRIVERS_TABLE, details_row_value, parse_details_row};
use crate::protocol::{DomainEvent, DriverDetails, DriverName, Payload, ServiceId, rating_text};
use crate::service::{Ctx, Envelope, Input, Service};

/// How Driver is wired.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Where renames are published, if anywhere.
    pub broker: Option<ServiceId>,
}

/// The Driver service. It keeps nothing in memory: its tables are all its state.
#[derive(Debug)]
pub struct Driver {
    config: DriverConfig,
}

fn no_driver(driver: u64) -> Payload {
    Payload::Failed {
        reason: format!("no driver {driver}"),
    }
}

/// The driver's details as stored, or `None` when the row is missing or unreadable.
fn read_details(driver: u64, ctx: &Ctx<'_>) -> Option<DriverDetails> {
    let row = ctx.read(DRIVER_DETAILS_TABLE, &driver.to_string())?;
    let (rating_tenths, car) = parse_details_row(&row.value)?;
    Some(DriverDetails {
        driver,
        rating_tenths,
        car,
        version: row.version,
    })
}

impl Driver {
    /// A freshly started Driver.
    pub fn new(config: DriverConfig) -> Driver {
        Driver { config }
    }

    fn rename(&self, request: &Envelope, driver: u64, name: &str, ctx: &mut Ctx<'_>) {
        let key = driver.to_string();
        let Some(row) = ctx.read(DRIVERS_TABLE, &key) else {
            ctx.reply(request, no_driver(driver));
            return;
        };
        let version = row.version + 1;
        ctx.write(DRIVERS_TABLE, &key, name, version);
        if let Some(broker) = self.config.broker {
            let event = DomainEvent::DriverUpdated(DriverName {
                driver,
                name: name.to_string(),
                version,
            });
            ctx.send(
                broker,
                Payload::Publish(event),
                request.op,
                Some(request.id),
            );
            ctx.narrate(format!(
                "Driver renamed driver {driver} to {name}; Ride's copy will catch up when DriverUpdated arrives."
            ));
        }
        ctx.reply(request, Payload::DriverRenamed { driver, version });
    }

    fn rate(&self, request: &Envelope, driver: u64, rating_tenths: u32, ctx: &mut Ctx<'_>) {
        let Some(details) = read_details(driver, ctx) else {
            ctx.reply(request, no_driver(driver));
            return;
        };
        let version = details.version + 1;
        let value = details_row_value(rating_tenths, &details.car);
        ctx.write(DRIVER_DETAILS_TABLE, &driver.to_string(), &value, version);
        ctx.narrate(format!(
            "Driver re-rated driver {driver} to {}. Nothing tells Ride: a copy of the old rating in its cache lives until it expires.",
            rating_text(rating_tenths)
        ));
        ctx.reply(request, Payload::DriverRated { driver, version });
    }
}

impl Service for Driver {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        let Input::Message(request) = input else {
            return;
        };
        match &request.payload {
            Payload::GetDriverDetails { driver } => {
                let answer = read_details(*driver, ctx)
                    .map_or_else(|| no_driver(*driver), Payload::DriverDetailsInfo);
                ctx.reply(request, answer);
            }
            Payload::RenameDriver { driver, name } => self.rename(request, *driver, name, ctx),
            Payload::RateDriver {
                driver,
                rating_tenths,
            } => self.rate(request, *driver, *rating_tenths, ctx),
            // Answers from the broker (a rejected publish) need no action: the broker narrates it.
            _ => {}
        }
    }
}
