//! The frame-time benchmark's synthetic trace: exactly N messages in flight at every moment,
//! served to the page as a recorded trace (`?source=recorded&trace=/bench/<N>.jsonl`), so the
//! page needs no benchmark mode of its own.

use shared::protocol::{Event, MessageKind, MsgId, RunRequest, Trace, TraceEvent};
use shared::time::Micros;

/// How long each synthetic message is in flight.
pub const BENCH_HOP: Micros = Micros(2_000_000);
/// How long the synthetic trace lasts; the benchmark loops over it.
pub const BENCH_UNTIL: Micros = Micros(8_000_000);

/// A trace over the request-response scenario's services in which `messages` messages are in
/// flight at every moment of `0..BENCH_UNTIL`, spread over every link in both directions.
pub fn synthetic_trace(messages: u32) -> Trace {
    let request = RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: BENCH_UNTIL.as_secs_f64(),
        knobs: Default::default(),
        faults: Vec::new(),
    };
    let mut header = engine::start(&request)
        .expect("the request-response scenario starts")
        .header()
        .clone();
    header.scenario = format!("benchmark-{messages}");
    let routes: Vec<_> = header
        .links
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .collect();
    let kinds = [
        MessageKind::Request,
        MessageKind::Response,
        MessageKind::Event,
        MessageKind::Ack,
    ];
    let n = u64::from(messages.max(1));
    let spacing_us = (BENCH_HOP.0 / n).max(1);
    // Every service is up from the start.
    let mut events: Vec<TraceEvent> = header
        .services
        .iter()
        .map(|s| TraceEvent {
            at: Micros::ZERO,
            event: Event::ServiceUp { service: s.id },
        })
        .collect();
    let mut next_id = 0u64;
    let mut add = |sent: Micros, arrives: Micros, events: &mut Vec<TraceEvent>| {
        let (from, to) = routes[next_id as usize % routes.len()];
        let kind = kinds[next_id as usize % kinds.len()];
        events.push(TraceEvent {
            at: sent,
            event: Event::Sent {
                msg: MsgId(next_id),
                from,
                to,
                kind,
                label: format!("bench {next_id}").into(),
                op: None,
                caused_by: None,
            },
        });
        events.push(TraceEvent {
            at: arrives,
            event: Event::Delivered {
                msg: MsgId(next_id),
            },
        });
        next_id += 1;
    };
    // At the start, `n` messages already on their way, arriving evenly over the first hop…
    for i in 0..n {
        add(Micros::ZERO, Micros((i + 1) * spacing_us), &mut events);
    }
    // …and from then on one sent for each one that arrives.
    let mut sent = spacing_us;
    while sent < BENCH_UNTIL.0 {
        add(Micros(sent), Micros(sent) + BENCH_HOP, &mut events);
        sent += spacing_us;
    }
    // Sends and arrivals interleave: put them in time order, ties keeping their order.
    events.sort_by_key(|e| e.at);
    Trace { header, events }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Messages sent at or before `t` and delivered after it.
    fn in_flight_at(trace: &Trace, t: Micros) -> usize {
        let mut sent = BTreeMap::new();
        for event in trace.events.iter().take_while(|e| e.at <= t) {
            match event.event {
                Event::Sent { msg, .. } => {
                    sent.insert(msg, ());
                }
                Event::Delivered { msg } => {
                    sent.remove(&msg);
                }
                _ => {}
            }
        }
        sent.len()
    }

    #[test]
    fn the_synthetic_trace_keeps_the_asked_number_in_flight() {
        for messages in [1, 500, 2_000] {
            let trace = synthetic_trace(messages);
            for ms in [0, 1, 999, 2_000, 4_321, 7_999] {
                let in_flight = in_flight_at(&trace, Micros::from_millis(ms));
                assert!(
                    in_flight.abs_diff(messages as usize) <= 1,
                    "{messages} asked, {in_flight} in flight at {ms} ms"
                );
            }
        }
        // It reads back as any recorded trace does.
        let trace = synthetic_trace(50);
        assert_eq!(Trace::from_jsonl(&trace.to_jsonl()).unwrap(), trace);
    }
}
