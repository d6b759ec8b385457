//! A number written out in decimal on the stack, to use as text without allocating: the key of
//! a row read by number (an order, a product, a ride) and the numbers in the labels of the
//! messages. The simulation does both for nearly every message, and in the page's WebAssembly
//! each allocation is a call into its allocator (a sixth of the engine's time before issue 9's
//! engine pass) and each `format!` a run of calls through `core::fmt`.

/// `n` in decimal, read as the `&str` that `n.to_string()` would give.
#[derive(Copy, Clone)]
pub struct Decimal {
    digits: [u8; 20],
    // A byte, not a `usize`: the digits and their start fit in 21 bytes, so a key holding a
    // `Decimal` ([`crate::protocol::RowKey`]) is no larger than one holding a `String`'s three words
    // plus a tag.
    start: u8,
}

impl Decimal {
    /// `n` in decimal.
    pub fn new(n: u64) -> Decimal {
        // u64::MAX has 20 digits.
        let mut digits = [0; 20];
        let mut start = digits.len();
        // Nine digits at a time in u32 below the top ones: numbers here are nearly always
        // small, and in WebAssembly a u64 division is a division instruction each time while a
        // u32 one by a constant becomes a multiplication (issue 9's engine benchmark). Two digits
        // per division, from a table, as `itoa` and `core::fmt` write them: half the steps.
        let mut n = n;
        while n >= 1_000_000_000 {
            let mut nine = (n % 1_000_000_000) as u32;
            n /= 1_000_000_000;
            for _ in 0..4 {
                start -= 2;
                put_pair(&mut digits, start, nine % 100);
                nine /= 100;
            }
            start -= 1;
            digits[start] = b'0' + nine as u8;
        }
        let mut top = n as u32;
        while top >= 100 {
            start -= 2;
            put_pair(&mut digits, start, top % 100);
            top /= 100;
        }
        if top >= 10 {
            start -= 2;
            put_pair(&mut digits, start, top);
        } else {
            start -= 1;
            digits[start] = b'0' + top as u8;
        }
        Decimal {
            digits,
            start: start as u8,
        }
    }
}

/// "00" to "99", the two digits of each number below 100 side by side.
const PAIRS: &[u8; 200] = b"\
      0001020304050607080910111213141516171819\
      2021222324252627282930313233343536373839\
      4041424344454647484950515253545556575859\
      6061626364656667686970717273747576777879\
      8081828384858687888990919293949596979899";

/// Writes `pair` (below 100) as two digits at `at`.
#[inline(always)]
fn put_pair(digits: &mut [u8; 20], at: usize, pair: u32) {
    let pair = pair as usize * 2;
    digits[at] = PAIRS[pair];
    digits[at + 1] = PAIRS[pair + 1];
}

impl std::ops::Deref for Decimal {
    type Target = str;

    fn deref(&self) -> &str {
        let digits = &self.digits[self.start as usize..];
        // SAFETY: `new` wrote every byte from `start` on as an ASCII digit, which is UTF-8.
        // (`str::from_utf8` validates them again on every read: in the page's WebAssembly that
        // was a fiftieth of the engine's time, or a kilobyte more of page where inlined.)
        unsafe { std::str::from_utf8_unchecked(digits) }
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn a_decimal_reads_as_the_number_to_string() {
        let mut n = 1u64;
        // Every digit pair, and each side of every power of ten and of seven (digit counts).
        let mut numbers: Vec<u64> = (0..=10_000).chain([u64::MAX - 1, u64::MAX]).collect();
        while let Some(next) = n.checked_mul(7) {
            numbers.extend([n - 1, n, n + 1]);
            n = next;
        }
        let mut n = 10u64;
        while let Some(next) = n.checked_mul(10) {
            numbers.extend([n - 1, n, n + 1]);
            n = next;
        }
        numbers.extend([n - 1, n, n + 1]);
        for n in numbers {
            assert_eq!(&*Decimal::new(n), n.to_string(), "{n}");
        }
    }
}
