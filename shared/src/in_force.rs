//! What is in force at a moment: the union of every fault covering it. The simulation and the
//! live runtime both keep their faults here, so overlapping faults compose the same way in both:
//! - a service is down while any crash covers it — a crash fault of the run, its own crash
//!   ([`crate::service::Effect::Crash`]) until its restart is due, or a viewer's crash (live);
//!   it restarts only when the last of them ends;
//! - network faults stack: each one in force applies ([`crate::network::fate`] says how they
//!   combine), and healing one leaves the others in force.

use crate::protocol::{Fault, LinkId, ServiceId};

/// Why a service is down.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrashCause {
    /// A crash fault of the run, by its index in the header's faults.
    Fault(usize),
    /// The service crashed itself and waits for its restart.
    OwnCrash,
    /// A viewer crashed it, or paused the load (live).
    Command,
}

/// Every service's causes of being down. Each service's causes are a short list without
/// repeats (a service has a handful at most), not a `BTreeSet`: a set type of its own would
/// carry its own tree code into the page.
#[derive(Clone, Debug, Default)]
pub struct CrashCauses {
    by_service: Vec<Vec<CrashCause>>,
}

impl CrashCauses {
    /// No service down, for `services` services.
    pub fn new(services: usize) -> CrashCauses {
        CrashCauses {
            by_service: vec![Vec::new(); services],
        }
    }

    /// Adds `cause`; true when it is the service's first, so the service goes down now.
    pub fn add(&mut self, service: ServiceId, cause: CrashCause) -> bool {
        let Some(causes) = self.by_service.get_mut(service.0 as usize) else {
            return false;
        };
        let first = causes.is_empty();
        if !causes.contains(&cause) {
            causes.push(cause);
        }
        first
    }

    /// Removes `cause`; true when it was the service's last, so the service may come back now.
    pub fn remove(&mut self, service: ServiceId, cause: CrashCause) -> bool {
        let Some(causes) = self.by_service.get_mut(service.0 as usize) else {
            return false;
        };
        let Some(at) = causes.iter().position(|c| *c == cause) else {
            return false;
        };
        causes.swap_remove(at);
        causes.is_empty()
    }

    /// Removes every cause: a viewer's restart overrides them all.
    pub fn clear(&mut self, service: ServiceId) {
        if let Some(causes) = self.by_service.get_mut(service.0 as usize) {
            causes.clear();
        }
    }

    /// True while some cause keeps the service down.
    pub fn is_down(&self, service: ServiceId) -> bool {
        self.by_service
            .get(service.0 as usize)
            .is_some_and(|causes| !causes.is_empty())
    }
}

/// Where a network fault came from, so each can end on its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FaultOrigin {
    /// A fault of the run, by its index in the header's faults.
    Scheduled(usize),
    /// A viewer's command (live): one per kind and target, until healed.
    Command,
}

/// The network faults in force.
#[derive(Clone, Debug, Default)]
pub struct NetworkFaults {
    faults: Vec<(FaultOrigin, Fault)>,
}

impl NetworkFaults {
    /// Puts `fault` in force. A viewer's fault replaces the viewer's earlier one of the same kind
    /// on the same target; a scheduled fault stacks on whatever is in force.
    pub fn begin(&mut self, origin: FaultOrigin, fault: Fault) {
        if origin == FaultOrigin::Command {
            self.faults
                .retain(|(o, f)| *o != FaultOrigin::Command || !same_target(f, &fault));
        }
        self.faults.push((origin, fault));
    }

    /// Ends the scheduled fault at `index`; returns it, if it was in force.
    pub fn end_scheduled(&mut self, index: usize) -> Option<Fault> {
        let at = self
            .faults
            .iter()
            .position(|(o, _)| *o == FaultOrigin::Scheduled(index))?;
        Some(self.faults.remove(at).1)
    }

    /// Ends every fault of `fault`'s kind on its target, whatever its origin, factor or share;
    /// returns those that were in force.
    pub fn heal(&mut self, fault: &Fault) -> Vec<Fault> {
        let (healed, kept) = std::mem::take(&mut self.faults)
            .into_iter()
            .partition(|(_, f)| same_target(f, fault));
        self.faults = kept;
        healed.into_iter().map(|(_, f)| f).collect()
    }

    /// How many times slower `service` works now: the largest factor of the slow faults on it
    /// in force (they do not multiply, as on the network), 1 when none is.
    pub fn slow_factor(&self, service: ServiceId) -> u32 {
        self.faults
            .iter()
            .filter_map(|(_, fault)| match *fault {
                Fault::Slow { service: s, factor } if s == service => Some(factor),
                _ => None,
            })
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// The faults in force, in the order they began. An iterator, not a vector: the simulation
    /// asks for every message it sends, nearly always with none in force.
    pub fn iter(&self) -> impl Iterator<Item = &Fault> + Clone {
        self.faults.iter().map(|(_, f)| f)
    }
}

/// True when `a` and `b` are the same kind of fault on the same service or link, whatever their
/// factor or share (a link is the same both ways round).
pub fn same_target(a: &Fault, b: &Fault) -> bool {
    let same_link = |x: &LinkId, y: &LinkId| match (x, y) {
        (LinkId::All, LinkId::All) => true,
        (LinkId::Between(a, b), LinkId::Between(c, d)) => (a, b) == (c, d) || (a, b) == (d, c),
        _ => false,
    };
    match (a, b) {
        (Fault::Crash { service: x }, Fault::Crash { service: y })
        | (Fault::Slow { service: x, .. }, Fault::Slow { service: y, .. }) => x == y,
        (Fault::Partition { link: x }, Fault::Partition { link: y })
        | (Fault::Drop { link: x, .. }, Fault::Drop { link: y, .. })
        | (Fault::Duplicate { link: x, .. }, Fault::Duplicate { link: y, .. })
        | (Fault::Reorder { link: x, .. }, Fault::Reorder { link: y, .. }) => same_link(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCT: ServiceId = ServiceId(2);

    #[test]
    fn a_service_comes_back_only_when_its_last_crash_ends() {
        let mut causes = CrashCauses::new(3);
        assert!(causes.add(PRODUCT, CrashCause::Fault(0)), "goes down");
        assert!(!causes.add(PRODUCT, CrashCause::Fault(1)), "already down");
        assert!(!causes.add(PRODUCT, CrashCause::OwnCrash));
        assert!(!causes.remove(PRODUCT, CrashCause::Fault(1)));
        assert!(!causes.remove(PRODUCT, CrashCause::Fault(7)), "never added");
        assert!(!causes.remove(PRODUCT, CrashCause::OwnCrash));
        assert!(causes.is_down(PRODUCT));
        assert!(causes.remove(PRODUCT, CrashCause::Fault(0)), "the last one");
        assert!(!causes.is_down(PRODUCT));
        assert!(
            !causes.remove(PRODUCT, CrashCause::Fault(0)),
            "ending it twice restarts nothing"
        );
        causes.add(PRODUCT, CrashCause::Fault(0));
        causes.clear(PRODUCT);
        assert!(!causes.is_down(PRODUCT));
        assert!(
            !causes.add(ServiceId(9), CrashCause::Command),
            "no such service"
        );
    }

    #[test]
    fn scheduled_faults_stack_and_a_viewers_fault_replaces_the_viewers_own() {
        let ab = LinkId::Between(ServiceId(1), ServiceId(2));
        let ba = LinkId::Between(ServiceId(2), ServiceId(1));
        let mut faults = NetworkFaults::default();
        faults.begin(FaultOrigin::Scheduled(0), Fault::Partition { link: ab });
        faults.begin(FaultOrigin::Scheduled(1), Fault::Partition { link: ba });
        assert_eq!(faults.end_scheduled(0), Some(Fault::Partition { link: ab }));
        assert_eq!(
            faults.iter().collect::<Vec<_>>(),
            [&Fault::Partition { link: ba }]
        );
        assert_eq!(faults.end_scheduled(0), None);
        let drop = |percent| Fault::Drop { link: ab, percent };
        faults.begin(FaultOrigin::Command, drop(10));
        faults.begin(FaultOrigin::Command, drop(30));
        faults.begin(FaultOrigin::Scheduled(2), drop(50));
        assert_eq!(faults.iter().count(), 3, "{:?}", faults);
        assert_eq!(
            faults.heal(&drop(1)),
            [drop(30), drop(50)],
            "healing ends every drop on the link"
        );
        assert_eq!(faults.heal(&Fault::Partition { link: ab }).len(), 1);
        assert_eq!(faults.iter().next(), None);
    }
}
