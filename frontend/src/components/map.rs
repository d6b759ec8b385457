//! The service map: services as boxes, links as lines, messages moving along them, the
//! narration caption and the legend.

use crate::components::message_canvas::{self, CANVAS_FROM_MESSAGES, PaintKey};
use crate::components::{Computed, Var, attr, effect, element, keyed, listen, reactive, show};
use crate::layout::{
    BOX_HEIGHT, BOX_WIDTH, Layout, Orientation, VIEW_HEIGHT, VIEW_WIDTH, shown_progress,
};
use crate::selection::Selection;
use crate::source::RunStatus;
use crate::state::{Clock, RunHandle, Selected, page};
use crate::trace_index::FlightState;
use crate::view_model::{self, ServiceView};
use leptos::prelude::*;
use shared::float_text::{fixed, shortest};
use shared::protocol::{DropReason, MessageKind, MsgId, ServiceInfo, ServiceRole};
use shared::time::Micros;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How long, in screen time, a dropped message's ✕ stays on the map.
const DROP_FLASH_SCREEN_MS: f64 = 700.0;
/// With more messages than this on the map, their labels would cover each other: only the
/// tooltips remain.
const LABELS_MAX: usize = 6;
/// The same on a narrow screen, where the map is smaller.
const LABELS_MAX_NARROW: usize = 3;
/// How far from its message a label sits, beside its lane.
const LABEL_OFFSET: f64 = 19.0;
/// Over this much of each end of its link, a label fades in or out.
const LABEL_FADE: f64 = 0.15;
/// Labels longer than this are cut short with an ellipsis; the tooltip has the whole label.
const LABEL_CHARS_MAX: usize = 30;
/// The same on a narrow screen, where labels sit beside vertical links with less room.
const LABEL_CHARS_MAX_NARROW: usize = 17;
/// About how wide a label's character is, in viewBox units: a label along a short link is cut
/// to the link's length so it does not run over the boxes at either end.
const LABEL_CHAR_WIDTH: f64 = 7.3;
/// The shortest a label is ever cut to.
const LABEL_CHARS_MIN: usize = 10;
/// How much of its lane a label beside a vertical link takes: one line of text.
const LABEL_LINE_HEIGHT: f64 = 14.0;
/// The least room between two labels on one lane.
const LABEL_GAP: f64 = 6.0;

/// A message to draw.
#[derive(Clone, Debug, PartialEq)]
struct Dot {
    msg: u64,
    kind: MessageKind,
    label: String,
    route: String,
    x: f64,
    y: f64,
    /// Where the label sits, relative to the message, and how it is anchored.
    label_x: f64,
    label_y: f64,
    label_anchor: &'static str,
    /// How far along its link, from 0 to 1.
    progress: f64,
    /// The label as drawn beside the message.
    short_label: String,
    /// Where the label sits along its lane; whether it is drawn.
    label_span: LabelSpan,
    label_shown: bool,
    dropped: Option<DropReason>,
}

/// Where a message's label sits along its lane, in viewBox units from the link's start, and how
/// much of the lane it takes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LabelSpan {
    /// The link and direction: messages each way travel on lanes on either side, so their labels
    /// never meet.
    lane: (u16, u16),
    centre: f64,
    extent: f64,
}

/// Which of `spans` to draw. On each lane, from the message furthest along back, a label that
/// would run into one already drawn is left out, so two messages close together on a link show
/// one readable label, not two printed over each other (the other keeps its tooltip). Labels are
/// drawn for a handful of messages at most ([`LABELS_MAX`]), so the quadratic walk is short.
fn labels_apart(spans: &[LabelSpan]) -> Vec<bool> {
    let mut shown = vec![false; spans.len()];
    let mut seen = vec![false; spans.len()];
    while let Some(i) = (0..spans.len())
        .filter(|&i| !seen[i])
        .max_by(|&a, &b| spans[a].centre.total_cmp(&spans[b].centre).then(b.cmp(&a)))
    {
        seen[i] = true;
        let span = spans[i];
        shown[i] = (0..spans.len()).all(|j| {
            let drawn = spans[j];
            !shown[j]
                || drawn.lane != span.lane
                || drawn.centre - span.centre >= (drawn.extent + span.extent) / 2.0 + LABEL_GAP
        });
    }
    shown
}

/// `label`, cut to `chars_max` characters.
fn short_label(label: &str, chars_max: usize) -> String {
    if label.chars().count() <= chars_max {
        label.to_string()
    } else {
        let cut: String = label.chars().take(chars_max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The shape of a message of `kind`, centred on the origin: colour and shape both tell kinds
/// apart, so the map reads without colour vision too.
fn glyph(kind: &'static str) -> AnyView {
    match kind {
        "request" => view! { <circle class="glyph request" r="9"/> }
            .into_inner()
            .into_any(),
        "response" => view! { <circle class="glyph response" r="9"/> }
            .into_inner()
            .into_any(),
        "event" => view! { <polygon class="glyph event" points="0,-12 12,0 0,12 -12,0"/> }
            .into_inner()
            .into_any(),
        "ack" => view! { <rect class="glyph ack" x="-5.5" y="-5.5" width="11" height="11"/> }
            .into_inner()
            .into_any(),
        "rollback" => view! { <polygon class="glyph rollback" points="0,-12 11,9 -11,9"/> }
            .into_inner()
            .into_any(),
        _ => view! { <path class="glyph dropped" d="M-8,-8 L8,8 M8,-8 L-8,8"/> }
            .into_inner()
            .into_any(),
    }
}

/// The service map with its caption and legend.
#[component]
pub fn ServiceMap() -> impl IntoView {
    let run = page().run;
    let clock = page().clock;
    let selected = page().selected;
    let now = clock.now;
    let narrow = media_signal(NARROW_QUERY);
    let reduced_motion = media_signal(REDUCED_MOTION_QUERY);
    let topology = Computed::compared(move |_| {
        let orientation = if narrow.get() {
            Orientation::Portrait
        } else {
            Orientation::Landscape
        };
        run.read(|index| {
            let layout = Layout::with_orientation(index.header(), orientation);
            (layout, index.header().services.clone())
        })
    });
    let view_box = move || {
        topology.with(|t| match t {
            Some((layout, _)) => format!(
                "0 0 {} {}",
                shortest(layout.width()),
                shortest(layout.height())
            ),
            None => format!("0 0 {} {}", shortest(VIEW_WIDTH), shortest(VIEW_HEIGHT)),
        })
    };
    let services = Computed::new(move |_| {
        // Reading (not just tracking) runs the lazy memo, so it follows the playhead.
        clock.applied.get();
        let t = now.get_untracked();
        run.at(t, |index, state| {
            view_model::services(index.header(), state)
        })
        .unwrap_or_default()
    });
    let circuits = Computed::new(move |_| {
        clock.applied.get();
        let t = now.get_untracked();
        run.at(t, |_, state| view_model::open_circuits(state))
            .unwrap_or_default()
    });
    let dots = Computed::new(move |_| {
        let portrait = narrow.get();
        let reduced = reduced_motion.get();
        let t = now.get();
        let flash = Micros::from_millis_f64(DROP_FLASH_SCREEN_MS * clock.speed());
        let Some((layout, infos)) = topology.get() else {
            return Vec::new();
        };
        let name = move |i: u16| {
            infos
                .get(i as usize)
                .map_or("?", |s| s.name.as_str())
                .to_string()
        };
        run.at(t, |index, _| {
            let flights = index.messages_in_flight_at(t, flash);
            // Past the threshold the canvas paints them instead.
            if flights.len() > CANVAS_FROM_MESSAGES {
                return Vec::new();
            }
            flights
                .into_iter()
                .filter_map(|flight| {
                    let progress = match flight.state {
                        FlightState::Moving => shown_progress(flight.progress, reduced),
                        FlightState::Dropped(_) => flight.progress,
                    };
                    let point = layout.message_position(flight.from, flight.to, progress)?;
                    let side = layout.lane_side(flight.from, flight.to)?;
                    let along = layout.link_length(flight.from, flight.to)?;
                    // Portrait labels sit beside their link, landscape ones along it.
                    let chars_max = if portrait {
                        LABEL_CHARS_MAX_NARROW
                    } else {
                        ((along / LABEL_CHAR_WIDTH) as usize)
                            .clamp(LABEL_CHARS_MIN, LABEL_CHARS_MAX)
                    };
                    // Beside a vertical link the label reads away from it; elsewhere it centres.
                    let beside = side.x.abs() > side.y.abs();
                    let label_anchor = match (beside, side.x > 0.0) {
                        (true, true) => "start",
                        (true, false) => "end",
                        (false, _) => "middle",
                    };
                    let short_label = short_label(flight.label, chars_max);
                    let label_span = LabelSpan {
                        lane: (flight.from.0, flight.to.0),
                        centre: progress * along,
                        extent: if beside {
                            LABEL_LINE_HEIGHT
                        } else {
                            short_label.chars().count() as f64 * LABEL_CHAR_WIDTH
                        },
                    };
                    Some(Dot {
                        label_x: side.x * LABEL_OFFSET,
                        // Text hangs from its baseline: nudge it down by half its height.
                        label_y: side.y * LABEL_OFFSET + 4.5,
                        label_anchor,
                        short_label,
                        label_span,
                        label_shown: false,
                        progress,
                        msg: flight.msg.0,
                        kind: flight.kind,
                        label: flight.label.to_string(),
                        route: format!("{} → {}", name(flight.from.0), name(flight.to.0)),
                        x: point.x,
                        y: point.y,
                        dropped: match flight.state {
                            FlightState::Moving => None,
                            FlightState::Dropped(reason) => Some(reason),
                        },
                    })
                })
                .collect::<Vec<_>>()
        })
        .map(|mut dots| {
            // A dropped message's ✕ has no label to make room for.
            let moving: Vec<usize> = (0..dots.len())
                .filter(|&i| dots[i].dropped.is_none())
                .collect();
            let spans: Vec<LabelSpan> = moving.iter().map(|&i| dots[i].label_span).collect();
            for (&i, shown) in moving.iter().zip(labels_apart(&spans)) {
                dots[i].label_shown = shown;
            }
            dots
        })
        .unwrap_or_default()
    });
    let moving = move || {
        dots.with(|d| {
            d.iter()
                .filter(|d| d.dropped.is_none())
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let labelled = Computed::compared(move |_| {
        let most = if narrow.get() {
            LABELS_MAX_NARROW
        } else {
            LABELS_MAX
        };
        dots.with(|d| d.len() <= most)
    });
    let dropped = move || {
        dots.with(|d| {
            d.iter()
                .filter(|d| d.dropped.is_some())
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    // Labels fade out near either end, where they would cover the boxes' names; one that would
    // run into another is not drawn.
    let label_opacity = move |msg: u64| {
        dots.with(|d| {
            d.iter()
                .find(|dot| dot.msg == msg && dot.label_shown)
                .map_or(0.0, |dot| {
                    (dot.progress.min(1.0 - dot.progress) / LABEL_FADE).clamp(0.0, 1.0)
                })
        })
    };
    let position = move |msg: u64| {
        dots.with(|d| {
            d.iter()
                .find(|dot| dot.msg == msg)
                .map(|dot| format!("translate({} {})", fixed(dot.x, 1), fixed(dot.y, 1)))
                .unwrap_or_default()
        })
    };
    let highlight = selected.highlight;
    let is_highlighted = move |msg: u64| highlight.with(|h| h.has(MsgId(msg)));
    let anything_highlighted = move || highlight.with(|h| !h.messages.is_empty());
    let canvas_count = Var::new(0usize);
    register_painter(PainterInputs {
        topology,
        run,
        clock,
        selected,
        reduced_motion,
        canvas_count,
    });
    let narration = Computed::new(move |_| {
        // Reading (not just tracking) runs the lazy memo, so it follows the playhead.
        clock.applied.get();
        let t = now.get_untracked();
        run.read(|index| index.narration_at(t).map(|(_, text)| text.to_string()))
            .flatten()
    });

    view! {
        <figure class="map card">
            <div class="map-frame">
            <svg
                id="map"
                viewBox=view_box
                role="group"
                aria-label="Service map: services, their links, and the messages between them"
            >
                {move || ({
                    topology
                        .get()
                        .map(|(layout, infos)| {
                            let name_of = |id: shared::protocol::ServiceId| {
                                infos
                                    .get(id.0 as usize)
                                    .map_or_else(|| format!("#{}", id.0), |s| s.name.clone())
                            };
                            let links = layout
                                .link_segments()
                                .into_iter()
                                .map(|(from, to, a, b)| {
                                    let selection = Selection::Link(name_of(from), name_of(to));
                                    // A breaker on either direction of the link.
                                    let circuit = Computed::new(move |_| {
                                        circuits.with(|open| {
                                            open.iter()
                                                .find(|(caller, callee, _)| {
                                                    (*caller, *callee) == (from, to)
                                                        || (*caller, *callee) == (to, from)
                                                })
                                                .map(|(_, _, state)| *state)
                                        })
                                    });
                                    view! { <LinkLine selection=selection a=a b=b circuit=circuit/> }.into_inner()
                                })
                                .map(IntoAny::into_any).collect::<Vec<AnyView>>();
                            let boxes = infos
                                .into_iter()
                                .filter_map(|info| {
                                    let place = *layout.service_box(info.id)?;
                                    Some(view! {
                                        <ServiceBox info=info left=place.left() top=place.top() services=services/>
                                    }.into_inner())
                                })
                                .map(IntoAny::into_any).collect::<Vec<AnyView>>();
                            view! {
                                <g class="links">{links}</g>
                                <g class="services">{boxes}</g>
                            }
                            .into_inner().into_any()
                        })
                }).into_any()}
                <g class="messages">
                    {keyed(
                        moving,
                        |dot: &Dot| dot.msg.to_string(),
                        move |dot: Dot| view! {
                        <g
                            class="message"
                            class:failed=move || dot.label.starts_with("503")
                            class:highlighted=move || is_highlighted(dot.msg)
                            class:dimmed=move || anything_highlighted() && !is_highlighted(dot.msg)
                            role="button"
                            aria-pressed=move || {
                                selected.selection.with(|s| *s == Selection::Message(MsgId(dot.msg))).to_string()
                            }
                            {listen::<leptos::ev::MouseEvent>("click", move |_| selected.toggle(Selection::Message(MsgId(dot.msg))))}
                            {listen::<leptos::ev::KeyboardEvent>("keydown", move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" {
                                    selected.toggle(Selection::Message(MsgId(dot.msg)));
                                }
                            })}
                            data-kind=dot.kind.name()
                            data-msg=dot.msg.to_string()
                            tabindex="0"
                            transform=move || position(dot.msg)
                        >
                            <title>{format!("{}: {} ({})", dot.route, dot.label, dot.kind.name())}</title>
                            {glyph(dot.kind.name())}
                            {show(move || labelled.get(), move || view! {
                                <text
                                    class="message-label"
                                    x=fixed(dot.label_x, 1).to_string()
                                    y=fixed(dot.label_y, 1).to_string()
                                    text-anchor=dot.label_anchor
                                    opacity=move || fixed(label_opacity(dot.msg), 2).to_string()
                                    aria-hidden="true"
                                >
                                    {dot.short_label.clone()}
                                </text>
                            }.into_inner().into_any())}
                        </g>
                        }.into_inner().into_any(),
                    )}
                </g>
                <g class="drops">
                    {keyed(
                        dropped,
                        |dot: &Dot| dot.msg.to_string(),
                        move |dot: Dot| view! {
                        <g
                            class="drop-mark"
                            data-msg=dot.msg.to_string()
                            transform=format!("translate({} {})", fixed(dot.x, 1), fixed(dot.y, 1))
                        >
                            <title>
                                {format!(
                                    "{}: {} dropped — {}",
                                    dot.route,
                                    dot.label,
                                    dot.dropped.map_or("", DropReason::describe),
                                )}
                            </title>
                            <circle class="drop-halo" r="15"/>
                            {glyph("dropped")}
                        </g>
                        }.into_inner().into_any(),
                    )}
                </g>
                {show(move || topology.with(Option::is_none), move || view! {
                    <text class="empty" x=shortest(VIEW_WIDTH / 2.0).to_string() y=shortest(VIEW_HEIGHT / 2.0).to_string()>
                        {move || run.status.with(RunStatus::map_placeholder).to_string()}
                    </text>
                }.into_inner().into_any())}
            </svg>
            <canvas
                {attr("id", "message-canvas")}
                class="message-canvas"
                {attr("role", "img")}
                {attr("aria-label", reactive(move || {
                    let n = canvas_count.get();
                    if n > 0 { format!("{n} messages in flight, too many to list one by one") } else { String::new() }
                }))}
                {attr("aria-hidden", reactive(move || (canvas_count.get() == 0).to_string()))}
                data-messages=move || canvas_count.get().to_string()
            ></canvas>
            </div>
            <figcaption>
                <p {attr("id", "narration")} class="narration" {attr("aria-live", "polite")}>
                    {move || narration.get().unwrap_or_default()}
                </p>
                <Legend/>
            </figcaption>
        </figure>
    }
    .into_inner()
}

/// Narrower than this, the map turns to portrait: tiers from top to bottom.
const NARROW_QUERY: &str = "(max-width: 640px)";
/// The person asked their system for less motion.
const REDUCED_MOTION_QUERY: &str = "(prefers-reduced-motion: reduce)";

/// Whether a media query matches, following the window as it changes.
fn media_signal(media_query: &str) -> Var<bool> {
    let Some(query) = window().match_media(media_query).ok().flatten() else {
        return Var::new(false);
    };
    let narrow = Var::new(query.matches());
    let on_change = {
        let query = query.clone();
        wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || narrow.set(query.matches()))
    };
    let callback: &js_sys::Function = wasm_bindgen::JsCast::unchecked_ref(on_change.as_ref());
    // Without the listener the map keeps its first orientation: still correct, just not ideal.
    let _ = query.add_event_listener_with_callback("change", callback);
    let listener = send_wrapper::SendWrapper::new((query, on_change));
    on_cleanup(move || {
        let (query, on_change) = listener.take();
        let callback: &js_sys::Function = wasm_bindgen::JsCast::unchecked_ref(on_change.as_ref());
        let _ = query.remove_event_listener_with_callback("change", callback);
    });
    narrow
}

/// One service's box.
#[component]
fn ServiceBox(
    info: ServiceInfo,
    left: f64,
    top: f64,
    services: Computed<Vec<ServiceView>>,
) -> impl IntoView {
    let index = info.id.0 as usize;
    let state = move || services.with(|all| all.get(index).cloned());
    let up = move || state().is_none_or(|s| s.up);
    let badge = move || state().and_then(|s| s.badge());
    let in_doubt = move || state().is_some_and(|s| s.queued == 0 && s.in_doubt > 0);
    // A service's own load (busy workers, waiting requests) when no queue or doubt says more.
    let load =
        move || state().is_some_and(|s| s.queued == 0 && s.in_doubt == 0 && s.load.is_some());
    let saturated = move || load() && state().is_some_and(|s| s.saturated());
    let (role, subtitle) = match info.role {
        ServiceRole::Client => ("client", "the users"),
        ServiceRole::Service => ("service", "own database"),
        ServiceRole::Broker => ("broker", "message broker"),
        ServiceRole::Coordinator => ("coordinator", "update log"),
    };
    let name = info.name.clone();
    let selected = page().selected;
    let selection = Selection::Service(name.clone());
    let is_selected = {
        let selection = selection.clone();
        move || selected.selection.with(|s| *s == selection)
    };
    let choose = {
        let selection = selection.clone();
        move || selected.toggle(selection.clone())
    };
    let choose_by_key = choose.clone();
    view! {
        <g
            {attr("class", format!("service role-{role}"))}
            class:down=move || !up()
            class:selected=is_selected.clone()
            data-service=name.clone()
            data-role=role
            transform=format!("translate({left} {top})", left = fixed(left, 1), top = fixed(top, 1))
            tabindex="0"
            role="button"
            aria-pressed=move || is_selected().to_string()
            aria-label=move || state().map(|s| s.aria_label()).unwrap_or_else(|| name.clone())
            {listen::<leptos::ev::MouseEvent>("click", move |_| choose())}
            {listen::<leptos::ev::KeyboardEvent>("keydown", move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    choose_by_key();
                }
            })}
        >
            <rect class="box" width=shortest(BOX_WIDTH).to_string() height=shortest(BOX_HEIGHT).to_string() rx="12"/>
            <text class="name" x=shortest(BOX_WIDTH / 2.0).to_string() y="32">{info.name.clone()}</text>
            <text class="subtitle" x=shortest(BOX_WIDTH / 2.0).to_string() y="53">{subtitle}</text>
            {show(move || !up(), move || view! {
                <g class="badge down-badge" transform=format!("translate({} -11)", fixed(BOX_WIDTH - 58.0, 1))>
                    <rect width="58" height="22" rx="11"/>
                    <text x="29" y="15.5">"DOWN"</text>
                </g>
            }.into_inner().into_any())}
            {show(move || badge().is_some(), move || view! {
                <g class="badge queue-badge" class:in-doubt-badge=in_doubt class:load-badge=load class:saturated-badge=saturated transform=format!("translate(0 {})", fixed(BOX_HEIGHT - 11.0, 1))>
                    // The pill grows with its text: one queue's count, or several queues'.
                    <rect width=move || fixed(badge_width(&badge().unwrap_or_default()), 0).to_string() height="22" rx="11"/>
                    <text x=move || fixed(badge_width(&badge().unwrap_or_default()) / 2.0, 0).to_string() y="15.5">
                        {move || badge().unwrap_or_default()}
                    </text>
                </g>
            }.into_inner().into_any())}
        </g>
    }
    .into_inner()
}

/// The width of a badge pill holding `text`, at the badge's font size.
fn badge_width(text: &str) -> f64 {
    (text.chars().count() as f64 * 7.0 + 22.0).max(92.0)
}

/// One link: a line, with a wider invisible band to click, selectable by mouse or keyboard.
#[component]
fn LinkLine(
    selection: Selection,
    a: crate::layout::Point,
    b: crate::layout::Point,
    /// The state of a circuit breaker on this link when it is not closed (`open`, `half-open`).
    circuit: Computed<Option<&'static str>>,
) -> impl IntoView {
    let selected = page().selected;
    let label = match &selection {
        Selection::Link(x, y) => format!("Link between {x} and {y}"),
        _ => String::new(),
    };
    let is_selected = {
        let selection = selection.clone();
        move || selected.selection.with(|s| *s == selection)
    };
    let choose = {
        let selection = selection.clone();
        move || selected.toggle(selection.clone())
    };
    let choose_by_key = choose.clone();
    let (x1, y1, x2, y2) = (
        fixed(a.x, 1).to_string(),
        fixed(a.y, 1).to_string(),
        fixed(b.x, 1).to_string(),
        fixed(b.y, 1).to_string(),
    );
    let data_link = selection.to_param();
    let (mid_x, mid_y) = (
        fixed((a.x + b.x) / 2.0, 1).to_string(),
        fixed((a.y + b.y) / 2.0 - 8.0, 1).to_string(),
    );
    view! {
        <g
            class="link-group"
            class:selected=is_selected.clone()
            data-link=data_link
            tabindex="0"
            role="button"
            aria-label=label
            aria-pressed=move || is_selected().to_string()
            {listen::<leptos::ev::MouseEvent>("click", move |_| choose())}
            {listen::<leptos::ev::KeyboardEvent>("keydown", move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    choose_by_key();
                }
            })}
        >
            <line class="link-hit" x1=x1.clone() y1=y1.clone() x2=x2.clone() y2=y2.clone()/>
            <line
                class="link"
                class:circuit-open=move || circuit.get() == Some("open")
                class:circuit-half-open=move || circuit.get() == Some("half-open")
                x1=x1
                y1=y1
                x2=x2
                y2=y2
            />
            {move || ({
                circuit
                    .get()
                    .map(|state| {
                        view! {
                            <text class="circuit-label" x=mid_x.clone() y=mid_y.clone() text-anchor="middle">
                                {format!("breaker {state}")}
                            </text>
                        }
                        .into_inner().into_any()
                    })
            }).into_any()}
        </g>
    }
    .into_inner()
}

/// What the canvas painter reads.
struct PainterInputs {
    topology: Computed<Option<(Layout, Vec<ServiceInfo>)>>,
    run: RunHandle,
    clock: Clock,
    selected: Selected,
    reduced_motion: Var<bool>,
    canvas_count: Var<usize>,
}

/// Registers the canvas painter for the frame loop, for as long as the map is shown.
fn register_painter(inputs: PainterInputs) {
    // Bumped whenever the highlight changes, so a paused page repaints only when it must.
    let highlight_epoch = Rc::new(Cell::new(0u64));
    {
        let epoch = highlight_epoch.clone();
        let epoch = send_wrapper::SendWrapper::new(epoch);
        effect(move |_| {
            inputs.selected.highlight.track();
            epoch.set(epoch.get() + 1);
        });
    }
    let last = RefCell::new(PaintKey::default());
    let raster = RefCell::new(crate::raster::Raster::default());
    let painter = move || {
        let Some(canvas) = element::<web_sys::HtmlCanvasElement>("#message-canvas") else {
            return;
        };
        let t = inputs.clock.now.get_untracked();
        let speed = inputs.clock.player.with_untracked(|p| p.speed());
        let flash = Micros::from_millis_f64(DROP_FLASH_SCREEN_MS * speed);
        let revision = inputs.run.revision_untracked();
        let size = (canvas.client_width() as u32, canvas.client_height() as u32);
        let key_scene = (t.0, revision, highlight_epoch.get());
        if last.borrow().scene == key_scene && last.borrow().size == size {
            return;
        }
        let painted = inputs.topology.with_untracked(|topology| {
            let Some((layout, _)) = topology else {
                message_canvas::clear(&canvas);
                return 0;
            };
            inputs
                .run
                .read_untracked(|index| {
                    let flights = index.messages_in_flight_at(t, flash);
                    if flights.len() <= CANVAS_FROM_MESSAGES {
                        message_canvas::clear(&canvas);
                        return 0;
                    }
                    inputs.selected.highlight.with_untracked(|highlight| {
                        message_canvas::paint_flights(
                            &canvas,
                            &mut raster.borrow_mut(),
                            layout,
                            &flights,
                            highlight,
                            inputs.reduced_motion.get_untracked(),
                        )
                    })
                })
                .unwrap_or(0)
        });
        *last.borrow_mut() = PaintKey {
            scene: key_scene,
            size,
        };
        if inputs.canvas_count.get_untracked() != painted {
            inputs.canvas_count.set(painted);
        }
    };
    message_canvas::set_painter(Some(Box::new(painter)));
    on_cleanup(|| message_canvas::set_painter(None));
}

/// What the shapes and colours mean.
#[component]
fn Legend() -> impl IntoView {
    let items = [
        ("request", "request"),
        ("response", "response"),
        ("event", "event"),
        ("ack", "ack"),
        ("rollback", "rollback or abort"),
        ("dropped", "dropped"),
    ];
    view! {
        <ul class="legend" {attr("aria-label", "Legend")}>
            {items
                .into_iter()
                .map(|(kind, text)| {
                    view! {
                        <li>
                            <svg class="legend-glyph" viewBox="-13 -13 26 26" aria-hidden="true">
                                {glyph(kind)}
                            </svg>
                            {text}
                        </li>
                    }
                    .into_inner().into_any()
                })
                .map(IntoAny::into_any).collect::<Vec<AnyView>>()}
        </ul>
    }
    .into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(lane: (u16, u16), centre: f64, extent: f64) -> LabelSpan {
        LabelSpan {
            lane,
            centre,
            extent,
        }
    }

    #[test]
    fn labels_that_would_overlap_on_a_lane_show_only_the_one_furthest_along() {
        // Two 14-character labels (about 102 units each) 30 units apart on Client → Order, a
        // third far behind them, and one going back the other way beside the first.
        let spans = [
            span((0, 1), 60.0, 102.0),
            span((0, 1), 90.0, 102.0),
            span((0, 1), -60.0, 102.0),
            span((1, 0), 90.0, 102.0),
        ];
        assert_eq!(labels_apart(&spans), [false, true, true, true]);
    }

    #[test]
    fn labels_far_enough_apart_are_all_drawn_and_none_is_drawn_for_nothing() {
        // Beside a vertical link a label takes one line: 20 units apart is room enough.
        let spans = [
            span((2, 3), 40.0, LABEL_LINE_HEIGHT),
            span((2, 3), 60.0, LABEL_LINE_HEIGHT),
        ];
        assert_eq!(labels_apart(&spans), [true, true]);
        // Exactly at the gap fits; a hair closer does not.
        let apart = LABEL_LINE_HEIGHT + LABEL_GAP;
        let at_the_gap = [
            span((2, 3), 0.0, LABEL_LINE_HEIGHT),
            span((2, 3), apart, LABEL_LINE_HEIGHT),
        ];
        assert_eq!(labels_apart(&at_the_gap), [true, true]);
        let closer = [
            span((2, 3), 0.0, LABEL_LINE_HEIGHT),
            span((2, 3), apart - 0.1, LABEL_LINE_HEIGHT),
        ];
        assert_eq!(labels_apart(&closer), [false, true]);
        assert!(labels_apart(&[]).is_empty());
    }
}
