//! Time as an integer count of microseconds: exact, ordered, and the same on every platform.

use serde::{Deserialize, Serialize};
use std::ops::{Add, Sub};

/// A point in a run, or a duration, in whole microseconds since the run started.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Micros(pub u64);

impl Micros {
    /// The start of a run.
    pub const ZERO: Micros = Micros(0);

    /// Whole milliseconds.
    pub const fn from_millis(ms: u64) -> Micros {
        Micros(ms * 1_000)
    }

    /// Whole seconds.
    pub const fn from_secs(s: u64) -> Micros {
        Micros(s * 1_000_000)
    }

    /// Seconds given as a decimal knob value, rounded to the nearest microsecond.
    pub fn from_secs_f64(s: f64) -> Micros {
        Micros((s.max(0.0) * 1e6).round() as u64)
    }

    /// Milliseconds given as a decimal knob value, rounded to the nearest microsecond.
    pub fn from_millis_f64(ms: f64) -> Micros {
        Micros((ms.max(0.0) * 1e3).round() as u64)
    }

    /// This time in seconds, for display.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// This time in milliseconds, for display.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e3
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_sub(self, earlier: Micros) -> Micros {
        Micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add for Micros {
    type Output = Micros;
    fn add(self, rhs: Micros) -> Micros {
        Micros(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Micros {
    type Output = Micros;
    fn sub(self, rhs: Micros) -> Micros {
        self.saturating_sub(rhs)
    }
}

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 >= 1_000_000 {
            write!(f, "{} s", crate::float_text::fixed(self.as_secs_f64(), 2))
        } else {
            write!(
                f,
                "{} ms",
                crate::float_text::fixed(self.as_millis_f64(), 1)
            )
        }
    }
}
