//! The result model: what a run of a suite produced. Probes fill it, reports format it.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Final status of a check or a whole report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Error,
}

impl Status {
    /// All statuses, in severity order.
    pub const ALL: [Status; 4] = [Status::Pass, Status::Warn, Status::Fail, Status::Error];

    /// The lowercase token used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// How a connection attempt failed (DESIGN.md: connection failure classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    Refused,
    Reset,
    Timeout,
    Dns,
    Unreachable,
    Eof,
    TlsAlert,
    Protocol,
    Io,
}

impl FailureClass {
    /// Every class, for exporters that publish a gauge per class.
    pub const ALL: [FailureClass; 9] = [
        FailureClass::Refused,
        FailureClass::Reset,
        FailureClass::Timeout,
        FailureClass::Dns,
        FailureClass::Unreachable,
        FailureClass::Eof,
        FailureClass::TlsAlert,
        FailureClass::Protocol,
        FailureClass::Io,
    ];

    /// The snake_case token.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Refused => "refused",
            FailureClass::Reset => "reset",
            FailureClass::Timeout => "timeout",
            FailureClass::Dns => "dns",
            FailureClass::Unreachable => "unreachable",
            FailureClass::Eof => "eof",
            FailureClass::TlsAlert => "tls_alert",
            FailureClass::Protocol => "protocol",
            FailureClass::Io => "io",
        }
    }
}

/// Why a certificate chain did not validate (DESIGN.md: chain failure reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ChainReason {
    Expired,
    NotYetValid,
    UnknownIssuer,
    IncompleteChain,
    SelfSigned,
    BadSignature,
    NameMismatch,
    WeakAlgorithm,
    InvalidUsage,
    Other,
}

impl ChainReason {
    /// The snake_case token.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainReason::Expired => "expired",
            ChainReason::NotYetValid => "not_yet_valid",
            ChainReason::UnknownIssuer => "unknown_issuer",
            ChainReason::IncompleteChain => "incomplete_chain",
            ChainReason::SelfSigned => "self_signed",
            ChainReason::BadSignature => "bad_signature",
            ChainReason::NameMismatch => "name_mismatch",
            ChainReason::WeakAlgorithm => "weak_algorithm",
            ChainReason::InvalidUsage => "invalid_usage",
            ChainReason::Other => "other",
        }
    }
}

/// A check that could not connect or could not be evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeError {
    /// Failure class token: one of [`FailureClass`] for connection failures, or a
    /// local token such as `not_found`, `permission_denied`, `bad_pem`, `config`.
    pub class: String,
    /// TLS alert name when `class` is `tls_alert` (e.g. `certificate_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// One line: what was expected, what was found, what to do.
    pub message: String,
}

impl ProbeError {
    /// A connection failure of a known class.
    pub fn connect(class: FailureClass, message: impl Into<String>) -> Self {
        ProbeError {
            class: class.as_str().into(),
            alert: None,
            message: message.into(),
        }
    }

    /// A local failure (file, config) with its own class token.
    pub fn local(class: &str, message: impl Into<String>) -> Self {
        ProbeError {
            class: class.into(),
            alert: None,
            message: message.into(),
        }
    }

    /// The connection failure class, when this is one.
    pub fn failure_class(&self) -> Option<FailureClass> {
        FailureClass::ALL
            .into_iter()
            .find(|c| c.as_str() == self.class)
    }
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    /// The expectation's name (`handshake`, `chain`, `names`, `expiry`, `mode`, ...).
    pub name: String,
    pub status: Status,
    /// Classification token when not passing (`incomplete_chain`, `mode`, ...), else null.
    pub reason: Option<String>,
    /// One line: expected, found, what to do.
    pub message: String,
}

impl Assertion {
    /// A passing assertion.
    pub fn pass(name: &str, message: impl Into<String>) -> Self {
        Assertion {
            name: name.into(),
            status: Status::Pass,
            reason: None,
            message: message.into(),
        }
    }

    /// A non-passing assertion with its reason token.
    pub fn not_ok(name: &str, status: Status, reason: &str, message: impl Into<String>) -> Self {
        Assertion {
            name: name.into(),
            status,
            reason: Some(reason.into()),
            message: message.into(),
        }
    }

    /// A failing assertion.
    pub fn fail(name: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::not_ok(name, Status::Fail, reason, message)
    }
}

/// Facts about one certificate, reported whether or not it validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertFacts {
    /// `leaf`, `intermediate`, `root` for a chain; the file name for files.
    pub position: String,
    pub subject: String,
    #[serde(skip)]
    pub subject_cn: String,
    pub issuer: String,
    #[serde(skip)]
    pub issuer_cn: String,
    /// Hex, colon-free, lowercase.
    pub serial: String,
    pub sans: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    #[serde(skip)]
    pub not_before_unix: i64,
    #[serde(skip)]
    pub not_after_unix: i64,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    /// Key algorithm and size, e.g. `ECDSA P-256`, `RSA 2048`.
    pub key_type: String,
    pub is_ca: bool,
    pub self_signed: bool,
    /// On its issuer's CRL (`not_revoked`); absent when not judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<bool>,
}

impl CertFacts {
    /// Share of the lifetime still remaining at `now` (0 when expired, 1 before validity).
    pub fn lifetime_remaining_ratio(&self, now: i64) -> f64 {
        let total = (self.not_after_unix - self.not_before_unix).max(1) as f64;
        let left = (self.not_after_unix - now) as f64;
        (left / total).clamp(0.0, 1.0)
    }
}

/// Facts about a local file seen by a `files` check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileFacts {
    pub path: String,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// Facts from a TLS handshake.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TlsFacts {
    /// `1.2` or `1.3`.
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
}

/// Facts from Vault checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct VaultFacts {
    pub sealed: Option<bool>,
    pub initialized: Option<bool>,
    pub standby: Option<bool>,
    pub version: Option<String>,
    pub cluster_name: Option<String>,
    /// Signed minor-version difference agent − server, for `version_skew`.
    pub minor_skew: Option<i64>,
    pub agent_version: Option<String>,
}

/// Kind-specific observations that exporters publish.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultFacts>,
    /// Free-form extra facts (`exit_code`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// What a probe hands back to the engine: everything but identity and timing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub error: Option<ProbeError>,
    pub assertions: Vec<Assertion>,
    pub certs: Vec<CertFacts>,
    pub facts: Facts,
}

impl Outcome {
    /// The worst assertion status; `Error` when the probe errored with no assertions.
    pub fn worst(&self) -> Status {
        let worst = self
            .assertions
            .iter()
            .map(|a| a.status)
            .max()
            .unwrap_or(Status::Pass);
        if self.error.is_some() && self.assertions.is_empty() {
            Status::Error
        } else {
            worst
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub stage: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub status: Status,
    #[serde(serialize_with = "ser_secs")]
    pub duration_seconds: Duration,
    /// Unix seconds at which the check finished.
    #[serde(skip)]
    pub finished_unix: f64,
    pub error: Option<ProbeError>,
    pub assertions: Vec<Assertion>,
    pub certs: Vec<CertFacts>,
    #[serde(skip_serializing_if = "facts_empty")]
    pub facts: Facts,
}

impl CheckResult {
    /// The chain failure reason among the assertions (`chain`, or `chain:<file>` for files).
    pub fn chain_reason(&self) -> Option<&str> {
        self.assertions
            .iter()
            .find(|a| is_chain_verdict(&a.name) && a.status != Status::Pass)
            .and_then(|a| a.reason.as_deref())
    }

    /// Why the check fails: the reason token of its first failing assertion, else its probe
    /// error's class; none when it passed or only warned.
    pub fn failure_reason(&self) -> Option<&str> {
        if self.status <= Status::Warn {
            return None;
        }
        let failing = self.assertions.iter().find(|a| a.status > Status::Warn);
        failing
            .and_then(|a| a.reason.as_deref())
            .or(self.error.as_ref().map(|e| e.class.as_str()))
            .or(Some(self.status.as_str()))
    }

    /// The reason token and one-line message that explain the status: the first assertion
    /// with the check's status, else the probe error; `ok` when it passed.
    pub fn headline(&self) -> (&str, String) {
        if self.status == Status::Pass {
            return ("ok", format!("{} assertions passed", self.assertions.len()));
        }
        let worst = self.assertions.iter().find(|a| a.status == self.status);
        if let Some(a) = worst.or(self.assertions.iter().find(|a| a.status != Status::Pass)) {
            let reason = a.reason.as_deref().unwrap_or(a.name.as_str());
            return (reason, format!("{}: {}", a.name, a.message));
        }
        match &self.error {
            Some(e) => (e.class.as_str(), e.message.clone()),
            None => (
                self.status.as_str(),
                format!("check {}", self.status.as_str()),
            ),
        }
    }
}

/// `chain` and `complete_chain` (per file: `chain:<file>`, `complete_chain:<file>`): an
/// incomplete chain keeps its `incomplete_chain` reason in `rotcheck_chain_failure` also when
/// every configured client accepts it and it only warns.
fn is_chain_verdict(name: &str) -> bool {
    let what = name.split(':').next().unwrap_or(name);
    what == "chain" || what == "complete_chain"
}

fn facts_empty(f: &Facts) -> bool {
    *f == Facts::default()
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
}

/// The result of running a suite (or a selection of it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub suite: String,
    pub status: Status,
    #[serde(serialize_with = "ser_time")]
    pub started_at: SystemTime,
    #[serde(serialize_with = "ser_secs")]
    pub duration_seconds: Duration,
    /// The instant time-based expectations were evaluated at (`--at`), when not now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<String>,
    /// Unix seconds that time-based facts (lifetime ratios) are computed at.
    #[serde(skip)]
    pub evaluated_unix: i64,
    pub checks: Vec<CheckResult>,
    /// Problems of the run itself that change no check's status, one line each (e.g. a
    /// token obtained by cert login that could not be revoked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report {
    /// Overall status: the worst check status (pass for an empty report).
    pub fn overall(checks: &[CheckResult]) -> Status {
        checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass)
    }

    /// Process exit code per DESIGN.md: 0 pass (warn allowed unless strict), 1 otherwise.
    pub fn exit_code(&self, strict: bool) -> i32 {
        match self.status {
            Status::Pass => 0,
            Status::Warn if !strict => 0,
            _ => 1,
        }
    }
}
