//! Numbers read from decimal text without core's float parser. `str::parse::<f64>` brings
//! `core::num::dec2flt` into the page's WebAssembly: about 5 KB of code and a 10.4 KB table of
//! 128-bit powers of five that barely compresses (issue 9). The numbers the page and the command
//! line read — knob values, times, speeds, fault specs — are short decimals a person typed or the
//! page wrote (at most 17 significant digits), which [`parse_f64`] reads exactly with a few
//! integer operations.

/// The most significant digits [`parse_f64`] reads: the digits from the first non-zero one to
/// the last non-zero one, as a whole number `W`, fit a `u64`.
const MAX_DIGITS: u32 = 19;
/// The largest `E` of `W × 10^E` that [`parse_f64`] reads after moving the exponent's tens into
/// `W` while it fits a `u64`: `W × 5^27` fits 127 bits.
const MAX_EXPONENT: i64 = 27;
/// The smallest `E` of `W × 10^E` that [`parse_f64`] reads, `W` without trailing zeros:
/// `5^54` fits 126 bits, so the remainder of the division by it, doubled, fits a `u128`.
const MIN_EXPONENT: i64 = -54;

/// The number `text` writes, exactly the `f64` that `text.parse::<f64>()` gives, or `None`.
///
/// Reads what `str::parse::<f64>` reads as a finite decimal: an optional sign, digits with an
/// optional `.` among or after or before them (`1.`, `.5`), then optionally `e` or `E`, an
/// optional sign and digits; no spaces (callers trim) and no `_`. Unlike `str::parse::<f64>` it
/// refuses, besides `inf`, `infinity` and `nan`, a number written with more than 19 significant
/// digits, and one whose value `W × 10^E` (`W` the significant digits as a whole number) has
/// `E < −54` or is over about 10^46 (`E > 27` after moving `E`'s tens into `W` while it fits a
/// `u64`): it reads every number of up to 19 significant digits from 10^−35 to 10^46, and
/// shorter ones down to 10^−54. No number a person or a share link gives is refused: people
/// type short numbers, and the page writes at most 17 significant digits (shortest round trip).
/// Every caller already refused a number that is not finite (the URL's parameters, the knobs,
/// fault specs) or out of its range (fault times 0 to 600 s, the knobs their own ranges, the
/// URL's `until`, `speed` and `t` above or from 0); the form's fields (time, seek, duration) are
/// numbers a browser's `<input>` gives. What a caller took before and refuses now (with its usual
/// error or note) is only a number far beyond any run (`until=1e50`) or one so near zero that
/// it was zero (`1e-60`).
///
/// Exact: `W × 10^E = W × 5^E × 2^E`. For `E ≥ 0`, `W × 5^E` is a whole number of at most 127
/// bits; for `E < 0`, `W / 5^−E` is computed by long division to 64 significant bits and a last
/// bit set when the remainder is not zero. Either is rounded to an `f64` once (by `u64 as f64`,
/// which rounds to nearest, ties to even, as the parser does), then scaled by a power of two,
/// exactly, as the results are far from the subnormal range.
pub fn parse_f64(text: &str) -> Option<f64> {
    let (negative, mut rest) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    // The value is `w × 10^exponent`.
    let (mut w, mut exponent) = (0_u64, 0_i64);
    let (mut digits, mut any_digit, mut point) = (0, false, false);
    while let Some((&c, tail)) = rest.split_first() {
        match c {
            b'0'..=b'9' => {
                any_digit = true;
                if digits < MAX_DIGITS {
                    w = w * 10 + u64::from(c - b'0');
                    digits += u32::from(w != 0);
                    exponent -= i64::from(point);
                } else if c != b'0' {
                    return None;
                } else {
                    // A zero past the 19 digits: a ten more before the point, nothing after.
                    exponent += i64::from(!point);
                }
            }
            b'.' if !point => point = true,
            _ => break,
        }
        rest = tail;
    }
    if !any_digit {
        return None;
    }
    if let [e, tail @ ..] = rest {
        if *e | 0x20 != b'e' {
            return None;
        }
        let (minus, tail) = match tail {
            [b'-', tail @ ..] => (true, tail),
            [b'+', tail @ ..] => (false, tail),
            tail => (false, tail),
        };
        if tail.is_empty() {
            return None;
        }
        let mut written = 0_i64;
        for &c in tail {
            if !c.is_ascii_digit() {
                return None;
            }
            // Saturates far beyond the range read: only its being out of range matters.
            written = (written * 10 + i64::from(c - b'0')).min(1 << 40);
        }
        exponent += if minus { -written } else { written };
    }
    let magnitude = if w == 0 { 0.0 } else { scaled(w, exponent)? };
    Some(if negative { -magnitude } else { magnitude })
}

/// `w × 10^exponent` rounded to the nearest `f64`, `w` not zero, or `None` out of the range
/// [`parse_f64`] reads.
fn scaled(mut w: u64, mut exponent: i64) -> Option<f64> {
    while w.is_multiple_of(10) {
        w /= 10;
        exponent += 1;
    }
    while exponent > MAX_EXPONENT && w <= u64::MAX / 10 {
        w *= 10;
        exponent -= 1;
    }
    if !(MIN_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
        return None;
    }
    let five = 5_u128.pow(exponent.unsigned_abs() as u32);
    // `bits × 2^power`, `bits` rounded to 64 bits with a last bit set when any lower bit was.
    let (bits, power) = if exponent >= 0 {
        let product = u128::from(w) * five;
        let high = 64 - product.leading_zeros().min(64);
        let low = product & ((1 << high) - 1);
        (
            (product >> high) as u64 | u64::from(low != 0),
            exponent + i64::from(high),
        )
    } else {
        // `w / 5^k` by long division, one bit at a time, until the quotient has 64 bits: the
        // dividend is `w`'s bits from its top one down, then zeros.
        let shift = w.leading_zeros();
        let m = w << shift;
        let (mut quotient, mut remainder, mut steps) = (0_u64, 0_u128, 0_i64);
        while quotient >> 63 == 0 {
            let bit = if steps < 64 {
                (m >> (63 - steps)) & 1
            } else {
                0
            };
            remainder = remainder << 1 | u128::from(bit);
            quotient <<= 1;
            if remainder >= five {
                remainder -= five;
                quotient |= 1;
            }
            steps += 1;
        }
        // w = m × 2^−shift, and after `steps` bits the quotient is m × 2^(steps − 64) / 5^k;
        // 10^exponent = 5^−k × 2^exponent.
        (
            quotient | u64::from(remainder != 0),
            64 - steps - i64::from(shift) + exponent,
        )
    };
    // `power` is within −300..=100: 2^power is a normal `f64`, and so is the product.
    Some(bits as f64 * f64::from_bits(((1023 + power) as u64) << 52))
}

/// The whole number of `10^−places` units that `text` writes: `12.000345` with 6 places is
/// 12,000,345. Digits with an optional `.` and at most `places` digits after it; `None` for any
/// other text or a number beyond `u64`.
pub fn parse_fixed(text: &str, places: u32) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > places as usize {
        return None;
    }
    let number = |digits: &str| {
        digits.bytes().try_fold(0_u64, |n, c| {
            c.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))?
        })
    };
    let scale = 10_u64.checked_pow(places - fraction.len() as u32)?;
    number(whole)?
        .checked_mul(10_u64.checked_pow(places)?)?
        .checked_add(number(fraction)?.checked_mul(scale)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;

    /// A seed from `DECIMAL_TEXT_SEED`, or from the clock; printed, so a failure can be replayed.
    fn seed(test: &str) -> u64 {
        let seed = std::env::var("DECIMAL_TEXT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("{test}: DECIMAL_TEXT_SEED={seed}");
        seed
    }

    fn pick<'a>(rng: &mut SimRng, choices: &[&'a str]) -> &'a str {
        choices[rng.below(choices.len() as u64) as usize]
    }

    /// `parse_f64` agrees with `str::parse::<f64>`, bit for bit, on `text`.
    fn agrees(text: &str, seed: u64) {
        let core = text
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let ours = parse_f64(text).unwrap_or_else(|| panic!("{text:?} refused (seed {seed})"));
        assert_eq!(
            ours.to_bits(),
            core.to_bits(),
            "{text:?}: {ours:e} instead of {core:e} (seed {seed})"
        );
    }

    /// Significant digits `d` times 10^`e`, written in one of the many ways the syntax allows:
    /// a point anywhere or none, leading and trailing zeros, any exponent, a sign.
    fn written(rng: &mut SimRng, d: &str, e: i64) -> String {
        let x = if rng.below(3) == 0 {
            0
        } else {
            rng.below(81) as i64 - 40
        };
        // The mantissa's text writes d × 10^p.
        let p = (e - x).clamp(-80, 80);
        let x = e - p;
        let mut m = String::new();
        m.push_str(&"0".repeat(rng.below(3) as usize));
        if p >= 0 {
            m.push_str(d);
            m.push_str(&"0".repeat(p as usize));
            m.push_str(pick(rng, &["", "", ".", ".0", ".000"]));
        } else {
            let k = -p as usize;
            if k >= d.len() {
                m.push_str(pick(rng, &["", "0"]));
                m.push('.');
                m.push_str(&"0".repeat(k - d.len()));
                m.push_str(d);
            } else {
                m.push_str(&d[..d.len() - k]);
                m.push('.');
                m.push_str(&d[d.len() - k..]);
            }
            m.push_str(&"0".repeat(rng.below(3) as usize));
        }
        let sign = pick(rng, &["", "", "-", "+"]);
        if x == 0 && rng.below(2) == 0 {
            return format!("{sign}{m}");
        }
        let e = pick(rng, &["e", "E"]);
        let exponent_sign = if x < 0 { "-" } else { pick(rng, &["", "+"]) };
        let zeros = "0".repeat(rng.below(2) as usize);
        format!("{sign}{m}{e}{exponent_sign}{zeros}{}", x.unsigned_abs())
    }

    /// 1 to 19 random digits, the first and the last not zero.
    fn significant(rng: &mut SimRng) -> String {
        let n = 1 + rng.below(19) as usize;
        let mut d: Vec<u8> = (0..n).map(|_| b'0' + rng.below(10) as u8).collect();
        d[0] = b'1' + rng.below(9) as u8;
        d[n - 1] = b'1' + rng.below(9) as u8;
        String::from_utf8(d).unwrap()
    }

    #[test]
    fn reads_what_the_parser_reads_within_its_range() {
        let seed = seed("reads_what_the_parser_reads_within_its_range");
        let mut rng = SimRng::new(seed);
        for _ in 0..2_000_000 {
            let d = significant(&mut rng);
            // E of W × 10^E, from −54 to 27, or its tens in W as long as W fits a u64.
            let room = (19 - d.len() as i64) + i64::from(d.as_str() < "1844674407370955161");
            let e =
                MIN_EXPONENT + rng.below((MAX_EXPONENT - MIN_EXPONENT + 1 + room) as u64) as i64;
            let text = written(&mut rng, &d, e);
            agrees(&text, seed);
        }
    }

    #[test]
    fn reads_ties_and_the_edges_of_its_range() {
        let seed = seed("reads_ties_and_the_edges_of_its_range");
        let mut rng = SimRng::new(seed);
        for text in [
            "0.1",
            "0.2",
            "0.3",
            "1",
            "1.",
            ".5",
            "-.5",
            "+1",
            "1e0",
            "1E+0",
            "1e-0",
            "0.5e1",
            "9007199254740991",
            "9007199254740992",
            "9007199254740993",
            "9007199254740994",
            "9007199254740995",
            "9007199254740997",
            "18014398509481985",
            "9999999999999999999",
            "9999999999999999999e27",
            "1844674407370955161e28",
            "1e27",
            "1e-54",
            "9999999999999999999e-54",
            "1.7976931348623157e46",
            "123456789012345678e-54",
            "4.9406564584124654e-38",
            "0.30000000000000004",
            "2.220446049250313e-16",
            "1e-300e",
            "00000000000000000000000000001",
            "1.0000000000000000000000000000",
            "0.000000000000000000000000000000000000000000000000000123",
        ] {
            if text.ends_with("e-300e") {
                assert_eq!(parse_f64(text), None);
            } else {
                agrees(text, seed);
            }
        }
        for zero in [
            "0",
            "-0",
            "+0.0",
            "0e999999999999",
            "-0.000e-99999",
            ".0",
            "0.",
        ] {
            agrees(zero, seed);
        }
        // Halfway between two f64s: (2m + 1) × 2^(k − 1), whole numbers of up to 19 digits, and
        // the numbers either side of them.
        for _ in 0..200_000 {
            let m = (1 << 52) | rng.below(1 << 52);
            let k = 1 + rng.below(11);
            let tie = (2 * m + 1) << (k - 1);
            for n in [tie - 1, tie, tie + 1] {
                if n < 10_u64.pow(19) {
                    let digits = n.to_string();
                    let d = digits.trim_end_matches('0');
                    let e = (digits.len() - d.len()) as i64;
                    agrees(&written(&mut rng, d, e), seed);
                }
            }
        }
    }

    #[test]
    fn refuses_what_it_does_not_read_exactly() {
        for text in [
            "5e-324",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "1e400",
            "1e-55",
            "12345678901234567891",
            "0.12345678901234567891",
            "1.00000000000000000001",
            "1e47",
            "inf",
            "-infinity",
            "NaN",
        ] {
            assert!(text.parse::<f64>().is_ok(), "{text}");
            assert_eq!(parse_f64(text), None, "{text}");
        }
        for text in [
            "", "+", "-", ".", "e5", ".e5", "1e", "1e+", "1e-", "1_000", " 1", "1 ", "1..2",
            "1.2.3", "+-1", "--1", "1e+-1", "1e1.5", "1f", "0x10", "1,5", "١",
        ] {
            assert!(text.parse::<f64>().is_err(), "{text}");
            assert_eq!(parse_f64(text), None, "{text}");
        }
    }

    /// Random short texts of the characters the syntax uses (and a few it does not): whatever
    /// `parse_f64` reads, the parser reads the same; whatever the parser refuses, so does it; and
    /// what only the parser reads is not finite or out of range.
    #[test]
    fn agrees_with_the_parser_on_random_texts() {
        let seed = seed("agrees_with_the_parser_on_random_texts");
        let mut rng = SimRng::new(seed);
        let alphabet = b"0123456789012345678900.eE+-_ xinfa";
        for _ in 0..1_000_000 {
            let n = rng.below(9) as usize;
            let text: String = (0..n)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
                .collect();
            match (parse_f64(&text), text.parse::<f64>()) {
                (Some(ours), Ok(core)) => {
                    assert_eq!(ours.to_bits(), core.to_bits(), "{text:?} (seed {seed})")
                }
                (None, Err(_)) => {}
                (None, Ok(core)) => assert!(
                    !core.is_finite() || core.abs() < 1e-46 || core.abs() > 1e27,
                    "{text:?} refused (seed {seed})"
                ),
                (Some(ours), Err(_)) => panic!("{text:?} read as {ours} (seed {seed})"),
            }
        }
    }

    #[test]
    fn fixed_point_text_reads_whole_units() {
        assert_eq!(parse_fixed("12.000345", 6), Some(12_000_345));
        assert_eq!(parse_fixed("12.5", 6), Some(12_500_000));
        assert_eq!(parse_fixed("12", 6), Some(12_000_000));
        assert_eq!(parse_fixed(".5", 6), Some(500_000));
        assert_eq!(parse_fixed("0.000000", 6), Some(0));
        assert_eq!(parse_fixed("18446744073709.551615", 6), Some(u64::MAX));
        for bad in [
            "",
            ".",
            "1.0000001",
            "-1",
            "+1",
            "1e3",
            " 1",
            "1.2.3",
            "18446744073709.551616",
        ] {
            assert_eq!(parse_fixed(bad, 6), None, "{bad}");
        }
    }
}
