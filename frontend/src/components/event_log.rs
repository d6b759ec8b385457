//! The latest events up to the playhead, newest first.

use crate::describe::{self, LogLine};
use crate::selection::Selection;
use crate::state::{Clock, RunHandle, Selected};
use leptos::prelude::*;

/// How many lines the log keeps.
const LOG_LINES_MAX: usize = 200;

/// The event log.
#[component]
pub fn EventLog() -> impl IntoView {
    let run = expect_context::<RunHandle>();
    let clock = expect_context::<Clock>();
    let lines = Memo::new(move |_| {
        // Reading (not just tracking) runs the lazy memo, so it follows the playhead.
        clock.applied.get();
        let t = clock.now.get_untracked();
        run.read(|index| describe::latest_lines(index, t, LOG_LINES_MAX))
            .unwrap_or_default()
    });
    view! {
        <section class="log card" aria-labelledby="log-title">
            <h2 id="log-title">
                "Event log " <span class="hint">{format!("latest {LOG_LINES_MAX}, newest first")}</span>
            </h2>
            <ol id="event-log" class="event-log" reversed>
                <For each=move || lines.get() key=|line| line.event_idx let:line>
                    <LogEntry line=line/>
                </For>
            </ol>
        </section>
    }
}

/// One line; a line about a message or an operation is a button that selects it.
#[component]
fn LogEntry(line: LogLine) -> impl IntoView {
    let selected = expect_context::<Selected>();
    let selects = line.selects.clone();
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
    let what = view! {
        <span class="what">
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
        <li class=line.tone.class() class:highlighted=highlighted>
            <time>{line.time}</time>
            {body}
        </li>
    }
}
