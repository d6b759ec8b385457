//! Product: the source of truth for products. Answers lookups; renames bump the row's version and,
//! depending on the pattern, publish ProductUpdated or update Order's copies before answering.
//! Under a coordinator (the gateway pattern) it stores the coordinator's renames at the
//! coordinator's versions instead.

use super::PRODUCTS_TABLE;
use super::outbox::{CrashAfterWrite, Outbox, OutboxConfig};
use super::rename_participant::handle_coordinated_rename;
use crate::decimal::Decimal;
use crate::protocol::{DomainEvent, MsgId, MsgMap, Payload, ProductName, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId, TimerMap, Write};
use crate::slot_map::SlotMap;
use crate::time::Micros;

/// How the label of Product's refusal of a lookup whose deadline had passed begins: the
/// trace's count of work dropped because its caller had already given up.
pub const DEADLINE_EXCEEDED_LABEL_PREFIX: &str = "503 deadline exceeded";

/// How Product is wired.
#[derive(Clone, Debug)]
pub struct ProductConfig {
    /// Where renames are published, if anywhere.
    pub broker: Option<ServiceId>,
    /// The service whose copies of product names a rename updates before it is confirmed
    /// ("update both"), and how long Product waits for it.
    pub update_copies_in: Option<(ServiceId, Micros)>,
    /// True when other services hold copies of product names that a rename never reaches, so
    /// the narration can say so.
    copies_left_behind: bool,
    /// The chance, per million, that it refuses a coordinator's update.
    pub refuse_updates_per_million: u32,
    /// With a broker: publish renames through a transactional outbox instead of right after
    /// the write (dual write).
    pub outbox: Option<OutboxConfig>,
    /// Crashes right after storing a rename, before publishing it.
    pub crash_after_write: Option<CrashAfterWrite>,
}

impl ProductConfig {
    /// Product alone holds product names; everyone asks it.
    pub fn sole_owner() -> ProductConfig {
        ProductConfig {
            broker: None,
            update_copies_in: None,
            copies_left_behind: false,
            refuse_updates_per_million: 0,
            outbox: None,
            crash_after_write: None,
        }
    }

    /// Renames come from a coordinator (the gateway pattern), whose updates it refuses with a
    /// chance of `refuse_updates_per_million`.
    pub fn coordinated(refuse_updates_per_million: u32) -> ProductConfig {
        ProductConfig {
            refuse_updates_per_million,
            ..ProductConfig::sole_owner()
        }
    }

    /// Renames are published through `broker`.
    pub fn publishing_to(broker: ServiceId) -> ProductConfig {
        ProductConfig {
            broker: Some(broker),
            ..ProductConfig::sole_owner()
        }
    }

    /// Others copied product names; a rename updates them in `copies` first when `update_both`
    /// (waiting at most `timeout`), and leaves them stale otherwise.
    pub fn with_copies_in(copies: ServiceId, update_both: bool, timeout: Micros) -> ProductConfig {
        ProductConfig {
            update_copies_in: update_both.then_some((copies, timeout)),
            copies_left_behind: !update_both,
            ..ProductConfig::sole_owner()
        }
    }
}

/// A rename waiting for Order to update its copies.
#[derive(Debug)]
struct PendingRename {
    request: Envelope,
    product: u64,
    version: u64,
    timer: TimerId,
}

/// The Product service. Its table is its state; in memory it only keeps renames waiting on Order.
#[derive(Debug)]
pub struct Product {
    config: ProductConfig,
    pending_by_call: MsgMap<PendingRename>,
    call_by_timer: TimerMap<MsgId>,
    /// Whether the first rename has been explained yet.
    explained_rename: bool,
    /// Whether the last lookup was dropped for its deadline, so a run of them is narrated once.
    dropping_late_lookups: bool,
    /// The outbox's relay, when renames go through one.
    outbox: Option<Outbox>,
}

impl Product {
    /// A freshly started Product.
    pub fn new(config: ProductConfig) -> Product {
        Product {
            outbox: config.outbox.map(Outbox::new),
            config,
            pending_by_call: SlotMap::new(),
            call_by_timer: SlotMap::new(),
            explained_rename: false,
            dropping_late_lookups: false,
        }
    }

    /// Answers a lookup, unless its caller's deadline has passed: then the work is dropped
    /// undone and the refusal says so (the caller is no longer waiting for it).
    fn look_up(
        &mut self,
        request: &Envelope,
        product: u64,
        deadline: Option<Micros>,
        ctx: &mut Ctx<'_>,
    ) {
        if let Some(deadline) = deadline.filter(|deadline| ctx.now > *deadline) {
            let late = ctx.now.saturating_sub(deadline);
            if !self.dropping_late_lookups {
                self.dropping_late_lookups = true;
                ctx.narrate(format!(
                    "Product drops the lookup of product {product} without doing it: its caller gave up {late} ago (the deadline came with the call). Work nobody waits for is not done — until lookups arrive in time again."
                ));
            }
            // The prefix is the label's start: `DEADLINE_EXCEEDED_LABEL_PREFIX`.
            let reason =
                format!("deadline exceeded: the caller gave up {late} ago; dropped undone");
            ctx.reply(request, Payload::Failed { reason });
            return;
        }
        self.dropping_late_lookups = false;
        let answer = match ctx.read(PRODUCTS_TABLE, &Decimal::new(product)) {
            Some(row) => Payload::ProductInfo(ProductName {
                product,
                name: row.value,
                version: row.version,
            }),
            None => Payload::Failed {
                reason: format!("no product {product}"),
            },
        };
        ctx.reply(request, answer);
    }

    fn rename(&mut self, request: &Envelope, product: u64, name: &str, ctx: &mut Ctx<'_>) {
        let key = product.to_string();
        let Some(row) = ctx.read(PRODUCTS_TABLE, &key) else {
            let reason = format!("no product {product}");
            ctx.reply(request, Payload::Failed { reason });
            return;
        };
        let version = row.version + 1;
        let renamed = ProductName {
            product,
            name: name.to_string(),
            version,
        };
        match self.outbox.as_mut() {
            Some(outbox) if outbox.is_full() => {
                let reason = format!(
                    "Product's outbox holds {} events the broker has not confirmed: try again later",
                    super::MAX_OUTBOX_PENDING
                );
                ctx.reply(request, Payload::Failed { reason });
                return;
            }
            Some(outbox) => {
                if !self.explained_rename {
                    self.explained_rename = true;
                    ctx.narrate(format!(
                        "Product renames product {product} to {name} (v{version}); its relay publishes ProductUpdated from the outbox until the broker confirms it. Until it arrives, Order's copy shows the old name."
                    ));
                }
                let write = Write::new(PRODUCTS_TABLE, &key, name, version);
                let event = DomainEvent::ProductUpdated(renamed.clone());
                outbox.commit(vec![write], event, ctx);
            }
            None => ctx.write(PRODUCTS_TABLE, &key, name, version),
        }
        if !self.explained_rename {
            self.explained_rename = true;
            ctx.narrate(match (self.config.broker, self.config.update_copies_in) {
                (Some(_), _) => format!(
                    "Product renames product {product} to {name} (v{version}) and publishes ProductUpdated: until it arrives, Order's copy shows the old name."
                ),
                (None, Some(_)) => format!(
                    "Product renames product {product} to {name} and asks Order to rewrite every order line holding it before confirming: the rename waits for that round trip."
                ),
                (None, None) if self.config.copies_left_behind => format!(
                    "Product renames product {product} to {name} (v{version}). Nothing tells the copies of its old name elsewhere: they stay stale."
                ),
                (None, None) => format!(
                    "Product renames product {product} to {name} (v{version}): every later read asks Product, so it sees the new name at once."
                ),
            });
        }
        if CrashAfterWrite::strikes(self.config.crash_after_write, ctx) {
            ctx.narrate(if self.outbox.is_some() {
                format!(
                    "Product crashes right after committing v{version} of product {product}, before its relay \
                     published it: the event waits in the outbox table, which the crash does not touch."
                )
            } else {
                format!(
                    "Product crashes right after storing v{version} of product {product}, before publishing it: \
                     the event was only in its memory, so it is lost, and Order's copy keeps the old name \
                     until product {product} is renamed again — the dual-write problem."
                )
            });
            let restart_after = self.config.crash_after_write.map(|c| c.restart_after);
            ctx.crash(restart_after.unwrap_or_default());
            return;
        }
        if let Some(outbox) = self.outbox.as_mut() {
            outbox.relay(ctx);
        } else if let Some(broker) = self.config.broker {
            let event = Payload::Publish(DomainEvent::ProductUpdated(renamed.clone()));
            ctx.send(broker, event, request.op, Some(request.id));
        }
        match self.config.update_copies_in {
            Some((copies, timeout)) => {
                let call = ctx.send(
                    copies,
                    Payload::UpdateProductName(renamed),
                    request.op,
                    Some(request.id),
                );
                let timer = ctx.set_timer(timeout);
                self.call_by_timer.insert(timer.key(), call);
                let pending = PendingRename {
                    request: request.clone(),
                    product,
                    version,
                    timer,
                };
                self.pending_by_call.insert(call.key(), pending);
            }
            None => {
                ctx.reply(request, Payload::Renamed { product, version });
            }
        }
    }

    fn take_pending(&mut self, call: MsgId) -> Option<PendingRename> {
        let pending = self.pending_by_call.remove(&call.key())?;
        self.call_by_timer.remove(&pending.timer.key());
        Some(pending)
    }

    /// Order could not update its copies: the rename fails, although Product already stored it.
    fn copies_not_updated(&mut self, pending: PendingRename, why: &str, ctx: &mut Ctx<'_>) {
        let (product, version) = (pending.product, pending.version);
        ctx.narrate(format!(
            "Product stored v{version} of product {product} but could not update Order's copies ({why}): \
             the user is told the rename failed, yet the two services now disagree — the dual-write problem."
        ));
        let reason = format!("renamed in Product, but Order's copies were not updated: {why}");
        ctx.reply(&pending.request, Payload::Failed { reason });
    }
}

impl Service for Product {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => {
                if let Some(outbox) = self.outbox.as_mut() {
                    outbox.start(ctx);
                }
            }
            Input::Message(message)
                if handle_coordinated_rename(
                    message,
                    PRODUCTS_TABLE,
                    self.config.refuse_updates_per_million,
                    ctx,
                ) => {}
            Input::Message(message) => match &message.payload {
                Payload::GetProduct { product, deadline } => {
                    self.look_up(message, *product, *deadline, ctx);
                }
                Payload::RenameProduct { product, name } => {
                    self.rename(message, *product, name, ctx);
                }
                Payload::PublishConfirmed { event_id } => {
                    if let Some(outbox) = self.outbox.as_mut() {
                        outbox.confirmed(event_id, ctx);
                    }
                }
                Payload::ProductNameUpdated { .. } => {
                    if let Some(pending) = message.caused_by.and_then(|c| self.take_pending(c)) {
                        let (product, version) = (pending.product, pending.version);
                        ctx.reply(&pending.request, Payload::Renamed { product, version });
                    }
                }
                Payload::Failed { reason } => {
                    // A rejected publish needs no action: the broker narrates it.
                    if let Some(pending) = message.caused_by.and_then(|c| self.take_pending(c)) {
                        self.copies_not_updated(pending, &format!("Order answered: {reason}"), ctx);
                    }
                }
                _ => {}
            },
            Input::Timer(timer) => {
                if self.outbox.as_mut().is_some_and(|o| o.timer(timer, ctx)) {
                    return;
                }
                let call = self.call_by_timer.get(&timer.key()).copied();
                if let Some(pending) = call.and_then(|c| self.take_pending(c)) {
                    self.copies_not_updated(pending, "Order did not answer in time", ctx);
                }
            }
            Input::Refused(call) => {
                if let Some(pending) = self.take_pending(call) {
                    self.copies_not_updated(pending, "Order is down", ctx);
                }
            }
            // Only a broker watches its peers' connections.
            Input::ConnectionLost(_) => {}
        }
    }
}
