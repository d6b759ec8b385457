//! Replication lag of copies (`docs/METRICS.md`, "staleness").
//!
//! For a copy row at time t, its lag is t minus the time at which its source row first wrote a
//! version the copy has not applied; zero while the copy holds the source's latest version (or a
//! newer one). The mean is time-weighted over every copy row and every moment it existed; the
//! max is over every row and moment, windows still open included.
//!
//! The fold is incremental and exact: between two events every stale row's lag grows by the time
//! that passed, so the sum of lags is `k·t − A` (k stale rows, A the sum of their anchors) and
//! its integral advances in O(1) per event, in integer µs² (doubled, so it never rounds).

use crate::protocol::ServiceId;
use crate::shared_log::SharedLog;
use crate::shared_map::SharedMap;
use crate::slot_map::SlotMap;
use crate::time::Micros;
use std::collections::BTreeMap;

/// A row of a source of truth, as `(service, table, key)`.
pub type SourceRow = (ServiceId, String, String);

/// A copy row, as `(index of its copy declaration, key)`.
pub type CopyRow = (usize, String);

/// A source row's latest version and when it was written, as the world's tables hold it:
/// `Some(None)` before its first write; `None` for a row of a service the tables do not list,
/// whose whole history [`Staleness`] then keeps itself.
pub type Latest = Option<Option<(u64, Micros)>>;

/// Replication lag so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Staleness {
    /// Each source row's versions but its latest, oldest first, with when each was first
    /// written: increasing in both, since a write of an older version drops the newer ones it
    /// replaces. The latest is the row itself in the world's tables (its version and when it
    /// was written), which every write updates with the history, so a row written once (most
    /// rows of a run: an order, a shipment, a handled event) has no entry here. A row the
    /// tables cannot hold ([`Latest`] `None`) keeps its latest here too.
    history: SharedMap<SourceRow, SharedLog<(u64, Micros)>>,
    /// The source tables whose rows keep a history, as `(service, table)`; `None`: every
    /// table's. A history is only read for a table a copy copies or a read observes: the
    /// page's folds keep the others' away ([`Staleness::keep_only`]).
    kept: Option<Vec<(ServiceId, String)>>,
    /// Each copy row's anchor: when its source first wrote a version it has not applied; `None`
    /// while it is up to date. By copy (its index), then key: nested, so that it shares the
    /// tree of the maps keyed by a `String` instead of having a `(usize, String)` one.
    anchors: Vec<SlotMap<String, Option<Micros>>>,
    /// How many copy rows `anchors` holds.
    copy_rows: usize,
    /// The anchors of stale rows (in µs), as a multiset, for the oldest. Keyed by `u64`, not
    /// `Micros`, so it is the tree every `SlotMap` keyed by a `u64` has (no code of its own).
    open: BTreeMap<u64, u32>,
    /// The sum of open anchors, in µs.
    anchors_sum: u128,
    /// How many copy rows are stale.
    stale_rows: usize,
    /// The time integrated up to.
    integrated_to: Micros,
    /// Twice the integral of the sum of lags over time, in µs².
    lag_integral_x2: u128,
    /// The integral of the number of copy rows over time, in µs.
    exposure: u128,
    /// The largest lag any row reached before its anchor moved.
    closed_max: Micros,
}

impl Staleness {
    /// From now on only the source rows of `tables` keep a history (and those
    /// [`Staleness::keep`] adds): the others' writes are not recorded, so a question about them
    /// must wait until their history has been recalled.
    pub(crate) fn keep_only(&mut self, tables: Vec<(ServiceId, String)>) {
        self.kept = Some(tables);
    }

    /// Whether `service`'s source rows of `table` keep their history.
    pub(crate) fn keeps(&self, service: ServiceId, table: &str) -> bool {
        self.kept
            .as_ref()
            .is_none_or(|kept| kept.iter().any(|(s, t)| *s == service && t == table))
    }

    /// `service`'s rows of `table` keep their history from now on; the writes before must be
    /// passed again to [`Staleness::source_written`], in order, to recall it.
    pub(crate) fn keep(&mut self, service: ServiceId, table: &str) {
        if let Some(kept) = &mut self.kept {
            kept.push((service, table.to_string()));
        }
    }

    /// This fold with the histories `other` keeps and no others, and `other`'s choice of
    /// tables: what `other` holds, when both folded the same events.
    #[cfg(test)]
    pub(crate) fn kept_as(&self, other: &Staleness) -> Staleness {
        let mut history = SharedMap::new();
        for (row, versions) in self.history.iter() {
            if other.keeps(row.0, &row.1) {
                history.insert(row.clone(), versions.clone());
            }
        }
        Staleness {
            history,
            kept: other.kept.clone(),
            ..self.clone()
        }
    }

    /// How many source rows keep a history.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.history.len()
    }

    /// The source row `row` was written at `version`, at `now`; `before` is its latest
    /// version before this write, as the tables held it.
    pub fn source_written(&mut self, row: &SourceRow, before: Latest, version: u64, now: Micros) {
        if !self.keeps(row.0, &row.1) {
            return;
        }
        let entry = match before {
            // Its latest version goes into its history, below the new one.
            Some(Some(latest)) if latest.0 < version => Some(latest),
            // The tables hold the new version in place of their latest.
            Some(_) => None,
            // No tables hold it: the history keeps the new version itself.
            None => Some((version, now)),
        };
        // A write at or below versions in the history replaces them.
        let replaces = self
            .history
            .get(row)
            .is_some_and(|h| h.last().is_some_and(|(v, _)| *v >= version));
        if entry.is_none() && !replaces {
            return;
        }
        let history = self.history.get_or_insert_with(row.clone(), SharedLog::new);
        while history.last().is_some_and(|(v, _)| *v >= version) {
            history.pop();
        }
        if let Some(entry) = entry {
            history.push(entry);
        }
    }

    /// When `row` first wrote a version newer than `copy_version`: the anchor of a copy holding
    /// `copy_version`, or `None` when that copy is up to date. `latest` is the row's latest
    /// version as the tables hold it now.
    pub fn anchor(&self, row: &SourceRow, latest: Latest, copy_version: u64) -> Option<Micros> {
        if let Some(history) = self.history.get(row) {
            let first_newer = history.partition_point(|(v, _)| *v <= copy_version);
            if let Some((_, at)) = history.get(first_newer) {
                return Some(*at);
            }
        }
        latest
            .flatten()
            .filter(|(v, _)| *v > copy_version)
            .map(|(_, at)| at)
    }

    /// Copy row `row` now lags from `anchor` (`None`: up to date), as of `now`.
    pub fn observe(&mut self, row: CopyRow, anchor: Option<Micros>, now: Micros) {
        self.advance(now);
        let (copy, key) = row;
        if self.anchors.len() <= copy {
            self.anchors.resize_with(copy + 1, SlotMap::new);
        }
        let before = match self.anchors[copy].insert(key, anchor) {
            Some(before) => before,
            None => {
                self.copy_rows += 1;
                None
            }
        };
        if before == anchor {
            return;
        }
        if let Some(old) = before {
            self.closed_max = self.closed_max.max(now - old);
            self.anchors_sum -= u128::from(old.0);
            self.stale_rows -= 1;
            if let Some(count) = self.open.get_mut(&old.0) {
                *count -= 1;
                if *count == 0 {
                    self.open.remove(&old.0);
                }
            }
        }
        if let Some(new) = anchor {
            self.anchors_sum += u128::from(new.0);
            self.stale_rows += 1;
            *self.open.entry(new.0).or_default() += 1;
        }
    }

    /// Integrates the lags up to `now`.
    fn advance(&mut self, now: Micros) {
        let (lag_x2, exposure) = self.integrals_to(now);
        (self.lag_integral_x2, self.exposure) = (lag_x2, exposure);
        self.integrated_to = self.integrated_to.max(now);
    }

    /// Twice the integral of the sum of lags, and the integral of the number of copy rows, from
    /// the start to `now` (no later event having changed anything since the last one).
    fn integrals_to(&self, now: Micros) -> (u128, u128) {
        let (from, to) = (u128::from(self.integrated_to.0), u128::from(now.0));
        if to <= from {
            return (self.lag_integral_x2, self.exposure);
        }
        let stale = u128::from(self.open_count() as u64);
        let lag_x2 = stale * (to * to - from * from) - 2 * self.anchors_sum * (to - from);
        let rows = self.copy_rows as u128;
        (
            self.lag_integral_x2 + lag_x2,
            self.exposure + rows * (to - from),
        )
    }

    /// How many copy rows are stale now.
    pub fn open_count(&self) -> usize {
        self.stale_rows
    }

    /// The lag of the row furthest behind at `now`: the current staleness.
    pub fn open_max(&self, now: Micros) -> Micros {
        self.open
            .keys()
            .next()
            .map_or(Micros::ZERO, |oldest| now - Micros(*oldest))
    }

    /// The largest lag any copy row reached up to `now`, open windows included.
    pub fn max(&self, now: Micros) -> Micros {
        self.closed_max.max(self.open_max(now))
    }

    /// The mean lag over every copy row and every moment up to `now` that it existed, or zero.
    pub fn mean(&self, now: Micros) -> Micros {
        match self.integrals_to(now) {
            (_, 0) => Micros::ZERO,
            (lag_x2, exposure) => Micros((lag_x2 / 2 / exposure) as u64),
        }
    }
}

/// How far behind its source each value a read returned was: a read that began at `t` and
/// returned a version older than one its source first wrote at `a ≤ t` was served `t − a` behind
/// (the age of the oldest source write it missed); zero when it missed none. Judges every read
/// alike, whether its value came from the source, a copy kept by events or a cache in memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServedLag {
    /// Successful reads that returned at least one versioned value.
    reads: u64,
    /// The sum of their lags, in µs.
    sum: u128,
    /// The largest.
    max: Micros,
}

impl ServedLag {
    /// A read that began at `started` succeeded; of the values it returned, the one furthest
    /// behind missed a source write first made at `missed_since` (`None`: it missed none).
    pub fn read_served(&mut self, started: Micros, missed_since: Option<Micros>) {
        self.reads += 1;
        // A write made after the read began is not one the read could have returned.
        let lag = missed_since.map_or(Micros::ZERO, |since| started.saturating_sub(since));
        self.sum += u128::from(lag.0);
        self.max = self.max.max(lag);
    }

    /// The largest lag of any read, or zero.
    pub fn max(&self) -> Micros {
        self.max
    }

    /// The mean lag over the reads counted (up to date ones included, with zero), or zero.
    pub fn mean(&self) -> Micros {
        match self.reads {
            0 => Micros::ZERO,
            n => Micros((self.sum / u128::from(n)) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SourceRow {
        (ServiceId(2), "products".into(), "7".into())
    }

    fn copy(key: &str) -> CopyRow {
        (0, key.into())
    }

    /// One write, at a time in milliseconds.
    enum Write {
        /// The source writes a version.
        Source(u64, u64),
        /// Copy row `key` takes a version.
        Copy(&'static str, u64, u64),
    }

    /// Applies `writes`, given in time order, as the fold does.
    fn fold(writes: &[Write]) -> Staleness {
        let mut staleness = Staleness::default();
        let mut copies: BTreeMap<&str, u64> = BTreeMap::new();
        for write in writes {
            let at = match *write {
                Write::Source(version, at) => {
                    staleness.source_written(&source(), None, version, Micros::from_millis(at));
                    at
                }
                Write::Copy(key, version, at) => {
                    copies.insert(key, version);
                    at
                }
            };
            for (key, version) in &copies {
                let anchor = staleness.anchor(&source(), None, *version);
                staleness.observe(copy(key), anchor, Micros::from_millis(at));
            }
        }
        staleness
    }

    #[test]
    fn lag_counts_from_the_first_write_the_copy_misses_not_from_when_it_last_matched() {
        let ms = Micros::from_millis;
        // v1 at 0; renames at 1000 (v2) and 2000 (v3); the copy applies v2 at 1500 and v3 at 2500.
        use Write::*;
        let staleness = fold(&[
            Source(1, 0),
            Copy("7", 1, 0),
            Source(2, 1_000),
            Copy("7", 2, 1_500),
            Source(3, 2_000),
            Copy("7", 3, 2_500),
        ]);
        assert_eq!(staleness.open_max(ms(2_500)), Micros::ZERO);
        assert_eq!(
            staleness.max(ms(4_000)),
            ms(500),
            "each version arrived 500 ms after it was written"
        );
        // Lag is 500 ms for 500 ms twice over 4 s: ∫ = 2 × 0.5 × 500 × 500 ms² / 4 000 ms.
        assert_eq!(staleness.mean(ms(4_000)), ms(62) + Micros(500));
    }

    #[test]
    fn a_copy_that_never_catches_up_lags_until_the_end() {
        let ms = Micros::from_millis;
        // Renamed at 1 s and never copied: at 10 s it lags 9 s, and has on average over 10 s
        // lagged 9 × 9 / 2 / 10 = 4.05 s.
        use Write::*;
        let staleness = fold(&[Source(1, 0), Copy("7", 1, 0), Source(2, 1_000)]);
        assert_eq!(staleness.open_count(), 1);
        assert_eq!(staleness.max(ms(10_000)), ms(9_000));
        assert_eq!(staleness.mean(ms(10_000)), ms(4_050));
    }

    #[test]
    fn the_mean_is_over_every_copy_row_fresh_ones_included() {
        let ms = Micros::from_millis;
        // Two copies of the row: one catches up at 2 s, one never; over 4 s the first lagged
        // 1 s on average for 2 s (∫ = 2 s²) and the second 4 s at the end (∫ = 8 s²).
        use Write::*;
        let staleness = fold(&[
            Source(1, 0),
            Copy("1/7", 1, 0),
            Copy("2/7", 1, 0),
            Source(2, 0),
            Copy("1/7", 2, 2_000),
        ]);
        assert_eq!(staleness.mean(ms(4_000)), ms(1_250), "(2 + 8) / (2 × 4)");
        assert_eq!(staleness.max(ms(4_000)), ms(4_000));
        assert_eq!(Staleness::default().mean(ms(1)), Micros::ZERO, "no copies");
    }

    #[test]
    fn a_copy_ahead_of_its_source_or_on_a_regressed_source_is_not_behind() {
        let mut staleness = Staleness::default();
        staleness.source_written(&source(), None, 1, Micros(0));
        staleness.source_written(&source(), None, 3, Micros(10));
        assert_eq!(staleness.anchor(&source(), None, 1), Some(Micros(10)));
        assert_eq!(staleness.anchor(&source(), None, 5), None);
        // The source goes back to v2 (a lost update): a copy at v2 is up to date again.
        staleness.source_written(&source(), None, 2, Micros(20));
        assert_eq!(staleness.anchor(&source(), None, 2), None);
        assert_eq!(staleness.anchor(&source(), None, 1), Some(Micros(20)));
    }

    #[test]
    fn a_history_whose_latest_is_in_the_tables_anchors_as_a_whole_one_does() {
        let seed = 0x00c0_ffee;
        println!("seed {seed:#x}");
        let mut rng = crate::rng::SimRng::new(seed);
        let mut whole = Staleness::default();
        let mut split = Staleness::default();
        // The row as the tables hold it: its latest version and when it was written.
        let mut latest: Option<(u64, Micros)> = None;
        for step in 0..2_000u64 {
            let now = Micros(step * 10);
            // Mostly newer versions, sometimes a rewrite of the same or an older one.
            let version = match latest {
                Some((v, _)) if rng.below(5) == 0 => v.saturating_sub(rng.below(4)).max(1),
                Some((v, _)) => v + 1 + rng.below(2),
                None => 1 + rng.below(3),
            };
            whole.source_written(&source(), None, version, now);
            split.source_written(&source(), Some(latest), version, now);
            latest = Some((version, now));
            let probes = [0, version - 1, version, version + 1, rng.below(version + 2)];
            for copy_version in probes {
                assert_eq!(
                    split.anchor(&source(), Some(latest), copy_version),
                    whole.anchor(&source(), None, copy_version),
                    "step {step}, copy at v{copy_version}"
                );
            }
        }
        // A row written once keeps no history of its own.
        let mut once = Staleness::default();
        once.source_written(&source(), Some(None), 1, Micros(5));
        assert!(once.history.is_empty());
        assert_eq!(
            once.anchor(&source(), Some(Some((1, Micros(5)))), 0),
            Some(Micros(5))
        );
    }
}
