//! `files` checks: each entry's existence, mode, owner and group, what it holds (cert, key,
//! chain, bundle), key pairing, bundle contents, and the certificate expectations.
//!
//! Assertions are named `<what>:<file>` (`mode:server.key`, `pairs_with:admin.key`,
//! `expiry:fullchain.crt`), where `<file>` is the entry's file name, or its path as written
//! when two entries share a file name. A problem with one entry never stops the others.
//! `not_revoked:<file>` judges a cert or chain entry against its issuer's CRL (the entry's
//! `crl_file`, else the distribution points; issuers from the file, then its `ca_file`).

mod content;
mod expect;
mod meta;
mod pairing;
mod stores;

use crate::expect::chain::want::ChainExpect;
use crate::expect::revocation::NotRevoked;
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::model::{Assertion, CheckResult, FailureClass, Outcome, ProbeError, Status};
use crate::suite::{ExpiryThresholds, Mode};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use stores::{CaFiles, Stores};

/// What a file is expected to hold.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Cert,
    Key,
    Chain,
    Bundle,
    /// Any file: only existence, mode, owner and group are checked.
    Other,
}

impl FileKind {
    /// Lowercase token.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Cert => "cert",
            FileKind::Key => "key",
            FileKind::Chain => "chain",
            FileKind::Bundle => "bundle",
            FileKind::Other => "other",
        }
    }
}

/// One file of a `files` check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub kind: FileKind,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// For a key: the cert (or chain) file whose leaf it must pair with.
    pub pairs_with: Option<String>,
    /// For a bundle or chain: a file whose certificate(s) must be contained.
    pub contains: Option<String>,
    /// Trust anchors for `expect.chain` on cert/chain entries.
    pub ca_file: Option<String>,
    /// CRLs for `expect.not_revoked` on cert/chain entries (PEM or DER); else the
    /// certificates' distribution points.
    pub crl_file: Option<String>,
    /// `false` for a file that must not exist. Defaults to true.
    #[serde(default = "yes")]
    pub exists: bool,
}

fn yes() -> bool {
    true
}

/// What a `files` check may expect of the certificates it reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FilesExpect {
    pub chain: Option<ChainExpect>,
    pub names: Option<Vec<String>>,
    pub expiry: Option<ExpiryThresholds>,
    pub issuer_cn: Option<String>,
    pub issuer_dn: Option<String>,
    pub not_revoked: Option<NotRevoked>,
}

family!(
    FILE_MODE,
    "rotcheck_file_mode",
    Gauge,
    "The file's permission bits as a number whose decimal digits are the octal mode (0640 is 640)."
);

/// The `files` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Files;

impl CheckKind for Files {
    const NAME: &'static str = "files";
    type Spec = Vec<FileEntry>;
    type Expect = FilesExpect;
    const FAMILIES: &'static [&'static Def] = &[&FILE_MODE];

    fn validate(files: &Vec<FileEntry>, _expect: &FilesExpect) -> Result<(), Invalid> {
        validate_entries(files)
    }

    async fn probe(files: &Vec<FileEntry>, expect: &FilesExpect, ctx: &Ctx) -> Outcome {
        probe(files, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        let mut seen: Vec<&str> = Vec::new();
        for f in &r.facts.files {
            let Some(mode) = f.mode else { continue };
            if seen.contains(&f.path.as_str()) {
                continue;
            }
            seen.push(&f.path);
            let labels = crate::metrics::with(base, &[("path", &f.path)]);
            e.sample(&FILE_MODE, &labels, octal_digits(mode));
        }
    }
}

/// 0o640 → 640: the mode reads the same on a dashboard as in `ls -l` / `chmod`.
pub fn octal_digits(mode: u32) -> f64 {
    format!("{:o}", mode & 0o7777).parse::<f64>().unwrap_or(0.0)
}

fn validate_entries(files: &[FileEntry]) -> Result<(), Invalid> {
    if files.is_empty() {
        return Err(Invalid::new(
            ".files",
            "list at least one file: [{path: ..., kind: cert}]",
        ));
    }
    for (j, f) in files.iter().enumerate() {
        validate_entry(&format!(".files[{j}]"), f)?;
    }
    Ok(())
}

/// The keys that apply to some kinds of file only: set, and which kinds.
fn validate_entry(k: &str, f: &FileEntry) -> Result<(), Invalid> {
    use FileKind::*;
    let rules: [(&str, bool, &[FileKind], &str); 3] = [
        ("pairs_with", f.pairs_with.is_some(), &[Key], "key"),
        (
            "crl_file",
            f.crl_file.is_some(),
            &[Cert, Chain],
            "cert or chain",
        ),
        (
            "contains",
            f.contains.is_some(),
            &[Bundle, Chain],
            "bundle or chain",
        ),
    ];
    for (key, set, kinds, named) in rules {
        if set && !kinds.contains(&f.kind) {
            let msg = format!("{key} applies to kind: {named}, not {}", f.kind.as_str());
            return Err(Invalid::new(format!("{k}.{key}"), msg));
        }
    }
    Ok(())
}

/// Inspects the files and evaluates the expectations, off the async runtime: a hung read
/// (a stalled NFS mount) ends in a `timeout` error instead of blocking other checks.
pub async fn probe(entries: &[FileEntry], expect: &FilesExpect, ctx: &Ctx) -> Outcome {
    let (owned, exp, c) = (entries.to_vec(), expect.clone(), ctx.clone());
    let work = tokio::task::spawn_blocking(move || inspect(&owned, &exp, &c));
    match tokio::time::timeout(ctx.timeout, work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) => stopped("internal", format!("the files probe crashed ({join})")),
        Err(_) => stopped("timeout", hung_message(ctx.timeout)),
    }
}

fn hung_message(timeout: Duration) -> String {
    format!(
        "files not read within {}; expected local reads to finish at once; \
         is a network filesystem (NFS) hung?",
        crate::human::duration(timeout)
    )
}

fn stopped(class: &str, message: String) -> Outcome {
    let error = match class {
        "timeout" => ProbeError::connect(FailureClass::Timeout, message.clone()),
        _ => ProbeError::local(class, message.clone()),
    };
    Outcome {
        error: Some(error),
        assertions: vec![Assertion::not_ok("probe", Status::Error, class, message)],
        ..Default::default()
    }
}

/// Entries one worker thread takes at least: fewer are not worth a thread.
const PER_WORKER: usize = 64;

/// The synchronous work: every entry, its results in entry order. A long list is split
/// into consecutive slices inspected on scoped threads, one per core (reading and chain
/// validation are CPU-bound); each entry is independent, so only the order is merged.
pub fn inspect(entries: &[FileEntry], expect: &FilesExpect, ctx: &Ctx) -> Outcome {
    let labelled: Vec<(&FileEntry, String)> = entries.iter().zip(labels(entries)).collect();
    let workers = workers(entries.len());
    if workers < 2 {
        return inspect_slice(&labelled, expect, ctx);
    }
    let size = labelled.len().div_ceil(workers);
    let parts: Vec<Outcome> = std::thread::scope(|s| {
        let running: Vec<_> = labelled
            .chunks(size)
            .map(|part| s.spawn(move || inspect_slice(part, expect, ctx)))
            .collect();
        running.into_iter().map(joined).collect()
    });
    merge(parts)
}

/// How many threads inspect `n` entries: one per core, each with at least `PER_WORKER`.
fn workers(n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(n / PER_WORKER)
}

/// A worker's outcome; its panic goes on to the probe, which reports the crash.
fn joined(h: std::thread::ScopedJoinHandle<'_, Outcome>) -> Outcome {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// One slice's entries in order; the CA files they name are parsed once for the slice.
fn inspect_slice(entries: &[(&FileEntry, String)], expect: &FilesExpect, ctx: &Ctx) -> Outcome {
    let ca_files = CaFiles::read(entries.iter().map(|(e, _)| *e), expect, ctx);
    let stores = ca_files.parse();
    let mut out = Outcome::default();
    for (spec, label) in entries {
        let path = ctx.path(&spec.path);
        let label = label.clone();
        Entry { spec, label, path }.inspect(expect, ctx, &stores, &mut out);
    }
    out
}

/// The outcomes of consecutive slices as one, in order.
fn merge(parts: Vec<Outcome>) -> Outcome {
    let mut out = Outcome::default();
    for p in parts {
        out.error = out.error.or(p.error);
        out.assertions.extend(p.assertions);
        out.certs.extend(p.certs);
        out.facts.files.extend(p.facts.files);
    }
    out
}

/// One entry being inspected: its spec, its display label and its resolved path.
pub(crate) struct Entry<'a> {
    pub spec: &'a FileEntry,
    pub label: String,
    pub path: PathBuf,
}

impl Entry<'_> {
    /// `<what>:<label>`, the assertion name for this entry.
    pub fn name(&self, what: &str) -> String {
        format!("{what}:{}", self.label)
    }

    /// Renames an assertion built elsewhere (expiry, issuer) to this entry.
    pub fn renamed(&self, mut a: Assertion) -> Assertion {
        a.name = self.name(&a.name);
        a
    }

    fn inspect(&self, expect: &FilesExpect, ctx: &Ctx, stores: &Stores<'_>, out: &mut Outcome) {
        let present = meta::check(self, out);
        if !present || !self.spec.exists {
            return;
        }
        match self.spec.kind {
            FileKind::Other => {}
            FileKind::Key => pairing::check(self, ctx, out),
            FileKind::Cert | FileKind::Chain | FileKind::Bundle => {
                if let Some(mut certs) = content::check(self, ctx, out) {
                    expect::check(self, &mut certs, expect, (ctx, stores), out);
                    out.certs.append(&mut certs.facts);
                }
            }
        }
    }
}

/// Each entry's label: its file name, or its path as written when file names collide.
/// Counted in one pass: a check of 10,000 files compared each name with every other.
fn labels(entries: &[FileEntry]) -> Vec<String> {
    let base: Vec<String> = entries.iter().map(|e| file_name(&e.path)).collect();
    let mut count: HashMap<&str, usize> = HashMap::with_capacity(base.len());
    for b in &base {
        *count.entry(b).or_default() += 1;
    }
    let unique = |b: &String| count.get(b.as_str()) == Some(&1);
    base.iter()
        .zip(entries)
        .map(|(b, e)| if unique(b) { b.clone() } else { e.path.clone() })
        .collect()
}

/// The last component of a path as written (`/a/b/server.crt` → `server.crt`).
pub(crate) fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: FileKind::Other,
            mode: None,
            owner: None,
            group: None,
            pairs_with: None,
            contains: None,
            ca_file: None,
            crl_file: None,
            exists: true,
        }
    }

    #[test]
    fn small_lists_stay_on_one_thread() {
        assert_eq!(workers(PER_WORKER - 1), 0);
        assert!(workers(PER_WORKER * 64) >= 1);
    }

    #[test]
    fn crl_file_is_for_certificates() {
        let mut key = entry("server.key");
        key.kind = FileKind::Key;
        key.crl_file = Some("ca.crl".into());
        let err = validate_entries(&[key]).unwrap_err();
        assert_eq!(err.key, ".files[0].crl_file");
        let mut cert = entry("server.crt");
        cert.kind = FileKind::Cert;
        cert.crl_file = Some("ca.crl".into());
        assert_eq!(validate_entries(&[cert]), Ok(()));
    }

    #[test]
    fn labels_are_file_names_unless_they_collide() {
        let e = [
            entry("/a/ca.pem"),
            entry("/b/ca.pem"),
            entry("/a/server.crt"),
        ];
        assert_eq!(labels(&e), ["/a/ca.pem", "/b/ca.pem", "server.crt"]);
    }
}
