//! The control bar: scenario, seed, run length, source, Run, and the scenario's knobs.

use crate::components::{attr, listen, reactive};
use crate::config::{SourceKind, scenario_spec};
use crate::format::trim_number;
use crate::state::page;
use leptos::prelude::*;
use shared::decimal_text::parse_f64;
use shared::float_text::shortest;
use shared::scenario::{KnobSpec, MAX_UNTIL_S, catalog};

/// The form that says what to run.
#[component]
pub fn ControlBar(
    /// Runs what the form says.
    on_run: crate::runner::Starter,
) -> impl IntoView {
    let settings = page().settings;
    let config = settings.config;
    let epoch = settings.form_epoch;
    // Fields show `config` when the form is (re)drawn, not while someone types in them.
    let shown = move |read: fn(&crate::config::RunConfig) -> String| {
        move || {
            epoch.track();
            config.with_untracked(read)
        }
    };
    let on_scenario = move |ev: leptos::ev::Event| {
        let name = event_target_value(&ev);
        config.update(|c| c.switch_scenario(&name));
        epoch.update(|e| *e += 1);
        on_run.start();
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        on_run.start();
    };
    // `novalidate`: the run checks every value itself and says in the status line what is wrong
    // (a rate above a simulated run's maximum names the live one). The browser's own check
    // would silently refuse to submit a value out of range in the closed knob panel, as when
    // a live rate stays in a field after switching to a simulated source; the fields still
    // carry their range (min, max) and are marked while out of it.
    view! {
        <form class="controls card" {listen::<leptos::ev::SubmitEvent>("submit", on_submit)} {attr("aria-label", "What to run")} {attr("novalidate", true)}>
            <div class="fields">
                <label class="field">
                    <span class="label">"Scenario"</span>
                    <select {attr("id", "scenario")} {listen::<leptos::ev::Event>("change", on_scenario)}>
                        {catalog()
                            .iter()
                            .map(|spec| {
                                let name = spec.name;
                                view! {
                                    <option
                                        {attr("value", name)}
                                        {attr("selected", reactive(move || config.with(|c| c.scenario == name)))}
                                    >
                                        {spec.title}
                                    </option>
                                }
                                .into_inner().into_any()
                            })
                            .map(IntoAny::into_any).collect::<Vec<AnyView>>()}
                    </select>
                </label>
                <label class="field narrow">
                    <span class="label">"Seed"</span>
                    <input
                        {attr("id", "seed")}
                        {attr("type", "number")}
                        {attr("min", "0")}
                        {attr("step", "1")}
                        {attr("required", true)}
                        prop:value=shown(|c| c.seed.to_string())
                        {listen::<leptos::ev::Event>("input", move |ev| {
                            if let Ok(seed) = event_target_value(&ev).trim().parse::<u64>() {
                                config.update(|c| c.seed = seed);
                            }
                        })}
                    />
                </label>
                <label class="field narrow">
                    <span class="label">"Run length"</span>
                    <span class="with-unit">
                        <input
                            {attr("id", "until")}
                            {attr("type", "number")}
                            {attr("min", "0.1")}
                            {attr("max", shortest(MAX_UNTIL_S).to_string())}
                            {attr("step", "any")}
                            {attr("required", true)}
                            prop:value=shown(|c| trim_number(c.until_s))
                            {listen::<leptos::ev::Event>("input", move |ev| {
                                if let Some(s) = parse_f64(event_target_value(&ev).trim()) {
                                    config.update(|c| c.until_s = s);
                                }
                            })}
                        />
                        <span class="unit">"s"</span>
                    </span>
                </label>
                <label class="field">
                    <span class="label">"Source"</span>
                    <select
                        {attr("id", "source")}
                        {listen::<leptos::ev::Event>("change", move |ev| {
                            if let Some(source) = SourceKind::parse(&event_target_value(&ev)) {
                                config.update(|c| c.source = source);
                            }
                        })}
                    >
                        <option
                            {attr("value", "sim")}
                            {attr("selected", reactive(move || config.with(|c| c.source == SourceKind::Sim)))}
                        >
                            "In the page"
                        </option>
                        <option
                            {attr("value", "backend")}
                            {attr("selected", reactive(move || config.with(|c| c.source == SourceKind::Backend)))}
                        >
                            "Backend"
                        </option>
                        <option
                            {attr("value", "recorded")}
                            {attr("selected", reactive(move || config.with(|c| c.source == SourceKind::Recorded)))}
                        >
                            "Recorded file"
                        </option>
                        <option
                            {attr("value", "live")}
                            {attr("selected", reactive(move || config.with(|c| c.source == SourceKind::Live)))}
                        >
                            "Live services"
                        </option>
                    </select>
                </label>
                <button id="run" type="submit" class="primary">
                    "Run"
                </button>
            </div>
            <Knobs/>
        </form>
    }
    .into_inner()
}

/// The scenario's knobs, in a panel that opens and closes.
#[component]
fn Knobs() -> impl IntoView {
    let settings = page().settings;
    let config = settings.config;
    let epoch = settings.form_epoch;
    let knobs = move || {
        epoch.track();
        let scenario = config.with_untracked(|c| c.scenario.clone());
        scenario_spec(&scenario).map_or(&[][..], |spec| spec.knobs)
    };
    view! {
        <details class="knobs">
            <summary>
                "Knobs "
                <span class="count">{move || format!("({})", knobs().len())}</span>
                <span class="hint">" — change them, then press Run"</span>
            </summary>
            <div class="knob-grid">
                {move || knobs().iter().map(|knob| view! { <KnobField knob=*knob/> }.into_inner()).map(IntoAny::into_any).collect::<Vec<AnyView>>().into_any()}
            </div>
        </details>
    }
    .into_inner()
}

/// One knob: a labelled number with its unit and what it does, or a choice of ways.
#[component]
fn KnobField(knob: KnobSpec) -> impl IntoView {
    let config = page().settings.config;
    let id = format!("knob-{}", knob.name);
    let help_id = format!("{id}-help");
    let value = config.with_untracked(|c| c.knobs.get(knob.name).copied().unwrap_or(knob.default));
    let set = move |text: String| {
        if let Some(v) = parse_f64(text.trim()) {
            config.update(|c| {
                c.knobs.insert(knob.name.to_string(), v);
            });
        }
    };
    let field = if knob.choices.is_empty() {
        let step = if knob.whole {
            "1".to_string()
        } else {
            "any".to_string()
        };
        view! {
            <span class="with-unit">
                <input
                    {attr("id", id)}
                    {attr("type", "number")}
                    {attr("min", shortest(knob.min).to_string())}
                    {attr("max", reactive(move || config.with(|c| shortest(c.knob_max(&knob)).to_string())))}
                    {attr("step", step)}
                    {attr("required", true)}
                    {attr("aria-describedby", help_id.clone())}
                    prop:value=trim_number(value)
                    {listen::<leptos::ev::Event>("input", move |ev| set(event_target_value(&ev)))}
                />
                <span class="unit">{knob.unit}</span>
            </span>
        }
        .into_inner().into_any()
    } else {
        // Each way by its name; the value (and the address) stays its number.
        let options = knob
            .choices
            .iter()
            .enumerate()
            .map(|(index, choice)| {
                let selected = value == index as f64;
                view! {
                    <option {attr("value", index.to_string())} {attr("selected", selected)}>
                        {*choice}
                    </option>
                }
                .into_inner()
                .into_any()
            })
            .map(IntoAny::into_any)
            .collect::<Vec<AnyView>>();
        view! {
            <select
                {attr("id", id)}
                {attr("aria-describedby", help_id.clone())}
                {listen::<leptos::ev::Event>("change", move |ev| set(event_target_value(&ev)))}
            >
                {options}
            </select>
        }
        .into_inner()
        .into_any()
    };
    view! {
        <div class="knob" {attr("title", knob.help)}>
            <label {attr("for", format!("knob-{}", knob.name))}>{knob.label}</label>
            {field}
            <p class="help" {attr("id", help_id)}>{knob.help}</p>
        </div>
    }
    .into_inner()
}
