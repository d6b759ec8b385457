//! The network between live services: each message is one HTTP `POST /messages` to its
//! receiver's own port, held back first by the delay the simulation's network model gives it
//! (`shared::network::fate`), so flows stay visible and faults (slow services, partitions,
//! lost, duplicated and reordered messages) behave live as they do simulated.

use shared::in_force::{FaultOrigin, NetworkFaults};
use shared::network::Fate;
use shared::protocol::{Fault, LinkSpec, ServiceId};
use shared::rng::SimRng;
use std::sync::Mutex;

/// The links' behaviour: the scenario's [`LinkSpec`] and the faults in force now, which compose
/// as in the simulation ([`shared::in_force`]).
pub struct Network {
    spec: LinkSpec,
    faults: Mutex<NetworkFaults>,
    rng: Mutex<SimRng>,
}

impl Network {
    /// A network that behaves as `spec` says, drawing from `rng`.
    pub fn new(spec: LinkSpec, rng: SimRng) -> Network {
        Network {
            spec,
            faults: Mutex::new(NetworkFaults::default()),
            rng: Mutex::new(rng),
        }
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, NetworkFaults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `fault` in force (see [`NetworkFaults::begin`]).
    pub fn begin(&self, origin: FaultOrigin, fault: Fault) {
        self.faults().begin(origin, fault);
    }

    /// Ends the scheduled fault at `index` of the header; returns it, if it was in force.
    pub fn end_scheduled(&self, index: usize) -> Option<Fault> {
        self.faults().end_scheduled(index)
    }

    /// Ends every fault of `fault`'s kind on its target; returns those that were in force.
    pub fn heal(&self, fault: &Fault) -> Vec<Fault> {
        self.faults().heal(fault)
    }

    /// How many times slower `service` works now ([`NetworkFaults::slow_factor`]).
    pub fn slow_factor(&self, service: ServiceId) -> u32 {
        self.faults().slow_factor(service)
    }

    /// The fate of the next message from `from` to `to`.
    pub fn fate(&self, from: ServiceId, to: ServiceId) -> Fate {
        let faults = self.faults();
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        shared::network::fate(&self.spec, faults.iter(), from, to, &mut rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{DropReason, LinkId};
    use shared::time::Micros;

    #[test]
    fn faults_begin_stack_and_heal_by_kind_and_target() {
        let spec = LinkSpec {
            latency: Micros::from_millis(10),
            jitter: Micros::ZERO,
            loss_per_million: 0,
        };
        let network = Network::new(spec, SimRng::new(1));
        let (a, b, c) = (ServiceId(0), ServiceId(1), ServiceId(2));
        assert_eq!(network.fate(a, b).delay, Micros::from_millis(10));
        let slow = |factor| Fault::Slow { service: b, factor };
        network.begin(FaultOrigin::Scheduled(0), slow(4));
        network.begin(FaultOrigin::Scheduled(1), slow(2));
        assert_eq!(network.fate(a, b).delay, Micros::from_millis(40));
        assert_eq!(network.fate(a, c).delay, Micros::from_millis(10));
        assert_eq!(network.end_scheduled(0), Some(slow(4)));
        assert_eq!(
            network.fate(a, b).delay,
            Micros::from_millis(20),
            "the other slow fault is still in force"
        );
        network.begin(
            FaultOrigin::Command,
            Fault::Partition {
                link: LinkId::Between(a, b),
            },
        );
        assert_eq!(network.fate(b, a).lost, Some(DropReason::Partitioned));
        assert_eq!(
            network
                .heal(&Fault::Partition {
                    link: LinkId::Between(b, a)
                })
                .len(),
            1
        );
        assert_eq!(network.fate(b, a).lost, None);
        assert_eq!(network.heal(&slow(9)), [slow(2)]);
        assert!(network.heal(&slow(9)).is_empty());
        assert_eq!(network.end_scheduled(1), None, "healed already");
        assert_eq!(network.fate(a, b).delay, Micros::from_millis(10));
    }
}
