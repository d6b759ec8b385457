//! The broker: one bounded queue per subscriber, delivered one event at a time (prefetch 1, so
//! each queue stays in order), acknowledged by the subscriber, redelivered when the ack does not
//! come, and retried with backoff while the subscriber is down.

use crate::protocol::{DomainEvent, Event, MsgId, Payload, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId};
use crate::time::Micros;
use std::collections::{BTreeMap, VecDeque};

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

/// How the broker behaves.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Who receives what.
    pub subscriptions: Vec<Subscription>,
    /// How long each event waits in the broker before it can be delivered.
    pub delivery_delay: Micros,
    /// How long a delivery waits for its ack before it is redelivered.
    pub ack_timeout: Micros,
    /// The longest wait between retries to a subscriber that is down.
    pub retry_backoff_max: Micros,
    /// The most events a queue holds; a publish beyond it is rejected.
    pub queue_capacity: usize,
    /// Whether the broker confirms each publish it stored in every queue, so that a publisher
    /// can publish again what was not confirmed.
    pub confirm_publishes: bool,
}

/// The first wait before retrying a refused delivery; it doubles up to the configured maximum.
const RETRY_BACKOFF_MIN: Micros = Micros::from_millis(100);

#[derive(Debug)]
struct Queued {
    tag: u64,
    ready_at: Micros,
    event: DomainEvent,
    /// True once a delivery may have reached the subscriber: one was sent and not refused.
    delivered_before: bool,
}

#[derive(Debug)]
struct InFlight {
    msg: MsgId,
    ack_timer: TimerId,
    /// The head's `delivered_before` before this delivery, restored if it is refused.
    delivered_before: bool,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Queued>,
    in_flight: Option<InFlight>,
    delivery_timer: Option<TimerId>,
    backoff: Micros,
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
    timers: BTreeMap<TimerId, BrokerTimer>,
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
            timers: BTreeMap::new(),
            next_tag: 0,
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
            self.queues[index].items.push_back(Queued {
                tag: self.next_tag,
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
        self.timers.insert(timer, BrokerTimer::Deliver(index));
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
        let ack_timer = ctx.set_timer(self.config.ack_timeout);
        self.timers
            .insert(ack_timer, BrokerTimer::AckTimeout(index));
        self.queues[index].in_flight = Some(InFlight {
            msg,
            ack_timer,
            delivered_before,
        });
    }

    /// The subscriber did not ack in time: it may be slow, the ack may be lost, or it may have
    /// crashed. The broker cannot tell, so it delivers the event again.
    fn ack_timed_out(&mut self, index: usize, ctx: &mut Ctx<'_>) {
        let queue = &mut self.queues[index];
        queue.in_flight = None;
        if let Some(head) = queue.items.front() {
            ctx.narrate(format!(
                "No ack for {} on the {} queue within {}: the broker will deliver it again.",
                head.event.caption(),
                self.config.subscriptions[index].queue,
                self.config.ack_timeout
            ));
        }
        self.schedule_delivery(index, ctx);
    }

    fn acked(&mut self, from: ServiceId, tag: u64, ctx: &mut Ctx<'_>) {
        let Some(index) = self
            .config
            .subscriptions
            .iter()
            .position(|s| s.subscriber == from)
        else {
            return;
        };
        let queue = &mut self.queues[index];
        // A late ack of an earlier delivery of the head still acknowledges the head.
        if queue.items.front().is_none_or(|head| head.tag != tag) {
            return;
        }
        queue.items.pop_front();
        if let Some(in_flight) = queue.in_flight.take() {
            self.timers.remove(&in_flight.ack_timer);
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
            self.timers.remove(&in_flight.ack_timer);
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

    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => {}
            Input::Message(message) => match &message.payload {
                Payload::Publish(event) => self.publish(message, event, ctx),
                Payload::Ack { tag } => self.acked(message.from, *tag, ctx),
                _ => {}
            },
            Input::Timer(timer) => match self.timers.remove(&timer) {
                Some(BrokerTimer::Deliver(index)) => self.deliver_head(index, ctx),
                Some(BrokerTimer::AckTimeout(index)) => self.ack_timed_out(index, ctx),
                None => {}
            },
            Input::Refused(msg) => self.refused(msg, ctx),
        }
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
            let config = BrokerConfig {
                subscriptions: vec![Subscription {
                    topic: "product",
                    subscriber: ORDER,
                    queue: "order".into(),
                }],
                delivery_delay: Micros::from_millis(5),
                ack_timeout: Micros::from_millis(100),
                retry_backoff_max: Micros::from_secs(1),
                queue_capacity,
                confirm_publishes: true,
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
            let envelope = Envelope {
                id: MsgId(100 + version),
                from: PRODUCT,
                to: BROKER,
                op: Some(OpId(1)),
                caused_by: None,
                payload: Payload::Publish(event),
            };
            self.handle(Input::Message(&envelope))
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

    #[test]
    fn an_unacknowledged_delivery_is_redelivered_marked_as_such() {
        let mut harness = Harness::new(10);
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
}
