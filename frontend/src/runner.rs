//! Starting a run from what the settings say: simulated in the page, streamed from the backend,
//! or read from a recorded trace.

use crate::computation::{Computation, SlicePacer};
use crate::config::{RunConfig, SourceKind};
use crate::player::Player;
use crate::recorded;
use crate::source::{COMPUTE_SLICE_STEPS, RunStatus, StreamChange, StreamReceiver};
use crate::state::{Clock, RunHandle, Settings};
use crate::trace_index::TraceIndex;
use crate::ws;
use leptos::prelude::*;
use shared::protocol::{ClientFrame, LiveRole};
use shared::time::Micros;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Starts a run of what the form says (`start_run`): what the page's Run buttons and an embed's
/// `run` call. A plain copyable value rather than a Leptos `Callback`, whose stored closure type
/// the page would carry for it.
#[derive(Clone, Copy)]
pub struct Starter {
    /// The form's settings.
    pub settings: Settings,
    /// The run.
    pub run: RunHandle,
    /// The player's clock.
    pub clock: Clock,
}

impl Starter {
    /// Starts the run.
    pub fn start(self) {
        start_run(self.settings, self.run, self.clock);
    }
}

/// Runs what the settings say, from the chosen source.
pub fn start_run(settings: Settings, run: RunHandle, clock: Clock) {
    let config = settings.config.get_untracked();
    ws::disconnect();
    // Whatever computes in the page for the run shown now stops.
    next_generation();
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
            // The token of the run this page controls, if any, so Run replaces it.
            let token = run.live_role.with_untracked(|role| match role {
                Some(LiveRole::Control { token }) => Some(token.clone()),
                _ => None,
            });
            run.live_role.set(None);
            run.live_refusal.set(None);
            let ask = ClientFrame::LiveStart {
                request: config.request(),
                token,
            };
            stream_from_backend(&config, ask, run, clock);
        }
        SourceKind::Recorded => match config.trace_url.clone() {
            Some(url) => load_from_address(url, config, run, clock),
            None => {
                run.replace(None);
                clear_player(clock);
                run.status.set(RunStatus::Failed {
                    message: "Drop a trace file (JSON lines) on the page, pick one under \
                              Import, or give its address, to play a recorded run."
                        .into(),
                    hash: None,
                });
            }
        },
    }
}

fn milliseconds_now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// How often the views hear of what was computed: each time they look at the whole trace
/// again (the charts, the numbers), so not after every slice.
const COMPUTE_NOTIFY_MS: f64 = 150.0;

thread_local! {
    /// Bumped by every run started, so the slices of a run that was replaced stop.
    static RUN_GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// Starts a new run generation and returns it.
fn next_generation() -> u64 {
    RUN_GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    })
}

fn is_current(generation: u64) -> bool {
    RUN_GENERATION.with(|g| g.get() == generation)
}

/// Computes the run in slices: the map and the player start at once and play what is
/// computed while the rest is computed, with the progress on the status line.
fn run_in_page(config: &RunConfig, run: RunHandle, clock: Clock) {
    let generation = next_generation();
    match Computation::start(&config.request()) {
        Ok(computation) => {
            let end = computation.header().until;
            run.replace(Some(TraceIndex::new(computation.header().clone())));
            restart_player(clock, config, end, Micros::ZERO);
            run.status.set(RunStatus::Computing {
                events: 0,
                percent: 0,
            });
            let slicing = Slicing {
                generation,
                pacer: SlicePacer::new(milliseconds_now()),
                start_at: Some(Micros::from_secs_f64(config.start_s))
                    .filter(|start| *start > Micros::ZERO),
                notified_ms: f64::NEG_INFINITY,
            };
            compute_slice(computation, slicing, run, clock);
        }
        Err(message) => fail(run, clock, format!("This run cannot start: {message}")),
    }
}

/// What the slices of one computation carry along.
#[derive(Copy, Clone)]
struct Slicing {
    generation: u64,
    /// How long each slice runs.
    pacer: SlicePacer,
    /// Where the address asked the playhead to start, until the run has got that far.
    start_at: Option<Micros>,
    /// When the views last heard of new events.
    notified_ms: f64,
}

fn compute_slice(mut computation: Computation, mut slicing: Slicing, run: RunHandle, clock: Clock) {
    if !is_current(slicing.generation) {
        return;
    }
    let slice_started = milliseconds_now();
    let budget_ms = slicing.pacer.budget_ms(slice_started);
    // Indexing the events is part of the slice, so the budget holds for the whole of it.
    run.storage().update_value(|index| {
        let Some(index) = index else { return };
        while !computation.is_finished() && milliseconds_now() - slice_started < budget_ms {
            index.append(computation.slice(COMPUTE_SLICE_STEPS));
        }
        if computation.is_finished() {
            index.finish();
        }
    });
    let done = computation.is_finished();
    let playable = run
        .read_untracked(TraceIndex::playable_until)
        .unwrap_or_default();
    let reached = slicing.start_at.filter(|start| playable >= *start || done);
    clock.player.update(|p| {
        p.set_available(playable);
        if let Some(start) = reached {
            p.seek(start);
        }
    });
    if reached.is_some() {
        slicing.start_at = None;
    }
    let now_ms = milliseconds_now();
    let notify = done || now_ms - slicing.notified_ms >= COMPUTE_NOTIFY_MS;
    if notify {
        slicing.notified_ms = now_ms;
        run.touch();
    }
    slicing.pacer.slice_ran(slice_started, milliseconds_now());
    if done {
        run.status.set(RunStatus::Computed {
            events: computation.events(),
            hash: computation.hash_hex(),
            times: slicing.pacer.times_ms(milliseconds_now()),
        });
    } else {
        if notify {
            run.status.set(RunStatus::Computing {
                events: computation.events(),
                percent: (computation.progress() * 100.0) as u8,
            });
        }
        // The browser paints and plays in between.
        after_yielding(move || compute_slice(computation, slicing, run, clock));
    }
}

thread_local! {
    /// Continuations waiting for [`after_yielding`]'s message, first in first out.
    static AFTER_YIELDING: RefCell<VecDeque<Box<dyn FnOnce()>>> = RefCell::new(VecDeque::new());
    /// The channel whose messages run them, once made.
    static YIELD_CHANNEL: RefCell<Option<web_sys::MessagePort>> = const { RefCell::new(None) };
}

/// Runs `then` in a task of its own, after the browser had the chance to draw a frame and
/// handle input. A message to ourselves, not a zero timeout: browsers hold nested timeouts back
/// to 4 ms each, which would idle the thread a third of the time between 8 ms slices.
fn after_yielding(then: impl FnOnce() + 'static) {
    AFTER_YIELDING.with(|queue| queue.borrow_mut().push_back(Box::new(then)));
    let posted = YIELD_CHANNEL.with(|port| {
        let mut port = port.borrow_mut();
        if port.is_none() {
            *port = yield_channel();
        }
        port.as_ref()
            .is_some_and(|port| port.post_message(&wasm_bindgen::JsValue::NULL).is_ok())
    });
    if !posted {
        set_timeout(run_next_continuation, std::time::Duration::ZERO);
    }
}

fn run_next_continuation() {
    let next = AFTER_YIELDING.with(|queue| queue.borrow_mut().pop_front());
    if let Some(next) = next {
        next();
    }
}

/// A message channel whose first port runs the next continuation; returns the port to post to.
fn yield_channel() -> Option<web_sys::MessagePort> {
    use wasm_bindgen::JsCast;
    let channel = web_sys::MessageChannel::new().ok()?;
    let on_message = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(run_next_continuation);
    channel
        .port1()
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The channel lives as long as the page.
    on_message.forget();
    Some(channel.port2())
}

fn fail(run: RunHandle, clock: Clock, message: String) {
    run.replace(None);
    clear_player(clock);
    run.status.set(RunStatus::Failed {
        message,
        hash: None,
    });
}

/// Shows a whole trace from the position the settings say.
fn show_complete(index: TraceIndex, config: &RunConfig, run: RunHandle, clock: Clock) {
    let end = index.header().until.max(index.known_until());
    run.replace(Some(index));
    restart_player(clock, config, end, end);
}

/// Plays a recorded trace file's text, read from `from` (a file name or an address).
pub fn show_recorded(text: &str, from: &str, settings: Settings, run: RunHandle, clock: Clock) {
    ws::disconnect();
    next_generation();
    match recorded::read_trace(text) {
        Ok((index, hash)) => {
            let events = index.events().len();
            let config = settings.config.get_untracked();
            show_complete(index, &config, run, clock);
            run.status.set(RunStatus::Recorded {
                events,
                hash,
                from: from.to_string(),
            });
        }
        Err(message) => fail(run, clock, format!("Cannot play {from}: {message}.")),
    }
}

fn load_from_address(url: String, config: RunConfig, run: RunHandle, clock: Clock) {
    run.replace(None);
    clear_player(clock);
    run.status.set(RunStatus::Connecting);
    leptos::task::spawn_local(async move {
        let name = recorded::name_from_url(&url).to_string();
        match fetch_text(&url).await {
            Ok(text) => match recorded::read_trace(&text) {
                Ok((index, hash)) => {
                    let events = index.events().len();
                    show_complete(index, &config, run, clock);
                    run.status.set(RunStatus::Recorded {
                        events,
                        hash,
                        from: name,
                    });
                }
                Err(message) => fail(run, clock, format!("Cannot play {name}: {message}.")),
            },
            Err(message) => fail(run, clock, format!("Cannot load {url}: {message}.")),
        }
    });
}

/// The body of `url` as text, or why not.
async fn fetch_text(url: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let network = |_| {
        "the request failed (no network, or the server does not allow this page to read it)"
            .to_string()
    };
    let response = JsFuture::from(window().fetch_with_str(url))
        .await
        .map_err(network)?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| "no response")?;
    if !response.ok() {
        return Err(format!("the server answered {}", response.status()));
    }
    let body = response.text().map_err(network)?;
    let text = JsFuture::from(body).await.map_err(network)?;
    text.as_string()
        .ok_or_else(|| "the body is not text".to_string())
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
                StreamChange::Role(ref role) => {
                    run.live_role.set(Some(role.clone()));
                    run.live_refusal.set(None);
                }
                StreamChange::Refused(ref message) => run.live_refusal.set(Some(message.clone())),
            }
            run.touch();
            let status = receiver.status();
            if run.status.with_untracked(|s| s != status) {
                run.status.set(status.clone());
            }
        });
    ws::connect(&ask, run.storage(), on_change);
}

/// A clock with nothing to play, keeping the speed and looping the player already had.
fn clear_player(clock: Clock) {
    clock.player.update(|player| {
        let mut fresh = Player::new(Micros::ZERO);
        fresh.set_speed(player.speed());
        fresh.set_looping(player.is_looping());
        *player = fresh;
    });
}

/// A fresh clock for a run ending at `end`, known up to `available`, keeping the speed and
/// looping the player already had, starting where the settings say.
fn restart_player(clock: Clock, config: &RunConfig, end: Micros, available: Micros) {
    clock.player.update(|player| {
        let mut fresh = Player::new(end);
        fresh.set_speed(player.speed());
        fresh.set_looping(player.is_looping());
        fresh.set_available(available);
        fresh.seek(Micros::from_secs_f64(config.start_s));
        if config.autoplay {
            fresh.play();
        }
        *player = fresh;
    });
}
