//! What each panel shows at a time, computed from the folded world state: plain data with
//! equality, so the page redraws a panel only when what it shows has changed.

use crate::format;
use shared::float_text::fixed;
use shared::fold::WorldState;
use shared::metrics::{LoadNow, OpStats};
use shared::protocol::{CircuitState, ServiceId, ServiceRole, TraceHeader};
use shared::services::{PREPARED_NAMES_TABLE, PREPARED_PREFIX, is_read_op};
use shared::time::Micros;

/// A service box on the map.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    /// Its id.
    pub id: ServiceId,
    /// Its name.
    pub name: String,
    /// `client`, `service` or `broker`.
    pub role: &'static str,
    /// Whether it is running.
    pub up: bool,
    /// Messages waiting in its queues (brokers only).
    pub queued: u32,
    /// Each of its queues with the messages waiting in it, by queue name (brokers only).
    pub queues: Vec<(String, u32)>,
    /// Rows it holds prepared and undecided under two-phase commit: in doubt, locked.
    pub in_doubt: u32,
    /// Its workers, busy workers and waiting requests, for a service with a capacity.
    pub load: Option<LoadNow>,
}

impl ServiceView {
    /// What a screen reader says for the box: `Order service, up`, or `Broker, up, 3 queued`
    /// when the name already says the role.
    pub fn aria_label(&self) -> String {
        let state = if self.up { "up" } else { "down" };
        let mut label = if self.name.eq_ignore_ascii_case(self.role) {
            format!("{}, {state}", self.name)
        } else {
            format!("{} {}, {state}", self.name, self.role)
        };
        if let Some(badge) = self.badge() {
            label.push_str(", ");
            label.push_str(&badge);
        }
        label
    }

    /// The badge on the box: a broker's waiting messages, or a participant's rows in doubt
    /// (`2 in doubt`).
    pub fn badge(&self) -> Option<String> {
        self.queue_badge()
            .or_else(|| (self.in_doubt > 0).then(|| format!("{} in doubt", self.in_doubt)))
            .or_else(|| self.load_badge())
    }

    /// The badge on a running service with a capacity: busy workers of all, and the requests
    /// waiting when any do, such as `4/4 busy · 10 waiting` (`3 busy` with unlimited workers).
    pub fn load_badge(&self) -> Option<String> {
        let load = self.load.filter(|_| self.up)?;
        let busy = if load.workers == 0 {
            format!("{} busy", load.busy)
        } else {
            format!("{}/{} busy", load.busy, load.workers)
        };
        Some(if load.waiting > 0 {
            format!("{busy} · {} waiting", load.waiting)
        } else {
            busy
        })
    }

    /// True when requests wait for one of its workers: the service is saturated.
    pub fn saturated(&self) -> bool {
        self.up && self.load.is_some_and(|load| load.waiting > 0)
    }

    /// The badge on a broker with messages waiting: `3 queued` for a single queue; per queue,
    /// such as `shipping 12 · inventory 1`, when it holds several, since each subscriber has
    /// its own.
    pub fn queue_badge(&self) -> Option<String> {
        if self.queued == 0 {
            return None;
        }
        if self.queues.len() <= 1 {
            return Some(format!("{} queued", self.queued));
        }
        let waiting: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, depth)| *depth > 0)
            .map(|(queue, depth)| format!("{queue} {depth}"))
            .collect();
        Some(waiting.join(" · "))
    }
}

/// Every service's box at `state`.
pub fn services(header: &TraceHeader, state: &WorldState) -> Vec<ServiceView> {
    header
        .services
        .iter()
        .map(|info| ServiceView {
            id: info.id,
            name: info.name.clone(),
            role: match info.role {
                ServiceRole::Client => "client",
                ServiceRole::Service => "service",
                ServiceRole::Broker => "broker",
                ServiceRole::Coordinator => "coordinator",
            },
            up: state
                .services_up
                .get(info.id.0 as usize)
                .copied()
                .unwrap_or(false),
            queued: state
                .queue_depths
                .get(&info.id)
                .map_or(0, |queues| queues.values().sum()),
            queues: state
                .queue_depths
                .get(&info.id)
                .into_iter()
                .flatten()
                .map(|(queue, depth)| (queue.clone(), *depth))
                .collect(),
            in_doubt: state
                .tables
                .get(info.id.0 as usize)
                .and_then(|tables| tables.get(PREPARED_NAMES_TABLE))
                .map_or(0, |rows| {
                    rows.values()
                        .filter(|row| row.value.starts_with(PREPARED_PREFIX))
                        .count() as u32
                }),
            load: state.metrics.loads.now(info.id),
        })
        .collect()
}

/// Each link's circuit breaker that is not closed, as `(caller, callee, state)` with the
/// state's name (`open`, `half-open`): the map draws it on the link. A breaker that never opened,
/// or closed again, is not listed.
pub fn open_circuits(state: &WorldState) -> Vec<(ServiceId, ServiceId, &'static str)> {
    state
        .circuits
        .iter()
        .flat_map(|(caller, callees)| {
            callees
                .iter()
                .map(move |(callee, circuit)| (caller, callee, circuit))
        })
        .filter(|(_, _, circuit)| **circuit != CircuitState::Closed)
        .map(|(caller, callee, circuit)| (*caller, *callee, circuit.name()))
        .collect()
}

/// One row of a table panel.
#[derive(Clone, Debug, PartialEq)]
pub struct RowLine {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The version.
    pub version: u64,
    /// When it was last written.
    pub written_at: Micros,
    /// True when it copies a source that holds a newer version.
    pub stale: bool,
    /// True for a rename held prepared under two-phase commit, not yet decided: in doubt.
    pub in_doubt: bool,
    /// For a stale row, the source's newer value and version.
    pub source_now: Option<(String, u64)>,
    /// Written a moment ago (not at the start of the run): highlight it.
    pub fresh: bool,
}

impl RowLine {
    /// What identifies this row's drawing: a new drawing, and a new highlight, when it changes.
    pub fn render_key(&self) -> (String, u64, String, bool) {
        (
            self.key.clone(),
            self.version,
            self.value.clone(),
            self.stale,
        )
    }
}

/// One table of one service.
#[derive(Clone, Debug, PartialEq)]
pub struct TableView {
    /// The service holding it.
    pub service: ServiceId,
    /// That service's name.
    pub service_name: String,
    /// The table's name.
    pub table: String,
    /// For a copy, what it copies, as `Product.products`.
    pub copy_of: Option<String>,
    /// Its rows, by key (numeric keys in numeric order).
    pub rows: Vec<RowLine>,
}

/// Every table of every service at `now`. Rows written within `fresh_window` before `now` are
/// marked fresh.
pub fn tables(
    header: &TraceHeader,
    state: &WorldState,
    now: Micros,
    fresh_window: Micros,
) -> Vec<TableView> {
    let mut views = Vec::new();
    for (index, service_tables) in state.tables.iter().enumerate() {
        let service = ServiceId(index as u16);
        let service_name = header
            .services
            .get(index)
            .map_or_else(|| format!("#{index}"), |info| info.name.clone());
        for (table, rows) in service_tables {
            let copy = state.copy_source(service, table);
            let copy_of = copy.map(|c| {
                let source = header
                    .services
                    .get(c.source_service.0 as usize)
                    .map_or("?", |info| info.name.as_str());
                format!("{source}.{}", c.source_table)
            });
            let mut lines: Vec<RowLine> = rows
                .iter()
                .map(|(key, row)| {
                    let stale = state.is_stale(service, table, key);
                    let source_now = copy.filter(|_| stale).and_then(|c| {
                        let source_key = shared::protocol::CopyDecl::source_key(key);
                        let source = state.row(c.source_service, &c.source_table, source_key)?;
                        Some((source.value.clone(), source.version))
                    });
                    RowLine {
                        key: key.clone(),
                        value: row.value.clone(),
                        version: row.version,
                        written_at: row.written_at,
                        stale,
                        in_doubt: table == PREPARED_NAMES_TABLE
                            && row.value.starts_with(PREPARED_PREFIX),
                        source_now,
                        fresh: row.written_at > Micros::ZERO
                            && now >= row.written_at
                            && now - row.written_at < fresh_window,
                    }
                })
                .collect();
            shared::ordered::sort_by(&mut lines, |a, b| key_order(&a.key, &b.key));
            views.push(TableView {
                service,
                service_name: service_name.clone(),
                table: table.clone(),
                copy_of,
                rows: lines,
            });
        }
    }
    views
}

/// Numeric keys in numeric order, before any other keys in text order.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// The numbers of one kind of operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpLine {
    /// Its name, such as `read order`.
    pub name: String,
    /// The stem of its metric ids, its first word: `read` gives `#metric-read-p50`.
    pub id_stem: String,
    /// How many succeeded.
    pub ok: u64,
    /// How many failed.
    pub failed: u64,
    /// Median latency of the successful ones.
    pub p50: String,
    /// 95th-percentile latency of the successful ones.
    pub p95: String,
    /// 99th-percentile latency of the successful ones.
    pub p99: String,
}

/// The metrics panel.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsView {
    /// Per kind of operation, reads first.
    pub ops: Vec<OpLine>,
    /// Successful reads that returned an older version than one already confirmed.
    pub stale_reads: u64,
    /// Whether any read has begun: stale reads mean nothing in a run without reads.
    pub reads_seen: bool,
    /// Stale reads as a share of successful reads, in words.
    pub stale_reads_share: String,
    /// The replication lag of the copy row furthest behind now.
    pub staleness_now: String,
    /// The largest replication lag of any copy row so far.
    pub staleness_max: String,
    /// The time-weighted mean replication lag of a copy row so far.
    pub staleness_mean: String,
    /// Copy rows stale now.
    pub stale_rows: usize,
    /// The largest served lag of a read so far (`docs/METRICS.md`, "Served lag").
    pub served_lag_max: String,
    /// The mean served lag of reads so far.
    pub served_lag_mean: String,
    /// Copy writes that replaced a newer version with an older one.
    pub copy_regressions: u64,
    /// Reads that returned a version a coordinator rolled back.
    pub aborted_reads: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages dropped.
    pub messages_dropped: u64,
    /// Operations waiting for an answer: each holds a connection.
    pub ops_running: usize,
    /// Messages per finished operation, background traffic included, in words.
    pub messages_per_op: String,
    /// Bytes held in copies of other services' data.
    pub duplicated_bytes: u64,
    /// The deepest any queue has been.
    pub queue_depth_max: u32,
    /// Second copies made by the network.
    pub messages_duplicated: u64,
    /// Rollback messages sent, retries included (the gateway pattern).
    pub rollbacks_sent: u64,
    /// Updates a coordinator found half done after a crash.
    pub partial_updates_flagged: u64,
    /// Under two-phase commit, the longest a participant's row has stayed prepared (in doubt,
    /// locked) so far, rows still in doubt counted up to now.
    pub in_doubt_max: String,
    /// Under two-phase commit, participants' rows in doubt now.
    pub rows_in_doubt: u64,
    /// Copy rows whose name or version differs from their source now.
    pub inconsistent_rows: usize,
    /// Calls between services per read, with the share of reads answered without one; `None`
    /// while no read has made a call (reads served from a local copy never do).
    pub calls_per_read: Option<CallsLine>,
    /// Stale reads per source table, such as `driver_details 3 · drivers 1`, when reads draw on
    /// more than one table; empty otherwise.
    pub stale_reads_by_table: String,
}

/// Synchronous calls made for reads: request/response's fan-out, or what a cache spares.
#[derive(Clone, Debug, PartialEq)]
pub struct CallsLine {
    /// Calls per read, such as `0.29`.
    pub per_read: String,
    /// Reads that arrived and needed no call, such as `71.0 %`.
    pub answered_without_call: String,
}

/// The calls of every read operation, summed.
fn read_calls(state: &WorldState) -> Option<CallsLine> {
    let (mut started, mut arrived, mut calls) = (0, 0, 0);
    for (_, op) in state
        .metrics
        .calls
        .by_op
        .iter()
        .filter(|(name, _)| is_read_op(name))
    {
        (started, arrived, calls) = (started + op.started, arrived + op.arrived, calls + op.calls);
    }
    if calls == 0 {
        return None;
    }
    let total = shared::call_metrics::OpCalls {
        started,
        arrived,
        calls,
    };
    Some(CallsLine {
        per_read: fixed(total.calls_per_op(), 2).to_string(),
        answered_without_call: format!("{} %", fixed(total.cache_hit_ratio() * 100.0, 1)),
    })
}

/// The metrics at `now`.
pub fn metrics(state: &WorldState, now: Micros) -> MetricsView {
    let m = &state.metrics;
    // Reads first, each group in name order (the map's own): a partition, not a sort.
    let (mut names, others): (Vec<&str>, Vec<&str>) = m
        .ops
        .keys()
        .map(String::as_str)
        .partition(|name| is_read_op(name));
    names.extend(others);
    let no_stats = OpStats::default();
    let ops = names
        .into_iter()
        .map(|name| {
            let stats = m.ops.get(name).unwrap_or(&no_stats);
            OpLine {
                name: name.to_string(),
                id_stem: name.split_whitespace().next().unwrap_or(name).to_string(),
                ok: stats.ok,
                failed: stats.failed,
                p50: latency(stats.ok, stats.percentile(50)),
                p95: latency(stats.ok, stats.percentile(95)),
                p99: latency(stats.ok, stats.percentile(99)),
            }
        })
        .collect();
    let reads_ok: u64 = m
        .ops
        .iter()
        .filter(|(name, _)| is_read_op(name))
        .map(|(_, stats)| stats.ok)
        .sum();
    let stale_tables = &m.stale_reads_by_table;
    let open = m.staleness.open_max(now);
    MetricsView {
        ops,
        stale_reads: m.stale_reads,
        reads_seen: m.ops.keys().any(|name| is_read_op(name)),
        stale_reads_share: if reads_ok == 0 {
            "no successful reads yet".to_string()
        } else {
            format!(
                "{} of successful reads",
                format::percent(m.stale_reads, reads_ok)
            )
        },
        staleness_now: format::duration(open),
        staleness_max: format::duration(m.staleness.max(now)),
        staleness_mean: format::duration(m.staleness.mean(now)),
        stale_rows: m.staleness.open_count(),
        served_lag_max: latency(reads_ok, m.served_lag.max()),
        served_lag_mean: latency(reads_ok, m.served_lag.mean()),
        copy_regressions: m.copy_regressions,
        aborted_reads: m.coordination.aborted_reads.count(),
        messages_sent: m.messages_sent,
        messages_dropped: m.messages_dropped(),
        ops_running: m.ops_running(),
        messages_per_op: match m.ops_finished() {
            0 => "—".to_string(),
            n => fixed(m.messages_sent as f64 / n as f64, 1).to_string(),
        },
        duplicated_bytes: state.duplicated_bytes(),
        queue_depth_max: m.deepest_queue(),
        messages_duplicated: m.messages_duplicated,
        rollbacks_sent: m.coordination.rollbacks_sent,
        partial_updates_flagged: m.coordination.partial_updates_flagged.len() as u64,
        in_doubt_max: format::duration(m.coordination.in_doubt.max(now)),
        rows_in_doubt: m.coordination.in_doubt.rows(),
        inconsistent_rows: state.inconsistent_rows().len(),
        calls_per_read: read_calls(state),
        stale_reads_by_table: if stale_tables.len() > 1 {
            stale_tables
                .iter()
                .map(|(table, count)| format!("{table} {count}"))
                .collect::<Vec<_>>()
                .join(" · ")
        } else {
            String::new()
        },
    }
}

/// One service with a capacity in the numbers: how busy it has been, its longest queue, what
/// it shed (`docs/METRICS.md`, "Capacity").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CapacityLine {
    /// The service's name.
    pub name: String,
    /// The stem of its metric ids: `product` gives `#metric-product-utilisation`.
    pub id_stem: String,
    /// Its utilisation so far, such as `97 %`, or its mean busy workers with unlimited workers
    /// (`1.9 busy`).
    pub utilisation: String,
    /// Its longest queue and the requests it shed, such as `longest queue 10 · 148 shed`.
    pub queue_and_shed: String,
}

/// Each service with a capacity, up to `now`.
pub fn capacity(header: &TraceHeader, state: &WorldState, now: Micros) -> Vec<CapacityLine> {
    state
        .metrics
        .loads
        .summaries(header, now)
        .into_iter()
        .map(|(name, summary)| CapacityLine {
            id_stem: name.to_ascii_lowercase(),
            utilisation: match summary.utilisation {
                Some(share) => format!("{} %", fixed(share * 100.0, 0)),
                None => format!("{} busy", fixed(summary.busy_mean, 1)),
            },
            queue_and_shed: format!(
                "longest queue {} · {} shed",
                summary.waiting_max, summary.shed
            ),
            name,
        })
        .collect()
}

/// One broker queue in the delivery numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueLine {
    /// The queue, named after its subscriber.
    pub name: String,
    /// Messages waiting or unacknowledged now.
    pub waiting: u32,
    /// The most that ever waited so far.
    pub deepest: u32,
}

/// One subscriber in the delivery numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerLine {
    /// The service's name.
    pub name: String,
    /// The stem of its metric ids: `shipping` gives `#metric-shipping-duplicates`.
    pub id_stem: String,
    /// Distinct events applied.
    pub applied: u64,
    /// Duplicates delivered, and what became of them: `3 applied` again, or `3 dropped`.
    pub duplicates: String,
    /// Mean time from publication to application.
    pub lag_mean: String,
    /// Longest time from publication to application.
    pub lag_max: String,
}

/// How events travel through brokers: each queue, and what each subscriber did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryView {
    /// Every queue seen so far.
    pub queues: Vec<QueueLine>,
    /// Every subscriber that handled an event so far.
    pub consumers: Vec<ConsumerLine>,
}

/// The delivery numbers at `state`.
pub fn delivery(header: &TraceHeader, state: &WorldState) -> DeliveryView {
    let stats = &state.metrics.delivery;
    let is_broker = |service: ServiceId| {
        header
            .services
            .get(service.0 as usize)
            .is_some_and(|s| s.role == ServiceRole::Broker)
    };
    // Brokers' queues only: a service's own waiting line (Order's connection pool) is not one.
    let queues = state
        .queue_depths
        .iter()
        .filter(|(service, _)| is_broker(**service))
        .flat_map(|(broker, queues)| queues.iter().map(move |queue| (broker, queue)))
        .map(|(broker, (queue, waiting))| QueueLine {
            name: queue.clone(),
            waiting: *waiting,
            deepest: state
                .metrics
                .queue_depth_max
                .get(broker)
                .and_then(|maxima| maxima.get(queue.as_str()))
                .copied()
                .unwrap_or(*waiting),
        })
        .collect();
    let consumers = stats
        .consumers
        .iter()
        .map(|(service, consumer)| {
            let name = header
                .services
                .get(service.0 as usize)
                .map_or_else(|| format!("service {}", service.0), |s| s.name.clone());
            let duplicates = match (consumer.duplicates_applied, consumer.duplicates_dropped) {
                (0, 0) => "none".to_string(),
                (applied, 0) => format!("{applied} applied"),
                (0, dropped) => format!("{dropped} dropped"),
                (applied, dropped) => format!("{applied} applied, {dropped} dropped"),
            };
            let applied = consumer.events_applied;
            ConsumerLine {
                id_stem: name.to_ascii_lowercase(),
                name,
                applied,
                duplicates,
                lag_mean: latency(applied, consumer.delivery_lag_mean()),
                lag_max: latency(applied, consumer.delivery_lag_max()),
            }
        })
        .collect();
    DeliveryView { queues, consumers }
}

/// A latency, or a dash when nothing succeeded yet.
fn latency(ok: u64, value: Micros) -> String {
    if ok == 0 {
        "—".to_string()
    } else {
        format::duration(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_index::TraceIndex;
    use shared::protocol::RunRequest;

    fn run(scenario: &str, until_s: f64) -> TraceIndex {
        run_with(scenario, until_s, &[])
    }

    fn run_with(scenario: &str, until_s: f64, knobs: &[(&str, f64)]) -> TraceIndex {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 1,
            until_s,
            knobs: knobs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        TraceIndex::complete(trace.header, trace.events)
    }

    #[test]
    fn an_open_breaker_is_drawn_on_its_link_until_it_closes() {
        // Product is down from 10 s to 18 s; the breaker opens soon after 10 s.
        let knobs = [("product_slow_for_s", 0.0), ("breaker", 1.0)];
        let mut index = run_with("request-response", 30.0, &knobs);
        let (order, product) = (ServiceId(1), ServiceId(2));
        assert_eq!(open_circuits(index.state_at(Micros::from_secs(9))), vec![]);
        let during = open_circuits(index.state_at(Micros::from_secs(15)));
        assert_eq!(during.len(), 1, "{during:?}");
        assert_eq!((during[0].0, during[0].1), (order, product));
        assert!(["open", "half-open"].contains(&during[0].2), "{during:?}");
        assert_eq!(open_circuits(index.state_at(Micros::from_secs(25))), vec![]);
    }

    #[test]
    fn keys_sort_numerically() {
        let mut keys = vec!["10", "2", "b", "1", "a"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, vec!["1", "2", "10", "a", "b"]);
    }

    #[test]
    fn services_show_outages_and_aria_labels() {
        let mut index = run("request-response", 14.0);
        let header = index.header().clone();
        let down = services(&header, index.state_at(Micros::from_secs(12)));
        let labels: Vec<String> = down.iter().map(ServiceView::aria_label).collect();
        assert_eq!(
            labels,
            vec!["Client, up", "Order service, up", "Product service, down"]
        );
        let up = services(&header, index.state_at(Micros::from_secs(5)));
        assert!(up.iter().all(|s| s.up));
    }

    #[test]
    fn request_response_reads_fail_while_product_is_down() {
        let mut index = run("request-response", 20.0);
        // Product turns slow at 3 s (the connection pool runs dry) and goes down at 10 s.
        let before = metrics(index.state_at(Micros::from_secs(3)), Micros::from_secs(3));
        let after = metrics(index.state_at(Micros::from_secs(20)), Micros::from_secs(20));
        let read = |m: &MetricsView| m.ops.iter().find(|o| o.id_stem == "read").unwrap().clone();
        assert_eq!(read(&before).failed, 0);
        assert!(read(&after).failed > 0, "{after:?}");
        assert!(read(&after).p50.ends_with(" ms"), "{after:?}");
        assert_ne!(read(&after).p95, "—", "{after:?}");
        let per_op: f64 = after.messages_per_op.parse().unwrap();
        assert!(
            per_op > 4.0,
            "a read calls Product once per product: {per_op}"
        );
        assert!(
            after.queue_depth_max >= 1,
            "the slow Product ran the pool dry"
        );
        assert_eq!(after.duplicated_bytes, 0, "request/response copies nothing");
        assert_eq!(after.stale_reads, 0);
        assert_eq!(after.stale_reads_share, "0.0 % of successful reads");
    }

    #[test]
    fn a_coordinator_crash_under_two_phase_commit_shows_rows_in_doubt_on_the_map_and_in_the_tables()
    {
        // The coordinator crashes after deciding its 3rd rename and stays down 2 s.
        let knobs = [
            ("protocol", 1.0),
            ("coordinator_crash_at_rename", 3.0),
            ("product_failure_pct", 0.0),
            ("order_failure_pct", 0.0),
        ];
        let mut index = run_with("gateway", 30.0, &knobs);
        let header = index.header().clone();
        let crashed_at = index
            .events()
            .iter()
            .find(|e| matches!(e.event, shared::protocol::Event::ServiceDown { .. }))
            .expect("the coordinator crashes")
            .at;
        let during = crashed_at + Micros::from_secs(1);
        let boxes = services(&header, index.state_at(during));
        let badges: Vec<Option<String>> = boxes.iter().map(ServiceView::badge).collect();
        let one = Some("1 in doubt".to_string());
        assert_eq!(
            badges,
            vec![None, None, one.clone(), one],
            "Client, Coordinator, Order, Product"
        );
        assert_eq!(boxes[3].aria_label(), "Product service, up, 1 in doubt");
        let numbers = metrics(index.state_at(during), during);
        assert_eq!(numbers.rows_in_doubt, 2, "{numbers:?}");
        assert_eq!(
            numbers.in_doubt_max, "1.05 s",
            "one second into the outage, and a hop"
        );
        let views = tables(&header, index.state_at(during), during, Micros::ZERO);
        let held: Vec<&RowLine> = views
            .iter()
            .filter(|view| view.table == "prepared_names")
            .flat_map(|view| view.rows.iter().filter(|row| row.in_doubt))
            .collect();
        assert_eq!(held.len(), 2, "Order's row and Product's row");
        assert!(held.iter().all(|row| row.value.starts_with("prepared at ")));
        let after = crashed_at + Micros::from_secs(3);
        let boxes = services(&header, index.state_at(after));
        assert!(
            boxes.iter().all(|b| b.in_doubt == 0),
            "the restarted coordinator settled them"
        );
    }

    #[test]
    fn the_broker_badge_names_each_queue_when_it_holds_several() {
        let mut index = run("event-driven", 30.0);
        let header = index.header().clone();
        let during = services(&header, index.state_at(Micros::from_secs(14)))[2].clone();
        let badge = during
            .queue_badge()
            .expect("Shipping is down: its events wait");
        assert!(badge.starts_with("shipping "), "{badge}");
        assert_eq!(during.aria_label(), format!("Broker, up, {badge}"));
        let single = ServiceView {
            queues: vec![("order".into(), 3)],
            queued: 3,
            ..during
        };
        assert_eq!(single.queue_badge().as_deref(), Some("3 queued"));
    }

    #[test]
    fn a_saturated_service_shows_its_busy_workers_and_waiting_requests() {
        let mut index = run_with(
            "request-response",
            10.0,
            &[
                ("read_rate_per_s", 10.0),
                ("product_workers", 2.0),
                ("product_service_ms", 100.0),
                ("product_down_for_s", 0.0),
            ],
        );
        let header = index.header().clone();
        let saturated = (1..100)
            .map(|tenth| services(&header, index.state_at(Micros(tenth * 100_000)))[2].clone())
            .find(|product| product.saturated())
            .expect("30 calls/s offered to 20/s of work: requests wait");
        let badge = saturated.badge().unwrap();
        assert!(badge.starts_with("2/2 busy · "), "{badge}");
        assert!(badge.ends_with(" waiting"), "{badge}");
        assert_eq!(
            saturated.aria_label(),
            format!("Product service, up, {badge}")
        );
        // Order has no capacity of its own: no load (its badge, if any, is its pool's queue).
        let order = services(&header, index.state_at(Micros::from_secs(5)))[1].clone();
        assert_eq!((order.load, order.load_badge()), (None, None));
        // The numbers say how busy it has been, how long its queue got and what it shed.
        let end = Micros::from_secs(10);
        let lines = capacity(&header, index.state_at(end), end);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            (lines[0].name.as_str(), lines[0].id_stem.as_str()),
            ("Product", "product")
        );
        assert!(lines[0].utilisation.ends_with(" %"), "{lines:?}");
        // Order's pool of 2 connections lets at most 2 calls wait on Product's 2 workers.
        assert_eq!(lines[0].queue_and_shed, "longest queue 1 · 0 shed");
        // Down, a service shows no load.
        let down = ServiceView {
            up: false,
            ..saturated
        };
        assert_eq!(down.load_badge(), None);
        assert!(!down.saturated());
    }

    #[test]
    fn delivery_numbers_show_queues_duplicates_and_lag() {
        // SQS's visibility timeout redelivers the slow consumer's events; RabbitMQ's rule (the
        // default) would not.
        let mut index = run_with("event-driven", 30.0, &[("redelivery", 1.0)]);
        let header = index.header().clone();
        let end = Micros::from_secs(30);
        let view = delivery(&header, index.state_at(end));
        let names: Vec<&str> = view.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, vec!["inventory", "shipping"]);
        let shipping_queue = &view.queues[1];
        assert!(shipping_queue.deepest >= 10, "{shipping_queue:?}");
        let consumers: Vec<&str> = view.consumers.iter().map(|c| c.id_stem.as_str()).collect();
        assert_eq!(consumers, vec!["inventory", "shipping"]);
        let shipping = &view.consumers[1];
        assert!(shipping.applied >= 50, "{shipping:?}");
        assert!(shipping.duplicates.ends_with(" applied"), "{shipping:?}");
        assert!(
            shipping.lag_max.ends_with(" s"),
            "an outage of seconds: {shipping:?}"
        );
        let start = delivery(&header, index.state_at(Micros::ZERO));
        assert!(start.consumers.is_empty() && start.queues.is_empty());
        let mut rabbitmq = run("event-driven", 30.0);
        let view = delivery(&header, rabbitmq.state_at(end));
        assert_eq!(view.consumers[1].duplicates, "none", "{view:?}");
    }

    #[test]
    fn hybrid_shows_calls_per_read_and_stale_reads_per_table() {
        let mut index = run("hybrid", 30.0);
        let view = metrics(index.state_at(Micros::from_secs(30)), Micros::from_secs(30));
        assert_eq!(view.ops[0].name, "read ride", "reads come first");
        assert!(view.ops.iter().all(|op| op.name != "read order"));
        let calls = view
            .calls_per_read
            .clone()
            .expect("Ride calls Driver on a cache miss");
        let per_read: f64 = calls.per_read.parse().unwrap();
        assert!(per_read > 0.0 && per_read < 1.0, "{calls:?}");
        assert!(calls.answered_without_call.ends_with(" %"), "{calls:?}");
        assert!(
            view.stale_reads_by_table.contains("driver_details"),
            "{view:?}"
        );
        let mut ec = run("eventual-consistency", 10.0);
        let local = metrics(ec.state_at(Micros::from_secs(10)), Micros::from_secs(10));
        assert_eq!(
            local.calls_per_read, None,
            "reads from a local copy make no call"
        );
    }

    #[test]
    fn operations_appear_as_they_start_reads_first() {
        let mut index = run("request-response", 10.0);
        let view = metrics(index.state_at(Micros::ZERO), Micros::ZERO);
        assert!(view.ops.is_empty());
        assert_eq!(view.stale_reads_share, "no successful reads yet");
        let view = metrics(index.state_at(Micros::from_secs(10)), Micros::from_secs(10));
        let names: Vec<&str> = view.ops.iter().map(|op| op.name.as_str()).collect();
        assert_eq!(names, vec!["read order", "rename product"]);
    }

    #[test]
    fn eventual_consistency_shows_stale_copies_with_the_source_value() {
        let mut index = run("eventual-consistency", 30.0);
        let header = index.header().clone();
        let mut saw_stale = false;
        let mut saw_fresh = false;
        for ms in (0..30_000).step_by(50) {
            let t = Micros::from_millis(ms);
            let views = tables(&header, index.state_at(t), t, Micros::from_millis(100));
            let copy = views
                .iter()
                .find(|v| v.table == "product_names")
                .expect("Order holds a copy of product names");
            assert_eq!(copy.copy_of.as_deref(), Some("Product.products"));
            assert_eq!(copy.service_name, "Order");
            for row in &copy.rows {
                if row.stale {
                    saw_stale = true;
                    let (_, version) = row
                        .source_now
                        .clone()
                        .expect("a stale row shows the source");
                    assert!(version > row.version);
                } else {
                    assert!(row.source_now.is_none());
                }
                saw_fresh |= row.fresh;
            }
            let keys: Vec<&str> = copy.rows.iter().map(|r| r.key.as_str()).collect();
            assert_eq!(keys, vec!["1", "2", "3", "4", "5", "6", "7", "8"]);
        }
        assert!(saw_stale && saw_fresh);
        let end = Micros::from_secs(30);
        let view = metrics(index.state_at(end), end);
        assert!(view.stale_reads > 0, "{view:?}");
        assert!(view.staleness_max != "0.00 ms", "{view:?}");
        assert_eq!(view.ops.len(), 2);
        assert_eq!(view.ops[1].id_stem, "rename");
    }

    #[test]
    fn the_outbox_is_one_of_products_tables_its_rows_pending_then_sent() {
        let mut index = run_with("eventual-consistency", 30.0, &[("publish", 1.0)]);
        let header = index.header().clone();
        let (mut saw_pending, mut saw_sent) = (false, false);
        for ms in (0..30_000).step_by(10) {
            let t = Micros::from_millis(ms);
            let views = tables(&header, index.state_at(t), t, Micros::from_millis(100));
            let Some(outbox) = views.iter().find(|v| v.table == "outbox") else {
                continue;
            };
            assert_eq!(
                (outbox.service_name.as_str(), &outbox.copy_of),
                ("Product", &None)
            );
            for row in &outbox.rows {
                saw_pending |= row.value.starts_with("pending: ProductUpdated ");
                saw_sent |= row.value.starts_with("sent: ProductUpdated ") && row.version == 2;
            }
        }
        assert!(saw_pending && saw_sent);
    }

    #[test]
    fn the_gateway_counts_rollbacks_and_shows_its_partial_update_as_an_inconsistent_row() {
        // The defaults refuse 5 % of updates and crash the coordinator at rename 15 (about 15 s).
        let mut index = run("gateway", 30.0);
        let early = metrics(index.state_at(Micros::from_secs(1)), Micros::from_secs(1));
        assert_eq!(
            (early.rollbacks_sent, early.partial_updates_flagged),
            (0, 0)
        );
        let end = Micros::from_secs(30);
        let state = index.state_at(end).clone();
        let view = metrics(&state, end);
        assert!(view.rollbacks_sent > 0, "{view:?}");
        assert_eq!(view.partial_updates_flagged, 1, "{view:?}");
        assert_eq!(view.inconsistent_rows, state.inconsistent_rows().len());
        let roles: Vec<&str> = services(index.header(), &state)
            .iter()
            .map(|s| s.role)
            .collect();
        assert_eq!(roles, ["client", "coordinator", "service", "service"]);
    }
}
