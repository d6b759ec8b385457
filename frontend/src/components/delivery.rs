//! The numbers of event delivery, shown where a broker carries events: queue depths, what each
//! subscriber applied, its duplicates and how long events took to arrive.

use crate::components::{Computed, attr, keyed, reactive, show};
use crate::state::page;
use crate::view_model::{self, ConsumerLine, DeliveryView, QueueLine};
use leptos::prelude::*;
use shared::protocol::ServiceRole;

/// Queue depths and per-subscriber numbers; nothing without a broker.
#[component]
pub fn DeliveryNumbers() -> impl IntoView {
    let run = page().run;
    let clock = page().clock;
    let has_broker = Computed::compared(move |_| {
        run.read(|index| {
            index
                .header()
                .services
                .iter()
                .any(|s| s.role == ServiceRole::Broker)
        })
        .unwrap_or(false)
    });
    let view = Computed::new(move |_| {
        let t = clock.now.get();
        run.at(t, |index, state| {
            view_model::delivery(index.header(), state)
        })
        .unwrap_or_default()
    });
    let queues = move || view.with(|v| v.queues.clone());
    let consumers = move || view.with(|v| v.consumers.clone());
    view! {
        {show(move || has_broker.get(), move || view! {
            <h3 class="subhead" id="delivery-title">"Event delivery"</h3>
            <dl class="stats" {attr("aria-labelledby", "delivery-title")}>
                {keyed(
                    queues,
                    |q: &QueueLine| q.name.clone(),
                    move |queue: QueueLine| view! {
                    <QueueStat name=queue.name.clone() view=view/>
                    }.into_inner().into_any(),
                )}
            </dl>
            // One column per subscriber: there are few, and the card is narrow.
            {show(move || view.with(|v| !v.consumers.is_empty()), move || view! {
                <table class="ops delivery" {attr("aria-labelledby", "delivery-title")}>
                    <thead>
                        <tr>
                            <th scope="col">"subscriber"</th>
                            {keyed(
                                consumers,
                                |c: &ConsumerLine| c.name.clone(),
                                move |consumer: ConsumerLine| view! {
                                <th {attr("scope", "col")} class="num">{consumer.name.clone()}</th>
                                }.into_inner().into_any(),
                            )}
                        </tr>
                    </thead>
                    <tbody>
                        <ConsumerRow label="events applied" field="applied" definition="Distinct events the subscriber applied" view=view read=|c| c.applied.to_string()/>
                        <ConsumerRow label="duplicates" field="duplicates" definition="Deliveries of an event it had already handled: applied again (no idempotency check) or dropped by its inbox" view=view read=|c| c.duplicates.clone()/>
                        <ConsumerRow label="lag, mean" field="lag-mean" definition="Mean time from an event's publication to its first application" view=view read=|c| c.lag_mean.clone()/>
                        <ConsumerRow label="lag, max" field="lag-max" definition="Longest time from an event's publication to its first application" view=view read=|c| c.lag_max.clone()/>
                    </tbody>
                </table>
                <p class="note">"Lag: from publication to the subscriber applying it."</p>
            }.into_inner().into_any())}
        }.into_inner().into_any())}
    }
}

/// One queue: messages waiting now and the most so far, as `#metric-queue-shipping-now`/`-max`.
#[component]
fn QueueStat(name: String, view: Computed<DeliveryView>) -> impl IntoView {
    let key = name.clone();
    let read = move |f: fn(&QueueLine) -> u32| {
        let key = key.clone();
        reactive(move || {
            view.with(|v| {
                v.queues
                    .iter()
                    .find(|q| q.name == key)
                    .map_or(0, f)
                    .to_string()
            })
        })
    };
    view! {
        <div class="stat">
            <dt {attr("title", "Events waiting in this queue now (delivered and not yet acknowledged included), and the most at once so far")}>{format!("{name} queue")}</dt>
            <dd>
                <span {attr("id", format!("metric-queue-{name}-now"))} class="big">{read(|q| q.waiting)}</span>
                <span class="sub">
                    "waiting; deepest "
                    <span {attr("id", format!("metric-queue-{name}-max"))}>{read(|q| q.deepest)}</span>
                </span>
            </dd>
        </div>
    }
    .into_inner()
}

/// One number for every subscriber; its cells carry ids such as `#metric-shipping-duplicates`.
#[component]
fn ConsumerRow(
    label: &'static str,
    /// What the number means (`docs/METRICS.md`), shown as the row header's tooltip.
    definition: &'static str,
    field: &'static str,
    view: Computed<DeliveryView>,
    read: fn(&ConsumerLine) -> String,
) -> impl IntoView {
    let consumers = move || view.with(|v| v.consumers.clone());
    view! {
        <tr>
            <th {attr("scope", "row")} {attr("title", definition)}>{label}</th>
            {keyed(
                consumers,
                |c: &ConsumerLine| c.name.clone(),
                move |consumer: ConsumerLine| view! {
                <td class="num" {attr("id", format!("metric-{}-{field}", consumer.id_stem))}>
                    {
                        let name = consumer.name.clone();
                        reactive(move || {
                            view.with(|v| {
                                v.consumers.iter().find(|c| c.name == name).map(read).unwrap_or_default()
                            })
                        })
                    }
                </td>
                }.into_inner().into_any(),
            )}
        </tr>
    }
    .into_inner()
}
