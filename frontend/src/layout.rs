//! Where each service sits on the map, in the coordinates of the SVG's viewBox.
//!
//! Services are placed in tiers by how many hops they are from a client: clients first, then the
//! services they call, and so on. On wide screens tiers are columns from left to right; on narrow
//! screens they are rows from top to bottom. A broker alone in its tier sits level with the middle
//! of what it links, so its two links read as "in" and "out".

use shared::protocol::{ServiceId, ServiceRole, TraceHeader};
use std::collections::VecDeque;

/// The landscape map's width in viewBox units.
pub const VIEW_WIDTH: f64 = 1000.0;
/// The landscape map's least height in viewBox units.
pub const VIEW_HEIGHT: f64 = 260.0;
/// The room each box of a landscape tier takes, beyond its own height: gaps and labels.
const TIER_ROOM: f64 = 76.0;
/// The portrait map's width, when no tier needs more.
pub const PORTRAIT_WIDTH: f64 = 440.0;
/// The portrait map's height.
pub const PORTRAIT_HEIGHT: f64 = 540.0;
/// A service box's width.
pub const BOX_WIDTH: f64 = 164.0;
/// A service box's height.
pub const BOX_HEIGHT: f64 = 74.0;
/// Space kept free along the map's edges.
const MARGIN: f64 = 24.0;
/// The least space between two boxes of one tier.
const GAP: f64 = 24.0;
/// How far apart the two directions of a link are drawn, so requests and responses pass side by
/// side instead of over each other.
pub const LANE_OFFSET: f64 = 7.0;

/// Which way the tiers run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Orientation {
    /// Tiers are columns, left to right: for wide screens.
    Landscape,
    /// Tiers are rows, top to bottom: for narrow screens.
    Portrait,
}

/// A point in viewBox units.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Point {
    /// Rightward.
    pub x: f64,
    /// Downward.
    pub y: f64,
}

/// A service's box.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ServiceBox {
    /// The service.
    pub service: ServiceId,
    /// The box's centre.
    pub center: Point,
}

impl ServiceBox {
    /// The left edge.
    pub fn left(&self) -> f64 {
        self.center.x - BOX_WIDTH / 2.0
    }

    /// The top edge.
    pub fn top(&self) -> f64 {
        self.center.y - BOX_HEIGHT / 2.0
    }

    /// True when the two boxes share any area.
    pub fn overlaps(&self, other: &ServiceBox) -> bool {
        (self.center.x - other.center.x).abs() < BOX_WIDTH
            && (self.center.y - other.center.y).abs() < BOX_HEIGHT
    }

    /// Where the ray from the centre towards `toward` leaves the box.
    fn exit_toward(&self, toward: Point) -> Point {
        let (dx, dy) = (toward.x - self.center.x, toward.y - self.center.y);
        if dx == 0.0 && dy == 0.0 {
            return self.center;
        }
        // Scale the direction so it just reaches the nearer of the vertical or horizontal edges.
        let scale_x = if dx == 0.0 {
            f64::INFINITY
        } else {
            (BOX_WIDTH / 2.0) / dx.abs()
        };
        let scale_y = if dy == 0.0 {
            f64::INFINITY
        } else {
            (BOX_HEIGHT / 2.0) / dy.abs()
        };
        let scale = scale_x.min(scale_y);
        Point {
            x: self.center.x + dx * scale,
            y: self.center.y + dy * scale,
        }
    }
}

/// Every service's place on the map.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    width: f64,
    height: f64,
    boxes: Vec<ServiceBox>,
    links: Vec<(ServiceId, ServiceId)>,
}

impl Layout {
    /// Places the services of `header` for a wide screen.
    pub fn new(header: &TraceHeader) -> Layout {
        Layout::with_orientation(header, Orientation::Landscape)
    }

    /// Places the services of `header` with tiers running as `orientation` says.
    pub fn with_orientation(header: &TraceHeader, orientation: Orientation) -> Layout {
        let n = header.services.len();
        let tiers = tiers(header);
        let tier_count = tiers.iter().copied().max().map_or(1, |t| t + 1);
        let widest_tier = (0..tier_count)
            .map(|tier| tiers.iter().filter(|&&t| t == tier).count())
            .max()
            .unwrap_or(1)
            .max(1);
        // Along a tier, each box needs its own size plus a gap; the map grows when a tier is full.
        let (width, height) = match orientation {
            Orientation::Landscape => (
                VIEW_WIDTH,
                VIEW_HEIGHT.max(widest_tier as f64 * (BOX_HEIGHT + TIER_ROOM) + 2.0 * MARGIN),
            ),
            Orientation::Portrait => (
                PORTRAIT_WIDTH.max(widest_tier as f64 * (BOX_WIDTH + GAP) + 2.0 * MARGIN),
                PORTRAIT_HEIGHT,
            ),
        };
        let (across, along) = match orientation {
            Orientation::Landscape => (width, height),
            Orientation::Portrait => (height, width),
        };
        let tier_step = (across - 2.0 * MARGIN) / tier_count as f64;
        // Positions as (across the tiers, along a tier), turned into x and y at the end.
        let mut places: Vec<(f64, f64)> = vec![(0.0, along / 2.0); n];
        for tier in 0..tier_count {
            let members: Vec<usize> = (0..n).filter(|&i| tiers[i] == tier).collect();
            let slot = (along - 2.0 * MARGIN) / members.len().max(1) as f64;
            for (k, &i) in members.iter().enumerate() {
                places[i] = (
                    MARGIN + tier_step * (tier as f64 + 0.5),
                    MARGIN + slot * (k as f64 + 0.5),
                );
            }
        }
        for (i, info) in header.services.iter().enumerate() {
            let alone = tiers.iter().filter(|&&t| t == tiers[i]).count() == 1;
            if info.role != ServiceRole::Broker || !alone {
                continue;
            }
            let levels: Vec<f64> = neighbours(header, i).map(|j| places[j].1).collect();
            if !levels.is_empty() {
                places[i].1 = levels.iter().sum::<f64>() / levels.len() as f64;
            }
        }
        let boxes = places
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| ServiceBox {
                service: ServiceId(i as u16),
                center: match orientation {
                    Orientation::Landscape => Point { x: a, y: b },
                    Orientation::Portrait => Point { x: b, y: a },
                },
            })
            .collect();
        Layout {
            width,
            height,
            boxes,
            links: header.links.clone(),
        }
    }

    /// The map's width in viewBox units.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// The map's height in viewBox units.
    pub fn height(&self) -> f64 {
        self.height
    }

    /// True when the box lies wholly inside the map.
    pub fn contains(&self, service_box: &ServiceBox) -> bool {
        service_box.left() >= 0.0
            && service_box.top() >= 0.0
            && service_box.left() + BOX_WIDTH <= self.width
            && service_box.top() + BOX_HEIGHT <= self.height
    }

    /// Every service's box, by id.
    pub fn boxes(&self) -> &[ServiceBox] {
        &self.boxes
    }

    /// The box of `service`.
    pub fn service_box(&self, service: ServiceId) -> Option<&ServiceBox> {
        self.boxes.get(service.0 as usize)
    }

    /// The links to draw, as the segments between the edges of their two boxes.
    pub fn link_segments(&self) -> Vec<(ServiceId, ServiceId, Point, Point)> {
        self.links
            .iter()
            .filter_map(|&(a, b)| {
                let (start, end) = self.edge_points(a, b)?;
                Some((a, b, start, end))
            })
            .collect()
    }

    /// Where the line between the centres of `from` and `to` leaves each box.
    fn edge_points(&self, from: ServiceId, to: ServiceId) -> Option<(Point, Point)> {
        let a = self.service_box(from)?;
        let b = self.service_box(to)?;
        Some((a.exit_toward(b.center), b.exit_toward(a.center)))
    }

    /// Where a message from `from` to `to` is drawn when `progress` (0..1) along its way. Each
    /// direction keeps to its own lane, offset to the right of its travel.
    pub fn message_position(&self, from: ServiceId, to: ServiceId, progress: f64) -> Option<Point> {
        let (start, end) = self.edge_points(from, to)?;
        let normal = self.lane_side(from, to)?;
        let p = progress.clamp(0.0, 1.0);
        Some(Point {
            x: start.x + (end.x - start.x) * p + normal.x * LANE_OFFSET,
            y: start.y + (end.y - start.y) * p + normal.y * LANE_OFFSET,
        })
    }

    /// The length of the visible part of the link between `from` and `to`, edge to edge.
    pub fn link_length(&self, from: ServiceId, to: ServiceId) -> Option<f64> {
        let (start, end) = self.edge_points(from, to)?;
        Some(((end.x - start.x).powi(2) + (end.y - start.y).powi(2)).sqrt())
    }

    /// The unit vector to the right of travel from `from` to `to`: the side its lane is on, and
    /// where its label goes.
    pub fn lane_side(&self, from: ServiceId, to: ServiceId) -> Option<Point> {
        let (start, end) = self.edge_points(from, to)?;
        let (dx, dy) = (end.x - start.x, end.y - start.y);
        let length = (dx * dx + dy * dy).sqrt();
        Some(if length > 0.0 {
            Point {
                x: -dy / length,
                y: dx / length,
            }
        } else {
            Point { x: 0.0, y: 0.0 }
        })
    }
}

/// The services linked to service `i`.
fn neighbours(header: &TraceHeader, i: usize) -> impl Iterator<Item = usize> + '_ {
    let id = ServiceId(i as u16);
    header.links.iter().filter_map(move |&(a, b)| {
        if a == id {
            Some(b.0 as usize)
        } else if b == id {
            Some(a.0 as usize)
        } else {
            None
        }
    })
}

/// Each service's tier: hops from the nearest client (clients are tier 0). Services no client
/// reaches go in a tier after all others.
fn tiers(header: &TraceHeader) -> Vec<usize> {
    let n = header.services.len();
    let mut column: Vec<Option<usize>> = vec![None; n];
    let mut queue = VecDeque::new();
    for (i, info) in header.services.iter().enumerate() {
        if info.role == ServiceRole::Client {
            column[i] = Some(0);
            queue.push_back(i);
        }
    }
    // With no client at all, start from the first service so the map still spreads out.
    if queue.is_empty() && n > 0 {
        column[0] = Some(0);
        queue.push_back(0);
    }
    while let Some(i) = queue.pop_front() {
        let next = column[i].unwrap_or(0) + 1;
        for j in neighbours(header, i) {
            if j < n && column[j].is_none() {
                column[j] = Some(next);
                queue.push_back(j);
            }
        }
    }
    let unreached = column.iter().flatten().max().map_or(0, |c| c + 1);
    column.into_iter().map(|c| c.unwrap_or(unreached)).collect()
}

/// Where along its link a message is drawn. With reduced motion, messages do not glide: they
/// jump between three resting points (near the sender, mid-link, near the receiver), so a person
/// who asked for less motion still sees where each message is.
pub fn shown_progress(progress: f64, reduced_motion: bool) -> f64 {
    if !reduced_motion {
        return progress;
    }
    if progress < 1.0 / 3.0 {
        0.15
    } else if progress < 2.0 / 3.0 {
        0.5
    } else {
        0.85
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{PROTOCOL_VERSION, RunRequest, ServiceInfo};
    use shared::time::Micros;

    fn header(services: &[(&str, ServiceRole)], links: &[(u16, u16)]) -> TraceHeader {
        TraceHeader {
            protocol_version: PROTOCOL_VERSION,
            scenario: "test".into(),
            seed: 0,
            until: Micros::from_secs(1),
            knobs: Default::default(),
            services: services
                .iter()
                .enumerate()
                .map(|(i, (name, role))| ServiceInfo {
                    id: ServiceId(i as u16),
                    name: name.to_string(),
                    role: *role,
                })
                .collect(),
            links: links
                .iter()
                .map(|&(a, b)| (ServiceId(a), ServiceId(b)))
                .collect(),
            network: shared::protocol::LinkSpec {
                latency: Micros::from_millis(40),
                jitter: Micros::from_millis(10),
                loss_per_million: 0,
            },
            copies: vec![],
            faults: Vec::new(),
        }
    }

    fn scenario_header(scenario: &str) -> TraceHeader {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 1,
            until_s: 0.001,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        engine::simulate(&request).unwrap().header
    }

    fn check_no_overlap(layout: &Layout, context: &str) {
        for (i, a) in layout.boxes().iter().enumerate() {
            assert!(layout.contains(a), "{context}: {a:?} leaves the map");
            for b in &layout.boxes()[i + 1..] {
                assert!(!a.overlaps(b), "{context}: {a:?} overlaps {b:?}");
            }
        }
    }

    use ServiceRole::{Broker, Client, Service};

    #[test]
    fn no_boxes_overlap_in_any_topology() {
        let topologies: Vec<(&str, TraceHeader)> = vec![
            ("request-response", scenario_header("request-response")),
            (
                "eventual-consistency",
                scenario_header("eventual-consistency"),
            ),
            ("gateway", scenario_header("gateway")),
            (
                "event-driven fan-out",
                header(
                    &[
                        ("Client", Client),
                        ("Order", Service),
                        ("Broker", Broker),
                        ("Inventory", Service),
                        ("Shipping", Service),
                    ],
                    &[(0, 1), (1, 2), (2, 3), (2, 4)],
                ),
            ),
            (
                "six services in one column",
                header(
                    &[
                        ("Client", Client),
                        ("A", Service),
                        ("B", Service),
                        ("C", Service),
                        ("D", Service),
                        ("E", Service),
                    ],
                    &[(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)],
                ),
            ),
            (
                "an unlinked service",
                header(
                    &[("Client", Client), ("A", Service), ("Lone", Service)],
                    &[(0, 1)],
                ),
            ),
            ("nothing", header(&[], &[])),
        ];
        for (name, header) in topologies {
            for orientation in [Orientation::Landscape, Orientation::Portrait] {
                let layout = Layout::with_orientation(&header, orientation);
                check_no_overlap(&layout, &format!("{name}, {orientation:?}"));
            }
        }
    }

    #[test]
    fn request_response_reads_left_to_right() {
        let layout = Layout::new(&scenario_header("request-response"));
        let x = |i: u16| layout.service_box(ServiceId(i)).unwrap().center.x;
        // Client, Order, Product.
        assert!(x(0) < x(1) && x(1) < x(2));
    }

    #[test]
    fn narrow_screens_stack_tiers_top_to_bottom() {
        let header = scenario_header("eventual-consistency");
        let layout = Layout::with_orientation(&header, Orientation::Portrait);
        let y = |i: u16| layout.service_box(ServiceId(i)).unwrap().center.y;
        let x = |i: u16| layout.service_box(ServiceId(i)).unwrap().center.x;
        // Client on top; Order and Product side by side; the broker below, between them.
        assert!(y(0) < y(1) && y(1) == y(2) && y(2) < y(3));
        assert!(x(1).min(x(2)) < x(3) && x(3) < x(1).max(x(2)));
        assert!(layout.width() < layout.height());
    }

    #[test]
    fn a_full_tier_makes_the_map_bigger() {
        let services: Vec<(&str, ServiceRole)> = std::iter::once(("Client", Client))
            .chain((0..8).map(|_| ("S", Service)))
            .collect();
        let links: Vec<(u16, u16)> = (1..=8).map(|i| (0, i)).collect();
        let layout = Layout::new(&header(&services, &links));
        assert!(layout.height() > 8.0 * BOX_HEIGHT);
        check_no_overlap(&layout, "eight in a tier");
    }

    #[test]
    fn the_broker_sits_between_product_and_order() {
        let header = scenario_header("eventual-consistency");
        let layout = Layout::new(&header);
        let find = |name: &str| {
            let info = header.services.iter().find(|s| s.name == name).unwrap();
            layout.service_box(info.id).unwrap().center
        };
        let (client, order, product, broker) = (
            find("Client"),
            find("Order"),
            find("Product"),
            find("Broker"),
        );
        assert!(client.x < order.x && order.x < broker.x);
        assert_eq!(order.x, product.x);
        let (top, bottom) = (order.y.min(product.y), order.y.max(product.y));
        assert!(top < broker.y && broker.y < bottom, "{broker:?}");
    }

    #[test]
    fn messages_travel_from_edge_to_edge_in_their_own_lane() {
        let layout = Layout::new(&header(
            &[("Client", Client), ("Order", Service)],
            &[(0, 1)],
        ));
        let (a, b) = (ServiceId(0), ServiceId(1));
        let start = layout.message_position(a, b, 0.0).unwrap();
        let end = layout.message_position(a, b, 1.0).unwrap();
        let back = layout.message_position(b, a, 0.0).unwrap();
        let left = layout.service_box(a).unwrap();
        let right = layout.service_box(b).unwrap();
        assert!((start.x - (left.center.x + BOX_WIDTH / 2.0)).abs() < 1e-9);
        assert!((end.x - (right.center.x - BOX_WIDTH / 2.0)).abs() < 1e-9);
        // Rightward travel keeps below the line, leftward above it.
        assert!(start.y > left.center.y && back.y < right.center.y);
        assert!(layout.message_position(a, ServiceId(9), 0.5).is_none());
        let gap = right.center.x - left.center.x - BOX_WIDTH;
        assert!((layout.link_length(a, b).unwrap() - gap).abs() < 1e-9);
    }

    #[test]
    fn reduced_motion_jumps_between_three_points() {
        let check = |progress: f64, expected: f64| {
            assert_eq!(shown_progress(progress, true), expected, "{progress}");
            assert_eq!(shown_progress(progress, false), progress);
        };
        check(0.0, 0.15);
        check(0.3, 0.15);
        check(0.34, 0.5);
        check(0.6, 0.5);
        check(0.7, 0.85);
        check(1.0, 0.85);
    }
}
