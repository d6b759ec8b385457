//! What the simulated network does to one message: how long it takes, whether it is lost, and
//! whether a second copy follows — from the links' behaviour and the faults in force.

use crate::protocol::{DropReason, Fault, LinkSpec, ServiceId};
use crate::rng::SimRng;
use crate::time::Micros;

/// What happens to one message on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fate {
    /// How long it travels.
    pub delay: Micros,
    /// Why it never arrives, if it does not.
    pub lost: Option<DropReason>,
    /// True when the network also delivers a second copy.
    pub duplicated: bool,
    /// True when a reorder fault held it back, so that later messages may overtake it even on
    /// a connection that otherwise keeps its order.
    pub held_back: bool,
}

/// Decides the fate of a message from `from` to `to`.
///
/// Faults in force compose: the slowest slow fault on either end sets the delay; any partition of
/// the link loses the message; each drop, duplicate and reorder rule draws on its own, so two
/// drop rules of 20 % and 30 % lose 1 − 0.8 × 0.7 = 44 % of messages.
///
/// A fault draws from the generator only while it is in force and applies to this message, so a
/// run is the same, draw for draw, up to the moment an injected fault begins.
pub fn fate<'a>(
    network: &LinkSpec,
    faults_in_force: impl Iterator<Item = &'a Fault> + Clone,
    from: ServiceId,
    to: ServiceId,
    rng: &mut SimRng,
) -> Fate {
    let mut delay = network.latency + Micros(rng.below(network.jitter.0 + 1));
    let mut lost = rng
        .chance_per_million(network.loss_per_million)
        .then_some(DropReason::Lost);
    let mut duplicated = false;
    let mut held_back = false;
    // Slow faults on the sender, the receiver or both do not multiply: the slowest one sets the
    // pace (a service slowed 4× and 3× is as slow as 4×), so no message waits beyond the largest
    // factor allowed.
    let slowest = faults_in_force
        .clone()
        .filter_map(|fault| match *fault {
            Fault::Slow { service, factor } if service == from || service == to => Some(factor),
            _ => None,
        })
        .max();
    if let Some(factor) = slowest {
        delay = Micros(delay.0 * factor as u64);
    }
    let percent = |p: u32| p * 10_000;
    for fault in faults_in_force {
        match *fault {
            Fault::Crash { .. } => {}
            Fault::Partition { link } if link.carries(from, to) => {
                lost = Some(DropReason::Partitioned);
            }
            Fault::Drop { link, percent: p } if link.carries(from, to) => {
                if rng.chance_per_million(percent(p)) {
                    lost.get_or_insert(DropReason::Lost);
                }
            }
            Fault::Duplicate { link, percent: p } if link.carries(from, to) => {
                duplicated |= rng.chance_per_million(percent(p));
            }
            Fault::Reorder { link, percent: p } if link.carries(from, to) => {
                if rng.chance_per_million(percent(p)) {
                    // Held back one to three extra hops: long enough for later messages to pass.
                    let extra_hops = 1 + rng.below(3);
                    delay = delay + Micros(network.latency.0.max(1) * extra_hops);
                    held_back = true;
                }
            }
            Fault::Slow { .. }
            | Fault::Partition { .. }
            | Fault::Drop { .. }
            | Fault::Duplicate { .. }
            | Fault::Reorder { .. } => {}
        }
    }
    Fate {
        delay,
        lost,
        duplicated: duplicated && lost.is_none(),
        held_back,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::LinkId;

    const NET: LinkSpec = LinkSpec {
        latency: Micros(1_000),
        jitter: Micros::ZERO,
        loss_per_million: 0,
    };
    const A: ServiceId = ServiceId(1);
    const B: ServiceId = ServiceId(2);
    const C: ServiceId = ServiceId(3);
    const AB: LinkId = LinkId::Between(A, B);

    /// The fates of 1,000 messages A → B under `faults`.
    fn fates(faults: &[Fault]) -> Vec<Fate> {
        let mut rng = SimRng::new(9);
        (0..1_000)
            .map(|_| fate(&NET, faults.iter(), A, B, &mut rng))
            .collect()
    }

    fn share(fates: &[Fate], test: impl Fn(&Fate) -> bool) -> usize {
        fates.iter().filter(|f| test(f)).count()
    }

    #[test]
    fn a_healthy_link_takes_its_latency_and_keeps_everything() {
        let all = fates(&[]);
        assert!(all.iter().all(|f| *f
            == Fate {
                delay: Micros(1_000),
                lost: None,
                duplicated: false,
                held_back: false,
            }));
    }

    #[test]
    fn each_fault_does_what_it_says_on_its_link_only() {
        let slow = fates(&[Fault::Slow {
            service: B,
            factor: 4,
        }]);
        assert!(slow.iter().all(|f| f.delay == Micros(4_000)));
        let partitioned = fates(&[Fault::Partition { link: AB }]);
        assert_eq!(
            share(&partitioned, |f| f.lost == Some(DropReason::Partitioned)),
            1_000
        );
        let dropped = fates(&[Fault::Drop {
            link: LinkId::All,
            percent: 20,
        }]);
        let lost = share(&dropped, |f| f.lost == Some(DropReason::Lost));
        assert!((150..250).contains(&lost), "about 20 % lost: {lost}");
        let duplicated = fates(&[Fault::Duplicate {
            link: AB,
            percent: 10,
        }]);
        let copies = share(&duplicated, |f| f.duplicated);
        assert!((60..140).contains(&copies), "about 10 % copied: {copies}");
        let reordered = fates(&[Fault::Reorder {
            link: AB,
            percent: 30,
        }]);
        let held = share(&reordered, |f| f.delay > Micros(1_000));
        assert!((240..360).contains(&held), "about 30 % held back: {held}");
        assert!(reordered.iter().all(|f| f.delay <= Micros(4_000)));
        let elsewhere = fates(&[
            Fault::Partition {
                link: LinkId::Between(A, C),
            },
            Fault::Slow {
                service: C,
                factor: 9,
            },
        ]);
        assert_eq!(
            elsewhere,
            fates(&[]),
            "faults on other links and services leave A → B alone"
        );
    }

    #[test]
    fn overlapping_faults_compose_the_slowest_sets_the_pace_and_losses_stack() {
        let slow = |service, factor| Fault::Slow { service, factor };
        let both_ends = fates(&[slow(A, 3), slow(B, 4), slow(B, 2)]);
        assert!(
            both_ends.iter().all(|f| f.delay == Micros(4_000)),
            "the largest factor, not their product: {:?}",
            both_ends[0]
        );
        let two_partitions = fates(&[
            Fault::Partition { link: AB },
            Fault::Partition {
                link: LinkId::Between(B, A),
            },
        ]);
        assert!(
            two_partitions
                .iter()
                .all(|f| f.lost == Some(DropReason::Partitioned))
        );
        let drops = fates(&[
            Fault::Drop {
                link: AB,
                percent: 20,
            },
            Fault::Drop {
                link: LinkId::All,
                percent: 30,
            },
        ]);
        let lost = share(&drops, |f| f.lost.is_some());
        assert!((390..490).contains(&lost), "about 44 % lost: {lost}");
    }

    #[test]
    fn a_lost_message_is_never_duplicated() {
        let both = fates(&[
            Fault::Drop {
                link: AB,
                percent: 50,
            },
            Fault::Duplicate {
                link: AB,
                percent: 50,
            },
        ]);
        assert_eq!(share(&both, |f| f.lost.is_some() && f.duplicated), 0);
        assert!(share(&both, |f| f.duplicated) > 0);
    }
}
