//! `rotcheck inspect FILE|HOST:PORT`: describes every certificate of a PEM file or of the chain
//! a TLS listener presents (no validation): subject, issuer, SANs, validity and time left, key
//! type, SHA-256, serial, and the chain order. Exit 0 when it could read or connect, 2 else.

use super::verify::OutputFormat;
use super::{error, parse_at, parse_timeout, runtime, EXIT_USAGE};
use crate::certs;
use crate::expect::chain::issued_by;
use crate::kinds::classify::Failure;
use crate::kinds::tls::{cert_facts, client};
use crate::model::CertFacts;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Arguments of `rotcheck inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A PEM file, or HOST:PORT of a TLS listener.
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
}

/// Runs inspect; returns the exit code.
pub fn run(a: InspectArgs) -> u8 {
    let seen = if is_network(&a.target) {
        fetch(&a)
    } else {
        read_file(&a.target)
    };
    let seen = match seen {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    let now = unix(a.at.unwrap_or_else(SystemTime::now));
    let text = match a.format {
        OutputFormat::Json => json(&seen, now),
        OutputFormat::Human => human(&seen, now),
    };
    print!("{text}");
    0
}

fn is_network(target: &str) -> bool {
    !Path::new(target).exists() && crate::suite::split_host_port(target).is_some()
}

fn read_file(path: &str) -> Result<Seen, String> {
    let certs = certs::read_certs(Path::new(path)).map_err(|e| e.to_string())?;
    Ok(Seen {
        source: path.into(),
        certs,
        session: None,
        failure: None,
    })
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
    match result {
        Ok(s) => Ok(Seen {
            source,
            certs: s.chain.clone(),
            session: Some(s),
            failure: None,
        }),
        Err(f) if !f.chain.is_empty() => Ok(Seen {
            source,
            certs: f.chain,
            session: None,
            failure: Some(f.failure),
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

fn json(seen: &Seen, now: i64) -> String {
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
    });
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn human(seen: &Seen, now: i64) -> String {
    let facts = facts_of(seen);
    let ord = order(&seen.certs, &facts);
    let mut s = header(seen);
    for (i, f) in facts.iter().enumerate() {
        s.push_str(&describe(i, f, &seen.certs[i], now));
        s.push_str(&link_line(i, &facts, ord.issued_by_next[i]));
    }
    s.push_str(&summary(&ord));
    s
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
    let mut s = format!(
        "\nchain order: {first}; each certificate issued by the next: {}\n",
        yes(ordered)
    );
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
