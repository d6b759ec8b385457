//! The page: reads the URL, provides the shared state, starts the run, and lays out the panels
//! (all of them, or the minimal chrome of an embed).

use crate::components::anomalies_panel::AnomaliesPanel;
use crate::components::charts_panel::ChartsPanel;
use crate::components::compare::CompareView;
use crate::components::controls::ControlBar;
use crate::components::event_log::EventLog;
use crate::components::faults::FaultsPanel;
use crate::components::live_controls::LiveControls;
use crate::components::map::ServiceMap;
use crate::components::metrics::MetricsPanel;
use crate::components::player_bar::PlayerBar;
use crate::components::sequence_diagram::SequenceDiagram;
use crate::components::share::ShareBar;
use crate::components::tables::TablesPanel;
use crate::components::{Var, attr, show};
use crate::config::{RunConfig, View};
use crate::frame_loop::drive_clock;
use crate::host;
use crate::keys;
use crate::runner::Starter;
use crate::source::RunStatus;
use crate::state::{Clock, Page, RunHandle, Selected, Settings, ShownViews, page};
use leptos::prelude::*;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let query = window().location().search().unwrap_or_default();
    let (config, notes) = RunConfig::from_query(&query);
    let embed = config.embed;
    let run = RunHandle::new();
    let clock = Clock::new(run);
    clock.player.update(|p| {
        p.set_speed(config.speed);
        p.set_looping(config.looping);
    });
    let selected = Selected::new(run, config.selection.clone());
    let views = ShownViews(Var::new(config.views));
    let settings = Settings {
        config: Var::new(config),
        form_epoch: Var::new(0),
    };
    provide_context(Page {
        run,
        clock,
        settings,
        selected,
        views,
    });

    let start = Starter {
        settings,
        run,
        clock,
    };
    drive_clock(clock);
    host::listen_to_keys(clock, run, selected);
    if embed {
        host::listen_to_host_page(settings, run, clock, selected, start);
    } else {
        host::keep_address_in_step(settings, clock, selected, views);
    }
    // Paint the page first, then compute: the status line says "Computing…" meanwhile.
    set_timeout(move || start.start(), std::time::Duration::ZERO);

    let shows = move |view: View| views.0.with(|v| v.shows(view));
    let spec = move || settings.config.with(|c| c.spec());
    // Above the fold at 1280×800: the player, then the map with the numbers beside it. The form
    // and the share bar wait one click away in drawers beside the map, so opening them never
    // covers or moves it.
    view! {
        {show(move || !embed, move || view! {
            <header class="masthead">
                <div class="brand">
                    <h1>"Crosstalk"</h1>
                    <p class="tagline">"Watch microservices share data."</p>
                </div>
                <div class="lesson">
                    <h2 {attr("id", "scenario-title")}>{move || spec().title.to_string()}</h2>
                    <p {attr("id", "lesson")}>{move || spec().lesson.to_string()}</p>
                </div>
            </header>
        }.into_inner().into_any())}
        <main class:embedded=move || embed>
            {(!notes.is_empty()).then(|| view! { <p class="notice" {attr("role", "note")}>{notes.join(" ")}</p> }.into_inner().into_any())}
            <PlayerBar/>
            {(!embed).then(|| view! { <LiveControls/> }.into_inner())}
            <div class="stage" class:single=move || embed && !shows(View::Metrics)>
                {show(move || shows(View::Map), move || view! {
                    <ServiceMap/>
                }.into_inner().into_any())}
                <div class="side">
                    {(!embed).then(|| view! {
                        <details class="drawer" {attr("id", "settings-drawer")}>
                            <summary>"Scenario, knobs and source"</summary>
                            <ControlBar on_run=start/>
                        </details>
                        <details class="drawer" {attr("id", "share-drawer")}>
                            <summary>"Views, sharing and files"</summary>
                            <ShareBar on_run=start/>
                        </details>
                    }.into_inner().into_any())}
                    {show(move || shows(View::Metrics), move || view! {
                        <MetricsPanel/>
                    }.into_inner().into_any())}
                </div>
                <div class="under-map">
                    <StatusLine/>
                    {(!embed).then(|| view! { <p class="keys-help">{keys::HELP}</p> }.into_inner().into_any())}
                    // Under the map, beside the taller numbers, so no gap opens below the map.
                    {(!embed).then(|| view! { <FaultsPanel on_run=start/> }.into_inner())}
                    {show(move || shows(View::Anomalies), move || view! {
                        <AnomaliesPanel/>
                    }.into_inner().into_any())}
                </div>
            </div>
            <div class="linked" class:single=move || !(shows(View::Sequence) && shows(View::Charts))>
                {show(move || shows(View::Sequence), move || view! {
                    <SequenceDiagram/>
                }.into_inner().into_any())}
                {show(move || shows(View::Charts), move || view! {
                    <ChartsPanel/>
                }.into_inner().into_any())}
            </div>
            <div class="panels">
                {show(move || shows(View::Tables), move || view! {
                    <TablesPanel/>
                }.into_inner().into_any())}
                {show(move || shows(View::Log), move || view! {
                    <EventLog/>
                }.into_inner().into_any())}
            </div>
            {(!embed).then(|| view! { <CompareView on_open=start/> }.into_inner())}
        </main>
        {show(move || !embed, move || view! {
            <footer class="colophon">
                <p>
                    "Every run is deterministic: the same scenario, seed and knobs give the same \
                     trace, in the page or from the backend. Share the address to share the run."
                </p>
            </footer>
        }.into_inner().into_any())}
    }
    .into_inner()
}

/// The status line and the trace's hash.
#[component]
fn StatusLine() -> impl IntoView {
    let run = page().run;
    let status = run.status;
    view! {
        <p
            {attr("id", "status")}
            {attr("role", "status")}
            class="status"
            class:problem=move || status.with(RunStatus::is_problem)
        >
            {move || ({
                status
                    .with(RunStatus::computing_percent)
                    .map(|percent| {
                        view! {
                            <progress
                                {attr("id", "compute-progress")}
                                class="compute-progress"
                                {attr("max", "100")}
                                {attr("value", percent.to_string())}
                                {attr("aria-label", "Computing the run")}
                            ></progress>
                        }
                        .into_inner().into_any()
                    })
            }).into_any()}
            <span class="status-text">{move || status.with(|s| s.line_parts().0)}</span>
            " "
            <code
                {attr("id", "trace-hash")}
                {attr("title", "The trace's hash: equal runs have equal hashes")}
                data-ready=move || status.with(RunStatus::ready).to_string()
            >
                {move || status.with(|s| s.hash().to_string())}
            </code>
            <span class="status-text">{move || status.with(|s| s.line_parts().1)}</span>
        </p>
    }
    .into_inner()
}
