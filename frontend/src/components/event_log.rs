//! Every event up to the playhead, newest first, in a scrolling window: only the rows in view
//! (and a few around them) exist in the page, each a fixed slot that says what its row holds
//! now. New events change the slots' words, never which elements exist or where they sit, so a
//! frame's work follows the rows drawn, never the length of the run; following a playing run, a
//! frame rewrites at most a band of them (`LogWindow::next`).

use crate::components::{Computed, Var, attr, effect, element, keyed, listen, on_screen, reactive};
use crate::describe::{self, LogLine};
use crate::log_window::{LogWindow, ROW_HEIGHT_PX};
use crate::selection::Selection;
use crate::state::page;
use leptos::prelude::*;
use shared::float_text::shortest;

/// The event log.
#[component]
pub fn EventLog() -> impl IntoView {
    let run = page().run;
    let scroller = || element::<web_sys::Element>(".log-scroll");
    // Off screen the log holds still: while a run plays, every row's words change in every
    // frame, and that is most of a frame's work. It catches up when it comes back into view.
    let shown = on_screen(".log-scroll");
    let clock = page().clock.while_shown(shown);
    // How far the reader scrolled, kept from the scroll events: reading the element's
    // `scrollTop` on every frame would make the browser lay the page out again each time.
    let scrolled_px = Var::new(0.0f64);
    // Following a playing run (the newest line at the top), the log writes the newest events a
    // few rows a frame, and newer ones wait until those are written; otherwise it shows the
    // playhead at once.
    let window = Computed::compared(move |previous: Option<&LogWindow>| {
        let playing = clock.player.with(|p| p.is_playing());
        let first_shown = (scrolled_px.get() / ROW_HEIGHT_PX) as usize;
        LogWindow::next(previous, clock.applied.get(), first_shown, playing)
    });
    let total = move || window.with(LogWindow::total);
    let lines = Computed::new(move |previous: Option<&Vec<LogLine>>| {
        // Held too: a run replaced meanwhile may be shorter than the held count.
        if let Some(previous) = previous
            && !shown.get()
        {
            return previous.clone();
        }
        let window = window.get();
        // Lines already described are kept: a frame describes only the events it brought.
        run.read(|index| describe::lines_in(index, window.events(), previous))
            .unwrap_or_default()
    });
    let first_row = Computed::compared(move |_| window.with(LogWindow::first_row));
    let slots = Computed::compared(move |_| window.with(LogWindow::rows_drawn));
    let height = Computed::compared(move |_| window.with(LogWindow::height_px));
    // While the reader looks at older lines, keep them in view as newer ones arrive above.
    effect(move |before: Option<usize>| {
        let now = total();
        let scrolled = scrolled_px.get_untracked();
        if let (Some(before), Some(el)) = (before, scroller())
            && scrolled > 0.0
            && now > before
        {
            let by = (now - before) as f64 * ROW_HEIGHT_PX;
            el.set_scroll_top((scrolled + by) as i32);
        }
        now
    });
    let on_scroll = move |_| {
        if let Some(el) = scroller() {
            scrolled_px.set(f64::from(el.scroll_top()));
        }
    };
    view! {
        <section class="log card" {attr("aria-labelledby", "log-title")}>
            <h2 {attr("id", "log-title")}>
                "Event log " <span class="hint">{move || format!("{} events so far, newest first", total())}</span>
            </h2>
            <div class="log-scroll" {listen::<leptos::ev::Event>("scroll", on_scroll)} {attr("tabindex", "0")} {attr("role", "region")} {attr("aria-labelledby", "log-title")}>
                <ol
                    {attr("id", "event-log")}
                    class="event-log"
                    style:height=move || format!("{}px", shortest(height.get()))
                >
                    {keyed(
                        move || 0..slots.get(),
                        |position: &usize| position.to_string(),
                        move |position: usize| view! {
                        <LogSlot position=position lines=lines window=window first_row=first_row/>
                        }.into_inner().into_any(),
                    )}
                </ol>
            </div>
        </section>
    }
    .into_inner()
}

/// The `position`th row drawn: the line it holds now, placed at its row; a line about a message or
/// an operation is a button that selects it.
#[component]
fn LogSlot(
    position: usize,
    lines: Computed<Vec<LogLine>>,
    window: Computed<LogWindow>,
    first_row: Computed<usize>,
) -> impl IntoView {
    let selected = page().selected;
    // A row below those written of a new page keeps the last page's line a frame or few more.
    let line = Computed::compared(move |before: Option<&Option<LogLine>>| match before {
        Some(before) if position >= window.with(LogWindow::written) => before.clone(),
        _ => lines.with(|lines| lines.get(position).cloned()),
    });
    let read = move |part: fn(&LogLine) -> String| {
        reactive(move || line.with(|l| l.as_ref().map(part).unwrap_or_default()))
    };
    let selects = Computed::new(move |_| {
        line.with(|l| l.as_ref().map_or(Selection::Nothing, |l| l.selects.clone()))
    });
    let selectable = Computed::compared(move |_| selects.with(|s| *s != Selection::Nothing));
    let highlighted = move || {
        selected.highlight.with(|h| {
            line.with(|l| l.as_ref().is_some_and(|l| h.events.contains(&l.event_idx)))
                || selects.with(|selects| match selects {
                    Selection::Message(msg) => h.has(*msg),
                    Selection::Operation(op) => h.op == Some(*op),
                    _ => false,
                })
        })
    };
    // One class attribute for both: a reactive `class` and a `class:` toggle on one element
    // would undo each other.
    let classes = move || {
        let tone = line.with(|l| l.as_ref().map_or("", |l| l.tone.class()));
        if highlighted() {
            format!("{tone} highlighted")
        } else {
            tone.to_string()
        }
    };
    // The whole line as a tooltip, for a line cut short: written when the pointer reaches the
    // row, not in every frame its words change (a row's words change in every frame while the
    // log follows a playing run).
    let on_pointer = move |event: leptos::ev::MouseEvent| {
        let text = line.with_untracked(|l| l.as_ref().map(LogLine::text).unwrap_or_default());
        if let Some(target) = event.current_target() {
            // The listener is on the `span` below.
            let element: web_sys::Element = wasm_bindgen::JsCast::unchecked_into(target);
            let _ = element.set_attribute("title", &text);
        }
    };
    let what = move || {
        view! {
            <span class="what" {listen("mouseenter", on_pointer)}>
                // Empty for narration, and then not shown (`:empty`).
                <span class="subject">{read(|l| l.subject.clone())}</span>
                " "
                <span class="detail">{read(|l| l.detail.clone())}</span>
            </span>
        }
        .into_inner()
    };
    // Only a slot whose line turns from selectable to not (or back) is rebuilt.
    let body = move || {
        if selectable.get() {
            let is_selected = move || {
                selects
                    .with(|mine| selected.selection.with(|s| s == mine))
                    .to_string()
            };
            view! {
                <button
                    {attr("type", "button")}
                    class="log-select"
                    {attr("aria-pressed", is_selected)}
                    {listen::<leptos::ev::MouseEvent>("click", move |_| selected.toggle(selects.get_untracked()))}
                >
                    {what()}
                </button>
            }
            .into_inner().into_any()
        } else {
            what().into_any()
        }
    };
    view! {
        <li
            {attr("class", reactive(classes))}
            style:transform=move || format!("translateY({}px)", shortest(LogWindow::slot_top_px(first_row.get(), position)))
        >
            <time>{read(|l| l.time.clone())}</time>
            {reactive(body)}
        </li>
    }
    .into_inner()
}
