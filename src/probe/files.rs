//! `files` checks: each entry's existence, mode, owner and group, what it holds (cert, key,
//! chain, bundle), key pairing, bundle contents, and the certificate expectations.
//!
//! Assertions are named `<what>:<file>` (`mode:server.key`, `pairs_with:admin.key`,
//! `expiry:fullchain.crt`), where `<file>` is the entry's file name, or its path as written
//! when two entries share a file name. A problem with one entry never stops the others.

mod content;
mod expect;
mod meta;
mod pairing;

use crate::model::{Assertion, FailureClass, Outcome, ProbeError, Status};
use crate::probe::Ctx;
use crate::suite::{Expect, FileEntry, FileKind};
use std::path::PathBuf;
use std::time::Duration;

/// Inspects the files and evaluates the expectations, off the async runtime: a hung read
/// (a stalled NFS mount) ends in a `timeout` error instead of blocking other checks.
pub async fn probe(entries: &[FileEntry], expect: &Expect, ctx: &Ctx) -> Outcome {
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
        humantime::format_duration(timeout)
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

/// The synchronous work: every entry in order, then nothing else.
pub fn inspect(entries: &[FileEntry], expect: &Expect, ctx: &Ctx) -> Outcome {
    let mut out = Outcome::default();
    for (spec, label) in entries.iter().zip(labels(entries)) {
        let path = ctx.path(&spec.path);
        Entry { spec, label, path }.inspect(expect, ctx, &mut out);
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

    fn inspect(&self, expect: &Expect, ctx: &Ctx, out: &mut Outcome) {
        let present = meta::check(self, out);
        if !present || !self.spec.exists {
            return;
        }
        match self.spec.kind {
            FileKind::Other => {}
            FileKind::Key => pairing::check(self, ctx, out),
            FileKind::Cert | FileKind::Chain | FileKind::Bundle => {
                if let Some(certs) = content::check(self, ctx, out) {
                    expect::check(self, &certs, expect, ctx, out);
                }
            }
        }
    }
}

/// Each entry's label: its file name, or its path as written when file names collide.
fn labels(entries: &[FileEntry]) -> Vec<String> {
    let base: Vec<String> = entries.iter().map(|e| file_name(&e.path)).collect();
    let unique = |b: &String| base.iter().filter(|x| *x == b).count() == 1;
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
            exists: true,
        }
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
