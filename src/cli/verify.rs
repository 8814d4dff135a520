//! `rotcheck verify`: would each client family (OpenSSL, Go, rustls) accept a certificate and
//! its chain with a CA file as trust store? Offline, with the shared chain judgement
//! (`expect::chain::judge`), plus the file's order, the chain's completeness and private-PKI
//! lint. Exit 0 when every selected client accepts, 1 otherwise, 2 on usage or bad input.

use super::{clients, error, parse_at, ClientArg, EXIT_USAGE};
use crate::certs::{self, FileError};
use crate::expect::chain::judge::{judge, Judgement, Request};
use crate::expect::chain::{complete_chain, issued_by, Usage, Verdict};
use crate::kinds::tls::{cert_facts, unix_time};
use crate::model::{Assertion, CertFacts, ChainReason, Status};
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Output of `verify` and `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

/// Arguments of `rotcheck verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The certificate: a leaf, or a fullchain with the leaf first.
    pub cert: PathBuf,
    /// More intermediates that go with CERT (any order).
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// The CA file: the trust store of every client.
    #[arg(long)]
    pub ca: PathBuf,
    /// The DNS name or IP address the leaf must be valid for.
    #[arg(long)]
    pub host: Option<String>,
    /// Validate at this RFC 3339 instant instead of now.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<SystemTime>,
    /// OpenSSL clients run with -partial_chain: any certificate of the CA file ends a path.
    #[arg(long)]
    pub partial: bool,
    /// A client family whose verdict counts (repeatable; default: all three).
    #[arg(long = "client", value_enum)]
    pub clients: Vec<ClientArg>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

type Der = CertificateDer<'static>;

/// What verify read.
struct Input {
    /// The certificates of CERT, in file order.
    file: Vec<Der>,
    /// CERT, then the certificates of --chain it does not already hold.
    presented: Vec<Der>,
    ca: Vec<Der>,
}

/// Everything verify found.
struct Findings {
    judgement: Judgement,
    /// Every selected client accepts, unless the file's order is wrong.
    chain: Assertion,
    complete: Assertion,
    /// `(reason, message)` of each lint finding.
    lint: Vec<(String, String)>,
}

/// Runs verify; returns the exit code.
pub fn run(a: VerifyArgs) -> u8 {
    let input = match read_inputs(&a) {
        Ok(x) => x,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    let found = examine(&a, &input);
    let mut facts = cert_facts(&input.presented);
    if found.chain.reason.as_deref() == Some(ORDER) {
        by_kind(&mut facts);
    }
    let text = match a.format {
        OutputFormat::Json => json(&found, &facts),
        OutputFormat::Human => human(&found, &facts),
    };
    print!("{text}");
    u8::from(found.chain.status != Status::Pass)
}

fn read_inputs(a: &VerifyArgs) -> Result<Input, FileError> {
    let file = certs::read_certs(&a.cert)?;
    let mut presented = file.clone();
    if let Some(c) = &a.chain {
        // A fullchain repeats the leaf: keep each certificate once.
        let more: Vec<_> = read_optional(c)?
            .into_iter()
            .filter(|d| !presented.contains(d))
            .collect();
        presented.extend(more);
    }
    let ca = certs::read_certs(&a.ca)?;
    Ok(Input {
        file,
        presented,
        ca,
    })
}

/// A chain file may be empty (a leaf with no intermediates).
fn read_optional(path: &Path) -> Result<Vec<Der>, FileError> {
    match certs::read_certs(path) {
        Err(FileError::Empty { .. }) => Ok(vec![]),
        other => other,
    }
}

/// The reason of a CERT file that does not start with its leaf (the files check's token).
const ORDER: &str = "chain_order";

/// Positions by what each certificate is, not where it sits (the file is out of order).
fn by_kind(facts: &mut [CertFacts]) {
    for f in facts {
        f.position = match (f.self_signed, f.is_ca) {
            (true, _) => "root",
            (false, true) => "intermediate",
            _ => "leaf",
        }
        .into();
    }
}

/// Judges the chain as given. A CERT file that does not start with its leaf fails on its
/// order; its completeness, lint and what the clients would do once it is fixed come from
/// the chain with the leaf moved first.
fn examine(a: &VerifyArgs, input: &Input) -> Findings {
    let judgement = judge_chain(a, &input.presented, &input.ca);
    let Some((at, msg)) = order_problem(&a.cert, &input.file) else {
        return Findings {
            complete: completeness(&judgement, &input.presented, &input.ca),
            lint: lint_list(&judgement),
            chain: judgement.chain("chain"),
            judgement,
        };
    };
    let fixed = leaf_first(&input.presented, at);
    let after = judge_chain(a, &fixed, &input.ca);
    let then = after.chain("chain").message;
    let msg = format!("{msg}; with the leaf first: {then}");
    Findings {
        complete: completeness(&after, &fixed, &input.ca),
        lint: lint_list(&after),
        chain: Assertion::not_ok("chain", Status::Fail, ORDER, msg),
        judgement,
    }
}

/// Every selected client's verdict on `presented`, and the rest of the judgement.
fn judge_chain(a: &VerifyArgs, presented: &[Der], ca: &[Der]) -> Judgement {
    let clients = clients(&a.clients);
    // `partial` also makes OpenSSL accept a path ending at a CA-file certificate
    // (-partial_chain), inside `judge`.
    judge(&Request {
        presented,
        store: ca,
        name: a.host.as_deref(),
        now: unix_time(a.at.unwrap_or_else(SystemTime::now)),
        partial: a.partial,
        // A certificate file may be an mTLS client identity.
        usage: Usage::Either,
        clients: &clients,
        complete: presented.len() > 1,
        max_validity: None,
    })
}

/// `presented` with certificate `at` (the leaf) moved first.
fn leaf_first(presented: &[Der], at: usize) -> Vec<Der> {
    let mut out = presented.to_vec();
    let leaf = out.remove(at);
    out.insert(0, leaf);
    out
}

/// A CERT file whose first certificate is a CA while a leaf follows: reversed (each
/// certificate issued the one before it) or otherwise out of order. Returns the leaf's index
/// and the diagnosis.
fn order_problem(path: &Path, file: &[Der]) -> Option<(usize, String)> {
    let facts = cert_facts(file);
    let at = facts.iter().position(|f| !f.is_ca)?;
    if at == 0 {
        return None;
    }
    let leaf = name_of(&facts[at]);
    let (n, of, shown) = (at + 1, file.len(), path.display());
    if (1..=at).all(|i| issued_by(&file[i], &file[i - 1])) {
        let msg = format!(
            "{shown} holds the chain in reverse order: the leaf {leaf:?} is certificate {n} of \
             {of}, after the CA certificates that issued it; expected the leaf first, then each \
             issuer: reorder the file (leaf, intermediate, ...)"
        );
        return Some((at, msg));
    }
    let msg = format!(
        "{shown} does not start with the leaf: the leaf {leaf:?} is certificate {n} of {of} \
         and certificate 1 is a CA; expected the leaf first, then each issuer in order"
    );
    Some((at, msg))
}

/// `complete_chain`: the judgement's for a chain; for a lone certificate, whether it reaches
/// a root of the CA file on its own.
fn completeness(j: &Judgement, presented: &[Der], ca: &[Der]) -> Assertion {
    const NAME: &str = "complete_chain";
    if let Some(a) = j.completeness(NAME, false) {
        return a;
    }
    if complete_chain(presented, ca) {
        return Assertion::pass(
            NAME,
            "the certificate reaches a root of the CA file directly",
        );
    }
    let leaf = presented.first().map(plain_name).unwrap_or_default();
    Assertion::not_ok(
        NAME,
        Status::Warn,
        ChainReason::IncompleteChain.as_str(),
        format!(
            "the certificate given holds only the leaf {leaf:?}; a client that trusts only the \
             root also needs its intermediates: install the leaf followed by its intermediates \
             (a fullchain file), or check them with --chain"
        ),
    )
}

/// The lint findings and, when every client accepts, the strict validation's profile
/// finding (as the `lint` assertion reports them).
fn lint_list(j: &Judgement) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = j
        .lint
        .iter()
        .map(|l| (l.reason.as_str().to_string(), l.message.clone()))
        .collect();
    if let (true, Err(f)) = (j.accepted(), &j.strict) {
        if f.reason != ChainReason::IncompleteChain {
            out.push((f.reason.as_str().to_string(), f.message.clone()));
        }
    }
    out
}

/// The anchor's plain name, when the chain is valid and the strict path reached one.
fn anchor(f: &Findings) -> Option<String> {
    if f.chain.status != Status::Pass {
        return None;
    }
    f.judgement
        .strict
        .as_ref()
        .ok()?
        .certs
        .last()
        .map(plain_name)
}

/// A certificate's subject CN (its whole subject when it has no CN), unquoted.
fn plain_name(der: &Der) -> String {
    name_of(&certs::facts(der, ""))
}

fn name_of(f: &CertFacts) -> String {
    if f.subject_cn.is_empty() {
        f.subject.clone()
    } else {
        f.subject_cn.clone()
    }
}

fn json(f: &Findings, facts: &[CertFacts]) -> String {
    let lint: Vec<serde_json::Value> = f
        .lint
        .iter()
        .map(|(r, m)| serde_json::json!({"reason": r, "message": m}))
        .collect();
    let doc = serde_json::json!({
        "valid": f.chain.status == Status::Pass,
        "reason": f.chain.reason,
        "message": f.chain.message,
        "anchor": anchor(f),
        "certs": facts,
        "clients": clients_json(&f.judgement.verdicts),
        "complete_chain": {
            "complete": f.complete.status == Status::Pass,
            "reason": f.complete.reason,
            "message": f.complete.message,
        },
        "lint": lint,
    });
    pretty(&doc)
}

/// `[{client, accepts, reason, message}]`, shared with `inspect`.
pub(super) fn clients_json(verdicts: &[Verdict]) -> serde_json::Value {
    let one = |v: &Verdict| {
        serde_json::json!({
            "client": v.client.as_str(),
            "accepts": v.accepts,
            "reason": v.reason.map(ChainReason::as_str),
            "message": v.message,
        })
    };
    serde_json::Value::Array(verdicts.iter().map(one).collect())
}

/// Pretty JSON, one document per run.
pub(super) fn pretty(doc: &serde_json::Value) -> String {
    let mut s =
        serde_json::to_string_pretty(doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn human(f: &Findings, facts: &[CertFacts]) -> String {
    let mut s = match &f.chain.reason {
        None => format!("valid: {}\n", f.chain.message),
        Some(r) => format!("invalid ({r}): {}\n", f.chain.message),
    };
    s.push_str(&client_lines(&f.judgement.verdicts));
    s.push_str(&complete_line(&f.complete));
    for (reason, message) in &f.lint {
        s.push_str(&format!("  lint {reason}: {message}\n"));
    }
    for c in facts {
        s.push_str(&format!(
            "  {:<12} {}  serial {}  not after {}\n",
            c.position, c.subject, c.serial, c.not_after
        ));
    }
    s
}

/// One line per client: `  openssl  refuses (unknown_issuer): why`; shared with `inspect`.
pub(super) fn client_lines(verdicts: &[Verdict]) -> String {
    verdicts
        .iter()
        .map(|v| {
            let what = match v.reason {
                None => "accepts".to_string(),
                Some(r) => format!("refuses ({})", r.as_str()),
            };
            let why = v
                .message
                .split_once(": ")
                .map_or(v.message.as_str(), |(_, w)| w);
            format!("  {:<8} {what}: {why}\n", v.client.as_str())
        })
        .collect()
}

fn complete_line(a: &Assertion) -> String {
    match &a.reason {
        None => format!("  complete_chain: yes: {}\n", a.message),
        Some(r) => format!("  complete_chain: NO ({r}): {}\n", a.message),
    }
}
