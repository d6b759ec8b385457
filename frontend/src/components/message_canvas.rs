//! The Canvas layer for messages: once more than [`CANVAS_FROM_MESSAGES`] are in flight, the
//! map stops drawing each message as an SVG element and paints them all on one canvas laid over
//! it, once per animation frame, so thousands stay smooth. Services and links stay in SVG.
//!
//! The canvas is painted from the frame loop ([`paint`]), not from a reactive effect, so the
//! painting happens exactly once per frame, after the clock advanced.

use crate::layout::{Layout, shown_progress};
use crate::selection::Highlight;
use crate::trace_index::{Flight, FlightState};
use shared::protocol::MessageKind;
use std::cell::RefCell;
use std::f64::consts::TAU;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

/// With more messages in flight than this, they are painted on the canvas instead of drawn as
/// SVG elements (each with its tooltip and focus): past a few dozen, no one reads them one by
/// one, and the DOM would slow the page down.
pub const CANVAS_FROM_MESSAGES: usize = 40;

thread_local! {
    static PAINTER: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Sets what [`paint`] does: the map registers its painter when it mounts and clears it when
/// it goes.
pub fn set_painter(painter: Option<Box<dyn Fn()>>) {
    PAINTER.with(|p| *p.borrow_mut() = painter);
}

/// Paints the canvas for the current frame, if a map is shown.
pub fn paint() {
    PAINTER.with(|p| {
        if let Some(painter) = p.borrow().as_ref() {
            painter();
        }
    });
}

/// The fill of each kind, as in `style.css` (the Okabe–Ito palette, safe for colour-blind eyes;
/// the shapes differ too).
fn fill(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Request => "#0072b2",
        MessageKind::Response => "#009e73",
        MessageKind::Event => "#e69f00",
        MessageKind::Ack => "#7c828d",
    }
}

const FAILURE: &str = "#d55e00";
const HIGHLIGHT: &str = "#000000";

/// What the last paint showed, so a paused page does not repaint the same picture every frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaintKey {
    /// The playhead, the run's revision and the selection's version.
    pub scene: (u64, u64, u64),
    /// The canvas's size in CSS pixels.
    pub size: (u32, u32),
}

/// Paints `flights` on `canvas`, which lies exactly over an SVG showing `layout` (scaled to fit,
/// centred, as SVG's default `preserveAspectRatio` does). Returns how many it painted.
pub fn paint_flights(
    canvas: &HtmlCanvasElement,
    layout: &Layout,
    flights: &[Flight<'_>],
    highlight: &Highlight,
    reduced_motion: bool,
) -> usize {
    let Some(context) = context_2d(canvas) else {
        return 0;
    };
    let ratio = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
    let (css_width, css_height) = (
        f64::from(canvas.client_width()),
        f64::from(canvas.client_height()),
    );
    let (width, height) = (
        (css_width * ratio).round() as u32,
        (css_height * ratio).round() as u32,
    );
    if canvas.width() != width || canvas.height() != height {
        canvas.set_width(width);
        canvas.set_height(height);
    }
    // Reset and clear in device pixels, then draw in the SVG's viewBox units.
    let _ = context.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
    context.clear_rect(0.0, 0.0, f64::from(width), f64::from(height));
    if flights.is_empty() || css_width == 0.0 || layout.width() == 0.0 {
        return 0;
    }
    let scale = (css_width / layout.width()).min(css_height / layout.height());
    let left = (css_width - layout.width() * scale) / 2.0;
    let top = (css_height - layout.height() * scale) / 2.0;
    let _ = context.set_transform(
        ratio * scale,
        0.0,
        0.0,
        ratio * scale,
        ratio * left,
        ratio * top,
    );
    let place = |flight: &Flight<'_>| {
        let progress = match flight.state {
            FlightState::Moving => shown_progress(flight.progress, reduced_motion),
            FlightState::Dropped(_) => 1.0,
        };
        layout.message_position(flight.from, flight.to, progress)
    };
    // One path per kind, filled once: a few draw calls for thousands of messages.
    let kinds = [
        MessageKind::Request,
        MessageKind::Response,
        MessageKind::Event,
        MessageKind::Ack,
    ];
    let mut painted = 0;
    context.set_stroke_style_str("#ffffff");
    context.set_line_width(1.2);
    for kind in kinds {
        context.begin_path();
        for flight in flights
            .iter()
            .filter(|f| f.kind == kind && f.state == FlightState::Moving)
        {
            if let Some(point) = place(flight) {
                glyph_path(&context, kind, point.x, point.y, 1.0);
                painted += 1;
            }
        }
        // Outline first, then fill: where messages crowd, the colours stay visible instead of
        // the outlines covering them.
        context.stroke();
        context.set_fill_style_str(fill(kind));
        context.fill();
    }
    // Highlighted messages get a dark ring, drawn over the rest.
    if !highlight.messages.is_empty() {
        context.begin_path();
        for flight in flights.iter().filter(|f| highlight.has(f.msg)) {
            if let Some(point) = place(flight) {
                glyph_path(&context, flight.kind, point.x, point.y, 1.5);
            }
        }
        context.set_stroke_style_str(HIGHLIGHT);
        context.set_line_width(3.0);
        context.stroke();
    }
    // Drops as a vermillion ✕.
    context.begin_path();
    for flight in flights
        .iter()
        .filter(|f| matches!(f.state, FlightState::Dropped(_)))
    {
        if let Some(point) = place(flight) {
            context.move_to(point.x - 7.0, point.y - 7.0);
            context.line_to(point.x + 7.0, point.y + 7.0);
            context.move_to(point.x + 7.0, point.y - 7.0);
            context.line_to(point.x - 7.0, point.y + 7.0);
            painted += 1;
        }
    }
    context.set_stroke_style_str(FAILURE);
    context.set_line_width(3.0);
    context.stroke();
    painted
}

/// Clears the canvas.
pub fn clear(canvas: &HtmlCanvasElement) {
    if let Some(context) = context_2d(canvas) {
        let _ = context.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
        context.clear_rect(
            0.0,
            0.0,
            f64::from(canvas.width()),
            f64::from(canvas.height()),
        );
    }
}

fn context_2d(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

/// Adds one message's shape to the current path, as the SVG glyphs draw it (smaller: many
/// messages share the links): circles for requests and responses, a diamond for events, a
/// square for acks.
fn glyph_path(context: &CanvasRenderingContext2d, kind: MessageKind, x: f64, y: f64, grow: f64) {
    match kind {
        MessageKind::Request | MessageKind::Response => {
            let r = 5.0 * grow;
            context.move_to(x + r, y);
            let _ = context.arc(x, y, r, 0.0, TAU);
        }
        MessageKind::Event => {
            let r = 6.5 * grow;
            context.move_to(x, y - r);
            context.line_to(x + r, y);
            context.line_to(x, y + r);
            context.line_to(x - r, y);
            context.close_path();
        }
        MessageKind::Ack => {
            let half = 4.0 * grow;
            context.rect(x - half, y - half, 2.0 * half, 2.0 * half);
        }
    }
}
