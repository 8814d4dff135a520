//! The CA a step would issue from, written to a file so the trust-first gate (files checks,
//! `contains:`) can compare consumer bundles with it.

use super::atomic::{write_atomic, FileSpec};
use super::ctx::{Ctx, Out, VaultIo};
use super::issue::fetch_ca_chain;
use super::material::{to_pem, CertId};
use crate::vault::Settings;
use std::path::Path;
use std::time::SystemTime;

/// Fetches the mount's issuing CA and writes it to `ca_file`; returns its identity.
pub async fn issuing_ca(
    settings: &Settings,
    mount: &str,
    ca_file: &Path,
    out: &mut Out,
) -> Result<CertId, String> {
    let vault = VaultIo::new(settings).map_err(|e| e.to_string())?;
    let chain = {
        let mut cx = Ctx {
            vault: &vault,
            dry_run: false,
            now: SystemTime::now(),
            out,
        };
        fetch_ca_chain(&mut cx, mount)
            .await
            .map_err(|e| e.to_string())?
    };
    for e in vault.close().await {
        out.line(format!("warning: {e}"));
    }
    let spec = FileSpec {
        path: ca_file.to_path_buf(),
        mode: 0o644,
        owner: None,
    };
    write_atomic(&spec, to_pem(&chain[..1]).as_bytes()).map_err(|e| e.to_string())?;
    Ok(CertId::of(chain[0].as_ref()))
}
