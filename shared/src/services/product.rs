//! Product: the source of truth for products. Answers lookups; renames bump the row's version and,
//! when a broker is configured, publish ProductUpdated.

use super::PRODUCTS_TABLE;
use crate::protocol::{DomainEvent, Payload, ProductName, ServiceId};
use crate::service::{Ctx, Input, Service};

/// How Product is wired.
#[derive(Clone, Debug)]
pub struct ProductConfig {
    /// Where renames are published, if anywhere.
    pub broker: Option<ServiceId>,
}

/// The Product service. It keeps nothing in memory: its table is all its state.
#[derive(Debug)]
pub struct Product {
    config: ProductConfig,
}

impl Product {
    /// A freshly started Product.
    pub fn new(config: ProductConfig) -> Product {
        Product { config }
    }
}

impl Service for Product {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        let Input::Message(request) = input else {
            return;
        };
        match &request.payload {
            Payload::GetProduct { product } => {
                let answer = match ctx.read(PRODUCTS_TABLE, &product.to_string()) {
                    Some(row) => Payload::ProductInfo(ProductName {
                        product: *product,
                        name: row.value,
                        version: row.version,
                    }),
                    None => Payload::Failed {
                        reason: format!("no product {product}"),
                    },
                };
                ctx.reply(request, answer);
            }
            Payload::RenameProduct { product, name } => {
                let key = product.to_string();
                let Some(row) = ctx.read(PRODUCTS_TABLE, &key) else {
                    ctx.reply(
                        request,
                        Payload::Failed {
                            reason: format!("no product {product}"),
                        },
                    );
                    return;
                };
                let version = row.version + 1;
                ctx.write(PRODUCTS_TABLE, &key, name, version);
                if let Some(broker) = self.config.broker {
                    let event = DomainEvent::ProductUpdated(ProductName {
                        product: *product,
                        name: name.clone(),
                        version,
                    });
                    ctx.send(
                        broker,
                        Payload::Publish(event),
                        request.op,
                        Some(request.id),
                    );
                }
                ctx.reply(
                    request,
                    Payload::Renamed {
                        product: *product,
                        version,
                    },
                );
            }
            // Answers from the broker (a rejected publish) need no action: the broker narrates it.
            _ => {}
        }
    }
}
