//! The workload the engine benchmark runs: issue 9's big request/response run (50 reads a
//! second, 8 products per order, a pool of 64 connections, 1 ms links, no outage, 200 s: about
//! 380,000 trace events). Natively it is timed by `engine-bench`; compiled to WebAssembly it
//! exports [`simulate_big_run`] for `bench/wasm.mjs` to time under Node; `bench/simpy_twin.py`
//! models the same workload in SimPy.

use shared::protocol::RunRequest;

/// The run's length, in seconds.
pub const UNTIL_S: f64 = 200.0;

/// The big run: request/response at its highest read rate and fan-out, no fault.
pub fn big_run() -> RunRequest {
    shared::scenario::big_run(UNTIL_S)
}

/// Pieces of work between two hand-outs of events: the page's own slice
/// (`frontend::source::COMPUTE_SLICE_STEPS`).
const SLICE_STEPS: usize = 256;

/// Simulates the big run as the page drives the engine, a slice of work at a time with its events
/// handed out after each, and keeps every event; returns how many it recorded (0 if it could not
/// start). Exported for WebAssembly hosts.
/// The events are kept, slice by slice, as the page keeps them (it appends each slice to its
/// store) rather than in one vector grown to the whole run.
#[unsafe(no_mangle)]
pub extern "C" fn simulate_big_run() -> f64 {
    let Ok(mut sim) = engine::start(&big_run()) else {
        return 0.0;
    };
    let mut slices = Vec::new();
    let mut events = 0;
    while !sim.is_finished() {
        for _ in 0..SLICE_STEPS {
            if !sim.step() {
                break;
            }
        }
        let slice = sim.drain_events();
        events += slice.len();
        slices.push(slice);
    }
    events as f64
}
