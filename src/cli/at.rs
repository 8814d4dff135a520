//! `--at`: an RFC 3339 instant (`2026-12-01T00:00:00Z`, `2026-12-01T09:00:00+01:00`), and
//! nothing looser: a date alone, a local time without a zone or a duration is refused.

use std::time::{Duration, SystemTime};

/// Parses an RFC 3339 instant for `--at`; the error names the accepted format.
pub fn parse_at(s: &str) -> Result<SystemTime, String> {
    let help = || {
        format!(
            "bad --at {s:?}: --at takes only an RFC 3339 instant, a date and a time with a zone, \
             e.g. 2026-12-01T00:00:00Z or 2026-12-01T09:00:00+01:00 (not a date alone, a time \
             without a zone, or a duration)"
        )
    };
    instant(s).ok_or_else(help)
}

/// An RFC 3339 instant with `Z` or a numeric offset (fractional seconds allowed, as Go writes
/// them); `None` for anything looser.
pub fn instant(s: &str) -> Option<SystemTime> {
    let upper = s.trim().to_ascii_uppercase();
    let (base, offset) = split_offset(&upper)?;
    let utc = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    if offset < 0 {
        utc.checked_add(Duration::from_secs(offset.unsigned_abs()))
    } else {
        utc.checked_sub(Duration::from_secs(offset.unsigned_abs()))
    }
}

/// Splits `...Z` or `...+HH:MM` / `...-HH:MM` into the local part and the offset in seconds.
fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(base) = s.strip_suffix('Z') {
        return Some((base, 0));
    }
    let at = s.len().checked_sub(6)?;
    let (base, zone) = (s.get(..at)?, s.get(at..)?);
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = zone[1..].split_once(':')?;
    let digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((base, sign * (h * 3600 + m * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> u64 {
        let t = parse_at(s).unwrap();
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn rfc3339_with_a_zone_only() {
        assert_eq!(unix("2026-12-01T00:00:00Z"), 1_796_083_200);
        assert_eq!(unix("2026-12-01T01:00:00+01:00"), 1_796_083_200);
        assert_eq!(unix("2026-11-30T23:30:00-00:30"), 1_796_083_200);
        assert_eq!(unix("2026-12-01t00:00:00.5z"), 1_796_083_200);
        for bad in [
            "2026-12-01",
            "2026-12-01 00:00:00",
            "2026-12-01T00:00:00",
            "2026-12-01T00:00:00+1:00",
            "7d",
            "tomorrow",
        ] {
            let e = parse_at(bad).unwrap_err();
            assert!(e.contains("only an RFC 3339 instant"), "{bad}: {e}");
        }
    }
}
