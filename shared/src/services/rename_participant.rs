//! Taking part in a coordinated rename (the gateway pattern). Product (in its table of products)
//! and Order (in its copy of product names) handle the coordinator's messages the same way:
//! - `ApplyRename` may be refused, with the service's configured probability (a simulated
//!   business or database failure); otherwise it is stored if its version is newer than the row's;
//! - `RollBackRename` is never refused: a compensation must succeed once it arrives;
//! - either way the answer is `Renamed` with the row's version, also when the message was older
//!   than the row (a late or repeated message), so answering twice is harmless.
//!
//! Under two-phase commit (`protocol=2pc`) they prepare, then commit or abort on the
//! coordinator's decision instead: see [`handle_two_phase_rename`].

use crate::protocol::Payload;
use crate::service::{Ctx, Envelope};
use crate::time::Micros;

/// Handles `message` if it is part of a coordinated rename of a row of `table`; returns false
/// for any other message. `refuse_per_million` is the chance that an update is refused.
pub(crate) fn handle_coordinated_rename(
    message: &Envelope,
    table: &str,
    refuse_per_million: u32,
    ctx: &mut Ctx<'_>,
) -> bool {
    if handle_two_phase_rename(
        message,
        table,
        participant_name(table),
        refuse_per_million,
        ctx,
    ) {
        return true;
    }
    let (product, name, version, is_rollback) = match &message.payload {
        Payload::ApplyRename {
            product,
            name,
            version,
        } => (*product, name, *version, false),
        Payload::RollBackRename {
            product,
            name,
            version,
        } => (*product, name, *version, true),
        _ => return false,
    };
    let key = product.to_string();
    let Some(row) = ctx.read(table, &key) else {
        let reason = format!("no product {product}");
        ctx.reply(message, Payload::Failed { reason });
        return true;
    };
    if !is_rollback && ctx.rng.chance_per_million(refuse_per_million) {
        let reason = "refused the update".to_string();
        ctx.reply(message, Payload::Failed { reason });
        return true;
    }
    // Only a newer version replaces the row, so a late update cannot undo a rollback.
    if version > row.version {
        ctx.write(table, &key, name, version);
    }
    ctx.reply(
        message,
        Payload::Renamed {
            product,
            version: version.max(row.version),
        },
    );
    true
}

/// The participant's name in narration, by the table it renames in: Product owns the products,
/// Order keeps the copy.
fn participant_name(table: &str) -> &'static str {
    if table == super::PRODUCTS_TABLE {
        "Product"
    } else {
        "Order"
    }
}

/// The start of a prepared row's value: `prepared at 12.345678 s: Smart Oak Chair`. While a row
/// of [`super::PREPARED_NAMES_TABLE`] reads so, the rename is in doubt and the product locked.
pub const PREPARED_PREFIX: &str = "prepared at ";
/// The start of the label of a participant's refusal of a prepare because another prepared
/// rename holds the row's lock (`503 locked: …`).
pub const LOCKED_REFUSAL_LABEL_PREFIX: &str = "503 locked: ";
/// How long a row must have been in doubt before its decision's arrival is narrated.
const IN_DOUBT_NARRATED_AFTER: Micros = Micros::from_millis(500);

/// A row of the table of prepared names, as the participant reads it back.
#[derive(Clone, Debug, PartialEq)]
enum PreparedRow {
    /// Held since `since`, waiting for the coordinator's decision: in doubt, locked.
    Prepared { since: Micros, name: String },
    /// The decision arrived: the row is unlocked.
    Settled,
}

fn prepared_value(since: Micros, name: &str) -> String {
    format!(
        "{PREPARED_PREFIX}{} s: {name}",
        crate::float_text::fixed(since.as_secs_f64(), 6)
    )
}

fn parse_prepared(value: &str) -> PreparedRow {
    value
        .strip_prefix(PREPARED_PREFIX)
        .and_then(|rest| rest.split_once(" s: "))
        .and_then(|(since, name)| {
            // The seconds `prepared_value` wrote with six decimals: whole microseconds.
            let since = crate::decimal_text::parse_fixed(since, 6)?;
            Some(PreparedRow::Prepared {
                since: Micros(since),
                name: name.to_string(),
            })
        })
        .unwrap_or(PreparedRow::Settled)
}

/// Handles `message` if it is part of a rename under two-phase commit of a row of `table`, whose
/// prepared names live in [`super::PREPARED_NAMES_TABLE`]; returns false for any other message.
/// `me` names the service in narration; `refuse_per_million` is the chance that it votes no.
///
/// - `PrepareRename`: a vote. No when the product is unknown, when another prepared rename holds
///   its row (the lock: `503 locked: …`), when the update was already decided (an abort that
///   overtook its prepare), or by chance; yes (`Renamed`) after holding the new name as a
///   prepared row, while the committed table still serves the old name.
/// - `CommitRename`: stores the held name in `table` at the update's version, unlocks the row.
/// - `AbortRename`: marks the update aborted (also when its prepare never arrived, so a late
///   prepare is refused), unlocks the row; `table` is untouched.
///
/// Decisions are answered `Renamed` with the update's version, also when repeated, so the
/// coordinator may resend them until both services acknowledge.
pub(crate) fn handle_two_phase_rename(
    message: &Envelope,
    table: &str,
    me: &str,
    refuse_per_million: u32,
    ctx: &mut Ctx<'_>,
) -> bool {
    let prepared_table = super::PREPARED_NAMES_TABLE;
    let (product, name, version) = match &message.payload {
        Payload::PrepareRename {
            product,
            name,
            version,
        }
        | Payload::CommitRename {
            product,
            name,
            version,
        }
        | Payload::AbortRename {
            product,
            name,
            version,
        } => (*product, name.clone(), *version),
        _ => return false,
    };
    let key = product.to_string();
    let Some(committed) = ctx.read(table, &key) else {
        let reason = format!("no product {product}");
        ctx.reply(message, Payload::Failed { reason });
        return true;
    };
    let held = ctx.read(prepared_table, &key);
    let held_state = held.as_ref().map(|row| parse_prepared(&row.value));
    let held_version = held.as_ref().map_or(0, |row| row.version);
    let done = Payload::Renamed { product, version };
    match &message.payload {
        Payload::PrepareRename { .. } => {
            if let Some(PreparedRow::Prepared { since, .. }) = &held_state {
                if held_version == version {
                    ctx.reply(message, done); // A repeated prepare: the same yes.
                } else {
                    let reason = format!(
                        "locked: product {product} is held by prepared rename v{held_version} since {since}"
                    );
                    ctx.reply(message, Payload::Failed { reason });
                }
                return true;
            }
            if held_version >= version || committed.version >= version {
                let reason = format!("update v{version} of product {product} was already decided");
                ctx.reply(message, Payload::Failed { reason });
                return true;
            }
            if ctx.rng.chance_per_million(refuse_per_million) {
                let reason = "refused the update".to_string();
                ctx.reply(message, Payload::Failed { reason });
                return true;
            }
            if ctx.scan(prepared_table).is_empty() {
                ctx.narrate(format!(
                    "{me} prepared '{name}' for product {product} (held, '{}' still served): the row \
                     is locked against other renames until the coordinator decides.",
                    committed.value
                ));
            }
            let since = ctx.now;
            ctx.write(prepared_table, &key, &prepared_value(since, &name), version);
            ctx.reply(message, done);
        }
        Payload::CommitRename { .. } | Payload::AbortRename { .. } => {
            let commit = matches!(message.payload, Payload::CommitRename { .. });
            let word = if commit { "commit" } else { "abort" };
            if let Some(PreparedRow::Prepared { since, .. }) = &held_state
                && held_version == version
            {
                let waited = ctx.now.saturating_sub(*since);
                if waited > IN_DOUBT_NARRATED_AFTER {
                    ctx.narrate(format!(
                        "{me}: product {product} was in doubt since {since} ({waited}): '{name}' \
                         prepared and locked, '{}' still served; the coordinator's {word} settles it.",
                        committed.value
                    ));
                }
            }
            let undecided = held_version < version
                || (held_version == version
                    && matches!(held_state, Some(PreparedRow::Prepared { .. })));
            if undecided {
                if commit && committed.version < version {
                    ctx.write(table, &key, &name, version);
                }
                let settled = format!("{}: {name}", if commit { "committed" } else { "aborted" });
                ctx.write(prepared_table, &key, &settled, version);
            }
            ctx.reply(message, done);
        }
        _ => unreachable!("matched above"),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MsgId, ServiceId};
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables, Row, Tables};

    const TABLE: &str = super::super::PRODUCTS_TABLE;
    const PREPARED: &str = super::super::PREPARED_NAMES_TABLE;

    /// One step: a message, the label of the answer, the committed row and the prepared row
    /// afterwards (value, version).
    type Step<'a> = (Payload, &'a str, (&'a str, u64), Option<(&'a str, u64)>);

    /// Feeds each message to a participant whose product 1 is "Oak Chair" v1, at 1 s apart, and
    /// checks its answer's label and then the committed and prepared rows (value, version).
    fn check(steps: &[Step<'_>]) {
        let mut tables = MemTables::default();
        tables.put(
            TABLE,
            "1",
            Row {
                value: "Oak Chair".into(),
                version: 1,
            },
        );
        let (mut rng, mut ids) = (SimRng::new(1), IdAllocator::default());
        for (step, (payload, answer, committed, prepared)) in steps.iter().enumerate() {
            let now = Micros::from_secs(step as u64);
            let mut ctx = Ctx::new(now, ServiceId(3), &mut rng, &mut tables, &mut ids);
            let message = Envelope {
                id: MsgId(100 + step as u64),
                from: ServiceId(1),
                to: ServiceId(3),
                op: None,
                caused_by: None,
                payload: payload.clone(),
            };
            assert!(handle_coordinated_rename(&message, TABLE, 0, &mut ctx));
            let answers: Vec<String> = ctx
                .into_effects()
                .into_iter()
                .filter_map(|effect| match effect {
                    Effect::Send(envelope) => Some(envelope.payload.label().to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!(
                answers,
                vec![answer.to_string()],
                "step {step}: {payload:?}"
            );
            let row = |table| tables.get(table, "1").map(|row| (row.value, row.version));
            assert_eq!(
                row(TABLE),
                Some((committed.0.to_string(), committed.1)),
                "step {step}: the committed row"
            );
            assert_eq!(
                row(PREPARED),
                prepared.map(|(value, version)| (value.to_string(), version)),
                "step {step}: the prepared row"
            );
        }
    }

    fn prepare(version: u64, name: &str) -> Payload {
        Payload::PrepareRename {
            product: 1,
            name: name.into(),
            version,
        }
    }
    fn commit(version: u64, name: &str) -> Payload {
        Payload::CommitRename {
            product: 1,
            name: name.into(),
            version,
        }
    }
    fn abort(version: u64, name: &str) -> Payload {
        Payload::AbortRename {
            product: 1,
            name: name.into(),
            version,
        }
    }

    #[test]
    fn a_prepared_rename_is_held_locked_and_served_only_once_committed() {
        let old = ("Oak Chair", 1);
        let held = Some(("prepared at 0.000000 s: Smart Oak Chair", 2));
        check(&[
            (
                prepare(2, "Smart Oak Chair"),
                "200 product 1 now v2",
                old,
                held,
            ),
            // A repeated prepare gets the same yes.
            (
                prepare(2, "Smart Oak Chair"),
                "200 product 1 now v2",
                old,
                held,
            ),
            // The lock: another rename of the product is refused while the first is in doubt.
            (
                prepare(3, "Eco Oak Chair"),
                "503 locked: product 1 is held by prepared rename v2 since 0.0 ms",
                old,
                held,
            ),
            (
                commit(2, "Smart Oak Chair"),
                "200 product 1 now v2",
                ("Smart Oak Chair", 2),
                Some(("committed: Smart Oak Chair", 2)),
            ),
            // A repeated commit changes nothing and is acknowledged again.
            (
                commit(2, "Smart Oak Chair"),
                "200 product 1 now v2",
                ("Smart Oak Chair", 2),
                Some(("committed: Smart Oak Chair", 2)),
            ),
        ]);
    }

    #[test]
    fn an_abort_drops_the_held_name_and_refuses_a_prepare_that_arrives_after_it() {
        let old = ("Oak Chair", 1);
        check(&[
            (
                prepare(2, "Smart Oak Chair"),
                "200 product 1 now v2",
                old,
                Some(("prepared at 0.000000 s: Smart Oak Chair", 2)),
            ),
            (
                abort(2, "Smart Oak Chair"),
                "200 product 1 now v2",
                old,
                Some(("aborted: Smart Oak Chair", 2)),
            ),
            // The abort of v3 overtakes its prepare: the prepare is refused for good.
            (
                abort(3, "Eco Oak Chair"),
                "200 product 1 now v3",
                old,
                Some(("aborted: Eco Oak Chair", 3)),
            ),
            (
                prepare(3, "Eco Oak Chair"),
                "503 update v3 of product 1 was already decided",
                old,
                Some(("aborted: Eco Oak Chair", 3)),
            ),
        ]);
    }

    /// The time a prepared row holds reads back as the microsecond it was written for, as it
    /// did when read as an `f64` of seconds and rounded (so traces are unchanged).
    #[test]
    fn prepared_rows_read_back_their_time() {
        let mut rng = SimRng::new(9);
        let times = (0..100_000).map(|i| match i % 3 {
            0 => rng.below(1_000_000),
            1 => rng.below(100_000_000_000),
            _ => rng.below(10_000_000_000_000),
        });
        for since in times.chain([0, 1, 999_999, 1_000_000, 9_999_999_999_999]) {
            let value = prepared_value(Micros(since), "Eco Oak Chair");
            let read = parse_prepared(&value);
            assert_eq!(
                read,
                PreparedRow::Prepared {
                    since: Micros(since),
                    name: "Eco Oak Chair".into()
                },
                "{value}"
            );
            let seconds = value
                .strip_prefix(PREPARED_PREFIX)
                .unwrap()
                .split(' ')
                .next();
            let as_before = Micros::from_secs_f64(seconds.unwrap().parse().unwrap());
            assert_eq!(as_before, Micros(since), "{value}");
        }
        assert_eq!(
            parse_prepared("prepared at 1.5e3 s: x"),
            PreparedRow::Settled
        );
    }
}
