//! Counts the heap allocations the engine makes per trace event on the benchmark's big run, with
//! a counting allocator around the system's: `cargo run --release -p crosstalk-bench --example
//! allocations`. In the page's WebAssembly each allocation and free is a call into dlmalloc, a
//! sixth of the engine's time before issue 9's engine pass, so this is the figure to bring down.
//! The count is the same on every machine and every run, unlike the timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static REALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let (allocations, reallocations) = (ALLOCATIONS.load(Relaxed), REALLOCATIONS.load(Relaxed));
    let events = crosstalk_bench::simulate_big_run();
    let allocations = ALLOCATIONS.load(Relaxed) - allocations;
    let reallocations = REALLOCATIONS.load(Relaxed) - reallocations;
    println!(
        "{events} events: {allocations} allocations ({:.3} per event), {reallocations} reallocations ({:.3} per event)",
        allocations as f64 / events,
        reallocations as f64 / events
    );
}
