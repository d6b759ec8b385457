//! Numbers as people read them: durations with sensible precision, percentages, clock times.

use shared::float_text::fixed;
use shared::time::Micros;

/// A latency or duration with about three significant digits: `0.42 ms`, `4.56 ms`, `45.6 ms`,
/// `456 ms`, then in seconds `4.56 s`, `12.3 s`, `456 s`.
pub fn duration(t: Micros) -> String {
    let ms = t.as_millis_f64();
    let s = t.as_secs_f64();
    if ms < 10.0 {
        format!("{} ms", fixed(ms, 2))
    } else if ms < 100.0 {
        format!("{} ms", fixed(ms, 1))
    } else if ms < 999.5 {
        format!("{} ms", fixed(ms, 0))
    } else if s < 9.995 {
        format!("{} s", fixed(s, 2))
    } else if s < 99.95 {
        format!("{} s", fixed(s, 1))
    } else {
        format!("{} s", fixed(s, 0))
    }
}

/// `part` as a percentage of `whole` with one decimal, or a dash when `whole` is zero.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".to_string();
    }
    let value = part as f64 * 100.0 / whole as f64;
    format!("{} %", fixed(value, 1))
}

/// The playhead as `12.34 s`.
pub fn clock(t: Micros) -> String {
    format!("{} s", fixed(t.as_secs_f64(), 2))
}

/// A run length as `30 s` or `12.5 s`, without needless decimals.
pub fn run_length(t: Micros) -> String {
    format!("{} s", trim_number(t.as_secs_f64()))
}

/// An event's time in the log: `12.340 s`, to the millisecond.
pub fn log_time(t: Micros) -> String {
    format!("{} s", fixed(t.as_secs_f64(), 3))
}

/// A speed as `0.1×`.
pub fn speed(multiple: f64) -> String {
    format!("{}×", trim_number(multiple))
}

/// A number with no trailing zeros: `0.25`, `1`, `12.5`; at most six decimals.
pub fn trim_number(value: f64) -> String {
    let text = fixed(value, 6).to_string();
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_about_three_digits() {
        let check = |us: u64, expected: &str| assert_eq!(duration(Micros(us)), expected);
        check(0, "0.00 ms");
        check(420, "0.42 ms");
        check(4_561, "4.56 ms");
        check(45_649, "45.6 ms");
        check(245_300, "245 ms");
        check(999_400, "999 ms");
        check(999_600, "1.00 s");
        check(2_506_000, "2.51 s");
        check(12_345_678, "12.3 s");
        check(456_000_000, "456 s");
    }

    #[test]
    fn percentages_and_clocks() {
        assert_eq!(percent(1, 8), "12.5 %");
        assert_eq!(percent(0, 8), "0.0 %");
        assert_eq!(percent(3, 0), "—");
        assert_eq!(clock(Micros(12_345_678)), "12.35 s");
        assert_eq!(log_time(Micros(12_340_000)), "12.340 s");
        assert_eq!(run_length(Micros::from_secs(30)), "30 s");
        assert_eq!(run_length(Micros::from_millis(12_500)), "12.5 s");
    }

    #[test]
    fn numbers_lose_trailing_zeros() {
        let check = |value: f64, expected: &str| assert_eq!(trim_number(value), expected);
        check(0.1, "0.1");
        check(0.02, "0.02");
        check(1.0, "1");
        check(12.5, "12.5");
        check(400.0, "400");
        check(-0.0, "0");
        assert_eq!(speed(0.25), "0.25×");
    }
}
