//! A run computed in the page a slice at a time, so the page stays responsive, shows its
//! progress, and plays the beginning while the rest is computed.

use shared::protocol::{RunRequest, TraceEvent, TraceHasher, TraceHeader};
use shared::sim::Sim;
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
        let sim = shared::scenario::start(request).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn slices_add_up_to_the_whole_trace_and_its_hash() {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 5,
            until_s: 20.0,
            knobs: BTreeMap::new(),
            faults: vec!["crash:Order@3+2".into()],
        };
        let whole = shared::scenario::simulate(&request).unwrap();
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
            knobs: BTreeMap::new(),
            faults: Vec::new(),
        };
        let error = Computation::start(&request).err().unwrap();
        assert!(error.contains("no-such-scenario"), "{error}");
    }
}
