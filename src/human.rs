//! How durations read in messages to people: one compact vocabulary (`89d 23h`, `1m 30s`,
//! `250ms`) for spans, and Vault's own spelling (`720h`, `1h30m`) for Vault TTLs.
//! Machine output (JSON, metrics) keeps numbers of seconds and never goes through here.

use std::time::Duration;

/// Units of [`duration`], largest first: a name and its length in milliseconds.
const UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A span, coarse and compact: the largest non-zero unit and the one below it when that is
/// not zero (`89d 23h`, `3h 5m`, `1m 30s`, `45s`, `250ms`, `0s`). Milliseconds show only under
/// a minute; anything finer is dropped, never rounded up. Callers say "ago" or "in" themselves.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    let Some(lead) = UNITS.iter().position(|&(_, len)| ms >= len) else {
        return "0s".into();
    };
    let (name, len) = UNITS[lead];
    let mut out = format!("{}{name}", ms / len);
    if let Some(&(next, next_len)) = UNITS.get(lead + 1) {
        let n = ms % len / next_len;
        if n > 0 {
            out.push_str(&format!(" {n}{next}"));
        }
    }
    out
}

/// Seconds as Vault writes a TTL: hours, minutes and seconds, Go-style without the zero
/// components and without days (`720h`, `1h30m`, `1m30s`, `45s`, `0s`).
pub fn ttl(secs: u64) -> String {
    let parts = [
        (secs / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let out: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if out.is_empty() {
        "0s".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> String {
        duration(Duration::from_secs(s))
    }

    fn millis(ms: u64) -> String {
        duration(Duration::from_millis(ms))
    }

    #[test]
    fn duration_boundaries() {
        assert_eq!(secs(0), "0s");
        assert_eq!(millis(999), "999ms");
        assert_eq!(secs(1), "1s");
        assert_eq!(secs(59), "59s");
        assert_eq!(secs(60), "1m");
        assert_eq!(secs(3600), "1h");
        assert_eq!(secs(86_399), "23h 59m");
        assert_eq!(secs(86_400), "1d");
    }

    #[test]
    fn duration_keeps_the_two_largest_units() {
        assert_eq!(secs(89 * 86_400 + 23 * 3600 + 59 * 60), "89d 23h");
        assert_eq!(secs(8 * 86_400 + 23 * 3600), "8d 23h");
        assert_eq!(secs(3 * 3600 + 5 * 60 + 7), "3h 5m");
        assert_eq!(secs(90), "1m 30s");
        assert_eq!(secs(45), "45s");
        assert_eq!(secs(5), "5s");
        assert_eq!(millis(250), "250ms");
        assert_eq!(millis(1_530), "1s 530ms");
    }

    #[test]
    fn duration_drops_zero_and_finer_units() {
        assert_eq!(secs(86_400 + 30), "1d");
        assert_eq!(secs(3600 + 59), "1h");
        assert_eq!(millis(60_500), "1m");
        assert_eq!(duration(Duration::from_micros(999)), "0s");
        assert_eq!(duration(Duration::from_nanos(1_999_999)), "1ms");
    }

    #[test]
    fn duration_of_large_spans() {
        assert_eq!(secs(100 * 365 * 86_400), "36500d");
        assert_eq!(
            duration(Duration::MAX),
            format!("{}d 7h", u64::MAX / 86_400)
        );
    }

    #[test]
    fn ttl_boundaries() {
        assert_eq!(ttl(0), "0s");
        assert_eq!(ttl(1), "1s");
        assert_eq!(ttl(59), "59s");
        assert_eq!(ttl(60), "1m");
        assert_eq!(ttl(3600), "1h");
        assert_eq!(ttl(86_399), "23h59m59s");
        assert_eq!(ttl(86_400), "24h");
    }

    #[test]
    fn ttl_reads_as_vault_writes_it() {
        assert_eq!(ttl(2_592_000), "720h");
        assert_eq!(ttl(31_536_000), "8760h");
        assert_eq!(ttl(5400), "1h30m");
        assert_eq!(ttl(90), "1m30s");
        assert_eq!(ttl(45), "45s");
        assert_eq!(ttl(3601), "1h1s");
        assert_eq!(ttl(31_535_424), "8759h50m24s");
        assert_eq!(ttl(u64::MAX), "5124095576030431h15s");
    }
}
