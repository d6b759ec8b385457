//! [`RowKey`]: the key of a row a read saw ([`super::Observed`]), which is nearly always a number
//! (a product, a driver) and is kept as its digits on the stack when it is one.
//!
//! Every read of request/response's big run reports the key of each product it saw: with a
//! `String` each, that was a sixth of the engine's allocations, and in the page's WebAssembly
//! each allocation and free is a call into its allocator (issue 9's engine benchmark).

use crate::decimal::Decimal;
use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A row's key as text. Two keys are equal, ordered and hashed as their text, whichever way each
/// is held, and it is written to the trace as a string.
#[derive(Clone)]
pub enum RowKey {
    /// A number, as its decimal digits.
    Number(Decimal),
    /// Any other text.
    Text(String),
}

impl RowKey {
    /// The key `n.to_string()`, without allocating.
    pub fn number(n: u64) -> RowKey {
        RowKey::Number(Decimal::new(n))
    }
}

impl std::ops::Deref for RowKey {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            RowKey::Number(digits) => digits,
            RowKey::Text(text) => text,
        }
    }
}

impl From<String> for RowKey {
    fn from(text: String) -> RowKey {
        RowKey::Text(text)
    }
}

impl From<&str> for RowKey {
    fn from(text: &str) -> RowKey {
        RowKey::Text(text.to_string())
    }
}

impl PartialEq for RowKey {
    fn eq(&self, other: &RowKey) -> bool {
        **self == **other
    }
}

impl Eq for RowKey {}

impl PartialEq<str> for RowKey {
    fn eq(&self, other: &str) -> bool {
        &**self == other
    }
}

impl PartialEq<&str> for RowKey {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl PartialOrd for RowKey {
    fn partial_cmp(&self, other: &RowKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RowKey {
    fn cmp(&self, other: &RowKey) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for RowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl fmt::Debug for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for RowKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::RowKey;

    #[test]
    fn a_number_key_is_the_same_key_as_its_text() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let (number, text) = (RowKey::number(n), RowKey::from(n.to_string()));
            assert_eq!(number, text, "{n}");
            assert_eq!(&*number, n.to_string());
            assert_eq!(format!("{number:?} {number}"), format!("{text:?} {text}"));
            assert_eq!(
                serde_json::to_string(&number).unwrap(),
                serde_json::to_string(&n.to_string()).unwrap()
            );
            // Read as a `String` (an observed row's `key`, protocol/read.rs).
            let read = RowKey::from(crate::json::from_str::<String>(&format!("\"{n}\"")).unwrap());
            assert_eq!(read, number);
        }
        // Ordered as text, as the `String` keys were: "10" before "7".
        assert!(RowKey::number(10) < RowKey::number(7));
        let seven = RowKey::from("7");
        assert!(RowKey::number(10) < seven);
    }
}
