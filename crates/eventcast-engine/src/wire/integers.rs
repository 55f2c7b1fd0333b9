//! The one lenient number rule: which BSON values a receiver reads as an integer.
//!
//! 0.1.x peers are JavaScript: js-bson 0.2 hands int32, int64 and double alike
//! to JS as a Number, and writes whole numbers outside the int32 range as
//! doubles. So wherever a field holds an integer (meta `v`, `seq`, `seqLen`,
//! `port`, `sn`; a repair request's `missedSeq`, `missedSn`, `port`; a
//! heartbeat's `sn`) we accept:
//!
//! | BSON | read as |
//! |---|---|
//! | int32 | itself |
//! | int64 | itself |
//! | double, integral, \|x\| ≤ 2^53 − 1 ([`MAX_SAFE_INTEGER`]) | its value (`-0.0` is 0) |
//! | double, fractional, NaN, ±∞, or \|x\| ≥ 2^53 | not an integer |
//! | anything else (string, boolean, null, decimal128, ...) | not an integer |
//!
//! Beyond 2^53 a double no longer holds every integer, so a larger double is
//! not taken as an exact count or number. The `int32` readers then require
//! the value to fit an `i32` (no wrapping, no saturation). All readers are
//! pure and total: no input panics or overflows.

use bson::raw::RawBsonRef;
use bson::Bson;

/// Largest integer a JS Number (an IEEE double) holds exactly: 2^53 − 1.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A double holding an exact integer within ±[`MAX_SAFE_INTEGER`].
fn integral(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64).then_some(f as i64)
}

/// A raw BSON value as an integer, by the rule of this module.
pub fn int64_raw(v: RawBsonRef<'_>) -> Option<i64> {
    match v {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        RawBsonRef::Double(f) => integral(f),
        _ => None,
    }
}

/// [`int64_raw`] within the `i32` range.
pub fn int32_raw(v: RawBsonRef<'_>) -> Option<i32> {
    int64_raw(v).and_then(|i| i32::try_from(i).ok())
}

/// A BSON value as an integer, by the rule of this module.
pub fn int64(v: &Bson) -> Option<i64> {
    match *v {
        Bson::Int32(i) => Some(i64::from(i)),
        Bson::Int64(i) => Some(i),
        Bson::Double(f) => integral(f),
        _ => None,
    }
}

/// [`int64`] within the `i32` range.
pub fn int32(v: &Bson) -> Option<i32> {
    int64(v).and_then(|i| i32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_types_and_bounds() {
        let m = MAX_SAFE_INTEGER;
        let cases: [(Bson, Option<i64>); 16] = [
            (Bson::Int32(-7), Some(-7)),
            (Bson::Int64(i64::MIN), Some(i64::MIN)),
            (Bson::Int64(i64::MAX), Some(i64::MAX)),
            (Bson::Double(3.0), Some(3)),
            (Bson::Double(-0.0), Some(0)),
            (Bson::Double(m as f64), Some(m)),
            (Bson::Double(-(m as f64)), Some(-m)),
            (Bson::Double(2f64.powi(53)), None),
            (Bson::Double(1e300), None),
            (Bson::Double(0.5), None),
            (Bson::Double(f64::NAN), None),
            (Bson::Double(f64::INFINITY), None),
            (Bson::String("3".into()), None),
            (Bson::Boolean(true), None),
            (Bson::Null, None),
            (Bson::Decimal128(bson::Decimal128::from_bytes([0; 16])), None),
        ];
        for (v, want) in cases {
            assert_eq!(int64(&v), want, "{v:?}");
            let doc = bson::doc! { "x": v.clone() }.to_vec().unwrap();
            let raw = bson::RawDocument::from_bytes(&doc).unwrap().get("x").unwrap().unwrap();
            assert_eq!(int64_raw(raw), want, "raw {v:?}");
            let want32 = want.and_then(|i| i32::try_from(i).ok());
            assert_eq!((int32(&v), int32_raw(raw)), (want32, want32), "{v:?}");
        }
        assert_eq!(int32(&Bson::Int64(1 << 31)), None);
        assert_eq!(int32(&Bson::Double(-2147483648.0)), Some(i32::MIN));
        assert_eq!(int32(&Bson::Double(2147483648.0)), None);
    }

    proptest! {
        /// Total on every double: an answer is exact and within the bound.
        #[test]
        fn doubles(f in any::<f64>()) {
            if let Some(i) = int64(&Bson::Double(f)) {
                prop_assert_eq!(i as f64, f);
                prop_assert!(i.abs() <= MAX_SAFE_INTEGER);
            } else {
                prop_assert!(f.fract() != 0.0 || f.is_nan() || f.abs() > MAX_SAFE_INTEGER as f64);
            }
        }
    }
}
