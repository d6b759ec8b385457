//! Embedding: the `postMessage` API a host page uses to drive an embedded player, and the
//! `<iframe>` snippet the Embed button hands out.
//!
//! The host posts `{crosstalk: "<command>", …}` to the iframe's window:
//!
//! | command | fields | does |
//! |---|---|---|
//! | `play`, `pause`, `toggle` | | the clock |
//! | `seek` | `t` (seconds) | moves the playhead |
//! | `step` | `forward` (bool, default true) | to the next or previous event |
//! | `speed` | `speed` (×, 0.1–10) | |
//! | `loop` | `loop` (bool) | |
//! | `select` | `sel` (`service:Order`, `msg:42`, `op:7`, … or `""`) | |
//! | `set` | any of `scenario`, `seed`, `until`, `knobs` (`{name: value}`) | runs again |
//! | `state` | | only replies |
//!
//! Each command is answered, to the window that sent it, with `{crosstalkEmbed: "state", id, t,
//! playing, speed, loop, end, ready}` (`id` is the embed's `id=` URL parameter, so a host with
//! several embeds can tell the answers apart), or `{crosstalkEmbed: "error", id, message}`. An
//! embed also announces `{crosstalkEmbed: "ready", …}` to its parent each time a run is ready. Each embed
//! only listens to messages posted to its own window, so embeds on one page never interfere.

use crate::config::{RunConfig, Views};
use crate::player::Player;
use crate::selection::Selection;
use serde::Serialize;
use shared::time::Micros;
use wasm_bindgen::{JsCast, JsValue};

/// The field that marks a message as a command for an embed.
pub const MESSAGE_TAG: &str = "crosstalk";
/// The field that marks a message as an embed's answer. It differs from [`MESSAGE_TAG`] so that
/// an answer is never read as a command: two embeds (or an embed and itself, when it is not in
/// a frame) never talk to each other forever.
pub const ANSWER_TAG: &str = "crosstalkEmbed";

/// One field of a posted message, as JSON would carry it: what `from_message` reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// A string.
    Str(String),
    /// A finite number (JSON has no others: `NaN` and infinities travel as `null`).
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
    /// An object's fields, in key order (as a JSON object read by `serde_json` iterates). Only
    /// the message's own fields are read as objects; an object inside one is [`Field::Other`]:
    /// no command reads deeper (`knobs` holds numbers), and a posted object may contain itself.
    Object(Vec<(String, Field)>),
    /// Anything else: `null`, an array.
    Other,
}

/// A message posted to an embed, read field by field: the browser's own object (the page reads
/// it without going through JSON text) or a JSON value (tests).
pub trait MessageData {
    /// The field `name`, or `None` when the message has none.
    fn field(&self, name: &str) -> Option<Field>;
}

/// A message given as JSON text (tests), read with `shared::json`: its fields in key order, a key
/// given twice taking its last value (as a JSON object read by `serde_json` did).
#[derive(Clone, Debug, Default)]
pub struct JsonMessage(Vec<(String, Field)>);

impl JsonMessage {
    /// Reads `text`, a JSON object.
    pub fn parse(text: &str) -> Result<JsonMessage, shared::json::Error> {
        let mut reader = shared::json::Reader::new(text);
        // Anything but an object has no fields.
        let fields = match json_field(&mut reader, 2)? {
            Field::Object(fields) => fields,
            _ => Vec::new(),
        };
        reader.finish()?;
        Ok(JsonMessage(fields))
    }
}

impl MessageData for JsonMessage {
    fn field(&self, name: &str) -> Option<Field> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, field)| field.clone())
    }
}

/// The value at the reader, an object read `levels` deep (an object deeper is [`Field::Other`]).
fn json_field(
    reader: &mut shared::json::Reader<'_>,
    levels: u32,
) -> Result<Field, shared::json::Error> {
    Ok(match reader.peek() {
        Some(b'{') if levels > 0 => {
            reader.object("an object")?;
            let mut fields: Vec<(String, Field)> = Vec::new();
            while let Some(key) = reader.next_key()? {
                let field = json_field(reader, levels - 1)?;
                fields.retain(|(k, _)| *k != key);
                fields.push((key.into_owned(), field));
            }
            shared::ordered::sort_by(&mut fields, |a, b| a.0.cmp(&b.0));
            Field::Object(fields)
        }
        Some(b'"') => Field::Str(reader.string_owned()?),
        Some(b't' | b'f') => Field::Bool(reader.bool()?),
        Some(b'-' | b'0'..=b'9') => match reader.f64() {
            Ok(number) => Field::Number(number),
            Err(_) => {
                reader.skip()?;
                Field::Other
            }
        },
        _ => {
            reader.skip()?;
            Field::Other
        }
    })
}

/// Reads the message as `JSON.stringify` would carry it: `undefined`, functions and symbols are
/// no field at all, non-finite numbers are `null`, an object's fields come in key order.
impl MessageData for JsValue {
    fn field(&self, name: &str) -> Option<Field> {
        if !self.is_object() {
            return None;
        }
        js_sys::Reflect::get(self, &JsValue::from_str(name))
            .ok()
            .and_then(|value| js_field(&value))
    }
}

fn js_field(value: &JsValue) -> Option<Field> {
    if !value.is_object() || js_sys::Array::is_array(value) || value.is_function() {
        return js_scalar(value);
    }
    let mut fields: Vec<(String, Field)> = js_sys::Object::entries(value.unchecked_ref())
        .iter()
        .filter_map(|entry| {
            let entry: js_sys::Array = entry.unchecked_into();
            Some((entry.get(0).as_string()?, js_scalar(&entry.get(1))?))
        })
        .collect();
    shared::ordered::sort_by(&mut fields, |a, b| a.0.cmp(&b.0));
    Some(Field::Object(fields))
}

/// A value as JSON would carry it, an object or array inside it being [`Field::Other`].
fn js_scalar(value: &JsValue) -> Option<Field> {
    if value.is_undefined() || value.is_function() || value.is_symbol() {
        return None;
    }
    Some(if let Some(text) = value.as_string() {
        Field::Str(text)
    } else if let Some(number) = value.as_f64() {
        if number.is_finite() {
            Field::Number(number)
        } else {
            Field::Other
        }
    } else if let Some(flag) = value.as_bool() {
        Field::Bool(flag)
    } else {
        Field::Other
    })
}

/// One command from the host page.
#[derive(Clone, Debug, PartialEq)]
pub enum EmbedCommand {
    /// Starts the clock.
    Play,
    /// Stops the clock.
    Pause,
    /// Plays when paused, pauses when playing.
    Toggle,
    /// Moves the playhead.
    Seek(Micros),
    /// To the next (`true`) or previous event.
    Step(bool),
    /// Sets the speed.
    Speed(f64),
    /// Turns looping on or off.
    Loop(bool),
    /// Selects something, or nothing.
    Select(Selection),
    /// Changes what runs, then runs it.
    Set(RunChange),
    /// Asks for the state.
    State,
}

/// What a `set` command changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunChange {
    /// Another scenario (its knobs reset to their defaults before `knobs` applies).
    pub scenario: Option<String>,
    /// Another seed.
    pub seed: Option<u64>,
    /// Another run length, in seconds.
    pub until_s: Option<f64>,
    /// Knobs to change, by name.
    pub knobs: Vec<(String, f64)>,
}

impl RunChange {
    /// Applies the change to `config`, or says what is wrong without changing anything.
    pub fn apply(&self, config: &mut RunConfig) -> Result<(), String> {
        let mut next = config.clone();
        if let Some(name) = &self.scenario {
            if crate::config::scenario_spec(name).is_none() {
                return Err(format!("there is no scenario {name:?}"));
            }
            next.switch_scenario(name);
        }
        if let Some(seed) = self.seed {
            next.seed = seed;
        }
        if let Some(until_s) = self.until_s {
            next.until_s = until_s;
        }
        for (name, value) in &self.knobs {
            if !next.knobs.contains_key(name) {
                return Err(format!("{} has no knob {name:?}", next.scenario));
            }
            next.knobs.insert(name.clone(), *value);
        }
        // The simulation checks ranges when it runs; check them here too, so the host hears
        // about a bad value in the answer to its own command.
        let spec = shared::scenario::find(&next.scenario).map_err(|err| err.to_string())?;
        shared::scenario::Knobs::resolve(spec, &next.knobs, next.source.driver())
            .map_err(|err| err.to_string())?;
        if !(next.until_s > 0.0 && next.until_s <= shared::scenario::MAX_UNTIL_S) {
            return Err(format!(
                "until must be between 0 and {} seconds",
                shared::float_text::shortest(shared::scenario::MAX_UNTIL_S)
            ));
        }
        *config = next;
        Ok(())
    }
}

impl EmbedCommand {
    /// Reads a message's data. `Ok(None)` for messages not meant for Crosstalk (other scripts
    /// post messages too); `Err` for a Crosstalk message that makes no sense.
    pub fn from_message(data: &impl MessageData) -> Result<Option<EmbedCommand>, String> {
        let Some(name) = data.field(MESSAGE_TAG) else {
            return Ok(None);
        };
        let Field::Str(name) = name else {
            return Err(format!("{MESSAGE_TAG:?} must name a command"));
        };
        let name = name.as_str();
        let number = |field: &str| match data.field(field) {
            Some(Field::Number(value)) => Ok(value),
            _ => Err(format!("{name} needs a number in {field:?}")),
        };
        let flag = |field: &str, default: Option<bool>| match data.field(field) {
            Some(Field::Bool(value)) => Ok(value),
            _ => default.ok_or_else(|| format!("{name} needs true or false in {field:?}")),
        };
        let command = match name {
            "play" => EmbedCommand::Play,
            "pause" => EmbedCommand::Pause,
            "toggle" => EmbedCommand::Toggle,
            "state" => EmbedCommand::State,
            "seek" => {
                let t = number("t")?;
                if t < 0.0 {
                    return Err("seek needs t ≥ 0 seconds".into());
                }
                EmbedCommand::Seek(Micros::from_secs_f64(t))
            }
            "step" => EmbedCommand::Step(flag("forward", Some(true))?),
            "speed" => {
                let speed = number("speed")?;
                if speed <= 0.0 {
                    return Err("speed must be positive".into());
                }
                EmbedCommand::Speed(speed)
            }
            "loop" => EmbedCommand::Loop(flag("loop", None)?),
            "select" => {
                let text = match data.field("sel") {
                    Some(Field::Str(text)) => text,
                    _ => String::new(),
                };
                let text = text.as_str();
                if text.is_empty() {
                    EmbedCommand::Select(Selection::Nothing)
                } else {
                    EmbedCommand::Select(
                        Selection::parse(text).ok_or_else(|| format!("cannot select {text:?}"))?,
                    )
                }
            }
            "set" => EmbedCommand::Set(run_change(data)?),
            other => return Err(format!("unknown command {other:?}")),
        };
        Ok(Some(command))
    }

    /// Carries out a command that only concerns the clock; returns false for the others.
    pub fn apply_to_player(&self, player: &mut Player) -> bool {
        match self {
            EmbedCommand::Play => player.play(),
            EmbedCommand::Pause => player.pause(),
            EmbedCommand::Toggle => player.toggle(),
            EmbedCommand::Seek(t) => player.seek(*t),
            EmbedCommand::Speed(speed) => player.set_speed(*speed),
            EmbedCommand::Loop(looping) => player.set_looping(*looping),
            EmbedCommand::State
            | EmbedCommand::Step(_)
            | EmbedCommand::Select(_)
            | EmbedCommand::Set(_) => return false,
        }
        true
    }
}

fn run_change(data: &impl MessageData) -> Result<RunChange, String> {
    let mut change = RunChange {
        scenario: match data.field("scenario") {
            Some(Field::Str(name)) => Some(name),
            _ => None,
        },
        ..RunChange::default()
    };
    if let Some(seed) = data.field("seed") {
        change.seed = Some(whole_number(&seed).ok_or("seed must be a whole number ≥ 0")?);
    }
    if let Some(until) = data.field("until") {
        let until = match until {
            Field::Number(u) if u > 0.0 => Some(u),
            _ => None,
        };
        change.until_s = Some(until.ok_or("until must be a positive number of seconds")?);
    }
    if let Some(knobs) = data.field("knobs") {
        let Field::Object(knobs) = knobs else {
            return Err("knobs must be an object".into());
        };
        for (name, value) in knobs {
            let Field::Number(value) = value else {
                return Err(format!("knob {name:?} must be a number"));
            };
            change.knobs.push((name, value));
        }
    }
    Ok(change)
}

/// A number JSON writes as a whole number that fits a `u64` (what `serde_json` reads as one).
fn whole_number(field: &Field) -> Option<u64> {
    match *field {
        // 2^64 is the first value past u64::MAX that a float holds.
        Field::Number(n) if n >= 0.0 && n.fract() == 0.0 && n < 18_446_744_073_709_551_616.0 => {
            Some(n as u64)
        }
        _ => None,
    }
}

/// An embed's answer: where the player is. Its fields are in key order, as the JSON objects the
/// answers were once built as wrote them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateMessage<'a> {
    /// `"state"`, or `"ready"` when an embed announces a run.
    #[serde(rename = "crosstalkEmbed")]
    pub kind: &'static str,
    end: f64,
    id: Option<&'a str>,
    #[serde(rename = "loop")]
    looping: bool,
    playing: bool,
    ready: bool,
    speed: f64,
    t: f64,
}

impl StateMessage<'_> {
    /// The answer as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The answer to every command: where the player is.
pub fn state_message<'a>(id: Option<&'a str>, player: &Player, ready: bool) -> StateMessage<'a> {
    StateMessage {
        kind: "state",
        end: player.end().as_secs_f64(),
        id,
        looping: player.is_looping(),
        playing: player.is_playing(),
        ready,
        speed: player.speed(),
        t: player.now().as_secs_f64(),
    }
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    #[serde(rename = "crosstalkEmbed")]
    kind: &'static str,
    id: Option<&'a str>,
    message: &'a str,
}

/// The answer to a command that could not be carried out, as JSON text.
pub fn error_message(id: Option<&str>, message: &str) -> String {
    serde_json::to_string(&ErrorMessage {
        kind: "error",
        id,
        message,
    })
    .unwrap_or_default()
}

/// The `<iframe>` snippet that embeds `config` from the page at `origin_and_path`, at the size
/// embeds are laid out for.
pub fn iframe_snippet(origin_and_path: &str, config: &RunConfig) -> String {
    let mut embedded = config.clone();
    if !embedded.embed {
        embedded.embed = true;
        // The views the full page shows are not what a small frame should show by default.
        if embedded.views == Views::all() {
            embedded.views = Views::embedded();
        }
    }
    let src = format!("{origin_and_path}{}", embedded.to_query());
    let title = format!("Crosstalk: {}", config.spec().title);
    format!(
        "<iframe src=\"{}\" title=\"{}\" width=\"800\" height=\"500\" style=\"border:0;max-width:100%\" loading=\"lazy\"></iframe>",
        html_attribute(&src),
        html_attribute(&title)
    )
}

fn html_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A page address with the query `config` gives it.
pub fn share_link(origin_and_path: &str, config: &RunConfig) -> String {
    format!("{origin_and_path}{}", config.to_query())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<EmbedCommand>, String> {
        EmbedCommand::from_message(&JsonMessage::parse(text).unwrap())
    }

    #[test]
    fn commands_are_read_from_messages() {
        let check = |text: &str, expected: EmbedCommand| {
            assert_eq!(parse(text), Ok(Some(expected)), "{text}");
        };
        check(r#"{"crosstalk":"play"}"#, EmbedCommand::Play);
        check(r#"{"crosstalk":"pause"}"#, EmbedCommand::Pause);
        check(r#"{"crosstalk":"toggle"}"#, EmbedCommand::Toggle);
        check(r#"{"crosstalk":"state"}"#, EmbedCommand::State);
        check(r#"{"crosstalk":"pause","id":"fig-1"}"#, EmbedCommand::Pause);
        check(
            r#"{"crosstalk":"seek","t":2.5}"#,
            EmbedCommand::Seek(Micros::from_millis(2_500)),
        );
        check(r#"{"crosstalk":"step"}"#, EmbedCommand::Step(true));
        check(
            r#"{"crosstalk":"step","forward":false}"#,
            EmbedCommand::Step(false),
        );
        check(
            r#"{"crosstalk":"speed","speed":2}"#,
            EmbedCommand::Speed(2.0),
        );
        check(
            r#"{"crosstalk":"loop","loop":true}"#,
            EmbedCommand::Loop(true),
        );
        check(
            r#"{"crosstalk":"select","sel":"op:4"}"#,
            EmbedCommand::Select(Selection::Operation(shared::protocol::OpId(4))),
        );
        check(
            r#"{"crosstalk":"select"}"#,
            EmbedCommand::Select(Selection::Nothing),
        );
        check(
            r#"{"crosstalk":"set","seed":9,"until":12,"knobs":{"link_latency_ms":80}}"#,
            EmbedCommand::Set(RunChange {
                scenario: None,
                seed: Some(9),
                until_s: Some(12.0),
                knobs: vec![("link_latency_ms".into(), 80.0)],
            }),
        );
    }

    #[test]
    fn other_messages_are_left_alone_and_bad_ones_explained() {
        assert_eq!(parse(r#"{"type":"resize","height":300}"#), Ok(None));
        assert_eq!(parse("42"), Ok(None));
        // Answers from embeds are not commands, so two embeds never answer each other.
        let answer = state_message(Some("a"), &Player::new(Micros::ZERO), false);
        assert_eq!(parse(&answer.to_json()), Ok(None));
        assert_eq!(parse(&error_message(None, "no")), Ok(None));
        let check = |text: &str, expected: &str| {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        };
        check(r#"{"crosstalk":"fly"}"#, "unknown command \"fly\"");
        check(r#"{"crosstalk":7}"#, "must name a command");
        check(r#"{"crosstalk":"seek"}"#, "seek needs a number in \"t\"");
        check(r#"{"crosstalk":"seek","t":-1}"#, "t ≥ 0");
        check(r#"{"crosstalk":"speed","speed":0}"#, "positive");
        check(r#"{"crosstalk":"loop"}"#, "true or false");
        check(r#"{"crosstalk":"select","sel":"zone:1"}"#, "cannot select");
        check(r#"{"crosstalk":"set","seed":-2}"#, "whole number");
        check(r#"{"crosstalk":"set","knobs":[1]}"#, "object");
        check(
            r#"{"crosstalk":"set","knobs":{"a":"b"}}"#,
            "must be a number",
        );
    }

    #[test]
    fn clock_commands_drive_the_player() {
        let mut player = Player::new(Micros::from_secs(10));
        player.set_available(Micros::from_secs(10));
        assert!(EmbedCommand::Seek(Micros::from_secs(4)).apply_to_player(&mut player));
        assert!(EmbedCommand::Play.apply_to_player(&mut player));
        assert!(EmbedCommand::Speed(3.0).apply_to_player(&mut player));
        assert!(EmbedCommand::Loop(true).apply_to_player(&mut player));
        assert!(!EmbedCommand::State.apply_to_player(&mut player));
        let state = state_message(Some("fig-1"), &player, true);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&state.to_json()).unwrap(),
            serde_json::json!({"crosstalkEmbed": "state", "id": "fig-1", "t": 4.0, "playing": true, "speed": 3.0,
                   "loop": true, "end": 10.0, "ready": true})
        );
        assert!(EmbedCommand::Pause.apply_to_player(&mut player));
        assert!(!player.is_playing());
    }

    #[test]
    fn set_changes_the_run_or_explains_why_not() {
        let (mut config, _) = RunConfig::from_query("seed=3");
        let change = RunChange {
            scenario: Some("eventual-consistency".into()),
            knobs: vec![("broker_delay_ms".into(), 700.0)],
            ..RunChange::default()
        };
        change.apply(&mut config).unwrap();
        assert_eq!(config.scenario, "eventual-consistency");
        assert_eq!(config.seed, 3);
        assert_eq!(config.knobs["broker_delay_ms"], 700.0);
        let before = config.clone();
        let bad = |change: RunChange, expected: &str| {
            let mut config = before.clone();
            let err = change.apply(&mut config).unwrap_err();
            assert!(err.contains(expected), "{err}");
            assert_eq!(config, before, "nothing changes");
        };
        bad(
            RunChange {
                knobs: vec![("warp".into(), 1.0)],
                ..RunChange::default()
            },
            "no knob \"warp\"",
        );
        bad(
            RunChange {
                knobs: vec![("broker_delay_ms".into(), -5.0)],
                ..RunChange::default()
            },
            "broker_delay_ms",
        );
        // A simulated run holds rates to its own maximum; a live one takes more.
        let faster = RunChange {
            knobs: vec![("read_rate_per_s".into(), 200.0)],
            ..RunChange::default()
        };
        bad(
            faster.clone(),
            "between 0 and 50 per s in a simulated run; a live run takes up to 5000",
        );
        let mut live = before.clone();
        live.source = crate::config::SourceKind::Live;
        faster.apply(&mut live).unwrap();
        assert_eq!(live.knobs["read_rate_per_s"], 200.0);
        bad(
            RunChange {
                scenario: Some("nope".into()),
                ..RunChange::default()
            },
            "no scenario",
        );
        bad(
            RunChange {
                until_s: Some(1e9),
                ..RunChange::default()
            },
            "until",
        );
    }

    #[test]
    fn the_embed_snippet_carries_the_run_and_escapes_its_address() {
        let (config, _) = RunConfig::from_query("scenario=eventual-consistency&seed=4&t=2&loop=1");
        let snippet = iframe_snippet("https://example.org/crosstalk/", &config);
        assert_eq!(
            snippet,
            "<iframe src=\"https://example.org/crosstalk/?scenario=eventual-consistency&amp;seed=4\
             &amp;until=30&amp;source=sim&amp;t=2&amp;loop=1&amp;embed=1\" \
             title=\"Crosstalk: Eventual consistency\" width=\"800\" height=\"500\" \
             style=\"border:0;max-width:100%\" loading=\"lazy\"></iframe>"
        );
        assert_eq!(
            share_link("https://example.org/", &config),
            "https://example.org/?scenario=eventual-consistency&seed=4&until=30&source=sim&t=2&loop=1"
        );
    }
}
