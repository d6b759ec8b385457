//! RabbitMQ in place of the scenario's broker, for `--broker amqp://…`.
//!
//! The scenario's Broker service stays in the topology (and the trace), but no state machine
//! runs for it: a publish sent to it becomes a persistent AMQP publish on a confirm channel, and
//! its `delivered` is RabbitMQ's confirm, answered to the publisher (`publish_confirmed`) when
//! the scenario's broker confirms publishes; each subscription is a durable queue consumed with
//! prefetch 1 and manual acks, whose deliveries are sent on to the subscriber over HTTP like any
//! message, and whose acks from the subscriber become AMQP acks.
//!
//! This connection consumes on the subscriber's behalf, so it hands an unacknowledged delivery
//! back to RabbitMQ (`nack`, requeue) when RabbitMQ itself would redeliver it had the subscriber
//! held the channel: the subscriber refused it (it is down) or its connection closed (it crashed,
//! or a message to or from it was lost), after a backoff while it stays away. Never because an
//! ack is late — unless the scenario's broker follows SQS's visibility timeout
//! ([`Redelivery::VisibilityTimeout`]), when a delivery not acked within its `ack_timeout` is
//! handed back. So the trace shows the same hops, and the same redeliveries, as with the embedded
//! broker, and nothing is lost across a consumer restart.

use super::runtime::Work;
use super::trace_log::TraceLog;
use crate::secret::BrokerUrl;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, acker::Acker,
};
use shared::protocol::{DomainEvent, DropReason, Event, MsgId, Payload, ServiceId};
use shared::services::{BrokerConfig, Redelivery, Subscription};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// How long RabbitMQ keeps a run's queue once nothing uses it (a run that died unclosed).
const QUEUE_EXPIRES_MS: i32 = 10 * 60 * 1000;
/// The most messages a queue holds; RabbitMQ rejects (nacks) publishes beyond it.
pub const QUEUE_CAPACITY: i32 = 10_000;
/// The first and the longest wait before redelivering to a subscriber that refused.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often queue depths are read from RabbitMQ for the trace.
const DEPTH_POLL: Duration = Duration::from_millis(200);

/// One delivery handed to a subscriber and not yet acked.
struct Pending {
    acker: Acker,
    subscription: usize,
}

struct State {
    /// Deliveries by the tag the subscriber sees.
    pending: BTreeMap<u64, Pending>,
    /// The tag each delivery message carries, to find it when the subscriber refuses it.
    tag_of_message: BTreeMap<MsgId, u64>,
    /// Per subscription: the current backoff, zero while its subscriber answers.
    backoff: Vec<Duration>,
    next_tag: u64,
}

/// The connection to RabbitMQ standing in for one broker service.
pub struct AmqpBroker {
    service: ServiceId,
    /// Names this run's exchange and queues, so runs side by side never share them.
    run_id: String,
    subscriptions: Vec<Subscription>,
    /// The scenario's broker: its redelivery rule, ack timeout and confirms.
    config: BrokerConfig,
    /// The engine's inbox, for what RabbitMQ says that the trace shows as the broker's messages.
    inbox: mpsc::Sender<Work>,
    publisher: Channel,
    _connection: Connection,
    log: Arc<TraceLog>,
    state: Mutex<State>,
}

impl AmqpBroker {
    /// Connects to `url`, declares the exchange and a durable, bounded queue per subscription
    /// (emptied, so each run starts clean), and starts consuming them into `inbox`.
    pub async fn connect(
        url: &BrokerUrl,
        run_id: String,
        service: ServiceId,
        config: BrokerConfig,
        log: Arc<TraceLog>,
        inbox: mpsc::Sender<Work>,
    ) -> Result<Arc<AmqpBroker>, lapin::Error> {
        let subscriptions = config.subscriptions.clone();
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        let connection = Connection::connect(url.expose(), properties).await?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let exchange = format!("crosstalk.{run_id}");
        publisher
            .exchange_declare(
                &exchange,
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    auto_delete: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut arguments = FieldTable::default();
        arguments.insert("x-max-length".into(), AMQPValue::LongInt(QUEUE_CAPACITY));
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
        arguments.insert("x-expires".into(), AMQPValue::LongInt(QUEUE_EXPIRES_MS));
        for subscription in &subscriptions {
            let name = format!("crosstalk.{run_id}.{}", subscription.queue);
            // As the scenario's broker keeps its queues: durable with persistent messages, or
            // not (`durable=0`).
            let durable = QueueDeclareOptions {
                durable: config.durable,
                ..QueueDeclareOptions::default()
            };
            publisher
                .queue_declare(&name, durable, arguments.clone())
                .await?;
            publisher
                .queue_bind(
                    &name,
                    &exchange,
                    subscription.topic,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            publisher
                .queue_purge(&name, QueuePurgeOptions::default())
                .await?;
        }
        let broker = Arc::new(AmqpBroker {
            service,
            run_id,
            subscriptions: subscriptions.clone(),
            config,
            inbox: inbox.clone(),
            publisher,
            _connection: connection,
            log,
            state: Mutex::new(State {
                pending: BTreeMap::new(),
                tag_of_message: BTreeMap::new(),
                backoff: vec![Duration::ZERO; subscriptions.len()],
                next_tag: 0,
            }),
        });
        for index in 0..subscriptions.len() {
            broker.clone().consume(index, inbox.clone()).await?;
        }
        tokio::spawn(broker.clone().poll_depths());
        Ok(broker)
    }

    fn queue_name(&self, subscription: &Subscription) -> String {
        format!("crosstalk.{}.{}", self.run_id, subscription.queue)
    }

    /// Deletes this run's queues (and so its exchange), at the end of the run. On a channel of
    /// its own: the publisher's may be closing (RabbitMQ closes a channel on any error, such as
    /// a depth poll of a queue deleted a moment before).
    pub async fn close(&self) {
        let channel = match self._connection.create_channel().await {
            Ok(channel) => channel,
            Err(err) => {
                warn!("cannot delete this run's RabbitMQ queues: {err}");
                return;
            }
        };
        for subscription in &self.subscriptions {
            let name = self.queue_name(subscription);
            if let Err(err) = channel
                .queue_delete(&name, QueueDeleteOptions::default())
                .await
            {
                warn!("cannot delete RabbitMQ queue {name}: {err}");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts consuming subscription `index` on a channel of its own, one delivery at a time.
    async fn consume(
        self: Arc<Self>,
        index: usize,
        inbox: mpsc::Sender<Work>,
    ) -> Result<(), lapin::Error> {
        let subscription = &self.subscriptions[index];
        let channel = self._connection.create_channel().await?;
        channel.basic_qos(1, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                &self.queue_name(subscription),
                &format!("crosstalk-{}", subscription.queue),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tokio::spawn(async move {
            let _channel = channel;
            while let Some(delivery) = consumer.next().await {
                let delivery = match delivery {
                    Ok(delivery) => delivery,
                    Err(err) => {
                        warn!("RabbitMQ consumer failed: {err}");
                        return;
                    }
                };
                let event: DomainEvent = match std::str::from_utf8(&delivery.data)
                    .map_err(|err| err.to_string())
                    .and_then(|text| shared::json::from_str(text).map_err(|err| err.to_string()))
                {
                    Ok(event) => event,
                    Err(err) => {
                        // Not ours: drop it rather than redeliver it forever.
                        warn!(
                            "a message on {} is not an event: {err}",
                            self.queue_name(&self.subscriptions[index])
                        );
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                        continue;
                    }
                };
                let tag = {
                    let mut state = self.lock();
                    state.next_tag += 1;
                    let tag = state.next_tag;
                    state.pending.insert(
                        tag,
                        Pending {
                            acker: delivery.acker.clone(),
                            subscription: index,
                        },
                    );
                    tag
                };
                if self.config.redelivery == Redelivery::VisibilityTimeout {
                    tokio::spawn(self.clone().redeliver_unless_acked(tag));
                }
                let work = Work::Deliver {
                    broker: self.service,
                    subscriber: self.subscriptions[index].subscriber,
                    tag,
                    redelivered: delivery.redelivered,
                    event,
                };
                if inbox.send(work).await.is_err() {
                    return; // The run ended.
                }
            }
        });
        Ok(())
    }

    /// Remembers which delivery message carries `tag`.
    pub fn sent_delivery(&self, msg: MsgId, tag: u64) {
        self.lock().tag_of_message.insert(msg, tag);
    }

    /// Publishes `event` for `msg` from `publisher` and waits for RabbitMQ's confirm: the
    /// publish's arrival, answered to the publisher when the scenario's broker confirms.
    pub async fn publish(&self, msg: MsgId, publisher: ServiceId, event: &DomainEvent) {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(err) => {
                warn!("cannot serialize an event: {err}");
                return;
            }
        };
        let delivery_mode = if self.config.durable { 2 } else { 1 };
        let persistent = BasicProperties::default().with_delivery_mode(delivery_mode);
        let confirm = match self
            .publisher
            .basic_publish(
                &format!("crosstalk.{}", self.run_id),
                event.topic(),
                BasicPublishOptions::default(),
                &body,
                persistent,
            )
            .await
        {
            Ok(confirm) => confirm.await,
            Err(err) => Err(err),
        };
        match confirm {
            Ok(confirmation) if confirmation.is_ack() => {
                self.log.record(Event::Delivered { msg });
                if self.config.confirm_publishes {
                    let reply = Work::Reply {
                        broker: self.service,
                        publisher,
                        publish: msg,
                        payload: Payload::PublishConfirmed {
                            event_id: event.id(),
                        },
                    };
                    let _ = self.inbox.send(reply).await;
                }
            }
            Ok(_) => {
                self.log.record(Event::Dropped {
                    msg,
                    reason: DropReason::Lost,
                });
                self.log.record(Event::Narration {
                    text: format!(
                        "RabbitMQ rejects {}: a queue is full ({QUEUE_CAPACITY} messages).",
                        event.label()
                    ),
                });
            }
            Err(err) => {
                debug!("publish failed: {err}");
                self.log.record(Event::Dropped {
                    msg,
                    reason: DropReason::Lost,
                });
            }
        }
    }

    /// The subscriber acked `tag` (message `msg`): ack it to RabbitMQ.
    pub async fn ack(&self, msg: MsgId, tag: u64) {
        self.log.record(Event::Delivered { msg });
        let pending = {
            let mut state = self.lock();
            let pending = state.pending.remove(&tag);
            state.tag_of_message.retain(|_, t| *t != tag);
            if let Some(pending) = &pending
                && state.backoff[pending.subscription] > Duration::ZERO
            {
                state.backoff[pending.subscription] = Duration::ZERO;
                let queue = &self.subscriptions[pending.subscription].queue;
                self.log.record(Event::Narration {
                    text: format!(
                        "The {queue} queue's consumer is back: RabbitMQ delivers what waited."
                    ),
                });
            }
            pending
        };
        // A late ack of a delivery already handed back does nothing: the redelivery stands.
        if let Some(pending) = pending
            && let Err(err) = pending.acker.ack(BasicAckOptions::default()).await
        {
            debug!("ack failed: {err}");
        }
    }

    /// The subscriber refused the delivery message `msg`: hand it back after a backoff.
    pub fn refused(self: &Arc<Self>, msg: MsgId) {
        let (tag, wait) = {
            let mut state = self.lock();
            let Some(tag) = state.tag_of_message.remove(&msg) else {
                return;
            };
            let Some(index) = state.pending.get(&tag).map(|p| p.subscription) else {
                return;
            };
            if state.backoff[index] == Duration::ZERO {
                let queue = &self.subscriptions[index].queue;
                self.log.record(Event::Narration {
                    text: format!(
                        "The {queue} queue's consumer is down: RabbitMQ keeps its events queued and they are retried with backoff."
                    ),
                });
            }
            (tag, Self::back_off(&mut state, index))
        };
        self.hand_back_after(tag, wait);
    }

    /// The subscriber's connection closed (it crashed, or a message to or from it was lost):
    /// under RabbitMQ's rule, what it had not acknowledged goes back to its queue, to be
    /// delivered again once it is back.
    pub fn connection_lost(self: &Arc<Self>, subscriber: ServiceId) {
        if self.config.redelivery != Redelivery::RabbitMq {
            return;
        }
        let handed_back: Vec<(u64, Duration)> = {
            let mut state = self.lock();
            let tags: Vec<(u64, usize)> = state
                .pending
                .iter()
                .filter(|(_, p)| self.subscriptions[p.subscription].subscriber == subscriber)
                .map(|(tag, p)| (*tag, p.subscription))
                .collect();
            tags.into_iter()
                .map(|(tag, index)| {
                    let queue = &self.subscriptions[index].queue;
                    self.log.record(Event::Narration {
                        text: format!(
                            "The {queue} queue's consumer lost its connection with an event \
                             unacknowledged: RabbitMQ puts it back in the queue and delivers it \
                             again when the consumer is back (RabbitMQ's rule)."
                        ),
                    });
                    state.tag_of_message.retain(|_, t| *t != tag);
                    (tag, Self::back_off(&mut state, index))
                })
                .collect()
        };
        for (tag, wait) in handed_back {
            self.hand_back_after(tag, wait);
        }
    }

    /// Doubles subscription `index`'s backoff (within its bounds) and returns it.
    fn back_off(state: &mut State, index: usize) -> Duration {
        let backoff = &mut state.backoff[index];
        *backoff = (*backoff * 2).clamp(RETRY_BACKOFF_MIN, RETRY_BACKOFF_MAX);
        *backoff
    }

    fn hand_back_after(self: &Arc<Self>, tag: u64, wait: Duration) {
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            broker.hand_back(tag).await;
        });
    }

    /// Under SQS's visibility timeout: hands the delivery back unless acked within the
    /// scenario's ack timeout.
    async fn redeliver_unless_acked(self: Arc<Self>, tag: u64) {
        tokio::time::sleep(Duration::from_micros(self.config.ack_timeout.0)).await;
        self.hand_back(tag).await;
    }

    /// Returns an unacked delivery to its queue, for RabbitMQ to redeliver.
    async fn hand_back(&self, tag: u64) {
        let Some(pending) = self.lock().pending.remove(&tag) else {
            return;
        };
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        if let Err(err) = pending.acker.nack(requeue).await {
            debug!("nack failed: {err}");
        }
    }

    /// Records each queue's depth (ready plus unacked) whenever it changes.
    async fn poll_depths(self: Arc<Self>) {
        let mut last = vec![None; self.subscriptions.len()];
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        while !self.log.is_finished() {
            tokio::time::sleep(DEPTH_POLL).await;
            for (index, subscription) in self.subscriptions.iter().enumerate() {
                let Ok(queue) = self
                    .publisher
                    .queue_declare(
                        &self.queue_name(subscription),
                        passive,
                        FieldTable::default(),
                    )
                    .await
                else {
                    continue;
                };
                let unacked = self
                    .lock()
                    .pending
                    .values()
                    .filter(|p| p.subscription == index)
                    .count() as u32;
                let depth = queue.message_count() + unacked;
                if last[index] != Some(depth) {
                    last[index] = Some(depth);
                    self.log.record(Event::QueueDepth {
                        service: self.service,
                        queue: subscription.queue.clone(),
                        depth,
                    });
                }
            }
        }
    }
}
