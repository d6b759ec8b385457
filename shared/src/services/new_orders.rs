//! Order's side of new orders: it stores each one, publishes OrderCreated, and answers the client
//! at once — it never waits for the consumers. The broker confirms each publish; one that is not
//! confirmed in time (lost on the way, or the broker down or full) is published again, so an
//! event is never lost while Order runs. A retry whose first copy did arrive makes a duplicate,
//! which is why consumers must be ready for them. Under dual write (the default) unconfirmed
//! publishes live in Order's memory, so a crash of Order — between storing an order and
//! publishing it, or before the confirm — loses them; with the transactional outbox
//! (`outbox.rs`) the order and its event are one transaction and the relay publishes from the
//! table, so a crash only delays them.

use super::ORDERS_TABLE;
use super::outbox::{CrashAfterWrite, MAX_OUTBOX_PENDING, Outbox, OutboxConfig};
use crate::protocol::{DomainEvent, NewOrder, Payload, ServiceId};
use crate::service::{Ctx, Envelope, TimerId, TimerMap, Write};
use crate::slot_map::SlotMap;
use crate::time::Micros;

/// The most publishes Order waits on at once. Beyond it, new orders are refused until the broker
/// catches up, rather than stored without an event.
pub const MAX_UNCONFIRMED_PUBLISHES: usize = 1_000;

/// Where and how Order announces new orders.
#[derive(Copy, Clone, Debug)]
pub struct PublishOrders {
    /// The broker.
    pub broker: ServiceId,
    /// How long Order waits for the broker's confirm before publishing again.
    pub confirm_timeout: Micros,
    /// Through a transactional outbox (true) or from memory right after the write (dual write).
    pub outbox: bool,
    /// Crashes right after storing an order, before publishing it.
    pub crash_after_write: Option<CrashAfterWrite>,
}

#[derive(Debug)]
struct Unconfirmed {
    event: DomainEvent,
    timer: TimerId,
}

/// New orders, and the publishes of them not yet confirmed.
#[derive(Debug, Default)]
pub(super) struct NewOrders {
    publish: Option<PublishOrders>,
    /// By event id.
    unconfirmed: SlotMap<String, Unconfirmed>,
    /// The event id each retry timer is for.
    retry_timers: TimerMap<String>,
    /// The outbox's relay, when orders are published through one.
    outbox: Option<Outbox>,
}

impl NewOrders {
    /// Nothing unconfirmed; publishing as `publish` says, or not at all.
    pub(super) fn new(publish: Option<PublishOrders>) -> NewOrders {
        let outbox = publish.filter(|p| p.outbox).map(|p| {
            Outbox::new(OutboxConfig {
                service: "Order",
                broker: p.broker,
                confirm_timeout: p.confirm_timeout,
            })
        });
        NewOrders {
            publish,
            outbox,
            ..NewOrders::default()
        }
    }

    /// Order (re)started: the relay publishes what its outbox still holds.
    pub(super) fn start(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(outbox) = self.outbox.as_mut() {
            outbox.start(ctx);
        }
    }

    /// Stores a new order and publishes OrderCreated. A create of an order that exists is
    /// answered again without a second event, so a client may retry safely.
    pub(super) fn create(
        &mut self,
        request: &Envelope,
        order: u64,
        products: &[u64],
        ctx: &mut Ctx<'_>,
    ) {
        let key = order.to_string();
        if ctx.read(ORDERS_TABLE, &key).is_some() {
            ctx.reply(request, Payload::OrderAccepted { order });
            return;
        }
        if let Some(outbox) = self.outbox.as_mut() {
            if outbox.is_full() {
                let reason = format!(
                    "Order's outbox holds {MAX_OUTBOX_PENDING} events the broker has not confirmed: try again later"
                );
                ctx.reply(request, Payload::Failed { reason });
                return;
            }
            let value: Vec<String> = products.iter().map(u64::to_string).collect();
            let write = Write::new(ORDERS_TABLE, &key, &value.join(","), 1);
            let event = DomainEvent::OrderCreated(NewOrder {
                order,
                products: products.to_vec(),
                created_at: ctx.now,
            });
            outbox.commit(vec![write], event, ctx);
            if self.crash_after_write(order, ctx) {
                return;
            }
            if let Some(outbox) = self.outbox.as_mut() {
                outbox.relay(ctx);
            }
            ctx.reply(request, Payload::OrderAccepted { order });
            return;
        }
        if self.unconfirmed.len() >= MAX_UNCONFIRMED_PUBLISHES {
            let reason = format!(
                "the broker has not confirmed {MAX_UNCONFIRMED_PUBLISHES} orders yet: try again later"
            );
            ctx.reply(request, Payload::Failed { reason });
            return;
        }
        let value: Vec<String> = products.iter().map(u64::to_string).collect();
        ctx.write(ORDERS_TABLE, &key, &value.join(","), 1);
        if self.crash_after_write(order, ctx) {
            return;
        }
        if self.publish.is_some() {
            let event = DomainEvent::OrderCreated(NewOrder {
                order,
                products: products.to_vec(),
                created_at: ctx.now,
            });
            self.send(event, ctx);
        }
        ctx.reply(request, Payload::OrderAccepted { order });
    }

    /// Crashes Order here, between storing `order` and publishing it, when the fault strikes;
    /// returns true if it did.
    fn crash_after_write(&mut self, order: u64, ctx: &mut Ctx<'_>) -> bool {
        let crash = self.publish.and_then(|p| p.crash_after_write);
        if !CrashAfterWrite::strikes(crash, ctx) {
            return false;
        }
        ctx.narrate(if self.outbox.is_some() {
            format!(
                "Order crashes right after committing order {order} and its outbox row, before its relay \
                 published it: the event waits in the outbox table, which the crash does not touch."
            )
        } else {
            format!(
                "Order crashes right after storing order {order}, before publishing OrderCreated: the event \
                 was only in its memory, so Inventory and Shipping never hear of the order — the \
                 dual-write problem."
            )
        });
        ctx.crash(crash.map(|c| c.restart_after).unwrap_or_default());
        true
    }

    /// Publishes `event` and arms its retry.
    fn send(&mut self, event: DomainEvent, ctx: &mut Ctx<'_>) {
        let Some(publish) = self.publish else {
            return;
        };
        ctx.send(publish.broker, Payload::Publish(event.clone()), None, None);
        let timer = ctx.set_timer(publish.confirm_timeout);
        let event_id = event.id();
        self.retry_timers.insert(timer.key(), event_id.clone());
        self.unconfirmed
            .insert(event_id, Unconfirmed { event, timer });
    }

    /// The broker confirmed `event_id`: no more retries.
    pub(super) fn confirmed(&mut self, event_id: &str, ctx: &mut Ctx<'_>) {
        if let Some(outbox) = self.outbox.as_mut() {
            outbox.confirmed(event_id, ctx);
            return;
        }
        if let Some(done) = self.unconfirmed.remove(event_id) {
            self.retry_timers.remove(&done.timer.key());
        }
    }

    /// Handles `timer` if it is a retry; returns false when it is not one of these timers.
    pub(super) fn timer(&mut self, timer: TimerId, ctx: &mut Ctx<'_>) -> bool {
        if let Some(outbox) = self.outbox.as_mut() {
            return outbox.timer(timer, ctx);
        }
        let Some(event_id) = self.retry_timers.remove(&timer.key()) else {
            return false;
        };
        if let (Some(pending), Some(publish)) = (self.unconfirmed.remove(&event_id), self.publish) {
            ctx.narrate(format!(
                "The broker has not confirmed {} within {}: Order publishes it again.",
                pending.event.caption(),
                publish.confirm_timeout
            ));
            self.send(pending.event, ctx);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MsgId;
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables, Tables};

    const CLIENT: ServiceId = ServiceId(0);
    const ORDER: ServiceId = ServiceId(1);
    const BROKER: ServiceId = ServiceId(2);

    fn create(orders: &mut NewOrders, tables: &mut MemTables, order: u64) -> Vec<Effect> {
        let (mut rng, mut ids) = (SimRng::new(1), IdAllocator::default());
        let mut ctx = Ctx::new(Micros::ZERO, ORDER, &mut rng, tables, &mut ids);
        let request = Envelope {
            id: MsgId(order),
            from: CLIENT,
            to: ORDER,
            op: None,
            caused_by: None,
            payload: Payload::CreateOrder {
                order,
                products: vec![1],
            },
        };
        orders.create(&request, order, &[1], &mut ctx);
        ctx.into_effects()
    }

    fn answer(effects: &[Effect]) -> Option<&Payload> {
        effects.iter().find_map(|e| match e {
            Effect::Send(Envelope {
                to: CLIENT,
                payload,
                ..
            }) => Some(payload),
            _ => None,
        })
    }

    #[test]
    fn orders_wait_on_the_broker_up_to_a_bound_then_are_refused_unstored() {
        let mut orders = NewOrders::new(Some(PublishOrders {
            broker: BROKER,
            confirm_timeout: Micros::from_secs(1),
            outbox: false,
            crash_after_write: None,
        }));
        let mut tables = MemTables::default();
        for order in 1..=MAX_UNCONFIRMED_PUBLISHES as u64 {
            let effects = create(&mut orders, &mut tables, order);
            assert_eq!(answer(&effects), Some(&Payload::OrderAccepted { order }));
        }
        let refused = create(&mut orders, &mut tables, 5_000);
        assert!(
            matches!(answer(&refused), Some(Payload::Failed { reason }) if reason.contains("try again later")),
            "{refused:?}"
        );
        assert!(
            tables.get(ORDERS_TABLE, "5000").is_none(),
            "no order without its event"
        );
        let (mut rng, mut ids) = (SimRng::new(1), IdAllocator::default());
        let mut ctx = Ctx::new(Micros::ZERO, ORDER, &mut rng, &mut tables, &mut ids);
        orders.confirmed("OrderCreated#1", &mut ctx);
        let accepted = create(&mut orders, &mut tables, 5_000);
        assert_eq!(
            answer(&accepted),
            Some(&Payload::OrderAccepted { order: 5_000 })
        );
        let again = create(&mut orders, &mut tables, 5_000);
        assert!(
            !again
                .iter()
                .any(|e| matches!(e, Effect::Send(Envelope { to: BROKER, .. }))),
            "a repeated create is answered without a second event"
        );
    }
}
