//! The page: reads the URL, runs the chosen source, drives the clock with animation frames, and
//! lays out the panels.

use crate::components::compare::{CompareView, open_scenario};
use crate::components::controls::ControlBar;
use crate::components::event_log::EventLog;
use crate::components::faults::FaultsPanel;
use crate::components::live_controls::LiveControls;
use crate::components::map::ServiceMap;
use crate::components::metrics::MetricsPanel;
use crate::components::player_bar::PlayerBar;
use crate::components::tables::TablesPanel;
use crate::config::{RunConfig, SourceKind};
use crate::player::Player;
use crate::source::{RunStatus, StreamChange, StreamReceiver, compute_in_page};
use crate::state::{Clock, RunHandle, Settings};
use crate::ws;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use shared::protocol::ClientFrame;
use shared::time::Micros;
use std::cell::Cell;
use std::rc::Rc;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let query = window().location().search().unwrap_or_default();
    let (config, notes) = RunConfig::from_query(&query);
    let run = RunHandle::new();
    let clock = Clock::new(run);
    clock.player.update(|p| p.set_speed(config.speed));
    let settings = Settings {
        config: RwSignal::new(config),
        form_epoch: RwSignal::new(0),
    };
    provide_context(run);
    provide_context(clock);
    provide_context(settings);

    let start = Callback::new(move |()| start_run(settings, run, clock));
    let open = Callback::new(move |scenario: String| {
        open_scenario(settings, &scenario);
        start.run(());
        window().scroll_to_with_x_and_y(0.0, 0.0);
    });
    drive_clock(clock);
    listen_to_keys(clock);
    // Paint the page first, then compute: the status line says "Computing…" meanwhile.
    set_timeout(move || start.run(()), std::time::Duration::ZERO);

    let spec = move || settings.config.with(|c| c.spec());
    view! {
        <header class="masthead">
            <div class="brand">
                <h1>"Crosstalk"</h1>
                <p class="tagline">"Watch microservices share data."</p>
            </div>
            <div class="lesson">
                <h2 id="scenario-title">{move || spec().title}</h2>
                <p id="lesson">{move || spec().lesson}</p>
            </div>
        </header>
        <main>
            <ControlBar on_run=start/>
            {(!notes.is_empty()).then(|| view! { <p class="notice" role="note">{notes.join(" ")}</p> })}
            <PlayerBar/>
            <LiveControls/>
            <StatusLine/>
            <div class="stage">
                <ServiceMap/>
                <MetricsPanel/>
            </div>
            <FaultsPanel on_run=start/>
            <div class="panels">
                <TablesPanel/>
                <EventLog/>
            </div>
            <CompareView on_open=open/>
        </main>
        <footer class="colophon">
            <p>
                "Every run is deterministic: the same scenario, seed and knobs give the same trace, \
                 in the page or from the backend. Share the address to share the run."
            </p>
        </footer>
    }
}

/// The status line and the trace's hash.
#[component]
fn StatusLine() -> impl IntoView {
    let run = expect_context::<RunHandle>();
    let status = run.status;
    view! {
        <p
            id="status"
            role="status"
            class="status"
            class:problem=move || status.with(RunStatus::is_problem)
        >
            <span class="status-text">{move || status.with(|s| s.line_parts().0)}</span>
            " "
            <code
                id="trace-hash"
                title="The trace's hash: equal runs have equal hashes"
                data-ready=move || status.with(RunStatus::ready)
            >
                {move || status.with(|s| s.hash().to_string())}
            </code>
            <span class="status-text">{move || status.with(|s| s.line_parts().1)}</span>
        </p>
    }
}

/// Runs what the form says, from the chosen source, and puts it in the address bar.
fn start_run(settings: Settings, run: RunHandle, clock: Clock) {
    let config = settings.config.get_untracked();
    remember_in_address(&config);
    ws::disconnect();
    match config.source {
        SourceKind::Sim => run_in_page(&config, run, clock),
        SourceKind::Backend => {
            let ask = ClientFrame::Run(config.request());
            stream_from_backend(&config, ask, run, clock);
        }
        SourceKind::Live => {
            // A live run happens in real time: watch it at 1× so the controls' effects show
            // as they happen (the speed can still be changed).
            clock.player.update(|p| p.set_speed(1.0));
            let ask = ClientFrame::LiveStart(config.request());
            stream_from_backend(&config, ask, run, clock);
        }
    }
}

fn remember_in_address(config: &RunConfig) {
    if let Ok(history) = window().history() {
        // Keeping the address in step is a convenience; a refusal changes nothing that matters.
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&config.to_query()),
        );
    }
}

fn milliseconds_now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

fn run_in_page(config: &RunConfig, run: RunHandle, clock: Clock) {
    let started = milliseconds_now();
    match compute_in_page(&config.request()) {
        Ok((index, hash)) => {
            let events = index.events().len();
            let end = index.header().until;
            run.replace(Some(index));
            restart_player(clock, config, end, end);
            run.status.set(RunStatus::Computed {
                events,
                hash,
                compute_ms: Some(milliseconds_now() - started),
            });
        }
        Err(message) => {
            run.replace(None);
            clear_player(clock);
            run.status.set(RunStatus::Failed {
                message: format!("This run cannot start: {message}"),
                hash: None,
            });
        }
    }
}

fn stream_from_backend(config: &RunConfig, ask: ClientFrame, run: RunHandle, clock: Clock) {
    run.replace(None);
    clear_player(clock);
    run.status.set(RunStatus::Connecting);
    let config_for_frames = config.clone();
    // The address may ask to start later than what has arrived: seek there once it has.
    let start_at = Micros::from_secs_f64(config.start_s);
    let pending_start = Rc::new(Cell::new(None::<Micros>));
    let on_change: ws::OnChange =
        Rc::new(move |change: StreamChange, receiver: &StreamReceiver| {
            let (end, playable) = run
                .read(|index| (index.header().until, index.playable_until()))
                .unwrap_or_default();
            match change {
                StreamChange::NewTrace => {
                    restart_player(clock, &config_for_frames, end, playable);
                    // After a resync the playhead goes back where it was; else where the
                    // address says.
                    let resumed = pending_start.take();
                    pending_start.set(resumed.or((start_at > Micros::ZERO).then_some(start_at)));
                }
                StreamChange::MoreEvents | StreamChange::Complete => {
                    clock.player.update(|p| p.set_available(playable));
                    let reached = |start: &Micros| playable >= *start || playable >= end;
                    if let Some(start) = pending_start.get().filter(reached) {
                        pending_start.set(None);
                        clock.player.update(|p| p.seek(start));
                    }
                }
                StreamChange::Failed => {}
                // The run comes again from its header: pick up where the viewer was.
                StreamChange::Resynced => {
                    pending_start.set(Some(clock.player.with_untracked(Player::now)));
                }
            }
            run.touch();
            let status = receiver.status();
            if run.status.with_untracked(|s| s != status) {
                run.status.set(status.clone());
            }
        });
    ws::connect(&ask, run.storage(), on_change);
}

/// A clock with nothing to play, at the speed the player already had.
fn clear_player(clock: Clock) {
    clock.player.update(|player| {
        let speed = player.speed();
        *player = Player::new(Micros::ZERO);
        player.set_speed(speed);
    });
}

/// A fresh clock for a run ending at `end`, known up to `available`, at the speed the player
/// already had, starting where the address says.
fn restart_player(clock: Clock, config: &RunConfig, end: Micros, available: Micros) {
    clock.player.update(|player| {
        let speed = player.speed();
        *player = Player::new(end);
        player.set_speed(speed);
        player.set_available(available);
        player.seek(Micros::from_secs_f64(config.start_s));
        if config.autoplay {
            player.play();
        }
    });
}

/// Advances the clock on every animation frame while it plays.
fn drive_clock(clock: Clock) {
    let stopped = Rc::new(Cell::new(false));
    let last_frame_ms: Rc<Cell<Option<f64>>> = Rc::new(Cell::new(None));
    schedule_frame(clock, stopped.clone(), last_frame_ms);
    let stopped = SendWrapper::new(stopped);
    on_cleanup(move || stopped.set(true));
}

fn schedule_frame(clock: Clock, stopped: Rc<Cell<bool>>, last_frame_ms: Rc<Cell<Option<f64>>>) {
    request_animation_frame(move || {
        if stopped.get() {
            return;
        }
        let now_ms = milliseconds_now();
        let elapsed_ms = last_frame_ms
            .replace(Some(now_ms))
            .map_or(0.0, |last| now_ms - last);
        if clock.player.with_untracked(Player::is_playing) {
            clock.player.update(|p| {
                p.advance(elapsed_ms);
            });
        }
        schedule_frame(clock, stopped, last_frame_ms);
    });
}

/// Space or `k` plays and pauses; arrows step a second (a tenth with Shift), when no field has
/// the focus.
fn listen_to_keys(clock: Clock) {
    let handle = window_event_listener(leptos::ev::keydown, move |event| {
        if event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        let in_field = event
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| {
                matches!(
                    el.tag_name().as_str(),
                    "INPUT" | "SELECT" | "TEXTAREA" | "BUTTON" | "SUMMARY"
                )
            });
        if in_field {
            return;
        }
        let step = if event.shift_key() {
            Micros::from_millis(100)
        } else {
            Micros::from_secs(1)
        };
        match event.key().as_str() {
            " " | "k" => clock.player.update(Player::toggle),
            "ArrowRight" => clock.player.update(|p| p.seek(p.now() + step)),
            "ArrowLeft" => clock
                .player
                .update(|p| p.seek(p.now().saturating_sub(step))),
            _ => return,
        }
        event.prevent_default();
    });
    on_cleanup(move || handle.remove());
}
