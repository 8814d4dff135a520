//! `rotate issue`: a certificate from `<mount>/issue/<role>` (or `<mount>/sign/<role>` with a
//! key generated here), verified, then written with its key, chain and CA files. A current
//! certificate that is still fresh (pairs, chains to the mount's CA, right names, enough
//! lifetime left) is kept; only its companion files are brought in line.

use super::atomic::{commit_all, journal_path, prepare, roll_forward, FileSpec, Prepared, Written};
use super::ctx::{warnings, Ctx, Done, RotateError};
use super::keygen;
use super::material::{parse_pem, split_roots, to_pem, CertId};
use super::owner::Ownership;
use super::safefs;
use super::secret::Secret;
use super::spec::IssueSpec;
use super::state::CertChange;
use super::verify::{self, Candidate, Expected};
use crate::certs;
use crate::suite::Threshold;
use crate::vault::VaultError;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};
use std::path::Path;

type Ders = Vec<CertificateDer<'static>>;

/// Runs `issue`.
pub async fn run(spec: &IssueSpec, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    check_owner(spec.owner.as_ref())?;
    preflight(&targets(spec))?;
    let ca_chain = fetch_ca_chain(cx, &spec.mount).await?;
    let ca_chain = bundle_chain(spec, ca_chain, cx)?;
    let stale = if spec.force {
        Some("--force given".to_string())
    } else {
        freshness(spec, &ca_chain, cx)?
    };
    match stale {
        None => keep_current(spec, &ca_chain, cx),
        Some(why) => {
            cx.say(format!(
                "{} needs a new certificate: {why}",
                spec.cert.display()
            ));
            if cx.dry_run {
                dry_run(spec, cx);
                return Ok(Done {
                    changed: true,
                    certs: vec![],
                });
            }
            issue_new(spec, cx).await
        }
    }
}

/// Every file an issue writes.
pub fn targets(spec: &IssueSpec) -> Vec<&Path> {
    let mut v = vec![spec.key.as_path(), spec.cert.as_path()];
    for p in [&spec.chain, &spec.ca, &spec.ca_chain]
        .into_iter()
        .flatten()
    {
        v.push(p.as_path());
    }
    v
}

/// `--owner` names a user and group of this machine (checked before Vault is asked).
pub fn check_owner(owner: Option<&Ownership>) -> Result<(), RotateError> {
    match owner.map(Ownership::resolve) {
        Some(Err(e)) => Err(RotateError::Config(format!(
            "--owner {}: {e}",
            owner.map(|o| o.to_string()).unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

/// Refuses, before anything talks to Vault, a target that exists and is not a regular file.
pub fn preflight(paths: &[&Path]) -> Result<(), RotateError> {
    for p in paths {
        let (dir, name) = match safefs::Dir::of_file(p, false) {
            Ok(x) => x,
            Err(safefs::FsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => return Err(fs_err(e)),
        };
        if let Some(e) = dir.lstat(&name).map_err(fs_err)? {
            if e.kind != rustix::fs::FileType::RegularFile {
                return Err(fs_err(safefs::FsError::NotRegular {
                    path: p.display().to_string(),
                    found: safefs::describe(e.kind),
                    op: "replace",
                }));
            }
        }
    }
    Ok(())
}

fn fs_err(e: safefs::FsError) -> RotateError {
    RotateError::File(e.into())
}

/// Reads a key or certificate target: `None` when missing; a non-regular file or one over
/// the size cap is an error.
pub fn read_target(p: &Path) -> Result<Option<Vec<u8>>, RotateError> {
    safefs::read_file(p, safefs::MAX_PEM_BYTES, "a key or certificate file").map_err(fs_err)
}

/// The identity of the first certificate of a target file, when it has one.
pub fn cert_id_of(p: &Path) -> Result<Option<CertId>, RotateError> {
    let Some(bytes) = read_target(p)? else {
        return Ok(None);
    };
    let ders = certs::parse_certs(&bytes, &p.display().to_string()).unwrap_or_default();
    Ok(ders.first().map(|d| CertId::of(d.as_ref())))
}

/// With `--ca-chain`, the chain completed with its root before anything is issued or written
/// (a bundle without its root locks every consumer out).
fn bundle_chain(spec: &IssueSpec, chain: Ders, cx: &mut Ctx<'_>) -> Result<Ders, RotateError> {
    match &spec.ca_chain {
        Some(out) => super::trust::with_root(chain, &spec.mount, out, spec.root.as_deref(), cx),
        None => Ok(chain),
    }
}

/// The mount's CA chain (issuer first, up to the root) from `<mount>/cert/ca_chain`.
pub async fn fetch_ca_chain(cx: &mut Ctx<'_>, mount: &str) -> Result<Ders, RotateError> {
    let path = format!("{mount}/cert/ca_chain");
    let data = cx.vault.read_public(&path).await?;
    let text = data
        .as_ref()
        .and_then(|d| d.get("ca_chain").or_else(|| d.get("certificate")))
        .and_then(Value::as_str)
        .unwrap_or("");
    if text.trim().is_empty() {
        return Err(RotateError::Material(format!(
            "GET {path}: the mount has no CA chain; expected the PKI mount {mount:?} to have an issuer; check the mount name"
        )));
    }
    let ders = parse_pem(text, &format!("GET {path}")).map_err(RotateError::Material)?;
    let top = CertId::of(ders[0].as_ref());
    cx.out.line(format!(
        "read {path}: {} certificate(s), issuer {:?}",
        ders.len(),
        top.subject_cn
    ));
    Ok(ders)
}

fn expected(spec: &IssueSpec) -> Expected {
    let mut sans = spec.alt_names.clone();
    sans.extend(spec.ip_sans.iter().cloned());
    Expected {
        cn: Some(spec.cn.clone()),
        sans,
    }
}

/// Why the current certificate must be replaced; `None` when it is fresh. A target that is
/// not a regular file is an error, not a reason to re-issue.
fn freshness(
    spec: &IssueSpec,
    ca_chain: &Ders,
    cx: &mut Ctx<'_>,
) -> Result<Option<String>, RotateError> {
    let Some(cert) = read_target(&spec.cert)? else {
        return Ok(Some(format!("{} does not exist", spec.cert.display())));
    };
    let certs = match certs::parse_certs(&cert, &spec.cert.display().to_string()) {
        Ok(c) => c,
        Err(e) => return Ok(Some(format!("{} ({})", e, e.class()))),
    };
    let key = match read_target(&spec.key)?.map(String::from_utf8) {
        Some(Ok(k)) => Secret::new(k),
        Some(Err(_)) => {
            return Ok(Some(format!(
                "{}: the key is not PEM text",
                spec.key.display()
            )))
        }
        None => return Ok(Some(format!("{} does not exist", spec.key.display()))),
    };
    Ok(stale_reason(spec, &certs, &key, ca_chain, cx))
}

/// Why a readable current pair must be replaced; `None` when it is fresh.
fn stale_reason(
    spec: &IssueSpec,
    certs: &Ders,
    key: &Secret,
    ca_chain: &Ders,
    cx: &mut Ctx<'_>,
) -> Option<String> {
    let cand = Candidate {
        leaf: &certs[0],
        intermediates: &certs[1..],
        ca_chain,
        key: Some(key),
    };
    if let Err(e) = verify::verify(&cand, &expected(spec), cx.now) {
        return Some(e.to_string());
    }
    let facts = certs::facts(certs[0].as_ref(), "leaf");
    let now = cx
        .now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let ratio = facts.lifetime_remaining_ratio(now);
    let left = facts.not_after_unix - now;
    let below = match spec.renew_below {
        Threshold::Ratio(r) => ratio < r,
        Threshold::Remaining(d) => left < d.as_secs() as i64,
    };
    let state = format!(
        "{:.0}% of its lifetime left (renews below {})",
        ratio * 100.0,
        spec.renew_below
    );
    if below {
        return Some(state);
    }
    cx.say(format!(
        "{} is fresh: {state}; not re-issued (use --force to re-issue)",
        spec.cert.display()
    ));
    None
}

/// The CA certificate in the chain that issued `leaf` (by subject), else the chain's first.
fn issuer_of(leaf: &CertificateDer<'_>, chain: &Ders) -> Option<CertificateDer<'static>> {
    use x509_parser::prelude::*;
    let (_, l) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let want = l.issuer().as_raw().to_vec();
    chain
        .iter()
        .find(|c| {
            X509Certificate::from_der(c.as_ref()).is_ok_and(|(_, x)| x.subject().as_raw() == want)
        })
        .or(chain.first())
        .cloned()
}

/// The files of an issue, with their bytes.
struct FileSet {
    files: Vec<(FileSpec, Vec<u8>)>,
}

fn file_set(
    spec: &IssueSpec,
    key: Option<&[u8]>,
    cert_pem: &[u8],
    leaf: &CertificateDer<'_>,
    ca_chain: &Ders,
) -> FileSet {
    let cert_spec = |p: &Path| FileSpec {
        path: p.to_path_buf(),
        mode: spec.cert_mode.0,
        owner: spec.owner.clone(),
    };
    let mut files = Vec::new();
    if let Some(p) = &spec.ca_chain {
        files.push((cert_spec(p), to_pem(ca_chain).into_bytes()));
    }
    if let (Some(p), Some(ca)) = (&spec.ca, issuer_of(leaf, ca_chain)) {
        files.push((cert_spec(p), to_pem(&[ca]).into_bytes()));
    }
    if let Some(k) = key {
        let key_spec = FileSpec {
            path: spec.key.clone(),
            mode: spec.key_mode.0,
            owner: spec.owner.clone(),
        };
        files.push((key_spec, k.to_vec()));
    }
    files.push((cert_spec(&spec.cert), cert_pem.to_vec()));
    if let Some(p) = &spec.chain {
        let (ints, _) = split_roots(ca_chain);
        let mut full = vec![leaf.clone().into_owned()];
        full.extend(ints);
        files.push((cert_spec(p), to_pem(&full).into_bytes()));
    }
    FileSet { files }
}

/// Keeps the fresh certificate and key; brings mode, owner and companion files in line.
fn keep_current(spec: &IssueSpec, ca_chain: &Ders, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    let read = |p: &Path| {
        read_target(p)?.ok_or_else(|| {
            RotateError::Material(format!(
                "{}: disappeared while rotcheck ran; run again",
                p.display()
            ))
        })
    };
    let key = read(&spec.key)?;
    let cert = read(&spec.cert)?;
    let leaf = certs::parse_certs(&cert, &spec.cert.display().to_string())
        .map_err(|e| RotateError::Material(e.to_string()))?
        .remove(0);
    let set = file_set(spec, Some(&key), &cert, &leaf, ca_chain);
    if cx.dry_run {
        return dry_run_files(&set, cx);
    }
    let changed = commit(spec, set, cx)?;
    check_pair(spec)?;
    Ok(Done {
        changed,
        certs: vec![],
    })
}

/// Prints what an up-to-date check of each file finds.
fn dry_run_files(set: &FileSet, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    let mut changed = false;
    for (spec, bytes) in &set.files {
        let d = super::atomic::diff(spec, bytes)?;
        changed |= d != super::atomic::Diff::Same;
        cx.say(format!(
            "{}: {}",
            spec.path.display(),
            describe_diff(&d, spec)
        ));
    }
    Ok(Done {
        changed,
        certs: vec![],
    })
}

/// A file's up-to-date check in words, for dry runs.
pub fn describe_diff(d: &super::atomic::Diff, spec: &FileSpec) -> String {
    use super::atomic::Diff;
    let how = format!(
        "{:04o}{}",
        spec.mode,
        spec.owner
            .as_ref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default()
    );
    match d {
        Diff::Same => "up to date".into(),
        Diff::Meta(what) => format!("would fix {what}"),
        Diff::Missing => format!("would create ({how})"),
        Diff::Content => format!("would replace ({how}), keeping the old one as .prev"),
    }
}

fn dry_run(spec: &IssueSpec, cx: &mut Ctx<'_>) {
    if spec.csr {
        cx.say(format!(
            "would generate a {:?} key here and POST {}/sign/{} with a CSR for {:?}",
            spec.key_type, spec.mount, spec.role, spec.cn
        ));
    } else {
        cx.say(format!(
            "would POST {}/issue/{} {}",
            spec.mount,
            spec.role,
            describe_body(&issue_body(spec))
        ));
    }
    cx.say("would verify the new certificate (key pair, chain to the CA, names, expiry) before writing");
    let mut paths = vec![(&spec.key, spec.key_mode.0)];
    for p in [
        Some(&spec.cert),
        spec.chain.as_ref(),
        spec.ca.as_ref(),
        spec.ca_chain.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        paths.push((p, spec.cert_mode.0));
    }
    for (p, mode) in paths {
        let owner = spec
            .owner
            .as_ref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        cx.say(format!("would write {} ({mode:04o}{owner})", p.display()));
    }
}

/// The request body without secrets (it has none), for dry-run output.
fn describe_body(body: &Value) -> String {
    body.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn issue_body(spec: &IssueSpec) -> Value {
    let mut b = json!({ "common_name": spec.cn, "format": "pem" });
    if !spec.alt_names.is_empty() {
        b["alt_names"] = json!(spec.alt_names.join(","));
    }
    if !spec.ip_sans.is_empty() {
        b["ip_sans"] = json!(spec.ip_sans.join(","));
    }
    if let Some(t) = &spec.ttl {
        b["ttl"] = json!(t);
    }
    b
}

/// What Vault returned, secrets wrapped.
struct Issued {
    leaf: CertificateDer<'static>,
    ca_chain: Ders,
    key: Secret,
    serial: String,
}

async fn issue_new(spec: &IssueSpec, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    let mut issued = if spec.csr {
        sign(spec, cx).await?
    } else {
        issue(spec, cx).await?
    };
    if let Some(out) = &spec.ca_chain {
        let answer = std::mem::take(&mut issued.ca_chain);
        let root = spec.root.as_deref();
        let done = super::bundle::complete(answer, &spec.mount, out, root, cx.now);
        issued.ca_chain = done.map_err(|e| RotateError::Material(e.to_string()))?.0;
    }
    let cand = Candidate {
        leaf: &issued.leaf,
        intermediates: &[],
        ca_chain: &issued.ca_chain,
        key: Some(&issued.key),
    };
    let v =
        verify::verify(&cand, &expected(spec), cx.now).map_err(|source| RotateError::Refused {
            what: format!(
                "new certificate serial {} for {:?} (nothing was written)",
                issued.serial, spec.cn
            ),
            source,
        })?;
    if let Some(n) = &v.note {
        cx.say(format!("note: {n}"));
    }
    cx.say(format!(
        "verified {:?} {}: pairs with its key, chains to the CA, names and validity ok",
        v.leaf.subject_cn,
        v.leaf.short()
    ));
    let old = cert_id_of(&spec.cert)?;
    let mut key = issued.key.expose().trim_end().to_string();
    key.push('\n');
    let cert_pem = to_pem(std::slice::from_ref(&issued.leaf));
    let set = file_set(
        spec,
        Some(key.as_bytes()),
        cert_pem.as_bytes(),
        &issued.leaf,
        &issued.ca_chain,
    );
    commit(spec, set, cx)?;
    check_pair(spec)?;
    let change = CertChange {
        path: spec.cert.display().to_string(),
        old,
        new: Some(v.leaf),
    };
    Ok(Done {
        changed: true,
        certs: vec![change],
    })
}

async fn issue(spec: &IssueSpec, cx: &mut Ctx<'_>) -> Result<Issued, RotateError> {
    let path = format!("{}/issue/{}", spec.mount, spec.role);
    let body = issue_body(spec);
    cx.say(format!("POST {path} {}", describe_body(&body)));
    let answer = cx.vault.write(&path, &body).await?;
    let data = answer.get("data").cloned().unwrap_or(Value::Null);
    print_warnings(&answer, cx);
    let key = data
        .get("private_key")
        .and_then(Value::as_str)
        .map(Secret::new)
        .ok_or_else(|| RotateError::Material(format!("POST {path}: the answer has no private_key; expected pki/issue to return one (use --csr with pki/sign)")))?;
    parse_issued(&path, &data, key)
}

async fn sign(spec: &IssueSpec, cx: &mut Ctx<'_>) -> Result<Issued, RotateError> {
    let g = keygen::generate(
        spec.key_type,
        spec.key_bits,
        &spec.cn,
        &spec.alt_names,
        &spec.ip_sans,
    )
    .map_err(RotateError::Material)?;
    cx.say(format!(
        "generated a {} key locally; only the CSR goes to Vault",
        g.kind
    ));
    let path = format!("{}/sign/{}", spec.mount, spec.role);
    let mut body = sign_body(spec, &g.csr_pem);
    cx.say(format!(
        "POST {path} csr=<{} CSR for {:?}>{}",
        g.kind,
        spec.cn,
        spec.ttl
            .as_ref()
            .map(|t| format!(" ttl={t}"))
            .unwrap_or_default()
    ));
    let answer = match cx.vault.write(&path, &body).await {
        Err(e) if wants_common_name(&e) => {
            cx.say(format!("the role does not take the CN from CSRs (use_csr_common_name: false); POST {path} again with common_name={:?}", spec.cn));
            body["common_name"] = json!(spec.cn);
            cx.vault.write(&path, &body).await?
        }
        other => other?,
    };
    print_warnings(&answer, cx);
    let data = answer.get("data").cloned().unwrap_or(Value::Null);
    parse_issued(&path, &data, g.key)
}

/// The CSR plus the names it carries: Vault reads `alt_names`/`ip_sans` from the body only
/// when the role has `use_csr_sans: false`, so sending them changes nothing otherwise. The CN
/// is left out (Vault warns when both give one) unless the role asks for it.
fn sign_body(spec: &IssueSpec, csr_pem: &str) -> Value {
    let mut body = issue_body(spec);
    if let Some(b) = body.as_object_mut() {
        b.remove("common_name");
        b.insert("csr".into(), json!(csr_pem));
    }
    body
}

/// Vault's 400 for a role with `use_csr_common_name: false` and no `common_name` in the body.
fn wants_common_name(e: &RotateError) -> bool {
    matches!(e, RotateError::Vault { source: VaultError::Http { status: 400, errors, .. }, .. }
        if errors.iter().any(|m| m.contains("use_csr_common_name")))
}

fn print_warnings(answer: &Value, cx: &mut Ctx<'_>) {
    for w in warnings(answer) {
        cx.say(format!("Vault warns: {w}"));
    }
}

fn parse_issued(path: &str, data: &Value, key: Secret) -> Result<Issued, RotateError> {
    let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("");
    let bad = |m: String| RotateError::Material(format!("POST {path}: {m}"));
    let leaf = parse_pem(field("certificate"), "the issued certificate")
        .map_err(bad)?
        .remove(0);
    let mut chain_text: Vec<String> = match data.get("ca_chain") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    };
    if chain_text.is_empty() {
        chain_text.push(field("issuing_ca").to_string());
    }
    let ca_chain = parse_pem(&chain_text.join("\n"), "the CA chain of the answer").map_err(bad)?;
    Ok(Issued {
        leaf,
        ca_chain: super::material::dedup(ca_chain),
        key,
        serial: field("serial_number").to_string(),
    })
}

/// Prepares every file (nothing in place yet), then commits them as one journaled set: trust
/// material first, the key and certificate last and back to back.
fn commit(spec: &IssueSpec, set: FileSet, cx: &mut Ctx<'_>) -> Result<bool, RotateError> {
    let prepared = set
        .files
        .iter()
        .map(|(s, b)| prepare(s, b))
        .collect::<Result<Vec<Prepared>, _>>()?;
    let written = commit_all(prepared, &journal_path(&spec.cert))?;
    let mut changed = false;
    for (path, w) in written {
        changed |= w.changed();
        cx.say(describe_written(&path.display().to_string(), &w));
    }
    Ok(changed)
}

/// Finishes a file set that a crash interrupted (before anything talks to Vault: the set may
/// be the very identity the vault profile uses).
pub fn recover(spec: &IssueSpec) -> Result<Vec<std::path::PathBuf>, RotateError> {
    Ok(roll_forward(&journal_path(&spec.cert), &targets(spec))?)
}

/// The key and certificate on disk pair (read back after the swap).
fn check_pair(spec: &IssueSpec) -> Result<(), RotateError> {
    let bad = |m: String| {
        RotateError::Material(format!(
            "after the swap, {} and {} do not pair: {m}; another process wrote one of them; find it, then run again",
            spec.key.display(),
            spec.cert.display()
        ))
    };
    let cert = read_target(&spec.cert)?.ok_or_else(|| bad("the certificate is gone".into()))?;
    let key = read_target(&spec.key)?.ok_or_else(|| bad("the key is gone".into()))?;
    let der = certs::parse_certs(&cert, &spec.cert.display().to_string())
        .map_err(|e| bad(e.to_string()))?
        .remove(0);
    let (_, leaf) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| bad(format!("the certificate does not parse ({e})")))?;
    let key = Secret::new(String::from_utf8_lossy(&key).into_owned());
    verify::pairs(&key, &leaf).map_err(|e| bad(e.to_string()))
}

/// One line per file written.
pub fn describe_written(path: &str, w: &Written) -> String {
    match w {
        Written::Created => format!("wrote {path} (new)"),
        Written::Replaced { backup } => {
            format!("wrote {path} (previous kept as {})", backup.display())
        }
        Written::Fixed { what } => format!("fixed {path}: {what}"),
        Written::Unchanged => format!("unchanged {path}"),
    }
}
