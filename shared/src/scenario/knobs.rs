//! Knobs: the numbers a person turns to change a scenario, each with a unit, a range and a default.

use super::{ScenarioError, ScenarioSpec};
use crate::protocol::KnobMap;

/// One knob of a scenario.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct KnobSpec {
    /// Its name, units last, such as `link_latency_ms`.
    pub name: &'static str,
    /// Its label in the page.
    pub label: &'static str,
    /// Its unit, for display.
    pub unit: &'static str,
    /// Its value when not set.
    pub default: f64,
    /// Its smallest value.
    pub min: f64,
    /// Its largest value in a simulated run (the page, `crosstalk simulate`, compare): the
    /// simulation keeps every event of a run, so its rates are held to what a 600 s run records
    /// within `MAX_TRACE_EVENTS` (`shared/tests/budget.rs` checks it).
    pub max: f64,
    /// Its largest value in a live run, when the live runtime takes more than the simulation:
    /// real services only stream their events, so a benchmark can offer more than they carry.
    pub live_max: Option<f64>,
    /// True when only whole numbers make sense.
    pub whole: bool,
    /// For a knob that picks one of a few ways, each way's name by its number (0, 1, …);
    /// `KNOB=NAME` sets it by name, and the page offers the names. Empty for a quantity.
    pub choices: &'static [&'static str],
    /// What it changes, in a sentence.
    pub help: &'static str,
}

/// The unit of rate knobs: something happens on average every `1 / value` seconds.
pub const RATE_UNIT: &str = "per s";

/// The smallest rate above zero a rate knob takes, once every 10⁹ s (about 32 years): the next
/// occurrence of a smaller one would lie beyond what the clock counts (2⁶⁴ µs, and the clients
/// draw up to 1.5 intervals ahead), so it is refused, not wrapped or saturated.
pub const MIN_RATE_PER_S: f64 = 1e-9;

/// What runs a request: the knobs' highest values depend on it ([`KnobSpec::max_for`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The simulation: in the page, `crosstalk simulate`, the backend's simulated runs, compare.
    Simulation,
    /// The live runtime: real services run by `crosstalk serve` or `crosstalk live`.
    Live,
}

impl KnobSpec {
    /// Its largest value in a run by `driver`.
    pub fn max_for(&self, driver: Driver) -> f64 {
        match driver {
            Driver::Simulation => self.max,
            Driver::Live => self.live_max.unwrap_or(self.max),
        }
    }

    /// True for a rate, in [`RATE_UNIT`].
    pub fn is_rate(&self) -> bool {
        self.unit == RATE_UNIT
    }

    /// The name of the way `value` picks, for a knob with [`KnobSpec::choices`].
    pub fn choice_name(&self, value: f64) -> Option<&'static str> {
        (value >= 0.0 && value.fract() == 0.0)
            .then(|| self.choices.get(value as usize).copied())
            .flatten()
    }
}

/// Every knob of a scenario with a checked value.
#[derive(Clone, Debug, PartialEq)]
pub struct Knobs {
    values: KnobMap,
}

impl Knobs {
    /// Checks `given` against `spec`'s knobs, in their ranges for a run by `driver`, and fills in
    /// defaults.
    pub fn resolve(
        spec: &ScenarioSpec,
        given: &KnobMap,
        driver: Driver,
    ) -> Result<Knobs, ScenarioError> {
        for (name, value) in given {
            let Some(knob) = spec.knobs.iter().find(|k| k.name == name) else {
                return Err(ScenarioError::UnknownKnob {
                    scenario: spec.name.to_string(),
                    knob: name.clone(),
                    known: spec
                        .knobs
                        .iter()
                        .map(|k| k.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            // NaN fails both comparisons, so it is out of range too.
            let max = knob.max_for(driver);
            if !(*value >= knob.min && *value <= max) {
                return Err(ScenarioError::KnobOutOfRange {
                    knob: name.clone(),
                    value: *value,
                    min: knob.min,
                    max,
                    unit: knob.unit.to_string(),
                    live_max: knob.live_max.filter(|_| driver == Driver::Simulation),
                });
            }
            if knob.is_rate() && *value > 0.0 && *value < MIN_RATE_PER_S {
                return Err(ScenarioError::RateTooSmall {
                    knob: name.clone(),
                    value: *value,
                    interval_s: 1.0 / *value,
                    min: MIN_RATE_PER_S,
                });
            }
            if knob.whole && value.fract() != 0.0 {
                return Err(ScenarioError::KnobNotWhole {
                    knob: name.clone(),
                    value: *value,
                });
            }
        }
        let values = spec
            .knobs
            .iter()
            .map(|knob| {
                (
                    knob.name.to_string(),
                    given.get(knob.name).copied().unwrap_or(knob.default),
                )
            })
            .collect();
        let knobs = Knobs { values };
        match (spec.refuse)(&knobs) {
            Some(reason) => Err(ScenarioError::KnobsConflict {
                scenario: spec.name.to_string(),
                reason,
            }),
            None => Ok(knobs),
        }
    }

    /// The value of knob `name`. Scenarios only ask for their own knobs.
    pub fn get(&self, name: &str) -> f64 {
        self.values[name]
    }

    /// Every knob's value, by name.
    pub fn values(&self) -> &KnobMap {
        &self.values
    }
}

/// Reads `KNOB=VALUE`, as given on the command line, for a knob of `spec`; a knob with
/// [`KnobSpec::choices`] also takes a way's name (`redelivery=visibility-timeout`).
pub fn parse_knob_assignment(
    spec: &ScenarioSpec,
    text: &str,
) -> Result<(String, f64), ScenarioError> {
    let bad = || ScenarioError::BadAssignment {
        text: text.to_string(),
    };
    let (name, value) = text.split_once('=').ok_or_else(bad)?;
    let (name, value) = (name.trim(), value.trim());
    let choice = spec
        .knobs
        .iter()
        .find(|knob| knob.name == name)
        .and_then(|knob| knob.choices.iter().position(|choice| *choice == value));
    let value: f64 = match choice {
        Some(index) => index as f64,
        None => crate::decimal_text::parse_f64(value).ok_or_else(bad)?,
    };
    if name.is_empty() || !value.is_finite() {
        return Err(bad());
    }
    Ok((name.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::find;

    fn resolve(pairs: &[(&str, f64)]) -> Result<Knobs, String> {
        resolve_for(Driver::Simulation, pairs)
    }

    fn resolve_for(driver: Driver, pairs: &[(&str, f64)]) -> Result<Knobs, String> {
        let given = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Knobs::resolve(find("request-response").unwrap(), &given, driver).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_in_and_given_values_win() {
        let knobs = resolve(&[("read_rate_per_s", 5.0)]).unwrap();
        assert_eq!(knobs.get("read_rate_per_s"), 5.0);
        assert_eq!(knobs.get("products_per_order"), 3.0);
    }

    #[test]
    fn bad_knobs_are_refused_with_what_to_do() {
        let check = |pairs: &[(&str, f64)], expected: &str| {
            let err = resolve(pairs).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        };
        check(
            &[("speed", 1.0)],
            "has no knob \"speed\"; its knobs: read_rate_per_s",
        );
        check(
            &[("read_rate_per_s", -1.0)],
            "must be between 0 and 50 per s in a simulated run; a live run takes up to 5000",
        );
        check(&[("pool_size", 65.0)], "must be between 1 and 64 ");
        check(&[("read_rate_per_s", f64::NAN)], "out of range");
        check(&[("products_per_order", 2.5)], "must be a whole number");
    }

    #[test]
    fn the_outbox_is_refused_with_knobs_that_would_break_its_promise() {
        let check = |scenario: &str, pairs: &[(&str, f64)], expected: Option<&str>| {
            let given = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let result = Knobs::resolve(find(scenario).unwrap(), &given, Driver::Simulation)
                .map_err(|e| e.to_string());
            match expected {
                None => assert!(result.is_ok(), "{scenario} {pairs:?}: {result:?}"),
                Some(expected) => {
                    let err = result.unwrap_err();
                    assert!(
                        err.contains(expected),
                        "{err:?} should contain {expected:?}"
                    );
                }
            }
        };
        check("eventual-consistency", &[("publish", 1.0)], None);
        check(
            "eventual-consistency",
            &[("publish", 1.0), ("apply_only_newer", 0.0)],
            Some("cannot run with these knobs: publish=outbox needs apply_only_newer=1"),
        );
        // Dual write takes any of them.
        check("eventual-consistency", &[("apply_only_newer", 0.0)], None);
        check(
            "event-driven",
            &[("publish", 1.0), ("idempotent", 1.0)],
            None,
        );
        check(
            "event-driven",
            &[("publish", 1.0), ("idempotent", 1.0), ("durable", 0.0)],
            Some("publish=outbox needs durable=1"),
        );
        check(
            "event-driven",
            &[("publish", 1.0)],
            Some("publish=outbox needs idempotent=1"),
        );
        check("event-driven", &[("durable", 0.0)], None);
    }

    #[test]
    fn a_simulated_run_takes_rates_up_to_its_maximum_and_a_live_run_up_to_the_live_one() {
        let check = |driver, pairs: &[(&str, f64)], expected: Result<(), &str>| {
            let result = resolve_for(driver, pairs).map(|_| ());
            assert_eq!(
                result,
                expected.map_err(str::to_string),
                "{driver:?} {pairs:?}"
            );
        };
        use Driver::{Live, Simulation};
        check(Simulation, &[("read_rate_per_s", 50.0)], Ok(()));
        check(Simulation, &[("rename_rate_per_s", 20.0)], Ok(()));
        check(
            Simulation,
            &[("read_rate_per_s", 50.5)],
            Err(
                "knob read_rate_per_s = 50.5 is out of range: it must be between 0 and 50 per s \
                 in a simulated run; a live run takes up to 5000",
            ),
        );
        check(
            Simulation,
            &[("rename_rate_per_s", 1_000.0)],
            Err(
                "knob rename_rate_per_s = 1000 is out of range: it must be between 0 and 20 per s \
                 in a simulated run; a live run takes up to 1000",
            ),
        );
        check(Live, &[("read_rate_per_s", 5_000.0)], Ok(()));
        check(Live, &[("rename_rate_per_s", 1_000.0)], Ok(()));
        check(
            Live,
            &[("read_rate_per_s", 5_000.5)],
            Err(
                "knob read_rate_per_s = 5000.5 is out of range: it must be between 0 and 5000 per s",
            ),
        );
        // A knob without a live maximum has one range for both.
        for driver in [Simulation, Live] {
            check(
                driver,
                &[("pool_size", 65.0)],
                Err("knob pool_size = 65 is out of range: it must be between 1 and 64 "),
            );
        }
    }

    #[test]
    fn a_live_maximum_lies_above_the_simulated_one_and_only_rates_have_one() {
        for spec in crate::scenario::catalog() {
            for knob in spec.knobs {
                assert_eq!(knob.max_for(Driver::Simulation), knob.max);
                let Some(live_max) = knob.live_max else {
                    assert_eq!(knob.max_for(Driver::Live), knob.max);
                    continue;
                };
                assert!(knob.is_rate(), "{}: {}", spec.name, knob.name);
                assert!(live_max > knob.max, "{}: {}", spec.name, knob.name);
                assert_eq!(knob.max_for(Driver::Live), live_max);
            }
        }
    }

    #[test]
    fn rates_so_small_their_next_interval_overflows_are_refused() {
        let err = resolve(&[("read_rate_per_s", 1e-300)]).unwrap_err();
        assert_eq!(
            err,
            "knob read_rate_per_s = 1e-300 per s is too small: the next one would come about 1e300 s \
             later, beyond what the clock can count; give 0 for never, or at least 1e-9 per s"
        );
        assert!(resolve(&[("rename_rate_per_s", f64::MIN_POSITIVE)]).is_err());
        // Zero means never; the smallest rate is accepted.
        for fine in [0.0, MIN_RATE_PER_S] {
            let knobs = resolve(&[("read_rate_per_s", fine)]).unwrap();
            assert_eq!(knobs.get("read_rate_per_s"), fine);
        }
    }

    #[test]
    fn every_knob_counted_per_second_is_a_rate() {
        for spec in crate::scenario::catalog() {
            for knob in spec.knobs {
                assert_eq!(
                    knob.name.ends_with("_per_s"),
                    knob.is_rate(),
                    "{}: {}",
                    spec.name,
                    knob.name
                );
            }
        }
    }

    #[test]
    fn assignments_parse_or_explain() {
        let spec = find("event-driven").unwrap();
        let parse = |text| parse_knob_assignment(spec, text);
        assert_eq!(
            parse("link_latency_ms=12.5").unwrap(),
            ("link_latency_ms".to_string(), 12.5)
        );
        // A knob that picks a way takes its name or its number.
        assert_eq!(
            parse("redelivery=visibility-timeout").unwrap(),
            ("redelivery".to_string(), 1.0)
        );
        assert_eq!(
            parse("redelivery=0").unwrap(),
            ("redelivery".to_string(), 0.0)
        );
        for bad in [
            "link_latency_ms",
            "=3",
            "x=fast",
            "x=inf",
            "x=",
            "redelivery=sqs",
            "link_latency_ms=rabbitmq",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected KNOB=VALUE"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_gateway_protocol_is_picked_by_name() {
        let spec = find("gateway").unwrap();
        let parse = |text| parse_knob_assignment(spec, text);
        assert_eq!(
            parse("protocol=2pc").unwrap(),
            ("protocol".to_string(), 1.0)
        );
        assert_eq!(
            parse("protocol=saga").unwrap(),
            ("protocol".to_string(), 0.0)
        );
        assert!(parse("protocol=3pc").is_err());
        // The saga is the default, as it was before the knob existed.
        let knobs = Knobs::resolve(spec, &KnobMap::new(), Driver::Simulation).unwrap();
        assert_eq!(knobs.get("protocol"), 0.0);
    }

    #[test]
    fn knobs_that_pick_a_way_name_each_one() {
        for spec in crate::scenario::catalog() {
            for knob in spec.knobs.iter().filter(|k| !k.choices.is_empty()) {
                assert!(knob.whole, "{}", knob.name);
                assert_eq!((knob.min, knob.max), (0.0, (knob.choices.len() - 1) as f64));
                for (index, choice) in knob.choices.iter().enumerate() {
                    assert_eq!(knob.choice_name(index as f64), Some(*choice));
                    assert!(
                        knob.help.contains(choice),
                        "{}'s help names {choice}",
                        knob.name
                    );
                }
            }
        }
    }
}
