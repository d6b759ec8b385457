//! The sequence (space-time) diagram as plain data: one lifeline per service across, time
//! running down over a window that ends at the playhead, and each message as an arrow from its
//! sender at its send time to its receiver at its arrival — or as far as it has got.
//!
//! The page draws the arrows as a few paths, one per kind and look ([`PENS`]), not as one
//! element each: hundreds of arrows change every frame, and one element per arrow made the
//! page diff, create and lay out hundreds of elements per frame. [`SequenceModel::arrow_at`]
//! finds the arrow under the pointer, so each can still be pointed at and selected.

use crate::selection::Highlight;
use crate::trace_index::{SpanEnd, TraceIndex};
use shared::float_text::fixed;
use shared::protocol::MessageKind;
use shared::time::Micros;
use std::fmt::Write;

/// The diagram's width in viewBox units.
pub const SEQUENCE_WIDTH: f64 = 640.0;
/// The diagram's height in viewBox units.
pub const SEQUENCE_HEIGHT: f64 = 360.0;
/// Room at the top for the services' names.
const HEAD: f64 = 34.0;
/// Room at the sides.
const SIDE: f64 = 50.0;
/// The most arrows drawn: the latest ones win. Past this, a diagram is a smear.
pub const ARROWS_MAX: usize = 400;

/// How much trace time the diagram shows at `speed`: about four seconds of screen time, so an
/// arrow takes a while to scroll off, within 0.4 s to 20 s of trace time.
pub fn window_for_speed(speed: f64) -> Micros {
    Micros::from_secs_f64((4.0 * speed).clamp(0.4, 20.0))
}

/// One service's lifeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifeline {
    /// The service's name.
    pub name: String,
    /// Where it runs across.
    pub x: f64,
}

/// One message's arrow.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    /// The message.
    pub msg: u64,
    /// Its kind.
    pub kind: MessageKind,
    /// Start, at the sender.
    pub x1: f64,
    /// Start time, as a height on the diagram's timeline (add [`SequenceModel::offset`] for
    /// the height on screen). Fixed for a message once sent, so the diagram scrolls by moving
    /// the timeline, not by redrawing every arrow.
    pub y1: f64,
    /// End: the receiver, or as far as it got by the playhead.
    pub x2: f64,
    /// End time, as a height on the timeline.
    pub y2: f64,
    /// It reached its receiver (by the playhead).
    pub arrived: bool,
    /// It died.
    pub dropped: bool,
    /// The selection highlights it.
    pub highlighted: bool,
}

/// The diagram at a moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceModel {
    /// One per service.
    pub lifelines: Vec<Lifeline>,
    /// The messages in the window.
    pub arrows: Vec<Arrow>,
    /// The window's start and end (the playhead).
    pub window: (Micros, Micros),
    /// Where the timeline sits: a height on it plus this is the height on screen. Whatever is
    /// above [`HEAD`] on screen is before the window and is clipped.
    pub offset: f64,
}

/// Room at the top of the diagram for the services' names: arrows are clipped below it.
pub const HEAD_HEIGHT: f64 = HEAD;

/// The diagram over `window` ending at `t`.
pub fn build(
    index: &TraceIndex,
    t: Micros,
    window: Micros,
    highlight: &Highlight,
) -> SequenceModel {
    let services = &index.header().services;
    let n = services.len().max(1);
    let spacing = (SEQUENCE_WIDTH - 2.0 * SIDE) / (n.saturating_sub(1).max(1)) as f64;
    let x_of = |i: usize| {
        if n == 1 {
            SEQUENCE_WIDTH / 2.0
        } else {
            SIDE + spacing * i as f64
        }
    };
    let lifelines = services
        .iter()
        .enumerate()
        .map(|(i, s)| Lifeline {
            name: s.name.clone(),
            x: x_of(i),
        })
        .collect();
    let start = t.saturating_sub(window);
    let per_us = (SEQUENCE_HEIGHT - HEAD) / window.0.max(1) as f64;
    let y_of = |at: Micros| at.min(t).0 as f64 * per_us;
    // The latest arrows win; only those are drawn.
    let mut shown: Vec<_> = index
        .latest_spans_touching(start, t, ARROWS_MAX)
        .filter(|span| (span.from.0 as usize) < n && (span.to.0 as usize) < n)
        .collect();
    shared::ordered::sort_by_key(&mut shown, |span| span.msg);
    let arrows: Vec<Arrow> = shown
        .into_iter()
        .map(|span| {
            let (from, to) = (span.from.0 as usize, span.to.0 as usize);
            let (end, dropped) = match span.end {
                SpanEnd::Open => (None, false),
                SpanEnd::Delivered(at) => (Some(at), false),
                SpanEnd::Dropped(at, _) => (Some(at), true),
            };
            let arrived = end.is_some_and(|at| at <= t);
            // In flight: the arrow reaches as far as the message has, at the same pace as its
            // whole journey (or the expected hop while its end is unknown).
            let journey = end.unwrap_or(span.sent_at + index.expected_hop());
            let shown_end = journey.min(t);
            let fraction = if journey > span.sent_at {
                (shown_end - span.sent_at).0 as f64 / (journey - span.sent_at).0 as f64
            } else {
                1.0
            };
            let (x1, x2_full) = (x_of(from), x_of(to));
            Arrow {
                msg: span.msg.0,
                kind: span.kind,
                x1,
                y1: y_of(span.sent_at),
                x2: x1 + (x2_full - x1) * fraction.clamp(0.0, 1.0),
                y2: y_of(shown_end),
                arrived,
                dropped: dropped && arrived,
                highlighted: highlight.has(span.msg),
            }
        })
        .collect();
    SequenceModel {
        lifelines,
        arrows,
        window: (start, t),
        offset: HEAD - start.0 as f64 * per_us,
    }
}

/// How an arrow is drawn.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Look {
    /// In its kind's colour.
    Plain,
    /// It died: in the failure colour, thicker, with no head.
    Dropped,
    /// The selection highlights it: black and thickest.
    Highlighted,
}

impl Look {
    /// Its CSS class, beside the kind's.
    pub fn class(self) -> &'static str {
        match self {
            Look::Plain => "plain",
            Look::Dropped => "dropped",
            Look::Highlighted => "highlighted",
        }
    }
}

/// One path of the diagram: the lines of every arrow of one kind and look, or their heads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Pen {
    /// The messages' kind.
    pub kind: MessageKind,
    /// How they are drawn.
    pub look: Look,
    /// The heads of arrived arrows (filled), rather than the lines (stroked).
    pub heads: bool,
}

const KINDS: [MessageKind; 5] = [
    MessageKind::Request,
    MessageKind::Response,
    MessageKind::Event,
    MessageKind::Ack,
    MessageKind::Rollback,
];

/// Every path the diagram draws, in drawing order: lines, then dropped ones, then the
/// highlighted ones on top, each followed by its heads. A dropped arrow has no head.
pub const PENS: [Pen; 25] = {
    let looks = [Look::Plain, Look::Dropped, Look::Highlighted];
    let mut pens = [Pen {
        kind: MessageKind::Request,
        look: Look::Plain,
        heads: false,
    }; 25];
    let mut i = 0;
    let mut l = 0;
    while l < looks.len() {
        let mut k = 0;
        while k < KINDS.len() {
            pens[i] = Pen {
                kind: KINDS[k],
                look: looks[l],
                heads: false,
            };
            i += 1;
            if !matches!(looks[l], Look::Dropped) {
                pens[i] = Pen {
                    kind: KINDS[k],
                    look: looks[l],
                    heads: true,
                };
                i += 1;
            }
            k += 1;
        }
        l += 1;
    }
    pens
};

/// An arrow's head: how long, and how wide on either side, in viewBox units.
const HEAD_LENGTH: f64 = 9.0;
const HEAD_HALF_WIDTH: f64 = 4.0;
/// How near the pointer must come to an arrow to point at it, in viewBox units.
const POINTING_DISTANCE: f64 = 6.0;

impl Arrow {
    /// How it is drawn.
    pub fn look(&self) -> Look {
        if self.highlighted {
            Look::Highlighted
        } else if self.dropped {
            Look::Dropped
        } else {
            Look::Plain
        }
    }

    fn has_head(&self) -> bool {
        self.arrived && !self.dropped
    }

    /// The path data of its line, on the timeline.
    fn write_line(&self, d: &mut String) {
        let _ = write!(
            d,
            "M{} {}L{} {}",
            fixed(self.x1, 1),
            fixed(self.y1, 2),
            fixed(self.x2, 1),
            fixed(self.y2, 2)
        );
    }

    /// The path data of its head, a triangle whose tip is the arrow's end.
    fn write_head(&self, d: &mut String) {
        let (dx, dy) = (self.x2 - self.x1, self.y2 - self.y1);
        let length = dx.hypot(dy);
        if length < 1e-9 {
            return;
        }
        let (ux, uy) = (dx / length, dy / length);
        let (bx, by) = (self.x2 - ux * HEAD_LENGTH, self.y2 - uy * HEAD_LENGTH);
        let (px, py) = (-uy * HEAD_HALF_WIDTH, ux * HEAD_HALF_WIDTH);
        let _ = write!(
            d,
            "M{} {}L{} {}L{} {}Z",
            fixed(self.x2, 1),
            fixed(self.y2, 2),
            fixed(bx + px, 1),
            fixed(by + py, 2),
            fixed(bx - px, 1),
            fixed(by - py, 2)
        );
    }

    /// How far the point (`x`, `y`) on screen is from the arrow when the timeline sits at
    /// `offset`.
    fn distance_to(&self, x: f64, y: f64, offset: f64) -> f64 {
        let (ax, ay, bx, by) = (self.x1, self.y1 + offset, self.x2, self.y2 + offset);
        let (dx, dy) = (bx - ax, by - ay);
        let length_squared = dx * dx + dy * dy;
        let along = if length_squared < 1e-12 {
            0.0
        } else {
            (((x - ax) * dx + (y - ay) * dy) / length_squared).clamp(0.0, 1.0)
        };
        (x - (ax + along * dx)).hypot(y - (ay + along * dy))
    }
}

impl SequenceModel {
    /// The path data of every pen in [`PENS`], in that order, on the timeline.
    pub fn paths(&self) -> Vec<String> {
        let mut paths = vec![String::new(); PENS.len()];
        for arrow in &self.arrows {
            let look = arrow.look();
            for (pen, d) in PENS.iter().zip(paths.iter_mut()) {
                if pen.kind != arrow.kind || pen.look != look {
                    continue;
                }
                if !pen.heads {
                    arrow.write_line(d);
                } else if arrow.has_head() {
                    arrow.write_head(d);
                }
            }
        }
        paths
    }

    /// The arrow nearest the point (`x`, `y`) in the diagram's viewBox units, if one passes
    /// within a few units of it below the services' names.
    pub fn arrow_at(&self, x: f64, y: f64) -> Option<&Arrow> {
        if y < HEAD {
            return None;
        }
        self.arrows
            .iter()
            .map(|arrow| (arrow.distance_to(x, y, self.offset), arrow))
            .filter(|(distance, _)| *distance <= POINTING_DISTANCE)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, arrow)| arrow)
    }
}

/// `From → To: label (kind)`, for the arrow of `msg`, as its tooltip says.
pub fn describe_arrow(index: &TraceIndex, msg: shared::protocol::MsgId) -> Option<String> {
    let span = index.span(msg)?;
    Some(format!(
        "{} → {}: {} ({})",
        index.service_name(span.from),
        index.service_name(span.to),
        span.label,
        span.kind.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::causation_chain;
    use shared::protocol::RunRequest;

    fn index() -> TraceIndex {
        let request = RunRequest {
            scenario: "request-response".into(),
            seed: 4,
            until_s: 8.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        TraceIndex::complete(trace.header, trace.events)
    }

    #[test]
    fn arrows_run_from_send_to_arrival_inside_the_window() {
        let index = index();
        let t = Micros::from_secs(5);
        let window = Micros::from_millis(800);
        let model = build(&index, t, window, &Highlight::default());
        assert_eq!(model.lifelines.len(), index.header().services.len());
        assert!(!model.arrows.is_empty());
        for arrow in &model.arrows {
            let span = index.span(shared::protocol::MsgId(arrow.msg)).unwrap();
            assert!(span.sent_at <= t, "nothing from the future");
            assert!(span.ended_at().is_none_or(|end| end >= t - window));
            // On screen: it starts above the playhead and ends below the names (it may start
            // above them, before the window, where it is clipped).
            assert!(
                arrow.y1 + model.offset <= SEQUENCE_HEIGHT + 1e-6,
                "{arrow:?}"
            );
            assert!(arrow.y2 + model.offset >= HEAD - 1e-6, "{arrow:?}");
            assert!(arrow.y1 <= arrow.y2, "time runs down: {arrow:?}");
            if arrow.arrived {
                let to = model.lifelines[span.to.0 as usize].x;
                assert_eq!(arrow.x2, to, "an arrived arrow reaches its receiver");
            }
        }
        // Every span in the window is drawn.
        let expected = index
            .spans()
            .filter(|s| s.sent_at <= t && s.ended_at().is_none_or(|e| e >= t - window))
            .count();
        assert_eq!(model.arrows.len(), expected.min(ARROWS_MAX));
    }

    #[test]
    fn a_message_in_flight_reaches_part_way_and_highlights_follow_the_selection() {
        let index = index();
        let span = index
            .spans()
            .find(|s| s.sent_at > Micros::from_secs(2) && s.ended_at().is_some())
            .unwrap();
        let end = span.ended_at().unwrap();
        let mid = Micros((span.sent_at.0 + end.0) / 2);
        let chain = causation_chain(&index, span.msg);
        let model = build(&index, mid, Micros::from_secs(1), &chain);
        let arrow = model.arrows.iter().find(|a| a.msg == span.msg.0).unwrap();
        assert!(!arrow.arrived);
        assert!(arrow.highlighted);
        let (from, to) = (
            model.lifelines[span.from.0 as usize].x,
            model.lifelines[span.to.0 as usize].x,
        );
        let halfway = (from + to) / 2.0;
        assert!(
            (arrow.x2 - halfway).abs() < 2.0,
            "{} vs {halfway}",
            arrow.x2
        );
        assert!(model.arrows.iter().filter(|a| a.highlighted).count() <= chain.messages.len());
    }

    #[test]
    fn arrows_keep_their_place_on_the_timeline_as_the_playhead_moves() {
        let index = index();
        let window = Micros::from_secs(1);
        let at = |ms| {
            build(
                &index,
                Micros::from_millis(ms),
                window,
                &Highlight::default(),
            )
        };
        let (before, after) = (at(5_000), at(5_200));
        let arrived = |m: &SequenceModel| -> Vec<(u64, u64, u64)> {
            m.arrows
                .iter()
                .filter(|a| a.arrived)
                .map(|a| (a.msg, a.y1.to_bits(), a.y2.to_bits()))
                .collect()
        };
        let shared: Vec<_> = arrived(&before)
            .into_iter()
            .filter(|a| arrived(&after).contains(a))
            .collect();
        assert!(!shared.is_empty(), "arrows drawn at both times, unchanged");
        // The timeline moved up by 200 ms' worth of height.
        let moved = before.offset - after.offset;
        assert!(
            (moved - 0.2 * (SEQUENCE_HEIGHT - HEAD)).abs() < 1e-6,
            "{moved}"
        );
    }

    #[test]
    fn the_window_follows_the_speed() {
        assert_eq!(window_for_speed(0.1), Micros::from_millis(400));
        assert_eq!(window_for_speed(1.0), Micros::from_secs(4));
        assert_eq!(window_for_speed(10.0), Micros::from_secs(20));
    }
}
