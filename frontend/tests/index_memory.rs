//! Everything the page's index allocates for each scenario's heaviest run (issue 9: at most 64
//! bytes an event), counted by a counting global allocator, and how long the player's seeks
//! take on those runs.
//!
//! Run with `cargo test --release -p frontend --test index_memory -- --nocapture` for the
//! timings (a debug build counts the same bytes, only slower). In WebAssembly this compiles to
//! nothing: the wasm tests (`tests/wasm.rs`) measure the page's memory there.

#![cfg(not(target_arch = "wasm32"))]

use engine::start;
use frontend::trace_index::TraceIndex;
use shared::scenario::{big_run, heaviest_run_label, heaviest_runs};
use shared::time::Micros;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes live. The only way to see every byte the index
/// allocates (its maps' nodes, the worlds' rows and strings) without trusting a hand count.
struct Counting;

/// Bytes allocated and not yet freed, by every thread. This binary holds one test, so while it
/// runs no other test allocates.
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only a counter is updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work` and returns its result with the bytes it left allocated (negative when it
/// freed more than it kept).
fn counted<T>(work: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE.load(Relaxed);
    let result = work();
    (result, LIVE.load(Relaxed) - before)
}

/// What one heaviest run costs the index.
struct Measured {
    events: usize,
    /// Everything the index holds once played to the end, per event.
    bytes_per_event: f64,
    /// One copy of the world at the end, alone (as a snapshot would own it), per event.
    world_bytes_per_event: f64,
    /// A seek from the end back to the middle, and from the middle to the end.
    seek_to_middle: Duration,
    seek_to_end: Duration,
}

/// Computes `request` in the page's slices of 250 ms, indexing each slice as the page does,
/// plays the index to the end and seeks back and forth; counts only what the index's own calls
/// leave allocated (the engine's memory is not the index's).
fn measure(request: &shared::protocol::RunRequest) -> Measured {
    let mut sim = start(request).unwrap();
    let (mut index, mut index_bytes) = counted(|| TraceIndex::new(sim.header().clone()));
    let mut slice_end = Micros::ZERO;
    while !sim.is_finished() {
        slice_end = slice_end + Micros::from_millis(250);
        sim.run_until(slice_end);
        let slice = sim.drain_events();
        // The index is handed copies, which it drops, so the slice's own bytes are not counted.
        index_bytes += counted(|| index.append(slice.iter().cloned())).1;
    }
    drop(sim);
    index_bytes += counted(|| index.finish()).1;
    let end = index.known_until();
    let middle = Micros(end.0 / 2);
    index_bytes += counted(|| index.fold_to(end)).1;
    let events = index.events().len();
    let world_bytes = counted(|| std::mem::forget(index.state().clone())).1;
    let seek_to_middle = seek_times(&mut index, end, middle);
    let seek_to_end = seek_times(&mut index, middle, end);
    index_bytes += counted(|| index.fold_to(end)).1;
    let per_event = |bytes: isize| bytes as f64 / events as f64;
    Measured {
        events,
        bytes_per_event: per_event(index_bytes),
        world_bytes_per_event: per_event(world_bytes),
        seek_to_middle,
        seek_to_end,
    }
}

/// The median of five seeks from `from` to `to`, each starting with the playhead at `from`.
fn seek_times(index: &mut TraceIndex, from: Micros, to: Micros) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            index.fold_to(from);
            let started = Instant::now();
            index.fold_to(to);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

#[test]
fn the_index_holds_each_scenarios_heaviest_run_in_at_most_64_bytes_an_event() {
    // Issue 9's big run (request/response without renames), as the README's table counts it.
    for until_s in [200.0, 600.0] {
        let measured = measure(&big_run(until_s));
        println!(
            "big run, {until_s} s: {} events, the index {:.1} B/event",
            measured.events, measured.bytes_per_event
        );
        assert!(measured.bytes_per_event <= 64.0);
    }
    // Every run is measured before any is judged, so a failure names all the runs over.
    let mut over = Vec::new();
    for request in heaviest_runs() {
        let label = heaviest_run_label(&request);
        let measured = measure(&request);
        println!(
            "{label}: {} events, the index {:.1} B/event (one world {:.1} B/event); \
             seek end → middle {:.1} ms, middle → end {:.1} ms",
            measured.events,
            measured.bytes_per_event,
            measured.world_bytes_per_event,
            measured.seek_to_middle.as_secs_f64() * 1e3,
            measured.seek_to_end.as_secs_f64() * 1e3,
        );
        if measured.bytes_per_event > 64.0 {
            over.push(format!("{label}: {:.1}", measured.bytes_per_event));
        }
    }
    assert!(over.is_empty(), "over 64 B/event: {over:#?}");
}
