//! How loaded the services with a capacity were, from the trace alone (`docs/METRICS.md`,
//! "Capacity"): each `service_load` event sets a service's busy workers and waiting requests
//! until the next one; a `service_down` of the service empties both (a crash loses the work in
//! progress and the queue); a `sent` whose label begins `503 overloaded: ` is a request the
//! service shed.

use crate::protocol::{CapacitySummary, Event, ServiceId, TraceHeader};
use crate::services::OVERLOADED_LABEL_PREFIX;
use crate::slot_map::{DenseMap, SlotMap};
use crate::time::Micros;

/// One service's load at a moment.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadNow {
    /// Its workers; 0 means unlimited.
    pub workers: u32,
    /// Requests being worked on.
    pub busy: u32,
    /// Requests waiting for a worker.
    pub waiting: u32,
}

/// One service's load so far.
#[derive(Clone, Debug, Default, PartialEq)]
struct ServiceLoadStats {
    now: LoadNow,
    /// When `now` began.
    since: Micros,
    /// The integral of busy workers over time until `since`, in µs.
    busy_us: u64,
    busy_max: u32,
    waiting_max: u32,
    shed: u64,
}

impl ServiceLoadStats {
    fn set(&mut self, load: LoadNow, at: Micros) {
        let span = at.saturating_sub(self.since).0;
        self.busy_us = self
            .busy_us
            .saturating_add(span.saturating_mul(self.now.busy as u64));
        self.since = at;
        self.now = load;
        self.busy_max = self.busy_max.max(load.busy);
        self.waiting_max = self.waiting_max.max(load.waiting);
    }
}

/// Every service's load, as the trace says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loads {
    by_service: DenseMap<ServiceId, ServiceLoadStats>,
}

impl Loads {
    /// Takes in what `event`, at `at`, changes.
    pub fn apply(&mut self, event: &Event, at: Micros) {
        match event {
            Event::ServiceLoad {
                service,
                workers,
                busy,
                waiting,
            } => {
                let load = LoadNow {
                    workers: *workers,
                    busy: *busy,
                    waiting: *waiting,
                };
                self.by_service.entry(*service).or_default().set(load, at);
            }
            Event::ServiceDown { service } => {
                if let Some(stats) = self.by_service.get_mut(service) {
                    let workers = stats.now.workers;
                    stats.set(
                        LoadNow {
                            workers,
                            ..LoadNow::default()
                        },
                        at,
                    );
                }
            }
            Event::Sent { from, label, .. } if label.starts_with(OVERLOADED_LABEL_PREFIX) => {
                self.by_service.entry(*from).or_default().shed += 1;
            }
            _ => {}
        }
    }

    /// `service`'s load now, if it has a capacity (it recorded its load at least once).
    pub fn now(&self, service: ServiceId) -> Option<LoadNow> {
        self.by_service.get(&service).map(|stats| stats.now)
    }

    /// Every service with a capacity and its load now, by id.
    pub fn all_now(&self) -> impl Iterator<Item = (ServiceId, LoadNow)> + '_ {
        self.by_service
            .iter()
            .map(|(service, stats)| (*service, stats.now))
    }

    /// The time-integral of `service`'s busy workers from the start to `at` (not before its
    /// last change), in µs: busy workers × how long.
    pub fn busy_us(&self, service: ServiceId, at: Micros) -> u64 {
        self.by_service.get(&service).map_or(0, |stats| {
            let open = at.saturating_sub(stats.since).0 * stats.now.busy as u64;
            stats.busy_us.saturating_add(open)
        })
    }

    /// The mean number of busy workers of `service` from the start to `end`, counting work still
    /// in progress at `end`; 0 for an empty run.
    pub fn busy_mean(&self, service: ServiceId, end: Micros) -> f64 {
        if end == Micros::ZERO {
            return 0.0;
        }
        self.busy_us(service, end) as f64 / end.0 as f64
    }

    /// Each service's numbers, by name, for a run that covered `end`.
    pub fn summaries(&self, header: &TraceHeader, end: Micros) -> SlotMap<String, CapacitySummary> {
        self.by_service
            .iter()
            .map(|(service, stats)| {
                let busy_mean = self.busy_mean(*service, end);
                let workers = stats.now.workers;
                let summary = CapacitySummary {
                    workers,
                    busy_max: stats.busy_max,
                    busy_mean,
                    utilisation: (workers > 0).then(|| busy_mean / workers as f64),
                    waiting_max: stats.waiting_max,
                    shed: stats.shed,
                };
                (super::service_name(header, *service), summary)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(busy: u32, waiting: u32) -> Event {
        Event::ServiceLoad {
            service: ServiceId(2),
            workers: 2,
            busy,
            waiting,
        }
    }

    #[test]
    fn busy_time_is_integrated_and_work_in_progress_counts_up_to_the_end() {
        let mut loads = Loads::default();
        loads.apply(&load(1, 0), Micros(1_000));
        loads.apply(&load(2, 3), Micros(2_000));
        // 1 busy for 1 ms, then 2 busy until the end at 4 ms: (1 + 4) / 4.
        assert_eq!(loads.busy_mean(ServiceId(2), Micros(4_000)), 1.25);
        assert_eq!(loads.busy_mean(ServiceId(2), Micros::ZERO), 0.0);
        assert_eq!(loads.busy_mean(ServiceId(9), Micros(4_000)), 0.0);
    }

    #[test]
    fn a_crash_empties_workers_and_queue() {
        let mut loads = Loads::default();
        loads.apply(&load(2, 3), Micros(0));
        loads.apply(
            &Event::ServiceDown {
                service: ServiceId(2),
            },
            Micros(1_000),
        );
        let now = loads.now(ServiceId(2)).unwrap();
        assert_eq!((now.workers, now.busy, now.waiting), (2, 0, 0));
        // Busy 2 for 1 ms of 2 ms.
        assert_eq!(loads.busy_mean(ServiceId(2), Micros(2_000)), 1.0);
    }
}
