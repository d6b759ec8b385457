//! How a caller survives a slow or failing dependency: deadlines sent with each call, retries
//! with exponential backoff and jitter under a retry budget, and a circuit breaker. Order uses
//! them on its calls to Product; each piece is a plain value with no IO, tested here.

use crate::protocol::CircuitState;
use crate::rng::SimRng;
use crate::time::Micros;
use std::collections::VecDeque;

/// What a caller does about a dependency's trouble. The default does nothing: one call per
/// product, no deadline sent, no breaker (the request/response scenario as it always was).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resilience {
    /// Whether each call carries its deadline (when the caller gives up on it), so the callee
    /// can drop work nobody waits for any more.
    pub deadlines: bool,
    /// Retries of a failed call, at most, after the first attempt.
    pub retries: u32,
    /// The first retry's backoff; each next one doubles it. Jittered ("equal jitter": half of it
    /// fixed, half random).
    pub backoff: Micros,
    /// The retry budget, if retries are limited by one.
    pub budget: Option<RetryBudgetConfig>,
    /// The circuit breaker, if any.
    pub breaker: Option<BreakerConfig>,
}

/// Finagle's `RetryBudget` with `minRetriesPerSec = 0`: over the last `window` (its `ttl`),
/// retries may be at most `percent` % of the first attempts (its `percentCanRetry`).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct RetryBudgetConfig {
    /// Retries allowed per hundred first attempts.
    pub percent: u32,
    /// How far back calls count.
    pub window: Micros,
}

/// A consecutive-failure breaker (Polly's basic circuit breaker): `failures` failed calls in a
/// row open it; after `open_for` the next call is a probe (half-open) whose answer closes it or
/// opens it again.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open it.
    pub failures: u32,
    /// How long it stays open before it lets one probe through.
    pub open_for: Micros,
}

/// The delay before retry number `retry` (1 for the first): `backoff × 2^(retry−1)`, capped at
/// 64 × backoff, half of it fixed and half drawn from `rng`.
pub fn backoff_before(retry: u32, backoff: Micros, rng: &mut SimRng) -> Micros {
    let full = backoff
        .0
        .saturating_mul(1 << retry.saturating_sub(1).min(6));
    let half = full / 2;
    Micros(full - half + rng.below(half + 1))
}

/// Calls and retries of the last window, to decide whether one more retry fits the budget.
/// Bounded: at most [`RetryBudget::REMEMBERED_MAX`] times of each kind are remembered (older
/// ones are forgotten first, which can only make the budget stricter).
#[derive(Clone, Debug)]
pub struct RetryBudget {
    config: RetryBudgetConfig,
    first_attempts: VecDeque<Micros>,
    retries: VecDeque<Micros>,
}

impl RetryBudget {
    /// The most call times of either kind it remembers.
    pub const REMEMBERED_MAX: usize = 100_000;

    /// An empty budget: no retry fits until calls have been made.
    pub fn new(config: RetryBudgetConfig) -> RetryBudget {
        RetryBudget {
            config,
            first_attempts: VecDeque::new(),
            retries: VecDeque::new(),
        }
    }

    fn forget_before(&mut self, now: Micros) {
        let since = Micros(now.0.saturating_sub(self.config.window.0));
        for times in [&mut self.first_attempts, &mut self.retries] {
            while times.front().is_some_and(|at| *at < since) || times.len() > Self::REMEMBERED_MAX
            {
                times.pop_front();
            }
        }
    }

    /// Counts a first attempt (a deposit into the budget).
    pub fn first_attempt(&mut self, now: Micros) {
        self.first_attempts.push_back(now);
        self.forget_before(now);
    }

    /// Whether one more retry fits; if it does, it is counted (a withdrawal).
    pub fn try_retry(&mut self, now: Micros) -> bool {
        self.forget_before(now);
        let fits = (self.retries.len() as u64 + 1) * 100
            <= u64::from(self.config.percent) * self.first_attempts.len() as u64;
        if fits {
            self.retries.push_back(now);
        }
        fits
    }
}

/// What the breaker says about a call about to be made.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed: make it.
    Call,
    /// The cool-down is over: make it as the one probe (the breaker is now half-open).
    Probe,
    /// Open, or half-open with its probe out: do not call; use the fallback.
    Refuse,
}

/// A circuit breaker's state machine. It only decides; its owner records and narrates the
/// changes it reports.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: CircuitState,
    failures_in_a_row: u32,
    opened_at: Micros,
    probe_out: bool,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> CircuitBreaker {
        CircuitBreaker {
            config,
            state: CircuitState::Closed,
            failures_in_a_row: 0,
            opened_at: Micros::ZERO,
            probe_out: false,
        }
    }

    /// Its state now.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// May a call be made now? A probe moves it to half-open.
    pub fn admit(&mut self, now: Micros) -> Admission {
        match self.state {
            CircuitState::Closed => Admission::Call,
            CircuitState::Open if now.0 >= self.opened_at.0 + self.config.open_for.0 => {
                self.state = CircuitState::HalfOpen;
                self.probe_out = true;
                Admission::Probe
            }
            CircuitState::HalfOpen if !self.probe_out => {
                self.probe_out = true;
                Admission::Probe
            }
            CircuitState::Open | CircuitState::HalfOpen => Admission::Refuse,
        }
    }

    /// A call answered; returns the new state if this changed it.
    pub fn succeeded(&mut self, was_probe: bool) -> Option<CircuitState> {
        self.failures_in_a_row = 0;
        if was_probe {
            self.probe_out = false;
        }
        (self.state == CircuitState::HalfOpen && was_probe).then(|| {
            self.state = CircuitState::Closed;
            self.state
        })
    }

    /// A call failed (refused, timed out, or answered with a failure); returns the new state if
    /// this changed it.
    pub fn failed(&mut self, was_probe: bool, now: Micros) -> Option<CircuitState> {
        if was_probe {
            self.probe_out = false;
        }
        match self.state {
            CircuitState::HalfOpen if was_probe => {
                self.state = CircuitState::Open;
                self.opened_at = now;
                Some(self.state)
            }
            CircuitState::Closed => {
                self.failures_in_a_row += 1;
                (self.failures_in_a_row >= self.config.failures).then(|| {
                    self.failures_in_a_row = 0;
                    self.state = CircuitState::Open;
                    self.opened_at = now;
                    self.state
                })
            }
            // A call made before it opened, failing late: it is open already.
            CircuitState::Open | CircuitState::HalfOpen => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failures: 3,
            open_for: Micros::from_secs(1),
        })
    }

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_and_lets_one_probe_through_after_its_cool_down() {
        let mut b = breaker();
        let t = Micros::from_secs(5);
        assert_eq!(b.failed(false, t), None);
        assert_eq!(b.succeeded(false), None, "a success resets the count");
        assert_eq!(b.failed(false, t), None);
        assert_eq!(b.failed(false, t), None);
        assert_eq!(b.failed(false, t), Some(CircuitState::Open));
        assert_eq!(b.admit(Micros(t.0 + 999_999)), Admission::Refuse);
        assert_eq!(b.admit(Micros(t.0 + 1_000_000)), Admission::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(
            b.admit(Micros(t.0 + 1_000_001)),
            Admission::Refuse,
            "one probe"
        );
        let t2 = Micros(t.0 + 1_500_000);
        assert_eq!(b.failed(true, t2), Some(CircuitState::Open));
        assert_eq!(b.admit(Micros(t2.0 + 999_999)), Admission::Refuse);
        assert_eq!(b.admit(Micros(t2.0 + 1_000_000)), Admission::Probe);
        assert_eq!(b.succeeded(true), Some(CircuitState::Closed));
        assert_eq!(b.admit(Micros(t2.0 + 1_000_001)), Admission::Call);
    }

    #[test]
    fn a_late_failure_of_a_call_made_before_the_breaker_opened_changes_nothing() {
        let mut b = breaker();
        for _ in 0..3 {
            b.failed(false, Micros::ZERO);
        }
        assert_eq!(b.failed(false, Micros(10)), None);
        assert_eq!(b.succeeded(false), None);
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[test]
    fn the_retry_budget_allows_its_percent_of_the_window_s_first_attempts() {
        let mut budget = RetryBudget::new(RetryBudgetConfig {
            percent: 10,
            window: Micros::from_secs(10),
        });
        assert!(!budget.try_retry(Micros::ZERO), "nothing deposited yet");
        for i in 0..20 {
            budget.first_attempt(Micros(i));
        }
        assert!(budget.try_retry(Micros(20)));
        assert!(budget.try_retry(Micros(21)));
        assert!(
            !budget.try_retry(Micros(22)),
            "2 retries per 20 calls at 10 %"
        );
        // Ten seconds later the window holds none of them.
        let later = Micros::from_secs(10) + Micros(25);
        budget.first_attempt(later);
        assert!(!budget.try_retry(later));
    }

    #[test]
    fn backoff_doubles_with_equal_jitter() {
        let mut rng = SimRng::new(7);
        let base = Micros::from_millis(100);
        for retry in 1..=4u32 {
            let full = 100_000u64 << (retry - 1);
            for _ in 0..50 {
                let delay = backoff_before(retry, base, &mut rng).0;
                assert!(
                    (full / 2..=full).contains(&delay),
                    "retry {retry}: {delay} µs"
                );
            }
        }
    }
}
