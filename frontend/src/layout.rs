//! Where each service sits on the map, in the coordinates of the SVG's viewBox.
//!
//! Services are placed in columns by how many hops they are from a client: clients on the left,
//! the services they call next, and so on to the right. A broker linked to services in one column
//! sits beside them, halfway between them, so its two links read as "in" and "out".

use shared::protocol::{ServiceId, ServiceRole, TraceHeader};
use std::collections::VecDeque;

/// The map's width in viewBox units.
pub const VIEW_WIDTH: f64 = 1000.0;
/// The map's height in viewBox units.
pub const VIEW_HEIGHT: f64 = 420.0;
/// A service box's width.
pub const BOX_WIDTH: f64 = 156.0;
/// A service box's height.
pub const BOX_HEIGHT: f64 = 72.0;
/// Space kept free along the map's edges.
const MARGIN: f64 = 24.0;
/// How far apart the two directions of a link are drawn, so requests and responses pass side by
/// side instead of over each other.
pub const LANE_OFFSET: f64 = 7.0;

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

    /// True when the box lies wholly inside the map.
    pub fn inside_view(&self) -> bool {
        self.left() >= 0.0
            && self.top() >= 0.0
            && self.left() + BOX_WIDTH <= VIEW_WIDTH
            && self.top() + BOX_HEIGHT <= VIEW_HEIGHT
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
    boxes: Vec<ServiceBox>,
    links: Vec<(ServiceId, ServiceId)>,
}

impl Layout {
    /// Places the services of `header`.
    pub fn new(header: &TraceHeader) -> Layout {
        let n = header.services.len();
        let columns = columns(header);
        let column_count = columns.iter().copied().max().map_or(1, |c| c + 1);
        let column_width = (VIEW_WIDTH - 2.0 * MARGIN) / column_count as f64;
        let mut boxes: Vec<ServiceBox> = (0..n)
            .map(|i| ServiceBox {
                service: ServiceId(i as u16),
                center: Point {
                    x: MARGIN + column_width * (columns[i] as f64 + 0.5),
                    y: VIEW_HEIGHT / 2.0,
                },
            })
            .collect();
        for column in 0..column_count {
            let members: Vec<usize> = (0..n).filter(|&i| columns[i] == column).collect();
            let row_height = (VIEW_HEIGHT - 2.0 * MARGIN) / members.len().max(1) as f64;
            for (row, &i) in members.iter().enumerate() {
                boxes[i].center.y = MARGIN + row_height * (row as f64 + 0.5);
            }
        }
        // A broker alone in its column sits level with the middle of what it links.
        for (i, info) in header.services.iter().enumerate() {
            let alone = columns.iter().filter(|&&c| c == columns[i]).count() == 1;
            if info.role != ServiceRole::Broker || !alone {
                continue;
            }
            let ys: Vec<f64> = neighbours(header, i).map(|j| boxes[j].center.y).collect();
            if !ys.is_empty() {
                boxes[i].center.y = ys.iter().sum::<f64>() / ys.len() as f64;
            }
        }
        Layout {
            boxes,
            links: header.links.clone(),
        }
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
        let (dx, dy) = (end.x - start.x, end.y - start.y);
        let length = (dx * dx + dy * dy).sqrt();
        let (nx, ny) = if length > 0.0 {
            (-dy / length, dx / length)
        } else {
            (0.0, 0.0)
        };
        let p = progress.clamp(0.0, 1.0);
        Some(Point {
            x: start.x + dx * p + nx * LANE_OFFSET,
            y: start.y + dy * p + ny * LANE_OFFSET,
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

/// Each service's column: hops from the nearest client (clients are column 0). Services no
/// client reaches go in a column after all others.
fn columns(header: &TraceHeader) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{PROTOCOL_VERSION, RunRequest, ServiceInfo};
    use shared::time::Micros;
    use std::collections::BTreeMap;

    fn header(services: &[(&str, ServiceRole)], links: &[(u16, u16)]) -> TraceHeader {
        TraceHeader {
            protocol_version: PROTOCOL_VERSION,
            scenario: "test".into(),
            seed: 0,
            until: Micros::from_secs(1),
            knobs: BTreeMap::new(),
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
            copies: vec![],
        }
    }

    fn scenario_header(scenario: &str) -> TraceHeader {
        let request = RunRequest {
            scenario: scenario.into(),
            seed: 1,
            until_s: 0.001,
            knobs: BTreeMap::new(),
        };
        shared::scenario::simulate(&request).unwrap().header
    }

    fn check_no_overlap(layout: &Layout, context: &str) {
        for (i, a) in layout.boxes().iter().enumerate() {
            assert!(a.inside_view(), "{context}: {a:?} leaves the map");
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
            check_no_overlap(&Layout::new(&header), name);
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
    }
}
