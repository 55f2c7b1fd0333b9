//! `Sn`, a per-sender message number that came through a range check.
//!
//! `sn` travels as an int64 written by whoever sent the datagram, so it is
//! hostile: 0, negatives, `i64::MAX`. Every number the loss tracker does
//! arithmetic with is an [`Sn`] (or derived from one by adding or
//! subtracting at most a few window spans), which keeps every sum and
//! difference far from overflow: no `sn` from the network can panic a debug
//! build or wrap a gap count.

/// Largest accepted message number: 2^53 − 1 (JavaScript's
/// `Number.MAX_SAFE_INTEGER`). Senders count from 1; at a million messages a
/// second one gets here after 285 years. Anything larger is refused as
/// malformed, as is anything below 1.
pub const MAX_SN: i64 = (1 << 53) - 1;

/// A message number in `1..=MAX_SN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Sn(i64);

impl Sn {
    /// `v` if it is a valid message number.
    pub fn new(v: i64) -> Option<Sn> {
        (1..=MAX_SN).contains(&v).then_some(Sn(v))
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_to_max_sn() {
        for bad in [i64::MIN, -1, 0, MAX_SN + 1, i64::MAX] {
            assert_eq!(Sn::new(bad), None, "{bad}");
        }
        assert_eq!(Sn::new(1).map(Sn::get), Some(1));
        assert_eq!(Sn::new(MAX_SN).map(Sn::get), Some(MAX_SN));
    }
}
