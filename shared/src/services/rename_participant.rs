//! Taking part in a coordinated rename (the gateway pattern). Product (in its table of products)
//! and Order (in its copy of product names) handle the coordinator's messages the same way:
//! - `ApplyRename` may be refused, with the service's configured probability (a simulated
//!   business or database failure); otherwise it is stored if its version is newer than the row's;
//! - `RollBackRename` is never refused: a compensation must succeed once it arrives;
//! - either way the answer is `Renamed` with the row's version, also when the message was older
//!   than the row (a late or repeated message), so answering twice is harmless.

use crate::protocol::Payload;
use crate::service::{Ctx, Envelope};

/// Handles `message` if it is part of a coordinated rename of a row of `table`; returns false
/// for any other message. `refuse_per_million` is the chance that an update is refused.
pub(crate) fn handle_coordinated_rename(
    message: &Envelope,
    table: &str,
    refuse_per_million: u32,
    ctx: &mut Ctx<'_>,
) -> bool {
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
