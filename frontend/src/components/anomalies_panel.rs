//! The anomalies panel: what the checker (`shared::check`) has proven up to the playhead — a
//! count per kind and the latest anomalies, each a button that selects the events proving it.

use crate::anomalies::{self, AnomaliesView, AnomalyLine, KindCount, LISTED_MAX};
use crate::components::{Computed, Var, attr, keyed, listen, reactive};
use crate::selection::Selection;
use crate::state::page;
use leptos::prelude::*;

/// The anomalies panel, collapsible.
#[component]
pub fn AnomaliesPanel() -> impl IntoView {
    let run = page().run;
    let clock = page().clock;
    let selected = page().selected;
    let expanded = Var::new(true);
    // The panel changes only with the events applied, not every frame.
    let view = Computed::new(move |_| {
        let applied = clock.applied.get().1;
        run.read(|index| anomalies::view(index.anomalies(), applied, LISTED_MAX))
            .unwrap_or_default()
    });
    let total = move || view.with(|v| v.total);
    let counts = move || view.with(|v| v.counts.clone());
    let latest = move || view.with(|v| v.latest.clone());
    // Selecting an anomaly pauses at the moment its proof was complete, so the log lists its
    // events from the top and the map and sequence diagram show that moment; a second click
    // clears the selection and leaves the playhead where it is.
    let select = move |position: usize| {
        let next = Selection::Anomaly(position);
        if selected.selection.with_untracked(|s| *s == next) {
            selected.selection.set(Selection::Nothing);
            return;
        }
        let at = run
            .read_untracked(|index| index.anomalies().anomalies().get(position).map(|a| a.at))
            .flatten();
        clock.player.update(|p| {
            p.pause();
            if let Some(at) = at {
                p.seek(at);
            }
        });
        selected.selection.set(next);
    };
    view! {
        <section class="anomalies card" {attr("aria-labelledby", "anomalies-title")}>
            <h2 {attr("id", "anomalies-title")}>
                <button
                    {attr("type", "button")}
                    {attr("id", "anomalies-toggle")}
                    class="panel-toggle"
                    {attr("aria-expanded", reactive(move || expanded.get().to_string()))}
                    {attr("aria-controls", "anomalies-body")}
                    {listen::<leptos::ev::MouseEvent>("click", move |_| expanded.update(|e| *e = !*e))}
                >
                    "Anomalies "
                    <span class="hint" {attr("id", "anomalies-total")}>
                        {move || format!("{} so far", total())}
                    </span>
                </button>
            </h2>
            <div {attr("id", "anomalies-body")} {attr("hidden", reactive(move || !expanded.get()))}>
                <dl class="anomaly-counts">
                    {keyed(
                        counts,
                        |c: &KindCount| format!("{}/{}", c.count, c.name),
                        move |kind: KindCount| view! {
                        <div class={if kind.count > 0 { "anomaly-count nonzero" } else { "anomaly-count" }}>
                            <dt>{kind.label}</dt>
                            <dd {attr("id", format!("anomaly-count-{}", kind.name))}>{kind.count}</dd>
                        </div>
                        }.into_inner().into_any(),
                    )}
                </dl>
                <h3 class="subhead" id="anomaly-list-title">"Latest, newest first"</h3>
                <p class="note" {attr("hidden", reactive(move || total() != 0))}>
                    "None proven so far."
                </p>
                <ol {attr("id", "anomaly-list")} class="anomaly-list" {attr("aria-labelledby", "anomaly-list-title")}>
                    {keyed(
                        latest,
                        |line: &AnomalyLine| line.position.to_string(),
                        move |line: AnomalyLine| view! {
                        <li>
                            <button
                                {attr("type", "button")}
                                class="anomaly-select"
                                {attr("aria-pressed", reactive(move || {
                                    selected
                                        .selection
                                        .with(|s| *s == Selection::Anomaly(line.position))
                                        .to_string()
                                }))}
                                {listen::<leptos::ev::MouseEvent>("click", move |_| select(line.position))}
                            >
                                <time>{line.time.clone()}</time>
                                " "
                                <span class="kind">{line.kind}</span>
                                " "
                                <span class="text">{line.text.clone()}</span>
                            </button>
                        </li>
                        }.into_inner().into_any(),
                    )}
                </ol>
                <p class="note" {attr("id", "anomaly-more")} {attr("hidden", reactive(move || view.with(|v| v.more == 0)))}>
                    {move || view.with(more_text)}
                </p>
            </div>
        </section>
    }
    .into_inner()
}

fn more_text(view: &AnomaliesView) -> String {
    match view.more {
        1 => "and 1 older one".to_string(),
        more => format!("and {more} older ones"),
    }
}
