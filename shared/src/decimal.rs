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
        // u32 one by a constant becomes a multiplication (issue 9's engine benchmark).
        let mut n = n;
        while n >= 1_000_000_000 {
            let mut nine = (n % 1_000_000_000) as u32;
            n /= 1_000_000_000;
            for _ in 0..9 {
                start -= 1;
                digits[start] = b'0' + (nine % 10) as u8;
                nine /= 10;
            }
        }
        let mut top = n as u32;
        loop {
            start -= 1;
            digits[start] = b'0' + (top % 10) as u8;
            top /= 10;
            if top == 0 {
                break;
            }
        }
        Decimal {
            digits,
            start: start as u8,
        }
    }
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
        // Every number up to 10,000, and each side of every power of ten and of seven.
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
