//! Numbers written as text, as `format!` writes them, without the standard library's float
//! formatting (`core::fmt::float`: Grisu and Dragon with their own big numbers, about 13 KB of the
//! page's WebAssembly before `wasm-opt`). Each function here writes exactly what `format!` does
//! for every `f64` (the property test in `shared/tests/float_text.rs` compares them over millions
//! of random values and the edge cases):
//!
//! | here | `format!` |
//! |---|---|
//! | `fixed(x, n)` | `{x:.n}` |
//! | `shortest(x)` | `{x}`, `x.to_string()` |
//! | `exp(x)` | `{x:e}` |
//! | `exp_fixed(x, n)` | `{x:.ne}` |
//!
//! `fixed` and `exp_fixed` round the exact binary value half to even, as `format!` does, from
//! its exact decimal expansion (at most 767 digits, worked out in base 10⁹); `shortest` and `exp`
//! take the shortest digits that read back as `x` from `zmij` (which the page has anyway: it is how
//! `serde_json` writes a float), the same digits `format!` picks but for a tie between two, which
//! `format!` breaks upwards and zmij to the even one. Code the page runs should format
//! a float through these, not `format!`; the native programs may use either.

use std::fmt;

/// How a [`FloatText`] writes its number.
#[derive(Clone, Copy)]
enum Style {
    /// `{:.N}`.
    Fixed(u8),
    /// `{}`.
    Shortest,
    /// `{:e}`.
    Exp,
    /// `{:.Ne}`.
    ExpFixed(u8),
}

/// A number to write as text: see [`fixed`], [`shortest`], [`exp`] and [`exp_fixed`].
#[derive(Clone, Copy)]
pub struct FloatText {
    x: f64,
    style: Style,
}

/// `x` with `digits` digits after the point, as `format!("{x:.digits$}")` writes it (the exact
/// value rounded half to even: `fixed(0.125, 2)` is `0.12`).
pub fn fixed(x: f64, digits: u8) -> FloatText {
    FloatText {
        x,
        style: Style::Fixed(digits),
    }
}

/// `x` as `x.to_string()` and `format!("{x}")` write it: the shortest digits that read back as
/// `x`, with no exponent (`1e21` is `1000000000000000000000`, `0.5` is `0.5`, `2.0` is `2`).
pub fn shortest(x: f64) -> FloatText {
    FloatText {
        x,
        style: Style::Shortest,
    }
}

/// `x` as `format!("{x:e}")` writes it: the shortest digits, one before the point, and the
/// exponent (`1.5e-7`, `1e3`).
pub fn exp(x: f64) -> FloatText {
    FloatText {
        x,
        style: Style::Exp,
    }
}

/// `x` as `format!("{x:.digits$e}")` writes it: `digits` digits after the first, rounded half to
/// even, and the exponent (`exp_fixed(3.5e20, 0)` is `4e20`).
pub fn exp_fixed(x: f64, digits: u8) -> FloatText {
    FloatText {
        x,
        style: Style::ExpFixed(digits),
    }
}

/// Decimal digits `d₁d₂…` (ASCII, no leading or trailing zeros; none for zero) and `point`: the
/// number is `0.d₁d₂… × 10^point`.
struct Digits {
    digits: Vec<u8>,
    point: i32,
}

impl Digits {
    /// The digit at `index` (0 is `d₁`), `0` beyond the written ones.
    fn at(&self, index: i32) -> u8 {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.digits.get(i).copied())
            .unwrap_or(b'0')
    }

    /// Keeps the first `keep` digits, rounding the rest off half to even.
    fn round(&mut self, keep: i32) {
        let Ok(keep) = usize::try_from(keep) else {
            // Less than a tenth of the last kept place: zero.
            self.digits.clear();
            self.point = 0;
            return;
        };
        let Some(&first) = self.digits.get(keep) else {
            return;
        };
        // The digits have no trailing zeros, so a 5 followed by more digits is above the half.
        let odd = keep > 0 && self.digits[keep - 1] & 1 == 1;
        let up = first > b'5' || (first == b'5' && (self.digits.len() > keep + 1 || odd));
        self.digits.truncate(keep);
        if up {
            self.increment();
        }
        self.trim();
    }

    /// Adds one to the last digit.
    fn increment(&mut self) {
        loop {
            match self.digits.last_mut() {
                Some(b'9') => {
                    self.digits.pop();
                }
                Some(last) => {
                    *last += 1;
                    return;
                }
                None => {
                    self.digits.push(b'1');
                    self.point += 1;
                    return;
                }
            }
        }
    }

    /// The same number without leading zeros.
    fn trimmed(mut self) -> Digits {
        let leading = self.digits.iter().take_while(|&&b| b == b'0').count();
        self.digits.drain(..leading);
        self.point -= leading as i32;
        self.trim();
        self
    }

    /// Drops trailing zeros (and makes zero's `point` 0).
    fn trim(&mut self) {
        while self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.point = 0;
        }
    }

    /// The exact decimal expansion of `x` (finite, not negative).
    fn exact(x: f64) -> Digits {
        const BASE: u64 = 1_000_000_000;
        let (mut m, mut e) = decompose(x);
        if m == 0 {
            return Digits {
                digits: Vec::new(),
                point: 0,
            };
        }
        let zeros = m.trailing_zeros();
        m >>= zeros;
        e += zeros as i32;
        // x = m·2^e: m·2^e when e ≥ 0, else m·5^-e / 10^-e, in base-10⁹ limbs, lowest first.
        let mut limbs: Vec<u32> = Vec::new();
        while m > 0 {
            limbs.push((m % BASE) as u32);
            m /= BASE;
        }
        let (mut left, step, factor) = if e >= 0 {
            (e as u32, 29, 2u64)
        } else {
            (e.unsigned_abs(), 13, 5)
        };
        while left > 0 {
            let n = left.min(step);
            left -= n;
            let by = factor.pow(n);
            let mut carry = 0u64;
            for limb in &mut limbs {
                let v = *limb as u64 * by + carry;
                *limb = (v % BASE) as u32;
                carry = v / BASE;
            }
            while carry > 0 {
                limbs.push((carry % BASE) as u32);
                carry /= BASE;
            }
        }
        let mut digits = Vec::with_capacity(limbs.len() * 9);
        for &limb in limbs.iter().rev() {
            let mut nine = [b'0'; 9];
            let mut v = limb;
            for d in nine.iter_mut().rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
            digits.extend_from_slice(&nine);
        }
        let point = digits.len() as i32 + e.min(0);
        Digits { digits, point }.trimmed()
    }

    /// The shortest digits that read back as `x` (finite, not negative), from `zmij`.
    fn shortest(x: f64) -> Digits {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format_finite(x).as_bytes();
        // zmij writes `123.45`, `1e-7`, `1.5e+300`, `0.001`: digits, a point, maybe an exponent.
        let mut digits = Vec::with_capacity(text.len());
        let mut point = None;
        let mut exponent = 0i32;
        let mut negative = false;
        let mut in_exponent = false;
        for &b in text {
            match b {
                b'.' => point = Some(digits.len() as i32),
                b'e' => in_exponent = true,
                b'-' => negative = true,
                b'+' => {}
                _ if in_exponent => exponent = exponent * 10 + (b - b'0') as i32,
                _ => digits.push(b),
            }
        }
        if negative {
            exponent = -exponent;
        }
        let mut d = Digits {
            point: point.unwrap_or(digits.len() as i32) + exponent,
            digits,
        }
        .trimmed();
        // When x lies halfway between two shortest candidates, zmij takes the even one and
        // `format!` the upper one (`2^-25` is 2.98023223876953125e-8: `…312` and `…313`). Both
        // are a unit of the last digit apart and within x's rounding interval, which is narrower
        // than 2^-52·x for a normal x, so it needs 16 digits or more, and x's exact expansion is
        // one digit longer: at most 18 digits, so x has at most 25 binary digits after the
        // point (m·2^-k with m odd is m·5^k / 10^k, and 5^26 has 19 digits). A subnormal has
        // more.
        if d.digits.len() >= 16 && fraction_bits(x) <= 25 {
            let exact = Digits::exact(x);
            if exact.point == d.point
                && exact.digits.len() == d.digits.len() + 1
                && exact.digits.starts_with(&d.digits)
                && exact.digits.last() == Some(&b'5')
            {
                d.increment();
                d.trim();
            }
        }
        d
    }

    /// Writes the number without an exponent, with `fraction` digits after the point.
    fn write_plain(&self, f: &mut fmt::Formatter<'_>, fraction: i32) -> fmt::Result {
        let mut text = Vec::new();
        if self.point <= 0 {
            text.push(b'0');
        }
        for i in 0..self.point {
            text.push(self.at(i));
        }
        if fraction > 0 {
            text.push(b'.');
            for i in self.point..self.point + fraction {
                text.push(self.at(i));
            }
        }
        f.write_str(ascii(&text))
    }

    /// Writes the number as `d.ddde±x`, with `fraction` digits after the point.
    fn write_exp(&self, f: &mut fmt::Formatter<'_>, fraction: i32) -> fmt::Result {
        let mut text = vec![self.at(0)];
        if fraction > 0 {
            text.push(b'.');
            for i in 1..=fraction {
                text.push(self.at(i));
            }
        }
        text.push(b'e');
        f.write_str(ascii(&text))?;
        let exponent = if self.digits.is_empty() {
            0
        } else {
            self.point - 1
        };
        // Through `write!`, not `exponent.fmt(f)`, so the caller's width does not pad it.
        write!(f, "{exponent}")
    }
}

/// `x = m·2^e` (`m` below 2^53; zero for zero), finite.
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let biased = (bits >> 52) as i32 & 0x7ff;
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    }
}

/// How many binary digits `x` (finite) has after the point.
fn fraction_bits(x: f64) -> i32 {
    let (m, e) = decompose(x);
    if m == 0 {
        0
    } else {
        -(e + m.trailing_zeros() as i32)
    }
}

/// `{x:.n}` of a finite, not negative `x` the common way: a normal number below 2^64 with at
/// most 70 binary digits after the point (everything from about 4·10⁻⁶ up), and at most 17
/// digits after the decimal point. Exact in `u128` (the fraction times 10^n is below 2^127), on
/// the stack: the text and where it starts in the buffer. `None` for the other numbers.
fn fixed_fast(x: f64, n: u8) -> Option<([u8; 40], usize)> {
    let (m, e) = decompose(x);
    if n > 17 || m < 1 << 52 || !(-70..=11).contains(&e) {
        return None;
    }
    // x = whole + fraction / 2^k.
    let k = (-e).max(1) as u32;
    let (mut whole, fraction) = if e >= 0 {
        (m << e, 0)
    } else if k >= 64 {
        (0, m)
    } else {
        (m >> k, m & ((1 << k) - 1))
    };
    let scale = 10u128.pow(n as u32);
    let scaled = fraction as u128 * scale;
    let mut digits = (scaled >> k) as u64;
    let rest = scaled & ((1 << k) - 1);
    let half = 1u128 << (k - 1);
    let odd = if n == 0 { whole } else { digits } & 1 == 1;
    if rest > half || (rest == half && odd) {
        digits += 1;
        if digits as u128 == scale {
            digits = 0;
            whole += 1;
        }
    }
    let mut text = [b'0'; 40];
    let mut start = text.len();
    if n > 0 {
        for _ in 0..n {
            start -= 1;
            text[start] = b'0' + (digits % 10) as u8;
            digits /= 10;
        }
        start -= 1;
        text[start] = b'.';
    }
    loop {
        start -= 1;
        text[start] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            return Some((text, start));
        }
    }
}

/// ASCII digits and punctuation as a `&str`. (Not `str::from_utf8`, whose validation is inlined
/// wherever it is called.)
fn ascii(text: &[u8]) -> &str {
    text.utf8_chunks().next().map_or("", |chunk| chunk.valid())
}

impl fmt::Display for FloatText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.x;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_sign_negative() {
            f.write_str("-")?;
        }
        if x.is_infinite() {
            return f.write_str("inf");
        }
        let x = x.abs();
        match self.style {
            Style::Fixed(n) => {
                if let Some((text, start)) = fixed_fast(x, n) {
                    return f.write_str(ascii(&text[start..]));
                }
                let mut d = Digits::exact(x);
                d.round(d.point + n as i32);
                d.write_plain(f, n as i32)
            }
            Style::Shortest => {
                let d = Digits::shortest(x);
                d.write_plain(f, d.digits.len() as i32 - d.point)
            }
            Style::Exp => {
                let d = Digits::shortest(x);
                d.write_exp(f, d.digits.len() as i32 - 1)
            }
            Style::ExpFixed(n) => {
                let mut d = Digits::exact(x);
                d.round(n as i32 + 1);
                d.write_exp(f, n as i32)
            }
        }
    }
}
