//! The numbers of event delivery through a broker: how long events took to be applied, and how
//! many arrived twice — applied again, or dropped by an idempotent consumer. (How deep each queue
//! got is [`super::Metrics::queue_depth_max`].)

use crate::protocol::{ConsumerSummary, ServiceId, TraceHeader};
use crate::shared_map::SharedMap;
use crate::slot_map::{DenseMap, SlotMap};
use crate::time::Micros;

/// What one subscriber did with the events delivered to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Distinct events applied.
    pub events_applied: u64,
    /// Deliveries of an event it had already handled.
    pub duplicates_delivered: u64,
    /// Duplicates applied again.
    pub duplicates_applied: u64,
    /// Duplicates dropped as already processed.
    pub duplicates_dropped: u64,
    lag_total: Micros,
    lag_max: Micros,
}

impl ConsumerStats {
    /// The mean time from an event's publication to its first application, or zero.
    pub fn delivery_lag_mean(&self) -> Micros {
        Micros(
            self.lag_total
                .0
                .checked_div(self.events_applied)
                .unwrap_or(0),
        )
    }

    /// The longest time from an event's publication to its first application.
    pub fn delivery_lag_max(&self) -> Micros {
        self.lag_max
    }
}

/// How often one subscriber has handled one event.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Handled {
    times: u32,
    applied: u32,
}

/// Delivery numbers, accumulated as the trace is folded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryStats {
    /// Per subscriber.
    pub consumers: DenseMap<ServiceId, ConsumerStats>,
    handled: SharedMap<(ServiceId, String), Handled>,
}

impl DeliveryStats {
    /// `consumer` handled `event_id`, published at `published_at`, at `now`.
    pub(crate) fn event_handled(
        &mut self,
        consumer: ServiceId,
        event_id: &str,
        published_at: Micros,
        applied: bool,
        now: Micros,
    ) {
        let seen = self
            .handled
            .get_or_insert_with((consumer, event_id.to_string()), Handled::default);
        let stats = self.consumers.entry(consumer).or_default();
        if seen.times > 0 {
            stats.duplicates_delivered += 1;
            if applied {
                stats.duplicates_applied += 1;
            } else {
                stats.duplicates_dropped += 1;
            }
        }
        if applied && seen.applied == 0 {
            let lag = now - published_at;
            stats.events_applied += 1;
            stats.lag_total = stats.lag_total + lag;
            stats.lag_max = stats.lag_max.max(lag);
        }
        seen.times += 1;
        seen.applied += u32::from(applied);
    }

    /// How many times `consumer` applied `event_id`.
    pub fn times_applied(&self, consumer: ServiceId, event_id: &str) -> u32 {
        self.handled
            .get(&(consumer, event_id.to_string()))
            .map_or(0, |seen| seen.applied)
    }

    /// Duplicates applied, over every consumer.
    pub fn duplicates_applied(&self) -> u64 {
        self.consumers.values().map(|c| c.duplicates_applied).sum()
    }

    /// Duplicates dropped, over every consumer.
    pub fn duplicates_dropped(&self) -> u64 {
        self.consumers.values().map(|c| c.duplicates_dropped).sum()
    }

    /// Each consumer's numbers by service name, for the run summary.
    pub fn consumer_summaries(&self, header: &TraceHeader) -> SlotMap<String, ConsumerSummary> {
        self.consumers
            .iter()
            .map(|(service, stats)| {
                let name = super::service_name(header, *service);
                let summary = ConsumerSummary {
                    events_applied: stats.events_applied,
                    duplicates_delivered: stats.duplicates_delivered,
                    duplicates_applied: stats.duplicates_applied,
                    duplicates_dropped: stats.duplicates_dropped,
                    delivery_lag_mean_us: stats.delivery_lag_mean().0,
                    delivery_lag_max_us: stats.delivery_lag_max().0,
                };
                (name, summary)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPING: ServiceId = ServiceId(4);

    #[test]
    fn duplicates_are_counted_after_the_first_handling_and_lag_only_at_the_first_application() {
        let mut stats = DeliveryStats::default();
        let ms = Micros::from_millis;
        // #1 applied, then applied again; #2 applied, then dropped; #3 dropped first (its
        // first handling is not a duplicate), then applied.
        stats.event_handled(SHIPPING, "e1", ms(0), true, ms(100));
        stats.event_handled(SHIPPING, "e1", ms(0), true, ms(900));
        stats.event_handled(SHIPPING, "e2", ms(100), true, ms(400));
        stats.event_handled(SHIPPING, "e2", ms(100), false, ms(800));
        stats.event_handled(SHIPPING, "e3", ms(0), false, ms(50));
        stats.event_handled(SHIPPING, "e3", ms(0), true, ms(500));
        let shipping = &stats.consumers[&SHIPPING];
        assert_eq!(shipping.events_applied, 3);
        assert_eq!(shipping.duplicates_delivered, 3);
        assert_eq!(shipping.duplicates_applied, 2);
        assert_eq!(shipping.duplicates_dropped, 1);
        assert_eq!(shipping.delivery_lag_max(), ms(500));
        assert_eq!(
            shipping.delivery_lag_mean(),
            ms(300),
            "(100 + 300 + 500) / 3"
        );
        assert_eq!(stats.times_applied(SHIPPING, "e1"), 2);
        assert_eq!(stats.times_applied(SHIPPING, "e9"), 0);
    }
}
