//! Play and pause, speed, the clock and the timeline.

use crate::format;
use crate::player::{Player, SPEEDS};
use crate::state::{Clock, Settings};
use leptos::prelude::*;
use shared::time::Micros;

/// The player's controls.
#[component]
pub fn PlayerBar() -> impl IntoView {
    let clock = expect_context::<Clock>();
    let config = expect_context::<Settings>().config;
    let player = clock.player;
    let now = clock.now;
    let playing = Memo::new(move |_| player.with(Player::is_playing));
    let at_end = Memo::new(move |_| player.with(Player::at_end));
    let end = Memo::new(move |_| player.with(Player::end));
    let available = Memo::new(move |_| player.with(Player::available));
    let speed = Memo::new(move |_| player.with(Player::speed));
    let play_label = move || {
        if playing.get() {
            "Pause"
        } else if at_end.get() {
            "Replay"
        } else {
            "Play"
        }
    };
    let on_speed = move |ev: leptos::ev::Event| {
        if let Ok(value) = event_target_value(&ev).parse::<f64>() {
            player.update(|p| p.set_speed(value));
            config.update(|c| c.speed = value);
        }
    };
    let on_seek = move |ev: leptos::ev::Event| {
        if let Ok(ms) = event_target_value(&ev).parse::<f64>() {
            player.update(|p| p.seek(Micros::from_millis_f64(ms)));
        }
    };
    // How much of the run is known, for the timeline's buffered band while streaming.
    let known_percent = move || {
        let end = end.get().0.max(1) as f64;
        format!("{:.2}%", available.get().0 as f64 * 100.0 / end)
    };
    view! {
        <section class="player card" aria-label="Player">
            <button
                id="play"
                type="button"
                class="play"
                class:playing=move || playing.get()
                aria-pressed=move || if playing.get() { "true" } else { "false" }
                on:click=move |_| player.update(Player::toggle)
            >
                <span class="icon" aria-hidden="true">
                    {move || if playing.get() { "❚❚" } else if at_end.get() { "↺" } else { "▶" }}
                </span>
                <span class="play-label">{play_label}</span>
            </button>
            <label class="speed">
                <span class="label">"Speed"</span>
                <select id="speed" on:change=on_speed>
                    {SPEEDS
                        .iter()
                        .map(|&s| {
                            view! {
                                <option value=s.to_string() selected=move || speed.get() == s>
                                    {format::speed(s)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <output
                id="clock"
                class="clock"
                aria-live="off"
                data-now-us=move || now.get().0.to_string()
            >
                "t = "
                <strong>{move || format::clock(now.get())}</strong>
                {move || format!(" / {}", format::run_length(end.get()))}
            </output>
            <div class="timeline" style=move || format!("--known: {}", known_percent())>
                <input
                    id="seek"
                    type="range"
                    aria-label="Time in the run"
                    min="0"
                    max=move || (end.get().0 / 1_000).to_string()
                    step="1"
                    prop:value=move || (now.get().0 / 1_000).to_string()
                    on:input=on_seek
                />
            </div>
        </section>
    }
}
