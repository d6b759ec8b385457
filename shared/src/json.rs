//! A small JSON reader and writer: a pull parser over the text, for everything the page reads (the trace's
//! lines, the server's frames, the broker's stored events, see `protocol/read.rs`).
//!
//! serde_json's reader, serde's traits and the derived or hand-written visitors on top of them
//! were about 55 KB of the page's WebAssembly (issue 9): a generic deserializer per input kind,
//! every visitor method for every type, error types that format every case. Here a type reads
//! itself ([`FromJson`]) by asking the [`Reader`] for the values it expects, in the order they
//! come: [`Reader::next_key`] over an object's keys, [`Reader::next_element`] over an array's
//! elements, a scalar at a time ([`Reader::str`], [`Reader::u64`], [`Reader::f64`], …), and
//! [`Reader::skip`] for a value nobody reads. Writing is by hand too ([`ToJson`]), byte for byte
//! as serde_json writes the derived `Serialize`, so the JSON and the trace's hash do not change.
//!
//! It reads JSON as RFC 8259 writes it, as serde_json did: no comments, no trailing commas, no
//! leading zeros, strings with every escape including `\uXXXX` surrogate pairs (a lone surrogate
//! is refused), at most [`MAX_DEPTH`] nested arrays and objects. Numbers: integers exactly to the
//! type's bounds (`u64::MAX`, `i64::MIN`); other numbers through [`crate::decimal_text::parse_f64`]
//! (exact, with no core float parser in the page), which refuses what is out of its range
//! (`1e400`, as serde_json did, and numbers of more than 19 significant digits, which nothing
//! writes). Errors say what was wrong and where, as serde_json's did: `… at line L column C`.

use std::borrow::Cow;
use std::fmt;

/// How deeply arrays and objects may nest (serde_json's bound too): past it, the text is refused
/// rather than read on a deeper and deeper stack.
pub const MAX_DEPTH: u32 = 128;

/// What was wrong with the text, and where.
///
/// Boxed: a reading's `Result` is then its value and a pointer, which every `?` moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(Box<ErrorAt>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct ErrorAt {
    message: String,
    line: usize,
    column: usize,
}

impl Error {
    /// What was wrong, without where.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The 1-based line of the text where it was found.
    pub fn line(&self) -> usize {
        self.0.line
    }

    /// The 1-based column (in bytes) of that line.
    pub fn column(&self) -> usize {
        self.0.column
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.0.message, self.0.line, self.0.column
        )
    }
}

impl std::error::Error for Error {}

/// A reading's result.
pub type Result<T> = std::result::Result<T, Error>;

/// A type read from JSON by asking a [`Reader`] for its parts.
pub trait FromJson: Sized {
    /// Reads one value of this type at the reader's position.
    fn read(reader: &mut Reader<'_>) -> Result<Self>;
}

/// Reads a whole text as one `T`: whitespace may surround it, nothing else may follow it.
pub fn from_str<T: FromJson>(text: &str) -> Result<T> {
    let mut reader = Reader::new(text);
    let value = T::read(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// A position in a JSON text, and the reading of the values there.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
    /// True right after an object's `{` or an array's `[`: its first key or element comes
    /// without a `,` before it. One flag serves every level, as a nested value is read whole
    /// before its container's next key or element.
    first: bool,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            pos: 0,
            depth: 0,
            first: false,
        }
    }

    /// An error with `message` at the current position.
    #[cold]
    #[inline(never)]
    pub fn error(&self, message: impl Into<String>) -> Error {
        let before = &self.text.as_bytes()[..self.pos.min(self.text.len())];
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        Error(Box::new(ErrorAt {
            message: message.into(),
            line: 1 + before.iter().filter(|&&c| c == b'\n').count(),
            column: self.pos - line_start + 1,
        }))
    }

    /// Ends the reading: only whitespace may be left.
    pub fn finish(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// The next byte that is not whitespace (moved up to), if any: what kind of value comes
    /// next (`{`, `[`, `"`, a digit or `-`, `t`, `f`, `n`).
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&c) = bytes.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    /// The error for a text that ends where a value or more of one was expected.
    #[cold]
    fn eof(&self, what: &str) -> Error {
        self.error(format!("EOF while parsing {what}"))
    }

    /// Moves past `c`, which must come next (after whitespace).
    fn expect(&mut self, c: u8, what: &str) -> Result<()> {
        match self.peek() {
            Some(next) if next == c => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(format!("expected {what}"))),
            None => Err(self.eof("a value")),
        }
    }

    /// Moves past `word` (`true`, `false`, `null`), which must come next.
    fn word(&mut self, word: &str) -> Result<()> {
        if self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else if self.pos + word.len() > self.text.len()
            && word
                .as_bytes()
                .starts_with(&self.text.as_bytes()[self.pos..])
        {
            self.pos = self.text.len();
            Err(self.eof("a value"))
        } else {
            Err(self.error("expected ident"))
        }
    }

    /// The error for a value of another type than `expected`, naming the value found (which is
    /// not read).
    #[cold]
    pub fn invalid_type(&mut self, expected: &str) -> Error {
        let found = match self.peek() {
            None => return self.eof("a value"),
            Some(b'{') => "map".to_string(),
            Some(b'[') => "sequence".to_string(),
            Some(b'"') => {
                let start = self.pos;
                let found = match self.string() {
                    Ok(text) => format!("string {text:?}"),
                    Err(error) => return error,
                };
                self.pos = start;
                found
            }
            Some(b't') => "boolean `true`".to_string(),
            Some(b'f') => "boolean `false`".to_string(),
            Some(b'n') => "null".to_string(),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                let found = match self.number() {
                    Ok((text, true)) => format!("integer `{text}`"),
                    Ok((text, false)) => format!("floating point `{text}`"),
                    Err(error) => return error,
                };
                self.pos = start;
                found
            }
            Some(_) => return self.error("expected value"),
        };
        self.error(format!("invalid type: {found}, expected {expected}"))
    }

    /// Enters an object or an array: one level deeper, within [`MAX_DEPTH`].
    fn open(&mut self, c: u8, expected: &str) -> Result<()> {
        if self.peek() != Some(c) {
            return Err(self.invalid_type(expected));
        }
        if self.depth == MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.pos += 1;
        self.depth += 1;
        self.first = true;
        Ok(())
    }

    /// Whether the object or array being read has another key or element (moving past its `,`),
    /// or ends here (moving past its `close`, a level up).
    fn more(&mut self, close: u8, what: &str) -> Result<bool> {
        let first = std::mem::replace(&mut self.first, false);
        match self.peek() {
            Some(c) if c == close => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) if first => Ok(true),
            Some(_) => Err(self.error(format!("expected `,` or `{}`", close as char))),
            None => Err(self.eof(what)),
        }
    }

    /// Enters an object; read its keys with [`Reader::next_key`], each key's value right after.
    /// `expected` names what the caller reads, for the error when the value is not an object.
    pub fn object(&mut self, expected: &str) -> Result<()> {
        self.open(b'{', expected)
    }

    /// The object's next key (its value is to be read next), or `None` past its `}`.
    pub fn next_key(&mut self) -> Result<Option<Cow<'a, str>>> {
        if !self.more(b'}', "an object")? {
            return Ok(None);
        }
        match self.peek() {
            Some(b'"') => {}
            // `more` said there is a key after `{` only when no `}` follows it: after a `,`.
            Some(b'}') => return Err(self.error("trailing comma")),
            Some(_) => return Err(self.error("key must be a string")),
            None => return Err(self.eof("an object")),
        }
        let key = self.string()?;
        self.expect(b':', "`:`")?;
        Ok(Some(key))
    }

    /// The object's next key as its index in `names` (`names.len()` for another key), or `None`
    /// past its `}`.
    pub fn next_field(&mut self, names: &[&str]) -> Result<Option<usize>> {
        Ok(self.next_key()?.map(|key| {
            names
                .iter()
                .position(|name| *name == key)
                .unwrap_or(names.len())
        }))
    }

    /// Enters an array; read its elements after each [`Reader::next_element`].
    pub fn array(&mut self, expected: &str) -> Result<()> {
        self.open(b'[', expected)
    }

    /// Whether the array has another element (to be read next), or ends here (moved past).
    pub fn next_element(&mut self) -> Result<bool> {
        let more = self.more(b']', "a list")?;
        // `more` said there is an element after `[` only when no `]` follows it: after a `,`.
        if more && self.peek() == Some(b']') {
            return Err(self.error("trailing comma"));
        }
        Ok(more)
    }

    /// Whether the next value is `null` (moved past if so).
    #[inline(never)]
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.word("null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A `true` or `false`.
    #[inline(never)]
    pub fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.word("true").map(|()| true),
            Some(b'f') => self.word("false").map(|()| false),
            _ => Err(self.invalid_type("a boolean")),
        }
    }

    /// A string, with its escapes read.
    pub fn str(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.invalid_type("a string"));
        }
        self.string()
    }

    /// A string as an owned `String`.
    #[inline(never)]
    pub fn string_owned(&mut self) -> Result<String> {
        self.str().map(Cow::into_owned)
    }

    /// Reads the string at the position (at its `"`).
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        self.pos += 1;
        let start = self.pos;
        // The common case: no escape, borrowed from the text.
        loop {
            match bytes.get(self.pos) {
                None => return Err(self.eof("a string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Borrowed(&self.text[start..self.pos - 1]));
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x20 => return Err(self.control_character()),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        let mut run = start;
        loop {
            match bytes.get(self.pos) {
                None => return Err(self.eof("a string")),
                Some(b'"') => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    out.push(self.escape()?);
                    run = self.pos;
                }
                Some(&c) if c < 0x20 => return Err(self.control_character()),
                Some(_) => self.pos += 1,
            }
        }
    }

    #[cold]
    fn control_character(&self) -> Error {
        self.error("control character (\\u0000-\\u001F) found while parsing a string")
    }

    /// The character an escape (after its `\`) stands for.
    fn escape(&mut self) -> Result<char> {
        let Some(&c) = self.text.as_bytes().get(self.pos) else {
            return Err(self.eof("a string"));
        };
        self.pos += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                if (0xDC00..0xE000).contains(&unit) {
                    return Err(self.error("lone trailing surrogate in hex escape"));
                }
                if (0xD800..0xDC00).contains(&unit) {
                    if !self.text.as_bytes()[self.pos..].starts_with(b"\\u") {
                        return Err(self.error("lone leading surrogate in hex escape"));
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error("lone leading surrogate in hex escape"));
                    }
                    let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    return char::from_u32(code)
                        .ok_or_else(|| self.error("invalid unicode code point"));
                }
                return char::from_u32(unit)
                    .ok_or_else(|| self.error("invalid unicode code point"));
            }
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape"));
            }
        })
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32> {
        let mut unit = 0;
        for _ in 0..4 {
            let Some(&c) = self.text.as_bytes().get(self.pos) else {
                return Err(self.eof("a string"));
            };
            let digit = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.error("invalid escape")),
            };
            unit = unit * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(unit)
    }

    /// Reads the number at the position: its text, and whether it is an integer (no fraction,
    /// no exponent). The text is checked against JSON's grammar.
    fn number(&mut self) -> Result<(&'a str, bool)> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let digits = |pos: &mut usize| {
            let from = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos - from
        };
        let mut pos = self.pos;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        let whole = pos;
        let whole_digits = digits(&mut pos);
        let mut integer = true;
        let bad = match whole_digits {
            0 => true,
            // No leading zero: `01` is not JSON.
            n => n > 1 && bytes[whole] == b'0',
        };
        if !bad && bytes.get(pos) == Some(&b'.') {
            pos += 1;
            integer = false;
            if digits(&mut pos) == 0 {
                self.pos = pos;
                return Err(self.number_error());
            }
        }
        if !bad && matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            integer = false;
            if matches!(bytes.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if digits(&mut pos) == 0 {
                self.pos = pos;
                return Err(self.number_error());
            }
        }
        if bad {
            self.pos = if whole_digits == 0 { pos } else { whole + 1 };
            return Err(if whole_digits == 0 {
                self.number_error()
            } else {
                self.error("invalid number")
            });
        }
        self.pos = pos;
        Ok((&self.text[start..pos], integer))
    }

    #[cold]
    fn number_error(&self) -> Error {
        if self.pos >= self.text.len() {
            self.eof("a value")
        } else {
            self.error("invalid number")
        }
    }

    /// An integer's magnitude and sign, for [`Reader::u64`] and [`Reader::i64`]: `expected`
    /// names the type for the error when the value is not an integer.
    fn integer(&mut self, expected: &str) -> Result<(bool, u64)> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.invalid_type(expected));
        }
        let start = self.pos;
        let (text, integer) = self.number()?;
        if !integer {
            self.pos = start;
            return Err(self.invalid_type(expected));
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, text),
        };
        let mut value: u64 = 0;
        for c in digits.bytes() {
            match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
            {
                Some(v) => value = v,
                None => {
                    self.pos = start;
                    return Err(self.error(format!(
                        "invalid value: integer `{text}`, expected {expected}"
                    )));
                }
            }
        }
        Ok((negative, value))
    }

    /// An unsigned integer up to `max`; `expected` names its type for the errors.
    fn unsigned(&mut self, max: u64, expected: &str) -> Result<u64> {
        let start = self.pos;
        match self.integer(expected)? {
            (false, value) if value <= max => Ok(value),
            (true, 0) => Ok(0),
            _ => {
                let text = &self.text[start..self.pos];
                self.pos = start;
                self.peek();
                Err(self.error(format!(
                    "invalid value: integer `{}`, expected {expected}",
                    text.trim_start()
                )))
            }
        }
    }

    /// A whole number from 0 to `u64::MAX`.
    #[inline(never)]
    pub fn u64(&mut self) -> Result<u64> {
        self.unsigned(u64::MAX, "u64")
    }

    /// A whole number from 0 to `u32::MAX`.
    #[inline(never)]
    pub fn u32(&mut self) -> Result<u32> {
        self.unsigned(u64::from(u32::MAX), "u32")
            .map(|value| value as u32)
    }

    /// A whole number from 0 to `u16::MAX`.
    #[inline(never)]
    pub fn u16(&mut self) -> Result<u16> {
        self.unsigned(u64::from(u16::MAX), "u16")
            .map(|value| value as u16)
    }

    /// A whole number from `i64::MIN` to `i64::MAX`.
    #[inline(never)]
    pub fn i64(&mut self) -> Result<i64> {
        let start = self.pos;
        match self.integer("i64")? {
            (false, value) if value <= i64::MAX as u64 => Ok(value as i64),
            (true, value) if value <= 1 << 63 => Ok((value as i64).wrapping_neg()),
            _ => {
                let text = &self.text[start..self.pos];
                self.pos = start;
                self.peek();
                Err(self.error(format!(
                    "invalid value: integer `{}`, expected i64",
                    text.trim_start()
                )))
            }
        }
    }

    /// A number, read exactly by [`crate::decimal_text::parse_f64`]; one out of its range is
    /// refused.
    #[inline(never)]
    pub fn f64(&mut self) -> Result<f64> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.invalid_type("f64"));
        }
        let start = self.pos;
        let (text, _) = self.number()?;
        match crate::decimal_text::parse_f64(text) {
            Some(value) => Ok(value),
            None => {
                self.pos = start;
                Err(self.error("number out of range"))
            }
        }
    }

    /// Moves past the next value, whatever it is (checked as JSON, within [`MAX_DEPTH`]).
    pub fn skip(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'{') => {
                self.object("")?;
                while self.next_key()?.is_some() {
                    self.skip()?;
                }
                Ok(())
            }
            Some(b'[') => {
                self.array("")?;
                while self.next_element()? {
                    self.skip()?;
                }
                Ok(())
            }
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.word("true"),
            Some(b'f') => self.word("false"),
            Some(b'n') => self.word("null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(_) => Err(self.error("expected value")),
            None => Err(self.eof("a value")),
        }
    }
}

/// A field the caller needs, or the error saying it is missing (at the reader's position: past
/// the object that lacks it).
pub fn required<T>(reader: &Reader<'_>, value: Option<T>, field: &str) -> Result<T> {
    match value {
        Some(value) => Ok(value),
        None => Err(missing(reader, field)),
    }
}

/// The error "missing field": one copy, not one per type of field.
#[cold]
#[inline(never)]
pub fn missing(reader: &Reader<'_>, field: &str) -> Error {
    reader.error(format!("missing field `{field}`"))
}

/// Reads a tag (a variant's name, a string) as its index in `names`; another is the error
/// "unknown variant".
pub fn tag(reader: &mut Reader<'_>, names: &[&str]) -> Result<usize> {
    let name = reader.str()?;
    names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| unknown_variant(reader, &name, names))
}

/// The error for a tag that is not one of `names`, as serde worded it.
#[cold]
pub fn unknown_variant(reader: &Reader<'_>, name: &str, names: &[&str]) -> Error {
    let mut message = format!("unknown variant `{name}`, expected ");
    match names {
        [] => message.push_str("no variant"),
        [one] => message.push_str(&format!("`{one}`")),
        [a, b] => message.push_str(&format!("`{a}` or `{b}`")),
        _ => {
            message.push_str("one of ");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    message.push_str(", ");
                }
                message.push('`');
                message.push_str(n);
                message.push('`');
            }
        }
    }
    reader.error(message)
}

impl FromJson for u64 {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.u64()
    }
}

impl FromJson for u32 {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.u32()
    }
}

impl FromJson for u16 {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.u16()
    }
}

impl FromJson for i64 {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.i64()
    }
}

impl FromJson for f64 {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.f64()
    }
}

impl FromJson for bool {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.bool()
    }
}

impl FromJson for String {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.string_owned()
    }
}

/// `null` is `None`.
impl<T: FromJson> FromJson for Option<T> {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        if reader.null()? {
            return Ok(None);
        }
        T::read(reader).map(Some)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.array("a sequence")?;
        let mut items = Vec::new();
        while reader.next_element()? {
            items.push(T::read(reader)?);
        }
        Ok(items)
    }
}

/// A pair is an array of two.
impl<A: FromJson, B: FromJson> FromJson for (A, B) {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.array("a tuple of size 2")?;
        let mut pair = (None, None);
        if reader.next_element()? {
            pair.0 = Some(A::read(reader)?);
            if reader.next_element()? {
                pair.1 = Some(B::read(reader)?);
                if reader.next_element()? {
                    return Err(reader.error("trailing characters"));
                }
            }
        }
        match pair {
            (Some(a), Some(b)) => Ok((a, b)),
            (a, _) => Err(reader.error(format!(
                "invalid length {}, expected a tuple of size 2",
                usize::from(a.is_some())
            ))),
        }
    }
}

/// An object whose keys are its map's keys.
impl<V: FromJson> FromJson for crate::slot_map::SlotMap<String, V> {
    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        reader.object("a map")?;
        let mut map = crate::slot_map::SlotMap::new();
        while let Some(key) = reader.next_key()? {
            let value = V::read(reader)?;
            map.insert(key.into_owned(), value);
        }
        Ok(map)
    }
}

/// A type written as JSON, byte for byte as serde_json writes its `Serialize` (no spaces, keys
/// in the fields' order, strings escaped as serde_json escapes them, floats by `zmij` as
/// serde_json formats them). serde's derive and serde_json's writer took about 17 KB more of
/// the page's WebAssembly before `wasm-opt` than this (issue 9); the page writes only the trace's lines (the export and
/// the hash), the broker's stored events and its frames to the server, each by hand here
/// (`protocol/write.rs`). The tests compare every type with serde_json's text.
pub trait ToJson {
    /// Appends the value's JSON to `out`.
    fn write(&self, out: &mut String);
}

/// The JSON text of `value`.
pub fn to_string<T: ToJson + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write(&mut out);
    out
}

/// Appends text that is already JSON (punctuation, a key with its quotes and colon).
#[inline(never)]
pub fn raw(out: &mut String, text: &str) {
    out.push_str(text);
}

/// Appends a whole number.
#[inline(never)]
pub fn write_u64(out: &mut String, n: u64) {
    out.push_str(&crate::decimal::Decimal::new(n));
}

/// Appends a string in quotes, escaped as serde_json escapes it: `"`, `\\` and the control
/// characters, those with a short escape by it (`\n`, `\t`, …), the others as `\u00xx`.
#[inline(never)]
pub fn write_str(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push('\\');
        out.push(char::from(short));
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends a float as serde_json writes it (`zmij`'s shortest digits: `2.5`, `30.0`, `1e-7`), or
/// `null` when it is not finite.
#[inline(never)]
pub fn write_f64(out: &mut String, x: f64) {
    if x.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(x));
    } else {
        out.push_str("null");
    }
}

/// Appends an object's fields after the first: `,"key":value` each, then the closing `}`.
#[doc(hidden)]
#[macro_export]
macro_rules! json_fields {
    ($out:ident $(, $key:literal => $value:expr)* $(,)?) => {{
        $(
            $crate::json::raw($out, concat!(",\"", $key, "\":"));
            $crate::json::ToJson::write(&$value, $out);
        )*
        $crate::json::raw($out, "}");
    }};
}

/// Appends an object: `json_object!(out, "a" => x, "b" => y)` writes `{"a":…,"b":…}`;
/// `json_object!(out, tag "type" = "sent", "msg" => m)` writes `{"type":"sent","msg":…}` (an
/// internally tagged enum's variant, as serde's derive writes it).
#[macro_export]
macro_rules! json_object {
    ($out:ident, tag $tag:literal = $name:literal $(, $key:literal => $value:expr)* $(,)?) => {{
        $crate::json::raw($out, concat!("{\"", $tag, "\":\"", $name, "\""));
        $crate::json_fields!($out $(, $key => $value)*);
    }};
    ($out:ident, $first:literal => $first_value:expr $(, $key:literal => $value:expr)* $(,)?) => {{
        $crate::json::raw($out, concat!("{\"", $first, "\":"));
        $crate::json::ToJson::write(&$first_value, $out);
        $crate::json_fields!($out $(, $key => $value)*);
    }};
}

impl ToJson for u64 {
    fn write(&self, out: &mut String) {
        write_u64(out, *self);
    }
}

impl ToJson for u32 {
    fn write(&self, out: &mut String) {
        write_u64(out, u64::from(*self));
    }
}

impl ToJson for u16 {
    fn write(&self, out: &mut String) {
        write_u64(out, u64::from(*self));
    }
}

impl ToJson for f64 {
    fn write(&self, out: &mut String) {
        write_f64(out, *self);
    }
}

impl ToJson for bool {
    fn write(&self, out: &mut String) {
        raw(out, if *self { "true" } else { "false" });
    }
}

impl ToJson for str {
    fn write(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for String {
    fn write(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for Cow<'_, str> {
    fn write(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write(&self, out: &mut String) {
        T::write(self, out);
    }
}

/// `None` is `null`.
impl<T: ToJson> ToJson for Option<T> {
    fn write(&self, out: &mut String) {
        match self {
            Some(value) => value.write(out),
            None => raw(out, "null"),
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write(&self, out: &mut String) {
        let mut open = "[";
        for item in self {
            raw(out, open);
            open = ",";
            item.write(out);
        }
        raw(out, if self.is_empty() { "[]" } else { "]" });
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write(&self, out: &mut String) {
        self.as_slice().write(out);
    }
}

/// A pair is an array of two.
impl<A: ToJson, B: ToJson> ToJson for (A, B) {
    fn write(&self, out: &mut String) {
        raw(out, "[");
        self.0.write(out);
        raw(out, ",");
        self.1.write(out);
        raw(out, "]");
    }
}

/// An object whose keys are the map's, in their order.
impl<V: ToJson> ToJson for crate::slot_map::SlotMap<String, V> {
    fn write(&self, out: &mut String) {
        let mut open = "{";
        for (key, value) in self.iter() {
            raw(out, open);
            open = ",";
            write_str(out, key);
            raw(out, ":");
            value.write(out);
        }
        raw(out, if self.is_empty() { "{}" } else { "}" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error<T: FromJson + fmt::Debug>(text: &str) -> String {
        from_str::<T>(text).unwrap_err().to_string()
    }

    #[test]
    fn strings_with_every_escape() {
        assert_eq!(from_str::<String>(r#""plain""#).unwrap(), "plain");
        assert_eq!(
            from_str::<String>(r#""a\"b\\c\/d\be\ff\ng\rh\ti""#).unwrap(),
            "a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti"
        );
        assert_eq!(
            from_str::<String>(r#""\u0041\u00e9\u20AC""#).unwrap(),
            "Aé€"
        );
        // A surrogate pair is one character; text past ASCII is taken as it is.
        assert_eq!(from_str::<String>(r#""\ud83d\ude00 😀""#).unwrap(), "😀 😀");
        let mut reader = Reader::new(r#""no escape""#);
        assert!(matches!(reader.str().unwrap(), Cow::Borrowed("no escape")));
        assert_eq!(
            error::<String>(r#""\ud83d""#),
            "lone leading surrogate in hex escape at line 1 column 8"
        );
        assert_eq!(
            error::<String>(r#""\ud83d\u0041""#),
            "lone leading surrogate in hex escape at line 1 column 14"
        );
        assert_eq!(
            error::<String>(r#""\ude00""#),
            "lone trailing surrogate in hex escape at line 1 column 8"
        );
        assert_eq!(
            error::<String>(r#""\x""#),
            "invalid escape at line 1 column 3"
        );
        assert_eq!(
            error::<String>(r#""\u12G4""#),
            "invalid escape at line 1 column 6"
        );
        assert_eq!(
            error::<String>(r#""abc"#),
            "EOF while parsing a string at line 1 column 5"
        );
        assert_eq!(
            error::<String>(r#""\u12"#),
            "EOF while parsing a string at line 1 column 6"
        );
        assert_eq!(
            error::<String>("\"a\nb\""),
            "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3"
        );
        assert_eq!(
            error::<String>("12"),
            "invalid type: integer `12`, expected a string at line 1 column 1"
        );
    }

    #[test]
    fn integers_to_their_bounds() {
        assert_eq!(from_str::<u64>("18446744073709551615").unwrap(), u64::MAX);
        assert_eq!(from_str::<u64>(" 0 ").unwrap(), 0);
        assert_eq!(from_str::<u64>("-0").unwrap(), 0);
        assert_eq!(
            error::<u64>("18446744073709551616"),
            "invalid value: integer `18446744073709551616`, expected u64 at line 1 column 1"
        );
        assert_eq!(
            error::<u64>("-1"),
            "invalid value: integer `-1`, expected u64 at line 1 column 1"
        );
        assert_eq!(
            error::<u64>("1.5"),
            "invalid type: floating point `1.5`, expected u64 at line 1 column 1"
        );
        assert_eq!(
            error::<u64>("1e3"),
            "invalid type: floating point `1e3`, expected u64 at line 1 column 1"
        );
        assert_eq!(from_str::<u32>("4294967295").unwrap(), u32::MAX);
        assert_eq!(
            error::<u32>("4294967296"),
            "invalid value: integer `4294967296`, expected u32 at line 1 column 1"
        );
        assert_eq!(from_str::<u16>("65535").unwrap(), u16::MAX);
        assert_eq!(
            error::<u16>("[1]"),
            "invalid type: sequence, expected u16 at line 1 column 1"
        );
        assert_eq!(from_str::<i64>("-9223372036854775808").unwrap(), i64::MIN);
        assert_eq!(from_str::<i64>("9223372036854775807").unwrap(), i64::MAX);
        assert_eq!(from_str::<i64>("-12").unwrap(), -12);
        assert_eq!(
            error::<i64>("9223372036854775808"),
            "invalid value: integer `9223372036854775808`, expected i64 at line 1 column 1"
        );
        assert_eq!(
            error::<i64>("-9223372036854775809"),
            "invalid value: integer `-9223372036854775809`, expected i64 at line 1 column 1"
        );
        assert_eq!(error::<u64>("01"), "invalid number at line 1 column 2");
        assert_eq!(
            error::<u64>("-"),
            "EOF while parsing a value at line 1 column 2"
        );
        assert_eq!(error::<u64>("-x"), "invalid number at line 1 column 2");
        assert_eq!(error::<u64>("+1"), "expected value at line 1 column 1");
    }

    #[test]
    fn floats_exactly_and_out_of_range_refused() {
        for (text, value) in [
            ("0", 0.0_f64),
            ("-0.0", -0.0),
            ("1.5", 1.5),
            ("-2.25e2", -225.0),
            ("1E-3", 0.001),
            ("1e+2", 100.0),
            ("0.1", 0.1),
            // 2^53 + 1: to the nearest even, 2^53, as core's parser rounds it.
            ("9007199254740993", 9007199254740992.0),
            ("1e40", 1e40),
        ] {
            let read = from_str::<f64>(text).unwrap();
            assert_eq!(read.to_bits(), value.to_bits(), "{text}");
        }
        assert_eq!(
            error::<f64>("1e400"),
            "number out of range at line 1 column 1"
        );
        // Beyond `parse_f64`'s range (over 19 significant digits, above about 10^46), which
        // serde_json read: no trace or frame has such a number where a float is read.
        assert_eq!(
            error::<f64>("1e300"),
            "number out of range at line 1 column 1"
        );
        assert_eq!(
            error::<f64>("18446744073709551615"),
            "number out of range at line 1 column 1"
        );
        assert_eq!(
            error::<f64>("1."),
            "EOF while parsing a value at line 1 column 3"
        );
        assert_eq!(error::<f64>("1.e3"), "invalid number at line 1 column 3");
        assert_eq!(
            error::<f64>("1e"),
            "EOF while parsing a value at line 1 column 3"
        );
        assert_eq!(error::<f64>(".5"), "expected value at line 1 column 1");
        assert_eq!(
            error::<f64>("true"),
            "invalid type: boolean `true`, expected f64 at line 1 column 1"
        );
    }

    #[test]
    fn objects_arrays_and_skipping() {
        let text = r#" { "a" : [1, 2 ,3] , "skip": {"x":[true,false,null,"s\"",-1.5e-3,{}]}, "b":null, "c":[] } "#;
        let mut reader = Reader::new(text);
        reader.object("a test").unwrap();
        let mut seen = vec![];
        while let Some(key) = reader.next_key().unwrap() {
            match &*key {
                "a" => seen.push(format!("a={:?}", Vec::<u64>::read(&mut reader).unwrap())),
                "b" => seen.push(format!("b={:?}", Option::<u64>::read(&mut reader).unwrap())),
                "c" => seen.push(format!("c={:?}", Vec::<u64>::read(&mut reader).unwrap())),
                _ => reader.skip().unwrap(),
            }
        }
        reader.finish().unwrap();
        assert_eq!(seen, ["a=[1, 2, 3]", "b=None", "c=[]"]);
        assert_eq!(from_str::<(u16, u16)>("[3,4]").unwrap(), (3, 4));
        assert_eq!(
            error::<(u16, u16)>("[3]"),
            "invalid length 1, expected a tuple of size 2 at line 1 column 4"
        );
        assert_eq!(
            error::<(u16, u16)>("[3,4,5]"),
            "trailing characters at line 1 column 6"
        );
        assert_eq!(
            error::<Vec<u64>>("[1,]"),
            "trailing comma at line 1 column 4"
        );
        assert_eq!(
            error::<Vec<u64>>("[,1]"),
            "expected value at line 1 column 2"
        );
        assert_eq!(
            error::<Vec<u64>>("[1 2]"),
            "expected `,` or `]` at line 1 column 4"
        );
        assert_eq!(
            error::<Vec<u64>>("[1,2"),
            "EOF while parsing a list at line 1 column 5"
        );
        let skip = |text: &str| {
            let mut reader = Reader::new(text);
            reader
                .skip()
                .and_then(|()| reader.finish())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            skip(r#"{"a":1,}"#).unwrap_err(),
            "trailing comma at line 1 column 8"
        );
        assert_eq!(
            skip(r#"{"a" 1}"#).unwrap_err(),
            "expected `:` at line 1 column 6"
        );
        assert_eq!(
            skip(r#"{1:2}"#).unwrap_err(),
            "key must be a string at line 1 column 2"
        );
        assert_eq!(
            skip(r#"{"a":1"#).unwrap_err(),
            "EOF while parsing an object at line 1 column 7"
        );
        assert_eq!(
            skip("{\n\"a\":tru}").unwrap_err(),
            "expected ident at line 2 column 5"
        );
        assert_eq!(
            skip("[nul").unwrap_err(),
            "EOF while parsing a value at line 1 column 5"
        );
        assert_eq!(
            skip("").unwrap_err(),
            "EOF while parsing a value at line 1 column 1"
        );
        assert_eq!(
            skip("{} x").unwrap_err(),
            "trailing characters at line 1 column 4"
        );
        assert_eq!(
            skip("1 2").unwrap_err(),
            "trailing characters at line 1 column 3"
        );
        assert_eq!(skip(r#"{"a":{"b":[]}}"#), Ok(()));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        let text = nested(128);
        let mut reader = Reader::new(&text);
        assert_eq!(reader.skip(), Ok(()));
        let text = nested(129);
        let mut reader = Reader::new(&text);
        assert_eq!(
            reader.skip().unwrap_err().to_string(),
            "recursion limit exceeded at line 1 column 129"
        );
        let text = r#"{"a":"#.repeat(200);
        let mut reader = Reader::new(&text);
        assert_eq!(
            reader.skip().unwrap_err().to_string(),
            "recursion limit exceeded at line 1 column 641"
        );
    }

    #[test]
    fn truncated_input_is_refused_at_every_length() {
        let text = r#"{"a":[1,-2.5e3,"x\u00e9\n",true,false,null,{"b":{}}],"c":"d"}"#;
        let mut reader = Reader::new(text);
        assert_eq!(reader.skip(), Ok(()));
        for end in 0..text.len() {
            let mut reader = Reader::new(&text[..end]);
            let error = reader.skip().and_then(|()| reader.finish());
            assert!(
                error
                    .as_ref()
                    .is_err_and(|e| e.message().starts_with("EOF while parsing")),
                "{:?}: {error:?}",
                &text[..end]
            );
        }
    }

    /// Random JSON values written by serde_json read back equal through [`Reader`] (as a
    /// `serde_json::Value` rebuilt from the reader's pull events), and skip whole; the seed is
    /// printed so a failure can be replayed.
    #[test]
    fn random_values_read_back_as_serde_json_wrote_them() {
        use serde_json::Value;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        println!("seed {seed}");
        let mut rng = crate::rng::SimRng::new(seed);
        fn value(rng: &mut crate::rng::SimRng, depth: u32) -> Value {
            match rng.below(if depth > 4 { 6 } else { 8 }) {
                0 => Value::Null,
                1 => Value::Bool(rng.below(2) == 0),
                2 => Value::from(rng.next_u64()),
                3 => Value::from(rng.next_u64() as i64),
                4 => {
                    // Short decimals, as the trace and the page write them.
                    let whole = rng.below(2_000_000) as f64 - 1_000_000.0;
                    Value::from(whole / [1.0, 10.0, 1000.0, 1e6][rng.below(4) as usize])
                }
                5 => {
                    let chars = ['a', 'é', '"', '\\', '\n', '\u{1}', '😀', '\u{7f}', '/', '€'];
                    let len = rng.below(8);
                    Value::String(
                        (0..len)
                            .map(|_| chars[rng.below(chars.len() as u64) as usize])
                            .collect(),
                    )
                }
                6 => Value::Array((0..rng.below(5)).map(|_| value(rng, depth + 1)).collect()),
                _ => Value::Object(
                    (0..rng.below(5))
                        .map(|i| (format!("k{i}\u{e9}"), value(rng, depth + 1)))
                        .collect(),
                ),
            }
        }
        fn read(reader: &mut Reader<'_>) -> Result<Value> {
            let mut probe = Reader::new(reader.text);
            probe.pos = reader.pos;
            Ok(match probe.peek() {
                Some(b'{') => {
                    reader.object("")?;
                    let mut map = serde_json::Map::new();
                    while let Some(key) = reader.next_key()? {
                        map.insert(key.into_owned(), read(reader)?);
                    }
                    Value::Object(map)
                }
                Some(b'[') => Value::Array(
                    Vec::<Wrapped>::read(reader)?
                        .into_iter()
                        .map(|w| w.0)
                        .collect(),
                ),
                Some(b'"') => Value::String(reader.string_owned()?),
                Some(b't' | b'f') => Value::Bool(reader.bool()?),
                Some(b'n') => {
                    reader.null()?;
                    Value::Null
                }
                _ => {
                    let start = reader.pos;
                    match reader.i64() {
                        Ok(n) => Value::from(n),
                        Err(_) => {
                            reader.pos = start;
                            match reader.u64() {
                                Ok(n) => Value::from(n),
                                Err(_) => {
                                    reader.pos = start;
                                    Value::from(reader.f64()?)
                                }
                            }
                        }
                    }
                }
            })
        }
        struct Wrapped(Value);
        impl FromJson for Wrapped {
            fn read(reader: &mut Reader<'_>) -> Result<Self> {
                read(reader).map(Wrapped)
            }
        }
        for _ in 0..2000 {
            let original = value(&mut rng, 0);
            for text in [
                serde_json::to_string(&original).unwrap(),
                serde_json::to_string_pretty(&original).unwrap(),
            ] {
                let back = from_str::<Wrapped>(&text).map_err(|e| format!("{e}: {text}"));
                assert_eq!(back.unwrap().0, original, "seed {seed}: {text}");
                let mut reader = Reader::new(&text);
                assert_eq!(
                    reader.skip().and_then(|()| reader.finish()),
                    Ok(()),
                    "{text}"
                );
            }
        }
    }
}
