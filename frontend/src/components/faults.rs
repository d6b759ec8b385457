//! The faults panel: the run's faults, and a form that breaks something at the playhead. The
//! rerun changes nothing before the fault begins, so the picture only changes from there on.

use crate::components::{Computed, Var, attr, key_of, keyed, listen, reactive, show};
use crate::fault_form::{FAULT_KINDS, FaultDraft, targets, targets_a_service};
use crate::player::Player;
use crate::selection::Selection;
use crate::state::page;
use leptos::prelude::*;
use shared::decimal_text::parse_f64;
use shared::float_text::{fixed, shortest};
use shared::scenario::fault_text;

/// The faults panel.
#[component]
pub fn FaultsPanel(
    /// Reruns with the new list of faults.
    on_run: crate::runner::Starter,
) -> impl IntoView {
    let run = page().run;
    let clock = page().clock;
    let settings = page().settings;
    let selected = page().selected;
    let kind = Var::new("crash".to_string());
    let target = Var::new(String::new());
    let for_s = Var::new(5.0_f64);
    let amount = Var::new(4_u32);
    let problem = Var::new(None::<String>);
    let header = Computed::new(move |_| run.read(|index| index.header().clone()));
    // No run yet, or one that could not be shown: nothing to break, and no services to offer.
    let no_run = move || header.with(Option::is_none);
    let choices = Computed::compared(move |_| {
        let kind = kind.get();
        header.with(|h| h.as_ref().map(|h| targets(h, &kind)).unwrap_or_default())
    });
    // Clicking a service or a link on the map makes it the target, when the fault fits it.
    let clicked = Computed::new(move |_| match selected.selection.get() {
        Selection::Service(name) => Some(name),
        Selection::Link(a, b) => Some(format!("{a}-{b}")),
        _ => None,
    });
    let target_now = move || {
        let chosen = target.get();
        choices.with(|c| {
            let offered = |value: &str| c.iter().any(|(v, _)| v == value);
            clicked
                .get()
                .filter(|value| offered(value))
                .or_else(|| offered(&chosen).then_some(chosen))
                .or_else(|| c.first().map(|(v, _)| v.clone()))
                .unwrap_or_default()
        })
    };

    // Rerun from where the playhead is, playing if it was.
    let rerun_here = move || {
        let now = clock.now.get_untracked();
        let playing = clock.player.with_untracked(Player::is_playing);
        settings.config.update(|c| {
            c.start_s = now.as_secs_f64();
            c.autoplay = playing;
        });
        on_run.start();
    };
    let inject = move |_| {
        let Some(header) = header.get_untracked() else {
            return;
        };
        let target = untrack(target_now);
        let draft = FaultDraft {
            kind: kind.get_untracked(),
            target,
            at_s: clock.now.get_untracked().as_secs_f64(),
            for_s: for_s.get_untracked(),
            amount: amount.get_untracked(),
        };
        match draft.checked(&header) {
            Ok(text) => {
                problem.set(None);
                settings.config.update(|c| c.faults.push(text));
                rerun_here();
            }
            Err(err) => problem.set(Some(err.to_string())),
        }
    };
    let on_kind = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        amount.set(if value == "slow" { 4 } else { 20 });
        kind.set(value);
    };
    // Faults asked for (removable), and those the scenario's knobs set (change the knob).
    let listed = move || {
        let asked = settings.config.with(|c| c.faults.clone());
        header.with(|h| {
            h.as_ref()
                .map(|h| {
                    h.faults
                        .iter()
                        .map(|spec| {
                            let text = fault_text(spec, &h.services);
                            let asked_at = asked.iter().position(|a| {
                                shared::scenario::parse_fault(a, &h.services).ok().as_ref()
                                    == Some(spec)
                            });
                            (text, asked_at)
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let remove = move |at: usize| {
        settings.config.update(|c| {
            if at < c.faults.len() {
                c.faults.remove(at);
            }
        });
        rerun_here();
    };
    view! {
        <section class="faults card" {attr("aria-labelledby", "faults-title")}>
            <h2 id="faults-title">"Break something"</h2>
            <ul {attr("id", "fault-list")} class="fault-list">
                {keyed(
                    listed,
                    |(text, at): &(String, Option<usize>)| key_of(&[text, &at.map_or("-".to_string(), |at| at.to_string())]),
                    move |fault: (String, Option<usize>)| view! {
                    <li>
                        <code>{fault.0.clone()}</code>
                        {match fault.1 {
                            Some(at) => view! {
                                <button
                                    {attr("type", "button")}
                                    class="link-button"
                                    {attr("aria-label", format!("Remove fault {}", fault.0))}
                                    {listen::<leptos::ev::MouseEvent>("click", move |_| remove(at))}
                                >
                                    "remove"
                                </button>
                            }
                            .into_inner().into_any(),
                            None => view! { <span class="sub">"set by a knob"</span> }.into_inner().into_any(),
                        }}
                    </li>
                    }.into_inner().into_any(),
                )}
            </ul>
            <div class="fault-form">
                <label class="field">
                    <span class="label">"Fault"</span>
                    <select {attr("id", "fault-kind")} {listen::<leptos::ev::Event>("change", on_kind)}>
                        {FAULT_KINDS
                            .iter()
                            .map(|(value, label)| view! { <option {attr("value", *value)}>{*label}</option> }.into_inner().into_any())
                            .map(IntoAny::into_any).collect::<Vec<AnyView>>()}
                    </select>
                </label>
                <label class="field">
                    <span class="label">
                        {move || if targets_a_service(&kind.get()) { "Service" } else { "Link" }.to_string()}
                    </span>
                    <select
                        {attr("id", "fault-target")}
                        {attr("disabled", reactive(no_run))}
                        {listen::<leptos::ev::Event>("change", move |ev| {
                            selected.selection.set(Selection::Nothing);
                            target.set(event_target_value(&ev));
                        })}
                    >
                        {keyed(
                            move || choices.get(),
                            |(value, _): &(String, String)| value.clone(),
                            move |choice: (String, String)| view! {
                            <option
                                {attr("value", choice.0.clone())}
                                {attr("selected", {
                                    let value = choice.0.clone();
                                    move || target_now() == value
                                })}
                            >
                                {choice.1.clone()}
                            </option>
                            }.into_inner().into_any(),
                        )}
                    </select>
                </label>
                {show(move || kind.with(|k| k != "crash" && k != "partition"), move || view! {
                    <label class="field narrow">
                        <span class="label">
                            {move || if kind.with(|k| k == "slow") { "Times slower" } else { "Percent" }.to_string()}
                        </span>
                        <input
                            {attr("id", "fault-amount")}
                            {attr("type", "number")}
                            {attr("min", reactive(move || if kind.with(|k| k == "slow") { "2" } else { "1" }.to_string()))}
                            {attr("max", "100")}
                            prop:value=move || amount.get().to_string()
                            {listen::<leptos::ev::Event>("change", move |ev| {
                                if let Ok(value) = event_target_value(&ev).parse() {
                                    amount.set(value);
                                }
                            })}
                        />
                    </label>
                }.into_inner().into_any())}
                <label class="field narrow">
                    <span class="label">"For (s, 0 = to the end)"</span>
                    <input
                        {attr("id", "fault-for")}
                        {attr("type", "number")}
                        {attr("min", "0")}
                        {attr("step", "0.5")}
                        prop:value=move || shortest(for_s.get()).to_string()
                        {listen::<leptos::ev::Event>("change", move |ev| {
                            if let Some(value) = parse_f64(&event_target_value(&ev)) {
                                for_s.set(value.max(0.0));
                            }
                        })}
                    />
                </label>
                <button {attr("id", "fault-inject")} {attr("type", "button")} class="primary" {attr("disabled", reactive(no_run))} {listen::<leptos::ev::MouseEvent>("click", inject)}>
                    {move || format!("Inject at {} s", fixed(clock.now.get().as_secs_f64(), 1))}
                </button>
            </div>
            <p class="problem" {attr("role", "alert")} {attr("hidden", reactive(move || problem.with(Option::is_none)))}>
                {move || problem.get().unwrap_or_default()}
            </p>
        </section>
    }
    .into_inner()
}
