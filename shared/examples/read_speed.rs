//! Times `Trace::from_jsonl` on a big trace (request-response, seed 1, 200 s of run time):
//! `cargo run -p shared --release --example read_speed`.

use engine::simulate;
use shared::protocol::{RunRequest, Trace};
use std::time::Instant;

fn main() {
    let trace = simulate(&RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: 200.0,
        knobs: Default::default(),
        faults: vec![],
    })
    .unwrap();
    let text = trace.to_jsonl();
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let start = Instant::now();
        let back = Trace::from_jsonl(&text).unwrap();
        best = best.min(start.elapsed().as_secs_f64());
        assert_eq!(back.events.len(), trace.events.len());
    }
    println!(
        "{} events, {} bytes: best of 7 {:.1} ms ({:.0} MB/s)",
        trace.events.len(),
        text.len(),
        best * 1e3,
        text.len() as f64 / best / 1e6
    );
}
