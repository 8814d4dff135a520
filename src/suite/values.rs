//! Typed scalar values of the suite file: durations, modes, expiry thresholds, chain and TLS
//! version expectations. Each parses during deserialization so errors carry a location.

use serde::{de::Error, Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A humantime duration (`5s`, `720h`, `21d`), at most `MAX_SPAN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).map_err(D::Error::custom)
    }
}

const HOUR: u64 = 3600;

/// Longest check timeout (suite `timeout:`, `inspect --timeout`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(HOUR);
/// Longest interval (`serve` schedules, `gate --interval`) and `gate --wait`.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * HOUR);
/// Longest duration of any kind: expiry windows, TTLs, waits. 100 years (of 365.25 days)
/// keeps every sum with a clock reading far from overflow.
pub const MAX_SPAN: Duration = Duration::from_secs(100 * 8766 * HOUR);

/// What a duration is for, with its allowed range.
#[derive(Debug, Clone, Copy)]
struct Bound {
    what: &'static str,
    max: Duration,
    max_text: &'static str,
    zero_ok: bool,
}

const SPAN: Bound = Bound {
    what: "duration",
    max: MAX_SPAN,
    max_text: "100y",
    zero_ok: true,
};
const TIMEOUT: Bound = Bound {
    what: "timeout",
    max: MAX_TIMEOUT,
    max_text: "1h",
    zero_ok: false,
};
const INTERVAL: Bound = Bound {
    what: "interval",
    max: MAX_INTERVAL,
    max_text: "24h",
    zero_ok: false,
};
const WAIT: Bound = Bound {
    what: "wait",
    max: MAX_INTERVAL,
    max_text: "24h",
    zero_ok: true,
};

/// Parses a humantime duration of at most 100 years, with a message that says what is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    bounded(s, SPAN)
}

/// Parses a timeout: more than zero, at most 1h.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    bounded(s, TIMEOUT)
}

/// Parses an interval between runs: more than zero, at most 24h.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    bounded(s, INTERVAL)
}

/// Parses how long to keep retrying: zero to 24h.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    bounded(s, WAIT)
}

fn bounded(s: &str, b: Bound) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!(
            "bad {} {s:?} ({e}); write a number and a unit, e.g. 5s, 2m, 720h, 21d",
            b.what
        )
    })?;
    if d > b.max {
        return Err(format!(
            "{} {s:?} is too long; expected at most {}",
            b.what, b.max_text
        ));
    }
    if d.is_zero() && !b.zero_ok {
        return Err(format!(
            "{} {s:?} is zero; expected more than 0s and at most {}, e.g. 5s",
            b.what, b.max_text
        ));
    }
    Ok(d)
}

/// `#[serde(deserialize_with)]` for a timeout (more than zero, at most 1h).
pub fn de_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let s = String::deserialize(d)?;
    parse_timeout(&s).map(Dur).map_err(D::Error::custom)
}

/// `#[serde(deserialize_with)]` for an optional timeout.
pub fn de_opt_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
    de_timeout(d).map(Some)
}

/// `#[serde(deserialize_with)]` for an interval (more than zero, at most 24h).
pub fn de_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let s = String::deserialize(d)?;
    parse_interval(&s).map(Dur).map_err(D::Error::custom)
}

/// `#[serde(deserialize_with)]` for an optional interval.
pub fn de_opt_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
    de_interval(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_and_zero_durations_are_refused() {
        for huge in ["18446744073709551615s", "584542046090y", "101y"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(
                e.contains("too long; expected at most 100y") || e.starts_with("bad duration"),
                "{e}"
            );
            assert!(parse_threshold(huge).is_err());
        }
        assert_eq!(parse_duration("100y").unwrap(), MAX_SPAN);
        assert!(parse_timeout("1h 1s").unwrap_err().contains("at most 1h"));
        assert!(parse_timeout("0s").unwrap_err().contains("is zero"));
        assert_eq!(parse_timeout("1h").unwrap(), MAX_TIMEOUT);
        assert!(parse_interval("25h").unwrap_err().contains("at most 24h"));
        assert!(parse_interval("0s").is_err());
        assert_eq!(parse_wait("0s").unwrap(), Duration::ZERO);
    }
}

/// A Unix file mode, written as octal (`"0600"`, `"600"`, `0o600`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        let text = match &v {
            serde_yaml_ng::Value::String(s) => s.clone(),
            // YAML reads `0o600` and `0x180` as the number 384; only plain digits are octal.
            serde_yaml_ng::Value::Number(n) if n.as_u64().is_some_and(plain_octal) => n.to_string(),
            serde_yaml_ng::Value::Number(n) => {
                return Err(D::Error::custom(format!("{UNQUOTED_MODE} {n}")))
            }
            _ => return Err(D::Error::custom(mode_help("a non-scalar value"))),
        };
        parse_mode(&text).map(Mode).map_err(D::Error::custom)
    }
}

/// Starts the error of an unquoted mode YAML read as another number; the suite loader
/// replaces it with the text the user wrote (see `suite::echo_mode`).
pub const UNQUOTED_MODE: &str = "unquoted mode read as the number";

/// Whether a number's decimal digits all are octal digits (`600` is 0600, `384` is not).
fn plain_octal(n: u64) -> bool {
    n.to_string().chars().all(|c| c.is_digit(8))
}

/// The message for an unquoted mode: what was written, what YAML made of it, what to write.
pub fn unquoted_mode_help(written: &str, number: &str) -> String {
    format!(
        "bad mode {written}: YAML reads it unquoted as the number {number}; \
         write an octal mode in quotes, e.g. \"0600\" or \"0644\""
    )
}

fn mode_help(found: &str) -> String {
    format!("bad mode {found}; write an octal mode in quotes, e.g. \"0600\" or \"0644\"")
}

/// Parses an octal mode string; at most 4 octal digits (`0600`, `600`, `0o600`, `2750`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let ok = !digits.is_empty()
        && digits.len() <= 5
        && digits.chars().all(|c| c.is_digit(8))
        && u32::from_str_radix(digits, 8).is_ok_and(|m| m <= 0o7777);
    if !ok {
        return Err(mode_help(&format!("{s:?}")));
    }
    u32::from_str_radix(digits, 8).map_err(|_| mode_help(&format!("{s:?}")))
}

/// An expiry threshold: a fixed duration before notAfter, or a share of the lifetime left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Remaining(Duration),
    /// Fraction in (0, 1]: warn when less than this share of the lifetime remains.
    Ratio(f64),
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Remaining(d) => write!(f, "{}", crate::human::duration(*d)),
            Threshold::Ratio(r) => write!(f, "{}% of lifetime", (r * 100.0).round()),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_threshold(&s).map_err(D::Error::custom)
    }
}

/// Parses `33%` or a duration.
pub fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| threshold_help(s))?;
        if !(0.0..=100.0).contains(&v) || v == 0.0 {
            return Err(threshold_help(s));
        }
        return Ok(Threshold::Ratio(v / 100.0));
    }
    let d = humantime::parse_duration(t).map_err(|_| threshold_help(s))?;
    if d > MAX_SPAN {
        return Err(format!(
            "expiry threshold {s:?} is too long; expected at most 100y, or a share of the lifetime (33%)"
        ));
    }
    Ok(Threshold::Remaining(d))
}

fn threshold_help(s: &str) -> String {
    format!("bad expiry threshold {s:?}; write a share of the lifetime (33%) or a duration (21d)")
}

/// `expiry: {warn, crit}`; defaults 33% / 10% of the lifetime remaining. `crit` is the
/// nearer one: less time (or a smaller share of the lifetime) left than `warn`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawThresholds")]
pub struct ExpiryThresholds {
    pub warn: Threshold,
    pub crit: Threshold,
}

/// `expiry:` as written, before the order of its thresholds is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    #[serde(default = "default_warn")]
    warn: Threshold,
    #[serde(default = "default_crit")]
    crit: Threshold,
}

impl TryFrom<RawThresholds> for ExpiryThresholds {
    type Error = String;

    fn try_from(r: RawThresholds) -> Result<Self, String> {
        let inverted = match (r.warn, r.crit) {
            (Threshold::Remaining(w), Threshold::Remaining(c)) => c > w,
            (Threshold::Ratio(w), Threshold::Ratio(c)) => c > w,
            _ => false,
        };
        if inverted {
            return Err(format!(
                "expiry: crit ({}) is further from expiry than warn ({}); crit must be the \
                 nearer threshold (less left): swap them, e.g. {{warn: 21d, crit: 7d}}",
                r.crit, r.warn
            ));
        }
        Ok(ExpiryThresholds {
            warn: r.warn,
            crit: r.crit,
        })
    }
}

impl Default for ExpiryThresholds {
    fn default() -> Self {
        ExpiryThresholds {
            warn: default_warn(),
            crit: default_crit(),
        }
    }
}

fn default_warn() -> Threshold {
    Threshold::Ratio(0.33)
}

fn default_crit() -> Threshold {
    Threshold::Ratio(0.10)
}

/// A minimum TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

impl TlsVersion {
    /// `1.2` / `1.3`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }

    /// Parses `1.2`, `1.3`, `TLSv1.2`, `TLS1.3`.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.trim_start_matches("tlsv").trim_start_matches("tls");
        match t {
            "1.2" => Some(TlsVersion::V1_2),
            "1.3" => Some(TlsVersion::V1_3),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        let s = match &v {
            serde_yaml_ng::Value::String(s) => s.clone(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        TlsVersion::parse(&s).ok_or_else(|| {
            D::Error::custom(format!(
                "bad min_tls {s:?}; rustls speaks TLS 1.2 and 1.3: write \"1.2\" or \"1.3\""
            ))
        })
    }
}
