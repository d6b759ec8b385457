//! The definitions of `docs/METRICS.md` written again the slow, obvious way, straight from the
//! trace, so the tests can hold the incremental metrics to them.

use shared::protocol::{CopyDecl, Event, Trace};
use shared::time::Micros;
use std::collections::BTreeMap;

/// Each source row's versions in the order written, with when: (service, table, key) → versions.
type SourceHistories = BTreeMap<(u16, String, String), Vec<(u64, Micros)>>;
/// Copy rows: (copy index, key) → (version, created at).
type CopyRows = BTreeMap<(usize, String), (u64, Micros)>;

/// Replication lag by the definition: max and time-weighted mean over every copy row and moment.
#[derive(Debug, PartialEq)]
pub struct Lag {
    pub max: Micros,
    pub mean: Micros,
}

/// Every copy row's lag at every moment, from scratch: for a copy row at t, t minus when its
/// source first wrote a version the copy has not applied (zero when it holds the latest).
pub fn replication_lag(trace: &Trace) -> Lag {
    let mut sources = SourceHistories::new();
    let mut copies = CopyRows::new();
    let decls = &trace.header.copies;
    let anchor = |sources: &SourceHistories, decl: &CopyDecl, key: &str, version: u64| {
        let source = (
            decl.source_service.0,
            decl.source_table.clone(),
            CopyDecl::source_key(key).to_string(),
        );
        let history = sources.get(&source)?;
        let latest = history.last()?.0;
        if version >= latest {
            return None;
        }
        // The first write, among those still standing, of a version the copy lacks.
        let mut standing: Vec<(u64, Micros)> = Vec::new();
        for (v, at) in history {
            standing.retain(|(w, _)| w < v);
            standing.push((*v, *at));
        }
        standing
            .iter()
            .find(|(v, _)| *v > version)
            .map(|(_, at)| *at)
    };
    let lags = |sources: &SourceHistories, copies: &CopyRows, t| {
        copies
            .iter()
            .map(|((index, key), (version, _))| {
                anchor(sources, &decls[*index], key, *version).map_or(Micros::ZERO, |a| t - a)
            })
            .collect::<Vec<Micros>>()
    };
    let (mut max, mut integral_x2, mut exposure) = (Micros::ZERO, 0u128, 0u128);
    let mut last = Micros::ZERO;
    let mut step =
        |sources: &BTreeMap<_, _>, copies: &BTreeMap<(usize, String), (u64, Micros)>, t: Micros| {
            let before = lags(sources, copies, last);
            let now = lags(sources, copies, t);
            for (a, b) in before.iter().zip(&now) {
                max = max.max(*b);
                // Linear from a to b between the two moments.
                integral_x2 += u128::from((t - last).0) * u128::from(a.0 + b.0);
            }
            exposure += copies.len() as u128 * u128::from((t - last).0);
            last = t;
        };
    for event in &trace.events {
        step(&sources, &copies, event.at);
        if let Event::RowWritten {
            service,
            table,
            key,
            version,
            ..
        } = &event.event
        {
            for (index, decl) in decls.iter().enumerate() {
                if decl.source_service == *service && decl.source_table == *table {
                    sources
                        .entry((service.0, table.clone(), key.clone()))
                        .or_default()
                        .push((*version, event.at));
                }
                if decl.copy_service == *service && decl.copy_table == *table {
                    let created = copies.get(&(index, key.clone())).map_or(event.at, |c| c.1);
                    copies.insert((index, key.clone()), (*version, created));
                }
            }
        }
    }
    Lag {
        max,
        mean: Micros((integral_x2 / 2).checked_div(exposure).unwrap_or(0) as u64),
    }
}

/// Successful operations that returned a version some `write_aborted` of the trace rolled back.
pub fn aborted_reads(trace: &Trace) -> u64 {
    let aborted: Vec<(u16, &str, &str, u64)> = trace
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::WriteAborted {
                source_service,
                source_table,
                key,
                version,
                ..
            } => Some((
                source_service.0,
                source_table.as_str(),
                key.as_str(),
                *version,
            )),
            _ => None,
        })
        .collect();
    trace
        .events
        .iter()
        .filter(|e| match &e.event {
            Event::OpFinished {
                outcome, observed, ..
            } => {
                outcome.is_ok()
                    && observed.iter().any(|o| {
                        aborted.contains(&(
                            o.source_service.0,
                            &*o.source_table,
                            &*o.key,
                            o.version,
                        ))
                    })
            }
            _ => false,
        })
        .count() as u64
}

/// Served lag by the definition: for each successful read, the age at its start of the oldest
/// source write, still standing when it finished, of a version newer than one it returned.
/// Returns `(max, mean over successful reads)`.
pub fn served_lag(trace: &Trace) -> (Micros, Micros) {
    let decls = &trace.header.copies;
    let mut writes: SourceHistories = BTreeMap::new();
    let mut started: BTreeMap<u64, (Micros, bool)> = BTreeMap::new();
    let (mut max, mut sum, mut reads) = (Micros::ZERO, 0u128, 0u128);
    for event in &trace.events {
        match &event.event {
            Event::RowWritten {
                service,
                table,
                key,
                version,
                ..
            } if !decls
                .iter()
                .any(|d| d.copy_service == *service && d.copy_table == *table) =>
            {
                writes
                    .entry((service.0, table.clone(), key.clone()))
                    .or_default()
                    .push((*version, event.at));
            }
            Event::OpStarted { op, name, .. } => {
                started.insert(op.0, (event.at, name.starts_with("read ")));
            }
            Event::OpFinished {
                op,
                outcome,
                observed,
                ..
            } => {
                let Some((began, true)) = started.get(&op.0).copied() else {
                    continue;
                };
                if !outcome.is_ok() {
                    continue;
                }
                let mut lag = Micros::ZERO;
                for seen in observed {
                    let row = (
                        seen.source_service.0,
                        seen.source_table.to_string(),
                        seen.key.to_string(),
                    );
                    let mut standing: Vec<(u64, Micros)> = Vec::new();
                    for (v, at) in writes.get(&row).into_iter().flatten() {
                        standing.retain(|(w, _)| w < v);
                        standing.push((*v, *at));
                    }
                    if let Some((_, since)) = standing.iter().find(|(v, _)| *v > seen.version)
                        && *since <= began
                    {
                        lag = lag.max(began - *since);
                    }
                }
                max = max.max(lag);
                sum += u128::from(lag.0);
                reads += 1;
            }
            _ => {}
        }
    }
    (max, Micros(sum.checked_div(reads).unwrap_or(0) as u64))
}
