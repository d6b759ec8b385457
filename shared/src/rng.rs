//! The one seeded generator of a run.
//!
//! SplitMix64: tiny, fast, and defined by integer arithmetic only, so a seed gives the same stream
//! natively and in WebAssembly. Nothing here touches floating-point transcendental functions,
//! whose last bits differ between libm implementations.

/// A deterministic pseudo-random generator owned by the simulation.
#[derive(Clone, Debug)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..bound`; zero when `bound` is zero.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Multiply-shift maps 64 random bits onto the range with negligible bias for our bounds.
        high_product(self.next_u64(), bound)
    }

    /// True with probability `per_million / 1_000_000`.
    pub fn chance_per_million(&mut self, per_million: u32) -> bool {
        per_million > 0 && self.below(1_000_000) < per_million as u64
    }

    /// A child generator for an independent stream, derived from this one.
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

/// The high 64 bits of `x × bound`, which [`SimRng::below`] draws: the `u128` product's, in two
/// 64-bit multiplies when `bound` fits in 32 bits (every bound the engine draws below: jitter,
/// shares per million). WebAssembly has no 64 × 64 → 128-bit multiply, so a `u128` product is a
/// call to `__multi3`, a full 128 × 128 multiply: a hundredth of the engine's time in the page
/// (issue 9). The bits are the same (tested).
fn high_product(x: u64, bound: u64) -> u64 {
    if bound >> 32 != 0 {
        return ((x as u128 * bound as u128) >> 64) as u64;
    }
    // x = high·2^32 + low, so x·bound / 2^64 = (high·bound + low·bound / 2^32) / 2^32, and
    // flooring the inner division first loses nothing. Neither sum nor product overflows.
    (((x >> 32) * bound) + (((x & 0xFFFF_FFFF) * bound) >> 32)) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_product_has_the_high_bits_of_the_u128_product() {
        let seed = 0x5EED;
        println!("seed {seed}");
        let mut rng = SimRng::new(seed);
        let edges = [
            0,
            1,
            2,
            0xFFFF_FFFF,
            1 << 32,
            (1 << 32) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut pairs: Vec<(u64, u64)> = edges
            .iter()
            .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
            .collect();
        for _ in 0..100_000 {
            pairs.push((rng.next_u64(), rng.next_u64()));
            pairs.push((rng.next_u64(), rng.next_u64() >> 32));
        }
        for (x, bound) in pairs {
            assert_eq!(
                high_product(x, bound),
                ((x as u128 * bound as u128) >> 64) as u64,
                "{x} × {bound}"
            );
        }
    }

    #[test]
    fn same_seed_same_stream_and_different_seeds_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = SimRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = SimRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = SimRng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SimRng::new(42);
        let mut seen = [false; 10];
        for _ in 0..1_000 {
            let x = rng.below(10);
            assert!(x < 10);
            seen[x as usize] = true;
        }
        assert!(
            seen.iter().all(|s| *s),
            "every value of 0..10 appears in 1000 draws"
        );
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn chance_per_million_matches_its_rate_roughly() {
        let mut rng = SimRng::new(1);
        let hits = (0..100_000)
            .filter(|_| rng.chance_per_million(250_000))
            .count();
        assert!(
            (23_000..27_000).contains(&hits),
            "25% of 100000 draws, got {hits}"
        );
        assert!(!(0..1000).any(|_| rng.chance_per_million(0)));
    }
}
