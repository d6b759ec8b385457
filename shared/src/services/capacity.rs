//! Capacity: a service that takes time to handle each request and handles only so many at once.
//!
//! [`Capacity`] wraps any service's machine. Each request that arrives (a message of kind
//! request; responses, events and acks go straight through, as continuations of work already
//! admitted) takes a worker for a service time drawn from the run's generator, then reaches the
//! inner machine, which answers as it always does. While every worker is busy a request waits in
//! a bounded queue, first come first served; when the queue is full it is shed at once: the
//! caller gets `503 overloaded: …` (a [`Payload::Failed`], which every caller already treats as
//! a failure). Each change of busy workers or waiting requests is recorded as
//! [`Event::ServiceLoad`], so the map, the charts and the summary read load from the trace alone.
//!
//! The worker's time is spent *before* the inner machine sees the request, so whatever it does
//! (reply, write, call another service) happens when the work is done. A service that then waits
//! on another (Order waiting on Product) does not hold a worker while it waits: workers model
//! CPU, not connections (Order's connection pool models those).
//!
//! A `slow` fault on the service multiplies the service time of requests started while it is in
//! force ([`Ctx::slow_factor`]), so work queues up behind it. A crash loses the machine and with
//! it the wrapper: requests in service and waiting are gone, and their callers time out.
//!
//! The wrapper's timers come from the same allocator as the inner machine's, so they never clash:
//! a timer the wrapper does not know is the inner machine's.

use crate::protocol::{Event, MessageKind, Payload};
use crate::service::{Ctx, Envelope, Input, Service, TimerMap};
use crate::slot_map::SlotMap;
use crate::time::Micros;
use std::collections::VecDeque;

/// The prefix of the label of a request shed because the queue was full (`503 overloaded: …`).
pub const OVERLOADED_LABEL_PREFIX: &str = "503 overloaded: ";

/// How much a service can do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CapacityConfig {
    /// Requests handled at once; 0 means unlimited (each request still takes its service time).
    pub workers: u32,
    /// The mean time one request takes a worker. Each draw is uniform between half and one and a
    /// half times it (integer µs from the run's generator), times the slow factor in force.
    pub service_time: Micros,
    /// Requests that may wait for a worker; one more is shed. 0 sheds every request that finds
    /// all workers busy.
    pub queue_max: u32,
}

impl CapacityConfig {
    /// True when the capacity changes nothing: no service time. Such a service is not wrapped,
    /// so its trace is what it was before capacity existed.
    pub fn is_unlimited(&self) -> bool {
        self.service_time == Micros::ZERO
    }

    /// One request's service time: uniform in [½, 1½] × the mean, times `slow_factor`.
    fn draw(&self, ctx: &mut Ctx<'_>) -> Micros {
        let mean = self.service_time.0;
        let base = mean / 2 + ctx.rng.below(mean + 1);
        Micros(base.saturating_mul(ctx.slow_factor.max(1) as u64))
    }
}

/// A service with a worker pool and a bounded waiting queue in front of `inner`.
pub struct Capacity {
    inner: Box<dyn Service>,
    config: CapacityConfig,
    /// The service's name, for narration.
    name: String,
    /// Requests being worked on, by the timer that ends their work.
    in_service: TimerMap<Envelope>,
    /// Requests waiting for a worker, oldest first.
    waiting: VecDeque<Envelope>,
    /// Whether the current busy spell (requests waiting) has been told, and whether a shed in it.
    told_busy: bool,
    told_shed: bool,
    /// The slow factor last told, so a slow spell is told once when it begins.
    told_slow_factor: u32,
}

impl Capacity {
    /// `inner`, called `name`, limited by `config`.
    pub fn new(inner: Box<dyn Service>, config: CapacityConfig, name: &str) -> Capacity {
        Capacity {
            inner,
            config,
            name: name.to_string(),
            in_service: SlotMap::new(),
            waiting: VecDeque::new(),
            told_busy: false,
            told_shed: false,
            told_slow_factor: 1,
        }
    }

    fn busy(&self) -> u32 {
        self.in_service.len() as u32
    }

    fn has_free_worker(&self) -> bool {
        self.config.workers == 0 || self.busy() < self.config.workers
    }

    fn record_load(&self, ctx: &mut Ctx<'_>) {
        ctx.record(Event::ServiceLoad {
            service: ctx.me,
            workers: self.config.workers,
            busy: self.busy(),
            waiting: self.waiting.len() as u32,
        });
    }

    fn start(&mut self, mut request: Envelope, ctx: &mut Ctx<'_>) {
        // A request whose caller gave up while it waited (its deadline passed) takes no
        // worker's time: the inner machine drops it at once, saying so, and the worker takes
        // the next one.
        while request
            .payload
            .deadline()
            .is_some_and(|deadline| ctx.now > deadline)
        {
            self.inner.handle(Input::Message(&mut request), ctx);
            match self.waiting.pop_front() {
                Some(next) => request = next,
                None => return,
            }
        }
        let factor = ctx.slow_factor.max(1);
        if factor != self.told_slow_factor {
            self.told_slow_factor = factor;
            if factor > 1 {
                ctx.narrate(format!(
                    "{} is slow: each request now takes {factor}× as long to work on (about {} ms), so work queues up.",
                    self.name,
                    self.config.service_time.0 * factor as u64 / 1_000
                ));
            }
        }
        let took = self.config.draw(ctx);
        let timer = ctx.set_timer(took);
        self.in_service.insert(timer.key(), request);
    }

    fn admit(&mut self, request: &Envelope, ctx: &mut Ctx<'_>) {
        let (workers, queue_max) = (self.config.workers, self.config.queue_max);
        if self.has_free_worker() {
            self.start(request.clone(), ctx);
        } else if (self.waiting.len() as u32) < queue_max {
            self.waiting.push_back(request.clone());
            if !self.told_busy {
                self.told_busy = true;
                ctx.narrate(format!(
                    "{} busy: {workers}/{workers} workers, {} waiting — requests queue for a worker and wait longer.",
                    self.name,
                    self.waiting.len()
                ));
            }
        } else {
            let reason = format!(
                "overloaded: {} is busy ({workers}/{workers} workers, queue full at {queue_max})",
                self.name
            );
            ctx.reply(request, Payload::Failed { reason });
            if !self.told_shed {
                self.told_shed = true;
                ctx.narrate(format!(
                    "{} shed a request: queue full ({queue_max}) — the caller is refused at once (503 overloaded).",
                    self.name
                ));
            }
            // Nothing changed: no load to record.
            return;
        }
        self.record_load(ctx);
    }

    /// A request's work is done: the inner machine handles it, and the worker takes the next.
    fn finish(&mut self, mut request: Envelope, ctx: &mut Ctx<'_>) {
        self.inner.handle(Input::Message(&mut request), ctx);
        if let Some(next) = self.waiting.pop_front() {
            self.start(next, ctx);
        }
        if self.waiting.is_empty() {
            self.told_busy = false;
            self.told_shed = false;
        }
        self.record_load(ctx);
    }
}

impl Service for Capacity {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Message(message) if message.payload.kind() == MessageKind::Request => {
                self.admit(message, ctx);
            }
            Input::Timer(timer) => match self.in_service.remove(&timer.key()) {
                Some(request) => self.finish(request, ctx),
                None => self.inner.handle(input, ctx),
            },
            other => self.inner.handle(other, ctx),
        }
    }

    fn subscriptions(&self) -> Vec<super::Subscription> {
        self.inner.subscriptions()
    }

    fn broker_config(&self) -> Option<super::BrokerConfig> {
        self.inner.broker_config()
    }

    fn crash_narration(&self, name: &str) -> Option<String> {
        let lost = self.busy() as usize + self.waiting.len();
        let inner = self.inner.crash_narration(name);
        if lost == 0 {
            return inner;
        }
        let own = format!(
            "{name} crashed with {} request(s) in work and {} waiting: they are lost, and their callers wait until they time out.",
            self.busy(),
            self.waiting.len()
        );
        Some(match inner {
            Some(inner) => format!("{inner} {own}"),
            None => own,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MsgId, ServiceId};
    use crate::rng::SimRng;
    use crate::service::{Effect, IdAllocator, MemTables, TimerId};

    /// Answers every request at once with `ok`.
    struct Echo;
    impl Service for Echo {
        fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
            if let Input::Message(message) = input {
                ctx.reply(
                    message,
                    Payload::Renamed {
                        product: 1,
                        version: 1,
                    },
                );
            }
        }
    }

    struct Harness {
        machine: Capacity,
        rng: SimRng,
        tables: MemTables,
        ids: IdAllocator,
        timers: Vec<(Micros, TimerId)>,
        now: Micros,
    }

    impl Harness {
        fn new(config: CapacityConfig) -> Harness {
            Harness {
                machine: Capacity::new(Box::new(Echo), config, "Product"),
                rng: SimRng::new(7),
                tables: MemTables::default(),
                ids: IdAllocator::default(),
                timers: Vec::new(),
                now: Micros::ZERO,
            }
        }

        fn run(&mut self, input: Input<'_>, slow_factor: u32) -> Vec<Effect> {
            let mut ctx = Ctx::new(
                self.now,
                ServiceId(2),
                &mut self.rng,
                &mut self.tables,
                &mut self.ids,
            );
            ctx.slow_factor = slow_factor;
            self.machine.handle(input, &mut ctx);
            let effects = ctx.into_effects();
            for effect in &effects {
                if let Effect::SetTimer { id, after } = effect {
                    self.timers.push((self.now + *after, *id));
                }
            }
            effects
        }

        fn request(&mut self, n: u64) -> Vec<Effect> {
            let mut envelope = Envelope {
                id: MsgId(n),
                from: ServiceId(1),
                to: ServiceId(2),
                op: None,
                caused_by: None,
                payload: Payload::GetProduct {
                    product: 1,
                    deadline: None,
                },
            };
            self.run(Input::Message(&mut envelope), 1)
        }

        /// Fires the earliest timer.
        fn fire_next(&mut self) -> Vec<Effect> {
            self.timers.sort();
            let (at, timer) = self.timers.remove(0);
            self.now = at;
            self.run(Input::Timer(timer), 1)
        }
    }

    fn loads(effects: &[Effect]) -> Vec<(u32, u32)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record(Event::ServiceLoad { busy, waiting, .. }) => Some((*busy, *waiting)),
                _ => None,
            })
            .collect()
    }

    fn replies(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(envelope) => Some(envelope.payload.label().to_string()),
                _ => None,
            })
            .collect()
    }

    const TWO_WORKERS: CapacityConfig = CapacityConfig {
        workers: 2,
        service_time: Micros(10_000),
        queue_max: 1,
    };

    #[test]
    fn requests_take_workers_then_wait_then_are_shed() {
        let mut h = Harness::new(TWO_WORKERS);
        assert_eq!(loads(&h.request(1)), [(1, 0)]);
        assert_eq!(loads(&h.request(2)), [(2, 0)]);
        let queued = h.request(3);
        assert_eq!(loads(&queued), [(2, 1)]);
        assert!(
            replies(&queued).is_empty(),
            "a waiting request is not answered yet"
        );
        let shed = h.request(4);
        assert_eq!(loads(&shed), [], "shedding changes no load");
        let labels = replies(&shed);
        assert_eq!(labels.len(), 1);
        assert!(labels[0].starts_with(OVERLOADED_LABEL_PREFIX), "{labels:?}");
        assert!(labels[0].contains("queue full at 1"), "{labels:?}");
        // The first worker done answers its request and takes the waiting one.
        let done = h.fire_next();
        assert_eq!(replies(&done).len(), 1);
        assert_eq!(loads(&done), [(2, 0)]);
        h.fire_next();
        assert_eq!(loads(&h.fire_next()), [(0, 0)]);
        assert!(h.timers.is_empty());
    }

    #[test]
    fn service_times_are_drawn_around_the_mean_and_stretched_by_a_slow_fault() {
        let mut h = Harness::new(CapacityConfig {
            workers: 0,
            ..TWO_WORKERS
        });
        for n in 0..200 {
            h.request(n);
        }
        let times: Vec<u64> = h.timers.iter().map(|(at, _)| at.0).collect();
        assert!(
            times.iter().all(|t| (5_000..=15_000).contains(t)),
            "{times:?}"
        );
        let mean = times.iter().sum::<u64>() / times.len() as u64;
        assert!((9_000..=11_000).contains(&mean), "mean {mean}");
        // Unlimited workers: nothing ever waits.
        assert_eq!(h.machine.waiting.len(), 0);
        h.timers.clear();
        let mut envelope = Envelope {
            id: MsgId(999),
            from: ServiceId(1),
            to: ServiceId(2),
            op: None,
            caused_by: None,
            payload: Payload::GetProduct {
                product: 1,
                deadline: None,
            },
        };
        h.run(Input::Message(&mut envelope), 4);
        assert!(
            (20_000..=60_000).contains(&h.timers[0].0.0),
            "{:?}",
            h.timers
        );
    }

    #[test]
    fn responses_and_foreign_timers_pass_straight_through() {
        let mut h = Harness::new(TWO_WORKERS);
        let mut response = Envelope {
            id: MsgId(5),
            from: ServiceId(1),
            to: ServiceId(2),
            op: None,
            caused_by: Some(MsgId(1)),
            payload: Payload::Renamed {
                product: 1,
                version: 2,
            },
        };
        // Echo answers whatever message it sees, so an answer now means it passed straight on.
        let effects = h.run(Input::Message(&mut response), 1);
        assert_eq!(replies(&effects).len(), 1);
        assert!(loads(&effects).is_empty());
        let effects = h.run(Input::Timer(TimerId(12_345)), 1);
        assert!(effects.is_empty());
    }

    #[test]
    fn a_crash_narration_counts_the_work_lost() {
        let mut h = Harness::new(TWO_WORKERS);
        assert_eq!(h.machine.crash_narration("Product"), None);
        for n in 1..=3 {
            h.request(n);
        }
        let text = h.machine.crash_narration("Product").unwrap();
        assert!(
            text.contains("2 request(s) in work and 1 waiting"),
            "{text}"
        );
    }
}
