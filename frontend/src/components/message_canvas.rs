//! The Canvas layer for messages: once more than [`CANVAS_FROM_MESSAGES`] are in flight, the
//! map stops drawing each message as an SVG element and paints them all on one canvas laid over
//! it, once per animation frame, so thousands stay smooth. Services and links stay in SVG.
//!
//! The canvas is painted from the frame loop ([`paint`]), not from a reactive effect, so the
//! painting happens exactly once per frame, after the clock advanced; the pixels are set in
//! WebAssembly ([`Raster`]) and handed over as one image.

use crate::layout::{Layout, shown_progress};
use crate::raster::{Raster, Rgba, Shape};
use crate::selection::Highlight;
use crate::trace_index::{Flight, FlightState};
use shared::protocol::MessageKind;
use std::cell::RefCell;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

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
fn fill(kind: MessageKind) -> Rgba {
    match kind {
        MessageKind::Request => [0x00, 0x72, 0xb2, 0xff],
        MessageKind::Response => [0x00, 0x9e, 0x73, 0xff],
        MessageKind::Event => [0xe6, 0x9f, 0x00, 0xff],
        MessageKind::Ack => [0x7c, 0x82, 0x8d, 0xff],
        MessageKind::Rollback => [0xcc, 0x79, 0xa7, 0xff],
    }
}

fn shape(kind: MessageKind) -> Shape {
    match kind {
        MessageKind::Request | MessageKind::Response => Shape::Circle,
        // The SVG map draws rollbacks as triangles; on the canvas the purple diamond tells them
        // apart from orange events.
        MessageKind::Event | MessageKind::Rollback => Shape::Diamond,
        MessageKind::Ack => Shape::Square,
    }
}

const OUTLINE: Rgba = [0xff, 0xff, 0xff, 0xff];
const FAILURE: Rgba = [0xd5, 0x5e, 0x00, 0xff];
const HIGHLIGHT: Rgba = [0x00, 0x00, 0x00, 0xff];

/// What the last paint showed, so a paused page does not repaint the same picture every frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaintKey {
    /// The playhead, the run's revision and the selection's version.
    pub scene: (u64, u64, u64),
    /// The canvas's size in CSS pixels.
    pub size: (u32, u32),
}

/// Paints `flights` on `canvas`, which lies exactly over an SVG showing `layout` (scaled to fit,
/// centred, as SVG's default `preserveAspectRatio` does), through `raster`. Returns how many it
/// painted.
pub fn paint_flights(
    canvas: &HtmlCanvasElement,
    raster: &mut Raster,
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
    if width == 0 || height == 0 || layout.width() == 0.0 {
        return 0;
    }
    raster.reset(width, height);
    // From viewBox units to device pixels.
    let scale = (css_width / layout.width()).min(css_height / layout.height()) * ratio;
    let left = (f64::from(width) - layout.width() * scale) / 2.0;
    let top = (f64::from(height) - layout.height() * scale) / 2.0;
    let radius = (5.0 * scale).max(2.0);
    let mut painted = 0;
    for flight in flights {
        let progress = match flight.state {
            FlightState::Moving => shown_progress(flight.progress, reduced_motion),
            FlightState::Dropped(_) => 1.0,
        };
        let Some(point) = layout.message_position(flight.from, flight.to, progress) else {
            continue;
        };
        let (x, y) = (left + point.x * scale, top + point.y * scale);
        match flight.state {
            FlightState::Moving => {
                let ring = if highlight.has(flight.msg) {
                    (HIGHLIGHT, radius + 2.5 * ratio)
                } else {
                    (OUTLINE, radius + ratio)
                };
                raster.draw(shape(flight.kind), x, y, ring.1, ring.0);
                raster.draw(shape(flight.kind), x, y, radius, fill(flight.kind));
            }
            FlightState::Dropped(_) => {
                raster.draw(Shape::Cross, x, y, radius * 1.5, FAILURE);
            }
        }
        painted += 1;
    }
    match ImageData::new_with_u8_clamped_array_and_sh(Clamped(raster.pixels()), width, height) {
        Ok(image) => {
            let _ = context.put_image_data(&image, 0.0, 0.0);
            painted
        }
        Err(_) => 0,
    }
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
