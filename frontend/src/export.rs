//! What the page exports: the trace as JSON lines, a standalone SVG of the map at the playhead,
//! and a Mermaid sequence diagram of one operation.

use crate::layout::{BOX_HEIGHT, BOX_WIDTH, Layout};
use crate::trace_index::{FlightState, SpanEnd, TraceIndex};
use crate::view_model::ServiceView;
use shared::float_text::{fixed, shortest};
use shared::protocol::{MessageKind, OpId, Trace};
use shared::time::Micros;
use std::fmt::Write;

/// The trace as JSON lines, exactly as `crosstalk simulate --format jsonl` writes it, so a
/// downloaded file plays again as a recorded source and hashes the same.
pub fn jsonl(index: &TraceIndex) -> String {
    Trace {
        header: index.header().clone(),
        events: index.events().to_vec(),
    }
    .to_jsonl()
}

/// A file name for exports of `index`: `crosstalk-<scenario>-seed<seed>`.
pub fn file_stem(index: &TraceIndex) -> String {
    let header = index.header();
    let scenario: String = header
        .scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("crosstalk-{scenario}-seed{}", header.seed)
}

/// The fill of a message kind in exports (the page's Okabe–Ito palette).
fn kind_fill(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Request => "#0072b2",
        MessageKind::Response => "#009e73",
        MessageKind::Event => "#e69f00",
        MessageKind::Ack => "#7c828d",
        MessageKind::Rollback => "#cc79a7",
    }
}

/// A standalone SVG of the map at `t`: services (down ones dashed), links, and every message in
/// flight, styled inline so it shows the same anywhere.
pub fn map_svg(index: &TraceIndex, layout: &Layout, services: &[ServiceView], t: Micros) -> String {
    let mut svg = String::new();
    let (w, h) = (layout.width(), layout.height());
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" font-family=\"system-ui, sans-serif\">\n<title>{} at t = {} s</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        xml(&index.header().scenario),
        fixed(t.as_secs_f64(), 3),
        w = fixed(w, 0),
        h = fixed(h, 0)
    );
    for (_, _, a, b) in layout.link_segments() {
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#c9cfd8\" \
             stroke-width=\"2.5\"/>",
            fixed(a.x, 1),
            fixed(a.y, 1),
            fixed(b.x, 1),
            fixed(b.y, 1)
        );
    }
    for service in services {
        let Some(place) = layout.service_box(service.id) else {
            continue;
        };
        let (stroke, dash) = if service.up {
            ("#8d97a7", "")
        } else {
            ("#d55e00", " stroke-dasharray=\"9 5\"")
        };
        let _ = writeln!(
            svg,
            "<g class=\"service\" transform=\"translate({} {})\"><rect width=\"{BOX_WIDTH}\" \
             height=\"{BOX_HEIGHT}\" rx=\"12\" fill=\"#ffffff\" stroke=\"{stroke}\" \
             stroke-width=\"1.6\"{dash}/><text x=\"{}\" y=\"42\" text-anchor=\"middle\" \
             font-size=\"21\" font-weight=\"650\" fill=\"#1b2230\">{}</text></g>",
            fixed(place.left(), 1),
            fixed(place.top(), 1),
            fixed(BOX_WIDTH / 2.0, 1),
            xml(&service.name),
            BOX_WIDTH = shortest(BOX_WIDTH),
            BOX_HEIGHT = shortest(BOX_HEIGHT)
        );
    }
    for flight in index.messages_in_flight_at(t, Micros::ZERO) {
        if flight.state != FlightState::Moving {
            continue;
        }
        let Some(p) = layout.message_position(flight.from, flight.to, flight.progress) else {
            continue;
        };
        let fill = kind_fill(flight.kind);
        let shape = match flight.kind {
            MessageKind::Request | MessageKind::Response => {
                format!(
                    "<circle cx=\"{}\" cy=\"{}\" r=\"9\"",
                    fixed(p.x, 1),
                    fixed(p.y, 1)
                )
            }
            MessageKind::Event => format!(
                "<polygon points=\"{},{} {},{} {},{} {},{}\"",
                fixed(p.x, 1),
                fixed(p.y - 12.0, 1),
                fixed(p.x + 12.0, 1),
                fixed(p.y, 1),
                fixed(p.x, 1),
                fixed(p.y + 12.0, 1),
                fixed(p.x - 12.0, 1),
                fixed(p.y, 1)
            ),
            MessageKind::Ack => format!(
                "<rect x=\"{}\" y=\"{}\" width=\"11\" height=\"11\"",
                fixed(p.x - 5.5, 1),
                fixed(p.y - 5.5, 1)
            ),
            MessageKind::Rollback => format!(
                "<polygon points=\"{},{} {},{} {},{}\"",
                fixed(p.x, 1),
                fixed(p.y - 11.0, 1),
                fixed(p.x + 10.0, 1),
                fixed(p.y + 8.0, 1),
                fixed(p.x - 10.0, 1),
                fixed(p.y + 8.0, 1)
            ),
        };
        let _ = writeln!(
            svg,
            "{shape} class=\"message\" fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"1.6\">\
             <title>{}</title></{}>",
            xml(flight.label),
            shape[1..].split(' ').next().unwrap_or("circle"),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A Mermaid sequence diagram of operation `op`: its messages in the order they were sent,
/// requests as solid arrows, responses dashed, events asynchronous, drops crossed.
pub fn mermaid(index: &TraceIndex, op: OpId) -> Result<String, String> {
    let spans: Vec<_> = index.spans().filter(|s| s.op == Some(op)).collect();
    if spans.is_empty() {
        return Err(format!("operation {} has no messages in this trace", op.0));
    }
    let mut out = String::from("sequenceDiagram\n");
    if let Some((name, _)) = index.op(op) {
        let _ = writeln!(out, "    %% operation {}: {}", op.0, name);
    }
    // Participants in the header's order, only those the operation touches.
    for info in &index.header().services {
        if spans.iter().any(|s| s.from == info.id || s.to == info.id) {
            let _ = writeln!(out, "    participant {}", mermaid_name(&info.name));
        }
    }
    for span in spans {
        let arrow = match (span.end, span.kind) {
            (SpanEnd::Dropped(..), _) => "-x",
            (_, MessageKind::Response | MessageKind::Ack) => "-->>",
            (_, MessageKind::Event) => "-)",
            (_, MessageKind::Request | MessageKind::Rollback) => "->>",
        };
        let mut label = mermaid_text(span.label);
        if let SpanEnd::Dropped(_, reason) = span.end {
            let _ = write!(label, " (dropped: {})", reason.describe());
        }
        let _ = writeln!(
            out,
            "    {}{arrow}{}: {label}",
            mermaid_name(&index.service_name(span.from)),
            mermaid_name(&index.service_name(span.to)),
        );
    }
    Ok(out)
}

/// A participant name Mermaid accepts: ASCII letters, digits and underscores (not Unicode's
/// letters and digits, whose tables would cost the page a few KB).
fn mermaid_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Message text with the characters Mermaid treats specially replaced.
fn mermaid_text(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace(';', ",")
        .replace('#', "№")
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::RunRequest;

    fn index(scenario: &str) -> TraceIndex {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 3,
            until_s: 6.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        let trace = engine::simulate(&request).unwrap();
        TraceIndex::complete(trace.header, trace.events)
    }

    #[test]
    fn jsonl_export_reads_back_as_the_same_trace() {
        let index = index("eventual-consistency");
        let text = jsonl(&index);
        let (back, hash) = crate::recorded::read_trace(&text).unwrap();
        assert_eq!(back.events().to_vec(), index.events().to_vec());
        let trace = Trace::from_jsonl(&text).unwrap();
        assert_eq!(trace.hash_hex(), hash);
        assert_eq!(file_stem(&index), "crosstalk-eventual-consistency-seed3");
    }

    #[test]
    fn the_svg_shows_every_service_and_the_messages_in_flight() {
        let mut index = index("request-response");
        let layout = Layout::new(index.header());
        let t = index
            .spans()
            .map(|s| s.sent_at)
            .find(|t| *t > Micros::from_secs(1))
            .unwrap();
        let header = index.header().clone();
        let services = crate::view_model::services(&header, index.state_at(t));
        let svg = map_svg(&index, &layout, &services, t);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        for service in &services {
            assert!(
                svg.contains(&format!(">{}</text>", service.name)),
                "{}",
                service.name
            );
        }
        let in_flight = index
            .messages_in_flight_at(t, Micros::ZERO)
            .iter()
            .filter(|f| f.state == FlightState::Moving)
            .count();
        assert!(in_flight > 0);
        assert_eq!(svg.matches("class=\"message\"").count(), in_flight);
        // Every element that opens closes.
        assert_eq!(
            svg.matches("<circle").count(),
            svg.matches("</circle>").count()
        );
        assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
    }

    #[test]
    fn a_mermaid_diagram_follows_one_operation() {
        let index = index("request-response");
        let op = index.spans().find_map(|s| s.op).unwrap();
        let text = mermaid(&index, op).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "sequenceDiagram");
        assert!(lines[1].starts_with("    %% operation"), "{text}");
        let messages = index.spans().filter(|s| s.op == Some(op)).count();
        let arrows = lines
            .iter()
            .filter(|l| !l.contains("%%") && !l.contains("participant") && l.contains(": "))
            .count();
        assert_eq!(arrows, messages, "{text}");
        assert!(text.contains("    participant Client"), "{text}");
        assert!(text.contains("Client->>Order: "), "{text}");
        assert!(text.contains("Order-->>Client: "), "{text}");
        assert!(mermaid(&index, OpId(u64::MAX)).is_err());
        assert_eq!(mermaid_text("a;b#c\nd"), "a,b№c d");
        assert_eq!(mermaid_name("Order Service-2"), "Order_Service_2");
        // Only ASCII letters and digits are kept.
        assert_eq!(mermaid_name("Café 2"), "Caf__2");
    }
}
