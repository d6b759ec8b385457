//! How many bytes the compact store takes per event on issue 9's big runs, counted from its
//! buffers' capacities (deterministic: no timing, no allocator), beside the plain vector of
//! events it replaces. Printed, and held to at most 64 bytes an event.

use engine::start;
use shared::event_store::EventStore;
use shared::protocol::{Event, Outcome, RunRequest, TraceEvent};
use shared::scenario::big_run;

/// The page's budget for holding a trace.
const BYTES_PER_EVENT_MAX: f64 = 64.0;

/// Heap bytes of the strings one event owns.
fn owned_string_bytes(event: &Event) -> usize {
    match event {
        Event::Sent { label, .. } => label.heap_capacity(),
        Event::RowWritten {
            table, key, value, ..
        } => table.capacity() + key.capacity() + value.capacity(),
        Event::OpStarted { name, .. } => name.capacity(),
        Event::OpFinished {
            outcome, observed, ..
        } => {
            let reason = match outcome {
                Outcome::Ok => 0,
                Outcome::Failed { reason } | Outcome::Degraded { reason } => reason.capacity(),
            };
            reason
                + observed.capacity() * size_of::<shared::protocol::Observed>()
                + observed
                    .iter()
                    .map(shared::protocol::Observed::heap_capacity)
                    .sum::<usize>()
        }
        Event::Narration { text } => text.capacity(),
        Event::QueueDepth { queue, .. } => queue.capacity(),
        Event::EventHandled { event_id, .. } => event_id.capacity(),
        _ => 0,
    }
}

/// Runs `request`, filling a store and a plain vector as the page did before; returns
/// (events, store bytes, vector bytes).
fn measure(request: &RunRequest) -> (usize, usize, usize) {
    let mut sim = start(request).unwrap();
    let mut store = EventStore::new();
    let mut plain: Vec<TraceEvent> = Vec::new();
    loop {
        let more = sim.step();
        let events = sim.drain_events();
        store.extend(&events);
        plain.extend(events);
        if !more {
            break;
        }
    }
    let plain_bytes = plain.capacity() * size_of::<TraceEvent>()
        + plain
            .iter()
            .map(|e| owned_string_bytes(&e.event))
            .sum::<usize>();
    assert_eq!(store.len(), plain.len());
    (store.len(), store.heap_bytes(), plain_bytes)
}

#[test]
fn the_store_holds_the_big_runs_in_at_most_64_bytes_an_event() {
    for until_s in [200.0, 600.0] {
        let (events, store_bytes, plain_bytes) = measure(&big_run(until_s));
        let per_event = store_bytes as f64 / events as f64;
        println!(
            "big run, {until_s} s: {events} events; compact store {store_bytes} B = {per_event:.1} B/event \
             (a Vec<TraceEvent> with its strings: {:.1} B/event)",
            plain_bytes as f64 / events as f64
        );
        assert!(per_event <= BYTES_PER_EVENT_MAX, "{per_event:.1} B/event");
    }
}
