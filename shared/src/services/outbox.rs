//! The transactional outbox: a service that must change its own table *and* tell the others
//! writes the change and an outbox row holding the event in one local transaction, and a relay —
//! a timer in the same service — publishes outbox rows with publisher confirms and marks each
//! sent once the broker confirms it, publishing again whatever stays unconfirmed past a timeout.
//! The outbox is a table, and tables survive crashes, so a crash between the write and the
//! publish only delays the event: when the service is back, the relay finds the row and
//! publishes it. The price is at-least-once delivery: a publish whose confirm was lost is
//! published again, so the consumer must be idempotent.
//!
//! The alternative, writing then publishing from memory ("dual write", the default), loses the
//! event when the service crashes between the two, or when the publish is lost and nothing
//! publishes it again.

use crate::protocol::{DomainEvent, DriverName, NewOrder, Payload, ProductName, ServiceId};
use crate::service::{Ctx, TimerId, Write};
use crate::slot_map::SlotMap;
use crate::time::Micros;

/// The outbox table: key the row's number (zero-padded, so rows sort in the order written),
/// value `pending: EVENT` until the broker confirms it, then `sent: EVENT`.
pub const OUTBOX_TABLE: &str = "outbox";
/// The most outbox rows waiting for a confirm; beyond it the service refuses changes that need
/// an event ("try again later") rather than let the outbox grow without bound.
pub const MAX_OUTBOX_PENDING: usize = 1_000;
/// How often the relay looks for rows to publish again while some wait for a confirm.
pub const RELAY_EVERY: Micros = Micros::from_millis(100);
/// The most rows the relay publishes in one go, so a broker back after an outage is not
/// flooded by one service.
pub const RELAY_BATCH_MAX: usize = 64;

/// Where a service's relay publishes, and how long it waits for each confirm.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct OutboxConfig {
    /// The service's name, for narration.
    pub service: &'static str,
    /// The broker.
    pub broker: ServiceId,
    /// How long the relay waits for the broker's confirm before publishing a row again.
    pub confirm_timeout: Micros,
}

/// A fault to show what dual write loses: the service crashes right after committing a
/// change, before publishing its event.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CrashAfterWrite {
    /// The chance, per million changes, that it crashes there.
    pub per_million: u32,
    /// How long it stays down.
    pub restart_after: Micros,
}

impl CrashAfterWrite {
    /// Draws whether this change is the one it crashes after; draws nothing when it never
    /// crashes, so runs without the fault keep their traces.
    pub fn strikes(config: Option<CrashAfterWrite>, ctx: &mut Ctx<'_>) -> bool {
        config.is_some_and(|crash| {
            crash.per_million > 0 && ctx.rng.below(1_000_000) < u64::from(crash.per_million)
        })
    }
}

/// An outbox row the broker has not confirmed yet.
#[derive(Clone, Debug)]
struct PendingRow {
    event: DomainEvent,
    /// When the relay last published it; `None` before the first time.
    published_at: Option<Micros>,
}

/// The outbox's relay, in the service's memory; the rows themselves are in its table.
#[derive(Debug)]
pub struct Outbox {
    config: OutboxConfig,
    /// Rows not confirmed yet, by number.
    pending: SlotMap<u64, PendingRow>,
    /// The number of the next row written.
    next_row: u64,
    /// The relay's timer, while one is set.
    timer: Option<TimerId>,
    explained_commit: bool,
    explained_publish: bool,
    explained_confirm: bool,
}

impl Outbox {
    /// A relay that has not looked at its table yet: call [`Outbox::start`] when the service
    /// starts.
    pub fn new(config: OutboxConfig) -> Outbox {
        Outbox {
            config,
            pending: SlotMap::new(),
            next_row: 1,
            timer: None,
            explained_commit: false,
            explained_publish: false,
            explained_confirm: false,
        }
    }

    /// True when no more rows may wait for a confirm.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= MAX_OUTBOX_PENDING
    }

    /// The service (re)started: rebuild the relay's memory from the outbox table and publish
    /// whatever is still pending.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        for (key, row) in ctx.scan(OUTBOX_TABLE) {
            let Ok(number) = key.parse::<u64>() else {
                continue;
            };
            self.next_row = self.next_row.max(number + 1);
            if let Some(event) = row.value.strip_prefix(PENDING).and_then(decode) {
                self.pending.insert(
                    number,
                    PendingRow {
                        event,
                        published_at: None,
                    },
                );
            }
        }
        if !self.pending.is_empty() {
            ctx.narrate(format!(
                "{} is back: its outbox holds {} row(s) the broker never confirmed, which survived the crash \
                 because they are a table. The relay publishes them now.",
                self.config.service,
                self.pending.len()
            ));
            self.relay(ctx);
        }
    }

    /// Commits `writes` and an outbox row holding `event` in one local transaction; the relay
    /// publishes it on its next [`Outbox::relay`]. Returns the row's number.
    pub fn commit(&mut self, mut writes: Vec<Write>, event: DomainEvent, ctx: &mut Ctx<'_>) -> u64 {
        let number = self.next_row;
        self.next_row += 1;
        let value = format!("{PENDING}{}", encode(&event));
        writes.push(Write::new(OUTBOX_TABLE, &row_key(number), &value, 1));
        ctx.write_all(&writes);
        if !self.explained_commit {
            self.explained_commit = true;
            ctx.narrate(format!(
                "{} wrote the change and outbox row {number} ({}) in one transaction: both are stored, \
                 or neither. Nothing is published yet; the relay does that from the outbox.",
                self.config.service,
                event.caption()
            ));
        }
        self.pending.insert(
            number,
            PendingRow {
                event,
                published_at: None,
            },
        );
        number
    }

    /// Publishes every pending row never published, or published longer than the confirm
    /// timeout ago (at most [`RELAY_BATCH_MAX`]), and keeps its timer set while rows wait.
    pub fn relay(&mut self, ctx: &mut Ctx<'_>) {
        let (now, timeout) = (ctx.now, self.config.confirm_timeout);
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, row)| {
                row.published_at
                    .is_none_or(|at| now.saturating_sub(at) >= timeout)
            })
            .map(|(number, _)| *number)
            .take(RELAY_BATCH_MAX)
            .collect();
        for number in due {
            let Some(row) = self.pending.get_mut(&number) else {
                continue;
            };
            let caption = row.event.caption();
            if row.published_at.is_some() {
                ctx.narrate(format!(
                    "The broker has not confirmed outbox row {number} ({caption}) within {timeout}: \
                     {}'s relay publishes it again.",
                    self.config.service
                ));
            } else if !self.explained_publish {
                self.explained_publish = true;
                ctx.narrate(format!(
                    "{}'s relay published outbox row {number} ({caption}); the row stays pending until \
                     the broker confirms it.",
                    self.config.service
                ));
            }
            row.published_at = Some(now);
            let payload = Payload::Publish(row.event.clone());
            ctx.send(self.config.broker, payload, None, None);
        }
        if self.timer.is_none() && !self.pending.is_empty() {
            self.timer = Some(ctx.set_timer(RELAY_EVERY));
        }
    }

    /// Handles `timer` if it is the relay's; returns false when it is not.
    pub fn timer(&mut self, timer: TimerId, ctx: &mut Ctx<'_>) -> bool {
        if self.timer != Some(timer) {
            return false;
        }
        self.timer = None;
        self.relay(ctx);
        true
    }

    /// The broker confirmed `event_id`: its row is marked sent. A confirm of a row already
    /// sent (a publish made twice) changes nothing.
    pub fn confirmed(&mut self, event_id: &str, ctx: &mut Ctx<'_>) {
        let Some(number) = self
            .pending
            .iter()
            .find(|(_, row)| row.event.id() == event_id)
            .map(|(number, _)| *number)
        else {
            return;
        };
        let Some(row) = self.pending.remove(&number) else {
            return;
        };
        let value = format!("{SENT}{}", encode(&row.event));
        ctx.write(OUTBOX_TABLE, &row_key(number), &value, 2);
        if !self.explained_confirm {
            self.explained_confirm = true;
            ctx.narrate(format!(
                "The broker confirmed {}: {}'s relay marks outbox row {number} sent and will not \
                 publish it again.",
                row.event.caption(),
                self.config.service
            ));
        }
    }
}

const PENDING: &str = "pending: ";
const SENT: &str = "sent: ";

/// An outbox row's key: its number, zero-padded so keys sort as numbers.
fn row_key(number: u64) -> String {
    format!("{number:08}")
}

/// An event as an outbox row holds it: `ProductUpdated 3 v4 Brass Lamp`,
/// `OrderCreated 7 [1,2] at 1500000`, `DriverUpdated 2 v3 Ada`.
fn encode(event: &DomainEvent) -> String {
    match event {
        DomainEvent::ProductUpdated(p) => {
            format!("ProductUpdated {} v{} {}", p.product, p.version, p.name)
        }
        DomainEvent::OrderCreated(o) => {
            let products: Vec<String> = o.products.iter().map(u64::to_string).collect();
            format!(
                "OrderCreated {} [{}] at {}",
                o.order,
                products.join(","),
                o.created_at.0
            )
        }
        DomainEvent::DriverUpdated(d) => {
            format!("DriverUpdated {} v{} {}", d.driver, d.version, d.name)
        }
    }
}

/// The event of an outbox row's text, as [`encode`] wrote it.
fn decode(text: &str) -> Option<DomainEvent> {
    let (kind, rest) = text.split_once(' ')?;
    match kind {
        "ProductUpdated" | "DriverUpdated" => {
            let (id, rest) = rest.split_once(" v")?;
            let (version, name) = rest.split_once(' ')?;
            let (id, version, name) = (id.parse().ok()?, version.parse().ok()?, name.to_string());
            Some(if kind == "ProductUpdated" {
                DomainEvent::ProductUpdated(ProductName {
                    product: id,
                    name,
                    version,
                })
            } else {
                DomainEvent::DriverUpdated(DriverName {
                    driver: id,
                    name,
                    version,
                })
            })
        }
        "OrderCreated" => {
            let (order, rest) = rest.split_once(" [")?;
            let (products, at) = rest.split_once("] at ")?;
            let products = products
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::parse)
                .collect::<Result<Vec<u64>, _>>()
                .ok()?;
            Some(DomainEvent::OrderCreated(NewOrder {
                order: order.parse().ok()?,
                products,
                created_at: Micros(at.parse().ok()?),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;
    use crate::service::{Effect, Envelope, IdAllocator, MemTables, Tables};

    const ME: ServiceId = ServiceId(2);
    const BROKER: ServiceId = ServiceId(3);

    fn config() -> OutboxConfig {
        OutboxConfig {
            service: "Product",
            broker: BROKER,
            confirm_timeout: Micros::from_secs(1),
        }
    }

    fn renamed(product: u64, version: u64) -> DomainEvent {
        DomainEvent::ProductUpdated(ProductName {
            product,
            name: format!("Name {product} at v{version}"),
            version,
        })
    }

    /// Runs `f` on the relay at `now` and returns the effects.
    fn at(
        now: Micros,
        outbox: &mut Outbox,
        tables: &mut MemTables,
        f: impl FnOnce(&mut Outbox, &mut Ctx<'_>),
    ) -> Vec<Effect> {
        let (mut rng, mut ids) = (SimRng::new(1), IdAllocator::default());
        let mut ctx = Ctx::new(now, ME, &mut rng, tables, &mut ids);
        f(outbox, &mut ctx);
        ctx.into_effects()
    }

    fn published(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(Envelope {
                    to: BROKER,
                    payload: Payload::Publish(event),
                    ..
                }) => Some(event.id()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rows_read_back_as_the_events_written() {
        let events = [
            renamed(3, 4),
            DomainEvent::OrderCreated(NewOrder {
                order: 7,
                products: vec![1, 2],
                created_at: Micros(1_500_000),
            }),
            DomainEvent::DriverUpdated(DriverName {
                driver: 2,
                name: "Ada Lovelace".into(),
                version: 3,
            }),
        ];
        for event in events {
            assert_eq!(decode(&encode(&event)), Some(event));
        }
        assert_eq!(decode("ProductUpdated x"), None);
    }

    #[test]
    fn a_row_is_published_until_confirmed_and_survives_a_crash() {
        let mut tables = MemTables::default();
        let mut outbox = Outbox::new(config());
        let effects = at(Micros::ZERO, &mut outbox, &mut tables, |o, ctx| {
            o.commit(
                vec![Write::new("products", "3", "Name 3 at v4", 4)],
                renamed(3, 4),
                ctx,
            );
        });
        assert!(
            published(&effects).is_empty(),
            "committing publishes nothing"
        );
        assert_eq!(tables.get("products", "3").unwrap().version, 4);
        assert!(
            tables
                .get(OUTBOX_TABLE, "00000001")
                .unwrap()
                .value
                .starts_with("pending: ")
        );
        // The service crashes before its relay ran: a new one finds the row and publishes it.
        let mut restarted = Outbox::new(config());
        let effects = at(Micros(10), &mut restarted, &mut tables, |o, ctx| {
            o.start(ctx)
        });
        assert_eq!(published(&effects), vec!["ProductUpdated#3v4"]);
        // Not confirmed within the timeout: published again on a later tick, not before.
        let timer = |effects: &[Effect]| {
            effects.iter().find_map(|e| match e {
                Effect::SetTimer { id, .. } => Some(*id),
                _ => None,
            })
        };
        let first_tick = timer(&effects).expect("the relay keeps a timer while rows wait");
        let effects = at(
            Micros::from_millis(100),
            &mut restarted,
            &mut tables,
            |o, ctx| {
                assert!(o.timer(first_tick, ctx));
            },
        );
        assert!(published(&effects).is_empty(), "too early to publish again");
        let second_tick = timer(&effects).unwrap();
        let effects = at(
            Micros::from_secs(2),
            &mut restarted,
            &mut tables,
            |o, ctx| {
                assert!(o.timer(second_tick, ctx));
            },
        );
        assert_eq!(published(&effects), vec!["ProductUpdated#3v4"]);
        // Confirmed: marked sent, and a restart publishes nothing.
        at(
            Micros::from_secs(3),
            &mut restarted,
            &mut tables,
            |o, ctx| o.confirmed("ProductUpdated#3v4", ctx),
        );
        assert!(
            tables
                .get(OUTBOX_TABLE, "00000001")
                .unwrap()
                .value
                .starts_with("sent: ")
        );
        let mut again = Outbox::new(config());
        let effects = at(Micros::from_secs(4), &mut again, &mut tables, |o, ctx| {
            o.start(ctx)
        });
        assert!(published(&effects).is_empty());
        // Numbers go on after the rows already there.
        at(Micros::from_secs(5), &mut again, &mut tables, |o, ctx| {
            assert_eq!(o.commit(Vec::new(), renamed(1, 2), ctx), 2);
        });
    }
}
