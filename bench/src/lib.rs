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

/// Simulates the big run and returns how many trace events it recorded (0 if it could not
/// start). Exported for WebAssembly hosts.
#[unsafe(no_mangle)]
pub extern "C" fn simulate_big_run() -> f64 {
    shared::scenario::simulate(&big_run()).map_or(0.0, |trace| trace.events.len() as f64)
}
