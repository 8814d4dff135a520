//! Content negotiation of the exposition answers (`/metrics`, `/probe`): OpenMetrics text
//! when `Accept` prefers it (as Prometheus does), the classic text format otherwise, and gzip
//! when `Accept-Encoding` allows it.

use crate::metrics::text::Format;

/// How one exposition answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub format: Format,
    pub gzip: bool,
}

impl Choice {
    /// From the request's `Accept` and `Accept-Encoding` values (absent: text, identity).
    pub fn from_headers(accept: Option<&str>, encoding: Option<&str>) -> Self {
        Choice {
            format: accept.map_or(Format::Text, format_of),
            gzip: encoding.is_some_and(gzip_allowed),
        }
    }
}

/// One media range or coding of a header list, with its `q` (1 when absent, 0 when malformed).
struct Item<'a> {
    value: &'a str,
    params: Vec<(&'a str, &'a str)>,
    q: f32,
}

fn items(header: &str) -> impl Iterator<Item = Item<'_>> {
    header.split(',').filter_map(|part| {
        let mut fields = part.split(';').map(str::trim);
        let value = fields.next().filter(|v| !v.is_empty())?;
        let mut params = Vec::new();
        let mut q = 1.0;
        for f in fields {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k.eq_ignore_ascii_case("q") {
                q = v
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            } else {
                params.push((k, v));
            }
        }
        Some(Item { value, params, q })
    })
}

/// OpenMetrics when an acceptable `application/openmetrics-text` range (version 1.0.0, 0.0.1
/// or none) has at least the weight of the best range the text format satisfies.
fn format_of(accept: &str) -> Format {
    let (mut om, mut text) = (0.0f32, 0.0f32);
    for it in items(accept) {
        let version = it
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("version"));
        let v = version.map(|(_, v)| *v);
        if it
            .value
            .eq_ignore_ascii_case("application/openmetrics-text")
        {
            if matches!(v, None | Some("1.0.0" | "0.0.1")) {
                om = om.max(it.q);
            }
        } else if text_range(it.value) && matches!(v, None | Some("0.0.4")) {
            text = text.max(it.q);
        }
    }
    if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

fn text_range(value: &str) -> bool {
    ["text/plain", "text/*", "*/*"]
        .iter()
        .any(|r| value.eq_ignore_ascii_case(r))
}

/// `gzip` (or `x-gzip`) with a weight above 0; else `*` with a weight above 0.
fn gzip_allowed(encoding: &str) -> bool {
    let named = |v: &str| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip");
    let (mut explicit, mut any) = (None, false);
    for it in items(encoding) {
        if named(it.value) {
            explicit = Some(explicit.unwrap_or(false) || it.q > 0.0);
        } else if it.value == "*" {
            any = it.q > 0.0;
        }
    }
    explicit.unwrap_or(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(accept: &str) -> Format {
        Choice::from_headers(Some(accept), None).format
    }

    #[test]
    fn prometheus_gets_openmetrics_and_others_the_text_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format(prometheus), Format::OpenMetrics);
        assert_eq!(
            format("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
            Format::Text
        );
        assert_eq!(format("*/*"), Format::Text);
        assert_eq!(format("application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(
            format("application/openmetrics-text; version=2.0.0"),
            Format::Text
        );
        assert_eq!(
            format("text/plain, application/openmetrics-text;q=0.5"),
            Format::Text
        );
        assert_eq!(format("application/openmetrics-text;q=0"), Format::Text);
        assert_eq!(format(",;;=,q"), Format::Text);
        assert_eq!(
            Choice::from_headers(None, None),
            Choice {
                format: Format::Text,
                gzip: false
            }
        );
    }

    #[test]
    fn gzip_only_when_allowed() {
        let gz = |e: &str| Choice::from_headers(None, Some(e)).gzip;
        assert!(gz("gzip"));
        assert!(gz("deflate, gzip;q=0.5"));
        assert!(gz("GZIP"));
        assert!(gz("*"));
        assert!(!gz("gzip;q=0"));
        assert!(!gz("identity"));
        assert!(!gz("br, deflate"));
        assert!(!gz(""));
        assert!(!gz("gzip;q=0, *"));
    }
}
