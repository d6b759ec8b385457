//! A subscriber of the broker that works through each delivered event, applies it to its own
//! tables and then acknowledges it: the part Inventory and Shipping share.
//!
//! Delivery is at least once: when an ack is lost (the connection breaks, RabbitMQ's rule) or
//! merely late (SQS's visibility timeout), the broker delivers the event again, so a consumer can
//! get the same event twice. An idempotent consumer keeps an inbox of the
//! event ids it has processed, written in the same transaction as the change itself, and drops
//! an event already in it. Without that check the change is applied twice.

use super::{INBOX_TABLE, inventory, shipping};
use crate::protocol::{DomainEvent, Event, NewOrder, Payload};
use crate::service::{Ctx, Envelope, Input, Service, TimerMap};
use crate::slot_map::SlotMap;
use crate::time::Micros;

/// The most deliveries a consumer works on at once. One more is left unacknowledged, for the
/// broker to deliver again later.
pub const MAX_JOBS_IN_PROGRESS: usize = 32;

/// What a consumer does with each OrderCreated.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Duty {
    /// Inventory: take one unit of each ordered product from stock.
    ReserveStock,
    /// Shipping: start a shipment of the order.
    StartShipment,
}

impl Duty {
    /// Applies `order` to the service's tables and returns how many times it has now been
    /// applied there (1 the first time).
    fn apply(self, order: &NewOrder, ctx: &mut Ctx<'_>) -> u64 {
        match self {
            Duty::ReserveStock => inventory::reserve_stock(order, ctx),
            Duty::StartShipment => shipping::start_shipment(order, ctx),
        }
    }

    /// What applying an order again does, in words: `ships it again`.
    fn repeated(self) -> &'static str {
        match self {
            Duty::ReserveStock => "takes its items from stock again",
            Duty::StartShipment => "ships it again",
        }
    }
}

/// How a consumer behaves.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Its name, for narration.
    pub name: String,
    /// What it does with each order.
    pub duty: Duty,
    /// The mean time it takes to process one event; each takes between half and one and a
    /// half times as long.
    pub work: Micros,
    /// Whether it checks its inbox and drops events it has already processed.
    pub idempotent: bool,
}

/// A subscriber: Inventory or Shipping.
#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    /// Deliveries being worked on, by the timer that ends the work.
    jobs: TimerMap<Envelope>,
}

impl Consumer {
    /// A consumer with no work in progress.
    pub fn new(config: ConsumerConfig) -> Consumer {
        Consumer {
            config,
            jobs: SlotMap::new(),
        }
    }

    fn start_job(&mut self, delivery: &Envelope, event: &DomainEvent, ctx: &mut Ctx<'_>) {
        if self.jobs.len() >= MAX_JOBS_IN_PROGRESS {
            ctx.narrate(format!(
                "{} is busy with {} events: it leaves {} unacknowledged, so the broker will deliver it again.",
                self.config.name,
                self.jobs.len(),
                event.caption()
            ));
            return;
        }
        let work = self.config.work.0;
        let took = Micros(work / 2 + ctx.rng.below(work + 1));
        let timer = ctx.set_timer(took);
        self.jobs.insert(timer.key(), delivery.clone());
    }

    /// Ends the work on one delivery: applies it (or drops a duplicate), then acks.
    fn finish_job(&mut self, delivery: &Envelope, ctx: &mut Ctx<'_>) {
        let Payload::Deliver { tag, event, .. } = &delivery.payload else {
            return;
        };
        if let DomainEvent::OrderCreated(order) = event {
            let event_id = event.id();
            let name = &self.config.name;
            let number = event.caption();
            // The inbox check and the change are one transaction: both happen, or neither.
            let already_processed =
                self.config.idempotent && ctx.read(INBOX_TABLE, &event_id).is_some();
            if already_processed {
                ctx.narrate(format!(
                    "{name} got {number} again: its inbox of processed events already holds it, so it drops the duplicate and only acks."
                ));
            } else {
                let times = self.config.duty.apply(order, ctx);
                if self.config.idempotent {
                    ctx.write(INBOX_TABLE, &event_id, "processed", 1);
                }
                if times > 1 {
                    ctx.narrate(format!(
                        "{name} got {number} {}: without an idempotency check it {}.",
                        times_in_words(times),
                        self.config.duty.repeated()
                    ));
                }
            }
            ctx.record(Event::EventHandled {
                service: ctx.me,
                event_id,
                published_at: order.created_at,
                applied: !already_processed,
            });
        }
        ctx.reply(delivery, Payload::Ack { tag: *tag });
    }
}

/// `a second time`, `a third time`, `for the 4th time`.
fn times_in_words(times: u64) -> String {
    match times {
        2 => "a second time".to_string(),
        3 => "a third time".to_string(),
        n => format!("for the {n}th time"),
    }
}

impl Service for Consumer {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Message(message) => {
                if let Payload::Deliver { event, .. } = &message.payload {
                    self.start_job(message, event, ctx);
                }
            }
            Input::Timer(timer) => {
                if let Some(delivery) = self.jobs.remove(&timer.key()) {
                    self.finish_job(&delivery, ctx);
                }
            }
            Input::Start | Input::Refused(_) | Input::ConnectionLost(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MsgId, ServiceId};
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables, Tables};
    use crate::services::{RESERVATIONS_TABLE, SHIPMENTS_TABLE, STOCK_TABLE};

    const BROKER: ServiceId = ServiceId(2);
    const ME: ServiceId = ServiceId(4);

    struct Harness {
        consumer: Consumer,
        rng: SimRng,
        tables: MemTables,
        ids: IdAllocator,
    }

    impl Harness {
        fn new(duty: Duty, idempotent: bool) -> Harness {
            let mut tables = MemTables::default();
            for product in 1..=3 {
                tables.put(
                    STOCK_TABLE,
                    &product.to_string(),
                    crate::service::Row {
                        value: "10".into(),
                        version: 1,
                    },
                );
            }
            Harness {
                consumer: Consumer::new(ConsumerConfig {
                    name: "Shipping".into(),
                    duty,
                    work: Micros::from_millis(100),
                    idempotent,
                }),
                rng: SimRng::new(3),
                tables,
                ids: IdAllocator::default(),
            }
        }

        fn handle(&mut self, input: Input<'_>) -> Vec<Effect> {
            let mut ctx = Ctx::new(
                Micros::from_secs(1),
                ME,
                &mut self.rng,
                &mut self.tables,
                &mut self.ids,
            );
            self.consumer.handle(input, &mut ctx);
            ctx.into_effects()
        }

        /// Delivers OrderCreated for `order` and lets the work finish; returns the effects.
        fn deliver_and_finish(&mut self, order: u64, tag: u64) -> Vec<Effect> {
            let mut delivery = Envelope {
                id: MsgId(100 + tag),
                from: BROKER,
                to: ME,
                op: None,
                caused_by: None,
                payload: Payload::Deliver {
                    tag,
                    redelivered: false,
                    event: DomainEvent::OrderCreated(NewOrder {
                        order,
                        products: vec![1, 3],
                        created_at: Micros::from_millis(200),
                    }),
                },
            };
            let started = self.handle(Input::Message(&mut delivery));
            let [Effect::SetTimer { id, after }] = started[..] else {
                panic!("one timer per job: {started:?}")
            };
            assert!(after >= Micros::from_millis(50) && after <= Micros::from_millis(150));
            self.handle(Input::Timer(id))
        }
    }

    fn handled(effects: &[Effect]) -> Vec<(String, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record(Event::EventHandled {
                    event_id, applied, ..
                }) => Some((event_id.clone(), *applied)),
                _ => None,
            })
            .collect()
    }

    fn acked(effects: &[Effect]) -> bool {
        effects.iter().any(|e| {
            matches!(
                e,
                Effect::Send(Envelope {
                    to: BROKER,
                    payload: Payload::Ack { .. },
                    ..
                })
            )
        })
    }

    fn narration(effects: &[Effect]) -> String {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record(Event::Narration { text }) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn without_an_inbox_a_duplicate_is_applied_again_and_said_so() {
        let mut harness = Harness::new(Duty::StartShipment, false);
        let first = harness.deliver_and_finish(7, 1);
        assert_eq!(handled(&first), vec![("OrderCreated#7".to_string(), true)]);
        assert!(acked(&first));
        let again = harness.deliver_and_finish(7, 1);
        assert_eq!(handled(&again), vec![("OrderCreated#7".to_string(), true)]);
        assert!(acked(&again));
        assert_eq!(
            narration(&again),
            "Shipping got OrderCreated #7 a second time: without an idempotency check it ships it again."
        );
        let shipment = harness.tables.get(SHIPMENTS_TABLE, "7").unwrap();
        assert_eq!(
            (shipment.value.as_str(), shipment.version),
            ("shipped ×2", 2)
        );
    }

    #[test]
    fn with_an_inbox_a_duplicate_is_dropped_and_still_acked() {
        let mut harness = Harness::new(Duty::ReserveStock, true);
        harness.deliver_and_finish(7, 1);
        let again = harness.deliver_and_finish(7, 1);
        assert_eq!(handled(&again), vec![("OrderCreated#7".to_string(), false)]);
        assert!(
            acked(&again),
            "a dropped duplicate is acked, or it would come back forever"
        );
        assert!(narration(&again).contains("drops the duplicate"));
        let stock = |p: &str| harness.tables.get(STOCK_TABLE, p).unwrap().value;
        assert_eq!(
            (stock("1"), stock("2"), stock("3")),
            ("9".into(), "10".into(), "9".into())
        );
        assert_eq!(
            harness.tables.get(RESERVATIONS_TABLE, "7").unwrap().version,
            1
        );
        assert!(harness.tables.get(INBOX_TABLE, "OrderCreated#7").is_some());
    }

    #[test]
    fn a_consumer_at_its_bound_leaves_the_delivery_unacknowledged() {
        let mut harness = Harness::new(Duty::StartShipment, false);
        let delivery = |tag| Envelope {
            id: MsgId(tag),
            from: BROKER,
            to: ME,
            op: None,
            caused_by: None,
            payload: Payload::Deliver {
                tag,
                redelivered: true,
                event: DomainEvent::OrderCreated(NewOrder {
                    order: 1,
                    products: vec![1],
                    created_at: Micros::ZERO,
                }),
            },
        };
        for tag in 0..MAX_JOBS_IN_PROGRESS as u64 {
            harness.handle(Input::Message(&mut delivery(tag)));
        }
        let refused = harness.handle(Input::Message(&mut delivery(99)));
        assert_eq!(harness.consumer.jobs.len(), MAX_JOBS_IN_PROGRESS);
        assert!(
            !refused
                .iter()
                .any(|e| matches!(e, Effect::SetTimer { .. } | Effect::Send(_)))
        );
        assert!(narration(&refused).contains("is busy with 32 events"));
    }
}
