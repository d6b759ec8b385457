//! The trade-off table in the page: one workload under every pattern, healthy and with the
//! owner of the names down, computed in the page one run at a time so progress shows.

use crate::components::{Var, attr, keyed, listen, reactive, show};
use crate::config::RunConfig;
use crate::state::{Settings, page};
use engine::simulate;
use leptos::prelude::*;
use shared::compare::{markdown, requests, table};
use shared::float_text::fixed;
use shared::metrics::summarize;
use shared::protocol::{Comparison, ComparisonRow, KnobMap, RunSummary};
use std::time::Duration;

/// Where the comparison is.
#[derive(Clone, Debug, PartialEq)]
enum Progress {
    NotRun,
    Running { done: usize, of: usize },
    Done(Comparison),
    Failed(String),
}

/// The comparison section.
#[component]
pub fn CompareView(
    /// Starts the run of a scenario opened in the player, with the row's own knobs.
    on_open: crate::runner::Starter,
) -> impl IntoView {
    let settings = page().settings;
    let progress = Var::new(Progress::NotRun);
    let measure = move |_| {
        let seed = settings.config.with_untracked(|c| c.seed);
        let runs = requests(seed);
        progress.set(Progress::Running {
            done: 0,
            of: runs.len(),
        });
        step(seed, runs, Vec::new(), progress);
    };
    let ms = |us: u64| format!("{} ms", fixed(us as f64 / 1_000.0, 0));
    let rows = move || match progress.get() {
        Progress::Done(comparison) => comparison.rows,
        _ => Vec::new(),
    };
    view! {
        <section class="compare card" {attr("aria-labelledby", "compare-title")}>
            <h2 id="compare-title">"Compare the patterns"</h2>
            <p class="hint">
                "The same workload — reads of orders with their product names, plus renames — under each \
                 pattern, once healthy and once with the owner of the names down from 10 s for 10 s."
            </p>
            <button {attr("id", "compare-run")} {attr("type", "button")} class="primary" {listen::<leptos::ev::MouseEvent>("click", measure)}
                {attr("disabled", reactive(move || matches!(progress.get(), Progress::Running { .. })))}>
                "Measure every pattern"
            </button>
            <p {attr("id", "compare-status")} {attr("role", "status")} class="sub">
                {move || match progress.get() {
                    Progress::NotRun => String::new(),
                    Progress::Running { done, of } => format!("Running {} of {of}…", done + 1),
                    Progress::Done(c) => format!("Measured: {}.", c.workload),
                    Progress::Failed(message) => format!("The comparison failed: {message}"),
                }}
            </p>
            {show(move || matches!(progress.get(), Progress::Done(_)), move || view! {
                <div class="compare-table-wrap">
                    <table {attr("id", "compare-table")} class="compare-table">
                        <thead>
                            <tr>
                                <th scope="col">"pattern"</th>
                                <th scope="col" title="Median read latency, healthy run">"read p50"</th>
                                <th scope="col" title="99th-percentile read latency, healthy run">"read p99"</th>
                                <th scope="col" title="Median rename latency, healthy run">"write p50"</th>
                                <th scope="col" title="Successful reads and renames per second, healthy run">"ops/s"</th>
                                <th scope="col" title="Reads older than a version confirmed before they began, and their share of successful reads">"stale reads"</th>
                                <th scope="col" title="The largest served lag of a read: how long before it began its source first wrote a newer version than it returned">"served lag max"</th>
                                <th scope="col" title="Reads that returned a version a coordinator rolled back">"aborted reads"</th>
                                <th scope="col" title="Copy writes that replaced a newer version with an older one">"copy regressions"</th>
                                <th scope="col" title="Of the reads that began while the source of truth was down, the share that succeeded">"reads ok in outage"</th>
                                <th scope="col" title="Of the renames that began while the source of truth was down, the share that succeeded">"writes ok in outage"</th>
                                <th scope="col" title="Messages sent per finished operation, background traffic included">"messages/op"</th>
                                <th scope="col" title="Bytes of values held in copies of another service's table at the end">"duplicated bytes"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {keyed(
                                rows,
                                |row: &ComparisonRow| row.title.clone(),
                                move |row: ComparisonRow| view! {
                                <tr data-scenario=row.scenario.clone()>
                                    <th {attr("scope", "row")}>
                                        <button
                                            {attr("type", "button")}
                                            class="link-button"
                                            {attr("title", "Open this pattern in the player")}
                                            {listen::<leptos::ev::MouseEvent>("click", {
                                                let name = row.scenario.clone();
                                                let knobs = row.knobs.clone();
                                                move |_| {
                                                    open_scenario(settings, &name, &knobs);
                                                    on_open.start();
                                                    window().scroll_to_with_x_and_y(0.0, 0.0);
                                                }
                                            })}
                                        >
                                            {row.title.clone()}
                                        </button>
                                    </th>
                                    <td>{ms(row.read_p50_us)}</td>
                                    <td>{ms(row.read_p99_us)}</td>
                                    <td>{ms(row.write_p50_us)}</td>
                                    <td>{fixed(row.throughput_per_s, 1).to_string()}</td>
                                    <td>{format!("{} ({} %)", row.stale_reads, fixed(row.stale_read_pct, 0))}</td>
                                    <td>{ms(row.healthy.served_lag_max_us)}</td>
                                    <td>{row.healthy.coordination.aborted_reads.to_string()}</td>
                                    <td>{row.healthy.copy_regressions.to_string()}</td>
                                    <td>{format!("{} %", fixed(row.read_availability_pct, 0))}</td>
                                    <td>{format!("{} %", fixed(row.write_availability_pct, 0))}</td>
                                    <td>{fixed(row.messages_per_op, 1).to_string()}</td>
                                    <td>{row.duplicated_bytes.to_string()}</td>
                                </tr>
                                }.into_inner().into_any(),
                            )}
                        </tbody>
                    </table>
                </div>
                <details>
                    <summary>"As Markdown"</summary>
                    <pre {attr("id", "compare-markdown")}>
                        {move || match progress.get() {
                            Progress::Done(c) => markdown(&c),
                            _ => String::new(),
                        }}
                    </pre>
                </details>
            }.into_inner().into_any())}
        </section>
    }
    .into_inner()
}

/// Runs the next request, then yields to the page so it can show progress.
fn step(
    seed: u64,
    mut runs: Vec<shared::protocol::RunRequest>,
    mut done: Vec<RunSummary>,
    progress: Var<Progress>,
) {
    set_timeout(
        move || {
            if runs.is_empty() {
                progress.set(Progress::Done(table(seed, done)));
                return;
            }
            let request = runs.remove(0);
            match simulate(&request) {
                Ok(trace) => {
                    done.push(summarize(&trace));
                    progress.set(Progress::Running {
                        done: done.len(),
                        of: done.len() + runs.len(),
                    });
                    step(seed, runs, done, progress);
                }
                Err(err) => progress.set(Progress::Failed(err.to_string())),
            }
        },
        Duration::ZERO,
    );
}

/// Switches the form to `scenario` with its defaults, then `knobs`, keeping the seed.
pub fn open_scenario(settings: Settings, scenario: &str, knobs: &KnobMap) {
    settings.config.update(|c: &mut RunConfig| {
        c.switch_scenario(scenario);
        for (name, value) in knobs {
            if let Some(slot) = c.knobs.get_mut(name) {
                *slot = *value;
            }
        }
    });
    settings.form_epoch.update(|e| *e += 1);
}
