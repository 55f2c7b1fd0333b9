//! ISO-8601 UTC timestamps with millisecond precision, as 0.1.x writes them
//! into `meta.time` (`2013-07-14T22:37:21.011Z`), without a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (times before 1970 clamp to the epoch).
pub fn format_iso(t: SystemTime) -> String {
    format_ms(millis(t))
}

/// Milliseconds since the epoch, as [`format_iso`] writes them (before 1970: 0).
fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) as i64
}

/// The last [`format_iso`] result, reused while the millisecond is the same:
/// a sender emitting thousands of events a second formats each millisecond
/// once instead of once per message.
#[derive(Debug, Default)]
pub struct IsoCache {
    ms: Option<i64>,
    text: String,
}

impl IsoCache {
    /// `format_iso(t)`, from the cache when `t` is in the same millisecond as last time.
    pub fn format(&mut self, t: SystemTime) -> &str {
        let ms = millis(t);
        if self.ms != Some(ms) {
            self.text = format_ms(ms);
            self.ms = Some(ms);
        }
        &self.text
    }
}

fn format_ms(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    // Fixed-width digits into a stack buffer: 3–4× cheaper than `format!` (one call per emit).
    // Years outside 0..=9999 (not reachable from a realistic clock) keep `format!`'s output.
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z");
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let put = |b: &mut [u8; 24], at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut b, 0, 4, y);
    put(&mut b, 5, 2, m);
    put(&mut b, 8, 2, d);
    put(&mut b, 11, 2, h);
    put(&mut b, 14, 2, min);
    put(&mut b, 17, 2, s);
    put(&mut b, 20, 3, milli);
    // Only ASCII digits and separators were written.
    b.iter().map(|&c| c as char).collect()
}

/// Parses the format of [`format_iso`] (also without milliseconds); `None` if it is not one.
pub fn parse_iso(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let milli = match b[19] {
        b'Z' if b.len() == 20 => 0,
        b'.' if b.len() == 24 && b[23] == b'Z' => num(20..23)?,
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let ms = ((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + milli;
    u64::try_from(ms).ok().map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_373_841_441_011);
        assert_eq!(format_iso(t), "2013-07-14T22:37:21.011Z");
        assert_eq!(format_iso(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_164_800_999); // leap day 2024
        assert_eq!(format_iso(t), "2024-02-29T00:00:00.999Z");
    }

    /// The formatter before the fixed-width rewrite, as the reference.
    fn format_iso_fmt(t: SystemTime) -> String {
        let ms = t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) as i64;
        let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
        let (y, m, d) = civil_from_days(days);
        let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (min, rest) = (rest / 60_000, rest % 60_000);
        let (s, milli) = (rest / 1000, rest % 1000);
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
    }

    #[test]
    fn fixed_width_matches_core_fmt_on_many_instants() {
        // A deterministic LCG over 0 .. year 10,000 plus the edges of every field.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut cases: Vec<u64> = vec![0, 1, 999, 1000, 59_999, 86_399_999, 86_400_000, 253_402_300_799_999];
        for _ in 0..200_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            cases.push((x >> 11) % 253_402_300_800_000);
        }
        for ms in cases {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(format_iso(t), format_iso_fmt(t), "ms = {ms}");
        }
        // Past year 9999 both fall back to the same `format!` output.
        let t = UNIX_EPOCH + Duration::from_millis(253_402_300_800_000 + 12_345);
        assert_eq!(format_iso(t), format_iso_fmt(t));
        assert!(format_iso(t).starts_with("10000-01-01T"));
    }

    #[test]
    fn cache_formats_like_format_iso() {
        let mut c = IsoCache::default();
        let base = UNIX_EPOCH + Duration::from_millis(1_795_709_084_282);
        // Same millisecond, the next ones, back in time (a clock set back), sub-millisecond steps.
        for us in [0u64, 300, 999, 1000, 1500, 86_400_000_000, 0, 5, 1_000_000, 999_999] {
            let t = base + Duration::from_micros(us);
            assert_eq!(c.format(t), format_iso(t), "+{us} us");
        }
        let before_1970 = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(c.format(before_1970), "1970-01-01T00:00:00.000Z");
        assert_eq!(c.format(UNIX_EPOCH + Duration::from_micros(999)), "1970-01-01T00:00:00.000Z");
        assert_eq!(c.format(base), format_iso(base));
    }

    #[test]
    fn parses_what_it_formats() {
        for ms in [0u64, 1_373_841_441_011, 1_700_000_000_123, 4_102_444_800_000, 951_782_400_000] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_iso(&format_iso(t)), Some(t));
        }
        assert_eq!(parse_iso("2026-11-26T16:04:44.282Z"), Some(UNIX_EPOCH + Duration::from_millis(1_795_709_084_282)));
        assert!(parse_iso("2026-11-26T16:04:44.282").is_none());
        assert!(parse_iso("2026-13-26T16:04:44.282Z").is_none());
        assert!(parse_iso("garbage").is_none());
        assert!(parse_iso("2026-11-26T16:04:4x.282Z").is_none());
        assert!(parse_iso("20é6-11-26T16:04:44.282Z").is_none());
    }
}
