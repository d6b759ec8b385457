//! Faults written as text, for the command line (`--fault`), the URL and the page:
//!
//! ```text
//! crash:Product@10+5            Product crashes at 10 s and restarts 5 s later
//! slow:Product*4@10+5           messages to and from Product take 4× as long from 10 s to 15 s
//! partition:Order-Product@10+5  the Order–Product link loses everything from 10 s to 15 s
//! drop:Order-Product=20%@0      the link loses 20 % of its messages from the start to the end
//! duplicate:*=10%@5+10          every link delivers a second copy of 10 % of messages
//! reorder:Broker-Order=30%@0    the link holds back 30 % of messages so they overtake
//! ```
//!
//! Times are seconds from the start; without `+DURATION` the fault lasts until the run ends.
//! Service names are matched without regard to case.

use super::ScenarioError;
use crate::decimal_text::parse_f64;
use crate::protocol::{Fault, FaultSpec, LinkId, ServiceId, ServiceInfo};
use crate::time::Micros;

/// The largest slow-down factor.
pub const SLOW_FACTOR_MAX: u32 = 100;

/// Reads one fault, naming services as `services` does.
pub fn parse_fault(text: &str, services: &[ServiceInfo]) -> Result<FaultSpec, ScenarioError> {
    let bad = |reason: String| ScenarioError::BadFault {
        text: text.to_string(),
        reason,
    };
    let (what, when) = text
        .trim()
        .split_once('@')
        .ok_or_else(|| bad("it needs a start time after '@', such as crash:Product@10+5".into()))?;
    let (at, lasts) = parse_when(when).map_err(bad)?;
    let (kind, target) = what
        .split_once(':')
        .ok_or_else(|| bad("it needs KIND:TARGET, such as crash:Product".into()))?;
    let fault = match kind.trim().to_ascii_lowercase().as_str() {
        "crash" => Fault::Crash {
            service: service(target, services).map_err(bad)?,
        },
        "slow" => {
            let (name, factor) = target
                .split_once('*')
                .ok_or_else(|| bad("slow needs a factor, such as slow:Product*4".into()))?;
            let factor: u32 = factor
                .trim()
                .parse()
                .ok()
                .filter(|f| (2..=SLOW_FACTOR_MAX).contains(f))
                .ok_or_else(|| {
                    bad(format!(
                        "the slow-down factor must be a whole number from 2 to {SLOW_FACTOR_MAX}"
                    ))
                })?;
            Fault::Slow {
                service: service(name, services).map_err(bad)?,
                factor,
            }
        }
        "partition" => Fault::Partition {
            link: link(target, services).map_err(bad)?,
        },
        kind @ ("drop" | "duplicate" | "reorder") => {
            let (name, percent) = target.split_once('=').ok_or_else(|| {
                bad(format!(
                    "{kind} needs a share, such as {kind}:Order-Product=20%"
                ))
            })?;
            let percent: u32 = percent
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| bad("the share must be a whole percent from 1 to 100".into()))?;
            let link = link(name, services).map_err(bad)?;
            match kind {
                "drop" => Fault::Drop { link, percent },
                "duplicate" => Fault::Duplicate { link, percent },
                _ => Fault::Reorder { link, percent },
            }
        }
        other => {
            return Err(bad(format!(
                "unknown fault {other:?}; known: crash, slow, partition, drop, duplicate, reorder"
            )));
        }
    };
    Ok(FaultSpec { at, lasts, fault })
}

/// Writes `spec` the way [`parse_fault`] reads it.
pub fn fault_text(spec: &FaultSpec, services: &[ServiceInfo]) -> String {
    let what = fault_label(&spec.fault, services);
    match spec.lasts {
        Some(lasts) => format!("{what}@{}+{}", seconds(spec.at), seconds(lasts)),
        None => format!("{what}@{}", seconds(spec.at)),
    }
}

/// What goes wrong, as [`parse_fault`] reads it before the `@`: `partition:Order-Product`.
pub fn fault_label(fault: &Fault, services: &[ServiceInfo]) -> String {
    let name = |id: ServiceId| {
        services
            .get(id.0 as usize)
            .map_or_else(|| id.0.to_string(), |s| s.name.clone())
    };
    let link = |link: LinkId| match link {
        LinkId::All => "*".to_string(),
        LinkId::Between(a, b) => format!("{}-{}", name(a), name(b)),
    };
    match fault {
        Fault::Crash { service } => format!("crash:{}", name(*service)),
        Fault::Slow { service, factor } => format!("slow:{}*{factor}", name(*service)),
        Fault::Partition { link: l } => format!("partition:{}", link(*l)),
        Fault::Drop { link: l, percent } => format!("drop:{}={percent}%", link(*l)),
        Fault::Duplicate { link: l, percent } => format!("duplicate:{}={percent}%", link(*l)),
        Fault::Reorder { link: l, percent } => format!("reorder:{}={percent}%", link(*l)),
    }
}

/// Seconds with no trailing zeros: `10`, `2.5`.
fn seconds(t: Micros) -> String {
    let text = crate::float_text::fixed(t.as_secs_f64(), 6).to_string();
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn parse_when(text: &str) -> Result<(Micros, Option<Micros>), String> {
    let number = |t: &str, what: &str| {
        parse_f64(t.trim().trim_end_matches('s'))
            .filter(|v| v.is_finite() && (0.0..=super::MAX_UNTIL_S).contains(v))
            .map(Micros::from_secs_f64)
            .ok_or_else(|| {
                format!(
                    "the {what} must be a number of seconds from 0 to {}",
                    crate::float_text::shortest(super::MAX_UNTIL_S)
                )
            })
    };
    match text.split_once('+') {
        Some((at, lasts)) => {
            let lasts = number(lasts, "duration")?;
            if lasts == Micros::ZERO {
                return Err("the duration must be more than 0 s".into());
            }
            Ok((number(at, "start")?, Some(lasts)))
        }
        None => Ok((number(text, "start")?, None)),
    }
}

fn service(name: &str, services: &[ServiceInfo]) -> Result<ServiceId, String> {
    let name = name.trim();
    services
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .map(|s| s.id)
        .ok_or_else(|| {
            let known: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            format!(
                "no service {name:?} in this scenario; its services: {}",
                known.join(", ")
            )
        })
}

fn link(text: &str, services: &[ServiceInfo]) -> Result<LinkId, String> {
    if text.trim() == "*" {
        return Ok(LinkId::All);
    }
    let (a, b) = text.split_once('-').ok_or(
        "a link is two services joined by '-', such as Order-Product, or * for every link",
    )?;
    let (a, b) = (service(a, services)?, service(b, services)?);
    if a == b {
        return Err("a link joins two different services".into());
    }
    Ok(LinkId::Between(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServiceRole;

    fn services() -> Vec<ServiceInfo> {
        ["Client", "Order", "Product"]
            .iter()
            .enumerate()
            .map(|(i, name)| ServiceInfo {
                id: ServiceId(i as u16),
                name: name.to_string(),
                role: ServiceRole::Service,
            })
            .collect()
    }

    fn check(text: &str, expected: Result<(&str, FaultSpec), &str>) {
        let parsed = parse_fault(text, &services());
        match (parsed, expected) {
            (Ok(spec), Ok((round_trip, expected))) => {
                assert_eq!(spec, expected, "{text}");
                assert_eq!(fault_text(&spec, &services()), round_trip, "{text}");
            }
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{text}: {message}");
                assert!(
                    message.contains(text),
                    "the error quotes the input: {message}"
                );
            }
            (got, want) => panic!("{text}: got {got:?}, expected {want:?}"),
        }
    }

    fn spec(at_s: u64, lasts_s: Option<u64>, fault: Fault) -> FaultSpec {
        FaultSpec {
            at: Micros::from_secs(at_s),
            lasts: lasts_s.map(Micros::from_secs),
            fault,
        }
    }

    #[test]
    fn faults_read_and_write_back() {
        let between = LinkId::Between(ServiceId(1), ServiceId(2));
        let product = ServiceId(2);
        check(
            "crash:Product@10+5",
            Ok((
                "crash:Product@10+5",
                spec(10, Some(5), Fault::Crash { service: product }),
            )),
        );
        check(
            "CRASH:product@10s+5s",
            Ok((
                "crash:Product@10+5",
                spec(10, Some(5), Fault::Crash { service: product }),
            )),
        );
        check(
            "slow:Product*4@0",
            Ok((
                "slow:Product*4@0",
                spec(
                    0,
                    None,
                    Fault::Slow {
                        service: product,
                        factor: 4,
                    },
                ),
            )),
        );
        check(
            "partition:Order-Product@3+2",
            Ok((
                "partition:Order-Product@3+2",
                spec(3, Some(2), Fault::Partition { link: between }),
            )),
        );
        check(
            "drop:Order-Product=20%@0",
            Ok((
                "drop:Order-Product=20%@0",
                spec(
                    0,
                    None,
                    Fault::Drop {
                        link: between,
                        percent: 20,
                    },
                ),
            )),
        );
        check(
            "duplicate:*=10@5+10",
            Ok((
                "duplicate:*=10%@5+10",
                spec(
                    5,
                    Some(10),
                    Fault::Duplicate {
                        link: LinkId::All,
                        percent: 10,
                    },
                ),
            )),
        );
        check(
            "reorder:Order-Product=30%@1.5",
            Ok((
                "reorder:Order-Product=30%@1.5",
                FaultSpec {
                    at: Micros::from_millis(1_500),
                    lasts: None,
                    fault: Fault::Reorder {
                        link: between,
                        percent: 30,
                    },
                },
            )),
        );
    }

    #[test]
    fn bad_faults_say_what_is_wrong() {
        check("crash:Product", Err("start time"));
        check("crash@10", Err("KIND:TARGET"));
        check("melt:Product@1", Err("unknown fault"));
        check(
            "crash:Payment@1",
            Err("its services: Client, Order, Product"),
        );
        check("slow:Product@1", Err("needs a factor"));
        check("slow:Product*1@1", Err("from 2 to 100"));
        check("drop:Order-Product@1", Err("needs a share"));
        check("drop:Order-Product=0%@1", Err("from 1 to 100"));
        check("drop:Order-Product=101%@1", Err("from 1 to 100"));
        check("partition:Order@1", Err("two services joined by '-'"));
        check("partition:Order-Order@1", Err("two different services"));
        check("crash:Product@-1", Err("from 0 to 600"));
        check("crash:Product@1+0", Err("more than 0 s"));
        check("crash:Product@NaN", Err("number of seconds"));
    }
}
