//! One chain judgement for every consumer (`tls`, `files`, `verify`, `inspect`): would each
//! selected client family accept the chain, is the chain complete for a client that trusts
//! only the root, and what private-PKI lint applies. The strict path validation
//! ([`super::validate_for`]) supplies the diagnosis when a client refuses, and its profile
//! findings become lint when every client accepts.
//!
//! Assertions: `chain` (every selected client accepts; its reason feeds
//! `rotcheck_chain_failure`), `accepted_by_<client>` (one per client), `complete_chain`
//! (reason `incomplete_chain`; a warning unless `complete: required`), `lint` (a warning
//! whose reason is the first finding's token; the message lists them all).

use super::clients::Store;
use super::clients::Verdict;
use super::clients::{complete_parsed, lint_parsed, verdict_parsed, Client, Lint, Parsed, Purpose};
use super::want::ChainExpect;
use super::{describe_path, validate_for, validate_parsed, ChainFailure, Usage, ValidPath};
use crate::model::{Assertion, ChainReason, Status};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;

/// What is judged, and for whom.
pub struct Request<'a> {
    /// Leaf first, then what the server or the file sends.
    pub presented: &'a [CertificateDer<'a>],
    /// The trust store (`ca_file`).
    pub store: &'a [CertificateDer<'a>],
    pub name: Option<&'a str>,
    pub now: UnixTime,
    /// OpenSSL `-partial_chain` for the strict diagnosis.
    pub partial: bool,
    pub usage: Usage,
    /// The client families whose verdicts count.
    pub clients: &'a [Client],
    /// Whether `complete_chain` applies (a served chain or a chain file; not a lone cert).
    pub complete: bool,
    /// Longest leaf lifetime `lint` accepts.
    pub max_validity: Option<std::time::Duration>,
}

/// Everything one chain judgement found.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdicts: Vec<Verdict>,
    pub strict: Result<ValidPath, ChainFailure>,
    /// `None` when completeness does not apply.
    pub complete: Option<bool>,
    pub lint: Vec<Lint>,
}

/// What a check's `expect.chain` asks, on what it saw: the [`Request`] the expectation makes.
pub fn judge_expected(
    want: &ChainExpect,
    presented: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    name: Option<&str>,
    now: UnixTime,
    seen: (Usage, bool),
) -> Judgement {
    expected(want, presented, store, Before::Nothing, name, now, seen)
}

/// [`judge_expected`] with the leaf parsed already (x509-parser; `None`: it does not parse),
/// so that a caller that reads the leaf too parses it once.
pub fn judge_expected_leaf(
    want: &ChainExpect,
    presented: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    leaf: Option<&X509Certificate<'_>>,
    name: Option<&str>,
    now: UnixTime,
    seen: (Usage, bool),
) -> Judgement {
    let before = leaf.map_or(Before::Nothing, Before::Leaf);
    expected(want, presented, store, before, name, now, seen)
}

/// [`judge_expected`] against a trust store parsed beforehand.
pub fn judge_expected_in(
    want: &ChainExpect,
    presented: &[CertificateDer<'_>],
    store: &Store<'_>,
    name: Option<&str>,
    now: UnixTime,
    seen: (Usage, bool),
) -> Judgement {
    expected(
        want,
        presented,
        store.der(),
        Before::Store(store),
        name,
        now,
        seen,
    )
}

/// What the caller parsed beforehand.
#[derive(Clone, Copy)]
enum Before<'p> {
    Nothing,
    /// The trust store.
    Store(&'p Store<'p>),
    /// The leaf, which parses.
    Leaf(&'p X509Certificate<'p>),
}

fn expected(
    want: &ChainExpect,
    presented: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    before: Before<'_>,
    name: Option<&str>,
    now: UnixTime,
    (usage, complete): (Usage, bool),
) -> Judgement {
    let r = Request {
        presented,
        store,
        name,
        now,
        partial: want.partial,
        usage,
        clients: &want.clients.list(),
        complete,
        max_validity: want.max_validity,
    };
    match before {
        Before::Store(s) => judge_parsed(&r, Parsed::in_store(presented, s), None),
        Before::Leaf(c) => judge_parsed(&r, Parsed::with_leaf(presented, store, Some(c)), Some(c)),
        Before::Nothing => judge(&r),
    }
}

/// Judges a chain for every client in `r.clients`.
/// The certificates are parsed once for every client, the lint and the completeness test.
pub fn judge(r: &Request<'_>) -> Judgement {
    judge_parsed(r, Parsed::new(r.presented, r.store), None)
}

/// `leaf`: the leaf parsed already, when the caller has it.
fn judge_parsed(
    r: &Request<'_>,
    parsed: Parsed<'_>,
    leaf: Option<&X509Certificate<'_>>,
) -> Judgement {
    let how = (r.partial, r.usage);
    let strict = match leaf {
        Some(c) => validate_parsed(r.presented, r.store, r.name, r.now, how, Some(c)),
        None => validate_for(r.presented, r.store, r.name, r.now, r.partial, r.usage),
    };
    let verdicts = r
        .clients
        .iter()
        .map(|c| partial_chain(client_verdict(*c, r, &parsed), r, &strict))
        .collect();
    let complete = r.complete.then(|| complete_parsed(&parsed));
    Judgement {
        verdicts,
        strict,
        complete,
        lint: lint_parsed(&parsed, r.max_validity),
    }
}

/// A family's verdict; a file that may be a client identity is judged for either use.
fn client_verdict(c: Client, r: &Request<'_>, parsed: &Parsed<'_>) -> Verdict {
    let v = verdict_parsed(c, parsed, r.name, Purpose::ServerAuth, r.now);
    if v.accepts || r.usage != Usage::Either || v.reason != Some(ChainReason::InvalidUsage) {
        return v;
    }
    verdict_parsed(c, parsed, r.name, Purpose::ClientAuth, r.now)
}

/// `partial: true` models clients built with `X509_V_FLAG_PARTIAL_CHAIN` (curl's default):
/// OpenSSL then stops at any certificate of the store, as the strict validation with
/// `partial` does. Go and rustls trust every store certificate anyway.
fn partial_chain(v: Verdict, r: &Request<'_>, strict: &Result<ValidPath, ChainFailure>) -> Verdict {
    let anchored = r.partial && v.client == Client::Openssl && strict.is_ok();
    if v.accepts || !anchored || v.reason != Some(ChainReason::UnknownIssuer) {
        return v;
    }
    Verdict {
        accepts: true,
        reason: None,
        message: "openssl accepts the chain with -partial_chain (chain: {partial: true}): \
                  the path ends at a certificate of ca_file"
            .into(),
        ..v
    }
}

impl Judgement {
    /// A check's chain assertions — `chain`, `accepted_by_<client>`, `complete_chain` (when it
    /// applies), `lint` (when something was found) — each named with `suffix` (`:<file>` in a
    /// `files` check).
    pub fn assertions(&self, want: &ChainExpect, suffix: &str) -> Vec<Assertion> {
        let mut out = vec![self.chain(&format!("chain{suffix}"))];
        out.extend(self.per_client(suffix));
        let complete = format!("complete_chain{suffix}");
        out.extend(self.completeness(&complete, want.complete_required));
        out.extend(self.lint(&format!("lint{suffix}")));
        out
    }

    /// Every selected client accepts.
    pub fn accepted(&self) -> bool {
        self.verdicts.iter().all(|v| v.accepts)
    }

    /// The `chain` assertion, named `name`.
    pub fn chain(&self, name: &str) -> Assertion {
        let who = clients_text(self.verdicts.iter());
        if self.accepted() {
            let path = match &self.strict {
                Ok(p) => format!("; {}", describe_path(p, None)),
                Err(_) => String::new(),
            };
            return Assertion::pass(name, format!("accepted by {who}{path}"));
        }
        let (reason, message) = self.refusal();
        Assertion::not_ok(name, Status::Fail, reason.as_str(), message)
    }

    /// The diagnosis of a refusal: the strict validation's when it names the same problem
    /// (or finds the missing intermediate behind an unknown issuer), else the first refusing
    /// client's.
    fn refusal(&self) -> (ChainReason, String) {
        let refusing: Vec<&Verdict> = self.verdicts.iter().filter(|v| !v.accepts).collect();
        let first = refusing[0];
        let first_reason = first.reason.unwrap_or(ChainReason::Other);
        let who = clients_text(refusing.iter().copied());
        let verb = if refusing.len() == 1 {
            "refuses"
        } else {
            "refuse"
        };
        if let Err(f) = &self.strict {
            let same = refusing.iter().any(|v| v.reason == Some(f.reason));
            let missing = f.reason == ChainReason::IncompleteChain
                && first_reason == ChainReason::UnknownIssuer;
            if same || missing {
                return (f.reason, format!("{who} {verb} it: {}", f.message));
            }
        }
        let why = first
            .message
            .split_once(": ")
            .map_or(first.message.as_str(), |(_, w)| w);
        (first_reason, format!("{who} {verb} it: {why}"))
    }

    /// One `accepted_by_<client>` assertion per selected client; `suffix` is appended to the
    /// name (`:server.crt` for files).
    pub fn per_client(&self, suffix: &str) -> Vec<Assertion> {
        self.verdicts
            .iter()
            .map(|v| {
                let name = format!("accepted_by_{}{suffix}", v.client.as_str());
                match v.reason {
                    None => Assertion::pass(&name, v.message.clone()),
                    Some(r) => {
                        Assertion::not_ok(&name, Status::Fail, r.as_str(), v.message.clone())
                    }
                }
            })
            .collect()
    }

    /// `complete_chain`, when it applies and the chain is incomplete; `required` fails the
    /// check, otherwise it warns.
    pub fn completeness(&self, name: &str, required: bool) -> Option<Assertion> {
        if self.complete? {
            return Some(Assertion::pass(
                name,
                "the chain carries every intermediate up to a root of ca_file",
            ));
        }
        let status = if required { Status::Fail } else { Status::Warn };
        let message = match &self.strict {
            Err(f) if f.reason == ChainReason::IncompleteChain => f.message.clone(),
            _ => "the chain does not carry every intermediate up to a self-signed root of \
                  ca_file; a client that trusts only the root refuses it; send the full chain \
                  (leaf, then intermediates)"
                .to_string(),
        };
        Some(Assertion::not_ok(
            name,
            status,
            ChainReason::IncompleteChain.as_str(),
            message,
        ))
    }

    /// `lint`, when anything was found: the lint findings and, when every client accepts,
    /// the strict validation's profile finding.
    pub fn lint(&self, name: &str) -> Option<Assertion> {
        let mut found: Vec<(String, String)> = self
            .lint
            .iter()
            .map(|l| (l.reason.as_str().to_string(), l.message.clone()))
            .collect();
        if let (true, Err(f)) = (self.accepted(), &self.strict) {
            if f.reason != ChainReason::IncompleteChain {
                found.push((f.reason.as_str().to_string(), f.message.clone()));
            }
        }
        let (reason, _) = found.first()?.clone();
        let text: Vec<String> = found.iter().map(|(r, m)| format!("{r}: {m}")).collect();
        Some(Assertion::not_ok(
            name,
            Status::Warn,
            &reason,
            text.join("; "),
        ))
    }
}

fn clients_text<'a>(vs: impl Iterator<Item = &'a Verdict>) -> String {
    let names: Vec<&str> = vs.map(|v| v.client.as_str()).collect();
    names.join(", ")
}
