//! Every event up to the playhead, newest first, in a scrolling window: only the lines in view
//! (and a few around them) exist in the page, so a frame's work follows the lines that changed,
//! never the length of the run.

use crate::describe::{self, LogLine};
use crate::log_window::{LogWindow, ROW_HEIGHT_PX};
use crate::selection::Selection;
use crate::state::{Clock, RunHandle, Selected};
use leptos::prelude::*;

/// The event log.
#[component]
pub fn EventLog() -> impl IntoView {
    let run = expect_context::<RunHandle>();
    let clock = expect_context::<Clock>();
    let scroller = NodeRef::<leptos::html::Div>::new();
    // How far the reader scrolled, kept from the scroll events: reading the element's
    // `scrollTop` on every frame would make the browser lay the page out again each time.
    let scrolled_px = RwSignal::new(0.0f64);
    let first_shown = Memo::new(move |_| (scrolled_px.get() / ROW_HEIGHT_PX) as usize);
    let total = Memo::new(move |_| clock.applied.get().1);
    let window = Memo::new(move |_| LogWindow::new(total.get(), first_shown.get()));
    let lines = Memo::new(move |previous: Option<&Vec<LogLine>>| {
        let window = window.get();
        // Lines already described are kept: a frame describes only the events it brought.
        run.read(|index| describe::lines_in(index, window.events(), previous))
            .unwrap_or_default()
    });
    // While the reader looks at older lines, keep them in view as newer ones arrive above.
    Effect::new(move |before: Option<usize>| {
        let now = total.get();
        let scrolled = scrolled_px.get_untracked();
        if let (Some(before), Some(el)) = (before, scroller.get_untracked())
            && scrolled > 0.0
            && now > before
        {
            let by = (now - before) as f64 * ROW_HEIGHT_PX;
            el.set_scroll_top((scrolled + by) as i32);
        }
        now
    });
    let on_scroll = move |_| {
        if let Some(el) = scroller.get_untracked() {
            scrolled_px.set(f64::from(el.scroll_top()));
        }
    };
    view! {
        <section class="log card" aria-labelledby="log-title">
            <h2 id="log-title">
                "Event log " <span class="hint">{move || format!("{} events so far, newest first", total.get())}</span>
            </h2>
            <div class="log-scroll" node_ref=scroller on:scroll=on_scroll tabindex="0" role="region" aria-labelledby="log-title">
                <ol
                    id="event-log"
                    class="event-log"
                    style:height=move || format!("{}px", window.with(LogWindow::height_px))
                >
                    <For each=move || lines.get() key=|line| line.event_idx let:line>
                        <LogEntry line=line window=window/>
                    </For>
                </ol>
            </div>
        </section>
    }
}

/// One line, placed at its row; a line about a message or an operation is a button that
/// selects it.
#[component]
fn LogEntry(line: LogLine, window: Memo<LogWindow>) -> impl IntoView {
    let selected = expect_context::<Selected>();
    let selects = line.selects.clone();
    let event_idx = line.event_idx;
    let highlighted = {
        let selects = selects.clone();
        move || {
            selected.highlight.with(|h| match &selects {
                Selection::Message(msg) => h.has(*msg),
                Selection::Operation(op) => h.op == Some(*op),
                _ => false,
            })
        }
    };
    let full_text = line.text();
    let what = view! {
        <span class="what" title=full_text>
            {(!line.subject.is_empty()).then(|| view! { <span class="subject">{line.subject}</span> " " })}
            <span class="detail">{line.detail}</span>
        </span>
    };
    let body = if selects == Selection::Nothing {
        what.into_any()
    } else {
        let is_selected = {
            let selects = selects.clone();
            move || selected.selection.with(|s| *s == selects).to_string()
        };
        view! {
            <button
                type="button"
                class="log-select"
                aria-pressed=is_selected
                on:click=move |_| selected.toggle(selects.clone())
            >
                {what}
            </button>
        }
        .into_any()
    };
    view! {
        <li
            class=line.tone.class()
            class:highlighted=highlighted
            style:transform=move || format!("translateY({}px)", window.with(|w| w.top_px(event_idx)))
        >
            <time>{line.time}</time>
            {body}
        </li>
    }
}
