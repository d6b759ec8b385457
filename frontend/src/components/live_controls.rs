//! The live run's controls, shown while the source is live services: start and stop the load,
//! crash and restart a service, slow a service, cut a link or make it lose, duplicate or reorder
//! messages. Each sends a `live_control` frame, with the run's control token, on the open
//! socket; what it did shows in the trace (a service going down, a narration), so the page
//! keeps no state of its own about it. Only the viewer who started the run controls it (unless
//! the server shares control): a viewer who watches sees why, and the controls disabled.

use crate::components::Computed;
use crate::components::{Var, attr, keyed, listen, reactive, show};
use crate::config::SourceKind;
use crate::state::page;
use crate::ws;
use leptos::prelude::*;
use shared::protocol::{ClientFrame, Fault, LinkId, LiveCommand, LiveRole, ServiceId, ServiceInfo};

/// The factors a service can be slowed by from the page.
const SLOW_FACTORS: [u32; 4] = [2, 4, 10, 50];
/// The share of a link's messages lost, duplicated or reordered from the page.
const SHARE_PERCENT: u32 = 30;

/// The controls of the live run, or nothing for other sources.
#[component]
pub fn LiveControls() -> impl IntoView {
    let settings = page().settings;
    let run = page().run;
    let is_live = move || settings.config.with(|c| c.source == SourceKind::Live);
    let topology = Computed::compared(move |_| {
        run.read(|index| {
            (
                index.header().services.clone(),
                index.header().links.clone(),
            )
        })
        .unwrap_or_default()
    });
    let refused = run.live_refusal;
    let role = run.live_role;
    let may_control =
        move || role.with(|r| matches!(r, Some(LiveRole::Control { .. } | LiveRole::Shared)));
    let send = move |command: LiveCommand| {
        let token = role.with_untracked(|r| match r {
            Some(LiveRole::Control { token }) => Some(token.clone()),
            _ => None,
        });
        let sent = ws::send(&ClientFrame::LiveControl { command, token });
        refused
            .set((!sent).then(|| {
                "The live run is not connected: press Run to start it again.".to_string()
            }));
    };
    let link = Var::new(0usize);
    let slow_service = Var::new(0u16);
    let factor = Var::new(4u32);
    let selected_link = move || {
        topology.with(|(_, links)| {
            links
                .get(link.get_untracked())
                .map(|(a, b)| LinkId::Between(*a, *b))
        })
    };
    let on_link = move |make: fn(LinkId) -> Fault| {
        move |_| {
            if let Some(link) = selected_link() {
                send(LiveCommand::Fault { fault: make(link) });
            }
        }
    };
    let heal_link = move |_| {
        if let Some(link) = selected_link() {
            for fault in [
                Fault::Partition { link },
                Fault::Drop { link, percent: 1 },
                Fault::Duplicate { link, percent: 1 },
                Fault::Reorder { link, percent: 1 },
            ] {
                send(LiveCommand::Heal { fault });
            }
        }
    };
    let slow = move |heal: bool| {
        let fault = Fault::Slow {
            service: ServiceId(slow_service.get_untracked()),
            factor: factor.get_untracked(),
        };
        send(if heal {
            LiveCommand::Heal { fault }
        } else {
            LiveCommand::Fault { fault }
        });
    };
    let service_options = move |selected: Var<u16>| {
        topology
            .get()
            .0
            .into_iter()
            .map(|info| {
                let id = info.id.0;
                view! {
                    <option {attr("value", id.to_string())} {attr("selected", reactive(move || selected.get() == id))}>
                        {info.name}
                    </option>
                }
                .into_inner().into_any()
            })
            .map(IntoAny::into_any).collect::<Vec<AnyView>>()
    };
    view! {
        {show(is_live, move || view! {
            <section class="live-controls card" {attr("aria-label", "Live run controls")}>
                {move || (role.with(|r| match r {
                    Some(LiveRole::Watch { reason }) => Some(view! {
                        <p class="notice" {attr("role", "status")}>{format!("Watching only: {reason}.")}</p>
                    }.into_inner().into_any()),
                    _ => None,
                })).into_any()}
                <fieldset class="live-fieldset" {attr("disabled", reactive(move || !may_control()))}>
                <legend>"Change the live run"</legend>
                <div class="live-row">
                    <span class="label">"Load"</span>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", move |_| send(LiveCommand::Load { on: true }))}>
                        "Start load"
                    </button>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", move |_| send(LiveCommand::Load { on: false }))}>
                        "Stop load"
                    </button>
                    <button {attr("type", "button")} class="danger" {listen::<leptos::ev::MouseEvent>("click", move |_| send(LiveCommand::Stop))}>
                        "End run"
                    </button>
                </div>
                <div class="live-row">
                    <span class="label">"Services"</span>
                    {keyed(
                        move || topology.get().0,
                        |info: &ServiceInfo| info.id.0.to_string(),
                        move |info: ServiceInfo| view! {
                        <ServiceButtons info=info send=send/>
                        }.into_inner().into_any(),
                    )}
                </div>
                <div class="live-row">
                    <label class="label" for="live-slow">"Slow"</label>
                    <select
                        {attr("id", "live-slow")}
                        {listen::<leptos::ev::Event>("change", move |ev| slow_service.set(event_target_value(&ev).parse().unwrap_or(0)))}
                    >
                        {move || service_options(slow_service).into_any()}
                    </select>
                    <label for="live-factor">"by ×"</label>
                    <select
                        {attr("id", "live-factor")}
                        {listen::<leptos::ev::Event>("change", move |ev| factor.set(event_target_value(&ev).parse().unwrap_or(2)))}
                    >
                        {SLOW_FACTORS
                            .iter()
                            .map(|f| {
                                let f = *f;
                                view! {
                                    <option {attr("value", f.to_string())} {attr("selected", reactive(move || factor.get() == f))}>
                                        {f.to_string()}
                                    </option>
                                }
                                .into_inner().into_any()
                            })
                            .map(IntoAny::into_any).collect::<Vec<AnyView>>()}
                    </select>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", move |_| slow(false))}>"Slow down"</button>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", move |_| slow(true))}>"Back to speed"</button>
                </div>
                <div class="live-row">
                    <label class="label" for="live-link">"Link"</label>
                    <select
                        {attr("id", "live-link")}
                        {listen::<leptos::ev::Event>("change", move |ev| link.set(event_target_value(&ev).parse().unwrap_or(0)))}
                    >
                        {move || {
                            let (services, links) = topology.get();
                            let name = |id: ServiceId| {
                                services
                                    .get(id.0 as usize)
                                    .map_or_else(|| format!("#{}", id.0), |s| s.name.clone())
                            };
                            links
                                .iter()
                                .enumerate()
                                .map(|(i, (a, b))| {
                                    view! {
                                        <option {attr("value", i.to_string())} {attr("selected", reactive(move || link.get() == i))}>
                                            {format!("{} – {}", name(*a), name(*b))}
                                        </option>
                                    }
                                    .into_inner().into_any()
                                })
                                .map(IntoAny::into_any).collect::<Vec<AnyView>>()
                                .into_any()
                        }}
                    </select>
                    <button {attr("type", "button")} class="danger" {listen::<leptos::ev::MouseEvent>("click", on_link(|link| Fault::Partition { link }))}>
                        "Cut"
                    </button>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_link(|link| Fault::Drop { link, percent: SHARE_PERCENT }))}>
                        "Lose 30 %"
                    </button>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_link(|link| Fault::Duplicate { link, percent: SHARE_PERCENT }))}>
                        "Duplicate 30 %"
                    </button>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_link(|link| Fault::Reorder { link, percent: SHARE_PERCENT }))}>
                        "Reorder 30 %"
                    </button>
                    <button {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", heal_link)}>"Heal"</button>
                </div>
                </fieldset>
                {move || (refused.get().map(|text| view! { <p class="notice" {attr("role", "alert")}>{text}</p> }.into_inner().into_any())).into_any()}
            </section>
        }.into_inner().into_any())}
    }
}

/// Crash and restart buttons for one service.
#[component]
fn ServiceButtons(
    info: ServiceInfo,
    send: impl Fn(LiveCommand) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let service = info.id;
    let crash_label = format!("Crash {}", info.name);
    let restart_label = format!("Restart {}", info.name);
    view! {
        <span class="live-service">
            <button
                {attr("type", "button")}
                class="danger"
                {attr("aria-label", crash_label.clone())}
                {listen::<leptos::ev::MouseEvent>("click", move |_| send(LiveCommand::Crash { service }))}
            >
                {crash_label.clone()}
            </button>
            <button
                {attr("type", "button")}
                {attr("aria-label", restart_label.clone())}
                {listen::<leptos::ev::MouseEvent>("click", move |_| send(LiveCommand::Restart { service }))}
            >
                {restart_label.clone()}
            </button>
        </span>
    }
    .into_inner()
}
