//! Synchronous calls between services, counted from the trace: how many each kind of operation
//! causes, how many a cache spared, and which source tables stale answers came from. The hybrid
//! scenario's lesson (calls per read, cache hit ratio, stale cache reads) is read from these.

use crate::protocol::{Event, MessageKind, MsgId, Observed, OpId, ServiceId, TraceEvent};
use crate::time::Micros;
use std::collections::BTreeMap;

/// The calls of one kind of operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpCalls {
    /// Operations started.
    pub started: u64,
    /// The client's requests that reached the service asked; a duplicated request counts twice,
    /// since it is handled twice.
    pub arrived: u64,
    /// Requests services sent to other services on behalf of these operations while they ran.
    pub calls: u64,
}

impl OpCalls {
    /// Calls per operation started, or zero.
    pub fn calls_per_op(&self) -> f64 {
        ratio(self.calls, self.started)
    }

    /// `1 − calls / requests arrived`, floored at zero: the share of requests answered without a
    /// call. Where each miss costs exactly one call, as with Ride's cache, this is the cache's
    /// hit ratio. Zero before any request arrived.
    pub fn cache_hit_ratio(&self) -> f64 {
        if self.arrived == 0 {
            return 0.0;
        }
        (1.0 - ratio(self.calls, self.arrived)).max(0.0)
    }
}

fn ratio(count: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 / of as f64
    }
}

#[derive(Clone, Debug, PartialEq)]
struct RunningOp {
    name: String,
    started: Micros,
}

/// A row of a source of truth, as `(service, table, key)`.
type SourceRow = (ServiceId, String, String);

/// Calls and stale answers so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallMetrics {
    /// Per operation name.
    pub by_op: BTreeMap<String, OpCalls>,
    /// Successful operations that saw a version older than one confirmed (by any successful
    /// operation's answer) before they began, per source table of the stale row. A read stale in
    /// two tables counts in both.
    pub stale_reads_by_table: BTreeMap<String, u64>,
    running: BTreeMap<OpId, RunningOp>,
    /// The client's requests still on their way, with the operation they start.
    client_requests_in_flight: BTreeMap<MsgId, OpId>,
    /// Versions confirmed to clients, with when, in increasing order of both.
    confirmed: BTreeMap<SourceRow, Vec<(Micros, u64)>>,
}

impl CallMetrics {
    /// Counts what `event` adds.
    pub fn apply(&mut self, event: &TraceEvent) {
        match &event.event {
            Event::OpStarted { op, name, .. } => {
                self.by_op.entry(name.clone()).or_default().started += 1;
                let running = RunningOp {
                    name: name.clone(),
                    started: event.at,
                };
                self.running.insert(*op, running);
            }
            // A request with no cause is the client's own; one with a cause is a call a
            // service makes while handling it.
            Event::Sent {
                msg,
                kind: MessageKind::Request,
                op: Some(op),
                caused_by,
                ..
            } => match caused_by {
                None => {
                    self.client_requests_in_flight.insert(*msg, *op);
                }
                Some(_) => {
                    if let Some(running) = self.running.get(op) {
                        self.by_op.entry(running.name.clone()).or_default().calls += 1;
                    }
                }
            },
            Event::Duplicated { msg, copy } => {
                if let Some(op) = self.client_requests_in_flight.get(msg).copied() {
                    self.client_requests_in_flight.insert(*copy, op);
                }
            }
            Event::Delivered { msg } => {
                let running = self
                    .client_requests_in_flight
                    .remove(msg)
                    .and_then(|op| self.running.get(&op));
                if let Some(running) = running {
                    self.by_op.entry(running.name.clone()).or_default().arrived += 1;
                }
            }
            Event::Dropped { msg, .. } => {
                self.client_requests_in_flight.remove(msg);
            }
            Event::OpFinished {
                op,
                outcome,
                observed,
                ..
            } => {
                let Some(running) = self.running.remove(op) else {
                    return;
                };
                if outcome.is_ok() {
                    self.judge(running.started, observed, event.at);
                }
            }
            _ => {}
        }
    }

    /// Counts the stale rows of an answer, then records the versions it confirms.
    fn judge(&mut self, started: Micros, observed: &[Observed], now: Micros) {
        for seen in observed {
            let row = (
                seen.source_service,
                seen.source_table.clone(),
                seen.key.clone(),
            );
            let stale = self.confirmed.get(&row).is_some_and(|history| {
                let known = history.partition_point(|(at, _)| *at <= started);
                known > 0 && history[known - 1].1 > seen.version
            });
            if stale {
                *self
                    .stale_reads_by_table
                    .entry(seen.source_table.clone())
                    .or_default() += 1;
            }
        }
        for seen in observed {
            let row = (
                seen.source_service,
                seen.source_table.clone(),
                seen.key.clone(),
            );
            let history = self.confirmed.entry(row).or_default();
            if history
                .last()
                .is_none_or(|(_, version)| seen.version > *version)
            {
                history.push((now, seen.version));
            }
        }
    }

    /// The calls of operation `name`, or none.
    pub fn op(&self, name: &str) -> OpCalls {
        self.by_op.get(name).cloned().unwrap_or_default()
    }

    /// Stale answers whose stale row came from `table`.
    pub fn stale_reads_of(&self, table: &str) -> u64 {
        self.stale_reads_by_table.get(table).copied().unwrap_or(0)
    }
}
