//! Ride: answers "read ride N with its driver". The hybrid pattern: the driver's name comes from
//! Ride's own copy, kept fresh by DriverUpdated events; the rating and car come from a
//! synchronous call to Driver, through a cache in Ride's memory that keeps answers for a TTL.

use super::{DRIVER_NAMES_COPY_TABLE, RIDES_TABLE};
use crate::decimal::Decimal;
use crate::protocol::{DomainEvent, DriverDetails, DriverName, MsgId, MsgMap, Payload, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId, TimerMap};
use crate::slot_map::SlotMap;
use crate::time::Micros;

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
    cache: SlotMap<u64, CacheEntry>,
    /// Reads waiting on a call to Driver, by the call's message id.
    waiting_by_call: MsgMap<WaitingRead>,
    /// The call each timeout timer guards.
    call_by_timer: TimerMap<MsgId>,
    /// Whether the last read that needed Driver failed, so an outage is narrated once.
    in_failure_streak: bool,
    /// Whether running without a cache was narrated.
    no_cache_narrated: bool,
}

/// A duration as people say it: `850 ms`, `12.4 s`.
fn spoken(duration: Micros) -> String {
    if duration >= Micros::from_secs(1) {
        // Truncated, not rounded, so an entry 9.96 s old under a 10 s TTL does not read as 10.0 s.
        let tenths = duration.0 / 100_000;
        format!("{}.{} s", tenths / 10, tenths % 10)
    } else {
        format!("{} ms", duration.0 / 1_000)
    }
}

impl Ride {
    /// A freshly started Ride: an empty cache, no reads in progress.
    pub fn new(config: RideConfig) -> Ride {
        Ride {
            config,
            cache: SlotMap::new(),
            waiting_by_call: SlotMap::new(),
            call_by_timer: SlotMap::new(),
            in_failure_streak: false,
            no_cache_narrated: false,
        }
    }

    fn read_ride(&mut self, request: &Envelope, ride: u64, ctx: &mut Ctx<'_>) {
        let driver: Option<u64> = ctx
            .read(RIDES_TABLE, &Decimal::new(ride))
            .and_then(|row| row.value.strip_prefix(RIDE_DRIVER_PREFIX)?.parse().ok());
        let Some(driver) = driver else {
            let reason = format!("no ride {ride}");
            ctx.reply(request, Payload::Failed { reason });
            return;
        };
        let name = ctx
            .read(DRIVER_NAMES_COPY_TABLE, &Decimal::new(driver))
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
        self.call_by_timer.insert(timer.key(), call);
        self.waiting_by_call.insert(
            call.key(),
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
        let waiting = self.waiting_by_call.remove(&call.key())?;
        self.call_by_timer.remove(&waiting.timer.key());
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
                let Some(call) = self.call_by_timer.get(&timer.key()).copied() else {
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
            // Only a broker watches its peers' connections.
            Input::ConnectionLost(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, OpId};
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables, Row, Tables};

    const CLIENT: ServiceId = ServiceId(0);
    const RIDE: ServiceId = ServiceId(1);
    const DRIVER: ServiceId = ServiceId(2);
    const BROKER: ServiceId = ServiceId(3);

    /// Drives one Ride by hand. Rides 1..=3 have drivers 1..=3.
    struct Harness {
        ride: Ride,
        now: Micros,
        rng: SimRng,
        tables: MemTables,
        ids: IdAllocator,
        next_msg: u64,
    }

    impl Harness {
        fn new(cache_ttl_ms: u64, cache_capacity: usize, max_waiting_reads: usize) -> Harness {
            let mut tables = MemTables::default();
            for id in 1..=3u64 {
                let row = |value: String| Row { value, version: 1 };
                tables.put(RIDES_TABLE, &id.to_string(), row(ride_row_value(id)));
                tables.put(
                    DRIVER_NAMES_COPY_TABLE,
                    &id.to_string(),
                    row(format!("Driver {id}")),
                );
            }
            let config = RideConfig {
                driver: DRIVER,
                call_timeout: Micros::from_millis(400),
                cache_ttl: Micros::from_millis(cache_ttl_ms),
                cache_capacity,
                max_waiting_reads,
            };
            Harness {
                ride: Ride::new(config),
                now: Micros::ZERO,
                rng: SimRng::new(1),
                tables,
                ids: IdAllocator::default(),
                next_msg: 1_000,
            }
        }

        fn handle(&mut self, input: Input<'_>) -> Vec<Effect> {
            let mut ctx = Ctx::new(
                self.now,
                RIDE,
                &mut self.rng,
                &mut self.tables,
                &mut self.ids,
            );
            self.ride.handle(input, &mut ctx);
            ctx.into_effects()
        }

        fn message(
            &mut self,
            from: ServiceId,
            caused_by: Option<MsgId>,
            payload: Payload,
        ) -> Vec<Effect> {
            self.next_msg += 1;
            let mut envelope = Envelope {
                id: MsgId(self.next_msg),
                from,
                to: RIDE,
                op: Some(OpId(1)),
                caused_by,
                payload,
            };
            self.handle(Input::Message(&mut envelope))
        }

        fn read(&mut self, ride: u64) -> Vec<Effect> {
            self.message(CLIENT, None, Payload::ReadRide { ride })
        }

        fn answer(&mut self, call: MsgId, driver: u64, version: u64) -> Vec<Effect> {
            let details = DriverDetails {
                driver,
                rating_tenths: 45,
                car: "Kia Niro".into(),
                version,
            };
            self.message(DRIVER, Some(call), Payload::DriverDetailsInfo(details))
        }
    }

    /// The calls to Driver among `effects`.
    fn calls(effects: &[Effect]) -> Vec<MsgId> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(Envelope {
                    id,
                    to: DRIVER,
                    payload: Payload::GetDriverDetails { .. },
                    ..
                }) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The answers to the client among `effects`: `Ok(details version)` or `Err(reason)`.
    fn answers(effects: &[Effect]) -> Vec<Result<u64, String>> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(Envelope {
                    to: CLIENT,
                    payload,
                    ..
                }) => match payload {
                    Payload::RideDetails { details, .. } => Some(Ok(details.version)),
                    Payload::Failed { reason } => Some(Err(reason.clone())),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn narrations(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record(Event::Narration { text }) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_cached_answer_spares_the_call_until_it_expires() {
        let mut h = Harness::new(10_000, 8, 100);
        let first = h.read(2);
        let call = calls(&first)[0];
        assert_eq!(answers(&h.answer(call, 2, 1)), vec![Ok(1)]);
        h.now = Micros::from_secs(4);
        let hit = h.read(2);
        assert!(calls(&hit).is_empty(), "a fresh entry needs no call");
        assert_eq!(answers(&hit), vec![Ok(1)]);
        assert_eq!(
            narrations(&hit),
            vec!["Ride had driver 2's rating in its cache (4.0 s old): no call to Driver."]
        );
        h.now = Micros::from_secs(5);
        assert!(
            narrations(&h.read(2)).is_empty(),
            "a run of hits is told once"
        );
        h.now = Micros::from_secs(10);
        let expired = h.read(2);
        assert_eq!(
            calls(&expired).len(),
            1,
            "an expired entry is fetched again"
        );
        assert!(narrations(&expired)[0].contains("expired (10.0 s old, TTL 10.0 s)"));
    }

    #[test]
    fn without_a_cache_every_read_calls_driver() {
        let mut h = Harness::new(0, 8, 100);
        for _ in 0..3 {
            let effects = h.read(1);
            let call = calls(&effects)[0];
            h.answer(call, 1, 1);
        }
        assert_eq!(calls(&h.read(1)).len(), 1);
    }

    #[test]
    fn duplicated_or_late_answers_are_ignored() {
        let mut h = Harness::new(10_000, 8, 100);
        let call = calls(&h.read(1))[0];
        assert_eq!(answers(&h.answer(call, 1, 1)).len(), 1);
        assert!(
            h.answer(call, 1, 1).is_empty(),
            "a duplicate finds no waiting read"
        );
        let timed_out = calls(&h.read(2))[0];
        let timer = h.ride.waiting_by_call[&timed_out.key()].timer;
        let failed = h.handle(Input::Timer(timer));
        assert_eq!(
            answers(&failed),
            vec![Err("Driver did not answer within 400 ms".into())]
        );
        assert!(
            h.answer(timed_out, 2, 1).is_empty(),
            "an answer after its timeout is ignored"
        );
    }

    #[test]
    fn a_read_fails_with_its_reason_when_driver_is_down() {
        let mut h = Harness::new(10_000, 8, 100);
        let call = calls(&h.read(3))[0];
        let refused = h.handle(Input::Refused(call));
        assert_eq!(
            answers(&refused),
            vec![Err("Driver is down (connection refused)".into())]
        );
        assert!(narrations(&refused)[0].contains("the dependency this pattern keeps"));
        let call = calls(&h.read(3))[0];
        assert!(
            narrations(&h.handle(Input::Refused(call))).is_empty(),
            "an outage is narrated once"
        );
        assert_eq!(answers(&h.read(99)), vec![Err("no ride 99".into())]);
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest_entry() {
        let mut h = Harness::new(60_000, 2, 100);
        for driver in 1..=3 {
            h.now = Micros::from_secs(driver);
            let call = calls(&h.read(driver))[0];
            h.answer(call, driver, 1);
        }
        assert_eq!(h.ride.cache.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(
            calls(&h.read(1)).len(),
            1,
            "the evicted driver is fetched again"
        );
        assert!(calls(&h.read(3)).is_empty());
    }

    #[test]
    fn reads_beyond_the_waiting_bound_fail_at_once() {
        let mut h = Harness::new(0, 8, 2);
        h.read(1);
        h.read(2);
        let turned_away = h.read(3);
        assert!(calls(&turned_away).is_empty());
        assert_eq!(
            answers(&turned_away),
            vec![Err("Ride already has 2 reads waiting on Driver".into())]
        );
    }

    #[test]
    fn the_name_copy_takes_only_newer_versions() {
        let mut h = Harness::new(0, 8, 100);
        let deliver = |h: &mut Harness, version: u64, name: &str| {
            let event = DomainEvent::DriverUpdated(DriverName {
                driver: 1,
                name: name.into(),
                version,
            });
            let effects = h.message(
                BROKER,
                None,
                Payload::Deliver {
                    tag: version,
                    redelivered: false,
                    event,
                },
            );
            assert!(
                effects.iter().any(|e| matches!(
                    e,
                    Effect::Send(Envelope {
                        to: BROKER,
                        payload: Payload::Ack { .. },
                        ..
                    })
                )),
                "every delivery is acknowledged"
            );
        };
        deliver(&mut h, 3, "Ana Costa");
        deliver(&mut h, 2, "Ana Novak");
        let row = h.tables.get(DRIVER_NAMES_COPY_TABLE, "1").unwrap();
        assert_eq!((row.value.as_str(), row.version), ("Ana Costa", 3));
    }
}
