//! The suite loader: YAML parsing, `${var}` substitution, schema validation and its error
//! messages (`rotcheck::suite::load_str`), and the env-file parser on the part after a NUL.
//!
//! The loader reads the file named by `env_file` from disk. The suite is loaded as if it
//! lived in a folder that does not exist, so every relative `env_file` is simply missing;
//! inputs whose `env_file` is absolute or built from variables (which could name any file,
//! `/dev/zero` included) are only parsed as an env file, never loaded, so the target does
//! no I/O.

use rotcheck::suite::{self, vars};
use std::collections::BTreeMap;
use std::path::Path;

/// Where the fuzzed suite pretends to live.
pub const SUITE_PATH: &str = "/nonexistent/rotcheck-fuzz/suite.yaml";

/// The loader's own first pass over the raw document (see `suite::build_scope`).
#[derive(serde::Deserialize)]
struct Head {
    #[serde(default)]
    #[allow(dead_code)]
    vars: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    env_file: Option<String>,
}

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    let (suite_bytes, env_bytes) = crate::split_nul(data);
    if let Some(env) = crate::text(env_bytes) {
        let _ = vars::parse_env_file(env).map_err(|e| e.message);
    }
    let Some(text) = crate::text(suite_bytes) else {
        return;
    };
    if reads_outside(text) {
        return;
    }
    match suite::load_str(text, Path::new(SUITE_PATH)) {
        Ok(s) => touch(&s),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// True when loading would read an `env_file` that is not under the missing folder.
pub fn reads_outside(text: &str) -> bool {
    let Ok(head) = serde_yaml_ng::from_str::<Head>(text) else {
        return false;
    };
    head.env_file
        .is_some_and(|f| f.starts_with('/') || f.contains('$'))
}

/// Uses what a loaded suite offers its callers.
fn touch(s: &suite::Suite) {
    let _ = s.check_names();
    for c in &s.file.checks {
        let _ = s.path_of(&c.name);
        let _ = format!("{c:?}");
    }
}
