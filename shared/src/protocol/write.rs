//! Writing the types the page writes as JSON — a trace's lines ([`TraceHeader`], [`TraceEvent`]:
//! the export and the trace's hash), the broker's stored [`DomainEvent`]s and a viewer's
//! [`ClientFrame`]s — by hand with [`crate::json::ToJson`], byte for byte as serde_json writes
//! their derived `Serialize` (which the server keeps for its own types that hold these). The
//! tests compare both texts for every kind of event, fault, frame and stored event: the trace's
//! hash must not change.

use super::{
    CircuitState, ClientFrame, CopyDecl, DomainEvent, DropReason, EndReason, Event, Fault,
    FaultSpec, Label, LinkId, LinkSpec, LiveCommand, MessageKind, MsgId, Observed, OpId, Outcome,
    RowKey, RunRequest, ServiceId, ServiceInfo, ServiceRole, TraceEvent, TraceHeader,
};
use crate::json::{ToJson, raw, write_str, write_u64};
use crate::json_object;
use crate::time::Micros;

/// A newtype written as the number it holds.
macro_rules! write_number {
    ($($name:ident,)*) => {$(
        impl ToJson for $name {
            fn write(&self, out: &mut String) {
                write_u64(out, u64::from(self.0));
            }
        }
    )*};
}

write_number!(Micros, MsgId, OpId, ServiceId,);

/// A unit-variant enum written as its variant's name (`rename_all = "snake_case"`).
macro_rules! write_names {
    ($($name:ident [$($text:literal),*],)*) => {$(
        impl ToJson for $name {
            fn write(&self, out: &mut String) {
                const NAMES: &[&str] = &[$($text),*];
                write_str(out, NAMES[*self as usize]);
            }
        }
    )*};
}

write_names!(
    ServiceRole["client", "service", "broker", "coordinator"],
    MessageKind["request", "response", "event", "ack", "rollback"],
    DropReason["lost", "receiver_down", "partitioned"],
    CircuitState["closed", "open", "half_open"],
    EndReason["reached_until", "budget", "stopped"],
);

impl ToJson for Label {
    fn write(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for RowKey {
    fn write(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for ServiceInfo {
    fn write(&self, out: &mut String) {
        json_object!(out, "id" => self.id, "name" => self.name, "role" => self.role);
    }
}

impl ToJson for CopyDecl {
    fn write(&self, out: &mut String) {
        json_object!(out,
            "copy_service" => self.copy_service,
            "copy_table" => self.copy_table,
            "source_service" => self.source_service,
            "source_table" => self.source_table,
        );
    }
}

impl ToJson for LinkSpec {
    fn write(&self, out: &mut String) {
        json_object!(out,
            "latency" => self.latency,
            "jitter" => self.jitter,
            "loss_per_million" => self.loss_per_million,
        );
    }
}

impl ToJson for TraceHeader {
    fn write(&self, out: &mut String) {
        json_object!(out,
            "protocol_version" => self.protocol_version,
            "scenario" => self.scenario,
            "seed" => self.seed,
            "until" => self.until,
            "knobs" => self.knobs,
            "services" => self.services,
            "links" => self.links,
            "network" => self.network,
            "copies" => self.copies,
            "faults" => self.faults,
        );
    }
}

impl ToJson for FaultSpec {
    fn write(&self, out: &mut String) {
        json_object!(out, "at" => self.at, "lasts" => self.lasts, "fault" => self.fault);
    }
}

impl ToJson for Fault {
    fn write(&self, out: &mut String) {
        match self {
            Fault::Crash { service } => {
                json_object!(out, tag "kind" = "crash", "service" => service)
            }
            Fault::Slow { service, factor } => {
                json_object!(out, tag "kind" = "slow", "service" => service, "factor" => factor)
            }
            Fault::Partition { link } => {
                json_object!(out, tag "kind" = "partition", "link" => link)
            }
            Fault::Drop { link, percent } => {
                json_object!(out, tag "kind" = "drop", "link" => link, "percent" => percent)
            }
            Fault::Duplicate { link, percent } => {
                json_object!(out, tag "kind" = "duplicate", "link" => link, "percent" => percent)
            }
            Fault::Reorder { link, percent } => {
                json_object!(out, tag "kind" = "reorder", "link" => link, "percent" => percent)
            }
        }
    }
}

/// `"all"`, or `{"between":[a,b]}` (serde's externally tagged enum).
impl ToJson for LinkId {
    fn write(&self, out: &mut String) {
        match self {
            LinkId::All => raw(out, "\"all\""),
            LinkId::Between(a, b) => json_object!(out, "between" => (a, b)),
        }
    }
}

impl ToJson for Outcome {
    fn write(&self, out: &mut String) {
        match self {
            Outcome::Ok => json_object!(out, tag "status" = "ok"),
            Outcome::Failed { reason } => {
                json_object!(out, tag "status" = "failed", "reason" => reason)
            }
            Outcome::Degraded { reason } => {
                json_object!(out, tag "status" = "degraded", "reason" => reason)
            }
        }
    }
}

impl ToJson for Observed {
    fn write(&self, out: &mut String) {
        json_object!(out,
            "source_service" => self.source_service,
            "source_table" => self.source_table,
            "key" => self.key,
            "version" => self.version,
        );
    }
}

/// `{"at":…,"type":…, the event's fields}`: the event flattened into the line, as serde's
/// `#[serde(flatten)]` writes it.
impl ToJson for TraceEvent {
    fn write(&self, out: &mut String) {
        raw(out, "{\"at\":");
        self.at.write(out);
        /// `,"type":"name"`, then the fields and the closing `}`.
        macro_rules! event {
            ($name:literal $(, $key:literal => $value:expr)* $(,)?) => {{
                raw(out, concat!(",\"type\":\"", $name, "\""));
                crate::json_fields!(out $(, $key => $value)*);
            }};
        }
        match &self.event {
            Event::ServiceUp { service } => event!("service_up", "service" => service),
            Event::ServiceDown { service } => event!("service_down", "service" => service),
            Event::Sent {
                msg,
                from,
                to,
                kind,
                label,
                op,
                caused_by,
            } => event!("sent",
                "msg" => msg,
                "from" => from,
                "to" => to,
                "kind" => kind,
                "label" => label,
                "op" => op,
                "caused_by" => caused_by,
            ),
            Event::Delivered { msg } => event!("delivered", "msg" => msg),
            Event::Duplicated { msg, copy } => event!("duplicated", "msg" => msg, "copy" => copy),
            Event::Dropped { msg, reason } => event!("dropped", "msg" => msg, "reason" => reason),
            Event::RowWritten {
                service,
                table,
                key,
                value,
                version,
            } => event!("row_written",
                "service" => service,
                "table" => table,
                "key" => key,
                "value" => value,
                "version" => version,
            ),
            Event::QueueDepth {
                service,
                queue,
                depth,
            } => event!("queue_depth", "service" => service, "queue" => queue, "depth" => depth),
            Event::ServiceLoad {
                service,
                workers,
                busy,
                waiting,
            } => event!("service_load",
                "service" => service,
                "workers" => workers,
                "busy" => busy,
                "waiting" => waiting,
            ),
            Event::OpStarted { op, name, client } => {
                event!("op_started", "op" => op, "name" => name, "client" => client)
            }
            Event::OpFinished {
                op,
                outcome,
                latency,
                observed,
            } => event!("op_finished",
                "op" => op,
                "outcome" => outcome,
                "latency" => latency,
                "observed" => observed,
            ),
            Event::EventHandled {
                service,
                event_id,
                published_at,
                applied,
            } => event!("event_handled",
                "service" => service,
                "event_id" => event_id,
                "published_at" => published_at,
                "applied" => applied,
            ),
            Event::PartialUpdateFlagged { service, key, text } => event!("partial_update_flagged",
                "service" => service,
                "key" => key,
                "text" => text,
            ),
            Event::WriteAborted {
                service,
                source_service,
                source_table,
                key,
                version,
            } => event!("write_aborted",
                "service" => service,
                "source_service" => source_service,
                "source_table" => source_table,
                "key" => key,
                "version" => version,
            ),
            Event::FaultBegins { fault } => event!("fault_begins", "fault" => fault),
            Event::FaultEnds { fault } => event!("fault_ends", "fault" => fault),
            Event::CircuitChanged {
                service,
                peer,
                state,
            } => event!("circuit_changed", "service" => service, "peer" => peer, "state" => state),
            Event::Narration { text } => event!("narration", "text" => text),
            Event::RunEnded {
                reason,
                messages_in_flight,
            } => {
                event!("run_ended", "reason" => reason, "messages_in_flight" => messages_in_flight)
            }
        }
    }
}

/// `{"event":"name", the struct's fields}` (serde's internally tagged newtype variant).
impl ToJson for DomainEvent {
    fn write(&self, out: &mut String) {
        match self {
            DomainEvent::ProductUpdated(p) => json_object!(out, tag "event" = "product_updated",
                "product" => p.product,
                "name" => p.name,
                "version" => p.version,
            ),
            DomainEvent::OrderCreated(o) => json_object!(out, tag "event" = "order_created",
                "order" => o.order,
                "products" => o.products,
                "created_at" => o.created_at,
            ),
            DomainEvent::DriverUpdated(d) => json_object!(out, tag "event" = "driver_updated",
                "driver" => d.driver,
                "name" => d.name,
                "version" => d.version,
            ),
        }
    }
}

/// A run request's fields after the frame's `type`, and its optional `token`, then `}`.
fn request_fields(out: &mut String, request: &RunRequest, token: &Option<String>) {
    raw(out, ",\"scenario\":");
    request.scenario.write(out);
    raw(out, ",\"seed\":");
    request.seed.write(out);
    raw(out, ",\"until_s\":");
    request.until_s.write(out);
    raw(out, ",\"knobs\":");
    request.knobs.write(out);
    raw(out, ",\"faults\":");
    request.faults.write(out);
    token_field(out, token);
}

/// `,"token":"…"` when there is one (`skip_serializing_if = "Option::is_none"`), then `}`.
fn token_field(out: &mut String, token: &Option<String>) {
    if let Some(token) = token {
        raw(out, ",\"token\":");
        token.write(out);
    }
    raw(out, "}");
}

/// `{"type":…}` with a run request's or a live command's fields flattened in.
impl ToJson for ClientFrame {
    fn write(&self, out: &mut String) {
        match self {
            ClientFrame::Run(request) => {
                raw(out, "{\"type\":\"run\"");
                request_fields(out, request, &None);
            }
            ClientFrame::LiveStart { request, token } => {
                raw(out, "{\"type\":\"live_start\"");
                request_fields(out, request, token);
            }
            ClientFrame::LiveWatch => raw(out, "{\"type\":\"live_watch\"}"),
            ClientFrame::LiveControl { command, token } => {
                raw(out, "{\"type\":\"live_control\",\"action\":");
                match command {
                    LiveCommand::Stop => raw(out, "\"stop\""),
                    LiveCommand::Load { on } => {
                        raw(out, "\"load\",\"on\":");
                        on.write(out);
                    }
                    LiveCommand::Crash { service } => {
                        raw(out, "\"crash\",\"service\":");
                        service.write(out);
                    }
                    LiveCommand::Restart { service } => {
                        raw(out, "\"restart\",\"service\":");
                        service.write(out);
                    }
                    LiveCommand::Fault { fault } => {
                        raw(out, "\"fault\",\"fault\":");
                        fault.write(out);
                    }
                    LiveCommand::Heal { fault } => {
                        raw(out, "\"heal\",\"fault\":");
                        fault.write(out);
                    }
                }
                token_field(out, token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_string;
    use crate::protocol::{DriverName, NewOrder, ProductName};

    /// The hand-written text is serde_json's, byte for byte.
    fn same<T: ToJson + serde::Serialize>(value: &T) {
        assert_eq!(to_string(value), serde_json::to_string(value).unwrap());
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_ascii: String = (0u8..128).map(char::from).collect();
        every_ascii.push_str("é → 😀 \u{2028}");
        for text in [
            "",
            "plain",
            "\"quoted\" \\back\\ /slash/",
            every_ascii.as_str(),
        ] {
            same(&text);
            same(&TraceEvent {
                at: Micros(1),
                event: Event::Narration { text: text.into() },
            });
        }
    }

    #[test]
    fn stored_events_are_written_as_serde_json_writes_them() {
        for event in [
            DomainEvent::ProductUpdated(ProductName {
                product: 7,
                name: "Mill \"X\"".into(),
                version: u64::MAX,
            }),
            DomainEvent::OrderCreated(NewOrder {
                order: 3,
                products: vec![1, 2, 3],
                created_at: Micros(12_345),
            }),
            DomainEvent::OrderCreated(NewOrder {
                order: 0,
                products: vec![],
                created_at: Micros(0),
            }),
            DomainEvent::DriverUpdated(DriverName {
                driver: 2,
                name: "Ann".into(),
                version: 4,
            }),
        ] {
            same(&event);
        }
    }

    #[test]
    fn client_frames_are_written_as_serde_json_writes_them() {
        let request = RunRequest {
            scenario: "request-response".into(),
            seed: 42,
            until_s: 30.0,
            knobs: [
                ("a".to_string(), 2.5),
                ("b".to_string(), 1e-7),
                ("c".to_string(), 1e21),
                ("d".to_string(), 0.1 + 0.2),
                ("e".to_string(), f64::NAN),
                ("f".to_string(), -0.0),
                ("g\"h".to_string(), 3.0),
            ]
            .into(),
            faults: vec!["crash:Order@4+3".into(), "drop:*=10%@12".into()],
        };
        let empty = RunRequest {
            scenario: "x".into(),
            seed: 0,
            until_s: 0.125,
            knobs: Default::default(),
            faults: vec![],
        };
        let faults = [
            Fault::Crash {
                service: ServiceId(1),
            },
            Fault::Slow {
                service: ServiceId(2),
                factor: 3,
            },
            Fault::Partition {
                link: LinkId::Between(ServiceId(1), ServiceId(2)),
            },
            Fault::Drop {
                link: LinkId::All,
                percent: 10,
            },
            Fault::Duplicate {
                link: LinkId::All,
                percent: 20,
            },
            Fault::Reorder {
                link: LinkId::Between(ServiceId(0), ServiceId(3)),
                percent: 30,
            },
        ];
        let mut frames = vec![
            ClientFrame::Run(request.clone()),
            ClientFrame::Run(empty.clone()),
            ClientFrame::LiveStart {
                request: request.clone(),
                token: None,
            },
            ClientFrame::LiveStart {
                request: empty,
                token: Some("0f3a".into()),
            },
            ClientFrame::LiveWatch,
        ];
        let mut commands = vec![
            LiveCommand::Stop,
            LiveCommand::Load { on: true },
            LiveCommand::Load { on: false },
            LiveCommand::Crash {
                service: ServiceId(2),
            },
            LiveCommand::Restart {
                service: ServiceId(65535),
            },
        ];
        for fault in faults {
            same(&fault);
            commands.push(LiveCommand::Fault {
                fault: fault.clone(),
            });
            commands.push(LiveCommand::Heal { fault });
        }
        for command in commands {
            for token in [None, Some("t".to_string())] {
                frames.push(ClientFrame::LiveControl {
                    command: command.clone(),
                    token,
                });
            }
        }
        for frame in &frames {
            same(frame);
        }
    }
}
