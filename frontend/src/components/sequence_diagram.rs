//! The sequence (space-time) diagram beside the map: lifelines across, time running down to the
//! playhead, one arrow per message; pointing at an arrow names its message, clicking it selects
//! the message.

use crate::components::{Computed, Var, attr, element, keyed, listen, on_screen, reactive};
use crate::selection::Selection;
use crate::sequence::{
    self, HEAD_HEIGHT, Lifeline, PENS, SEQUENCE_HEIGHT, SEQUENCE_WIDTH, SequenceModel,
};
use crate::state::page;
use leptos::prelude::*;
use shared::float_text::{fixed, shortest};
use shared::protocol::MsgId;

/// What the diagram's tooltip says while the pointer is on no arrow.
const DIAGRAM_TITLE: &str = "Point at an arrow to name its message; click it to select it";

/// The diagram.
#[component]
pub fn SequenceDiagram() -> impl IntoView {
    let run = page().run;
    // Off screen the diagram holds still, and catches up when it comes back into view.
    let clock = page().clock.while_shown(on_screen("#sequence"));
    let selected = page().selected;
    let model = Computed::new(move |_| {
        let t = clock.now.get();
        let window = sequence::window_for_speed(clock.speed());
        selected
            .highlight
            .with(|highlight| run.read(|index| sequence::build(index, t, window, highlight)))
            .unwrap_or_default()
    });
    let lifelines = move || model.with(|m: &SequenceModel| m.lifelines.clone());
    // Arrows are a few paths, each redrawn only when its own arrows changed; the timeline
    // scrolls under a fixed frame by one attribute.
    let paths = Computed::new(move |_| model.with(SequenceModel::paths));
    let timeline = move || model.with(|m| format!("translate(0 {})", fixed(m.offset, 2)));
    let window_text = move || {
        model.with(|m| {
            let (start, end) = m.window;
            format!(
                "from {} to {} s",
                crate::format::trim_number((start.0 / 1_000) as f64 / 1_000.0),
                crate::format::trim_number((end.0 / 1_000) as f64 / 1_000.0)
            )
        })
    };
    // The message under the pointer, found when the pointer moves or clicks.
    let pointed = Var::new(None::<u64>);
    let arrow_under = move |ev: &leptos::ev::MouseEvent| -> Option<u64> {
        let svg = element::<web_sys::SvgElement>("#sequence")?;
        let (x, y) = view_box_point(&svg, ev)?;
        model.with_untracked(|m| m.arrow_at(x, y).map(|arrow| arrow.msg))
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let under = arrow_under(&ev);
        if pointed.get_untracked() != under {
            pointed.set(under);
        }
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if let Some(msg) = arrow_under(&ev) {
            selected.toggle(Selection::Message(MsgId(msg)));
        }
    };
    let title = move || {
        pointed
            .get()
            .and_then(|msg| {
                run.read_untracked(|index| sequence::describe_arrow(index, MsgId(msg)))
                    .flatten()
            })
            .unwrap_or_else(|| DIAGRAM_TITLE.to_string())
    };
    let strokes = PENS
        .iter()
        .enumerate()
        .map(|(i, pen)| {
            let d = Computed::compared(move |_| paths.with(|p| p[i].clone()));
            let class = format!(
                "{} {} {}",
                if pen.heads { "seq-heads" } else { "seq-arrow" },
                pen.kind.name(),
                pen.look.class()
            );
            view! { <path {attr("class", class)} d=move || d.get()/> }
                .into_inner()
                .into_any()
        })
        .map(IntoAny::into_any)
        .collect::<Vec<AnyView>>();
    view! {
        <figure class="sequence card" {attr("aria-labelledby", "sequence-title")}>
            <h2 {attr("id", "sequence-title")}>
                "Sequence " <span class="hint">{reactive(window_text)}", time runs down"</span>
            </h2>
            <svg
                id="sequence"
                class:pointing=move || pointed.get().is_some()
                viewBox=format!("0 0 {} {}", shortest(SEQUENCE_WIDTH), shortest(SEQUENCE_HEIGHT))
                role="img"
                aria-label="Sequence diagram: each service's lifeline, and the messages between them up to the playhead"
                {listen::<leptos::ev::MouseEvent>("mousemove", on_move)}
                {listen::<leptos::ev::MouseEvent>("mouseleave", move |_| pointed.set(None))}
                {listen::<leptos::ev::MouseEvent>("click", on_click)}
            >
                <title>{reactive(title)}</title>
                {keyed(
                    lifelines,
                    |l: &Lifeline| l.name.clone(),
                    move |lifeline: Lifeline| view! {
                    <g class="lifeline">
                        <line x1=shortest(lifeline.x).to_string() y1="30" x2=shortest(lifeline.x).to_string() y2=shortest(SEQUENCE_HEIGHT).to_string()/>
                        <text x=shortest(lifeline.x).to_string() y="18">{lifeline.name.clone()}</text>
                    </g>
                    }.into_inner().into_any(),
                )}
                <clipPath id="sequence-window">
                    <rect x="0" y=shortest(HEAD_HEIGHT).to_string() width=shortest(SEQUENCE_WIDTH).to_string() height=shortest(SEQUENCE_HEIGHT - HEAD_HEIGHT).to_string()/>
                </clipPath>
                <g clip-path="url(#sequence-window)">
                    <g class="arrows" transform=timeline>{strokes}</g>
                </g>
                <line class="seq-playhead" x1="0" y1=shortest(SEQUENCE_HEIGHT - 1.0).to_string() x2=shortest(SEQUENCE_WIDTH).to_string() y2=shortest(SEQUENCE_HEIGHT - 1.0).to_string()/>
            </svg>
        </figure>
    }
    .into_inner()
}

/// Where `ev` points in `svg`'s viewBox units: the diagram is scaled to fit and centred, as
/// SVG's default `preserveAspectRatio` does.
fn view_box_point(svg: &web_sys::SvgElement, ev: &leptos::ev::MouseEvent) -> Option<(f64, f64)> {
    let rect = svg.get_bounding_client_rect();
    let scale = (rect.width() / SEQUENCE_WIDTH).min(rect.height() / SEQUENCE_HEIGHT);
    if scale <= 0.0 {
        return None;
    }
    let left = rect.left() + (rect.width() - SEQUENCE_WIDTH * scale) / 2.0;
    let top = rect.top() + (rect.height() - SEQUENCE_HEIGHT * scale) / 2.0;
    Some((
        (f64::from(ev.client_x()) - left) / scale,
        (f64::from(ev.client_y()) - top) / scale,
    ))
}
