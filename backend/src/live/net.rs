//! The network between live services: each message is one HTTP `POST /messages` to its
//! receiver's own port, held back first by the link's delay so flows stay visible. The page can
//! slow a link or cut it; a cut link loses what is sent on it.

use shared::protocol::{LinkSpec, ServiceId};
use shared::rng::SimRng;
use shared::time::Micros;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How one link between two services is changed from its scenario's behaviour.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct LinkChange {
    slow_factor: u32,
    cut: bool,
}

impl Default for LinkChange {
    fn default() -> Self {
        LinkChange {
            slow_factor: 1,
            cut: false,
        }
    }
}

/// What happens to a message put on a link.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives after this delay.
    Arrives(Duration),
    /// The link is cut: after this delay the sender's packets are known to be lost.
    Lost(Duration),
}

/// The links' behaviour: the scenario's [`LinkSpec`] plus the page's changes.
pub struct Links {
    spec: LinkSpec,
    changes: Mutex<BTreeMap<(ServiceId, ServiceId), LinkChange>>,
    jitter: Mutex<SimRng>,
}

/// Links are undirected: `(a, b)` and `(b, a)` are one key.
fn key(a: ServiceId, b: ServiceId) -> (ServiceId, ServiceId) {
    (a.min(b), a.max(b))
}

impl Links {
    /// Links that behave as `spec` says, with jitter drawn from `rng`.
    pub fn new(spec: LinkSpec, rng: SimRng) -> Links {
        Links {
            spec,
            changes: Mutex::new(BTreeMap::new()),
            jitter: Mutex::new(rng),
        }
    }

    /// Multiplies the delay of the link between `a` and `b` by `factor` (1 restores it).
    pub fn slow(&self, a: ServiceId, b: ServiceId, factor: u32) {
        self.change(a, b, |change| change.slow_factor = factor.max(1));
    }

    /// Cuts (`cut`) or heals the link between `a` and `b`.
    pub fn cut(&self, a: ServiceId, b: ServiceId, cut: bool) {
        self.change(a, b, |change| change.cut = cut);
    }

    fn change(&self, a: ServiceId, b: ServiceId, apply: impl FnOnce(&mut LinkChange)) {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let change = changes.entry(key(a, b)).or_default();
        apply(change);
        if *change == LinkChange::default() {
            changes.remove(&key(a, b));
        }
    }

    /// The fate of the next message from `from` to `to`.
    pub fn fate(&self, from: ServiceId, to: ServiceId) -> Fate {
        let change = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(from, to))
            .copied()
            .unwrap_or_default();
        let jitter = self
            .jitter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .below(self.spec.jitter.0 + 1);
        let delay =
            Micros((self.spec.latency.0 + jitter).saturating_mul(change.slow_factor.into()));
        let delay = Duration::from_micros(delay.0);
        if change.cut {
            Fate::Lost(delay)
        } else {
            Fate::Arrives(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowing_multiplies_the_delay_and_cutting_loses_both_ways() {
        let spec = LinkSpec {
            latency: Micros::from_millis(10),
            jitter: Micros::ZERO,
            loss_per_million: 0,
        };
        let links = Links::new(spec, SimRng::new(1));
        let (a, b, c) = (ServiceId(0), ServiceId(1), ServiceId(2));
        assert_eq!(links.fate(a, b), Fate::Arrives(Duration::from_millis(10)));
        links.slow(b, a, 4);
        assert_eq!(links.fate(a, b), Fate::Arrives(Duration::from_millis(40)));
        assert_eq!(links.fate(a, c), Fate::Arrives(Duration::from_millis(10)));
        links.cut(a, b, true);
        assert_eq!(links.fate(b, a), Fate::Lost(Duration::from_millis(40)));
        links.cut(a, b, false);
        links.slow(a, b, 1);
        assert_eq!(links.fate(a, b), Fate::Arrives(Duration::from_millis(10)));
        assert!(links.changes.lock().unwrap().is_empty());
    }
}
