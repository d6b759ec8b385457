//! What resilience on a call path did, from the trace alone: reads answered degraded (an
//! [`Outcome::Degraded`](crate::protocol::Outcome::Degraded)), calls between services that
//! reached their receiver (the callee's load), lookups dropped because their deadline had passed
//! (`sent` labels beginning [`DEADLINE_EXCEEDED_LABEL_PREFIX`]), how often a circuit breaker
//! opened, and calls a caller made through its own open breaker (besides the one probe of a
//! half-open breaker) — always zero for a correct breaker.

use crate::protocol::{CircuitState, Event, MessageKind, MsgSet, ServiceId};
use crate::services::DEADLINE_EXCEEDED_LABEL_PREFIX;
use crate::slot_map::DenseMap;

/// The counts so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResilienceStats {
    /// Operations that finished degraded.
    pub degraded_ops: u64,
    /// Calls (requests a service sent while handling another message) delivered.
    pub calls_received: u64,
    /// Refusals of work whose caller's deadline had passed.
    pub dropped_past_deadline: u64,
    /// Times a breaker opened (from closed, or again after a failed probe).
    pub breaker_opened: u64,
    /// Calls through an open breaker, or beyond the one probe of a half-open one.
    pub calls_while_breaker_open: u64,
    /// Calls on their way, to count them when delivered.
    calls_in_flight: MsgSet,
    /// Each breaker's state by (caller, callee), and the calls made since it went half-open.
    breakers: DenseMap<ServiceId, DenseMap<ServiceId, (CircuitState, u64)>>,
}

impl ResilienceStats {
    /// Takes in what `event` changes.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::OpFinished { outcome, .. } if outcome.is_degraded() => self.degraded_ops += 1,
            Event::Sent {
                msg,
                from,
                to,
                kind,
                label,
                caused_by,
                ..
            } => {
                if *kind == MessageKind::Request && caused_by.is_some() {
                    self.calls_in_flight.insert(msg.key());
                    if let Some((state, calls)) = self
                        .breakers
                        .get_mut(from)
                        .and_then(|to_peers| to_peers.get_mut(to))
                    {
                        *calls += 1;
                        let allowed = match state {
                            CircuitState::Closed => true,
                            CircuitState::HalfOpen => *calls <= 1,
                            CircuitState::Open => false,
                        };
                        if !allowed {
                            self.calls_while_breaker_open += 1;
                        }
                    }
                }
                if label.starts_with(DEADLINE_EXCEEDED_LABEL_PREFIX) {
                    self.dropped_past_deadline += 1;
                }
            }
            Event::Duplicated { msg, copy } if self.calls_in_flight.contains(&msg.key()) => {
                self.calls_in_flight.insert(copy.key());
            }
            Event::Delivered { msg } if self.calls_in_flight.remove(&msg.key()) => {
                self.calls_received += 1;
            }
            Event::Dropped { msg, .. } => {
                self.calls_in_flight.remove(&msg.key());
            }
            Event::CircuitChanged {
                service,
                peer,
                state,
            } => {
                if *state == CircuitState::Open {
                    self.breaker_opened += 1;
                }
                self.breakers
                    .entry(*service)
                    .or_default()
                    .insert(*peer, (*state, 0));
            }
            // A crash forgets the breaker (it lives in memory): it starts closed again.
            Event::ServiceDown { service } => {
                self.breakers.remove(service);
            }
            _ => {}
        }
    }
}
