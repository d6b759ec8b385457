//! The page's shared state, as narrow contexts: the current run (its trace and status), the
//! player's clock, the form's settings, the selection, and which views are shown.

use crate::components::Computed;
use crate::components::Var;
use crate::config::{RunConfig, Views};
use crate::player::Player;
use crate::selection::{self, Highlight, Selection};
use crate::source::RunStatus;
use crate::trace_index::TraceIndex;
use leptos::prelude::*;
use shared::fold::WorldState;
use shared::protocol::LiveRole;
use shared::time::Micros;

/// The trace being shown and what the status line says about it.
#[derive(Clone, Copy)]
pub struct RunHandle {
    /// The trace, once one has begun. Not reactive by itself: `revision` announces changes.
    index: StoredValue<Option<TraceIndex>>,
    /// Bumped whenever `index` changes: a new trace, or more events.
    revision: Var<u64>,
    /// The status line.
    pub status: Var<RunStatus>,
    /// What this viewer may do with the live run it streams, as the backend said.
    pub live_role: Var<Option<LiveRole>>,
    /// The backend's answer to the last live command it refused.
    pub live_refusal: Var<Option<String>>,
}

impl RunHandle {
    /// No run yet.
    pub fn new() -> RunHandle {
        RunHandle {
            index: StoredValue::new(None),
            revision: Var::new(0),
            status: Var::new(RunStatus::Idle),
            live_role: Var::new(None),
            live_refusal: Var::new(None),
        }
    }

    /// The index's storage, for sources that fill it in place.
    pub fn storage(&self) -> StoredValue<Option<TraceIndex>> {
        self.index
    }

    /// Replaces the trace.
    pub fn replace(&self, index: Option<TraceIndex>) {
        self.index.set_value(index);
        self.touch();
    }

    /// Announces that the trace changed in place.
    pub fn touch(&self) {
        self.revision.update(|r| *r += 1);
    }

    /// The revision, untracked, for the frame loop.
    pub fn revision_untracked(&self) -> u64 {
        self.revision.get_untracked()
    }

    /// The revision, tracked.
    pub fn revision(&self) -> u64 {
        self.revision.get()
    }

    /// Reads the trace; reruns the caller when it changes.
    pub fn read<T>(&self, f: impl FnOnce(&TraceIndex) -> T) -> Option<T> {
        self.revision.track();
        self.index.with_value(|index| index.as_ref().map(f))
    }

    /// Reads the trace without tracking it, for event handlers.
    pub fn read_untracked<T>(&self, f: impl FnOnce(&TraceIndex) -> T) -> Option<T> {
        self.index.with_value(|index| index.as_ref().map(f))
    }

    /// Reads the trace and its state at `t`; reruns the caller when the trace changes. `f` must
    /// not read signals: the trace is locked while it runs.
    pub fn at<T>(&self, t: Micros, f: impl FnOnce(&TraceIndex, &WorldState) -> T) -> Option<T> {
        self.revision.track();
        self.index
            .try_update_value(|index| {
                index.as_mut().map(|index| {
                    index.fold_to(t);
                    f(index, index.state())
                })
            })
            .flatten()
    }
}

impl Default for RunHandle {
    fn default() -> Self {
        RunHandle::new()
    }
}

/// The player's clock and what derives from its playhead.
#[derive(Clone, Copy)]
pub struct Clock {
    /// The clock itself.
    pub player: Var<Player>,
    /// The playhead.
    pub now: Computed<Micros>,
    /// The run's revision and how many events are at or before the playhead: views that only
    /// change with events (tables, log) follow this instead of every frame.
    pub applied: Computed<(u64, usize)>,
}

impl Clock {
    /// A clock over `run`.
    pub fn new(run: RunHandle) -> Clock {
        let player = Var::new(Player::new(Micros::ZERO));
        let now = Computed::compared(move |_| player.with(Player::now));
        let applied = Computed::compared(move |_| {
            let t = now.get();
            let revision = run.revision();
            let count = run.read(|index| index.count_at(t)).unwrap_or(0);
            (revision, count)
        });
        Clock {
            player,
            now,
            applied,
        }
    }

    /// This clock for a view that holds still while `shown` is false (it is off screen): its
    /// playhead and its count of events stay where they were, and catch up when it is shown.
    /// The player (speed, play and pause) is the same.
    pub fn while_shown(self, shown: Var<bool>) -> Clock {
        let now = Computed::compared(move |held: Option<&Micros>| match held {
            Some(&held) if !shown.get() => held,
            _ => self.now.get(),
        });
        let applied = Computed::compared(move |held: Option<&(u64, usize)>| match held {
            Some(&held) if !shown.get() => held,
            _ => self.applied.get(),
        });
        Clock {
            player: self.player,
            now,
            applied,
        }
    }

    /// The playhead's speed, tracked.
    pub fn speed(&self) -> f64 {
        self.player.with(Player::speed)
    }

    /// Pauses and moves the playhead to the next event of `run` (or the previous one), if any.
    pub fn step_event(&self, run: RunHandle, forward: bool) {
        let now = self.player.with_untracked(Player::now);
        let target = run
            .read_untracked(|index| {
                if forward {
                    index.next_event_time(now)
                } else {
                    index.previous_event_time(now)
                }
            })
            .flatten();
        self.player.update(|p| {
            p.pause();
            if let Some(t) = target {
                p.seek(t);
            }
        });
    }
}

/// What is selected, read by every view, and the messages it highlights in the current run.
#[derive(Clone, Copy)]
pub struct Selected {
    /// The selection itself.
    pub selection: Var<Selection>,
    /// The messages it highlights.
    pub highlight: Computed<Highlight>,
}

impl Selected {
    /// A selection over `run`, starting at `initial`.
    pub fn new(run: RunHandle, initial: Selection) -> Selected {
        let selection = Var::new(initial);
        let highlight = Computed::compared(move |_| {
            selection
                .with(|s| run.read(|index| selection::highlight(index, s)))
                .unwrap_or_default()
        });
        Selected {
            selection,
            highlight,
        }
    }

    /// Selects `next`, or clears the selection when `next` is already selected, so a second
    /// click undoes the first.
    pub fn toggle(&self, next: Selection) {
        self.selection.update(|s| {
            *s = if *s == next { Selection::Nothing } else { next };
        });
    }
}

/// Which views the page shows.
#[derive(Clone, Copy)]
pub struct ShownViews(pub Var<Views>);

/// The settings of the control bar.
#[derive(Clone, Copy)]
pub struct Settings {
    /// What the form says.
    pub config: Var<RunConfig>,
    /// Bumped when the form's fields must show `config` again (a scenario switch): typing does
    /// not bump it, so a field being edited is never rewritten under the cursor.
    pub form_epoch: Var<u64>,
}

/// Every shared state of the page, as its one context: Leptos compiles a context lookup
/// (`expect_context`) once per type, so the page provides this one and each part is read from
/// it ([`page`]).
#[derive(Clone, Copy)]
pub struct Page {
    /// The run.
    pub run: RunHandle,
    /// The player's clock.
    pub clock: Clock,
    /// The form's settings.
    pub settings: Settings,
    /// What is selected.
    pub selected: Selected,
    /// Which views show.
    pub views: ShownViews,
}

/// The page's shared state, provided by the app (`App`).
pub fn page() -> Page {
    leptos::prelude::expect_context::<Page>()
}
