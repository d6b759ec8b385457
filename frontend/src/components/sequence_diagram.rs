//! The sequence (space-time) diagram beside the map: lifelines across, time running down to the
//! playhead, one arrow per message; clicking an arrow selects its message.

use crate::selection::Selection;
use crate::sequence::{self, HEAD_HEIGHT, SEQUENCE_HEIGHT, SEQUENCE_WIDTH, SequenceModel};
use crate::state::{Clock, RunHandle, Selected};
use leptos::prelude::*;
use shared::protocol::MsgId;

/// The diagram.
#[component]
pub fn SequenceDiagram() -> impl IntoView {
    let run = expect_context::<RunHandle>();
    let clock = expect_context::<Clock>();
    let selected = expect_context::<Selected>();
    let model = Memo::new(move |_| {
        let t = clock.now.get();
        let window = sequence::window_for_speed(clock.speed());
        selected
            .highlight
            .with(|highlight| run.read(|index| sequence::build(index, t, window, highlight)))
            .unwrap_or_default()
    });
    let lifelines = move || model.with(|m: &SequenceModel| m.lifelines.clone());
    let arrows = move || model.with(|m| m.arrows.clone());
    // The timeline scrolls under a fixed frame: one attribute per frame, while each arrow is
    // drawn once (again only while it moves or its highlight changes).
    let timeline = move || model.with(|m| format!("translate(0 {:.2})", m.offset));
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
    view! {
        <figure class="sequence card" aria-labelledby="sequence-title">
            <h2 id="sequence-title">
                "Sequence " <span class="hint">{window_text}", time runs down"</span>
            </h2>
            <svg
                id="sequence"
                viewBox=format!("0 0 {SEQUENCE_WIDTH} {SEQUENCE_HEIGHT}")
                role="img"
                aria-label="Sequence diagram: each service's lifeline, and the messages between them up to the playhead"
            >
                <defs>
                    <marker id="arrow-head" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0,0 L8,4 L0,8 z" fill="context-stroke"/>
                    </marker>
                </defs>
                <For each=lifelines key=|l| l.name.clone() let:lifeline>
                    <g class="lifeline">
                        <line x1=lifeline.x y1="30" x2=lifeline.x y2=SEQUENCE_HEIGHT/>
                        <text x=lifeline.x y="18">{lifeline.name.clone()}</text>
                    </g>
                </For>
                <clipPath id="sequence-window">
                    <rect x="0" y=HEAD_HEIGHT width=SEQUENCE_WIDTH height=SEQUENCE_HEIGHT - HEAD_HEIGHT/>
                </clipPath>
                <g clip-path="url(#sequence-window)">
                <g class="arrows" transform=timeline>
                    <For each=arrows key=|a| (a.msg, a.arrived, a.highlighted, (a.x2 * 10.0) as i64, (a.y2 * 10.0) as i64) let:arrow>
                        <line
                            class=format!("seq-arrow {}", arrow.kind)
                            class:dropped=arrow.dropped
                            class:highlighted=arrow.highlighted
                            class:open=!arrow.arrived
                            data-msg=arrow.msg.to_string()
                            x1=format!("{:.1}", arrow.x1)
                            y1=format!("{:.2}", arrow.y1)
                            x2=format!("{:.1}", arrow.x2)
                            y2=format!("{:.2}", arrow.y2)
                            marker-end=if arrow.arrived && !arrow.dropped { "url(#arrow-head)" } else { "" }
                            on:click=move |_| selected.toggle(Selection::Message(MsgId(arrow.msg)))
                        >
                            <title>{arrow.title.clone()}</title>
                        </line>
                    </For>
                </g>
                </g>
                <line class="seq-playhead" x1="0" y1=SEQUENCE_HEIGHT - 1.0 x2=SEQUENCE_WIDTH y2=SEQUENCE_HEIGHT - 1.0/>
            </svg>
        </figure>
    }
}
