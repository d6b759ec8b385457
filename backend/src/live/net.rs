//! The network between live services: each message is one HTTP `POST /messages` to its
//! receiver's own port, held back first by the delay the simulation's network model gives it
//! (`shared::network::fate`), so flows stay visible and faults (slow services, partitions,
//! lost, duplicated and reordered messages) behave live as they do simulated.

use shared::network::Fate;
use shared::protocol::{Fault, LinkSpec, ServiceId};
use shared::rng::SimRng;
use std::sync::Mutex;

/// The links' behaviour: the scenario's [`LinkSpec`] and the faults in force now.
pub struct Network {
    spec: LinkSpec,
    faults: Mutex<Vec<Fault>>,
    rng: Mutex<SimRng>,
}

/// True when `a` and `b` are the same kind of fault on the same service or link, whatever
/// their factor or share: healing one heals the other.
fn same_target(a: &Fault, b: &Fault) -> bool {
    match (a, b) {
        (Fault::Crash { service: x }, Fault::Crash { service: y })
        | (Fault::Slow { service: x, .. }, Fault::Slow { service: y, .. }) => x == y,
        (Fault::Partition { link: x }, Fault::Partition { link: y })
        | (Fault::Drop { link: x, .. }, Fault::Drop { link: y, .. })
        | (Fault::Duplicate { link: x, .. }, Fault::Duplicate { link: y, .. })
        | (Fault::Reorder { link: x, .. }, Fault::Reorder { link: y, .. }) => {
            x == y
                || matches!((x, y), (shared::protocol::LinkId::Between(a, b), shared::protocol::LinkId::Between(c, d)) if (a, b) == (d, c))
        }
        _ => false,
    }
}

impl Network {
    /// A network that behaves as `spec` says, drawing from `rng`.
    pub fn new(spec: LinkSpec, rng: SimRng) -> Network {
        Network {
            spec,
            faults: Mutex::new(Vec::new()),
            rng: Mutex::new(rng),
        }
    }

    /// Puts `fault` in force, replacing one of the same kind on the same target.
    pub fn begin(&self, fault: Fault) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.retain(|f| !same_target(f, &fault));
        faults.push(fault);
    }

    /// Ends the faults of `fault`'s kind on its target; true when one was in force.
    pub fn end(&self, fault: &Fault) -> bool {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let before = faults.len();
        faults.retain(|f| !same_target(f, fault));
        faults.len() < before
    }

    /// The fate of the next message from `from` to `to`.
    pub fn fate(&self, from: ServiceId, to: ServiceId) -> Fate {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let in_force: Vec<&Fault> = faults.iter().collect();
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        shared::network::fate(&self.spec, &in_force, from, to, &mut rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{DropReason, LinkId};
    use shared::time::Micros;

    #[test]
    fn faults_begin_and_heal_by_kind_and_target() {
        let spec = LinkSpec {
            latency: Micros::from_millis(10),
            jitter: Micros::ZERO,
            loss_per_million: 0,
        };
        let network = Network::new(spec, SimRng::new(1));
        let (a, b, c) = (ServiceId(0), ServiceId(1), ServiceId(2));
        assert_eq!(network.fate(a, b).delay, Micros::from_millis(10));
        network.begin(Fault::Slow {
            service: b,
            factor: 4,
        });
        assert_eq!(network.fate(a, b).delay, Micros::from_millis(40));
        assert_eq!(network.fate(a, c).delay, Micros::from_millis(10));
        network.begin(Fault::Partition {
            link: LinkId::Between(a, b),
        });
        assert_eq!(network.fate(b, a).lost, Some(DropReason::Partitioned));
        assert!(network.end(&Fault::Partition {
            link: LinkId::Between(b, a)
        }));
        assert_eq!(network.fate(b, a).lost, None);
        assert!(network.end(&Fault::Slow {
            service: b,
            factor: 2
        }));
        assert!(!network.end(&Fault::Slow {
            service: b,
            factor: 2
        }));
        assert_eq!(network.fate(a, b).delay, Micros::from_millis(10));
    }
}
