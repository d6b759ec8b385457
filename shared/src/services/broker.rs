//! The broker: one bounded queue per subscriber, delivered one event at a time (prefetch 1: no
//! more than one unacknowledged delivery per queue's consumer, so each queue stays in order),
//! acknowledged by the subscriber, and retried with backoff while the subscriber is down.
//!
//! When an unacknowledged event is delivered again is a choice, [`Redelivery`]: RabbitMQ's rule
//! (when the consumer's connection closes) or SQS's visibility timeout (when the ack is late).
//!
//! Durable queues ([`BrokerConfig::durable`]) are rows of the broker's own tables, one table per
//! queue (`queue_shipping`), so they survive its crash as every service's tables do: a publish
//! is written there before it is confirmed, an ack marks its row `acked`, and a restart reads
//! the queue back. Each queue is a ring of `queue_capacity` rows keyed by slot (its bound, since
//! tables have no delete); a row's version is the event's tag. Without durability the queues are
//! the machine's memory, lost when it crashes.

use crate::protocol::{DomainEvent, Event, MsgId, Payload, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId, TimerMap};
use crate::slot_map::SlotMap;
use crate::time::Micros;
use std::collections::VecDeque;

/// One subscriber's interest in a topic.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// The topic, such as `product`.
    pub topic: &'static str,
    /// The subscribing service.
    pub subscriber: ServiceId,
    /// The queue's display name, such as `order`.
    pub queue: String,
}

/// When the broker delivers an unacknowledged event again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Redelivery {
    /// RabbitMQ's rule: when the consumer's connection closes (it crashed, or the network broke
    /// the connection) with the delivery unacknowledged. A slow consumer keeps its delivery as
    /// long as it takes; a late ack is never a reason.
    RabbitMq,
    /// SQS's visibility timeout: when no ack came within the broker's `ack_timeout`, whatever
    /// the reason, even if the consumer is only slow.
    VisibilityTimeout,
}

/// How the broker behaves.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Who receives what.
    pub subscriptions: Vec<Subscription>,
    /// How long each event waits in the broker before it can be delivered.
    pub delivery_delay: Micros,
    /// When an unacknowledged event is delivered again.
    pub redelivery: Redelivery,
    /// How long a delivery waits for its ack before it is redelivered, under
    /// [`Redelivery::VisibilityTimeout`] only.
    pub ack_timeout: Micros,
    /// The longest wait between retries to a subscriber that is down.
    pub retry_backoff_max: Micros,
    /// The most events a queue holds; a publish beyond it is rejected.
    pub queue_capacity: usize,
    /// Whether the broker confirms each publish it stored in every queue, so that a publisher
    /// can publish again what was not confirmed.
    pub confirm_publishes: bool,
    /// Whether queues are rows of the broker's tables, kept across its crash (RabbitMQ's durable
    /// queues with persistent messages), or its memory, lost when it crashes.
    pub durable: bool,
}

/// The value of a durable queue's row once its event is acknowledged.
pub const ACKED_ROW: &str = "acked";

/// The table holding queue `queue` of a durable broker.
pub fn queue_table(queue: &str) -> String {
    format!("queue_{queue}")
}

/// The first wait before retrying a refused delivery; it doubles up to the configured maximum.
const RETRY_BACKOFF_MIN: Micros = Micros::from_millis(100);

#[derive(Debug)]
struct Queued {
    tag: u64,
    /// Its row in a durable queue's table.
    slot: usize,
    ready_at: Micros,
    event: DomainEvent,
    /// True once a delivery may have reached the subscriber: one was sent and not refused.
    delivered_before: bool,
}

#[derive(Debug)]
struct InFlight {
    msg: MsgId,
    /// The visibility timeout's timer, under [`Redelivery::VisibilityTimeout`].
    ack_timer: Option<TimerId>,
    /// The head's `delivered_before` before this delivery, restored if it is refused.
    delivered_before: bool,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Queued>,
    in_flight: Option<InFlight>,
    delivery_timer: Option<TimerId>,
    backoff: Micros,
    /// The row the next event of a durable queue takes.
    next_slot: usize,
}

#[derive(Copy, Clone, Debug)]
enum BrokerTimer {
    Deliver(usize),
    AckTimeout(usize),
}

/// The broker.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    queues: Vec<Queue>,
    timers: TimerMap<BrokerTimer>,
    next_tag: u64,
}

impl Broker {
    /// A broker with empty queues.
    pub fn new(config: BrokerConfig) -> Broker {
        let queues = config
            .subscriptions
            .iter()
            .map(|_| Queue::default())
            .collect();
        Broker {
            config,
            queues,
            timers: SlotMap::new(),
            next_tag: 0,
        }
    }

    /// On (re)start, reads durable queues back from the tables: every row not yet acknowledged,
    /// in the order of their tags. The head of each may have been delivered before the crash,
    /// so it goes out marked as a redelivery.
    fn recover(&mut self, ctx: &mut Ctx<'_>) {
        if !self.config.durable {
            return;
        }
        let mut recovered = 0;
        for index in 0..self.queues.len() {
            let rows = ctx.scan(&queue_table(&self.config.subscriptions[index].queue));
            let Some(last) = rows.iter().max_by_key(|(_, row)| row.version) else {
                continue;
            };
            self.next_tag = self.next_tag.max(last.1.version);
            let last_slot: usize = last.0.parse().unwrap_or(0);
            let mut items: Vec<Queued> = rows
                .iter()
                .filter(|(_, row)| row.value != ACKED_ROW)
                .filter_map(|(key, row)| {
                    Some(Queued {
                        tag: row.version,
                        slot: key.parse().ok()?,
                        ready_at: ctx.now,
                        event: crate::json::from_str(&row.value).ok()?,
                        delivered_before: false,
                    })
                })
                .collect();
            crate::ordered::sort_by_key(&mut items, |item| item.tag);
            if let Some(head) = items.first_mut() {
                head.delivered_before = true;
            }
            recovered += items.len();
            let queue = &mut self.queues[index];
            queue.next_slot = (last_slot + 1) % self.config.queue_capacity.max(1);
            queue.items = items.into();
            self.record_depth(index, ctx);
            self.schedule_delivery(index, ctx);
        }
        if recovered > 0 {
            ctx.narrate(format!(
                "The broker reads its durable queues back from its tables: the {recovered} \
                 event(s) that waited are delivered (the first of each queue marked as a \
                 redelivery, as it may have reached its consumer before the crash)."
            ));
        }
    }

    fn record_depth(&self, index: usize, ctx: &mut Ctx<'_>) {
        let depth = self.queues[index].items.len() as u32;
        let queue = self.config.subscriptions[index].queue.clone();
        ctx.record(Event::QueueDepth {
            service: ctx.me,
            queue,
            depth,
        });
    }

    fn publish(&mut self, message: &Envelope, event: &DomainEvent, ctx: &mut Ctx<'_>) {
        let mut stored_everywhere = true;
        for index in 0..self.queues.len() {
            if self.config.subscriptions[index].topic != event.topic() {
                continue;
            }
            if self.queues[index].items.len() >= self.config.queue_capacity {
                let queue = &self.config.subscriptions[index].queue;
                ctx.narrate(format!(
                    "The broker's {queue} queue is full: {} is rejected.",
                    event.label()
                ));
                ctx.reply(
                    message,
                    Payload::Failed {
                        reason: format!("queue {queue} is full"),
                    },
                );
                stored_everywhere = false;
                continue;
            }
            self.next_tag += 1;
            let slot = self.queues[index].next_slot;
            self.queues[index].next_slot = (slot + 1) % self.config.queue_capacity.max(1);
            if self.config.durable {
                // Written before the confirm below: a confirmed event is on disk.
                let table = queue_table(&self.config.subscriptions[index].queue);
                let value = crate::json::to_string(event);
                ctx.write(&table, &slot.to_string(), &value, self.next_tag);
            }
            self.queues[index].items.push_back(Queued {
                tag: self.next_tag,
                slot,
                ready_at: ctx.now + self.config.delivery_delay,
                event: event.clone(),
                delivered_before: false,
            });
            self.record_depth(index, ctx);
            let queue = &self.queues[index];
            if queue.backoff > Micros::ZERO {
                ctx.narrate(format!(
                    "The {} queue's consumer is down: {} waits in its queue ({} waiting).",
                    self.config.subscriptions[index].queue,
                    event.caption(),
                    queue.items.len()
                ));
            }
            self.schedule_delivery(index, ctx);
        }
        if self.config.confirm_publishes && stored_everywhere {
            let event_id = event.id();
            ctx.reply(message, Payload::PublishConfirmed { event_id });
        }
    }

    /// Arms the delivery timer of a queue that has work and nothing in flight.
    fn schedule_delivery(&mut self, index: usize, ctx: &mut Ctx<'_>) {
        let queue = &mut self.queues[index];
        let Some(head) = queue.items.front() else {
            return;
        };
        if queue.in_flight.is_some() || queue.delivery_timer.is_some() {
            return;
        }
        let wait = if queue.backoff > Micros::ZERO {
            queue.backoff
        } else {
            head.ready_at - ctx.now
        };
        let timer = ctx.set_timer(wait);
        queue.delivery_timer = Some(timer);
        self.timers.insert(timer.key(), BrokerTimer::Deliver(index));
    }

    fn deliver_head(&mut self, index: usize, ctx: &mut Ctx<'_>) {
        let subscriber = self.config.subscriptions[index].subscriber;
        let queue = &mut self.queues[index];
        queue.delivery_timer = None;
        let Some(head) = queue.items.front_mut() else {
            return;
        };
        let payload = Payload::Deliver {
            tag: head.tag,
            redelivered: head.delivered_before,
            event: head.event.clone(),
        };
        let delivered_before = std::mem::replace(&mut head.delivered_before, true);
        let msg = ctx.send(subscriber, payload, None, None);
        let ack_timer = match self.config.redelivery {
            Redelivery::RabbitMq => None,
            Redelivery::VisibilityTimeout => {
                let timer = ctx.set_timer(self.config.ack_timeout);
                self.timers
                    .insert(timer.key(), BrokerTimer::AckTimeout(index));
                Some(timer)
            }
        };
        self.queues[index].in_flight = Some(InFlight {
            msg,
            ack_timer,
            delivered_before,
        });
    }

    /// Under the visibility timeout, the subscriber did not ack in time: it may be slow, the ack
    /// may be lost, or it may have crashed. The broker cannot tell, so it delivers the event again.
    fn ack_timed_out(&mut self, index: usize, ctx: &mut Ctx<'_>) {
        let queue = &mut self.queues[index];
        queue.in_flight = None;
        if let Some(head) = queue.items.front() {
            ctx.narrate(format!(
                "No ack for {} on the {} queue within its visibility timeout ({}, SQS's rule): the \
                 broker will deliver it again, even if the consumer is only slow.",
                head.event.caption(),
                self.config.subscriptions[index].queue,
                self.config.ack_timeout
            ));
        }
        self.schedule_delivery(index, ctx);
    }

    /// Under RabbitMQ's rule, the subscriber's connection closed: what it had not acknowledged
    /// goes back to the head of its queue, to be delivered again once it is back (it may have
    /// applied it before its ack was lost, so the redelivery can be a duplicate).
    fn connection_lost(&mut self, subscriber: ServiceId, ctx: &mut Ctx<'_>) {
        if self.config.redelivery != Redelivery::RabbitMq {
            return;
        }
        for index in 0..self.queues.len() {
            if self.config.subscriptions[index].subscriber != subscriber {
                continue;
            }
            let queue = &mut self.queues[index];
            if queue.in_flight.take().is_none() {
                continue;
            }
            if let Some(head) = queue.items.front() {
                ctx.narrate(format!(
                    "The {} queue's consumer lost its connection with {} unacknowledged: the broker \
                     puts it back at the head of the queue and delivers it again when the consumer \
                     is back (RabbitMQ's rule).",
                    self.config.subscriptions[index].queue,
                    head.event.caption(),
                ));
            }
            // The consumer has to connect again: wait as for a refused delivery.
            queue.backoff = (queue.backoff + queue.backoff)
                .clamp(RETRY_BACKOFF_MIN, self.config.retry_backoff_max);
            if let Some(timer) = queue.delivery_timer.take() {
                self.timers.remove(&timer.key());
            }
            self.schedule_delivery(index, ctx);
        }
    }

    fn acked(&mut self, from: ServiceId, tag: u64, ctx: &mut Ctx<'_>) {
        // Tags are unique across queues, so the tag names the queue: a service that subscribes
        // to two queues acks each one's deliveries there.
        let Some(index) = (0..self.queues.len()).find(|&index| {
            self.config.subscriptions[index].subscriber == from
                && self.queues[index]
                    .items
                    .front()
                    .is_some_and(|head| head.tag == tag)
        }) else {
            return;
        };
        let queue = &mut self.queues[index];
        // A late ack of an earlier delivery of the head still acknowledges the head.
        let Some(done) = queue.items.pop_front() else {
            return;
        };
        if self.config.durable {
            let table = queue_table(&self.config.subscriptions[index].queue);
            ctx.write(&table, &done.slot.to_string(), ACKED_ROW, done.tag);
        }
        if let Some(in_flight) = queue.in_flight.take()
            && let Some(timer) = in_flight.ack_timer
        {
            self.timers.remove(&timer.key());
        }
        if queue.backoff > Micros::ZERO {
            let subscriber = &self.config.subscriptions[index].queue;
            ctx.narrate(format!(
                "The {subscriber} queue's consumer is back: the broker drains the {} event(s) that waited.",
                queue.items.len() + 1
            ));
            queue.backoff = Micros::ZERO;
        }
        self.record_depth(index, ctx);
        self.schedule_delivery(index, ctx);
    }

    fn refused(&mut self, msg: MsgId, ctx: &mut Ctx<'_>) {
        let Some(index) = self
            .queues
            .iter()
            .position(|q| q.in_flight.as_ref().is_some_and(|f| f.msg == msg))
        else {
            return;
        };
        let queue = &mut self.queues[index];
        if let Some(in_flight) = queue.in_flight.take() {
            if let Some(timer) = in_flight.ack_timer {
                self.timers.remove(&timer.key());
            }
            // A refused delivery never reached the subscriber, so it cannot make a duplicate.
            if let Some(head) = queue.items.front_mut() {
                head.delivered_before = in_flight.delivered_before;
            }
        }
        if queue.backoff == Micros::ZERO {
            let name = &self.config.subscriptions[index].queue;
            ctx.narrate(format!(
                "The {name} queue's consumer is down: the broker keeps its events queued and retries with backoff."
            ));
        }
        queue.backoff =
            (queue.backoff + queue.backoff).clamp(RETRY_BACKOFF_MIN, self.config.retry_backoff_max);
        self.schedule_delivery(index, ctx);
    }
}

impl Service for Broker {
    fn subscriptions(&self) -> Vec<Subscription> {
        self.config.subscriptions.clone()
    }

    fn broker_config(&self) -> Option<BrokerConfig> {
        Some(self.config.clone())
    }

    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => self.recover(ctx),
            Input::Message(message) => match &message.payload {
                Payload::Publish(event) => self.publish(message, event, ctx),
                Payload::Ack { tag } => self.acked(message.from, *tag, ctx),
                _ => {}
            },
            Input::Timer(timer) => match self.timers.remove(&timer.key()) {
                Some(BrokerTimer::Deliver(index)) => self.deliver_head(index, ctx),
                Some(BrokerTimer::AckTimeout(index)) => self.ack_timed_out(index, ctx),
                None => {}
            },
            Input::Refused(msg) => self.refused(msg, ctx),
            Input::ConnectionLost(subscriber) => self.connection_lost(subscriber, ctx),
        }
    }

    fn crash_narration(&self, name: &str) -> Option<String> {
        let waiting: usize = self.queues.iter().map(|q| q.items.len()).sum();
        Some(if self.config.durable {
            format!(
                "{name} crashes: its queues are durable, rows of its own tables, so the {waiting} \
                 event(s) waiting in them are kept for its restart; publishes to it are refused \
                 meanwhile."
            )
        } else {
            format!(
                "{name} crashes: its queues were in its memory, so the events waiting in them are \
                 lost ({waiting}; durable queues, as RabbitMQ keeps them, would survive), and \
                 publishes to it are refused."
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{OpId, ProductName};
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables};

    const PRODUCT: ServiceId = ServiceId(2);
    const ORDER: ServiceId = ServiceId(1);
    const BROKER: ServiceId = ServiceId(3);

    /// Drives one broker by hand, as the sans-IO design allows.
    struct Harness {
        broker: Broker,
        rng: SimRng,
        tables: MemTables,
        ids: IdAllocator,
    }

    impl Harness {
        fn new(queue_capacity: usize) -> Harness {
            Harness::with(queue_capacity, Redelivery::RabbitMq, &["order"])
        }

        /// A broker whose queues, named `queues`, all carry the `product` topic to Order.
        fn with(queue_capacity: usize, redelivery: Redelivery, queues: &[&str]) -> Harness {
            let config = BrokerConfig {
                subscriptions: queues
                    .iter()
                    .map(|queue| Subscription {
                        topic: "product",
                        subscriber: ORDER,
                        queue: queue.to_string(),
                    })
                    .collect(),
                delivery_delay: Micros::from_millis(5),
                redelivery,
                ack_timeout: Micros::from_millis(100),
                retry_backoff_max: Micros::from_secs(1),
                queue_capacity,
                confirm_publishes: true,
                durable: queues.contains(&"durable"),
            };
            Harness {
                broker: Broker::new(config),
                rng: SimRng::new(1),
                tables: MemTables::default(),
                ids: IdAllocator::default(),
            }
        }

        fn handle(&mut self, input: Input<'_>) -> Vec<Effect> {
            let mut ctx = Ctx::new(
                Micros::ZERO,
                BROKER,
                &mut self.rng,
                &mut self.tables,
                &mut self.ids,
            );
            self.broker.handle(input, &mut ctx);
            ctx.into_effects()
        }

        fn publish(&mut self, version: u64) -> Vec<Effect> {
            let event = DomainEvent::ProductUpdated(ProductName {
                product: 1,
                name: "Lamp".into(),
                version,
            });
            let mut envelope = Envelope {
                id: MsgId(100 + version),
                from: PRODUCT,
                to: BROKER,
                op: Some(OpId(1)),
                caused_by: None,
                payload: Payload::Publish(event),
            };
            self.handle(Input::Message(&mut envelope))
        }

        /// Acks `tag` from Order.
        fn ack(&mut self, tag: u64) -> Vec<Effect> {
            let mut envelope = Envelope {
                id: MsgId(900 + tag),
                from: ORDER,
                to: BROKER,
                op: None,
                caused_by: None,
                payload: Payload::Ack { tag },
            };
            self.handle(Input::Message(&mut envelope))
        }
    }

    fn timers(effects: &[Effect]) -> Vec<TimerId> {
        effects
            .iter()
            .filter_map(|e| {
                if let Effect::SetTimer { id, .. } = e {
                    Some(*id)
                } else {
                    None
                }
            })
            .collect()
    }

    fn deliveries(effects: &[Effect]) -> Vec<(MsgId, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(Envelope {
                    id,
                    payload: Payload::Deliver { redelivered, .. },
                    ..
                }) => Some((*id, *redelivered)),
                _ => None,
            })
            .collect()
    }

    fn confirms(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(Envelope {
                    to: PRODUCT,
                    payload: Payload::PublishConfirmed { event_id },
                    ..
                }) => Some(event_id.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_full_queue_rejects_the_publish_and_says_so() {
        let mut harness = Harness::new(2);
        assert_eq!(confirms(&harness.publish(1)), vec!["ProductUpdated#1v1"]);
        harness.publish(2);
        let effects = harness.publish(3);
        assert!(
            confirms(&effects).is_empty(),
            "a rejected publish is not confirmed"
        );
        let rejected = effects.iter().any(|e| {
            matches!(e, Effect::Send(Envelope { to: PRODUCT, payload: Payload::Failed { reason }, .. }) if reason == "queue order is full")
        });
        assert!(rejected, "{effects:?}");
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Record(Event::Narration { .. })))
        );
        assert_eq!(
            harness.broker.queues[0].items.len(),
            2,
            "the queue never grows past its bound"
        );
    }

    /// The deliveries among `effects`, as (queue's tag, redelivered).
    fn tags(effects: &[Effect]) -> Vec<(u64, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(Envelope {
                    payload:
                        Payload::Deliver {
                            tag, redelivered, ..
                        },
                    ..
                }) => Some((*tag, *redelivered)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn under_the_visibility_timeout_an_unacknowledged_delivery_is_redelivered_marked_as_such() {
        let mut harness = Harness::with(10, Redelivery::VisibilityTimeout, &["order"]);
        let deliver_timer = timers(&harness.publish(1))[0];
        let first = harness.handle(Input::Timer(deliver_timer));
        assert_eq!(deliveries(&first).len(), 1);
        assert!(!deliveries(&first)[0].1);
        let ack_timeout = timers(&first)[0];
        let rescheduled = harness.handle(Input::Timer(ack_timeout));
        let again = harness.handle(Input::Timer(timers(&rescheduled)[0]));
        assert!(
            deliveries(&again)[0].1,
            "the second delivery says it is a redelivery"
        );
    }

    #[test]
    fn a_refused_delivery_backs_off_and_keeps_the_event() {
        let mut harness = Harness::new(10);
        let deliver_timer = timers(&harness.publish(1))[0];
        let delivered = harness.handle(Input::Timer(deliver_timer));
        let (msg, _) = deliveries(&delivered)[0];
        let retry = harness.handle(Input::Refused(msg));
        assert_eq!(
            harness.broker.queues[0].items.len(),
            1,
            "the event stays queued"
        );
        assert_eq!(harness.broker.queues[0].backoff, RETRY_BACKOFF_MIN);
        assert_eq!(timers(&retry).len(), 1, "a retry is scheduled");
        let again = harness.handle(Input::Timer(timers(&retry)[0]));
        assert!(
            !deliveries(&again)[0].1,
            "a refused delivery never arrived, so the retry is not marked as a redelivery"
        );
    }

    #[test]
    fn events_published_while_the_consumer_is_down_are_narrated_with_the_queue_length() {
        let mut harness = Harness::new(10);
        let deliver_timer = timers(&harness.publish(1))[0];
        let delivered = harness.handle(Input::Timer(deliver_timer));
        harness.handle(Input::Refused(deliveries(&delivered)[0].0));
        let effects = harness.publish(2);
        let narrated = effects.iter().any(|e| {
            matches!(e, Effect::Record(Event::Narration { text })
                if text == "The order queue's consumer is down: ProductUpdated #1 (v2) waits in its queue (2 waiting).")
        });
        assert!(narrated, "{effects:?}");
    }

    #[test]
    fn under_rabbitmq_a_slow_consumer_keeps_its_delivery_and_gets_no_more_than_prefetch() {
        let mut harness = Harness::new(10);
        let deliver_timer = timers(&harness.publish(1))[0];
        harness.publish(2);
        harness.publish(3);
        let first = harness.handle(Input::Timer(deliver_timer));
        assert_eq!(tags(&first), vec![(1, false)]);
        assert!(
            timers(&first).is_empty(),
            "no timer redelivers it: a late ack is no reason under RabbitMQ's rule"
        );
        assert!(harness.broker.timers.is_empty(), "nothing else is due");
        // Prefetch 1: the next event waits until the first is acknowledged.
        let after_ack = harness.ack(1);
        assert!(tags(&after_ack).is_empty());
        let second = harness.handle(Input::Timer(timers(&after_ack)[0]));
        assert_eq!(tags(&second), vec![(2, false)]);
        assert_eq!(harness.broker.queues[0].items.len(), 2);
    }

    #[test]
    fn under_rabbitmq_a_lost_connection_puts_the_delivery_back_for_redelivery() {
        let mut harness = Harness::new(10);
        let deliver_timer = timers(&harness.publish(1))[0];
        harness.handle(Input::Timer(deliver_timer));
        let lost = harness.handle(Input::ConnectionLost(ORDER));
        let narrated = lost.iter().any(|e| {
            matches!(e, Effect::Record(Event::Narration { text }) if text.contains("RabbitMQ's rule"))
        });
        assert!(narrated, "{lost:?}");
        let again = harness.handle(Input::Timer(timers(&lost)[0]));
        assert_eq!(
            tags(&again),
            vec![(1, true)],
            "the event may have been applied: it comes again, marked redelivered"
        );
        // Another service's connection is none of this queue's business.
        assert!(harness.handle(Input::ConnectionLost(PRODUCT)).is_empty());
    }

    #[test]
    fn under_the_visibility_timeout_a_lost_connection_changes_nothing() {
        let mut harness = Harness::with(10, Redelivery::VisibilityTimeout, &["order"]);
        let deliver_timer = timers(&harness.publish(1))[0];
        harness.handle(Input::Timer(deliver_timer));
        assert!(harness.handle(Input::ConnectionLost(ORDER)).is_empty());
    }

    #[test]
    fn a_service_with_two_subscriptions_acks_each_queue_by_its_tag() {
        let mut harness = Harness::with(10, Redelivery::RabbitMq, &["names", "prices"]);
        // One publish lands in both queues, with tags 1 and 2.
        let both = timers(&harness.publish(1));
        assert_eq!(both.len(), 2);
        let deliveries: Vec<(u64, bool)> = both
            .into_iter()
            .flat_map(|timer| tags(&harness.handle(Input::Timer(timer))))
            .collect();
        assert_eq!(deliveries, vec![(1, false), (2, false)]);
        // Acking the second queue's delivery first empties that queue, not the first.
        harness.ack(2);
        assert_eq!(harness.broker.queues[0].items.len(), 1);
        assert_eq!(harness.broker.queues[1].items.len(), 0);
        harness.ack(1);
        assert_eq!(harness.broker.queues[0].items.len(), 0);
    }

    #[test]
    fn a_durable_queue_is_written_before_the_confirm_and_read_back_after_a_crash() {
        let mut harness = Harness::with(10, Redelivery::RabbitMq, &["durable"]);
        let effects = harness.publish(1);
        let write = effects.iter().position(|e| {
            matches!(e, Effect::Record(Event::RowWritten { table, key, version: 1, .. })
                if table == "queue_durable" && key == "0")
        });
        let confirm = effects.iter().position(|e| {
            matches!(
                e,
                Effect::Send(Envelope {
                    payload: Payload::PublishConfirmed { .. },
                    ..
                })
            )
        });
        assert!(write.is_some() && write < confirm, "{effects:?}");
        harness.handle(Input::Timer(timers(&effects)[0]));
        harness.publish(2);
        harness.publish(3);
        harness.ack(1);
        // The broker crashes: its memory is gone, its tables stay.
        let config = harness.broker.config.clone();
        harness.broker = Broker::new(config);
        let restarted = harness.handle(Input::Start);
        assert_eq!(
            harness.broker.queues[0].items.len(),
            2,
            "events 2 and 3 are back"
        );
        assert_eq!(
            harness.broker.next_tag, 3,
            "tags go on from where they were"
        );
        let again = harness.handle(Input::Timer(timers(&restarted)[0]));
        assert_eq!(
            tags(&again),
            vec![(2, true)],
            "the head may have reached its consumer before the crash"
        );
        harness.ack(2);
        assert_eq!(harness.broker.queues[0].items.len(), 1);
        let next = harness.publish(4);
        assert!(next.iter().any(|e| matches!(e,
            Effect::Record(Event::RowWritten { key, version: 4, .. }) if key == "3")));
    }

    #[test]
    fn a_queue_in_memory_is_gone_after_a_crash() {
        let mut harness = Harness::new(10);
        harness.publish(1);
        let config = harness.broker.config.clone();
        harness.broker = Broker::new(config);
        assert!(harness.handle(Input::Start).is_empty());
        assert!(harness.broker.queues[0].items.is_empty());
    }
}
