//! `rotcheck verify`: validates a certificate (and its chain) against a CA file, offline, with
//! the same chain and name logic as the tls probe. Exit 0 valid, 1 invalid, 2 usage or
//! unreadable input.

use super::{error, parse_at, EXIT_USAGE};
use crate::certs::{self, FileError};
use crate::expect::chain::{self, ChainFailure, ValidPath};
use crate::kinds::tls::{cert_facts, unix_time};
use crate::model::CertFacts;
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
    /// More intermediates the server would send (any order).
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// The CA file: its self-signed roots are the trust anchors; its intermediates are only
    /// used to diagnose an incomplete chain (what a server sending CERT and --chain would get).
    #[arg(long)]
    pub ca: PathBuf,
    /// The DNS name or IP address the leaf must be valid for.
    #[arg(long)]
    pub host: Option<String>,
    /// Validate at this RFC 3339 instant instead of now.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<SystemTime>,
    /// Accept a path ending at any certificate of the CA file (OpenSSL -partial_chain).
    #[arg(long)]
    pub partial: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

/// Runs verify; returns the exit code.
pub fn run(a: VerifyArgs) -> u8 {
    let (presented, ca) = match read_inputs(&a) {
        Ok(x) => x,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    let at = a.at.unwrap_or_else(SystemTime::now);
    let result = chain::validate(&presented, &ca, a.host.as_deref(), unix_time(at), a.partial);
    let facts = cert_facts(&presented);
    let text = match a.format {
        OutputFormat::Json => json(&result, &facts),
        OutputFormat::Human => human(&result, &facts),
    };
    print!("{text}");
    u8::from(result.is_err())
}

fn read_inputs(
    a: &VerifyArgs,
) -> Result<(Vec<CertificateDer<'static>>, Vec<CertificateDer<'static>>), FileError> {
    let mut presented = certs::read_certs(&a.cert)?;
    if let Some(c) = &a.chain {
        // A fullchain repeats the leaf: keep each certificate once.
        let more: Vec<_> = read_optional(c)?
            .into_iter()
            .filter(|d| !presented.contains(d))
            .collect();
        presented.extend(more);
    }
    let ca = certs::read_certs(&a.ca)?;
    Ok((presented, ca))
}

/// A chain file may be empty (a leaf with no intermediates).
fn read_optional(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    match certs::read_certs(path) {
        Err(FileError::Empty { .. }) => Ok(vec![]),
        other => other,
    }
}

fn json(result: &Result<ValidPath, ChainFailure>, facts: &[CertFacts]) -> String {
    let doc = match result {
        Ok(p) => serde_json::json!({
            "valid": true,
            "reason": null,
            "message": message(result),
            "anchor": p.anchor,
            "certs": facts,
        }),
        Err(f) => serde_json::json!({
            "valid": false,
            "reason": f.reason.as_str(),
            "message": f.message,
            "certs": facts,
        }),
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn message(result: &Result<ValidPath, ChainFailure>) -> String {
    match result {
        Ok(p) => {
            let path: Vec<String> = p.certs.iter().map(|c| chain::label(c)).collect();
            format!("valid path {}", path.join(" <- "))
        }
        Err(f) => f.message.clone(),
    }
}

fn human(result: &Result<ValidPath, ChainFailure>, facts: &[CertFacts]) -> String {
    let verdict = match result {
        Ok(_) => "valid".to_string(),
        Err(f) => format!("invalid ({})", f.reason.as_str()),
    };
    let mut s = format!("{verdict}: {}\n", message(result));
    for f in facts {
        s.push_str(&format!(
            "  {:<12} {}  serial {}  not after {}\n",
            f.position, f.subject, f.serial, f.not_after
        ));
    }
    s
}
