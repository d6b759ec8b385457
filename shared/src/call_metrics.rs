//! Synchronous calls between services, counted from the trace: how many each kind of operation
//! causes, and how many a cache spared. The hybrid scenario's calls per read and cache hit ratio
//! are read from these (its stale cache reads are `Metrics::stale_reads_by_table`).

use crate::protocol::{Event, MessageKind, MsgMap, OpId, OpMap, TraceEvent};
use crate::slot_map::SlotMap;

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

/// Calls so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallMetrics {
    /// Per operation name.
    pub by_op: SlotMap<String, OpCalls>,
    /// The name of each operation running.
    running: OpMap<String>,
    /// The client's requests still on their way, with the operation they start.
    client_requests_in_flight: MsgMap<OpId>,
}

impl CallMetrics {
    /// Counts what `event` adds.
    pub fn apply(&mut self, event: &TraceEvent) {
        match &event.event {
            Event::OpStarted { op, name, .. } => {
                self.by_op.entry(name.clone()).or_default().started += 1;
                self.running.insert(op.key(), name.clone());
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
                    self.client_requests_in_flight.insert(msg.key(), *op);
                }
                Some(_) => {
                    if let Some(name) = self.running.get(&op.key()) {
                        self.by_op.entry(name.clone()).or_default().calls += 1;
                    }
                }
            },
            Event::Duplicated { msg, copy } => {
                if let Some(op) = self.client_requests_in_flight.get(&msg.key()).copied() {
                    self.client_requests_in_flight.insert(copy.key(), op);
                }
            }
            Event::Delivered { msg } => {
                let running = self
                    .client_requests_in_flight
                    .remove(&msg.key())
                    .and_then(|op| self.running.get(&op.key()));
                if let Some(name) = running {
                    self.by_op.entry(name.clone()).or_default().arrived += 1;
                }
            }
            Event::Dropped { msg, .. } => {
                self.client_requests_in_flight.remove(&msg.key());
            }
            Event::OpFinished { op, .. } => {
                self.running.remove(&op.key());
            }
            _ => {}
        }
    }

    /// The calls of operation `name`, or none.
    pub fn op(&self, name: &str) -> OpCalls {
        self.by_op.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MsgId, ServiceId};
    use crate::time::Micros;

    const CLIENT: ServiceId = ServiceId(0);
    const RIDE: ServiceId = ServiceId(1);
    const DRIVER: ServiceId = ServiceId(2);

    fn at(ms: u64, event: Event) -> TraceEvent {
        TraceEvent {
            at: Micros::from_millis(ms),
            event,
        }
    }

    fn started(ms: u64, op: u64, name: &str) -> TraceEvent {
        let name = name.to_string();
        at(
            ms,
            Event::OpStarted {
                op: OpId(op),
                name,
                client: CLIENT,
            },
        )
    }

    fn request(ms: u64, msg: u64, from: ServiceId, op: u64, caused_by: Option<u64>) -> TraceEvent {
        let to = if from == CLIENT { RIDE } else { DRIVER };
        at(
            ms,
            Event::Sent {
                msg: MsgId(msg),
                from,
                to,
                kind: MessageKind::Request,
                label: "GET".into(),
                op: Some(OpId(op)),
                caused_by: caused_by.map(MsgId),
            },
        )
    }

    fn fold(events: &[TraceEvent]) -> CallMetrics {
        let mut metrics = CallMetrics::default();
        for event in events {
            metrics.apply(event);
        }
        metrics
    }

    #[test]
    fn calls_are_counted_per_operation_and_against_requests_that_arrived() {
        let delivered = |ms, msg| at(ms, Event::Delivered { msg: MsgId(msg) });
        let metrics = fold(&[
            // Read 1 misses the cache: one call to Driver.
            started(0, 1, "read ride"),
            request(0, 1, CLIENT, 1, None),
            delivered(40, 1),
            request(40, 2, RIDE, 1, Some(1)),
            // Read 2 arrives twice (the network duplicated it) and hits the cache both times.
            started(100, 2, "read ride"),
            request(100, 3, CLIENT, 2, None),
            at(
                100,
                Event::Duplicated {
                    msg: MsgId(3),
                    copy: MsgId(4),
                },
            ),
            delivered(140, 3),
            delivered(150, 4),
            // Read 3 is lost on its way: it never reaches Ride.
            started(200, 3, "read ride"),
            request(200, 5, CLIENT, 3, None),
            at(
                240,
                Event::Dropped {
                    msg: MsgId(5),
                    reason: crate::protocol::DropReason::Lost,
                },
            ),
        ]);
        let read = metrics.op("read ride");
        assert_eq!((read.started, read.arrived, read.calls), (3, 3, 1));
        assert_eq!(read.calls_per_op(), 1.0 / 3.0);
        assert!((read.cache_hit_ratio() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(OpCalls::default().cache_hit_ratio(), 0.0);
        let fanned_out = OpCalls {
            started: 1,
            arrived: 1,
            calls: 3,
        };
        assert_eq!(fanned_out.cache_hit_ratio(), 0.0, "floored at zero");
    }
}
