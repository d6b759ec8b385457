//! The folded world state at any point of a trace, with snapshots so that seeking backwards is
//! instant: going back restores the nearest earlier snapshot and applies only the events after
//! it, instead of folding the whole trace again.

use shared::event_store::EventStore;
use shared::fold::WorldState;
use shared::protocol::TraceHeader;

/// A snapshot is first kept every this many events.
pub const SNAPSHOT_EVERY_EVENTS: usize = 500;
/// The most snapshots kept. Past it the spacing doubles and every other snapshot goes, so a run
/// of any length holds at most this many copies of the world, and a backward seek applies at
/// most one spacing's worth of events: at most `2 × events / SNAPSHOTS_MAX` (128,000 for a run of
/// 1–2 M events, some tens of milliseconds of folding). Each copy of the world grows with
/// the run (every operation's name and latency), so the copies cost about as many bytes per
/// event as there are snapshots: 16 keeps them near a quarter of the page's budget of 64.
pub const SNAPSHOTS_MAX: usize = 16;

/// A copy of the world kept for seeking.
#[derive(Clone, Debug)]
struct Snapshot {
    world: WorldState,
    /// Whether its operations' latencies were left out, to be taken from the fold it was
    /// offered by.
    without_latencies: bool,
}

/// The fold of the first `events_applied` events of a trace, with snapshots behind it.
#[derive(Clone, Debug)]
pub struct FoldCache {
    state: WorldState,
    /// `snapshots[i]` is the fold of the first `(i + 1) * every` events; an offered one without
    /// its operations' latencies (see [`FoldCache::offer`]).
    snapshots: Vec<Snapshot>,
    every: usize,
    fresh: Snapshot,
}

impl FoldCache {
    /// The world before the first event of a trace with `header`.
    pub fn new(header: &TraceHeader) -> FoldCache {
        let fresh = WorldState::sparing(header);
        FoldCache {
            state: fresh.clone(),
            snapshots: Vec::new(),
            every: SNAPSHOT_EVERY_EVENTS,
            fresh: Snapshot {
                world: fresh,
                without_latencies: false,
            },
        }
    }

    /// The current fold.
    pub fn state(&self) -> &WorldState {
        &self.state
    }

    /// How many snapshots are kept, and how many events apart.
    pub fn snapshot_spacing(&self) -> (usize, usize) {
        (self.snapshots.len(), self.every)
    }

    /// Brings the fold to the first `target` of `events` and returns how many events it had to
    /// apply to get there: at most one spacing's worth wherever it was, once the snapshots on
    /// the way exist. `offered_by` is the fold that offered snapshots ([`FoldCache::offer`]),
    /// if any did: a snapshot it offered takes its latencies back from it.
    pub fn fold_to(
        &mut self,
        events: &EventStore,
        target: usize,
        offered_by: Option<&WorldState>,
    ) -> usize {
        let target = target.min(events.len());
        // Back, or forward past a snapshot: start from the nearest snapshot.
        let nearest = self.nearest_at_or_before(target);
        if target < self.state.events_applied
            || nearest.world.events_applied > self.state.events_applied
        {
            let without_latencies = nearest.without_latencies;
            self.state = nearest.world.clone();
            if without_latencies {
                let ahead = offered_by.expect("an offered snapshot is restored beside its fold");
                self.state.restore_latencies(ahead);
            }
        }
        let mut applied = 0;
        let start = self.state.events_applied;
        for event in events.iter_from(start).take(target.saturating_sub(start)) {
            self.state.apply_stored(&event, events);
            applied += 1;
            let next_snapshot = (self.snapshots.len() + 1) * self.every;
            if self.state.events_applied == next_snapshot {
                self.snapshots.push(Snapshot {
                    world: self.state.clone(),
                    without_latencies: false,
                });
                if self.snapshots.len() > SNAPSHOTS_MAX {
                    self.thin_out();
                }
            }
        }
        applied
    }

    /// Takes `folded`, another fold of the same trace (the charts' fold, which runs ahead as
    /// events arrive), as the next snapshot when it has just reached it. A snapshot copied from
    /// it shares its rows with it (`shared::shared_map`), and so does the playhead's fold once
    /// it starts from that snapshot, so the copies of the world cost little more than one. The
    /// operations' latencies, which cannot be shared (each goes in among the others), are left
    /// out and taken back from `folded` when the snapshot is restored: `folded` must be passed
    /// to [`FoldCache::fold_to`] from then on.
    pub fn offer(&mut self, folded: &WorldState) {
        let next_snapshot = (self.snapshots.len() + 1) * self.every;
        if folded.events_applied == next_snapshot {
            self.snapshots.push(Snapshot {
                world: folded.without_latencies(),
                without_latencies: true,
            });
            if self.snapshots.len() > SNAPSHOTS_MAX {
                self.thin_out();
            }
        }
    }

    /// The latest snapshot (or the empty world) at or before `target` events.
    fn nearest_at_or_before(&self, target: usize) -> &Snapshot {
        match (target / self.every).min(self.snapshots.len()) {
            0 => &self.fresh,
            n => &self.snapshots[n - 1],
        }
    }

    /// Doubles the spacing, keeping every second snapshot.
    fn thin_out(&mut self) {
        self.every *= 2;
        let every = self.every;
        self.snapshots
            .retain(|s| s.world.events_applied % every == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{RunRequest, TraceEvent};

    fn trace(until_s: f64) -> shared::protocol::Trace {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 11,
            until_s,
            knobs: shared::protocol::KnobMap::from([("rename_rate_per_s".to_string(), 5.0)]),
            faults: Vec::new(),
        };
        engine::simulate(&request).unwrap()
    }

    fn store(trace: &shared::protocol::Trace) -> EventStore {
        let mut store = EventStore::new();
        store.extend(&trace.events);
        store
    }

    /// The first `n` events folded one by one into a world like the cache's.
    fn from_scratch(header: &TraceHeader, events: &[TraceEvent], n: usize) -> WorldState {
        let mut state = WorldState::sparing(header);
        let mut stored = EventStore::new();
        for event in &events[..n] {
            state.apply_stored(event, &stored);
            stored.push(event);
        }
        state
    }

    #[test]
    fn seeking_anywhere_applies_at_most_one_spacing_of_events() {
        let trace = trace(60.0);
        let events = &trace.events;
        let stored = store(&trace);
        assert!(
            events.len() > 4 * SNAPSHOT_EVERY_EVENTS,
            "{} events",
            events.len()
        );
        let mut cache = FoldCache::new(&trace.header);
        assert_eq!(cache.fold_to(&stored, events.len(), None), events.len());
        let (kept, every) = cache.snapshot_spacing();
        assert!(kept <= SNAPSHOTS_MAX && kept > 0, "{kept} snapshots");
        // Back and forth: each lands on the same state as a fold from the start, cheaply.
        for n in [
            events.len() - 1,
            events.len() / 2,
            7,
            0,
            every * 3 + 1,
            every * 3 - 1,
        ] {
            let applied = cache.fold_to(&stored, n, None);
            assert!(
                applied < every,
                "to {n}: applied {applied}, spacing {every}"
            );
            assert_eq!(
                *cache.state(),
                from_scratch(&trace.header, events, n),
                "at {n}"
            );
        }
        // A small step forward applies only the events in between (fewer when it passes a
        // snapshot, as this one does).
        let here = cache.state().events_applied;
        assert_eq!(here, every * 3 - 1);
        assert_eq!(cache.fold_to(&stored, here + 10, None), 9);
        assert_eq!(cache.fold_to(&stored, here + 12, None), 2);
        assert_eq!(
            *cache.state(),
            from_scratch(&trace.header, events, here + 12)
        );
    }

    #[test]
    fn a_long_trace_keeps_a_bounded_number_of_snapshots() {
        let trace = trace(240.0);
        let events = &trace.events;
        let stored = store(&trace);
        let mut cache = FoldCache::new(&trace.header);
        cache.fold_to(&stored, events.len(), None);
        let (kept, every) = cache.snapshot_spacing();
        println!("{} events: {kept} snapshots every {every}", events.len());
        assert!(kept <= SNAPSHOTS_MAX);
        assert!(kept * every <= events.len() && events.len() < (kept + 1) * every * 2);
        // The spacing, which bounds what a seek applies, stays within the rule stated on
        // SNAPSHOTS_MAX.
        assert!(
            every <= SNAPSHOT_EVERY_EVENTS.max(2 * events.len() / SNAPSHOTS_MAX),
            "{every} for {} events",
            events.len()
        );
        let applied = cache.fold_to(&stored, every + every / 2, None);
        assert_eq!(applied, every / 2);
        assert_eq!(
            *cache.state(),
            from_scratch(&trace.header, events, every + every / 2)
        );
        // Asking past the end stops at the end.
        cache.fold_to(&stored, events.len() + 99, None);
        assert_eq!(cache.state().events_applied, events.len());
    }
}
