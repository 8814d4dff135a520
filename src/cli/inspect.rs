//! `rotcheck inspect FILE|HOST:PORT`: describes every certificate of a PEM or DER file or of the chain
//! a TLS listener presents (no validation): subject, issuer, SANs, validity and time left, key
//! type, SHA-256, serial, and the chain order. With `--ca`, also each client family's
//! verdict on what it saw. Exit 0 when it could read or connect, 2 else.

use super::verify::{client_lines, clients_json, pretty, OutputFormat};
use super::{clients, error, parse_at, parse_timeout, runtime, ClientArg, EXIT_USAGE};
use crate::certs;
use crate::expect::chain::judge::{judge, Request};
use crate::expect::chain::{issued_by, Usage, Verdict};
use crate::kinds::classify::Failure;
use crate::kinds::tls::{cert_facts, client, unix_time};
use crate::model::CertFacts;
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Arguments of `rotcheck inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A certificate file (PEM, or one DER certificate), or HOST:PORT of a TLS listener.
    pub target: String,
    /// SNI to send (and name to show) for HOST:PORT; defaults to HOST.
    #[arg(long)]
    pub servername: Option<String>,
    /// Budget for DNS, connect and handshake.
    #[arg(long, value_parser = parse_timeout, default_value = "5s")]
    pub timeout: Duration,
    /// Compute time left at this RFC 3339 instant instead of now.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<SystemTime>,
    /// A CA file: show whether each client family, trusting it, accepts what was seen.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The name the clients check on the leaf; defaults to --servername, else HOST (none
    /// for a file).
    #[arg(long, requires = "ca")]
    pub host: Option<String>,
    /// A client family to show (repeatable; default: all three).
    #[arg(long = "client", value_enum, requires = "ca")]
    pub clients: Vec<ClientArg>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

/// Facts with positions: as presented for a listener; by kind for a file (a CA bundle's
/// first certificate is not a leaf).
fn facts_of(seen: &Seen) -> Vec<CertFacts> {
    let mut facts = cert_facts(&seen.certs);
    if seen.session.is_none() && seen.failure.is_none() {
        for f in &mut facts {
            f.position = match (f.self_signed, f.is_ca) {
                (true, _) => "root",
                (false, true) => "intermediate",
                _ => "leaf",
            }
            .into();
        }
    }
    facts
}

/// What was inspected.
struct Seen {
    source: String,
    certs: Vec<CertificateDer<'static>>,
    session: Option<client::Session>,
    failure: Option<Failure>,
    /// The name clients check: `--host`, else the listener's name.
    name: Option<String>,
}

/// Runs inspect; returns the exit code.
pub fn run(a: InspectArgs) -> u8 {
    let (seen, verdicts) = match look(&a) {
        Ok(x) => x,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    let now = unix(a.at.unwrap_or_else(SystemTime::now));
    let text = match a.format {
        OutputFormat::Json => json(&seen, verdicts.as_deref(), now),
        OutputFormat::Human => human(&seen, verdicts.as_deref(), now),
    };
    print!("{text}");
    0
}

/// Reads the CA file (when given), then the file or the listener, and judges what was seen.
fn look(a: &InspectArgs) -> Result<(Seen, Option<Vec<Verdict>>), String> {
    let store = a.ca.as_deref().map(certs::read_certs).transpose();
    let store = store.map_err(|e| e.to_string())?;
    let seen = if is_network(&a.target) {
        fetch(a)?
    } else {
        missing_port(&a.target)?;
        read_file(&a.target, a.host.clone())?
    };
    let verdicts = store.map(|s| verdicts(a, &seen, &s));
    Ok((seen, verdicts))
}

fn is_network(target: &str) -> bool {
    !Path::new(target).exists() && crate::suite::split_host_port(target).is_some()
}

/// A target that is no file and looks like a host without `:PORT` (`127.0.0.1`,
/// `vault.example.test`, `[::1]`): say the port is missing rather than "file not found".
fn missing_port(target: &str) -> Result<(), String> {
    let path = Path::new(target);
    let cert_file = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["pem", "crt", "cer", "der", "key", "p7b"].contains(&e));
    let host_like = !target.is_empty()
        && !target.contains('/')
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c));
    if path.exists() || cert_file || !host_like {
        return Ok(());
    }
    let host = target.trim_end_matches(':');
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Err(format!(
        "{target}: no such file, and as a listener the port is missing; write HOST:PORT, \
         e.g. {host}:443"
    ))
}

fn read_file(path: &str, name: Option<String>) -> Result<Seen, String> {
    let certs = certs::read_certs_pem_or_der(Path::new(path)).map_err(|e| e.to_string())?;
    Ok(Seen {
        source: path.into(),
        certs,
        session: None,
        failure: None,
        name,
    })
}

/// Each selected client's verdict on what was seen, trusting `store`: a listener's chain for
/// server use, a file's for either use (it may be an mTLS client identity).
fn verdicts(a: &InspectArgs, seen: &Seen, store: &[CertificateDer<'static>]) -> Vec<Verdict> {
    let network = seen.session.is_some() || seen.failure.is_some();
    let clients = clients(&a.clients);
    let j = judge(&Request {
        presented: &seen.certs,
        store,
        name: seen.name.as_deref(),
        now: unix_time(a.at.unwrap_or_else(SystemTime::now)),
        partial: false,
        usage: if network {
            Usage::Server
        } else {
            Usage::Either
        },
        clients: &clients,
        complete: network || seen.certs.len() > 1,
        max_validity: None,
    });
    j.verdicts
}

/// Handshakes with the recording verifier; a failed handshake that still showed a chain
/// is a success for inspect.
fn fetch(a: &InspectArgs) -> Result<Seen, String> {
    let target = client::Target::parse(&a.target, a.servername.as_deref())?;
    let cfg = Arc::new(client::config(None, &[]).map_err(|e| e.to_string())?);
    let rt = runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + a.timeout;
        client::handshake(&target, &cfg, deadline, a.timeout).await
    });
    let source = a.target.clone();
    let name = Some(a.host.clone().unwrap_or(target.name));
    match result {
        Ok(s) => Ok(Seen {
            source,
            certs: s.chain.clone(),
            session: Some(s),
            failure: None,
            name,
        }),
        Err(f) if !f.chain.is_empty() => Ok(Seen {
            source,
            certs: f.chain,
            session: None,
            failure: Some(f.failure),
            name,
        }),
        Err(f) => Err(format!(
            "{}: {}",
            f.failure.class.as_str(),
            f.failure.message
        )),
    }
}

/// How each certificate relates to the next one, and whether the leaf comes first.
struct Order {
    issued_by_next: Vec<Option<bool>>,
    /// None for a CA bundle (no leaf at all).
    leaf_first: Option<bool>,
}

fn order(certs: &[CertificateDer<'_>], facts: &[CertFacts]) -> Order {
    let issued_by_next = (0..certs.len())
        .map(|i| certs.get(i + 1).map(|next| issued_by(&certs[i], next)))
        .collect();
    let bundle = facts.len() > 1 && facts.iter().all(|f| f.is_ca);
    let leaf_first = (!bundle).then(|| facts.len() == 1 || facts.first().is_some_and(|f| !f.is_ca));
    Order {
        issued_by_next,
        leaf_first,
    }
}

fn json(seen: &Seen, verdicts: Option<&[Verdict]>, now: i64) -> String {
    let facts = facts_of(seen);
    let ord = order(&seen.certs, &facts);
    let certs: Vec<serde_json::Value> = facts
        .iter()
        .zip(&ord.issued_by_next)
        .zip(&seen.certs)
        .map(|((f, next), der)| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            v["san_error"] = serde_json::json!(certs::san_problem(der));
            v["seconds_left"] = serde_json::json!(f.not_after_unix - now);
            v["issued_by_next"] = serde_json::json!(next);
            v
        })
        .collect();
    let doc = serde_json::json!({
        "source": seen.source,
        "tls": seen.session.as_ref().map(|s| serde_json::json!({
            "version": s.version, "cipher": s.cipher, "alpn": s.alpn,
        })),
        "error": seen.failure.as_ref().map(|f| serde_json::json!({
            "class": f.class.as_str(), "alert": f.alert, "message": f.message,
        })),
        "certs": certs,
        "order": {
            "leaf_first": ord.leaf_first,
            "ordered": ord.issued_by_next.iter().all(|n| *n != Some(false)),
        },
        "clients": verdicts.map(clients_json),
    });
    pretty(&doc)
}

fn human(seen: &Seen, verdicts: Option<&[Verdict]>, now: i64) -> String {
    let facts = facts_of(seen);
    let ord = order(&seen.certs, &facts);
    let mut s = header(seen);
    for (i, f) in facts.iter().enumerate() {
        s.push_str(&describe(i, f, &seen.certs[i], now));
        s.push_str(&link_line(i, &facts, ord.issued_by_next[i]));
    }
    s.push_str(&summary(&ord));
    if let Some(v) = verdicts {
        s.push_str(&clients_header(seen));
        s.push_str(&client_lines(v));
    }
    s
}

fn clients_header(seen: &Seen) -> String {
    match &seen.name {
        Some(n) => format!("\nclients, trusting the CA file, for {n:?}:\n"),
        None => "\nclients, trusting the CA file:\n".to_string(),
    }
}

fn header(seen: &Seen) -> String {
    let mut s = format!("{}: {} certificate(s)", seen.source, seen.certs.len());
    if let Some(t) = &seen.session {
        s.push_str(&format!(
            ", TLS {} {}{}",
            t.version.as_deref().unwrap_or("?"),
            t.cipher.as_deref().unwrap_or("?"),
            t.alpn
                .as_deref()
                .map(|a| format!(", ALPN {a}"))
                .unwrap_or_default()
        ));
    }
    s.push('\n');
    if let Some(f) = &seen.failure {
        s.push_str(&format!(
            "handshake failed ({}): {}\n",
            f.class.as_str(),
            f.message
        ));
    }
    s
}

/// The SAN line: the names, `(none)`, or why the extension cannot be read.
fn san_text(f: &CertFacts, problem: Option<String>) -> String {
    match problem {
        Some(detail) => format!(
            "malformed subjectAltName extension ({detail}); expected a DER list of names: \
             clients will not match any name; reissue the certificate"
        ),
        None if f.sans.is_empty() => "(none)".to_string(),
        None => f.sans.join(", "),
    }
}

fn describe(i: usize, f: &CertFacts, der: &[u8], now: i64) -> String {
    let sans = san_text(f, certs::san_problem(der));
    format!(
        "\n#{n} {pos}\n  subject:  {}\n  issuer:   {}\n  SANs:     {sans}\n  validity: {} .. {} ({})\n  key:      {}\n  sha256:   {}\n  serial:   {}\n",
        f.subject,
        f.issuer,
        f.not_before,
        f.not_after,
        time_left(f, now),
        f.key_type,
        f.sha256,
        f.serial,
        n = i + 1,
        pos = f.position,
    )
}

fn link_line(i: usize, facts: &[CertFacts], next: Option<bool>) -> String {
    match next {
        None => String::new(),
        Some(true) => format!("  issued by #{}: yes\n", i + 2),
        Some(false) => format!(
            "  issued by #{}: NO (it is issued by {:?}, #{} is {:?})\n",
            i + 2,
            facts[i].issuer,
            i + 2,
            facts[i + 1].subject
        ),
    }
}

fn summary(ord: &Order) -> String {
    let ordered = ord.issued_by_next.iter().all(|x| *x != Some(false));
    let first = match ord.leaf_first {
        Some(b) => format!("leaf first: {}", yes(b)),
        None => "no leaf (a CA bundle)".into(),
    };
    let mut s = if ord.issued_by_next.len() > 1 {
        format!(
            "\nchain order: {first}; each certificate issued by the next: {}\n",
            yes(ordered)
        )
    } else {
        format!("\nchain order: {first}; a single certificate\n")
    };
    if ord.leaf_first == Some(false) {
        s.push_str("  the first certificate is a CA: put the leaf first, then each issuer\n");
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

fn time_left(f: &CertFacts, now: i64) -> String {
    if now < f.not_before_unix {
        return format!("not yet valid: starts in {}", span(f.not_before_unix - now));
    }
    if now > f.not_after_unix {
        return format!("EXPIRED {} ago", span(now - f.not_after_unix));
    }
    format!(
        "expires in {}, {:.0}% of lifetime left",
        span(f.not_after_unix - now),
        f.lifetime_remaining_ratio(now) * 100.0
    )
}

/// A coarse duration of whole seconds: `12d 3h`, `5h 2m`, `40s`.
fn span(secs: i64) -> String {
    crate::human::duration(Duration::from_secs(secs.unsigned_abs()))
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}
