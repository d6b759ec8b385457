//! What was unavailable when, as the trace shows it: services between `service_down` and
//! `service_up`, and links cut by a partition or a drop of every message between `fault_begins`
//! and `fault_ends`. An operation began during an outage when a service or link on its path —
//! a hop one of its messages took — was unavailable at the moment it began.

use crate::protocol::{Event, Fault, LinkId, ServiceId};
use crate::slot_map::DenseSet;

/// Services down and links cut, now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unavailable {
    services_down: DenseSet<ServiceId>,
    /// One entry per fault in force, so overlapping faults on a link end one at a time.
    links_cut: Vec<LinkId>,
}

/// The link a fault cuts entirely, if it does.
fn cut_link(fault: &Fault) -> Option<LinkId> {
    match *fault {
        Fault::Partition { link } | Fault::Drop { link, percent: 100 } => Some(link),
        _ => None,
    }
}

impl Unavailable {
    /// Takes in what `event` changes.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::ServiceDown { service } => {
                self.services_down.insert(*service);
            }
            Event::ServiceUp { service } => {
                self.services_down.remove(service);
            }
            Event::FaultBegins { fault } => self.links_cut.extend(cut_link(fault)),
            Event::FaultEnds { fault } => {
                if let Some(link) = cut_link(fault)
                    && let Some(at) = self.links_cut.iter().position(|l| *l == link)
                {
                    self.links_cut.remove(at);
                }
            }
            _ => {}
        }
    }

    /// True when nothing is unavailable.
    pub fn is_empty(&self) -> bool {
        self.services_down.is_empty() && self.links_cut.is_empty()
    }

    /// True when a message from `from` to `to` cannot get through: either end is down, or a
    /// cut link carries it.
    pub fn blocks(&self, from: ServiceId, to: ServiceId) -> bool {
        self.services_down.contains(&from)
            || self.services_down.contains(&to)
            || self.links_cut.iter().any(|link| link.carries(from, to))
    }

    /// The services down now.
    pub fn services_down(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.services_down.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: ServiceId = ServiceId(1);
    const PRODUCT: ServiceId = ServiceId(2);
    const BROKER: ServiceId = ServiceId(3);

    #[test]
    fn services_down_and_links_cut_block_the_hops_through_them_until_they_end() {
        let mut now = Unavailable::default();
        let link = LinkId::Between(PRODUCT, ORDER);
        let partition = Fault::Partition { link };
        now.apply(&Event::FaultBegins {
            fault: partition.clone(),
        });
        now.apply(&Event::FaultBegins {
            fault: Fault::Drop { link, percent: 100 },
        });
        now.apply(&Event::FaultBegins {
            fault: Fault::Drop {
                link: LinkId::All,
                percent: 99,
            },
        });
        assert!(now.blocks(ORDER, PRODUCT));
        assert!(
            !now.blocks(ORDER, BROKER),
            "losing 99 % is not losing everything"
        );
        now.apply(&Event::FaultEnds { fault: partition });
        assert!(
            now.blocks(ORDER, PRODUCT),
            "the drop of everything still cuts it"
        );
        now.apply(&Event::FaultEnds {
            fault: Fault::Drop { link, percent: 100 },
        });
        assert!(!now.blocks(ORDER, PRODUCT));
        now.apply(&Event::ServiceDown { service: BROKER });
        assert!(now.blocks(ORDER, BROKER) && !now.blocks(ORDER, PRODUCT));
        assert_eq!(now.services_down().collect::<Vec<_>>(), [BROKER]);
        now.apply(&Event::ServiceUp { service: BROKER });
        assert!(now.is_empty());
    }
}
