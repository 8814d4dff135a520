//! The thresholds of `vault_pki_health`, one struct per health check, with the keys and
//! defaults of `bao pki health-check -list` (so a `-health-config` file translates key for key).

use crate::suite::Dur;
use serde::Deserialize;
use std::time::Duration;

const DAY: u64 = 86_400;

fn days(n: u64) -> Dur {
    Dur(Duration::from_secs(n * DAY))
}

fn yes() -> bool {
    true
}

/// `ca_validity_period`: how long before an issuer's expiry each level starts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaValidity {
    pub enabled: bool,
    pub root_expiry_critical: Dur,
    pub intermediate_expiry_critical: Dur,
    pub root_expiry_warning: Dur,
    pub intermediate_expiry_warning: Dur,
    pub root_expiry_informational: Dur,
    pub intermediate_expiry_informational: Dur,
}

impl Default for CaValidity {
    fn default() -> Self {
        CaValidity {
            enabled: true,
            root_expiry_critical: days(180),
            intermediate_expiry_critical: days(30),
            root_expiry_warning: days(365),
            intermediate_expiry_warning: days(60),
            root_expiry_informational: days(730),
            intermediate_expiry_informational: days(180),
        }
    }
}

/// `crl_validity_period`: the share of a CRL's validity after which it is critical.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CrlValidity {
    pub enabled: bool,
    pub crl_expiry_pct_critical: u8,
    pub delta_crl_expiry_pct_critical: u8,
}

impl Default for CrlValidity {
    fn default() -> Self {
        CrlValidity {
            enabled: true,
            crl_expiry_pct_critical: 95,
            delta_crl_expiry_pct_critical: 95,
        }
    }
}

/// `root_issued_leaves`: how many stored leaves to examine.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RootIssuedLeaves {
    pub enabled: bool,
    pub certs_to_fetch: u32,
}

impl Default for RootIssuedLeaves {
    fn default() -> Self {
        RootIssuedLeaves {
            enabled: true,
            certs_to_fetch: 100,
        }
    }
}

/// A health check with no thresholds, on unless turned off.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// `hardware_backed_root`: off unless turned on (as in the original).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OptIn {
    pub enabled: bool,
}

/// `role_no_store_false`: roles allowed to store their certificates.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NoStore {
    pub enabled: bool,
    pub allowed_roles: Vec<String>,
}

impl Default for NoStore {
    fn default() -> Self {
        NoStore {
            enabled: true,
            allowed_roles: vec![],
        }
    }
}

/// `audit_visibility`: parameters not to report.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    pub enabled: bool,
    pub ignored_parameters: Vec<String>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            enabled: true,
            ignored_parameters: vec![],
        }
    }
}

/// `enable_auto_tidy`: the longest acceptable interval and pause.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AutoTidy {
    pub enabled: bool,
    pub interval_duration_critical: Dur,
    pub interval_duration_warning: Dur,
    pub pause_duration_critical: Dur,
    pub pause_duration_warning: Dur,
}

impl Default for AutoTidy {
    fn default() -> Self {
        AutoTidy {
            enabled: true,
            interval_duration_critical: days(7),
            interval_duration_warning: days(2),
            pause_duration_critical: Dur(Duration::from_secs(1)),
            pause_duration_warning: Dur(Duration::from_millis(200)),
        }
    }
}

/// `tidy_last_run`: how long since the last tidy finished.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TidyLastRun {
    pub enabled: bool,
    pub last_run_critical: Dur,
    pub last_run_warning: Dur,
}

impl Default for TidyLastRun {
    fn default() -> Self {
        TidyLastRun {
            enabled: true,
            last_run_critical: days(7),
            last_run_warning: days(2),
        }
    }
}

/// `too_many_certs`: stored-certificate counts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TooManyCerts {
    pub enabled: bool,
    pub count_critical: u64,
    pub count_warning: u64,
}

impl Default for TooManyCerts {
    fn default() -> Self {
        TooManyCerts {
            enabled: true,
            count_critical: 250_000,
            count_warning: 50_000,
        }
    }
}
