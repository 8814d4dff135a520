//! The check-level certificate expectations, applied to each cert and chain entry: `expiry`
//! (every certificate of the file), `names`, `issuer_cn`/`issuer_dn` (the leaf), `chain` and
//! `not_revoked`.

use super::content::{unusable, Loaded};
use super::stores::Stores;
use super::Entry;
use super::{FileKind, FilesExpect};
use crate::certs::FileError;
use crate::expect::chain::clients::Store;
use crate::expect::chain::judge::{judge_expected, judge_expected_in, Judgement};
use crate::expect::chain::want::ChainExpect;
use crate::expect::chain::{with_ca_intermediates, Usage};
use crate::expect::expiry::assert_expiry;
use crate::expect::issuer::{assert_issuer_cn, assert_issuer_dn};
use crate::expect::names::assert_names;
use crate::expect::revocation::{self, NotRevoked, Presented};
use crate::kinds::Ctx;
use crate::model::{Assertion, Outcome, Status};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::time::Duration;

/// Evaluates the expectations for one loaded entry (bundles hold trust anchors: skipped).
pub fn check(
    e: &Entry,
    loaded: &mut Loaded,
    expect: &FilesExpect,
    (ctx, stores): (&Ctx, &Stores<'_>),
    out: &mut Outcome,
) {
    if e.spec.kind == FileKind::Bundle {
        return;
    }
    let t = expect.expiry.unwrap_or_else(|| ctx.default_expiry());
    let expiry = assert_expiry(&loaded.facts, &t, ctx.now_unix());
    out.assertions.push(e.renamed(expiry));
    let leaf = &loaded.facts[0];
    if let Some(want) = &expect.names {
        let a = assert_names(&loaded.ders[0], want);
        out.assertions.push(prefixed(e, a));
    }
    if let Some(want) = &expect.issuer_cn {
        out.assertions
            .push(prefixed(e, assert_issuer_cn(leaf, want)));
    }
    if let Some(want) = &expect.issuer_dn {
        out.assertions
            .push(prefixed(e, assert_issuer_dn(leaf, want)));
    }
    if let Some(want) = expect.chain.filter(|c| c.valid) {
        out.assertions.extend(chain(e, loaded, want, ctx, stores));
    }
    if let Some(want) = expect.not_revoked.filter(|w| w.on) {
        not_revoked(e, loaded, &want, ctx, out);
    }
}

/// `not_revoked:<file>`: each certificate of the file against its issuer's CRL. Runs on the
/// blocking thread of the files probe; CRL fetches are driven by the probe's runtime.
fn not_revoked(e: &Entry, loaded: &mut Loaded, want: &NotRevoked, ctx: &Ctx, out: &mut Outcome) {
    let name = e.name("not_revoked");
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        let msg = "internal: no runtime to fetch CRLs on";
        out.assertions
            .push(Assertion::not_ok(&name, Status::Error, "internal", msg));
        return;
    };
    let anchors = match &e.spec.ca_file {
        Some(f) => ctx
            .cache
            .certs(&ctx.path(f))
            .map(|c| c.to_vec())
            .unwrap_or_default(),
        None => vec![],
    };
    let p = Presented {
        chain: &loaded.ders,
        facts: &loaded.facts,
        anchors: &anchors,
    };
    let crl_file = e.spec.crl_file.as_deref().map(|f| ctx.path(f));
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let (a, flags) = rt.block_on(revocation::judge(&p, crl_file, want, ctx, deadline));
    out.assertions.push(prefixed(e, a));
    let start = loaded.facts.len().saturating_sub(flags.len());
    for (f, r) in loaded.facts[start..].iter_mut().zip(flags) {
        f.revoked = r;
    }
}

/// Renamed to the entry, with the file named at the start of the message.
fn prefixed(e: &Entry, a: Assertion) -> Assertion {
    let mut a = e.renamed(a);
    a.message = format!("{}: {}", e.label, a.message);
    a
}

/// `chain: valid` for a file: would each selected client accept its certificates with the
/// entry's `ca_file` as trust store (`chain`, `accepted_by_<client>`), does a chain file carry
/// its intermediates (`complete_chain`), and what lint applies — each named after the entry.
fn chain(
    e: &Entry,
    loaded: &Loaded,
    want: ChainExpect,
    ctx: &Ctx,
    stores: &Stores<'_>,
) -> Vec<Assertion> {
    let name = e.name("chain");
    let Some(ca_file) = &e.spec.ca_file else {
        let msg = format!(
            "chain: valid needs the trust anchors for {}; add `ca_file: PATH` to its entry",
            e.label
        );
        return vec![Assertion::not_ok(&name, Status::Error, "config", msg)];
    };
    let j = match judgement(e, loaded, want, ctx, stores.get(ca_file)) {
        Ok(j) => j,
        Err(err) => return vec![unusable(&name, &err)],
    };
    let out = j.assertions(&want, &e.name(""));
    out.into_iter().map(|a| labelled(e, a)).collect()
}

/// The chain judgement of the entry against its CA file: the one parsed for the slice, else
/// (when it did not read) read again to report why.
fn judgement(
    e: &Entry,
    loaded: &Loaded,
    want: ChainExpect,
    ctx: &Ctx,
    store: Option<&Store<'_>>,
) -> Result<Judgement, FileError> {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(ctx.now_unix().max(0) as u64));
    // A certificate file may be an mTLS client identity; only a chain file must be complete.
    let seen = (Usage::Either, e.spec.kind == FileKind::Chain);
    if let Some(store) = store {
        let presented = presented_for(e.spec.kind, &loaded.ders, store.der());
        return Ok(judge_expected_in(&want, &presented, store, None, now, seen));
    }
    let ca_file = e.spec.ca_file.as_deref().unwrap_or_default();
    let ca = ctx.cache.certs(&ctx.path(ca_file))?;
    let presented = presented_for(e.spec.kind, &loaded.ders, &ca);
    Ok(judge_expected(&want, &presented, &ca, None, now, seen))
}

/// The file named at the start of an assertion's message (already named after the entry).
fn labelled(e: &Entry, mut a: Assertion) -> Assertion {
    a.message = format!("{}: {}", e.label, a.message);
    a
}

/// A fullchain must carry its own intermediates (else `incomplete_chain`); a lone certificate
/// file may be completed by its CA file's intermediates.
fn presented_for<'a>(
    kind: FileKind,
    ders: &[CertificateDer<'a>],
    ca: &[CertificateDer<'a>],
) -> Vec<CertificateDer<'a>> {
    match kind {
        FileKind::Cert => with_ca_intermediates(ders, ca),
        _ => ders.to_vec(),
    }
}
