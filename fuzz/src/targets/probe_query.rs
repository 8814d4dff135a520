//! The exporter's `/probe` query-string parser (`check=NAME`, `debug=`, percent-decoding,
//! refusals) and the scrape-timeout header parser.

use rotcheck::exporter::http::{probe_param, scrape_budget};

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    if let Some(q) = crate::text(data) {
        match probe_param(Some(q)) {
            Ok(q) => assert!(!q.check.is_empty(), "an empty check name was accepted"),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    if let Ok(h) = hyper::header::HeaderValue::from_bytes(data) {
        let _ = scrape_budget(Some(&h));
    }
}
