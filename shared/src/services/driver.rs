//! Driver: the source of truth for drivers. It owns their names (`drivers`) and their rating and
//! car (`driver_details`), answers lookups of the details, and publishes DriverUpdated on a
//! rename — but not on a rating change: the hybrid pattern fetches details on demand instead.

use super::{DRIVER_DETAILS_TABLE, DRIVERS_TABLE, details_row_value, parse_details_row};
use crate::decimal::Decimal;
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
    let row = ctx.read(DRIVER_DETAILS_TABLE, &Decimal::new(driver))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MsgId, OpId};
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables, Row, Tables};
    use crate::time::Micros;

    const CLIENT: ServiceId = ServiceId(0);
    const DRIVER: ServiceId = ServiceId(2);
    const BROKER: ServiceId = ServiceId(3);

    /// Sends one request to a Driver whose driver 3 is Chen Novak, 4.8★ in a Tesla Model 3.
    fn handle(tables: &mut MemTables, payload: Payload) -> Vec<Effect> {
        let (mut rng, mut ids) = (SimRng::new(1), IdAllocator::default());
        let mut ctx = Ctx::new(Micros::ZERO, DRIVER, &mut rng, tables, &mut ids);
        let mut request = Envelope {
            id: MsgId(1),
            from: CLIENT,
            to: DRIVER,
            op: Some(OpId(1)),
            caused_by: None,
            payload,
        };
        let mut driver = Driver::new(DriverConfig {
            broker: Some(BROKER),
        });
        driver.handle(Input::Message(&mut request), &mut ctx);
        ctx.into_effects()
    }

    fn tables() -> MemTables {
        let mut tables = MemTables::default();
        let row = |value: &str, version| Row {
            value: value.into(),
            version,
        };
        tables.put(DRIVERS_TABLE, "3", row("Chen Novak", 4));
        tables.put(DRIVER_DETAILS_TABLE, "3", row("4.8★ Tesla Model 3", 2));
        tables
    }

    fn sent(effects: &[Effect]) -> Vec<(ServiceId, Payload)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(envelope) => Some((envelope.to, envelope.payload.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn details_are_answered_with_their_version() {
        let effects = handle(&mut tables(), Payload::GetDriverDetails { driver: 3 });
        let answer = &sent(&effects)[0].1;
        assert_eq!(answer.label(), "200 4.8★ Tesla Model 3 (v2)");
        let missing = handle(&mut tables(), Payload::GetDriverDetails { driver: 9 });
        assert_eq!(sent(&missing)[0].1.label(), "503 no driver 9");
    }

    #[test]
    fn a_rename_bumps_the_version_and_publishes_it() {
        let mut tables = tables();
        let name = "Chen Larsen".to_string();
        let effects = handle(&mut tables, Payload::RenameDriver { driver: 3, name });
        let row = tables.get(DRIVERS_TABLE, "3").unwrap();
        assert_eq!((row.value.as_str(), row.version), ("Chen Larsen", 5));
        let labels: Vec<(ServiceId, String)> = sent(&effects)
            .iter()
            .map(|(to, p)| (*to, p.label().to_string()))
            .collect();
        assert_eq!(
            labels,
            vec![
                (BROKER, "publish DriverUpdated{id:3,v:5}".to_string()),
                (CLIENT, "200 driver 3 name now v5".to_string()),
            ]
        );
    }

    #[test]
    fn a_rating_change_keeps_the_car_and_publishes_nothing() {
        let mut tables = tables();
        let effects = handle(
            &mut tables,
            Payload::RateDriver {
                driver: 3,
                rating_tenths: 41,
            },
        );
        let row = tables.get(DRIVER_DETAILS_TABLE, "3").unwrap();
        assert_eq!((row.value.as_str(), row.version), ("4.1★ Tesla Model 3", 3));
        let labels: Vec<String> = sent(&effects)
            .iter()
            .map(|(_, p)| p.label().to_string())
            .collect();
        assert_eq!(labels, vec!["200 driver 3 rating now v3"]);
    }
}
