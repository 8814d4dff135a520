//! Check kinds: one module per kind, each behind [`CheckKind`], listed once in the
//! `registry!` call below. The suite parser, validation, `suite list`, the engine, the reports
//! and the exporter know kinds only through this module. Probes never print.
//!
//! # Adding a kind
//! 1. Write one module, `src/kinds/<name>.rs` (Vault kinds: `src/kinds/vault/<name>.rs`),
//!    holding: `Spec` and `Expect` (serde, `deny_unknown_fields`; `Expect: Default`), a marker
//!    `pub struct <Name>;` implementing [`CheckKind`] — `NAME` (the YAML key), `validate` for
//!    the rules serde cannot express, `probe`, the metric `FAMILIES` it adds and `series`
//!    writing them, `CONNECTS = true` when its probe opens network connections (only then
//!    does it get the connection-failure counters) — and its reason tokens in the module doc.
//! 2. Add one line, `<Variant> => <module>::<Name>,`, to `registry!` below.
//! 3. Document it: a row in README's "Check kinds" table naming every expectation key (a test
//!    fails otherwise), its reason tokens under "Results", its metric families in
//!    docs/metrics.md.
//!
//! A wrong key under the kind or under `expect:` is then reported with that kind's own keys
//! and a "did you mean" suggestion, without further code.

pub mod classify;
pub mod command;
pub mod crl;
pub mod files;
pub mod http;
pub mod jwks;
pub mod postgres;
pub mod rotation_plan;
pub mod tls;
pub mod vault;

use crate::metrics::text::{Def, Exposition};
use crate::model::{CheckResult, Outcome};
use crate::suite::expect_seed::ExpectSeed;
use crate::suite::{ExpiryThresholds, Suite};
use rustls_pki_types::CertificateDer;
use serde::de::{DeserializeOwned, MapAccess};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The base labels of a check's series: `suite` and `check`.
pub type Base<'a> = [(&'a str, &'a str); 2];

/// One check kind: its YAML key, spec and expectation types, validation, probe and metrics.
pub trait CheckKind: 'static {
    /// The key that selects the kind in a check (`tls:`), also the `kind` label.
    const NAME: &'static str;
    /// What is written under the kind's key.
    type Spec: DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync;
    /// What is written under `expect:`.
    type Expect: DeserializeOwned + Default + fmt::Debug + Clone + PartialEq + Send + Sync;
    /// The metric families this kind adds to the common ones.
    const FAMILIES: &'static [&'static Def] = &[];
    /// Whether its probe connects over the network: only then does a check of this kind get
    /// `rotcheck_connect_failures_total` (a series it could never change otherwise).
    const CONNECTS: bool = false;

    /// Rules serde cannot express, checked once the suite is parsed.
    fn validate(_spec: &Self::Spec, _expect: &Self::Expect) -> Result<(), Invalid> {
        Ok(())
    }

    /// Runs the probe and evaluates the expectations.
    fn probe(
        spec: &Self::Spec,
        expect: &Self::Expect,
        ctx: &Ctx,
    ) -> impl Future<Output = Outcome> + Send;

    /// Writes the kind's own series of one result (`r.kind` is this kind).
    fn series(_e: &mut Exposition, _base: &Base<'_>, _r: &CheckResult) {}
}

/// A rule a check breaks: the key below the check (`.tls.addr`) and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    /// A finding at `key` (written below the check, starting with `.`).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One check's kind-specific part: the spec and the expectations, typed by the kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Check<K: CheckKind> {
    pub spec: K::Spec,
    pub expect: K::Expect,
}

/// Defines [`Kind`] and everything that dispatches on it from the one list of kinds.
macro_rules! registry {
    ($($variant:ident => $kind:ty),* $(,)?) => {
        /// A check's kind with its typed spec and expectations (boxed: a check holds only its
        /// own kind's size, not the largest kind's).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Kind {
            $($variant(Box<Check<$kind>>),)*
        }

        /// Every kind's key, in registry order.
        pub const NAMES: &[&str] = &[$(<$kind as CheckKind>::NAME),*];

        impl Kind {
            /// The kind's key (`tls`, `vault_health`, ...).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Kind::$variant(_) => <$kind as CheckKind>::NAME,)*
                }
            }

            /// The kind's own validation rules.
            pub fn validate(&self) -> Result<(), Invalid> {
                match self {
                    $(Kind::$variant(c) => <$kind as CheckKind>::validate(&c.spec, &c.expect),)*
                }
            }

            /// Runs the check's probe.
            pub async fn probe(&self, ctx: &Ctx) -> Outcome {
                match self {
                    $(Kind::$variant(c) => <$kind as CheckKind>::probe(&c.spec, &c.expect, ctx).await,)*
                }
            }

            /// Parses the spec of kind `name` from the map's next value (no expectations
            /// yet); `None` when no kind has that name.
            pub(crate) fn spec_from<'de, A: MapAccess<'de>>(
                name: &str,
                map: &mut A,
            ) -> Result<Option<Kind>, A::Error> {
                $(if name == <$kind as CheckKind>::NAME {
                    let spec = map.next_value::<<$kind as CheckKind>::Spec>()?;
                    let expect = Default::default();
                    return Ok(Some(Kind::$variant(Box::new(Check { spec, expect }))));
                })*
                Ok(None)
            }

            /// Parses `expect:` from the map's next value with the kind's own type.
            pub(crate) fn expect_from<'de, A: MapAccess<'de>>(
                &mut self,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match self {
                    $(Kind::$variant(c) => {
                        c.expect = map.next_value_seed(ExpectSeed::<$kind>::new())?;
                    })*
                }
                Ok(())
            }

            /// Parses `expect:` written before the kind's key (kept as YAML until then).
            pub(crate) fn expect_from_value(
                &mut self,
                v: serde_yaml_ng::Value,
            ) -> Result<(), serde_yaml_ng::Error> {
                use serde::de::DeserializeSeed;
                match self {
                    $(Kind::$variant(c) => {
                        c.expect = ExpectSeed::<$kind>::new().deserialize(v)?;
                    })*
                }
                Ok(())
            }
        }

        /// The expectation keys of the kind called `name` (empty for no such kind).
        pub fn expect_keys(name: &str) -> &'static [&'static str] {
            $(if name == <$kind as CheckKind>::NAME {
                return crate::suite::expect_seed::fields::<<$kind as CheckKind>::Expect>();
            })*
            &[]
        }

        /// Whether the kind called `name` connects over the network ([`CheckKind::CONNECTS`]).
        pub fn connects(name: &str) -> bool {
            $(if name == <$kind as CheckKind>::NAME {
                return <$kind as CheckKind>::CONNECTS;
            })*
            false
        }

        /// Every kind's own metric families, in registry order.
        pub fn families() -> impl Iterator<Item = &'static Def> {
            [$(<$kind as CheckKind>::FAMILIES),*].into_iter().flatten().copied()
        }

        /// Writes the kind-specific series of one result.
        pub fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
            $(if r.kind == <$kind as CheckKind>::NAME {
                return <$kind as CheckKind>::series(e, base, r);
            })*
        }
    };
}

// The kinds. Adding one: one module and one line here (see the module doc).
registry! {
    Tls => tls::Tls,
    Http => http::Http,
    Jwks => jwks::Jwks,
    Postgres => postgres::Postgres,
    Files => files::Files,
    Crl => crl::CrlKind,
    VaultHealth => vault::health::VaultHealth,
    VaultLogin => vault::login::VaultLogin,
    VaultCertRole => vault::cert_role::VaultCertRole,
    VaultPkiRole => vault::pki_role::VaultPkiRole,
    VaultPkiHealth => vault::pki_health::VaultPkiHealth,
    VaultKv => vault::kv::VaultKv,
    VaultTransitKey => vault::transit_key::VaultTransitKey,
    VaultDbCreds => vault::db_creds::VaultDbCreds,
    VaultDbStaticRole => vault::db_static_role::VaultDbStaticRole,
    VersionSkew => vault::skew::VersionSkew,
    Command => command::Command,
    RotationPlan => rotation_plan::RotationPlan,
}

/// What every probe gets: the suite, the evaluation instant, the timeout, shared caches.
#[derive(Clone)]
pub struct Ctx {
    pub suite: Arc<Suite>,
    /// The instant time-based expectations are evaluated at (`--at`, else now).
    pub now: SystemTime,
    /// The check's whole budget: DNS, connect, handshake and reads.
    pub timeout: Duration,
    pub cache: Arc<Cache>,
}

impl Ctx {
    /// `now` as Unix seconds.
    pub fn now_unix(&self) -> i64 {
        match self.now.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    /// The suite's default expiry thresholds.
    pub fn default_expiry(&self) -> ExpiryThresholds {
        self.suite.file.defaults.expiry
    }

    /// Resolves a path named in the suite.
    pub fn path(&self, p: &str) -> PathBuf {
        self.suite.path_of(p)
    }
}

/// CRLs read from one file or URL (or why not).
pub type Crls = Result<Arc<Vec<crate::crl::Crl>>, crate::crl::CrlError>;

type Loaded = Result<Arc<Vec<CertificateDer<'static>>>, crate::certs::FileError>;

/// Per-run caches (CA bundles are read once however many checks name them).
#[derive(Default)]
pub struct Cache {
    bundles: Mutex<HashMap<PathBuf, Loaded>>,
    /// Free slots for probes to cache their own prepared state (e.g. TLS client configs).
    pub tls_configs: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
    /// chain judgements (`chain`, `accepted_by_*`, `complete_chain`, `lint`) of the tls probe, keyed by presented chain, CA file, name, mode and
    /// instant: many listeners serving one chain are validated once per run.
    pub chains: Mutex<HashMap<String, Vec<crate::model::Assertion>>>,
    /// CRLs read or fetched this run, keyed by `file:PATH` or `url:URL`; checks that need
    /// one at the same time wait for a single fetch.
    crls: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Crls>>>>,
    /// Vault tokens this run obtained (the profile's cert login); the engine revokes them.
    pub vault: crate::vault::Session,
}

impl Cache {
    /// The slot of the CRLs under `key`, shared by every check of the run.
    pub fn crl_slot(&self, key: &str) -> Arc<tokio::sync::OnceCell<Crls>> {
        let mut map = self.crls.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_string()).or_default().clone()
    }

    /// Reads a PEM certificate file once per cache.
    pub fn certs(&self, path: &Path) -> Loaded {
        if let Some(hit) = self
            .bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
        {
            return hit.clone();
        }
        let loaded = crate::certs::read_certs(path).map(Arc::new);
        let mut map = self.bundles.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(path.to_path_buf(), loaded.clone());
        loaded
    }
}

/// Runs one check's probe and expectations.
pub async fn run(check: &crate::suite::CheckSpec, ctx: &Ctx) -> Outcome {
    check.kind.probe(ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_kind_has_expectations() {
        for (i, name) in NAMES.iter().enumerate() {
            assert!(!NAMES[..i].contains(name), "{name} twice");
            assert!(
                !expect_keys(name).is_empty(),
                "{name} has no expectation keys"
            );
        }
        assert_eq!(expect_keys("nope"), &[] as &[&str]);
    }

    #[test]
    fn expectation_keys_come_from_each_kinds_own_type() {
        assert_eq!(
            expect_keys("files"),
            [
                "chain",
                "names",
                "expiry",
                "issuer_cn",
                "issuer_dn",
                "not_revoked"
            ]
        );
        assert_eq!(expect_keys("vault_kv"), ["kv_version", "path_exists"]);
        assert!(expect_keys("tls").contains(&"serves_file"));
        assert!(!expect_keys("tls").contains(&"sealed"));
    }

    #[test]
    fn every_family_of_a_kind_is_listed_once() {
        let names: Vec<&str> = families().map(|d| d.name).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
        }
    }
}
