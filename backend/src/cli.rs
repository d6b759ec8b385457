//! The work behind `crosstalk simulate` and `crosstalk scenarios`, written to any `Write` so it
//! is tested without spawning the binary.

use crate::live::{LiveConfig, LiveError, LiveRun};
use crate::state::LIVE_CLOSE_TIMEOUT;
use crate::stream::EventBatches;
use serde::Serialize;
use shared::metrics::summarize;
use shared::protocol::{EndReason, Event, RunRequest, Trace, TraceEvent, event_line, header_line};
use shared::scenario::{self, KnobSpec, ScenarioError, ScenarioSpec, parse_knob_assignment};
use shared::time::Micros;
use std::io::{self, Write};

/// Events handed to the writer at a time; the output is buffered anyway.
const EVENTS_PER_WRITE: usize = 1024;

/// The column `scenarios` wraps its text at.
const TEXT_WIDTH: usize = 88;

/// How `simulate` prints a run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SimulateFormat {
    /// The trace as JSON lines: the header, then one event per line.
    #[default]
    Jsonl,
    /// One line of JSON with the run's numbers.
    Summary,
}

/// How `compare` prints the trade-off table.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// A Markdown table, ready for a blog post.
    #[default]
    Markdown,
    /// The whole comparison as JSON, both runs' summaries included.
    Json,
}

/// Runs the comparison of every pattern with `seed` and writes it to `out` in `format`.
pub fn compare(seed: u64, format: CompareFormat, out: &mut impl Write) -> Result<(), CliError> {
    let comparison = engine::compare(seed)?;
    match format {
        CompareFormat::Markdown => {
            out.write_all(shared::compare::markdown(&comparison).as_bytes())?
        }
        CompareFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &comparison).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// How `scenarios` prints the catalog.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CatalogFormat {
    /// Readable in a terminal.
    #[default]
    Text,
    /// One JSON array, for scripts.
    Json,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// What was asked is wrong; the message says how. Exit code 2.
    #[error(transparent)]
    BadInput(#[from] ScenarioError),
    /// An argument is wrong; the message says how. Exit code 2.
    #[error("{0}")]
    BadArgument(String),
    /// The output could not be written (a closed pipe is one case). Exit code 1.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// The live run could not start. Exit code 1.
    #[error("the live run failed: {0}")]
    Live(LiveError),
    /// The trace file given to `check` cannot be read or is not a trace; the message says
    /// which line is wrong. Exit code 2.
    #[error("{0}")]
    BadTrace(String),
}

impl From<LiveError> for CliError {
    fn from(err: LiveError) -> CliError {
        match err {
            LiveError::Scenario(err) => CliError::BadInput(err),
            other => CliError::Live(other),
        }
    }
}

impl CliError {
    /// True when the reader of stdout went away, as `| head` does: nothing is wrong then.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Builds the request of `simulate` from its arguments. `until_s` defaults to the scenario's
/// own run length; `assignments` are `KNOB=VALUE`, and a knob given twice takes the last value;
/// `faults` are written like `crash:Product@10+5` and checked when the run starts.
pub fn run_request(
    scenario_name: &str,
    seed: u64,
    until_s: Option<f64>,
    assignments: &[String],
    faults: &[String],
) -> Result<RunRequest, ScenarioError> {
    let spec = scenario::find(scenario_name)?;
    let knobs = assignments
        .iter()
        .map(|text| parse_knob_assignment(spec, text))
        .collect::<Result<shared::protocol::KnobMap, _>>()?;
    Ok(RunRequest {
        scenario: spec.name.to_string(),
        seed,
        until_s: until_s.unwrap_or(spec.default_until_s),
        knobs,
        faults: faults.to_vec(),
    })
}

/// The warning for a run its bounds cut short, given its last event and requested length: the
/// numbers then cover only the time it reached.
pub fn cut_short_warning(last: Option<&TraceEvent>, until: Micros) -> Option<String> {
    let last = last?;
    matches!(
        last.event,
        Event::RunEnded {
            reason: EndReason::Budget,
            ..
        }
    )
    .then(|| {
        format!(
            "warning: the run was cut short at {:.1} s of {:.1} s: it reached its bound on trace \
             events or pending work; its numbers cover the {:.1} s it ran",
            last.at.as_secs_f64(),
            until.as_secs_f64(),
            last.at.as_secs_f64()
        )
    })
}

/// Runs `request` and writes it to `out` in `format`; returns the warning to print when the run
/// was cut short ([`cut_short_warning`]).
///
/// The JSON lines are written as the run is computed, so a long run never sits in memory as
/// text; they are byte for byte [`Trace::to_jsonl`].
pub fn simulate(
    request: &RunRequest,
    format: SimulateFormat,
    out: &mut impl Write,
) -> Result<Option<String>, CliError> {
    let warning = match format {
        SimulateFormat::Jsonl => {
            let sim = engine::start(request)?;
            let until = sim.header().until;
            out.write_all(header_line(sim.header()).as_bytes())?;
            let mut last = None;
            for events in EventBatches::new(sim, EVENTS_PER_WRITE) {
                for event in &events {
                    out.write_all(event_line(event).as_bytes())?;
                }
                last = events.last().cloned();
            }
            cut_short_warning(last.as_ref(), until)
        }
        SimulateFormat::Summary => {
            let trace: Trace = engine::simulate(request)?;
            let summary = summarize(&trace);
            serde_json::to_writer(&mut *out, &summary).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
            cut_short_warning(trace.events.last(), trace.header.until)
        }
    };
    out.flush()?;
    Ok(warning)
}

/// Runs `request` live until its time is up or `interrupt` completes, then writes its trace or
/// its numbers to `out`, as `simulate` does for a simulated run (and returns its warning).
pub async fn live(
    request: &RunRequest,
    config: LiveConfig,
    format: SimulateFormat,
    interrupt: impl Future<Output = ()>,
    out: &mut impl Write,
) -> Result<Option<String>, CliError> {
    let run = LiveRun::start(request, config).await?;
    tokio::select! {
        () = run.finished() => {}
        () = interrupt => run.stop(),
    }
    // Its RabbitMQ queues are deleted and its files closed before the process may exit.
    if tokio::time::timeout(LIVE_CLOSE_TIMEOUT, run.closed())
        .await
        .is_err()
    {
        tracing::warn!("the live run did not close within {LIVE_CLOSE_TIMEOUT:?}");
    }
    let trace = run.trace();
    match format {
        SimulateFormat::Jsonl => out.write_all(trace.to_jsonl().as_bytes())?,
        SimulateFormat::Summary => {
            serde_json::to_writer(&mut *out, &summarize(&trace)).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(cut_short_warning(trace.events.last(), trace.header.until))
}

/// What `check` found in a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Anomalies of every kind.
    pub anomalies: u64,
}

/// Reads the trace file at `path` (JSON lines, as `simulate`, `live` or the page's export write
/// it), checks it (`shared::check`) and writes the count of each kind of anomaly and the first
/// `first` anomalies with the events that prove them.
pub fn check_file(
    path: &std::path::Path,
    first: usize,
    out: &mut impl Write,
) -> Result<CheckReport, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| CliError::BadTrace(format!("cannot read {}: {err}", path.display())))?;
    let trace = Trace::from_jsonl(&text)
        .map_err(|err| CliError::BadTrace(format!("{} is not a trace: {err}", path.display())))?;
    check_trace(&trace, first, out)
}

/// [`check_file`] for a trace in memory.
pub fn check_trace(
    trace: &Trace,
    first: usize,
    out: &mut impl Write,
) -> Result<CheckReport, CliError> {
    let anomalies = shared::check::check(&trace.header, &trace.events);
    let end = match trace.events.last() {
        Some(TraceEvent {
            at,
            event: Event::RunEnded { reason, .. },
        }) => format!(
            "ended ({}) at {:.3} s",
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            at.as_secs_f64()
        ),
        Some(last) => format!(
            "has no run_ended (last event at {:.3} s): confirmed events and partial updates \
             are judged only at the end of a run that reached its length",
            last.at.as_secs_f64()
        ),
        None => "has no events".to_string(),
    };
    writeln!(
        out,
        "{} seed {}: {} events, {end}",
        trace.header.scenario,
        trace.header.seed,
        trace.events.len()
    )?;
    writeln!(out, "anomalies: {}", anomalies.len())?;
    for (kind, count) in shared::check::counts(&anomalies) {
        writeln!(out, "  {:<31} {count}", kind.name())?;
    }
    if !anomalies.is_empty() {
        let shown = first.min(anomalies.len());
        writeln!(
            out,
            "the first {shown} of {} (event #n is the n-th event after the header, from #0):",
            anomalies.len()
        )?;
    }
    for anomaly in anomalies.iter().take(first) {
        let events: Vec<String> = anomaly.events.iter().map(|i| format!("#{i}")).collect();
        writeln!(
            out,
            "  {:.6} s {} [events {}]: {}",
            anomaly.at.as_secs_f64(),
            anomaly.kind.name(),
            events.join(", "),
            anomaly.text
        )?;
    }
    out.flush()?;
    Ok(CheckReport {
        anomalies: anomalies.len() as u64,
    })
}

/// Writes every scenario of the catalog with its knobs.
pub fn scenarios(format: CatalogFormat, out: &mut impl Write) -> Result<(), CliError> {
    match format {
        CatalogFormat::Text => out.write_all(catalog_text().as_bytes())?,
        CatalogFormat::Json => {
            let catalog: Vec<ScenarioJson> = scenario::catalog().iter().map(Into::into).collect();
            serde_json::to_writer_pretty(&mut *out, &catalog).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The catalog as text for a terminal.
fn catalog_text() -> String {
    let mut text = String::new();
    for (index, spec) in scenario::catalog().iter().enumerate() {
        if index > 0 {
            text.push('\n');
        }
        push_scenario_text(&mut text, spec);
    }
    text
}

fn push_scenario_text(text: &mut String, spec: &ScenarioSpec) {
    text.push_str(&format!(
        "{} — {} (default run: {} s)\n",
        spec.name, spec.title, spec.default_until_s
    ));
    push_wrapped(text, spec.lesson, "  ");
    text.push_str("  knobs:\n");
    let name_width = spec.knobs.iter().map(|k| k.name.len()).max().unwrap_or(0);
    for knob in spec.knobs {
        text.push_str(&format!(
            "    {:name_width$}  {}\n",
            knob.name,
            knob_range(knob)
        ));
        push_wrapped(text, knob.help, &" ".repeat(6 + name_width));
    }
}

/// `default 3 per s, from 0 to 50 (live up to 5000)`, with whole-number knobs said to be so; for
/// a knob that picks a way, `default 0 (rabbitmq); 0 or rabbitmq, 1 or visibility-timeout`.
fn knob_range(knob: &KnobSpec) -> String {
    if !knob.choices.is_empty() {
        let ways: Vec<String> = knob
            .choices
            .iter()
            .enumerate()
            .map(|(index, choice)| format!("{index} or {choice}"))
            .collect();
        let default = knob.choice_name(knob.default).unwrap_or("?");
        return format!("default {} ({default}); {}", knob.default, ways.join(", "));
    }
    let unit = if knob.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", knob.unit)
    };
    let whole = if knob.whole { ", whole numbers" } else { "" };
    let live = knob.live_max.map_or(String::new(), |live_max| {
        format!(" (live up to {live_max})")
    });
    format!(
        "default {}{unit}, from {} to {}{live}{whole}",
        knob.default, knob.min, knob.max
    )
}

/// Appends `words` wrapped at [`TEXT_WIDTH`], each line starting with `indent`.
fn push_wrapped(text: &mut String, words: &str, indent: &str) {
    let mut line = String::new();
    for word in words.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > TEXT_WIDTH {
            text.push_str(&format!("{indent}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        text.push_str(&format!("{indent}{line}\n"));
    }
}

/// A scenario as `scenarios --format json` prints it.
#[derive(Serialize)]
struct ScenarioJson {
    name: &'static str,
    title: &'static str,
    lesson: &'static str,
    default_until_s: f64,
    knobs: Vec<KnobJson>,
}

/// A knob as `scenarios --format json` prints it.
#[derive(Serialize)]
struct KnobJson {
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    default: f64,
    min: f64,
    /// Its largest value in a simulated run.
    max: f64,
    /// Its largest value in a live run, for a knob that goes further live.
    #[serde(skip_serializing_if = "Option::is_none")]
    live_max: Option<f64>,
    whole: bool,
    /// For a knob that picks a way, each way's name by its number; `KNOB=NAME` sets it.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    choices: &'static [&'static str],
    help: &'static str,
}

impl From<&ScenarioSpec> for ScenarioJson {
    fn from(spec: &ScenarioSpec) -> Self {
        ScenarioJson {
            name: spec.name,
            title: spec.title,
            lesson: spec.lesson,
            default_until_s: spec.default_until_s,
            knobs: spec
                .knobs
                .iter()
                .map(|knob| KnobJson {
                    name: knob.name,
                    label: knob.label,
                    unit: knob.unit,
                    default: knob.default,
                    min: knob.min,
                    max: knob.max,
                    live_max: knob.live_max,
                    whole: knob.whole,
                    choices: knob.choices,
                    help: knob.help,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulated(request: &RunRequest, format: SimulateFormat) -> String {
        let mut out = Vec::new();
        simulate(request, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn jsonl_is_exactly_the_whole_trace_as_json_lines() {
        let check = |scenario: &str, seed: u64, until_s: Option<f64>, sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let request = run_request(scenario, seed, until_s, &sets, &[]).unwrap();
            let expected = engine::simulate(&request).unwrap().to_jsonl();
            assert_eq!(simulated(&request, SimulateFormat::Jsonl), expected);
        };
        check("request-response", 1, Some(5.0), &[]);
        check("request-response", 7, None, &["read_rate_per_s=9"]);
        check("eventual-consistency", 3, Some(20.0), &[]);
    }

    #[test]
    fn requests_take_defaults_and_refuse_bad_input() {
        let request = run_request("eventual-consistency", 4, None, &[], &[]).unwrap();
        assert_eq!(request.until_s, 30.0);
        assert!(request.knobs.is_empty());
        let request = run_request(
            "request-response",
            4,
            Some(2.0),
            &["read_rate_per_s=1".into(), "read_rate_per_s=2".into()],
            &[],
        )
        .unwrap();
        assert_eq!(request.knobs["read_rate_per_s"], 2.0, "the last value wins");

        let check = |scenario: &str, sets: &[&str], expected: &str| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let err = run_request(scenario, 1, None, &sets, &[])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        };
        check("nope", &[], "unknown scenario \"nope\"");
        check("request-response", &["x=abc"], "cannot read \"x=abc\"");
        check("request-response", &["novalue"], "expected KNOB=VALUE");
    }

    #[test]
    fn summary_is_one_line_of_json() {
        let request = run_request("request-response", 2, Some(10.0), &[], &[]).unwrap();
        let text = simulated(&request, SimulateFormat::Summary);
        assert_eq!(text.lines().count(), 1);
        let summary: shared::protocol::RunSummary = serde_json::from_str(&text).unwrap();
        assert_eq!(
            summary.trace_hash,
            engine::simulate(&request).unwrap().hash_hex()
        );
        assert_eq!(
            summary.anomalies.len(),
            shared::check::AnomalyKind::ALL.len(),
            "every kind of anomaly is counted: {:?}",
            summary.anomalies
        );
    }

    #[test]
    fn the_text_catalog_names_every_scenario_and_knob_within_the_width() {
        let text = catalog_text();
        for spec in scenario::catalog() {
            assert!(text.contains(spec.name), "{text}");
            for knob in spec.knobs {
                assert!(text.contains(knob.name), "{text}");
            }
        }
        for line in text.lines() {
            // Long single words may overflow; the catalog has none.
            assert!(line.chars().count() <= TEXT_WIDTH, "too long: {line:?}");
        }
    }

    #[test]
    fn wrapping_keeps_every_word_in_order() {
        let check = |words: &str, indent: &str, expected: &str| {
            let mut text = String::new();
            push_wrapped(&mut text, words, indent);
            assert_eq!(text, expected);
        };
        check("", "  ", "");
        check("one two", "  ", "  one two\n");
        let long = "word ".repeat(30);
        let mut text = String::new();
        push_wrapped(&mut text, &long, "    ");
        assert_eq!(text.split_whitespace().count(), 30);
        assert!(
            text.lines()
                .all(|l| l.len() <= TEXT_WIDTH && l.starts_with("    "))
        );
    }
}
