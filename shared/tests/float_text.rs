//! `shared::float_text` writes what `format!` writes, for every `f64`: the edge cases (zeros,
//! subnormals, ties, powers of two and ten and their neighbours, the largest values) and random
//! bit patterns and everyday numbers. The random cases' seed is printed; `FLOAT_TEXT_SEED=<seed>`
//! repeats a run and `FLOAT_TEXT_CASES=<n>` sets how many random values each part tries.

use shared::float_text::{exp, exp_fixed, fixed, shortest};
use shared::rng::SimRng;

/// Every precision the code uses, and some beyond.
const PRECISIONS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 17, 30];

fn check(x: f64) {
    assert_eq!(
        shortest(x).to_string(),
        format!("{x}"),
        "{{}} of {:#x}",
        x.to_bits()
    );
    assert_eq!(
        exp(x).to_string(),
        format!("{x:e}"),
        "{{:e}} of {:#x}",
        x.to_bits()
    );
    for n in PRECISIONS {
        let digits = n as usize;
        assert_eq!(
            fixed(x, n).to_string(),
            format!("{x:.digits$}"),
            "{{:.{n}}} of {:#x}",
            x.to_bits()
        );
    }
    for n in [0u8, 1, 2, 5, 16, 20] {
        let digits = n as usize;
        assert_eq!(
            exp_fixed(x, n).to_string(),
            format!("{x:.digits$e}"),
            "{{:.{n}e}} of {:#x}",
            x.to_bits()
        );
    }
}

fn check_both_signs(x: f64) {
    check(x);
    check(-x);
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn seed_and_cases() -> (u64, u64) {
    let seed = env("FLOAT_TEXT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("FLOAT_TEXT_SEED={seed}");
    (seed, env("FLOAT_TEXT_CASES").unwrap_or(20_000))
}

#[test]
fn the_edge_cases_read_as_format_writes_them() {
    let mut values = vec![
        0.0,
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::EPSILON,
        f64::from_bits(1),
        f64::from_bits(2),
        f64::from_bits(3),
        f64::from_bits((1 << 52) - 1),
        0.125,
        0.375,
        2.5,
        0.0000015,
        1e300,
        1e-300,
        1e21,
        1e22,
        1e23,
        1e15,
        1e16,
        1e17,
        0.1,
        0.2,
        0.3,
        1.0 / 3.0,
        2.0 / 3.0,
        123456.789,
        0.000123,
        1e-5,
        1e-7,
        9.5,
        99.5,
        999.5,
        0.95,
        0.995,
        0.9995,
        0.05,
        0.005,
        0.0005,
    ];
    for i in 0..64 {
        let p = 2f64.powi(i);
        values.extend([p - 1.0, p, p + 1.0]);
    }
    for i in -1074..=1023 {
        values.push(2f64.powi(i));
    }
    for i in -324..=308 {
        values.push(format!("1e{i}").parse().unwrap());
        values.push(format!("5e{i}").parse().unwrap());
        values.push(format!("9.5e{i}").parse().unwrap());
        values.push(format!("2.5e{i}").parse().unwrap());
    }
    // Halves of the last place of every precision, and every whole number and a half to 1000.
    for n in 0..=20 {
        let half: f64 = format!("0.{}5", "0".repeat(n)).parse().unwrap();
        values.extend([half, half * 3.0, half * 11.0]);
    }
    for i in 0..=1000 {
        values.extend([i as f64, i as f64 + 0.5, i as f64 / 8.0, i as f64 / 1024.0]);
    }
    let mut neighbours = Vec::new();
    for &x in &values {
        if x.is_finite() && x != 0.0 {
            neighbours.extend([
                f64::from_bits(x.to_bits() - 1),
                f64::from_bits(x.to_bits() + 1),
            ]);
        }
    }
    values.extend(neighbours);
    for x in values {
        if x.is_finite() || x.is_infinite() || x.is_nan() {
            check_both_signs(x);
        }
    }
}

#[test]
fn random_bit_patterns_read_as_format_writes_them() {
    let (seed, cases) = seed_and_cases();
    let mut rng = SimRng::new(seed);
    for _ in 0..cases {
        check(f64::from_bits(rng.next_u64()));
    }
}

#[test]
fn everyday_numbers_read_as_format_writes_them() {
    let (seed, cases) = seed_and_cases();
    let mut rng = SimRng::new(seed ^ 0x5eed);
    for _ in 0..cases {
        // Uniform in [0, 10^k), and small binary fractions (ties for every precision).
        let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let k = rng.below(20) as i32 - 8;
        check_both_signs(unit * 10f64.powi(k));
        let bits = rng.below(40);
        let whole = rng.below(1 << bits) as f64;
        let shift = rng.below(21);
        let fraction = rng.below(1 << 20) as f64 / (1u64 << shift) as f64;
        check_both_signs(whole + fraction);
        // What the page divides: milliseconds, percentages, coordinates.
        check_both_signs(rng.below(100_000_000) as f64 / 1_000.0);
        let part = rng.below(1_000_000) as f64;
        check_both_signs(part * 100.0 / (rng.below(1_000_000) + 1) as f64);
    }
}
