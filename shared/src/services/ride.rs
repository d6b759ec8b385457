//! Ride: answers "read ride N with its driver". The hybrid pattern: the driver's name comes from
//! Ride's own copy, kept fresh by DriverUpdated events; the rating and car come from a
//! synchronous call to Driver, through a cache in Ride's memory that keeps answers for a TTL.

use super::{DRIVER_NAMES_COPY_TABLE, RIDES_TABLE};
use crate::protocol::{DomainEvent, DriverDetails, DriverName, MsgId, Payload, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId};
use crate::time::Micros;
use std::collections::BTreeMap;

/// How Ride is wired.
#[derive(Clone, Debug)]
pub struct RideConfig {
    /// The Driver service, owner of ratings and cars.
    pub driver: ServiceId,
    /// How long Ride waits for Driver before failing the read.
    pub call_timeout: Micros,
    /// How long a cached answer from Driver is used; zero means no cache.
    pub cache_ttl: Micros,
    /// The most drivers the cache holds; beyond it, the entry fetched longest ago is evicted.
    pub cache_capacity: usize,
    /// The most reads waiting on Driver at once; a read beyond it fails at once.
    pub max_waiting_reads: usize,
}

/// Rides are stored as `driver N`, so Ride's table reads well in the page.
const RIDE_DRIVER_PREFIX: &str = "driver ";

/// The value of Ride's `rides` row for a ride with driver `driver`.
pub fn ride_row_value(driver: u64) -> String {
    format!("{RIDE_DRIVER_PREFIX}{driver}")
}

#[derive(Debug)]
struct CacheEntry {
    details: DriverDetails,
    fetched_at: Micros,
    /// Whether a read served from this entry was narrated, so a run of hits is told once.
    hit_narrated: bool,
}

/// A read waiting on Driver.
#[derive(Debug)]
struct WaitingRead {
    request: Envelope,
    ride: u64,
    name: DriverName,
    timer: TimerId,
}

/// The Ride service.
#[derive(Debug)]
pub struct Ride {
    config: RideConfig,
    /// Driver's answers by driver id; lost when Ride crashes.
    cache: BTreeMap<u64, CacheEntry>,
    /// Reads waiting on a call to Driver, by the call's message id.
    waiting_by_call: BTreeMap<MsgId, WaitingRead>,
    /// The call each timeout timer guards.
    call_by_timer: BTreeMap<TimerId, MsgId>,
    /// Whether the last read that needed Driver failed, so an outage is narrated once.
    in_failure_streak: bool,
    /// Whether running without a cache was narrated.
    no_cache_narrated: bool,
}

/// A duration as people say it: `850 ms`, `12.4 s`.
fn spoken(duration: Micros) -> String {
    if duration >= Micros::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.0 / 1_000)
    }
}

impl Ride {
    /// A freshly started Ride: an empty cache, no reads in progress.
    pub fn new(config: RideConfig) -> Ride {
        Ride {
            config,
            cache: BTreeMap::new(),
            waiting_by_call: BTreeMap::new(),
            call_by_timer: BTreeMap::new(),
            in_failure_streak: false,
            no_cache_narrated: false,
        }
    }

    fn read_ride(&mut self, request: &Envelope, ride: u64, ctx: &mut Ctx<'_>) {
        let driver: Option<u64> = ctx
            .read(RIDES_TABLE, &ride.to_string())
            .and_then(|row| row.value.strip_prefix(RIDE_DRIVER_PREFIX)?.parse().ok());
        let Some(driver) = driver else {
            let reason = format!("no ride {ride}");
            ctx.reply(request, Payload::Failed { reason });
            return;
        };
        let name = ctx
            .read(DRIVER_NAMES_COPY_TABLE, &driver.to_string())
            .map_or_else(
                || DriverName {
                    driver,
                    name: "?".to_string(),
                    version: 0,
                },
                |row| DriverName {
                    driver,
                    name: row.value,
                    version: row.version,
                },
            );
        if let Some(details) = self.cached(driver, ctx) {
            ctx.reply(
                request,
                Payload::RideDetails {
                    ride,
                    driver: name,
                    details,
                },
            );
            return;
        }
        if self.waiting_by_call.len() >= self.config.max_waiting_reads {
            let reason = format!(
                "Ride already has {} reads waiting on Driver",
                self.waiting_by_call.len()
            );
            ctx.narrate(format!(
                "{reason}: it turns this read away rather than queue it."
            ));
            ctx.reply(request, Payload::Failed { reason });
            return;
        }
        let call = ctx.send(
            self.config.driver,
            Payload::GetDriverDetails { driver },
            request.op,
            Some(request.id),
        );
        let timer = ctx.set_timer(self.config.call_timeout);
        self.call_by_timer.insert(timer, call);
        self.waiting_by_call.insert(
            call,
            WaitingRead {
                request: request.clone(),
                ride,
                name,
                timer,
            },
        );
    }

    /// The cached details of `driver` if they are younger than the TTL; narrates hits and misses.
    fn cached(&mut self, driver: u64, ctx: &mut Ctx<'_>) -> Option<DriverDetails> {
        let ttl = self.config.cache_ttl;
        if ttl == Micros::ZERO {
            if !self.no_cache_narrated {
                self.no_cache_narrated = true;
                ctx.narrate(
                    "Ride keeps no cache (TTL 0): every read asks Driver for the rating and car.",
                );
            }
            return None;
        }
        let Some(entry) = self.cache.get_mut(&driver) else {
            // During an outage the failure is narrated instead, once.
            if !self.in_failure_streak {
                ctx.narrate(format!(
                    "Ride has nothing cached for driver {driver}: Ride asks Driver."
                ));
            }
            return None;
        };
        let age = ctx.now - entry.fetched_at;
        if age >= ttl {
            ctx.narrate(format!(
                "Ride's cache entry for driver {driver} expired ({} old, TTL {}): Ride asks Driver.",
                spoken(age),
                spoken(ttl)
            ));
            self.cache.remove(&driver);
            return None;
        }
        if !entry.hit_narrated {
            entry.hit_narrated = true;
            ctx.narrate(format!(
                "Ride had driver {driver}'s rating in its cache ({} old): no call to Driver.",
                spoken(age)
            ));
        }
        Some(entry.details.clone())
    }

    /// Keeps Driver's answer for the TTL, unless the cache already holds a newer version.
    fn remember(&mut self, details: &DriverDetails, now: Micros) {
        if self.config.cache_ttl == Micros::ZERO || self.config.cache_capacity == 0 {
            return;
        }
        if let Some(entry) = self.cache.get(&details.driver)
            && entry.details.version > details.version
        {
            return;
        }
        if !self.cache.contains_key(&details.driver)
            && self.cache.len() >= self.config.cache_capacity
        {
            let oldest = self
                .cache
                .iter()
                .min_by_key(|(_, entry)| entry.fetched_at)
                .map(|(driver, _)| *driver);
            if let Some(oldest) = oldest {
                self.cache.remove(&oldest);
            }
        }
        self.cache.insert(
            details.driver,
            CacheEntry {
                details: details.clone(),
                fetched_at: now,
                hit_narrated: false,
            },
        );
    }

    fn take_waiting(&mut self, call: MsgId) -> Option<WaitingRead> {
        let waiting = self.waiting_by_call.remove(&call)?;
        self.call_by_timer.remove(&waiting.timer);
        Some(waiting)
    }

    fn answered(&mut self, call: MsgId, details: &DriverDetails, ctx: &mut Ctx<'_>) {
        // A duplicated answer, or one after its timeout, finds no waiting read and is ignored.
        let Some(waiting) = self.take_waiting(call) else {
            return;
        };
        self.remember(details, ctx.now);
        if self.in_failure_streak {
            self.in_failure_streak = false;
            ctx.narrate("Driver answers again: Ride's reads succeed.");
        }
        ctx.reply(
            &waiting.request,
            Payload::RideDetails {
                ride: waiting.ride,
                driver: waiting.name,
                details: details.clone(),
            },
        );
    }

    fn fail_read(&mut self, waiting: WaitingRead, reason: String, ctx: &mut Ctx<'_>) {
        if !self.in_failure_streak {
            self.in_failure_streak = true;
            ctx.narrate(format!(
                "Ride could not get driver {}'s rating and car: {reason}. With nothing fresh in its cache, \
                 the read fails — the synchronous call to Driver is the dependency this pattern keeps.",
                waiting.name.driver
            ));
        }
        ctx.reply(&waiting.request, Payload::Failed { reason });
    }

    fn apply_event(&mut self, event: &DomainEvent, ctx: &mut Ctx<'_>) {
        let DomainEvent::DriverUpdated(update) = event else {
            return;
        };
        let key = update.driver.to_string();
        let current = ctx
            .read(DRIVER_NAMES_COPY_TABLE, &key)
            .map_or(0, |row| row.version);
        // Only a newer version replaces the copy, so late or repeated deliveries cannot roll it back.
        if update.version > current {
            ctx.write(DRIVER_NAMES_COPY_TABLE, &key, &update.name, update.version);
            ctx.narrate(format!(
                "Ride's copy of driver {}'s name caught up: {} (v{}).",
                update.driver, update.name, update.version
            ));
        }
    }
}

impl Service for Ride {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => {}
            Input::Message(message) => match &message.payload {
                Payload::ReadRide { ride } => self.read_ride(message, *ride, ctx),
                Payload::DriverDetailsInfo(details) => {
                    if let Some(call) = message.caused_by {
                        self.answered(call, details, ctx);
                    }
                }
                Payload::Failed { reason } => {
                    if let Some(waiting) = message.caused_by.and_then(|c| self.take_waiting(c)) {
                        self.fail_read(waiting, format!("Driver answered: {reason}"), ctx);
                    }
                }
                Payload::Deliver { tag, event, .. } => {
                    self.apply_event(event, ctx);
                    ctx.reply(message, Payload::Ack { tag: *tag });
                }
                _ => {}
            },
            Input::Timer(timer) => {
                let Some(call) = self.call_by_timer.get(&timer).copied() else {
                    return;
                };
                if let Some(waiting) = self.take_waiting(call) {
                    let reason = format!(
                        "Driver did not answer within {}",
                        spoken(self.config.call_timeout)
                    );
                    self.fail_read(waiting, reason, ctx);
                }
            }
            Input::Refused(call) => {
                if let Some(waiting) = self.take_waiting(call) {
                    let reason = "Driver is down (connection refused)".to_string();
                    self.fail_read(waiting, reason, ctx);
                }
            }
        }
    }
}
