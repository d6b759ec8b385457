//! A run computed in the page a slice at a time, so the page stays responsive, shows its
//! progress, and plays the beginning while the rest is computed; [`SlicePacer`] sizes the slices
//! so that computing keeps its share of the main thread however long the frames in between take.

use engine::Sim;
use shared::protocol::{RunRequest, TraceEvent, TraceHasher, TraceHeader};
use shared::time::Micros;

/// The simulation of one run, with the hash of what it produced so far.
pub struct Computation {
    sim: Sim,
    hasher: TraceHasher,
    events: usize,
    finished: bool,
}

impl Computation {
    /// Starts `request`, or says why it cannot start.
    pub fn start(request: &RunRequest) -> Result<Computation, String> {
        let sim = engine::start(request).map_err(|e| e.to_string())?;
        let mut hasher = TraceHasher::default();
        hasher.add_header(sim.header());
        Ok(Computation {
            sim,
            hasher,
            events: 0,
            finished: false,
        })
    }

    /// What is being run.
    pub fn header(&self) -> &TraceHeader {
        self.sim.header()
    }

    /// Runs at most `steps` pieces of work and returns the events they produced (added to the
    /// hash). Returns nothing more once [`Computation::is_finished`].
    pub fn slice(&mut self, steps: usize) -> Vec<TraceEvent> {
        for _ in 0..steps {
            if !self.sim.step() {
                self.finished = true;
                break;
            }
        }
        let events = self.sim.drain_events();
        for event in &events {
            self.hasher.add_event(event);
        }
        self.events += events.len();
        events
    }

    /// True once the run has ended and every event was handed out.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Events handed out so far.
    pub fn events(&self) -> usize {
        self.events
    }

    /// How far the run has got, from 0 to 1.
    pub fn progress(&self) -> f64 {
        let until = self.sim.header().until.max(Micros(1));
        (self.sim.now().0 as f64 / until.0 as f64).clamp(0.0, 1.0)
    }

    /// The hash of the events handed out so far: the trace's, once finished.
    pub fn hash_hex(&self) -> String {
        self.hasher.hex()
    }
}

/// The share of the main thread computing takes while the page also draws frames: the whole
/// run then takes at most about `1 / COMPUTE_SHARE` times as long as computing it in one go
/// (while the frames in between take at most `SLICE_MS_MAX × (1 − COMPUTE_SHARE) /
/// COMPUTE_SHARE`, 10 ms).
pub const COMPUTE_SHARE: f64 = 0.8;
/// The shortest slice: below it, scheduling and the views' updates cost more than it returns;
/// a slice this long and a cheap frame still fit in one frame at 60 frames a second.
pub const SLICE_MS_MIN: f64 = 12.0;
/// The longest slice: the page answers a click or a key within this, and plays at 20 frames a
/// second or more while it computes.
pub const SLICE_MS_MAX: f64 = 40.0;

/// Sizes each slice from the time the browser took since the previous one (frames, input, the
/// views' updates): a slice lasts `COMPUTE_SHARE / (1 − COMPUTE_SHARE)` times that gap, within
/// [`SLICE_MS_MIN`, `SLICE_MS_MAX`]. Fixed slices lost the race to slow frames: a frame of
/// 150 ms after every 8 ms slice left computing 5 % of the time (a run of 1.6 s took 29 s).
/// Times are in milliseconds from any origin (`performance.now()` in the page).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SlicePacer {
    started_ms: f64,
    last_slice_end_ms: Option<f64>,
    working_ms: f64,
}

impl SlicePacer {
    /// A pacer for a computation that starts at `now_ms`.
    pub fn new(now_ms: f64) -> SlicePacer {
        SlicePacer {
            started_ms: now_ms,
            last_slice_end_ms: None,
            working_ms: 0.0,
        }
    }

    /// How long a slice starting at `now_ms` may run.
    pub fn budget_ms(&self, now_ms: f64) -> f64 {
        let gap_ms = self
            .last_slice_end_ms
            .map_or(0.0, |end| (now_ms - end).max(0.0));
        (gap_ms * COMPUTE_SHARE / (1.0 - COMPUTE_SHARE)).clamp(SLICE_MS_MIN, SLICE_MS_MAX)
    }

    /// Notes a slice that ran from `start_ms` to `end_ms`.
    pub fn slice_ran(&mut self, start_ms: f64, end_ms: f64) {
        self.working_ms += (end_ms - start_ms).max(0.0);
        self.last_slice_end_ms = Some(end_ms);
    }

    /// The time computing took, by the clock: from the start to `now_ms`, frames in between
    /// included, and the part of it spent in slices. `None` when the clock did not move at all
    /// (a headless browser's virtual time stands still while a page computes), rather than a
    /// false "0 ms".
    pub fn times_ms(&self, now_ms: f64) -> Option<ComputeTimes> {
        let elapsed_ms = now_ms - self.started_ms;
        (elapsed_ms > 0.0).then_some(ComputeTimes {
            elapsed_ms,
            working_ms: self.working_ms.min(elapsed_ms),
        })
    }
}

/// How long a run took to compute in the page.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ComputeTimes {
    /// From start to finish, by the clock: what the reader waited.
    pub elapsed_ms: f64,
    /// The part of it spent computing; the rest went to frames and the views.
    pub working_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_grow_with_the_time_frames_take_within_bounds() {
        let mut pacer = SlicePacer::new(1_000.0);
        // Nothing happened in between yet: the shortest slice.
        assert_eq!(pacer.budget_ms(1_000.0), SLICE_MS_MIN);
        pacer.slice_ran(1_000.0, 1_008.0);
        // A frame of 5 ms in between: computing gets four times that.
        assert!((pacer.budget_ms(1_013.0) - 20.0).abs() < 1e-9);
        // Back to back, the shortest; after a very slow frame, the longest.
        assert_eq!(pacer.budget_ms(1_008.0), SLICE_MS_MIN);
        assert_eq!(pacer.budget_ms(1_208.0), SLICE_MS_MAX);
        // A clock read out of order never asks for a negative gap.
        assert_eq!(pacer.budget_ms(1_000.0), SLICE_MS_MIN);
    }

    #[test]
    fn computing_keeps_its_share_whatever_the_frames_take() {
        // Slices alternate with frames of a fixed cost, as in a page that draws while it
        // computes: the share of time computing stays near COMPUTE_SHARE while the frames fit
        // under the longest slice, where fixed 8 ms slices fell far below it.
        for frame_ms in [1.0, 2.0, 5.0, 10.0] {
            let mut pacer = SlicePacer::new(0.0);
            let mut now = 0.0;
            for _ in 0..200 {
                let budget = pacer.budget_ms(now);
                pacer.slice_ran(now, now + budget);
                now += budget + frame_ms;
            }
            let times = pacer.times_ms(now).unwrap();
            let share = times.working_ms / times.elapsed_ms;
            assert!(
                share >= COMPUTE_SHARE - 0.01,
                "frames of {frame_ms} ms: share {share}"
            );
            // The fixed 8 ms slices the page had before.
            let fixed_share = 8.0 / (8.0 + frame_ms);
            assert!(share > fixed_share, "frames of {frame_ms} ms");
        }
    }

    #[test]
    fn a_clock_that_stood_still_is_not_reported_as_zero() {
        let mut pacer = SlicePacer::new(500.0);
        pacer.slice_ran(500.0, 500.0);
        assert_eq!(pacer.times_ms(500.0), None);
        pacer.slice_ran(500.0, 520.0);
        assert_eq!(
            pacer.times_ms(530.0),
            Some(ComputeTimes {
                elapsed_ms: 30.0,
                working_ms: 20.0
            })
        );
    }

    #[test]
    fn slices_add_up_to_the_whole_trace_and_its_hash() {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 5,
            until_s: 20.0,
            knobs: Default::default(),
            faults: vec!["crash:Order@3+2".into()],
        };
        let whole = engine::simulate(&request).unwrap();
        let mut computation = Computation::start(&request).unwrap();
        assert_eq!(computation.header(), &whole.header);
        let mut events = Vec::new();
        let mut last_progress = 0.0;
        while !computation.is_finished() {
            events.extend(computation.slice(100));
            assert!(computation.progress() >= last_progress);
            last_progress = computation.progress();
        }
        assert_eq!(last_progress, 1.0);
        assert_eq!(computation.events(), whole.events.len());
        assert_eq!(events, whole.events);
        assert_eq!(computation.hash_hex(), whole.hash_hex());
        assert!(computation.slice(100).is_empty());
    }

    #[test]
    fn a_bad_request_says_why() {
        let request = RunRequest {
            scenario: "no-such-scenario".into(),
            seed: 1,
            until_s: 10.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let error = Computation::start(&request).err().unwrap();
        assert!(error.contains("no-such-scenario"), "{error}");
    }
}
