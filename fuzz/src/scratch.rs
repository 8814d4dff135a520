//! A folder of real PEM files that the web-config target's `cert_file`, `key_file` and
//! `client_ca_file` can name, made once per process under the temporary directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The files written, by the names a fuzzed config may use.
pub const FILES: &[&str] = &["server.crt", "server.key", "ca.pem", "client.crt"];

/// The pretend path of the web config: `web.yml` in the scratch folder.
pub fn web_config_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rotcheck-fuzz-{}", std::process::id()));
        write_files(&dir);
        dir.join("web.yml")
    })
}

fn write_files(dir: &Path) {
    let pki = crate::pki::Pki::generate();
    let chain = format!("{}{}", pki.leaf.cert_pem, pki.intermediate.cert_pem);
    let ca = format!("{}{}", pki.intermediate.cert_pem, pki.root.cert_pem);
    let contents = [chain, pki.leaf.key_pem, ca, pki.client.cert_pem];
    std::fs::create_dir_all(dir).expect("create the scratch folder");
    for (name, text) in FILES.iter().zip(contents) {
        std::fs::write(dir.join(name), text).expect("write a scratch file");
    }
}
