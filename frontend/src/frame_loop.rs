//! The animation-frame loop: advances the clock and paints the message canvas, once per frame.
//! (How long frames take is measured from outside, by `scripts/bench.sh`.)

use crate::components::message_canvas;
use crate::player::Player;
use crate::state::Clock;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use std::cell::Cell;
use std::rc::Rc;

fn milliseconds_now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// Advances the clock and paints on every animation frame.
pub fn drive_clock(clock: Clock) {
    let stopped = Rc::new(Cell::new(false));
    schedule_frame(clock, stopped.clone(), None);
    let stopped = SendWrapper::new(stopped);
    on_cleanup(move || stopped.set(true));
}

fn schedule_frame(clock: Clock, stopped: Rc<Cell<bool>>, last_frame_ms: Option<f64>) {
    request_animation_frame(move || {
        if stopped.get() {
            return;
        }
        let started_ms = milliseconds_now();
        let elapsed_ms = last_frame_ms.map_or(0.0, |last| started_ms - last);
        if clock.player.with_untracked(Player::is_playing) {
            clock.player.update(|p| {
                p.advance(elapsed_ms);
            });
        }
        message_canvas::paint();
        schedule_frame(clock, stopped, Some(started_ms));
    });
}
