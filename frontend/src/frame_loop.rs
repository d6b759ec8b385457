//! The animation-frame loop: advances the clock, paints the message canvas, and — in benchmark
//! mode — measures each frame.
//!
//! A frame's time is measured from the start of its animation-frame callback to the end of the
//! work it causes: the clock's advance, the canvas painting (synchronous, here), and the
//! reactive updates of the other panels, which Leptos runs as tasks queued behind the advance;
//! a task queued after them marks the end. The gap between successive callbacks is recorded
//! too: it includes the browser's own layout and paint.

use crate::bench::FrameStats;
use crate::components::message_canvas;
use crate::player::Player;
use crate::state::Clock;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What the benchmark measured, once it has enough frames.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchFigures {
    /// Frames measured.
    pub frames: usize,
    /// Work per frame, median, in milliseconds.
    pub work_p50_ms: f64,
    /// Work per frame, 95th percentile.
    pub work_p95_ms: f64,
    /// Time between frames, median.
    pub interval_p50_ms: f64,
    /// Time between frames, 95th percentile.
    pub interval_p95_ms: f64,
}

/// The benchmark's figures, when the page measures.
#[derive(Clone, Copy)]
pub struct BenchResult(pub RwSignal<Option<BenchFigures>>);

struct Measuring {
    work: FrameStats,
    interval: FrameStats,
    result: BenchResult,
}

fn milliseconds_now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// Advances the clock and paints on every animation frame; measures frames when `bench` is set.
pub fn drive_clock(clock: Clock, bench: Option<BenchResult>) {
    let stopped = Rc::new(Cell::new(false));
    let measuring = bench.map(|result| {
        Rc::new(RefCell::new(Measuring {
            work: FrameStats::default(),
            interval: FrameStats::default(),
            result,
        }))
    });
    schedule_frame(clock, stopped.clone(), None, measuring);
    let stopped = SendWrapper::new(stopped);
    on_cleanup(move || stopped.set(true));
}

fn schedule_frame(
    clock: Clock,
    stopped: Rc<Cell<bool>>,
    last_frame_ms: Option<f64>,
    measuring: Option<Rc<RefCell<Measuring>>>,
) {
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
        if let Some(measuring) = measuring.clone() {
            if last_frame_ms.is_some() {
                measuring.borrow_mut().interval.record(elapsed_ms);
            }
            // Queued behind the reactive updates the advance caused.
            leptos::task::spawn_local(async move {
                let mut m = measuring.borrow_mut();
                m.work.record(milliseconds_now() - started_ms);
                if m.work.is_done() && m.result.0.with_untracked(Option::is_none) {
                    let figures = figures(&m.work, &m.interval);
                    m.result.0.set(Some(figures));
                }
            });
        }
        schedule_frame(clock, stopped, Some(started_ms), measuring);
    });
}

fn figures(work: &FrameStats, interval: &FrameStats) -> BenchFigures {
    BenchFigures {
        frames: work.len(),
        work_p50_ms: work.percentile(50.0).unwrap_or(0.0),
        work_p95_ms: work.percentile(95.0).unwrap_or(0.0),
        interval_p50_ms: interval.percentile(50.0).unwrap_or(0.0),
        interval_p95_ms: interval.percentile(95.0).unwrap_or(0.0),
    }
}
