//! [`Label`]: a message's label (`GET /products/7`, `200 Desk Lamp (v1)`) in a trace's
//! [`super::Event::Sent`], held in place when it is short, as nearly every label is.
//!
//! Every message of a run is recorded with its label: as a `String` each, labels were half of
//! the engine's allocations on issue 9's big run, and in the page's WebAssembly each allocation
//! and free is a call into its allocator (issue 9's engine benchmark). Of that run's labels, all
//! but a few renames fit in [`INLINE`] bytes.

use serde::{Serialize, Serializer};
use std::fmt;

/// The longest label held in place: 30 bytes and their length make the label 32 bytes, the
/// size of a `String` and its tag natively.
const INLINE: usize = 30;

/// A label as text: written to the trace as a string, equal to another with the same text
/// whichever way each is held.
#[derive(Clone)]
pub enum Label {
    /// Text of at most [`INLINE`] bytes: the first `len` of `bytes`.
    Inline {
        /// How many bytes of `bytes` hold the text.
        len: u8,
        /// The text's bytes, then zeros.
        bytes: [u8; INLINE],
    },
    /// Longer text.
    Heap(String),
}

impl Label {
    /// `parts` one after another, as `parts.concat()` writes them, without allocating when they
    /// fit in place.
    pub fn join(parts: &[&str]) -> Label {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        if len > INLINE {
            return Label::Heap(parts.concat());
        }
        let mut bytes = [0; INLINE];
        let mut end = 0;
        for part in parts {
            // A slice copy (one `memory.copy` in WebAssembly), not a loop over the bytes: the
            // loop's bounds check per byte cost more (issue 9's engine benchmark).
            bytes[end..end + part.len()].copy_from_slice(part.as_bytes());
            end += part.len();
        }
        Label::Inline {
            len: len as u8,
            bytes,
        }
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        self
    }

    /// The bytes it holds on the heap, for the page's memory accounting.
    pub fn heap_capacity(&self) -> usize {
        match self {
            Label::Inline { .. } => 0,
            Label::Heap(text) => text.capacity(),
        }
    }
}

impl std::ops::Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Whole `str`s were copied in, so the first chunk of valid UTF-8 is all of them. (Not
            // `str::from_utf8`, whose validation is inlined wherever it is called.)
            Label::Inline { len, bytes } => bytes[..*len as usize]
                .utf8_chunks()
                .next()
                .map_or("", |chunk| chunk.valid()),
            Label::Heap(text) => text,
        }
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Label {
        Label::join(&[text])
    }
}

/// Kept where it is: formatted labels are the rare ones.
impl From<String> for Label {
    fn from(text: String) -> Label {
        Label::Heap(text)
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Label) -> bool {
        **self == **other
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        &**self == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::{INLINE, Label};

    #[test]
    fn a_label_reads_as_its_text_whichever_way_it_is_held() {
        let long = "PUT /products/7 Classic Coffee Mill";
        for parts in [
            &["GET /products/", "7"][..],
            &[],
            &[""],
            &["200 ", "Café au lait", " (v", "12", ")"],
            &["x"; INLINE],
            &["x"; INLINE + 1],
            &[long],
        ] {
            let text = parts.concat();
            let label = Label::join(parts);
            assert_eq!(&*label, text);
            assert_eq!(label, Label::from(text.as_str()));
            assert_eq!(label, Label::from(text.clone()));
            assert_eq!(label.to_string(), text);
            assert_eq!(format!("{label:?}"), format!("{text:?}"));
            assert_eq!(
                serde_json::to_string(&label).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
            assert_eq!(
                matches!(label, Label::Inline { .. }),
                text.len() <= INLINE,
                "{text}"
            );
            assert!(matches!(Label::from(text), Label::Heap(_)));
        }
        assert_eq!(Label::from(long).heap_capacity(), long.len());
        assert_eq!(Label::from("GET /x").heap_capacity(), 0);
    }
}
