//! The anomalies panel's model: the checker (`shared::check`) run over the trace as its events
//! arrive, and what the panel shows at the playhead — how many of each kind, and the latest few.
//!
//! The checker reports each anomaly at the event that completes its proof (the last of its
//! events), and it reads events in trace order, so the anomalies proven by the first `n` events
//! are a prefix of its list. The page therefore checks each event once, when it arrives, and
//! answers "up to the playhead" — forward or backward — with a binary search and a table of
//! running counts, never by checking the run again.

use crate::format;
use shared::check::{Anomaly, AnomalyKind, Checker};
use shared::protocol::{TraceEvent, TraceHeader};

/// How many anomalies the panel lists: the latest ones; it says how many more there are.
pub const LISTED_MAX: usize = 50;

/// The checker over the events received so far, with running counts per kind.
#[derive(Clone, Debug)]
pub struct AnomalyLog {
    checker: Checker,
    /// After the `i`th anomaly, how many of each kind (in [`AnomalyKind::ALL`]'s order) so far.
    running_counts: Vec<[u64; AnomalyKind::ALL.len()]>,
}

impl AnomalyLog {
    /// A log for a trace with `header`, before its first event.
    pub fn new(header: &TraceHeader) -> AnomalyLog {
        AnomalyLog {
            checker: Checker::new(header),
            running_counts: Vec::new(),
        }
    }

    /// Checks the trace's next event.
    pub fn push(&mut self, event: &TraceEvent) {
        self.checker.push(event);
        let anomalies = self.checker.anomalies();
        for anomaly in &anomalies[self.running_counts.len()..] {
            let mut counts = self.running_counts.last().copied().unwrap_or_default();
            counts[kind_position(anomaly.kind)] += 1;
            self.running_counts.push(counts);
        }
    }

    /// Every anomaly found so far, in the order found.
    pub fn anomalies(&self) -> &[Anomaly] {
        self.checker.anomalies()
    }

    /// How many anomalies the first `applied` events of the trace prove.
    pub fn proven_by(&self, applied: usize) -> usize {
        self.anomalies()
            .partition_point(|a| a.events.last().is_some_and(|&last| last < applied))
    }

    /// How many of each kind the first `found` anomalies hold, every kind listed.
    pub fn counts(&self, found: usize) -> [u64; AnomalyKind::ALL.len()] {
        found
            .checked_sub(1)
            .and_then(|last| self.running_counts.get(last).copied())
            .unwrap_or_default()
    }
}

fn kind_position(kind: AnomalyKind) -> usize {
    AnomalyKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}

/// A kind in words, for the panel: `stale reads`.
pub fn kind_label(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::StaleRead => "stale reads",
        AnomalyKind::AbortedRead => "aborted reads",
        AnomalyKind::CopyRegression => "copy regressions",
        AnomalyKind::DuplicateApplied => "duplicates applied",
        AnomalyKind::ConfirmedEventNeverApplied => "confirmed events never applied",
        AnomalyKind::LostUpdate => "lost updates",
        AnomalyKind::PartialUpdate => "partial updates",
    }
}

/// One kind's count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindCount {
    /// The kind's name, as in the summary (`stale_read`), for element ids.
    pub name: &'static str,
    /// The kind in words.
    pub label: &'static str,
    /// How many so far.
    pub count: u64,
}

/// One anomaly as the panel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyLine {
    /// Its position in the run's list of anomalies: what selecting it selects.
    pub position: usize,
    /// When its proof was complete, as `12.340 s`.
    pub time: String,
    /// Its kind in words.
    pub kind: &'static str,
    /// The checker's words.
    pub text: String,
}

/// What the panel shows at the playhead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnomaliesView {
    /// Every kind, in the checker's order, zeros included.
    pub counts: Vec<KindCount>,
    /// The latest anomalies, newest first, at most [`LISTED_MAX`].
    pub latest: Vec<AnomalyLine>,
    /// How many more, older, the list leaves out.
    pub more: usize,
    /// How many in all up to the playhead.
    pub total: usize,
}

/// The panel once the first `applied` events of the trace are applied, listing at most `most`.
pub fn view(log: &AnomalyLog, applied: usize, most: usize) -> AnomaliesView {
    let found = log.proven_by(applied);
    let counts = log.counts(found);
    let listed = found.min(most);
    let latest = log.anomalies()[found - listed..found]
        .iter()
        .enumerate()
        .rev()
        .map(|(offset, anomaly)| AnomalyLine {
            position: found - listed + offset,
            time: format::log_time(anomaly.at),
            kind: kind_label(anomaly.kind),
            text: anomaly.text.clone(),
        })
        .collect();
    AnomaliesView {
        counts: AnomalyKind::ALL
            .iter()
            .zip(counts)
            .map(|(kind, count)| KindCount {
                name: kind.name(),
                label: kind_label(*kind),
                count,
            })
            .collect(),
        latest,
        more: found - listed,
        total: found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{RunRequest, Trace};

    fn simulate(scenario: &str, until_s: f64, knobs: &[(&str, f64)]) -> Trace {
        simulate_with_faults(scenario, until_s, knobs, &[])
    }

    fn simulate_with_faults(
        scenario: &str,
        until_s: f64,
        knobs: &[(&str, f64)],
        faults: &[&str],
    ) -> Trace {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 1,
            until_s,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: faults.iter().map(|f| f.to_string()).collect(),
        };
        engine::simulate(&request).unwrap()
    }

    fn log_of(trace: &Trace) -> AnomalyLog {
        let mut log = AnomalyLog::new(&trace.header);
        for event in &trace.events {
            log.push(event);
        }
        log
    }

    fn count(view: &AnomaliesView, name: &str) -> u64 {
        view.counts.iter().find(|c| c.name == name).unwrap().count
    }

    /// At every playhead, the panel equals the checker run over exactly the events applied.
    fn assert_matches_a_fresh_check(trace: &Trace, log: &AnomalyLog) {
        let n = trace.events.len();
        for applied in [0, 1, n / 3, n / 2, n - 1, n] {
            let fresh = shared::check::check(&trace.header, &trace.events[..applied]);
            let shown = view(log, applied, LISTED_MAX);
            assert_eq!(shown.total, fresh.len(), "after {applied} events");
            let expected = shared::check::counts(&fresh);
            for kind in AnomalyKind::ALL {
                assert_eq!(
                    count(&shown, kind.name()),
                    expected[&kind],
                    "{} after {applied} events",
                    kind.name()
                );
            }
            let newest: Vec<&str> = fresh
                .iter()
                .rev()
                .take(LISTED_MAX)
                .map(|a| a.text.as_str())
                .collect();
            let listed: Vec<&str> = shown.latest.iter().map(|l| l.text.as_str()).collect();
            assert_eq!(listed, newest, "after {applied} events");
        }
    }

    #[test]
    fn sqs_redelivery_shows_duplicates_applied_as_the_run_goes_on() {
        let trace = simulate("event-driven", 30.0, &[("redelivery", 1.0)]);
        let log = log_of(&trace);
        let whole = view(&log, trace.events.len(), LISTED_MAX);
        let duplicates = count(&whole, "duplicate_applied");
        println!("event-driven redelivery=1, seed 1: {duplicates} duplicates applied");
        assert!(duplicates > 0, "{whole:?}");
        assert_eq!(whole.counts.len(), 7);
        assert_eq!(whole.more + whole.latest.len(), whole.total);
        assert!(whole.latest.iter().any(|l| l.kind == "duplicates applied"));
        // Just before the event that completes the first anomaly's proof, the panel shows none;
        // with it, one.
        let completes = *log.anomalies()[0].events.last().unwrap();
        assert_eq!(view(&log, completes, LISTED_MAX).total, 0);
        assert_eq!(view(&log, completes + 1, LISTED_MAX).total, 1);
        assert_matches_a_fresh_check(&trace, &log);
    }

    #[test]
    fn eventual_consistency_shows_stale_reads_and_the_list_is_bounded() {
        let trace = simulate(
            "eventual-consistency",
            30.0,
            &[("broker_delay_ms", 1000.0), ("read_rate_per_s", 10.0)],
        );
        let log = log_of(&trace);
        let whole = view(&log, trace.events.len(), 3);
        let stale = count(&whole, "stale_read");
        println!("eventual-consistency, seed 1: {stale} stale reads");
        assert!(stale > 3, "{whole:?}");
        // The three newest, newest first, and how many more.
        assert_eq!(whole.latest.len(), 3);
        assert_eq!(whole.more, whole.total - 3);
        let positions: Vec<usize> = whole.latest.iter().map(|l| l.position).collect();
        let total = whole.total;
        assert_eq!(positions, vec![total - 1, total - 2, total - 3]);
        assert!(whole.latest[0].text.contains("returned"), "{whole:?}");
        assert_matches_a_fresh_check(&trace, &log);
    }

    #[test]
    fn each_anomaly_is_listed_at_the_event_completing_its_proof_in_every_kind_of_run() {
        // The gateway's aborted reads (found when the rollback comes, after the read) and its
        // partial update (judged at the end); eventual consistency's copy regressions.
        let runs = [
            simulate(
                "gateway",
                10.0,
                &[("product_failure_pct", 30.0), ("read_rate_per_s", 10.0)],
            ),
            simulate("gateway", 30.0, &[]),
            // A broker keeping its queues in memory crashes while Shipping is down: confirmed
            // orders lost, judged only at the run's end.
            simulate_with_faults(
                "event-driven",
                30.0,
                &[("durable", 0.0)],
                &["crash:Broker@12+1"],
            ),
            simulate_with_faults(
                "eventual-consistency",
                30.0,
                &[("apply_only_newer", 0.0), ("rename_rate_per_s", 8.0)],
                &["reorder:*=50%@0"],
            ),
        ];
        let mut kinds_seen = std::collections::BTreeSet::new();
        for trace in &runs {
            let log = log_of(trace);
            let completions: Vec<usize> = log
                .anomalies()
                .iter()
                .map(|a| *a.events.last().unwrap())
                .collect();
            // What `AnomalyLog::proven_by`'s binary search relies on.
            assert!(
                completions.windows(2).all(|w| w[0] <= w[1]),
                "{}: {completions:?}",
                trace.header.scenario
            );
            kinds_seen.extend(log.anomalies().iter().map(|a| a.kind));
            // Those judged at the end show only once the `run_ended` is applied.
            let n = trace.events.len();
            let lost = |applied| {
                count(
                    &view(&log, applied, LISTED_MAX),
                    "confirmed_event_never_applied",
                )
            };
            assert_eq!(lost(n - 1), 0, "{}", trace.header.scenario);
            assert_matches_a_fresh_check(trace, &log);
        }
        println!("kinds seen: {kinds_seen:?}");
        assert!(
            kinds_seen.contains(&AnomalyKind::AbortedRead),
            "{kinds_seen:?}"
        );
    }
}
