//! Client profiles: would OpenSSL (nginx, haproxy, curl), Go crypto/x509 (Vault, OpenBao,
//! Consul, Kubernetes) or rustls accept this chain? Each family builds paths and applies policy
//! its own way (docs/verify.md "Client profiles" has the table, with the source of each
//! rule); [`verdict`] models one family, pure and synchronous, and `tests/clients.rs` checks
//! every model against the real client.
//!
//! Also here, for private PKIs: [`lint`] (profile smells every client accepts today but a
//! rotation or an upgrade trips on) and [`complete_chain`] (does the presented chain carry
//! every intermediate a client that trusts only the root needs?).

mod cert;
mod go;
mod lint;
mod openssl;
mod rustls;

pub use lint::{lint, lint_parsed, Lint, LintReason};

use crate::model::ChainReason;
use cert::Cert;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::borrow::Cow;
use x509_parser::certificate::X509Certificate;

/// A TLS client family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// OpenSSL 3 at security level 2 (Debian's default): nginx, haproxy, curl.
    Openssl,
    /// Go crypto/x509: Vault, OpenBao, Consul, Kubernetes.
    Go,
    /// rustls with rustls-webpki.
    Rustls,
}

impl Client {
    /// Every family, in report order.
    pub const ALL: [Client; 3] = [Client::Openssl, Client::Go, Client::Rustls];

    /// The token: `openssl`, `go` or `rustls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Client::Openssl => "openssl",
            Client::Go => "go",
            Client::Rustls => "rustls",
        }
    }
}

/// What the leaf is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A TLS server certificate (serverAuth).
    ServerAuth,
    /// An mTLS client certificate (clientAuth).
    ClientAuth,
}

/// One family's verdict on a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub client: Client,
    pub accepts: bool,
    /// Why not, when it does not accept.
    pub reason: Option<ChainReason>,
    /// One line: what the client does with the chain, and what to do when it refuses it.
    pub message: String,
}

/// A refusal: the reason and a message naming the certificate at fault.
type Refusal = (ChainReason, String);

/// What every profile is handed.
struct Input<'a> {
    presented: Vec<&'a Cert<'a>>,
    store: &'a [Cert<'a>],
    name: Option<&'a str>,
    purpose: Purpose,
    now: i64,
}

/// A trust store (a CA file) parsed once for every judgement against it: a `files` check
/// judges each of its certificates against the same CA file.
pub struct Store<'a> {
    der: &'a [CertificateDer<'a>],
    /// The certificates that parse.
    certs: Vec<Cert<'a>>,
}

impl<'a> Store<'a> {
    /// Parses the certificates of a CA file.
    pub fn new(der: &'a [CertificateDer<'a>]) -> Self {
        let certs = der.iter().filter_map(Cert::shared).collect();
        Store { der, certs }
    }

    /// The certificates as read.
    pub fn der(&self) -> &'a [CertificateDer<'a>] {
        self.der
    }
}

/// The presented chain and the trust store parsed once (x509-parser), for every profile, the
/// lint and the completeness test of one judgement: parsing is a quarter of the CPU of a
/// chain judgement, and each of them used to parse both again.
pub struct Parsed<'a> {
    presented: &'a [CertificateDer<'a>],
    store_der: &'a [CertificateDer<'a>],
    /// The presented certificates that parse, in order; those of a store parsed beforehand
    /// (a CA file's intermediates completing a lone certificate) are borrowed from it.
    certs: Vec<Cow<'a, Cert<'a>>>,
    /// The position of the first presented certificate that does not parse.
    unparsed: Option<usize>,
    /// The store's certificates that parse.
    store: Cow<'a, [Cert<'a>]>,
}

impl<'a> Parsed<'a> {
    /// Parses `presented` (leaf first) and `store` (the CA file).
    pub fn new(presented: &'a [CertificateDer<'a>], store: &'a [CertificateDer<'a>]) -> Self {
        Self::with_leaf(presented, store, None)
    }

    /// [`Parsed::new`] with the leaf parsed already (x509-parser).
    pub fn with_leaf(
        presented: &'a [CertificateDer<'a>],
        store: &'a [CertificateDer<'a>],
        leaf: Option<&X509Certificate<'_>>,
    ) -> Self {
        let parsed = store.iter().filter_map(Cert::shared).collect();
        Self::with(presented, store, Cow::Owned(parsed), leaf)
    }

    /// Parses `presented` against a store parsed beforehand.
    pub fn in_store(presented: &'a [CertificateDer<'a>], store: &'a Store<'a>) -> Self {
        Self::with(presented, store.der, Cow::Borrowed(&store.certs), None)
    }

    fn with(
        presented: &'a [CertificateDer<'a>],
        store_der: &'a [CertificateDer<'a>],
        store: Cow<'a, [Cert<'a>]>,
        leaf: Option<&X509Certificate<'_>>,
    ) -> Self {
        let mut certs = Vec::with_capacity(presented.len());
        let mut unparsed = None;
        for (i, der) in presented.iter().enumerate() {
            // The leaf is the listener's own; what follows it, many listeners send alike.
            let parse = |der| match (i, leaf) {
                (0, Some(c)) => Some(Cert::of(der, c)),
                (0, None) => Cert::parse(der),
                _ => Cert::shared(der),
            };
            match stored(&store, der).map(Cow::Borrowed) {
                Some(c) => certs.push(c),
                None => match parse(der) {
                    Some(c) => certs.push(Cow::Owned(c)),
                    None => {
                        unparsed.get_or_insert(i);
                    }
                },
            }
        }
        Parsed {
            presented,
            store_der,
            certs,
            unparsed,
            store,
        }
    }

    /// The presented certificates that parse, in order.
    fn presented(&self) -> Vec<&Cert<'a>> {
        self.certs.iter().map(|c| &**c).collect()
    }

    /// What the OpenSSL and Go profiles are handed, or why no profile gets that far.
    fn input<'p>(
        &'p self,
        name: Option<&'p str>,
        purpose: Purpose,
        now: UnixTime,
    ) -> Result<Input<'p>, Refusal> {
        if self.presented.is_empty() {
            return Err((ChainReason::Other, "no certificate was presented".into()));
        }
        if let Some(i) = self.unparsed {
            let why = format!("presented certificate #{} does not parse", i + 1);
            return Err((ChainReason::Other, why));
        }
        Ok(Input {
            presented: self.presented(),
            store: &self.store,
            name,
            purpose,
            now: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        })
    }
}

/// Would `client` accept `presented` (leaf first, then what the server or file sends) with
/// `store` (the CA file) as its trust store, for `name` and `purpose`, at `now`?
pub fn verdict(
    client: Client,
    presented: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    name: Option<&str>,
    purpose: Purpose,
    now: UnixTime,
) -> Verdict {
    verdict_parsed(client, &Parsed::new(presented, store), name, purpose, now)
}

/// [`verdict`] on certificates parsed already.
pub fn verdict_parsed(
    client: Client,
    p: &Parsed<'_>,
    name: Option<&str>,
    purpose: Purpose,
    now: UnixTime,
) -> Verdict {
    let result = match client {
        Client::Rustls => rustls::check(p.presented, p.store_der, name, purpose, now),
        Client::Openssl | Client::Go => {
            p.input(name, purpose, now).and_then(|input| match client {
                Client::Openssl => openssl::check(&input),
                _ => go::check(&input),
            })
        }
    };
    match result {
        Ok(how) => Verdict {
            client,
            accepts: true,
            reason: None,
            message: format!("{} accepts the chain: {how}", client.as_str()),
        },
        Err((reason, why)) => Verdict {
            client,
            accepts: false,
            reason: Some(reason),
            message: format!("{} refuses the chain: {why}", client.as_str()),
        },
    }
}

impl<'a> Input<'a> {
    fn leaf(&self) -> &Cert<'a> {
        self.presented[0]
    }

    /// The presented certificates after the leaf, without byte-identical repeats.
    fn pool(&self) -> Vec<&Cert<'a>> {
        dedup(self.presented[1..].iter().copied())
    }

    /// The store without byte-identical repeats.
    fn anchors(&self) -> Vec<&Cert<'a>> {
        dedup(self.store.iter())
    }
}

fn dedup<'c, 'a>(certs: impl Iterator<Item = &'c Cert<'a>>) -> Vec<&'c Cert<'a>> {
    let mut out: Vec<&Cert<'a>> = vec![];
    for c in certs {
        if !out.iter().any(|o| o.bytes() == c.bytes()) {
            out.push(c);
        }
    }
    out
}

/// A certificate's validity period at `now` (bounds included), as a refusal.
fn check_time(c: &Cert<'_>, what: &str, now: i64) -> Result<(), Refusal> {
    let at = crate::certs::rfc3339;
    if now > c.not_after {
        return Err((
            ChainReason::Expired,
            format!(
                "{what} {} expired at {} (checked at {}); install a renewed certificate",
                c.label(),
                at(c.not_after),
                at(now)
            ),
        ));
    }
    if now < c.not_before {
        return Err((
            ChainReason::NotYetValid,
            format!(
                "{what} {} is not valid before {} (checked at {})",
                c.label(),
                at(c.not_before),
                at(now)
            ),
        ));
    }
    Ok(())
}

/// Does the presented chain carry every intermediate a client that trusts only self-signed
/// roots needs? True when, by names and signatures (validity dates aside), the leaf reaches a
/// self-signed root of `store` through the presented certificates alone, or is such a root.
pub fn complete_chain(presented: &[CertificateDer<'_>], store: &[CertificateDer<'_>]) -> bool {
    complete_parsed(&Parsed::new(presented, store))
}

/// [`complete_chain`] on certificates parsed already.
pub fn complete_parsed(p: &Parsed<'_>) -> bool {
    let pool = p.presented();
    let roots: Vec<&Cert<'_>> = p.store.iter().filter(|c| c.self_signed()).collect();
    let Some(leaf) = pool.first() else {
        return false;
    };
    if roots.iter().any(|r| r.bytes() == leaf.bytes()) {
        return true;
    }
    reaches(leaf, &pool[1..], &roots, &mut vec![leaf.bytes()])
}

fn reaches<'a>(
    c: &Cert<'a>,
    pool: &[&'a Cert<'a>],
    roots: &[&Cert<'_>],
    seen: &mut Vec<&'a [u8]>,
) -> bool {
    if roots.iter().any(|r| cert::signed_by(c, r)) {
        return true;
    }
    for &p in pool {
        if seen.contains(&p.bytes()) || !cert::signed_by(c, p) {
            continue;
        }
        seen.push(p.bytes());
        if reaches(p, pool, roots, seen) {
            return true;
        }
    }
    false
}

/// The store's parsed copy of `der`, when the store was parsed beforehand.
fn stored<'a>(store: &Cow<'a, [Cert<'a>]>, der: &CertificateDer<'_>) -> Option<&'a Cert<'a>> {
    match store {
        Cow::Borrowed(s) => s.iter().find(|c| c.bytes() == der.as_ref()),
        Cow::Owned(_) => None,
    }
}

#[cfg(test)]
mod tests;
