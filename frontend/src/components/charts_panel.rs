//! The metrics charts over the whole run, with the playhead marked; clicking a chart seeks there.

use crate::charts::{Charts, Series};
use crate::components::{Computed, attr, listen, reactive, show};
use crate::state::page;
use leptos::prelude::*;
use shared::float_text::{fixed, shortest};
use shared::time::Micros;

const CHART_WIDTH: f64 = 300.0;
const CHART_HEIGHT: f64 = 64.0;
const PAD_LEFT: f64 = 36.0;
const PAD_BOTTOM: f64 = 6.0;

/// The charts panel.
#[component]
pub fn ChartsPanel() -> impl IntoView {
    let run = page().run;
    let charts = Computed::new(move |_| {
        run.read(|index| index.charts().charts())
            .unwrap_or_default()
    });
    view! {
        <section class="charts card" {attr("aria-labelledby", "charts-title")}>
            <h2 id="charts-title">"Over time " <span class="hint">"click to go there"</span></h2>
            <div class="chart-row">
                <Chart charts=charts pick=|c: &Charts| c.latency.clone() id="chart-latency"/>
                <Chart charts=charts pick=|c: &Charts| c.staleness.clone() id="chart-staleness"/>
                <Chart charts=charts pick=|c: &Charts| c.queue_depth.clone() id="chart-queue"/>
                // Only runs with a service of limited capacity have a utilisation to chart.
                {show(move || charts.with(|c| c.utilisation.values.iter().any(Option::is_some)), move || view! {
                    <Chart charts=charts pick=|c: &Charts| c.utilisation.clone() id="chart-utilisation"/>
                }.into_inner().into_any())}
            </div>
        </section>
    }
    .into_inner()
}

/// The points of `series` as an SVG polyline, broken where there is no value.
fn paths(series: &Series) -> String {
    let max = series.max().max(1e-9);
    let n = series.values.len().max(1) as f64;
    let mut d = String::new();
    let mut pen_down = false;
    for (i, value) in series.values.iter().enumerate() {
        match value {
            Some(v) => {
                let x = PAD_LEFT + (i as f64 + 0.5) / n * (CHART_WIDTH - PAD_LEFT);
                let y = CHART_HEIGHT - PAD_BOTTOM - v / max * (CHART_HEIGHT - PAD_BOTTOM - 8.0);
                d.push_str(&format!(
                    "{}{x},{y} ",
                    if pen_down { "L" } else { "M" },
                    x = fixed(x, 1),
                    y = fixed(y, 1)
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

#[component]
fn Chart(charts: Computed<Charts>, pick: fn(&Charts) -> Series, id: &'static str) -> impl IntoView {
    let clock = page().clock;
    let series = Computed::compared(move |_| charts.with(pick));
    let end = Computed::compared(move |_| charts.with(|c| c.end));
    let playhead_x = move || {
        let end = end.get().0.max(1) as f64;
        PAD_LEFT + clock.now.get().0 as f64 / end * (CHART_WIDTH - PAD_LEFT)
    };
    let max_label = move || {
        series.with(|s| format!("{}{}", crate::format::trim_number(s.max().round()), s.unit))
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        let Some(target) = ev.current_target() else {
            return;
        };
        let element: web_sys::Element = wasm_bindgen::JsCast::unchecked_into(target);
        let rect = element.get_bounding_client_rect();
        if rect.width() <= 0.0 {
            return;
        }
        let x = (f64::from(ev.client_x()) - rect.left()) / rect.width() * CHART_WIDTH;
        let fraction = ((x - PAD_LEFT) / (CHART_WIDTH - PAD_LEFT)).clamp(0.0, 1.0);
        let t = Micros((end.get_untracked().0 as f64 * fraction) as u64);
        clock.player.update(|p| p.seek(t));
    };
    view! {
        <figure class="chart" class:flat=move || series.with(|s| s.max() == 0.0)>
            <figcaption>
                {move || series.with(|s| s.title).to_string()}
                {show(move || series.with(|s| s.max() == 0.0), move || view! {
                    <span class="hint">" — none in this run so far"</span>
                }.into_inner().into_any())}
            </figcaption>
            <svg
                {attr("id", id)}
                viewBox=format!("0 0 {} {}", shortest(CHART_WIDTH), shortest(CHART_HEIGHT))
                role="img"
                aria-label=move || series.with(|s| format!("{}: up to {}{}", s.title, crate::format::trim_number(s.max().round()), s.unit))
                {listen::<leptos::ev::MouseEvent>("click", on_click)}
            >
                <line class="axis" x1=shortest(PAD_LEFT).to_string() y1=shortest(CHART_HEIGHT - PAD_BOTTOM).to_string() x2=shortest(CHART_WIDTH).to_string() y2=shortest(CHART_HEIGHT - PAD_BOTTOM).to_string()/>
                <text class="axis-label" x=shortest(PAD_LEFT - 4.0).to_string() y="12">{reactive(max_label)}</text>
                <text class="axis-label" x=shortest(PAD_LEFT - 4.0).to_string() y=shortest(CHART_HEIGHT - PAD_BOTTOM).to_string()>"0"</text>
                <path class="series" d=move || series.with(paths)/>
                <line class="playhead" x1=move || shortest(playhead_x()).to_string() y1="0" x2=move || shortest(playhead_x()).to_string() y2=shortest(CHART_HEIGHT - PAD_BOTTOM).to_string()/>
            </svg>
        </figure>
    }
    .into_inner()
}
