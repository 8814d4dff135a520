//! Trust bundles never lose their root. A PKI mount whose issuer was signed elsewhere often
//! holds the intermediate alone (`<mount>/cert/ca_chain` is one certificate): written as is,
//! such a bundle makes every consumer fail `unknown_issuer`. Before a bundle file is replaced,
//! a chain that stops below a root is completed with the root that signed its top — from
//! `--root FILE`, else from the bundle file being replaced — or refused, nothing written.

use super::safefs;
use crate::certs;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::time::SystemTime;
use x509_parser::prelude::{FromDer, X509Certificate};

type Ders = Vec<CertificateDer<'static>>;

/// Why a bundle cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("the CA chain of mount {mount:?} ends at {top:?}, which is not a root, and no root for it (issuer {issuer:?}) was found in {searched}; nothing was written; import the root into the mount (set-signed with the full chain, or {mount}/issuers/import/cert) or pass --root FILE with the root CA")]
    NoRoot {
        mount: String,
        top: String,
        issuer: String,
        searched: String,
    },
    #[error("--root {path}: {detail}; expected a PEM file with the root CA certificate")]
    RootFile { path: String, detail: String },
}

/// The chain to write to `bundle`: `chain` itself when it ends at a root, else `chain` plus
/// the root that signed its top, with a note saying where the root came from.
pub fn complete(
    chain: Ders,
    mount: &str,
    bundle: &Path,
    root_file: Option<&Path>,
    now: SystemTime,
) -> Result<(Ders, Option<String>), BundleError> {
    let Some(top) = chain.last().and_then(parse) else {
        return Ok((chain, None));
    };
    if is_root(&top) {
        return Ok((chain, None));
    }
    let mut searched = Vec::new();
    for (source, certs) in candidates(bundle, root_file, &mut searched)? {
        if let Some(root) = certs.into_iter().find(|c| signs(c, &top, now)) {
            let cn = parse(&root).map(|r| certs::first_cn(r.subject()));
            let note = format!(
                "the CA chain of {mount} holds no root; completed it with the root {:?} from {source}",
                cn.unwrap_or_default()
            );
            let mut out = chain.clone();
            out.push(root);
            return Ok((out, Some(note)));
        }
    }
    Err(BundleError::NoRoot {
        mount: mount.to_string(),
        top: certs::first_cn(top.subject()),
        issuer: certs::first_cn(top.issuer()),
        searched: if searched.is_empty() {
            "no file (the bundle does not exist yet)".into()
        } else {
            searched.join(" and ")
        },
    })
}

/// Where a root may come from, in order: `--root FILE` (an error when unreadable), then the
/// bundle being replaced (skipped when absent or unreadable: it may not exist yet).
fn candidates(
    bundle: &Path,
    root_file: Option<&Path>,
    searched: &mut Vec<String>,
) -> Result<Vec<(String, Ders)>, BundleError> {
    let mut out = Vec::new();
    if let Some(p) = root_file {
        let root_err = |detail: String| BundleError::RootFile {
            path: p.display().to_string(),
            detail,
        };
        let bytes = safefs::read_input(p, safefs::MAX_PEM_BYTES, "a root CA file")
            .map_err(|e| root_err(e.to_string()))?
            .ok_or_else(|| root_err("no such file".into()))?;
        let certs = certs::parse_certs(&bytes, &p.display().to_string())
            .map_err(|e| root_err(e.to_string()))?;
        searched.push(format!("--root {}", p.display()));
        out.push((format!("--root {}", p.display()), certs));
    }
    let current = safefs::read_file(bundle, safefs::MAX_PEM_BYTES, "a CA bundle");
    let parsed = current
        .ok()
        .flatten()
        .and_then(|b| certs::parse_certs(&b, &bundle.display().to_string()).ok());
    if let Some(certs) = parsed {
        searched.push(format!("the current {}", bundle.display()));
        out.push((format!("the current {}", bundle.display()), certs));
    }
    Ok(out)
}

fn parse<'a>(d: &'a CertificateDer<'_>) -> Option<X509Certificate<'a>> {
    X509Certificate::from_der(d.as_ref()).ok().map(|(_, c)| c)
}

/// Self-issued and self-signed.
fn is_root(c: &X509Certificate<'_>) -> bool {
    c.subject() == c.issuer() && c.verify_signature(None).is_ok()
}

/// `root` is a valid root CA at `now` that issued and signed `child`.
fn signs(root: &CertificateDer<'_>, child: &X509Certificate<'_>, now: SystemTime) -> bool {
    let Some(r) = parse(root) else {
        return false;
    };
    let t = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let valid = r.validity().not_before.timestamp() <= t && t < r.validity().not_after.timestamp();
    is_root(&r)
        && r.is_ca()
        && valid
        && r.subject() == child.issuer()
        && child.verify_signature(Some(r.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::material::{parse_pem, testpki, to_pem};
    use super::*;

    /// (intermediate, root) DERs of a fresh two-level PKI.
    fn pki() -> (CertificateDer<'static>, CertificateDer<'static>) {
        let root = testpki::ca("Lab Root", None);
        let int = testpki::ca("Lab Intermediate", Some(&root));
        let der = |pem: &str| parse_pem(pem, "test").unwrap().remove(0);
        (der(&int.cert_pem), der(&root.cert_pem))
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn a_chain_with_its_root_is_written_as_is() {
        let (int, root) = pki();
        let chain = vec![int, root];
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("b.pem");
        let (out, note) = complete(chain.clone(), "pki", &b, None, now()).unwrap();
        assert_eq!((out, note), (chain, None));
    }

    #[test]
    fn an_intermediate_alone_takes_the_root_of_the_current_bundle() {
        let (int, root) = pki();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca_chain.pem");
        std::fs::write(&bundle, to_pem(&[int.clone(), root.clone()])).unwrap();
        let (out, note) = complete(vec![int.clone()], "pki", &bundle, None, now()).unwrap();
        assert_eq!(out, vec![int, root]);
        assert!(note.unwrap().contains("from the current"));
    }

    #[test]
    fn no_root_anywhere_is_refused_and_names_the_fix() {
        let (int, root) = pki();
        let (_, other_root) = pki();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca_chain.pem");
        std::fs::write(&bundle, to_pem(&[other_root])).unwrap();
        let e = complete(vec![int.clone()], "pki-prod", &bundle, None, now()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--root FILE") && msg.contains("nothing was written"),
            "{msg}"
        );
        let missing = dir.path().join("missing.pem");
        let e = complete(vec![int.clone()], "pki-prod", &missing, None, now()).unwrap_err();
        assert!(e.to_string().contains("does not exist yet"), "{e}");
        let root_file = dir.path().join("root.pem");
        std::fs::write(&root_file, to_pem(&[root])).unwrap();
        let (out, _) = complete(vec![int], "pki-prod", &bundle, Some(&root_file), now()).unwrap();
        assert_eq!(out.len(), 2);
    }
}
