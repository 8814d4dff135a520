//! The `serve --web-config` parser (exporter-toolkit format): YAML, TLS settings (with real
//! PEM files to point at), bcrypt hash syntax and response headers.
//!
//! Inputs naming a file outside the scratch folder (an absolute path or one with `..`) are
//! skipped: the target reads only the files it wrote.

use rotcheck::exporter::webconfig::WebConfig;
use serde_yaml_ng::Value;

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    let Some(text) = crate::text(data) else {
        return;
    };
    if names_outside(text) {
        return;
    }
    match WebConfig::from_text(text, crate::scratch::web_config_path()) {
        Ok(w) => {
            let _ = (w.tls().is_some(), w.headers().len(), w.needs_auth());
            let _ = format!("{w:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// True when any string in the document could name a file outside the scratch folder.
/// A document the generic parse refuses (e.g. a repeated key in a map the config accepts)
/// is judged by its raw text: no slash, no escape.
pub fn names_outside(text: &str) -> bool {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(v) => any_outside(&v),
        Err(_) => text.contains(['/', '\\']) || text.contains(".."),
    }
}

fn any_outside(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with('/') || s.contains(".."),
        Value::Sequence(items) => items.iter().any(any_outside),
        Value::Mapping(m) => m.iter().any(|(k, v)| any_outside(k) || any_outside(v)),
        Value::Tagged(t) => any_outside(&t.value),
        _ => false,
    }
}
