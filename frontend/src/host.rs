//! The page's conversations with what surrounds it: the keyboard, the address bar, and — when
//! embedded — the host page's `postMessage` commands.

use crate::components::{Computed, effect};
use crate::config::RunConfig;
use crate::embed::{self, EmbedCommand};
use crate::keys::{KeyAction, key_action};
use crate::player::Player;
use crate::selection::Selection;
use crate::state::{Clock, RunHandle, Selected, Settings, ShownViews};
use leptos::prelude::*;
use shared::time::Micros;
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// The whole state as a config: what the form says, plus where the player is, its speed and
/// loop, the selection and the views. This is what the address, Copy link and Embed carry.
pub fn current_config(
    settings: Settings,
    clock: Clock,
    selected: Selected,
    views: ShownViews,
) -> RunConfig {
    let mut config = settings.config.get_untracked();
    clock.player.with_untracked(|p| {
        config.start_s = p.now().as_secs_f64();
        config.speed = p.speed();
        config.looping = p.is_looping();
        config.autoplay = p.is_playing();
    });
    config.selection = selected.selection.get_untracked();
    config.views = views.0.get_untracked();
    config
}

/// Space plays and pauses; arrows step between events (Shift: a second); `+` and `−` change
/// speed; `L` loops; Home and End; Escape clears the selection — when no field has the focus.
pub fn listen_to_keys(clock: Clock, run: RunHandle, selected: Selected) {
    let handle = window_event_listener(leptos::ev::keydown, move |event| {
        if event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        let in_field = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| {
                matches!(
                    el.tag_name().as_str(),
                    "INPUT" | "SELECT" | "TEXTAREA" | "BUTTON" | "SUMMARY"
                ) || el.get_attribute("role").as_deref() == Some("button")
                    && matches!(event.key().as_str(), " " | "Enter")
            });
        if in_field {
            return;
        }
        let Some(action) = key_action(&event.key(), event.shift_key()) else {
            return;
        };
        match action {
            KeyAction::TogglePlay => clock.player.update(Player::toggle),
            KeyAction::StepEvent(forward) => clock.step_event(run, forward),
            KeyAction::Jump(forward, by) => clock.player.update(|p| {
                let t = if forward {
                    p.now() + by
                } else {
                    p.now().saturating_sub(by)
                };
                p.seek(t);
            }),
            KeyAction::Speed(faster) => clock.player.update(|p| p.step_speed(faster)),
            KeyAction::ToggleLoop => clock.player.update(|p| p.set_looping(!p.is_looping())),
            KeyAction::Start => clock.player.update(|p| p.seek(Micros::ZERO)),
            KeyAction::End => clock.player.update(|p| p.seek(p.end())),
            KeyAction::ClearSelection => selected.selection.set(Selection::Nothing),
        }
        event.prevent_default();
    });
    on_cleanup(move || handle.remove());
}

/// How long the address waits for the state to settle before it is rewritten: browsers refuse
/// more than about a hundred history changes in ten seconds, and dragging the timeline makes
/// hundreds.
const ADDRESS_SETTLE_MS: u64 = 300;

/// Keeps the address bar equal to the whole state, so reloading or copying it reproduces what
/// is on screen. While playing, the time in the address is where playing began.
pub fn keep_address_in_step(
    settings: Settings,
    clock: Clock,
    selected: Selected,
    views: ShownViews,
) {
    let generation = Rc::new(Cell::new(0u64));
    let generation = send_wrapper::SendWrapper::new(generation);
    // The player changes every frame while playing; the address only cares about these.
    let player_settings = Computed::compared(move |_| {
        clock
            .player
            .with(|p| (p.is_playing(), p.speed().to_bits(), p.is_looping()))
    });
    effect(move |_| {
        settings.config.track();
        selected.selection.track();
        views.0.track();
        let (playing, _, _) = player_settings.get();
        if !playing {
            clock.now.track();
        }
        let this = generation.get() + 1;
        generation.set(this);
        let generation = generation.clone();
        set_timeout(
            move || {
                if generation.get() == this {
                    write_address(&current_config(settings, clock, selected, views));
                }
            },
            std::time::Duration::from_millis(ADDRESS_SETTLE_MS),
        );
    });
}

fn write_address(config: &RunConfig) {
    if let Ok(history) = window().history() {
        // Keeping the address in step is a convenience; a refusal changes nothing that matters.
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&config.to_query()),
        );
    }
}

/// In an embed: carries out the host page's commands, answers each one to the window that sent
/// it, and tells the parent page each time a run is ready.
pub fn listen_to_host_page(
    settings: Settings,
    run: RunHandle,
    clock: Clock,
    selected: Selected,
    start: crate::runner::Starter,
) {
    let embed_id = settings.config.with_untracked(|c| c.embed_id.clone());
    let id_for_messages = embed_id.clone();
    let handle = window_event_listener(leptos::ev::message, move |event| {
        let id = id_for_messages.as_deref();
        let data = event.data();
        let answer = match EmbedCommand::from_message(&data) {
            Ok(None) => return,
            Ok(Some(command)) => carry_out(command, settings, run, clock, selected, start)
                .map_or_else(
                    |message| embed::error_message(id, &message),
                    |()| state_of(id, clock, run).to_json(),
                ),
            Err(message) => embed::error_message(id, &message),
        };
        // The sender's window belongs to another page, so `instanceof Window` (what a checked
        // cast asks) is false for it: cast without the check. Only windows post to an embed's
        // window, and every window has `postMessage(message, targetOrigin)`.
        if let Some(source) = event.source() {
            post(source.unchecked_ref::<web_sys::Window>(), &answer);
        }
    });
    on_cleanup(move || handle.remove());
    // Announce each run once it is ready. A run computed in the page replaces the last one
    // with no status in between, so the trace's revision tells runs apart.
    effect(move |announced: Option<Option<u64>>| {
        let ready = run.status.with(|s| s.ready() == "true");
        let revision = run.revision();
        if ready && announced.flatten() != Some(revision) {
            let mut message = state_of(embed_id.as_deref(), clock, run);
            message.kind = "ready";
            // Only a framed page has a parent to tell; a top-level page is its own parent.
            if let Some(parent) = window().parent().ok().flatten()
                && parent != window()
            {
                post(&parent, &message.to_json());
            }
        }
        ready.then_some(revision).or(announced.flatten())
    });
}

fn carry_out(
    command: EmbedCommand,
    settings: Settings,
    run: RunHandle,
    clock: Clock,
    selected: Selected,
    start: crate::runner::Starter,
) -> Result<(), String> {
    let mut handled = false;
    clock
        .player
        .update(|p| handled = command.apply_to_player(p));
    if handled {
        return Ok(());
    }
    match command {
        EmbedCommand::Step(forward) => clock.step_event(run, forward),
        EmbedCommand::Select(selection) => selected.selection.set(selection),
        EmbedCommand::Set(change) => {
            let mut next = settings.config.get_untracked();
            change.apply(&mut next)?;
            next.start_s = 0.0;
            settings.config.set(next);
            start.start();
        }
        _ => {}
    }
    Ok(())
}

fn state_of(id: Option<&str>, clock: Clock, run: RunHandle) -> embed::StateMessage<'_> {
    let ready = run.status.with_untracked(|s| s.ready() == "true");
    clock
        .player
        .with_untracked(|p| embed::state_message(id, p, ready))
}

fn post(target: &web_sys::Window, message: &str) {
    if let Ok(value) = js_sys::JSON::parse(message) {
        // The state is public: any host may read it.
        let _ = target.post_message(&value, "*");
    }
}
