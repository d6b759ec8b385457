//! The numbers that carry each lesson.

use crate::components::delivery::DeliveryNumbers;
use crate::components::{Computed, attr, key_of, keyed, reactive, show};
use crate::state::page;
use crate::view_model::{self, CapacityLine, MetricsView, OpLine};
use leptos::prelude::*;
use shared::protocol::ServiceRole;

/// The metrics panel.
#[component]
pub fn MetricsPanel() -> impl IntoView {
    let run = page().run;
    let clock = page().clock;
    let metrics = Computed::new(move |_| {
        let t = clock.now.get();
        run.at(t, |_, state| view_model::metrics(state, t))
    });
    let field = move |read: fn(&MetricsView) -> String| {
        reactive(move || metrics.with(|m| m.as_ref().map(read).unwrap_or_else(|| "—".to_string())))
    };
    // Staleness only means something where a service keeps a copy of another's data.
    let has_copies = Computed::compared(move |_| {
        run.read(|index| !index.header().copies.is_empty())
            .unwrap_or(false)
    });
    // Rollbacks and partial updates only happen where a coordinator runs updates.
    let has_coordinator = Computed::compared(move |_| {
        run.read(|index| {
            index
                .header()
                .services
                .iter()
                .any(|s| s.role == ServiceRole::Coordinator)
        })
        .unwrap_or(false)
    });
    // Rows in doubt only exist under two-phase commit (the gateway's `protocol=2pc`).
    let two_phase = Computed::compared(move |_| {
        run.read(|index| index.header().knobs.get("protocol") == Some(&1.0))
            .unwrap_or(false)
    });
    let ops = move || metrics.with(|m| m.as_ref().map(|m| m.ops.clone()).unwrap_or_default());
    // Services given a capacity (workers, a time per request, a queue): how busy each has been.
    let capacity = Computed::new(move |_| {
        let t = clock.now.get();
        run.at(t, |index, state| {
            view_model::capacity(index.header(), state, t)
        })
        .unwrap_or_default()
    });
    view! {
        <section class="metrics card" {attr("aria-labelledby", "metrics-title")}>
            <h2 id="metrics-title">"Numbers so far"</h2>
            <table class="ops">
                <thead>
                    <tr>
                        <th scope="col" title="Client operations by name, from op_started to op_finished">"operation"</th>
                        <th scope="col" class="num" title="Operations that finished with outcome ok">"ok"</th>
                        <th scope="col" class="num" title="Operations that finished refused, timed out or without a connection">"failed"</th>
                        <th scope="col" class="num" title="Median latency of the successful ones (nearest rank)">"p50"</th>
                        <th scope="col" class="num" title="95th-percentile latency of the successful ones (nearest rank)">"p95"</th>
                        <th scope="col" class="num" title="99th-percentile latency of the successful ones (nearest rank)">"p99"</th>
                    </tr>
                </thead>
                <tbody>
                    {keyed(
                        ops,
                        |op: &OpLine| op.name.clone(),
                        move |op: OpLine| view! {
                        <OpRow name=op.name.clone() stem=op.id_stem.clone() ops=metrics/>
                        }.into_inner().into_any(),
                    )}
                </tbody>
            </table>
            <dl class="stats">
                {show(move || has_copies.get() || metrics.with(|m| m.as_ref().is_some_and(|m| m.reads_seen)), move || view! {
                <div class="stat">
                    <dt title="Successful reads that returned a version older than one confirmed to a client before they began">"Stale reads"</dt>
                    <dd>
                        <span {attr("id", "metric-stale-reads")} class="big">{field(|m| m.stale_reads.to_string())}</span>
                        <span class="sub" {attr("id", "metric-stale-share")}>
                            {field(|m| m.stale_reads_share.clone())}
                        </span>
                        <span class="sub" {attr("id", "metric-stale-by-table")}>
                            {field(|m| m.stale_reads_by_table.clone())}
                        </span>
                    </dd>
                </div>
                }.into_inner().into_any())}
                {show(move || metrics.with(|m| m.as_ref().is_some_and(|m| m.reads_seen)), move || view! {
                <div class="stat">
                    <dt title="How long before a read began its source first wrote a newer version than the one it returned; zero when it missed none">"Served lag max"</dt>
                    <dd>
                        <span {attr("id", "metric-served-lag-max")} class="big">{field(|m| m.served_lag_max.clone())}</span>
                        <span class="sub">
                            "oldest source write a read missed; mean "
                            <span {attr("id", "metric-served-lag-mean")}>{field(|m| m.served_lag_mean.clone())}</span>
                        </span>
                    </dd>
                </div>
                }.into_inner().into_any())}
                {show(move || metrics.with(|m| m.as_ref().is_some_and(|m| m.calls_per_read.is_some())), move || view! {
                <div class="stat">
                    <dt title="Requests services sent to other services per read started">"Calls per read"</dt>
                    <dd>
                        <span {attr("id", "metric-calls-per-read")} class="big">
                            {field(|m| m.calls_per_read.as_ref().map(|c| c.per_read.clone()).unwrap_or_default())}
                        </span>
                        <span class="sub" {attr("id", "metric-answered-without-call")}>
                            {field(|m| m.calls_per_read.as_ref().map(|c| format!("{} of reads needed no call", c.answered_without_call)).unwrap_or_default())}
                        </span>
                    </dd>
                </div>
                }.into_inner().into_any())}
                {keyed(
                    move || capacity.get(),
                    |line: &CapacityLine| key_of(&[&line.name, &line.id_stem, &line.utilisation, &line.queue_and_shed]),
                    move |line: CapacityLine| view! {
                <div class="stat">
                    <dt {attr("title", "The share of its workers' time spent working so far; requests beyond its queue are shed (503 overloaded)")}>{format!("{} busy", line.name)}</dt>
                    <dd>
                        <span {attr("id", format!("metric-{}-utilisation", line.id_stem))} class="big">{line.utilisation.clone()}</span>
                        <span class="sub">{line.queue_and_shed.clone()}</span>
                    </dd>
                </div>
                    }.into_inner().into_any(),
                )}
                {show(move || has_copies.get(), move || view! {
                <div class="stat">
                    <dt title="Replication lag of the copy row furthest behind now: now minus when its source first wrote a version it has not applied">"Staleness now"</dt>
                    <dd>
                        <span {attr("id", "metric-staleness-now")} class="big">{field(|m| m.staleness_now.clone())}</span>
                        <span class="sub">{field(|m| match m.stale_rows {
                            1 => "1 stale copy row".to_string(),
                            n => format!("{n} stale copy rows"),
                        })}</span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="Largest replication lag of any copy row so far, lags still growing included; the mean is time-weighted over every copy row">"Max staleness"</dt>
                    <dd>
                        <span {attr("id", "metric-staleness-max")} class="big">{field(|m| m.staleness_max.clone())}</span>
                        <span class="sub">
                            "largest lag behind the source; mean "
                            <span {attr("id", "metric-staleness-mean")}>{field(|m| m.staleness_mean.clone())}</span>
                        </span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="Copy writes that replaced a newer version with an older one: events applied out of order">"Copy regressions"</dt>
                    <dd>
                        <span {attr("id", "metric-copy-regressions")} class="big">{field(|m| m.copy_regressions.to_string())}</span>
                        <span class="sub">"older versions written over newer"</span>
                    </dd>
                </div>
                }.into_inner().into_any())}
                {show(move || has_coordinator.get(), move || view! {
                <div class="stat">
                    <dt title="Rollback messages a coordinator sent, retries included">"Rollbacks"</dt>
                    <dd>
                        <span {attr("id", "metric-rollbacks")} class="big">{field(|m| m.rollbacks_sent.to_string())}</span>
                        <span class="sub">"rollback messages sent"</span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="Successful reads that returned a version a coordinator rolled back">"Aborted reads"</dt>
                    <dd>
                        <span {attr("id", "metric-aborted-reads")} class="big">{field(|m| m.aborted_reads.to_string())}</span>
                        <span class="sub">"saw a name that was rolled back"</span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="Updates a coordinator found half done after a crash, and flagged">"Partial updates"</dt>
                    <dd>
                        <span {attr("id", "metric-partial-updates")} class="big">{field(|m| m.partial_updates_flagged.to_string())}</span>
                        <span class="sub">"left by a coordinator crash, flagged"</span>
                    </dd>
                </div>
                {show(move || two_phase.get(), move || view! {
                <div class="stat">
                    <dt title="Under two-phase commit: the longest a participant's row stayed prepared — in doubt, locked — before its decision arrived, rows still in doubt counted up to now">"In doubt"</dt>
                    <dd>
                        <span {attr("id", "metric-in-doubt-max")} class="big">{field(|m| m.in_doubt_max.clone())}</span>
                        <span class="sub">{field(|m| format!("longest; {} rows in doubt now", m.rows_in_doubt))}</span>
                    </dd>
                </div>
                }.into_inner().into_any())}
                <div class="stat">
                    <dt title="Copy rows whose value or version differs from their source row now">"Inconsistent rows"</dt>
                    <dd>
                        <span {attr("id", "metric-inconsistent-rows")} class="big">{field(|m| m.inconsistent_rows.to_string())}</span>
                        <span class="sub">"copies that differ from Product now"</span>
                    </dd>
                </div>
                }.into_inner().into_any())}
                <div class="stat">
                    <dt title="Messages sent, and of them dropped or duplicated by the network">"Messages"</dt>
                    <dd>
                        <span {attr("id", "metric-messages-sent")} class="big">{field(|m| m.messages_sent.to_string())}</span>
                        <span class="sub">
                            "sent, "
                            <span {attr("id", "metric-messages-dropped")}>{field(|m| m.messages_dropped.to_string())}</span>
                            " dropped, "
                            <span {attr("id", "metric-messages-duplicated")}>{field(|m| m.messages_duplicated.to_string())}</span>
                            " duplicated"
                        </span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="Messages sent per finished operation, background traffic included, and bytes held in copies">"Cost"</dt>
                    <dd>
                        <span {attr("id", "metric-messages-per-op")} class="big">{field(|m| m.messages_per_op.clone())}</span>
                        <span class="sub">
                            "messages per operation; "
                            <span {attr("id", "metric-duplicated-bytes")}>{field(|m| m.duplicated_bytes.to_string())}</span>
                            " bytes copied"
                        </span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="The most events any broker queue held at once so far">"Deepest queue"</dt>
                    <dd>
                        <span {attr("id", "metric-queue-max")} class="big">{field(|m| m.queue_depth_max.to_string())}</span>
                        <span class="sub">"messages waiting at once"</span>
                    </dd>
                </div>
                <div class="stat">
                    <dt title="Operations begun and not yet answered">"Waiting"</dt>
                    <dd>
                        <span {attr("id", "metric-ops-running")} class="big">{field(|m| m.ops_running.to_string())}</span>
                        <span class="sub">"operations holding a connection"</span>
                    </dd>
                </div>
            </dl>
            <DeliveryNumbers/>
        </section>
    }
    .into_inner()
}

/// One operation's row; its cells carry stable ids such as `#metric-read-p50`.
#[component]
fn OpRow(name: String, stem: String, ops: Computed<Option<MetricsView>>) -> impl IntoView {
    let key = name.clone();
    let cell = move |read: fn(&OpLine) -> String| {
        let key = key.clone();
        reactive(move || {
            ops.with(|m| {
                m.as_ref()
                    .and_then(|m| m.ops.iter().find(|op| op.name == key).map(read))
                    .unwrap_or_default()
            })
        })
    };
    view! {
        <tr>
            <th {attr("scope", "row")}>{name.clone()}</th>
            <td class="num" {attr("id", format!("metric-{stem}-ok"))}>{cell(|op| op.ok.to_string())}</td>
            <td class="num" {attr("id", format!("metric-{stem}-failed"))}>{cell(|op| op.failed.to_string())}</td>
            <td class="num" {attr("id", format!("metric-{stem}-p50"))}>{cell(|op| op.p50.clone())}</td>
            <td class="num" {attr("id", format!("metric-{stem}-p95"))}>{cell(|op| op.p95.clone())}</td>
            <td class="num" {attr("id", format!("metric-{stem}-p99"))}>{cell(|op| op.p99.clone())}</td>
        </tr>
    }
    .into_inner()
}
