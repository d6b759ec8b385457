//! The JSON the page writes — its frames to the server (`ClientFrame`) and an embed's answers to
//! its host page — written by hand, as `serde_json::to_string` wrote them: no spaces, fields in
//! the order their derives gave, strings escaped as serde_json escapes them, numbers as serde_json
//! writes them (a float with its `.0`, `null` for one that is not finite). Serde's serializer,
//! its derives' code for each type and serde_json's error type (which formats `std::io` errors,
//! with every `ErrorKind`'s description) stay out of the page's WebAssembly.

use shared::float_text;
use shared::protocol::{ClientFrame, Fault, LinkId, LiveCommand, RunRequest};
use std::fmt::Write;

/// A JSON object written one field at a time.
pub struct Object {
    text: String,
}

impl Default for Object {
    fn default() -> Self {
        Object::new()
    }
}

impl Object {
    /// An object with no fields yet.
    pub fn new() -> Object {
        Object {
            text: String::from("{"),
        }
    }

    /// Starts the field `name`: what follows is its value.
    fn key(&mut self, name: &str) -> &mut String {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        string(&mut self.text, name);
        self.text.push(':');
        &mut self.text
    }

    /// A string field.
    pub fn str(mut self, name: &str, value: &str) -> Object {
        string(self.key(name), value);
        self
    }

    /// A string field, `null` when there is none.
    pub fn opt_str(mut self, name: &str, value: Option<&str>) -> Object {
        match value {
            Some(value) => string(self.key(name), value),
            None => self.key(name).push_str("null"),
        }
        self
    }

    /// A `true` or `false` field.
    pub fn bool(mut self, name: &str, value: bool) -> Object {
        self.key(name)
            .push_str(if value { "true" } else { "false" });
        self
    }

    /// A whole-number field.
    pub fn u64(mut self, name: &str, value: u64) -> Object {
        let _ = write!(self.key(name), "{value}");
        self
    }

    /// A float field.
    pub fn f64(mut self, name: &str, value: f64) -> Object {
        float(self.key(name), value);
        self
    }

    /// A field whose value is JSON text already.
    pub fn raw(mut self, name: &str, json: &str) -> Object {
        self.key(name).push_str(json);
        self
    }

    /// The object's text.
    pub fn end(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// Appends `value` as a JSON string, escaped as serde_json escapes it: `"`, `\` and the control
/// characters (those with a short escape by it, the others as `\u00XX`).
pub fn string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `value` as serde_json writes a float: `null` when it is not finite, else its shortest
/// digits that read back as it, with `.0` when they are a whole number.
fn float(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    let start = out.len();
    let _ = write!(out, "{}", float_text::shortest(value));
    if !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// `frame` as the server reads it (`{"type":"run",…}`).
pub fn client_frame(frame: &ClientFrame) -> String {
    match frame {
        ClientFrame::Run(request) => run_request(Object::new().str("type", "run"), request).end(),
        ClientFrame::LiveStart { request, token } => token_field(
            run_request(Object::new().str("type", "live_start"), request),
            token,
        )
        .end(),
        ClientFrame::LiveWatch => Object::new().str("type", "live_watch").end(),
        ClientFrame::LiveControl { command, token } => {
            let object = Object::new().str("type", "live_control");
            token_field(live_command(object, command), token).end()
        }
    }
}

/// The fields of a [`RunRequest`].
fn run_request(object: Object, request: &RunRequest) -> Object {
    let mut knobs = Object::new();
    for (name, value) in request.knobs.iter() {
        knobs = knobs.f64(name, *value);
    }
    let mut faults = String::from("[");
    for (i, fault) in request.faults.iter().enumerate() {
        if i > 0 {
            faults.push(',');
        }
        string(&mut faults, fault);
    }
    faults.push(']');
    object
        .str("scenario", &request.scenario)
        .u64("seed", request.seed)
        .f64("until_s", request.until_s)
        .raw("knobs", &knobs.end())
        .raw("faults", &faults)
}

/// A control token, left out when there is none.
fn token_field(object: Object, token: &Option<String>) -> Object {
    match token {
        Some(token) => object.str("token", token),
        None => object,
    }
}

/// The fields of a [`LiveCommand`], after its `action`.
fn live_command(object: Object, command: &LiveCommand) -> Object {
    match command {
        LiveCommand::Stop => object.str("action", "stop"),
        LiveCommand::Load { on } => object.str("action", "load").bool("on", *on),
        LiveCommand::Crash { service } => object
            .str("action", "crash")
            .u64("service", service.0.into()),
        LiveCommand::Restart { service } => object
            .str("action", "restart")
            .u64("service", service.0.into()),
        LiveCommand::Fault { fault } => object.str("action", "fault").raw("fault", &fault_json(fault)),
        LiveCommand::Heal { fault } => object.str("action", "heal").raw("fault", &fault_json(fault)),
    }
}

/// A [`Fault`] as its derive wrote it: `{"kind":"slow","service":2,"factor":3}`.
fn fault_json(fault: &Fault) -> String {
    let object = Object::new();
    match fault {
        Fault::Crash { service } => object.str("kind", "crash").u64("service", service.0.into()),
        Fault::Slow { service, factor } => object
            .str("kind", "slow")
            .u64("service", service.0.into())
            .u64("factor", (*factor).into()),
        Fault::Partition { link } => object.str("kind", "partition").raw("link", &link_json(link)),
        Fault::Drop { link, percent } => link_percent(object, "drop", link, *percent),
        Fault::Duplicate { link, percent } => link_percent(object, "duplicate", link, *percent),
        Fault::Reorder { link, percent } => link_percent(object, "reorder", link, *percent),
    }
    .end()
}

/// The fields of a fault on a link that takes a share of its messages.
fn link_percent(object: Object, kind: &str, link: &LinkId, percent: u32) -> Object {
    object
        .str("kind", kind)
        .raw("link", &link_json(link))
        .u64("percent", percent.into())
}

/// A [`LinkId`]: `"all"`, or `{"between":[1,2]}`.
fn link_json(link: &LinkId) -> String {
    match link {
        LinkId::All => "\"all\"".to_string(),
        LinkId::Between(a, b) => format!("{{\"between\":[{},{}]}}", a.0, b.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::{KnobMap, ServiceId};

    fn request() -> RunRequest {
        let mut knobs = KnobMap::default();
        knobs.insert("broker_delay_ms".to_string(), 700.0);
        knobs.insert("drop \"rate\"\n".to_string(), 0.1);
        knobs.insert("fast".to_string(), -2.25);
        RunRequest {
            scenario: "eventual-consistency".into(),
            seed: u64::MAX,
            until_s: 60.0,
            knobs,
            faults: vec!["crash:Product@10+5".into(), "\u{1}\u{7f}é".into()],
        }
    }

    fn frames() -> Vec<ClientFrame> {
        let service = ServiceId(3);
        let link = LinkId::Between(ServiceId(1), ServiceId(4));
        let mut frames = vec![
            ClientFrame::Run(request()),
            ClientFrame::Run(RunRequest {
                knobs: KnobMap::default(),
                faults: vec![],
                ..request()
            }),
            ClientFrame::LiveStart {
                request: request(),
                token: None,
            },
            ClientFrame::LiveStart {
                request: request(),
                token: Some("t\\ok".into()),
            },
            ClientFrame::LiveWatch,
        ];
        let faults = [
            Fault::Crash { service },
            Fault::Slow { service, factor: 3 },
            Fault::Partition { link: LinkId::All },
            Fault::Partition { link },
            Fault::Drop { link, percent: 10 },
            Fault::Duplicate {
                link: LinkId::All,
                percent: 100,
            },
            Fault::Reorder { link, percent: 1 },
        ];
        let mut commands = vec![
            LiveCommand::Stop,
            LiveCommand::Load { on: true },
            LiveCommand::Load { on: false },
            LiveCommand::Crash { service },
            LiveCommand::Restart { service },
        ];
        for fault in faults {
            commands.push(LiveCommand::Fault {
                fault: fault.clone(),
            });
            commands.push(LiveCommand::Heal { fault });
        }
        for command in commands {
            for token in [None, Some("abc".to_string())] {
                frames.push(ClientFrame::LiveControl {
                    command: command.clone(),
                    token,
                });
            }
        }
        frames
    }

    #[test]
    fn client_frames_are_what_serde_json_wrote() {
        for frame in frames() {
            assert_eq!(client_frame(&frame), serde_json::to_string(&frame).unwrap());
        }
    }

    #[test]
    fn strings_and_floats_are_written_as_serde_json_writes_them() {
        let text: String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
        let mut out = String::new();
        string(&mut out, &text);
        assert_eq!(out, serde_json::to_string(&text).unwrap());
        for x in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1.5,
            700.0,
            123456.789,
            1e21,
            -2.5e-8,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = String::new();
            float(&mut out, x);
            let written = serde_json::to_string(&x).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&out).unwrap(),
                serde_json::from_str::<serde_json::Value>(&written).unwrap(),
                "{x}"
            );
        }
    }
}
