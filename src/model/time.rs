//! Kubernetes timestamps (RFC 3339, `metav1.Time`) as Unix seconds.

/// The earliest accepted time: 1970-01-01T00:00:00Z (the Unix epoch).
pub const MIN_TIME: f64 = 0.0;
/// The first rejected time: 2100-01-01T00:00:00Z. No real object was written later, and a
/// year 9999 (or year 0) in a status is garbage that would page as a century-old stall.
pub const END_TIME: f64 = 4_102_444_800.0;

/// RFC 3339 → Unix seconds; malformed times, and times outside [`MIN_TIME`]..[`END_TIME`],
/// count as absent.
pub fn parse_time(s: &str) -> Option<f64> {
    let t = match parse_utc_seconds(s) {
        Some(t) => t,
        None => {
            let ts: jiff::Timestamp = s.parse().ok()?;
            ts.as_millisecond() as f64 / 1000.0
        }
    };
    in_range(t)
}

/// Unix seconds as read from the wire (protobuf's `metav1.Time`), with the range
/// [`parse_time`] accepts.
pub fn in_range(t: f64) -> Option<f64> {
    (MIN_TIME..END_TIME).contains(&t).then_some(t)
}

/// The form the API server writes (`2024-01-01T00:00:00Z`, metav1.Time), without a general
/// parser: every event carries several of these. Anything else goes to jiff.
fn parse_utc_seconds(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_time_parser_agrees_with_jiff() {
        for t in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "2024-01-01T00:00:00Z",
            "2000-03-01T12:34:56Z",
            "2099-12-31T00:00:01Z",
        ] {
            let jiff: jiff::Timestamp = t.parse().unwrap();
            assert_eq!(parse_utc_seconds(t), Some(jiff.as_second() as f64), "{t}");
        }
        assert_eq!(parse_time("2024-01-01T00:00:00.500000Z"), Some(1_704_067_200.5));
        assert_eq!(parse_time("2024-01-01T01:00:00+01:00"), Some(1_704_067_200.0));
        assert_eq!(parse_utc_seconds("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("2024-1x-01T00:00:00Z"), None);
    }

    #[test]
    fn times_outside_the_accepted_range_are_absent() {
        assert_eq!(parse_time("0000-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("9999-12-31T23:59:59Z"), None);
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_time("2100-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("2099-12-31T23:59:59.5Z"), Some(END_TIME - 0.5));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(MIN_TIME));
        assert_eq!(parse_time("-000001-01-01T00:00:00Z"), None);
    }
}
