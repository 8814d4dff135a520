//! `expect.chain` as written: `chain: valid`, `chain: partial`, or a mapping
//! `{valid, partial, clients: [openssl, go, rustls], complete: required|warn, max_validity}`.

use super::clients::Client;
use serde::de::Error;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// What a check expects of the chain it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainExpect {
    pub valid: bool,
    /// Accept a path ending at any certificate of the CA file (OpenSSL `-partial_chain`) in
    /// the strict diagnosis.
    pub partial: bool,
    /// The client families whose verdicts count (default: all three).
    pub clients: ClientSet,
    /// An incomplete served chain fails the check (`complete: required`) instead of warning.
    pub complete_required: bool,
    /// Longest leaf lifetime before `lint` warns `validity_too_long` (`max_validity: 398d`).
    pub max_validity: Option<Duration>,
}

impl Default for ChainExpect {
    fn default() -> Self {
        ChainExpect {
            valid: true,
            partial: false,
            clients: ClientSet::ALL,
            complete_required: false,
            max_validity: None,
        }
    }
}

/// A set of client families, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSet([bool; 3]);

impl ClientSet {
    pub const ALL: ClientSet = ClientSet([true; 3]);

    /// The families in the set, in `Client::ALL` order.
    pub fn list(self) -> Vec<Client> {
        Client::ALL
            .iter()
            .zip(self.0)
            .filter_map(|(c, on)| on.then_some(*c))
            .collect()
    }

    fn from_names(names: &[String]) -> Result<Self, String> {
        let mut set = [false; 3];
        for n in names {
            let i = Client::ALL
                .iter()
                .position(|c| c.as_str() == n)
                .ok_or_else(|| format!("unknown client {n:?}; clients are openssl, go, rustls"))?;
            set[i] = true;
        }
        if names.is_empty() {
            return Err("clients: name at least one of openssl, go, rustls".into());
        }
        Ok(ClientSet(set))
    }
}

/// Whether an incomplete chain fails or warns.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Complete {
    Required,
    Warn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainMap {
    #[serde(default = "truthy")]
    valid: bool,
    #[serde(default)]
    partial: bool,
    clients: Option<Vec<String>>,
    complete: Option<Complete>,
    max_validity: Option<String>,
}

fn truthy() -> bool {
    true
}

impl<'de> Deserialize<'de> for ChainExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        let base = ChainExpect::default();
        match &v {
            serde_yaml_ng::Value::String(s) if s == "valid" => Ok(base),
            serde_yaml_ng::Value::String(s) if s == "partial" => Ok(ChainExpect {
                partial: true,
                ..base
            }),
            serde_yaml_ng::Value::Mapping(_) => {
                let m = ChainMap::deserialize(v).map_err(D::Error::custom)?;
                let clients = match &m.clients {
                    Some(names) => ClientSet::from_names(names).map_err(D::Error::custom)?,
                    None => ClientSet::ALL,
                };
                let max_validity = match &m.max_validity {
                    Some(t) => Some(
                        crate::suite::parse_duration(t)
                            .map_err(|e| D::Error::custom(format!("max_validity: {e}")))?,
                    ),
                    None => None,
                };
                Ok(ChainExpect {
                    valid: m.valid,
                    partial: m.partial,
                    clients,
                    complete_required: m.complete == Some(Complete::Required),
                    max_validity,
                })
            }
            _ => Err(D::Error::custom(
                "bad chain expectation; write `chain: valid` or `chain: {valid: true, \
                 clients: [openssl, go, rustls], complete: warn}`",
            )),
        }
    }
}
