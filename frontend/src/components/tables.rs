//! Each service's own tables, with fresh writes highlighted and stale copies marked.

use crate::components::{Computed, attr, key_of, keyed, on_screen};
use crate::selection;
use crate::state::page;
use crate::view_model::{self, RowLine, TableView};
use leptos::prelude::*;
use shared::time::Micros;

/// How long, in screen time, a freshly written row counts as fresh.
const FRESH_SCREEN_MS: f64 = 1_200.0;

/// Every service's tables.
#[component]
pub fn TablesPanel() -> impl IntoView {
    let run = page().run;
    // Off screen the tables hold still, and catch up when they come back into view.
    let clock = page().clock.while_shown(on_screen(".table-grid"));
    let fresh_window =
        move || Micros::from_millis_f64(FRESH_SCREEN_MS * clock.player.with(|p| p.speed()));
    // The tables change only when a row is written, and their highlights only when a write
    // enters or leaves the fresh window: that pair of counts changes far less often than the
    // playhead, so most frames leave the tables alone.
    let writes = Computed::compared(move |_| {
        let t = clock.now.get();
        let fresh = fresh_window();
        run.read(|index| {
            (
                index.row_writes_at(t),
                index.row_writes_at(t.saturating_sub(fresh)),
            )
        })
    });
    let tables = Computed::new(move |_| {
        // Reading (not just tracking) runs the lazy memo, so it follows the writes.
        writes.get();
        let t = clock.now.get_untracked();
        let fresh = untrack(fresh_window);
        run.at(t, |index, state| {
            view_model::tables(index.header(), state, t, fresh)
        })
        .unwrap_or_default()
    });
    let selected = page().selected;
    // The services the selection concerns: their tables are marked.
    let involved = Computed::new(move |_| {
        selected.selection.with(|selection| {
            selected.highlight.with(|highlight| {
                run.read(|index| selection::services_involved(index, selection, highlight))
                    .unwrap_or_default()
            })
        })
    });
    // Which tables exist changes rarely; the rows change often.
    let names = Computed::new(move |_| {
        tables.with(|all| {
            all.iter()
                .map(|t| {
                    (
                        t.service.0,
                        t.service_name.clone(),
                        t.table.clone(),
                        t.copy_of.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="tables card" {attr("aria-labelledby", "tables-title")}>
            <h2 id="tables-title">"Each service's own data"</h2>
            <div class="table-grid">
                {keyed(
                    move || names.get(),
                    |name: &(u16, String, String, Option<String>)| key_of(&[&name.0.to_string(), &name.1, &name.2, name.3.as_deref().map_or("-", |_| "+"), name.3.as_deref().unwrap_or("")]),
                    move |name: (u16, String, String, Option<String>)| view! {
                    <ServiceTable
                        service=name.0
                        service_name=name.1
                        table=name.2
                        copy_of=name.3
                        tables=tables
                        involved=involved
                    />
                    }.into_inner().into_any(),
                )}
            </div>
        </section>
    }
    .into_inner()
}

/// One table.
#[component]
fn ServiceTable(
    service: u16,
    service_name: String,
    table: String,
    copy_of: Option<String>,
    tables: Computed<Vec<TableView>>,
    involved: Computed<shared::slot_map::DenseSet<shared::protocol::ServiceId>>,
) -> impl IntoView {
    let table_for_rows = table.clone();
    let rows = move || {
        tables.with(|all| {
            all.iter()
                .find(|t| t.service.0 == service && t.table == table_for_rows)
                .map(|t| t.rows.clone())
                .unwrap_or_default()
        })
    };
    let caption_id = format!("table-{service_name}-{table}");
    view! {
        <figure
            class="db"
            class:selected=move || involved.with(|s| s.contains(&shared::protocol::ServiceId(service)))
        >
            <figcaption {attr("id", caption_id.clone())}>
                <span class="owner">{service_name.clone()}</span>
                <code class="table-name">{table.clone()}</code>
                {copy_of.map(|source| view! { <span class="copy-of">"copy of " <code>{source}</code></span> }.into_inner().into_any())}
            </figcaption>
            <div class="table-scroll">
                <table
                    class="rows"
                    data-service=service_name
                    data-table={table}
                    {attr("aria-labelledby", caption_id)}
                >
                    <thead>
                        <tr>
                            <th scope="col">"key"</th>
                            <th scope="col">"value"</th>
                            <th scope="col" class="num">"v"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {keyed(
                            rows,
                            |row: &RowLine| { let (key, version, value, stale) = row.render_key(); key_of(&[&key, &version.to_string(), &value, if stale { "1" } else { "0" }]) },
                            move |row: RowLine| view! {
                            <Row row=row/>
                            }.into_inner().into_any(),
                        )}
                    </tbody>
                </table>
            </div>
        </figure>
    }
    .into_inner()
}

/// One row. Drawn anew whenever its value, version or staleness changes, so a fresh row's
/// highlight plays once.
#[component]
fn Row(row: RowLine) -> impl IntoView {
    let source_now = row.source_now.clone();
    view! {
        <tr class:stale=move || row.stale class:in-doubt=move || row.in_doubt class:fresh=move || row.fresh>
            <td class="key">{row.key.clone()}</td>
            <td class="value">
                {row.value.clone()}
                {row.stale.then(|| view! { <span class="tag stale-tag">"stale"</span> }.into_inner().into_any())}
                {row.in_doubt.then(|| view! { <span class="tag in-doubt-tag">"in doubt"</span> }.into_inner().into_any())}
                {source_now.map(|(value, version)| {
                    view! { <span class="source-now">{format!("source: {value} (v{version})")}</span> }.into_inner().into_any()
                })}
            </td>
            <td class="num">{row.version}</td>
        </tr>
    }
    .into_inner()
}
