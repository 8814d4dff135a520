//! `rotate trust`: refreshes a CA chain file (proxy trust material) from the mount's CA
//! chain. The chain is verified (every certificate a CA, each signed by the next, ending at a
//! root) before it replaces the file; `--keep` keeps still-valid certificates of the current
//! file so consumers trust both CAs while one rotates.

use super::atomic::{prepare, FileSpec};
use super::ctx::{Ctx, Done, RotateError};
use super::issue::{
    cert_id_of, check_owner, describe_written, fetch_ca_chain, preflight, read_target,
};
use super::material::{dedup, to_pem, CertId};
use super::spec::TrustSpec;
use super::state::CertChange;
use super::verify::{verify_ca_chain, VerifyError};
use crate::certs;
use rustls_pki_types::CertificateDer;

/// Runs `trust`.
pub async fn run(spec: &TrustSpec, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    check_owner(spec.owner.as_ref())?;
    preflight(&[spec.out.as_path()])?;
    let chain = fetch_ca_chain(cx, &spec.mount).await?;
    let chain = with_root(chain, &spec.mount, &spec.out, spec.root.as_deref(), cx)?;
    verify_ca_chain(&chain, cx.now).map_err(|source: VerifyError| RotateError::Refused {
        what: format!("CA chain of {} (nothing was written)", spec.mount),
        source,
    })?;
    let mut certs_out = chain.clone();
    if spec.keep {
        certs_out.extend(still_valid(&spec.out, cx.now)?);
    }
    let certs_out = dedup(certs_out);
    let file = FileSpec {
        path: spec.out.clone(),
        mode: spec.mode.0,
        owner: spec.owner.clone(),
    };
    let bytes = to_pem(&certs_out);
    let old = cert_id_of(&spec.out)?;
    if cx.dry_run {
        let d = super::atomic::diff(&file, bytes.as_bytes())?;
        cx.say(format!(
            "{}: {} ({} certificate(s) from {})",
            spec.out.display(),
            super::issue::describe_diff(&d, &file),
            certs_out.len(),
            spec.mount
        ));
        return Ok(Done {
            changed: d != super::atomic::Diff::Same,
            certs: vec![],
        });
    }
    let w = prepare(&file, bytes.as_bytes())?.commit()?;
    cx.say(describe_written(&spec.out.display().to_string(), &w));
    let certs = match &w {
        super::atomic::Written::Created | super::atomic::Written::Replaced { .. } => {
            vec![CertChange {
                path: spec.out.display().to_string(),
                old,
                new: Some(CertId::of(chain[0].as_ref())),
            }]
        }
        _ => vec![],
    };
    Ok(Done {
        changed: w.changed(),
        certs,
    })
}

/// The chain completed with its root (see `bundle`), the note printed; refused without one.
pub fn with_root(
    chain: Vec<CertificateDer<'static>>,
    mount: &str,
    bundle: &std::path::Path,
    root: Option<&std::path::Path>,
    cx: &mut Ctx<'_>,
) -> Result<Vec<CertificateDer<'static>>, RotateError> {
    let (chain, note) = super::bundle::complete(chain, mount, bundle, root, cx.now)
        .map_err(|e| RotateError::Material(e.to_string()))?;
    if let Some(n) = note {
        cx.say(format!("note: {n}"));
    }
    Ok(chain)
}

/// Certificates of the current file that are still valid at `now` (for `--keep`).
fn still_valid(
    path: &std::path::Path,
    now: std::time::SystemTime,
) -> Result<Vec<CertificateDer<'static>>, RotateError> {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let bytes = read_target(path)?.unwrap_or_default();
    Ok(certs::parse_certs(&bytes, &path.display().to_string())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| certs::facts(d.as_ref(), "").not_after_unix > t)
        .collect())
}
