//! Rows in doubt under two-phase commit, from the trace alone: a participant's row of
//! `prepared_names` is in doubt (prepared, locked) from a `row_written` whose value begins
//! `prepared at ` until the next `row_written` of the same row (the decision arriving, committed
//! or aborted), or until the trace's last event if none comes. Also counted: prepares a
//! participant refused because another prepared update held the lock (`503 locked: …`).

use crate::protocol::{Event, ServiceId};
use crate::services::{LOCKED_REFUSAL_LABEL_PREFIX, PREPARED_NAMES_TABLE, PREPARED_PREFIX};
use crate::slot_map::{DenseMap, SlotMap};
use crate::time::Micros;

/// Rows in doubt now, the longest doubt so far, and refusals because of a lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InDoubt {
    /// Rows prepared and not yet decided, by participant and key, with when they were prepared.
    /// By participant, then key: no tree keyed by `(ServiceId, String)`.
    open: DenseMap<ServiceId, SlotMap<String, Micros>>,
    /// The longest doubt that has ended.
    longest_ended: Micros,
    /// Prepares refused because another prepared update held the row.
    pub prepares_refused_locked: u64,
}

impl InDoubt {
    /// Takes in what `event`, at `at`, changes.
    pub fn apply(&mut self, event: &Event, at: Micros) {
        match event {
            Event::RowWritten {
                service,
                table,
                key,
                value,
                ..
            } if table == PREPARED_NAMES_TABLE => {
                let rows = self.open.entry(*service).or_default();
                if let Some(since) = rows.remove(key.as_str()) {
                    self.longest_ended = self.longest_ended.max(at.saturating_sub(since));
                }
                if value.starts_with(PREPARED_PREFIX) {
                    rows.insert(key.clone(), at);
                }
            }
            Event::Sent { label, .. } if label.starts_with(LOCKED_REFUSAL_LABEL_PREFIX) => {
                self.prepares_refused_locked += 1;
            }
            _ => {}
        }
    }

    /// The longest any row has been in doubt, counting rows still in doubt up to `now`.
    pub fn max(&self, now: Micros) -> Micros {
        self.open
            .values()
            .flat_map(|rows| rows.values())
            .map(|since| now.saturating_sub(*since))
            .fold(self.longest_ended, Micros::max)
    }

    /// Rows in doubt now.
    pub fn rows(&self) -> u64 {
        self.open.values().map(|rows| rows.len() as u64).sum()
    }
}
