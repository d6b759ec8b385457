//! What to run and how to show it, as the control bar edits it and as the URL carries it: the
//! whole state of the page, so a link reproduces the run and the position exactly.
//!
//! `?scenario=…&seed=…&until=…&source=sim|backend|live|recorded&trace=<url>&k.<knob>=<value>`
//! `&fault=<fault>` (repeatable) `&t=<s>&speed=<×>&autoplay=0&loop=1&views=map,anomalies,sequence,…`
//! `&sel=<selection>&embed=1&id=<embed id>`.

use crate::format::trim_number;
use crate::player::{DEFAULT_SPEED, valid_speed};
use crate::selection::Selection;
use shared::decimal_text::parse_f64;
use shared::protocol::RunRequest;
use shared::scenario::{Driver, KnobSpec, ScenarioSpec, catalog};

/// Where the trace comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// Simulated in the page.
    Sim,
    /// Streamed from the backend over `/ws`.
    Backend,
    /// A trace file, dropped on the page or loaded from a URL.
    Recorded,
    /// Real services run live by the backend, streamed over `/ws` as they work.
    Live,
}

impl SourceKind {
    /// Its value in URLs and in the source select.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Sim => "sim",
            SourceKind::Backend => "backend",
            SourceKind::Recorded => "recorded",
            SourceKind::Live => "live",
        }
    }

    /// What runs a request from this source, so which knob ranges hold: real services for
    /// `live`, the simulation (in the page or in the backend) for the others.
    pub fn driver(self) -> Driver {
        match self {
            SourceKind::Live => Driver::Live,
            SourceKind::Sim | SourceKind::Backend | SourceKind::Recorded => Driver::Simulation,
        }
    }

    /// Reads `sim`, `backend`, `live` or `recorded`.
    pub fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "sim" => Some(SourceKind::Sim),
            "backend" => Some(SourceKind::Backend),
            "recorded" => Some(SourceKind::Recorded),
            "live" => Some(SourceKind::Live),
            _ => None,
        }
    }
}

/// A panel of the page that can be shown or hidden.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    /// The service map.
    Map,
    /// The anomalies the checker found.
    Anomalies,
    /// The sequence (space-time) diagram.
    Sequence,
    /// The metrics charts over time.
    Charts,
    /// The numbers so far.
    Metrics,
    /// Each service's tables.
    Tables,
    /// The event log.
    Log,
}

impl View {
    /// Every view, in the order the page lays them out.
    pub const ALL: [View; 7] = [
        View::Map,
        View::Anomalies,
        View::Sequence,
        View::Charts,
        View::Metrics,
        View::Tables,
        View::Log,
    ];

    /// Its name in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Map => "map",
            View::Sequence => "sequence",
            View::Charts => "charts",
            View::Metrics => "metrics",
            View::Tables => "tables",
            View::Log => "log",
            View::Anomalies => "anomalies",
        }
    }

    /// Its name for people, in the view toggles.
    pub fn title(self) -> &'static str {
        match self {
            View::Map => "Map",
            View::Sequence => "Sequence",
            View::Charts => "Charts",
            View::Metrics => "Numbers",
            View::Tables => "Tables",
            View::Log => "Log",
            View::Anomalies => "Anomalies",
        }
    }

    fn parse(text: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// Its bit in [`Views`]: its place in [`View::ALL`], which is also its declaration order.
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Which views are shown: one bit per view, by its place in [`View::ALL`] (a bit set rather
/// than a `BTreeSet`, whose code the page would carry for this one small type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Views(u8);

impl Views {
    /// Every view: the full page.
    pub fn all() -> Views {
        Views((1 << View::ALL.len()) - 1)
    }

    /// Only the map: what an embed shows unless told otherwise.
    pub fn embedded() -> Views {
        Views(View::Map.bit())
    }

    /// True when `view` is shown.
    pub fn shows(&self, view: View) -> bool {
        self.0 & view.bit() != 0
    }

    /// Shows or hides `view`.
    pub fn set(&mut self, view: View, shown: bool) {
        if shown {
            self.0 |= view.bit();
        } else {
            self.0 &= !view.bit();
        }
    }

    /// The URL value: view names joined by commas, in layout order.
    pub fn to_param(&self) -> String {
        let names: Vec<&str> = View::ALL
            .into_iter()
            .filter(|view| self.shows(*view))
            .map(View::as_str)
            .collect();
        names.join(",")
    }

    /// Reads [`Views::to_param`]'s text; `None` when any name is unknown.
    pub fn parse(text: &str) -> Option<Views> {
        let mut views = Views(0);
        for name in text.split(',').filter(|name| !name.is_empty()) {
            views.set(View::parse(name)?, true);
        }
        Some(views)
    }
}

/// Everything the control bar sets.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The run's length in seconds.
    pub until_s: f64,
    /// Where the trace comes from.
    pub source: SourceKind,
    /// The player's speed.
    pub speed: f64,
    /// Where the playhead starts, in seconds.
    pub start_s: f64,
    /// Whether the player starts playing.
    pub autoplay: bool,
    /// Every knob of the scenario, defaults included.
    pub knobs: shared::protocol::KnobMap,
    /// Faults to inject, as written in the URL (`fault=` may repeat), kept in order.
    pub faults: Vec<String>,
    /// Where a recorded trace is loaded from, for the `recorded` source.
    pub trace_url: Option<String>,
    /// Whether the player starts again at the end.
    pub looping: bool,
    /// Which panels are shown.
    pub views: Views,
    /// What is selected.
    pub selection: Selection,
    /// Whether the page is embedded in another: minimal chrome, and a `postMessage` API.
    pub embed: bool,
    /// The name the embed signs its messages to its host with, so a host page with several
    /// embeds can tell them apart.
    pub embed_id: Option<String>,
}

/// The scenario the page opens with.
pub fn default_scenario() -> &'static ScenarioSpec {
    &catalog()[0]
}

/// The scenario named `name`, if it exists.
pub fn scenario_spec(name: &str) -> Option<&'static ScenarioSpec> {
    catalog().iter().find(|spec| spec.name == name)
}

impl RunConfig {
    /// The defaults of `spec`: seed 1, its default length and knobs, simulated in the page.
    pub fn for_scenario(spec: &ScenarioSpec) -> RunConfig {
        RunConfig {
            scenario: spec.name.to_string(),
            seed: 1,
            until_s: spec.default_until_s,
            source: SourceKind::Sim,
            speed: DEFAULT_SPEED,
            start_s: 0.0,
            autoplay: true,
            knobs: spec
                .knobs
                .iter()
                .map(|knob| (knob.name.to_string(), knob.default))
                .collect(),
            faults: Vec::new(),
            trace_url: None,
            looping: false,
            views: Views::all(),
            selection: Selection::Nothing,
            embed: false,
            embed_id: None,
        }
    }

    /// The views shown when the URL does not say: all of them, or only the map in an embed.
    fn default_views(&self) -> Views {
        if self.embed {
            Views::embedded()
        } else {
            Views::all()
        }
    }

    /// The scenario this config runs.
    pub fn spec(&self) -> &'static ScenarioSpec {
        scenario_spec(&self.scenario).unwrap_or_else(default_scenario)
    }

    /// The largest value the form offers for `knob`: its maximum for what runs from this
    /// source (a live run takes higher rates than a simulated one).
    pub fn knob_max(&self, knob: &KnobSpec) -> f64 {
        knob.max_for(self.source.driver())
    }

    /// Switches to scenario `name`, with its default length and knobs, keeping seed, source and
    /// speed.
    pub fn switch_scenario(&mut self, name: &str) {
        let Some(spec) = scenario_spec(name) else {
            return;
        };
        let fresh = RunConfig::for_scenario(spec);
        self.scenario = fresh.scenario;
        self.until_s = fresh.until_s;
        self.knobs = fresh.knobs;
        self.faults = fresh.faults;
        self.start_s = 0.0;
        self.selection = Selection::Nothing;
    }

    /// What to ask the simulation or the backend for.
    pub fn request(&self) -> RunRequest {
        RunRequest {
            scenario: self.scenario.clone(),
            seed: self.seed,
            until_s: self.until_s,
            knobs: self.knobs.clone(),
            faults: self.faults.clone(),
        }
    }

    /// Reads a URL query (with or without its leading `?`). Anything missing takes its default;
    /// anything unreadable is skipped with a note saying what was ignored.
    pub fn from_query(query: &str) -> (RunConfig, Vec<String>) {
        let pairs = parse_query(query);
        let mut notes = Vec::new();
        let scenario = pairs
            .iter()
            .find(|(key, _)| key == "scenario")
            .map(|(_, value)| value.as_str());
        let spec = match scenario.map(|name| (name, scenario_spec(name))) {
            Some((_, Some(spec))) => spec,
            Some((name, None)) => {
                notes.push(format!(
                    "There is no scenario {name:?}; showing {}.",
                    default_scenario().name
                ));
                default_scenario()
            }
            None => default_scenario(),
        };
        let mut config = RunConfig::for_scenario(spec);
        // Embed mode changes the default views, so it is read before the views are.
        config.embed = pairs.iter().any(|(k, v)| k == "embed" && is_yes(v));
        config.views = config.default_views();
        for (key, value) in &pairs {
            let number = parse_f64(value);
            let ignored = match (key.as_str(), number) {
                ("scenario", _) => false,
                ("fault", _) => {
                    config.faults.push(value.clone());
                    false
                }
                ("seed", _) => match value.parse::<u64>() {
                    Ok(seed) => {
                        config.seed = seed;
                        false
                    }
                    Err(_) => true,
                },
                ("until", Some(s)) if s > 0.0 => {
                    config.until_s = s;
                    false
                }
                ("speed", Some(speed)) if speed > 0.0 => {
                    config.speed = valid_speed(speed);
                    false
                }
                ("loop", _) | ("embed", _) if is_yes(value) || is_no(value) => {
                    if key == "loop" {
                        config.looping = is_yes(value);
                    }
                    false
                }
                ("views", _) => match Views::parse(value) {
                    Some(views) => {
                        config.views = views;
                        false
                    }
                    None => true,
                },
                ("sel", _) => match Selection::parse(value) {
                    Some(selection) => {
                        config.selection = selection;
                        false
                    }
                    None => true,
                },
                ("trace", _) if !value.is_empty() => {
                    config.trace_url = Some(value.clone());
                    false
                }
                ("id", _) if !value.is_empty() => {
                    config.embed_id = Some(value.clone());
                    false
                }
                ("t", Some(s)) if s >= 0.0 => {
                    config.start_s = s;
                    false
                }
                ("autoplay", _) if is_yes(value) || is_no(value) => {
                    config.autoplay = is_yes(value);
                    false
                }
                ("source", _) => match SourceKind::parse(value) {
                    Some(source) => {
                        config.source = source;
                        false
                    }
                    None => true,
                },
                (knob, Some(v))
                    if knob.starts_with("k.") && config.knobs.contains_key(&knob[2..]) =>
                {
                    config.knobs.insert(knob[2..].to_string(), v);
                    false
                }
                _ => true,
            };
            if ignored {
                notes.push(format!("Ignored {key}={value} in the address."));
            }
        }
        (config, notes)
    }

    /// The query string that reproduces this config, starting with `?`. Whatever is at its
    /// default (knobs, speed, start time, views…) is left out, so shared links stay short.
    pub fn to_query(&self) -> String {
        let mut parts = vec![
            format!("scenario={}", encode(&self.scenario)),
            format!("seed={}", self.seed),
            format!("until={}", trim_number(self.until_s)),
            format!("source={}", self.source.as_str()),
        ];
        if let Some(url) = &self.trace_url {
            parts.push(format!("trace={}", encode(url)));
        }
        if self.start_s > 0.0 {
            parts.push(format!("t={}", trim_number(self.start_s)));
        }
        if self.speed != DEFAULT_SPEED {
            parts.push(format!("speed={}", trim_number(self.speed)));
        }
        if !self.autoplay {
            parts.push("autoplay=0".to_string());
        }
        if self.looping {
            parts.push("loop=1".to_string());
        }
        if self.views != self.default_views() {
            parts.push(format!("views={}", self.views.to_param()));
        }
        if self.selection != Selection::Nothing {
            parts.push(format!("sel={}", encode(&self.selection.to_param())));
        }
        if self.embed {
            parts.push("embed=1".to_string());
        }
        if let Some(id) = &self.embed_id {
            parts.push(format!("id={}", encode(id)));
        }
        let spec = self.spec();
        for (name, value) in &self.knobs {
            let default = spec
                .knobs
                .iter()
                .find(|knob| knob.name == name)
                .map(|knob| knob.default);
            if default != Some(*value) {
                parts.push(format!("k.{}={}", encode(name), trim_number(*value)));
            }
        }
        for fault in &self.faults {
            parts.push(format!("fault={}", encode(fault)));
        }
        format!("?{}", parts.join("&"))
    }
}

fn is_yes(value: &str) -> bool {
    matches!(value, "1" | "true" | "yes")
}

fn is_no(value: &str) -> bool {
    matches!(value, "0" | "false" | "no")
}

/// Splits a query into decoded key–value pairs, in order.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Percent-decodes a query component, with `+` as a space. Bad escapes are kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                out.push(hex_value(bytes[i + 1]) * 16 + hex_value(bytes[i + 2]));
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit, which the caller has checked.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_address_gives_the_defaults() {
        let (config, notes) = RunConfig::from_query("");
        assert_eq!(config, RunConfig::for_scenario(default_scenario()));
        assert_eq!(config.scenario, "request-response");
        assert_eq!(config.seed, 1);
        assert_eq!(config.source, SourceKind::Sim);
        assert!(config.autoplay);
        assert!(notes.is_empty());
    }

    #[test]
    fn the_form_offers_the_rates_of_what_runs_the_source() {
        let (mut config, _) = RunConfig::from_query("scenario=hybrid");
        let knob = |name: &str| {
            *scenario_spec("hybrid")
                .unwrap()
                .knobs
                .iter()
                .find(|knob| knob.name == name)
                .unwrap()
        };
        let check = |config: &RunConfig, expected: [f64; 3]| {
            let offered = ["read_rate_per_s", "rename_rate_per_s", "cache_ttl_ms"]
                .map(|name| config.knob_max(&knob(name)));
            assert_eq!(offered, expected, "{:?}", config.source);
        };
        let cache_ttl_max = knob("cache_ttl_ms").max;
        for (source, expected) in [
            (SourceKind::Sim, [50.0, 20.0, cache_ttl_max]),
            (SourceKind::Backend, [50.0, 20.0, cache_ttl_max]),
            (SourceKind::Recorded, [50.0, 20.0, cache_ttl_max]),
            (SourceKind::Live, [5_000.0, 1_000.0, cache_ttl_max]),
        ] {
            config.source = source;
            check(&config, expected);
        }
    }

    #[test]
    fn every_parameter_is_read() {
        let (config, notes) = RunConfig::from_query(
            "?scenario=eventual-consistency&seed=42&until=12.5&source=backend&speed=0.25\
             &t=3.5&autoplay=0&k.broker_delay_ms=900",
        );
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.scenario, "eventual-consistency");
        assert_eq!(config.seed, 42);
        assert_eq!(config.until_s, 12.5);
        assert_eq!(config.source, SourceKind::Backend);
        assert_eq!(config.speed, 0.25);
        assert_eq!(config.start_s, 3.5);
        assert!(!config.autoplay);
        assert_eq!(config.knobs["broker_delay_ms"], 900.0);
        assert_eq!(
            config.knobs["rename_rate_per_s"], 1.0,
            "others keep defaults"
        );
    }

    #[test]
    fn unreadable_parameters_are_ignored_and_noted() {
        let check = |query: &str, expected_note: &str| {
            let (config, notes) = RunConfig::from_query(query);
            assert_eq!(config.seed, 1, "{query}");
            assert!(
                notes.iter().any(|n| n.contains(expected_note)),
                "{query}: {notes:?} should mention {expected_note:?}"
            );
        };
        check("scenario=nope", "no scenario \"nope\"");
        check("seed=-3", "seed=-3");
        check("until=0", "until=0");
        check("source=tape", "source=tape");
        check("k.warp=9", "k.warp=9");
        check("k.read_rate_per_s=fast", "k.read_rate_per_s=fast");
        check("speed=NaN", "speed=NaN");
        check("views=map,radar", "views=map,radar");
        check("sel=zone:4", "sel=zone:4");
        check("loop=maybe", "loop=maybe");
        check("bench=500", "bench=500");
    }

    #[test]
    fn each_view_has_its_own_bit_in_layout_order() {
        for (place, view) in View::ALL.into_iter().enumerate() {
            assert_eq!(view as usize, place, "{view:?}");
        }
        let mut views = Views::embedded();
        views.set(View::Log, true);
        views.set(View::Anomalies, true);
        assert_eq!(views.to_param(), "map,anomalies,log");
        assert_eq!(Views::parse("log,map,anomalies"), Some(views));
        views.set(View::Map, false);
        assert!(!views.shows(View::Map) && views.shows(View::Log));
        assert_eq!(Views::parse("map,radar"), None);
        assert_eq!(
            Views::all().to_param(),
            "map,anomalies,sequence,charts,metrics,tables,log"
        );
    }

    #[test]
    fn the_whole_state_round_trips() {
        let query = "?scenario=eventual-consistency&seed=3&until=20&source=recorded\
            &trace=https%3A%2F%2Fexample.org%2Frun.jsonl&t=12.345&speed=2.5&autoplay=0&loop=1\
            &views=map,sequence,log&sel=link%3AOrder~Product&embed=1&id=figure-2\
            &fault=crash%3AProduct%4010%2B5&fault=slow%3AOrder~Product%402%2B3";
        let (config, notes) = RunConfig::from_query(query);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.source, SourceKind::Recorded);
        assert_eq!(
            config.trace_url.as_deref(),
            Some("https://example.org/run.jsonl")
        );
        assert_eq!(
            config.faults,
            ["crash:Product@10+5", "slow:Order~Product@2+3"]
        );
        assert_eq!(config.start_s, 12.345);
        assert_eq!(config.speed, 2.5);
        assert!(!config.autoplay && config.looping && config.embed);
        assert!(config.views.shows(View::Sequence) && !config.views.shows(View::Tables));
        assert_eq!(
            config.selection,
            Selection::Link("Order".into(), "Product".into())
        );
        assert_eq!(config.embed_id.as_deref(), Some("figure-2"));
        assert_eq!(config.to_query(), query);
        let (back, _) = RunConfig::from_query(&config.to_query());
        assert_eq!(back, config);
    }

    #[test]
    fn an_embed_shows_only_the_map_unless_told_otherwise() {
        let (embed, _) = RunConfig::from_query("embed=1");
        assert_eq!(embed.views, Views::embedded());
        assert!(!embed.to_query().contains("views="));
        let (page, _) = RunConfig::from_query("views=");
        assert!(
            !page.views.shows(View::Map),
            "an empty list hides every view"
        );
        assert!(page.to_query().ends_with("&views="));
        let (back, _) = RunConfig::from_query(&page.to_query());
        assert_eq!(back.views, page.views);
    }

    #[test]
    fn the_query_round_trips_and_leaves_out_defaults() {
        let (mut config, _) = RunConfig::from_query("scenario=eventual-consistency&seed=9");
        assert_eq!(
            config.to_query(),
            "?scenario=eventual-consistency&seed=9&until=30&source=sim"
        );
        config.knobs.insert("broker_delay_ms".into(), 1_250.5);
        config.speed = 0.5;
        config.source = SourceKind::Backend;
        config.faults = vec!["crash:Product@10+5".into(), "drop:*=20%@0".into()];
        let query = config.to_query();
        assert_eq!(
            query,
            "?scenario=eventual-consistency&seed=9&until=30&source=backend&speed=0.5\
             &k.broker_delay_ms=1250.5&fault=crash%3AProduct%4010%2B5&fault=drop%3A%2A%3D20%25%400"
        );
        let (back, notes) = RunConfig::from_query(&query);
        assert!(notes.is_empty());
        assert_eq!(back, config);
    }

    #[test]
    fn switching_scenario_resets_its_knobs_but_keeps_the_seed() {
        let (mut config, _) = RunConfig::from_query("seed=5&k.read_rate_per_s=9&source=backend");
        config.switch_scenario("eventual-consistency");
        assert_eq!(config.seed, 5);
        assert_eq!(config.source, SourceKind::Backend);
        assert_eq!(config.knobs["read_rate_per_s"], 4.0);
        assert!(config.knobs.contains_key("broker_delay_ms"));
        config.switch_scenario("missing");
        assert_eq!(config.scenario, "eventual-consistency");
    }

    #[test]
    fn query_components_decode() {
        assert_eq!(
            parse_query("?a=b%20c&d=e+f&g&bad=%zz&end=%4"),
            vec![
                ("a".to_string(), "b c".to_string()),
                ("d".to_string(), "e f".to_string()),
                ("g".to_string(), String::new()),
                ("bad".to_string(), "%zz".to_string()),
                ("end".to_string(), "%4".to_string()),
            ]
        );
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
