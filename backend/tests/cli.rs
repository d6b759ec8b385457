//! The real `crosstalk` binary: its output, its exit codes, and `serve`.

mod support;

use shared::scenario::catalog;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use support::{Spawned, TempDir, crosstalk, http_get, spawn_serve};

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn scenarios_lists_every_scenario_with_its_knobs_as_text() {
    let output = crosstalk(&["scenarios"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout_of(&output);
    for spec in catalog() {
        assert!(text.contains(spec.name), "{text}");
        assert!(text.contains(spec.title), "{text}");
        assert!(
            text.contains(&format!("default run: {} s", spec.default_until_s)),
            "{text}"
        );
        for knob in spec.knobs {
            assert!(text.contains(knob.name), "{} missing:\n{text}", knob.name);
        }
    }
    assert!(text.contains("read_rate_per_s"), "{text}");
    assert!(text.contains("from 0 to 50 (live up to 5000)"), "{text}");
}

#[test]
fn scenarios_as_json_has_every_field_of_every_knob() {
    let output = crosstalk(&["scenarios", "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), catalog().len());
    for (json, spec) in listed.iter().zip(catalog()) {
        assert_eq!(json["name"], spec.name);
        assert_eq!(json["title"], spec.title);
        assert_eq!(json["lesson"], spec.lesson);
        assert_eq!(json["default_until_s"], spec.default_until_s);
        let knobs = json["knobs"].as_array().unwrap();
        assert_eq!(knobs.len(), spec.knobs.len());
        for (knob_json, knob) in knobs.iter().zip(spec.knobs) {
            assert_eq!(knob_json["name"], knob.name);
            assert_eq!(knob_json["default"], knob.default);
            assert_eq!(knob_json["unit"], knob.unit);
            assert_eq!(knob_json["min"], knob.min);
            assert_eq!(knob_json["max"], knob.max);
            match knob.live_max {
                Some(live_max) => assert_eq!(knob_json["live_max"], live_max),
                None => assert!(knob_json.get("live_max").is_none(), "{knob_json}"),
            }
            assert_eq!(knob_json["help"], knob.help);
        }
    }
}

#[test]
fn simulate_summary_is_one_line_of_json_with_the_numbers() {
    let output = crosstalk(&[
        "simulate",
        "--scenario",
        "request-response",
        "--seed",
        "3",
        "--until",
        "20",
        "--format",
        "summary",
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout_of(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    for field in [
        "ops_ok",
        "ops_failed",
        "by_operation",
        "stale_reads",
        "events",
        "trace_hash",
    ] {
        assert!(summary.get(field).is_some(), "no {field} in {text}");
    }
    assert_eq!(summary["scenario"], "request-response");
    assert_eq!(summary["seed"], 3);
    assert_eq!(summary["until_s"], 20.0);
    assert!(summary["ops_ok"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(summary["trace_hash"].as_str().unwrap().len(), 16);
}

#[test]
fn simulate_defaults_the_seed_and_the_scenarios_run_length() {
    let output = crosstalk(&[
        "simulate",
        "--scenario",
        "eventual-consistency",
        "--format",
        "summary",
    ]);
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["seed"], 1);
    assert_eq!(summary["until_s"], 30.0);
}

#[test]
fn the_same_arguments_give_the_same_output() {
    let check = |args: &[&str]| {
        let first = crosstalk(args);
        let second = crosstalk(args);
        assert!(first.status.success(), "{first:?}");
        assert!(!first.stdout.is_empty());
        assert_eq!(first.stdout, second.stdout, "{args:?}");
    };
    check(&[
        "simulate",
        "--scenario",
        "request-response",
        "--seed",
        "9",
        "--until",
        "15",
    ]);
    check(&[
        "simulate",
        "--scenario",
        "eventual-consistency",
        "--seed",
        "9",
        "--until",
        "15",
        "--set",
        "read_rate_per_s=6",
        "--format",
        "summary",
    ]);
}

#[test]
fn jsonl_starts_with_the_header_and_ends_with_the_run_ending() {
    let output = crosstalk(&[
        "simulate",
        "--scenario",
        "request-response",
        "--until",
        "5",
        "--set",
        "read_rate_per_s=2",
    ]);
    assert!(output.status.success(), "{output:?}");
    let trace = shared::protocol::Trace::from_jsonl(&stdout_of(&output)).unwrap();
    assert_eq!(trace.header.knobs["read_rate_per_s"], 2.0);
    assert!(matches!(
        trace.events.last().unwrap().event,
        shared::protocol::Event::RunEnded { .. }
    ));
}

#[test]
fn bad_input_exits_with_2_and_a_message_naming_the_problem() {
    let check = |args: &[&str], expected: &str| {
        let output = crosstalk(args);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr:?} should contain {expected:?}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let simulate = |extra: &[&'static str]| {
        let mut args = vec!["simulate", "--scenario", "request-response"];
        args.extend_from_slice(extra);
        args
    };
    // Our own checks: one line, naming the problem.
    check(
        &["simulate", "--scenario", "nope"],
        "unknown scenario \"nope\"",
    );
    check(&simulate(&["--set", "speed=3"]), "has no knob \"speed\"");
    check(
        &simulate(&["--fault", "crash:Payment@3"]),
        "cannot read fault \"crash:Payment@3\": no service \"Payment\"",
    );
    check(&simulate(&["--set", "x=abc"]), "cannot read \"x=abc\"");
    check(
        &simulate(&["--set", "read_rate_per_s"]),
        "expected KNOB=VALUE",
    );
    check(
        &simulate(&["--set", "read_rate_per_s=99999"]),
        "out of range: it must be between 0 and 50 per s in a simulated run; a live run takes up \
         to 5000",
    );
    // A live run takes rates up to its own, higher maximum.
    check(
        &[
            "live",
            "--scenario",
            "request-response",
            "--set",
            "read_rate_per_s=5001",
        ],
        "knob read_rate_per_s = 5001 is out of range: it must be between 0 and 5000 per s\n",
    );
    check(
        &simulate(&["--set", "products_per_order=1.5"]),
        "whole number",
    );
    check(
        &simulate(&["--until", "0"]),
        "run length 0 s is out of range",
    );
    check(
        &simulate(&["--until", "-5"]),
        "run length -5 s is out of range",
    );
    check(
        &simulate(&["--until", "NaN"]),
        "run length NaN s is out of range",
    );
    check(&simulate(&["--until", "1000"]), "at most 600 s");
    for args in [
        simulate(&["--set", "x=abc"]),
        vec!["simulate", "--scenario", "nope"],
    ] {
        let stderr = stderr_of(&crosstalk(&args));
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("crosstalk: error: "), "{stderr}");
    }
    // Clap's usage errors.
    check(&["simulate"], "--scenario");
    check(&simulate(&["--until", "abc"]), "invalid value 'abc'");
    check(
        &simulate(&["--seed", "-1"]),
        "invalid value '-1' for '--seed <SEED>'",
    );
    check(&simulate(&["--format", "xml"]), "invalid value 'xml'");
    check(&["scenarios", "--format", "yaml"], "invalid value 'yaml'");
    check(&["teleport"], "unrecognized subcommand");
}

#[test]
fn a_closed_stdout_ends_quietly_without_a_panic() {
    // `crosstalk simulate ... | head -1`: the biggest run, whose reader leaves after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args([
            "simulate",
            "--scenario",
            "request-response",
            "--until",
            "600",
            "--set",
            "read_rate_per_s=50",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first_line = String::new();
    stdout.read_line(&mut first_line).unwrap();
    assert!(
        first_line.starts_with("{\"protocol_version\":"),
        "{first_line}"
    );
    drop(stdout);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A `crosstalk serve` process, stopped with SIGTERM when dropped.
struct ServeProcess {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    stderr: BufReader<std::process::ChildStderr>,
}

impl ServeProcess {
    fn start(args: &[&str]) -> ServeProcess {
        // The log up to the address is not needed here.
        let Spawned {
            child,
            addr,
            stderr,
            ..
        } = spawn_serve(args);
        ServeProcess {
            child,
            addr,
            stderr,
        }
    }

    /// Sends SIGTERM and returns the exit status and the rest of the log.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        (status, rest)
    }
}

#[tokio::test]
async fn serve_without_a_page_answers_503_and_stops_on_sigterm() {
    let missing = TempDir::new("serve-missing");
    let dist = missing.path().join("dist");
    let server = ServeProcess::start(&["--dist", dist.to_str().unwrap()]);
    let response = http_get(server.addr, "/").await;
    assert_eq!(response.status, 503, "{response:?}");
    assert!(
        response
            .body
            .contains("the page is not built: run `trunk build --release`"),
        "{response:?}"
    );
    let health = http_get(server.addr, "/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");
    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn serve_serves_the_page_from_its_dist_directory() {
    let dist = TempDir::new("serve-dist");
    std::fs::write(dist.path().join("index.html"), "<p>hello</p>").unwrap();
    let server = ServeProcess::start(&["--dist", dist.path().to_str().unwrap()]);
    let response = http_get(server.addr, "/deep/link").await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "<p>hello</p>");
    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
}

#[test]
fn serve_on_a_taken_port_fails_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = crosstalk(&["serve", "--bind", &addr]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn compare_prints_one_row_per_pattern_as_markdown_and_everything_as_json() {
    let markdown = crosstalk(&["compare"]);
    assert!(markdown.status.success(), "{markdown:?}");
    let text = stdout_of(&markdown);
    assert!(text.contains("| pattern | read p50 |"), "{text}");
    let json = crosstalk(&["compare", "--format", "json", "--seed", "1"]);
    assert!(json.status.success(), "{json:?}");
    let comparison: shared::protocol::Comparison = serde_json::from_str(&stdout_of(&json)).unwrap();
    assert!(comparison.rows.len() >= 3);
    for row in &comparison.rows {
        assert!(
            text.contains(&format!("| {} |", row.title)),
            "{} missing:\n{text}",
            row.title
        );
    }
    let bad = crosstalk(&["compare", "--format", "csv"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn simulate_runs_every_scenario_with_a_fault_of_every_kind() {
    for spec in catalog() {
        let output = crosstalk(&["simulate", "--scenario", spec.name, "--format", "summary"]);
        assert!(output.status.success(), "{}: {output:?}", spec.name);
        let summary: shared::protocol::RunSummary =
            serde_json::from_str(&stdout_of(&output)).unwrap();
        assert!(summary.ops_ok > 0, "{}: {summary:?}", spec.name);
        let header = engine::start(&shared::protocol::RunRequest {
            scenario: spec.name.into(),
            seed: 1,
            until_s: 1.0,
            knobs: Default::default(),
            faults: Vec::new(),
        })
        .unwrap()
        .header()
        .clone();
        let last = &header.services[header.services.len() - 1].name;
        let first = &header.services[1].name;
        let mut args = vec!["simulate", "--scenario", spec.name, "--format", "summary"];
        let faults = [
            format!("crash:{last}@5+5"),
            format!("slow:{first}*3@2+3"),
            format!("partition:{first}-{last}@12+2"),
            "drop:*=5%@0".to_string(),
            "duplicate:*=5%@0".to_string(),
            "reorder:*=5%@0".to_string(),
        ];
        for fault in &faults {
            args.extend(["--fault", fault.as_str()]);
        }
        let output = crosstalk(&args);
        assert!(
            output.status.success(),
            "{} with faults: {output:?}",
            spec.name
        );
    }
}

#[test]
fn a_run_cut_short_says_so_and_its_rates_cover_the_time_it_ran() {
    // Shipping works 120 ms on each of 50 new orders a second, one at a time: its queue fills,
    // publishes are refused and retried, and under SQS's visibility timeout late acks bring
    // redeliveries, so the run outgrows the bound on trace events long before 600 s (the
    // overloaded consumer of shared/tests/budget.rs).
    let output = crosstalk(&[
        "simulate",
        "--scenario",
        "event-driven",
        "--until",
        "600",
        "--set",
        "order_rate_per_s=50",
        "--set",
        "products_per_order=8",
        "--set",
        "link_latency_ms=1",
        "--set",
        "redelivery=visibility-timeout",
        "--set",
        "idempotent=1",
        "--set",
        "durable=1",
        "--format",
        "summary",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with("crosstalk: warning: the run was cut short at ")
            && stderr.contains("of 600.0 s"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["end_reason"], "budget");
    let simulated_s = summary["simulated_s"].as_f64().unwrap();
    assert!(simulated_s > 60.0 && simulated_s < 600.0, "{simulated_s}");
    let orders = &summary["by_operation"]["create order"];
    let (ok, failed) = (
        orders["ok"].as_f64().unwrap(),
        orders["failed"].as_f64().unwrap(),
    );
    assert_eq!(
        orders["throughput_per_s"].as_f64().unwrap(),
        ok / simulated_s
    );
    // Over the time it ran, the orders come at the rate asked (over 600 s they would not).
    let started_per_s = (ok + failed) / simulated_s;
    assert!(
        (45.0..55.0).contains(&started_per_s),
        "a 50/s workload: {started_per_s} orders/s over {simulated_s} s"
    );
    let healthy = crosstalk(&[
        "simulate",
        "--scenario",
        "request-response",
        "--format",
        "summary",
    ]);
    assert_eq!(
        stderr_of(&healthy),
        "",
        "no warning for a run that reached its end"
    );
}

#[test]
fn crowd_measures_viewers_of_the_server_it_starts_with_the_flags_it_is_given() {
    let crowd = |server_arg: &str| {
        crosstalk(&[
            "crowd",
            "--viewers",
            "3",
            "--for",
            "3",
            "--warmup",
            "0.5",
            "--set",
            "read_rate_per_s=20",
            "--set",
            "product_down_for_s=0",
            "--server-arg",
            server_arg,
        ])
    };
    // A flag `serve` takes: the crowd is measured.
    let out = crowd("--viewer-writes-per-s=1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["connected"], 3, "{report}");
    assert_eq!(report["complete"], 3, "{report}");
    assert_eq!(report["resyncs"], 0, "{report}");
    assert!(report["events_measured"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["server_rss_peak_kib"].as_u64().unwrap() > 0,
        "{report}"
    );
    let cores = &report["cpu_cores"];
    let spent: f64 = ["server", "tool", "other", "idle"]
        .iter()
        .map(|who| cores[who].as_f64().unwrap())
        .sum();
    let cpus = cores["cpus"].as_f64().unwrap();
    assert!((spent - cpus).abs() < 0.01, "{cores}");
    assert!(cores["server"].as_f64().unwrap() > 0.0, "{cores}");

    // One it refuses: the crowd says why the server did not start.
    let out = crowd("--no-such-flag");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the server exited before listening") && stderr.contains("--no-such-flag"),
        "{stderr}"
    );
}

#[test]
fn check_prints_the_count_of_each_kind_and_the_anomalies_with_their_events() {
    let dir = TempDir::new("check");
    let file = dir.path().join("run.jsonl");
    let simulated = crosstalk(&[
        "simulate",
        "--scenario",
        "eventual-consistency",
        "--seed",
        "4",
        "--until",
        "5",
        "--set",
        "read_rate_per_s=2",
        "--set",
        "rename_rate_per_s=1",
        "--set",
        "broker_delay_ms=1000",
        "--set",
        "products_per_order=1",
    ]);
    assert!(simulated.status.success(), "{simulated:?}");
    std::fs::write(&file, &simulated.stdout).unwrap();
    let path = file.to_str().unwrap();
    // The worked example of docs/METRICS.md ("Anomalies").
    let output = crosstalk(&["check", path]);
    assert!(
        output.status.success(),
        "anomalies alone exit 0: {output:?}"
    );
    let text = stdout_of(&output);
    assert!(text.contains("anomalies: 2\n"), "{text}");
    assert!(
        text.contains("  stale_read                      2\n"),
        "{text}"
    );
    assert!(
        text.contains("  lost_update                     0\n"),
        "{text}"
    );
    assert!(
        text.contains("stale_read [events #62, #65, #70]: op 4 returned products[6] v1"),
        "{text}"
    );
    let first_one = stdout_of(&crosstalk(&["check", path, "--first", "1"]));
    assert!(first_one.contains("the first 1 of 2"), "{first_one}");
    assert!(!first_one.contains("op 5 returned"), "{first_one}");
    let strict = crosstalk(&["check", path, "--fail-on-anomaly"]);
    assert_eq!(strict.status.code(), Some(3), "{strict:?}");
    assert!(
        stderr_of(&strict).contains("2 anomalies found"),
        "{strict:?}"
    );
    // A clean run passes the strict check.
    let clean = dir.path().join("clean.jsonl");
    let simulated = crosstalk(&["simulate", "--scenario", "request-response", "--until", "3"]);
    std::fs::write(&clean, &simulated.stdout).unwrap();
    let output = crosstalk(&["check", clean.to_str().unwrap(), "--fail-on-anomaly"]);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout_of(&output).contains("anomalies: 0\n"), "{output:?}");
}

#[test]
fn check_refuses_a_missing_or_invalid_file_with_a_clear_error_and_exit_code_2() {
    let dir = TempDir::new("check-bad");
    let missing = dir.path().join("missing.jsonl");
    let output = crosstalk(&["check", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("cannot read") && stderr.contains("missing.jsonl"),
        "{stderr}"
    );
    let cases = [
        ("empty.jsonl", "", "the trace is empty"),
        ("text.jsonl", "hello\n", "line 1"),
        (
            "bad-event.jsonl",
            "HEADER\n{\"at\":1,\"type\":\"no_such_event\"}\n",
            "line 2",
        ),
    ];
    let header = stdout_of(&crosstalk(&[
        "simulate",
        "--scenario",
        "request-response",
        "--until",
        "1",
    ]))
    .lines()
    .next()
    .unwrap()
    .to_string();
    for (name, content, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, content.replace("HEADER", &header)).unwrap();
        let output = crosstalk(&["check", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{name}: {output:?}");
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("is not a trace") && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{name}: nothing on stdout");
    }
}
