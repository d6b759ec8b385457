//! Services with capacity: a time per request, a worker pool and a bounded queue, beyond which a
//! service sheds load. The lesson in numbers, the summary against its definition
//! (`docs/METRICS.md`, "Capacity") at the edges, and the default that changes nothing.

use engine::simulate;
use shared::metrics::summarize;
use shared::protocol::{CapacitySummary, Event, RunRequest, RunSummary, Trace};
use shared::services::OVERLOADED_LABEL_PREFIX;
use shared::slot_map::SlotMap;
use shared::time::Micros;

fn run(seed: u64, until_s: f64, knobs: &[(&str, f64)], faults: &[&str]) -> Trace {
    println!("seed {seed}, until {until_s} s, knobs {knobs:?}, faults {faults:?}");
    simulate(&RunRequest {
        scenario: "request-response".into(),
        seed,
        until_s,
        knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
    })
    .expect("valid request")
}

/// Request/response without its scheduled outage and slowness, plus `knobs`.
fn quiet(seed: u64, until_s: f64, knobs: &[(&str, f64)]) -> Trace {
    let mut all = vec![("product_down_for_s", 0.0), ("product_slow_for_s", 0.0)];
    all.extend_from_slice(knobs);
    run(seed, until_s, &all, &[])
}

fn product(summary: &RunSummary) -> &CapacitySummary {
    &summary.capacity["Product"]
}

fn read_p99_us(summary: &RunSummary) -> u64 {
    summary.by_operation["read order"].p99_us
}

/// Product can do 2 workers ÷ 100 ms = 20 requests/s; 10 reads/s of 3 products each offer 30.
const OVERLOADED: &[(&str, f64)] = &[
    ("read_rate_per_s", 10.0),
    ("product_workers", 2.0),
    ("product_service_ms", 100.0),
    ("call_timeout_ms", 5_000.0),
    ("pool_size", 64.0),
];

#[test]
fn at_their_defaults_the_capacity_knobs_change_nothing() {
    let plain = quiet(3, 20.0, &[]);
    let defaults = quiet(
        3,
        20.0,
        &[
            ("product_workers", 0.0),
            ("product_service_ms", 0.0),
            ("product_queue_max", 10.0),
            ("order_workers", 0.0),
            ("order_service_ms", 0.0),
            ("order_queue_max", 10.0),
        ],
    );
    assert_eq!(plain.hash_hex(), defaults.hash_hex());
    assert!(
        !plain
            .header
            .knobs
            .keys()
            .any(|k| k.contains("workers") || k.contains("service_ms") || k.contains("queue_max")),
        "left out of the header at their defaults: {:?}",
        plain.header.knobs
    );
    assert!(summarize(&plain).capacity.is_empty());
}

#[test]
fn workers_without_a_service_time_are_refused() {
    let err = simulate(&RunRequest {
        scenario: "request-response".into(),
        seed: 1,
        until_s: 5.0,
        knobs: [("product_workers".to_string(), 4.0)].into(),
        faults: vec![],
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cannot run with these knobs: product_workers = 4 limits nothing while product_service_ms is 0"),
        "{err}"
    );
}

#[test]
fn above_capacity_the_service_sheds_and_a_longer_queue_trades_refusals_for_latency() {
    let short = summarize(&quiet(
        5,
        30.0,
        &[OVERLOADED, &[("product_queue_max", 2.0)]].concat(),
    ));
    let long = summarize(&quiet(
        5,
        30.0,
        &[OVERLOADED, &[("product_queue_max", 40.0)]].concat(),
    ));
    for (name, s) in [("queue 2", &short), ("queue 40", &long)] {
        println!(
            "{name}: {:?}, reads ok {} failed {}, p99 {} µs, ops/s {:.2}",
            product(s),
            s.by_operation["read order"].ok,
            s.by_operation["read order"].failed,
            read_p99_us(s),
            s.by_operation["read order"].throughput_per_s
        );
    }
    assert!(
        product(&short).shed > 0,
        "offered load above capacity is shed"
    );
    assert!(product(&long).shed < product(&short).shed);
    assert!(product(&long).waiting_max > product(&short).waiting_max);
    assert!(
        read_p99_us(&long) > 2 * read_p99_us(&short),
        "a longer queue makes the reads that succeed wait longer"
    );
    for s in [&short, &long] {
        let utilisation = product(s).utilisation.unwrap();
        assert!(utilisation > 0.9 && utilisation <= 1.0, "{utilisation}");
        // Delivered, not offered: at most what 20 calls/s allow, 20 / 3 reads/s (renames also
        // take workers), well below the 10 offered.
        let delivered = s.by_operation["read order"].throughput_per_s;
        assert!(delivered < 7.0, "{delivered}");
    }
}

#[test]
fn at_low_load_capacity_adds_only_the_service_time() {
    let knobs = [
        ("read_rate_per_s", 1.0),
        ("product_workers", 4.0),
        ("product_service_ms", 5.0),
    ];
    let with = summarize(&quiet(8, 30.0, &knobs));
    let without = summarize(&quiet(8, 30.0, &[("read_rate_per_s", 1.0)]));
    assert_eq!(product(&with).shed, 0);
    assert_eq!(product(&with).waiting_max, 0);
    assert!(product(&with).utilisation.unwrap() < 0.05);
    assert_eq!(with.by_operation["read order"].failed, 0);
    assert_eq!(without.by_operation["read order"].failed, 0);
    // Three calls of 2.5–7.5 ms each.
    let added = read_p99_us(&with) as i64 - read_p99_us(&without) as i64;
    assert!((0..=30_000).contains(&added), "{added} µs");
}

#[test]
fn a_slow_fault_slows_processing_so_work_queues_up() {
    let knobs = [
        ("read_rate_per_s", 6.0),
        ("product_workers", 2.0),
        ("product_service_ms", 40.0),
        ("product_queue_max", 100.0),
        ("call_timeout_ms", 5_000.0),
        ("pool_size", 64.0),
        ("product_down_for_s", 0.0),
    ];
    let calm = summarize(&run(
        11,
        20.0,
        &[&knobs[..], &[("product_slow_for_s", 0.0)]].concat(),
        &[],
    ));
    let slowed = summarize(&run(
        11,
        20.0,
        &[
            &knobs[..],
            &[
                ("product_slow_factor", 4.0),
                ("product_slow_at_s", 5.0),
                ("product_slow_for_s", 5.0),
            ],
        ]
        .concat(),
        &[],
    ));
    println!("calm {:?}\nslowed {:?}", product(&calm), product(&slowed));
    assert!(product(&calm).waiting_max <= 3, "{:?}", product(&calm));
    assert!(
        product(&slowed).waiting_max >= 10,
        "4× slower work (18.5 calls/s offered, 12.5 possible) queues up: {:?}",
        product(&slowed)
    );
    assert!(product(&slowed).busy_mean > product(&calm).busy_mean);
}

/// The summary's numbers recomputed from the events, as `docs/METRICS.md` defines them.
fn by_definition(trace: &Trace, service: &str) -> CapacitySummary {
    let id = trace
        .header
        .services
        .iter()
        .position(|s| s.name == service)
        .unwrap() as u16;
    let end = trace.events.last().map_or(Micros::ZERO, |e| e.at);
    let mut expected = CapacitySummary::default();
    let (mut busy, mut since, mut integral) = (0u64, Micros::ZERO, 0u64);
    for event in &trace.events {
        let mut set = |now: u64, at: Micros| {
            integral += busy * (at.0 - since.0);
            busy = now;
            since = at;
        };
        match &event.event {
            Event::ServiceLoad {
                service,
                workers,
                busy: b,
                waiting,
            } if service.0 == id => {
                set(*b as u64, event.at);
                expected.workers = *workers;
                expected.busy_max = expected.busy_max.max(*b);
                expected.waiting_max = expected.waiting_max.max(*waiting);
            }
            Event::ServiceDown { service } if service.0 == id => set(0, event.at),
            Event::Sent { from, label, .. }
                if from.0 == id && label.starts_with(OVERLOADED_LABEL_PREFIX) =>
            {
                expected.shed += 1
            }
            _ => {}
        }
    }
    integral += busy * (end.0 - since.0);
    expected.busy_mean = if end.0 == 0 {
        0.0
    } else {
        integral as f64 / end.0 as f64
    };
    expected.utilisation =
        (expected.workers > 0).then(|| expected.busy_mean / expected.workers as f64);
    expected
}

#[test]
fn the_summary_matches_its_definition_cut_short_and_across_a_crash_while_busy() {
    // Cut at 7.3 s with requests in work and waiting; Product crashes at 3 s while busy.
    let knobs = [OVERLOADED, &[("product_queue_max", 20.0)]].concat();
    let trace = run(13, 7.3, &knobs, &["crash:Product@3+1"]);
    let summary = summarize(&trace);
    let expected = by_definition(&trace, "Product");
    let got = product(&summary);
    assert_eq!(got.workers, expected.workers);
    assert_eq!(got.busy_max, expected.busy_max);
    assert_eq!(got.waiting_max, expected.waiting_max);
    assert_eq!(got.shed, expected.shed);
    assert!((got.busy_mean - expected.busy_mean).abs() < 1e-9);
    assert!((got.utilisation.unwrap() - expected.utilisation.unwrap()).abs() < 1e-9);
    assert!(expected.shed > 0 && expected.waiting_max > 0);

    // The crash lost the work in progress and the queue: the narration says how much, the
    // load drops to nothing, and the reads waiting on it fail.
    let crash_at = Micros::from_secs(3);
    let narration = trace.events.iter().find_map(|e| match &e.event {
        Event::Narration { text } if e.at == crash_at && text.contains("request(s) in work") => {
            Some(text.clone())
        }
        _ => None,
    });
    assert!(narration.is_some(), "the crash tells what it lost");
    let last_load_before_up = trace
        .events
        .iter()
        .filter(|e| e.at >= crash_at && e.at < Micros::from_secs(4))
        .find(|e| matches!(e.event, Event::ServiceLoad { .. }));
    assert!(
        last_load_before_up.is_none(),
        "nothing works while Product is down"
    );
    assert!(summary.by_operation["read order"].failed > 0);

    // The run ended with work in progress, counted up to its end.
    let mut state = shared::fold::WorldState::new(&trace.header);
    for event in &trace.events {
        state.apply(event);
    }
    let product_id = shared::protocol::ServiceId(2);
    let now = state.metrics.loads.now(product_id).unwrap();
    assert!(now.busy > 0, "cut short with work in progress: {now:?}");
}

#[test]
fn an_empty_run_has_no_load() {
    let trace = quiet(
        2,
        5.0,
        &[
            ("read_rate_per_s", 0.0),
            ("rename_rate_per_s", 0.0),
            ("product_workers", 2.0),
            ("product_service_ms", 50.0),
        ],
    );
    let summary = summarize(&trace);
    assert_eq!(summary.capacity, SlotMap::new());
}

#[test]
fn the_hybrids_driver_takes_a_capacity_too() {
    let hybrid = |knobs: &[(&str, f64)]| {
        let mut all = vec![("driver_down_for_s", 0.0), ("cache_ttl_ms", 0.0)];
        all.extend_from_slice(knobs);
        println!("hybrid, seed 4, knobs {all:?}");
        simulate(&RunRequest {
            scenario: "hybrid".into(),
            seed: 4,
            until_s: 20.0,
            knobs: all.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: vec![],
        })
        .unwrap()
    };
    let plain = hybrid(&[]);
    let defaults = hybrid(&[("driver_workers", 0.0), ("driver_service_ms", 0.0)]);
    assert_eq!(plain.hash_hex(), defaults.hash_hex());
    // Without a cache every read calls Driver: 30 reads/s offered to 1 worker of 100 ms.
    let loaded = summarize(&hybrid(&[
        ("read_rate_per_s", 30.0),
        ("driver_workers", 1.0),
        ("driver_service_ms", 100.0),
        ("driver_queue_max", 5.0),
    ]));
    let driver = &loaded.capacity["Driver"];
    println!("{driver:?}");
    assert!(driver.shed > 0 && driver.waiting_max == 5, "{driver:?}");
    assert!(driver.utilisation.unwrap() > 0.9, "{driver:?}");
}
