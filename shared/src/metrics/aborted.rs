//! Aborted reads (`docs/METRICS.md`): successful reads that returned a version of a row whose
//! write was rolled back ([`crate::protocol::Event::WriteAborted`]), before or after the read.
//!
//! A read's fate stays open until its version is aborted or a newer version of the row is
//! returned: as the coordinator runs one update per row at a time, a write's abort is decided
//! before any newer version of its row exists.

use super::SourceRow;
use crate::protocol::{Observed, OpId, OpSet};
use crate::slot_map::{SlotMap, SlotSet};

/// Aborted reads so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AbortedReads {
    /// The reads counted, each once however many aborted versions it returned.
    pub reads: OpSet,
    /// Versions rolled back, by row (nested, so that no tree is keyed by `(row, version)`: the
    /// rows' tree and the `u64` one are every other map's).
    aborted: SlotMap<SourceRow, SlotSet<u64>>,
    /// Reads that returned a version whose fate is still open, by row and version.
    open: SlotMap<SourceRow, SlotMap<u64, Vec<OpId>>>,
}

impl AbortedReads {
    /// How many reads returned an aborted version.
    pub fn count(&self) -> u64 {
        self.reads.len() as u64
    }

    /// Operation `op` succeeded, returning `observed`.
    pub fn read_returned(&mut self, op: OpId, observed: &[Observed]) {
        for seen in observed {
            let row = seen.source_row();
            if self
                .aborted
                .get(&row)
                .is_some_and(|versions| versions.contains(&seen.version))
            {
                self.reads.insert(op.key());
                continue;
            }
            let versions = self.open.entry(row).or_default();
            // Older versions' fate was decided before this one was written.
            *versions = versions.split_off(&seen.version);
            versions.entry(seen.version).or_default().push(op);
        }
    }

    /// The write of `version` of `row` was rolled back.
    pub fn write_aborted(&mut self, row: SourceRow, version: u64) {
        if let Some(reads) = self
            .open
            .get_mut(&row)
            .and_then(|versions| versions.remove(&version))
        {
            self.reads.extend(reads.into_iter().map(OpId::key));
        }
        self.aborted.entry(row).or_default().insert(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServiceId;

    fn seen(key: &str, version: u64) -> Observed {
        Observed {
            source_service: ServiceId(3),
            source_table: "products".into(),
            key: key.into(),
            version,
        }
    }

    fn row(key: &str) -> SourceRow {
        (ServiceId(3), "products".into(), key.into())
    }

    #[test]
    fn a_read_of_a_version_rolled_back_before_or_after_it_counts_once() {
        let mut aborted = AbortedReads::default();
        aborted.read_returned(OpId(1), &[seen("7", 2), seen("8", 4)]);
        aborted.read_returned(OpId(2), &[seen("7", 2)]);
        aborted.read_returned(OpId(3), &[seen("7", 1)]);
        aborted.write_aborted(row("7"), 2);
        assert_eq!(
            aborted.count(),
            2,
            "reads 1 and 2 saw v2, rolled back after"
        );
        aborted.read_returned(OpId(4), &[seen("7", 2), seen("8", 4)]);
        aborted.write_aborted(row("8"), 4);
        assert_eq!(
            aborted.reads,
            [1, 2, 4].into(),
            "read 4 saw v2 after its rollback; reads 1 and 4 count once for two aborted versions"
        );
        aborted.read_returned(OpId(5), &[seen("7", 3)]);
        aborted.write_aborted(row("7"), 5);
        assert_eq!(aborted.count(), 3, "a version nobody read");
    }
}
