//! Play and pause, step between events, loop, speed, the clock and the timeline.

use crate::components::Computed;
use crate::components::{attr, listen, reactive};
use crate::format;
use crate::player::{Player, SPEED_POSITIONS, position_of_speed, speed_at_position};
use crate::state::page;
use leptos::prelude::*;
use shared::decimal_text::parse_f64;
use shared::float_text::fixed;
use shared::time::Micros;

/// The player's controls.
#[component]
pub fn PlayerBar() -> impl IntoView {
    let clock = page().clock;
    let run = page().run;
    let player = clock.player;
    let now = clock.now;
    let playing = Computed::compared(move |_| player.with(Player::is_playing));
    let looping = Computed::compared(move |_| player.with(Player::is_looping));
    let end = Computed::compared(move |_| player.with(Player::end));
    let available = Computed::compared(move |_| player.with(Player::available));
    let speed = Computed::compared(move |_| player.with(Player::speed));
    // Nothing to play: no run yet, or one that could not be shown (the status line says why).
    let empty = Computed::compared(move |_| end.get() == Micros::ZERO);
    // At the end of a run, play starts it again; with nothing to play there is nothing to replay.
    let offers_replay = Computed::compared(move |_| player.with(Player::at_end) && !empty.get());
    let play_label = move || {
        if playing.get() {
            "Pause"
        } else if offers_replay.get() {
            "Replay"
        } else {
            "Play"
        }
        .to_string()
    };
    let on_speed = move |ev: leptos::ev::Event| {
        if let Ok(position) = event_target_value(&ev).parse::<u32>() {
            player.update(|p| p.set_speed(speed_at_position(position)));
        }
    };
    let on_seek = move |ev: leptos::ev::Event| {
        if let Some(ms) = parse_f64(&event_target_value(&ev)) {
            player.update(|p| p.seek(Micros::from_millis_f64(ms)));
        }
    };
    // How much of the run is known, for the timeline's buffered band while streaming.
    let known_percent = move || {
        let end = end.get().0.max(1) as f64;
        format!("{}%", fixed(available.get().0 as f64 * 100.0 / end, 2))
    };
    view! {
        <section class="player card" {attr("aria-label", "Player")}>
            <div class="transport" {attr("role", "group")} {attr("aria-label", "Transport")}>
                <button
                    {attr("id", "step-back")}
                    {attr("disabled", reactive(move || empty.get()))}
                    {attr("type", "button")}
                    class="step"
                    {attr("title", "Previous event (←)")}
                    {attr("aria-label", "Previous event")}
                    {attr("aria-keyshortcuts", "ArrowLeft")}
                    {listen::<leptos::ev::MouseEvent>("click", move |_| clock.step_event(run, false))}
                >
                    <svg class="icon-svg" viewBox="0 0 16 16" aria-hidden="true">
                        <path d="M3 2h2v12H3zM14 2v12L6 8z"/>
                    </svg>
                </button>
                <button
                    {attr("id", "play")}
                    {attr("disabled", reactive(move || empty.get()))}
                    {attr("type", "button")}
                    class="play"
                    class:playing=move || playing.get()
                    {attr("aria-pressed", reactive(move || playing.get().to_string()))}
                    {attr("aria-keyshortcuts", "Space")}
                    {listen::<leptos::ev::MouseEvent>("click", move |_| player.update(Player::toggle))}
                >
                    <span class="icon" {attr("aria-hidden", "true")}>
                        {move || if playing.get() { "❚❚" } else if offers_replay.get() { "↺" } else { "▶" }.to_string()}
                    </span>
                    <span class="play-label">{reactive(play_label)}</span>
                </button>
                <button
                    {attr("id", "step-forward")}
                    {attr("disabled", reactive(move || empty.get()))}
                    {attr("type", "button")}
                    class="step"
                    {attr("title", "Next event (→)")}
                    {attr("aria-label", "Next event")}
                    {attr("aria-keyshortcuts", "ArrowRight")}
                    {listen::<leptos::ev::MouseEvent>("click", move |_| clock.step_event(run, true))}
                >
                    <svg class="icon-svg" viewBox="0 0 16 16" aria-hidden="true">
                        <path d="M11 2h2v12h-2zM2 2v12l8-6z"/>
                    </svg>
                </button>
                <button
                    {attr("id", "loop")}
                    {attr("type", "button")}
                    class="step loop"
                    {attr("title", "Loop (L)")}
                    {attr("aria-label", "Loop")}
                    {attr("aria-keyshortcuts", "L")}
                    {attr("aria-pressed", reactive(move || looping.get().to_string()))}
                    {listen::<leptos::ev::MouseEvent>("click", move |_| player.update(|p| p.set_looping(!p.is_looping())))}
                >
                    <svg class="icon-svg" viewBox="0 0 16 16" aria-hidden="true">
                        <path
                            d="M8 2.5a5.5 5.5 0 1 1-5.2 3.7"
                            fill="none"
                            stroke="currentColor"
                            stroke-width="1.8"
                        />
                        <path d="M1 2.5l5 .5-3 4z"/>
                    </svg>
                </button>
            </div>
            <label class="speed">
                <span class="label">"Speed"</span>
                <input
                    {attr("id", "speed")}
                    {attr("type", "range")}
                    {attr("min", "0")}
                    {attr("max", SPEED_POSITIONS.to_string())}
                    {attr("step", "1")}
                    {attr("aria-keyshortcuts", "+ -")}
                    {attr("aria-valuetext", reactive(move || format::speed(speed.get())))}
                    prop:value=move || position_of_speed(speed.get()).to_string()
                    {listen::<leptos::ev::Event>("input", on_speed)}
                />
                <output {attr("id", "speed-value")} class="speed-value">{move || format::speed(speed.get())}</output>
            </label>
            <output
                {attr("id", "clock")}
                class="clock"
                {attr("aria-live", "off")}
                data-now-us=move || now.get().0.to_string()
            >
                "t = "
                <strong>{move || format::clock(now.get())}</strong>
                {move || format!(" / {}", format::run_length(end.get()))}
            </output>
            // Through CSSOM (`style.setProperty`), not a `style` attribute: the page's
            // Content-Security-Policy (`style-src 'self'`) refuses inline style attributes.
            <div class="timeline" style=("--known", move || known_percent())>
                <input
                    {attr("id", "seek")}
                    {attr("type", "range")}
                    {attr("aria-label", "Time in the run")}
                    {attr("aria-valuetext", reactive(move || format::clock(now.get())))}
                    {attr("min", "0")}
                    {attr("max", reactive(move || (end.get().0 / 1_000).to_string()))}
                    {attr("step", "1")}
                    prop:value=move || (now.get().0 / 1_000).to_string()
                    {listen::<leptos::ev::Event>("input", on_seek)}
                />
            </div>
        </section>
    }
    .into_inner()
}
