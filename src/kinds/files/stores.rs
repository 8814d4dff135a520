//! The CA files of a slice of entries, read and parsed once for every entry judged against
//! them (`chain: valid`), instead of once per entry.

use super::{FileEntry, FileKind, FilesExpect};
use crate::expect::chain::clients::Store;
use crate::kinds::Ctx;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::sync::Arc;

/// The CA files that read, by `ca_file` as written.
pub struct CaFiles(HashMap<String, Arc<Vec<CertificateDer<'static>>>>);

/// The same files, parsed.
pub struct Stores<'a>(HashMap<&'a str, Store<'a>>);

impl CaFiles {
    /// Reads (through the run's cache) each `ca_file` a cert or chain entry is judged against;
    /// one that does not read is left to each entry to report.
    pub fn read<'e>(
        entries: impl Iterator<Item = &'e FileEntry>,
        expect: &FilesExpect,
        ctx: &Ctx,
    ) -> Self {
        let mut out = HashMap::new();
        if !expect.chain.is_some_and(|c| c.valid) {
            return CaFiles(out);
        }
        for e in entries.filter(|e| matches!(e.kind, FileKind::Cert | FileKind::Chain)) {
            let Some(f) = e.ca_file.as_ref().filter(|f| !out.contains_key(*f)) else {
                continue;
            };
            if let Ok(ca) = ctx.cache.certs(&ctx.path(f)) {
                out.insert(f.clone(), ca);
            }
        }
        CaFiles(out)
    }

    /// Each file parsed.
    pub fn parse(&self) -> Stores<'_> {
        let parsed = self.0.iter().map(|(f, ca)| (f.as_str(), Store::new(ca)));
        Stores(parsed.collect())
    }
}

impl<'a> Stores<'a> {
    /// The parsed CA file named `ca_file`, when it read.
    pub fn get(&self, ca_file: &str) -> Option<&Store<'a>> {
        self.0.get(ca_file)
    }
}
