//! Same scenario + seed + knobs → the same trace, byte for byte; and the trace changes with them.
//! (Native against WebAssembly is checked end to end in the browser: tests/e2e.rs.)

use engine::{simulate, start};
use shared::protocol::{RunRequest, Trace};
use shared::scenario::catalog;

fn request(scenario: &str, seed: u64) -> RunRequest {
    RunRequest {
        scenario: scenario.into(),
        seed,
        until_s: 30.0,
        knobs: Default::default(),
        faults: Vec::new(),
    }
}

#[test]
fn the_same_inputs_give_the_same_trace() {
    for spec in catalog() {
        for seed in [0, 1, 42, u64::MAX] {
            println!("{} seed {seed}", spec.name);
            let first = simulate(&request(spec.name, seed)).unwrap().to_jsonl();
            let second = simulate(&request(spec.name, seed)).unwrap().to_jsonl();
            assert_eq!(first, second);
        }
    }
}

#[test]
fn other_seeds_or_knobs_give_other_traces() {
    for spec in catalog() {
        let base = simulate(&request(spec.name, 1)).unwrap().hash_hex();
        assert_ne!(simulate(&request(spec.name, 2)).unwrap().hash_hex(), base);
        let mut changed = request(spec.name, 1);
        changed.knobs.insert("link_latency_ms".into(), 41.0);
        assert_ne!(simulate(&changed).unwrap().hash_hex(), base);
    }
}

#[test]
fn stepping_in_slices_gives_the_trace_of_one_run() {
    for spec in catalog() {
        let whole = simulate(&request(spec.name, 9)).unwrap();
        let mut sim = start(&request(spec.name, 9)).unwrap();
        let mut events = Vec::new();
        while sim.step() {
            if sim.now().0.is_multiple_of(7) {
                events.extend(sim.drain_events());
            }
        }
        events.extend(sim.drain_events());
        let sliced = Trace {
            header: sim.header().clone(),
            events,
        };
        assert_eq!(sliced.hash_hex(), whole.hash_hex());
        assert_eq!(
            Trace::from_jsonl(&whole.to_jsonl()).unwrap(),
            whole,
            "JSON lines read back to the same trace"
        );
    }
}
