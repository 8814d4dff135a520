//! The reads of `vault_pki_health`: each path read once per check (several health checks share
//! the issuer list, the roles and the mount's tune), and each answer sorted the way
//! `bao pki health-check` sorts it — data, permission denied, unsupported path, missing.

use super::super::Prepared;
use crate::vault::{encode_path, Token, VaultError};
use serde_json::Value;
use std::collections::HashMap;
use x509_parser::prelude::{FromDer, X509Certificate};

/// One answer, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    /// 2xx: the `data` object (`Null` when there was none).
    Data(Value),
    /// The token may not read the path.
    Denied,
    /// The server does not know the path (an older version).
    Unsupported,
    /// 404 or "unable to find": nothing there.
    Missing,
}

impl Got {
    /// The `data` object, if the read succeeded.
    pub fn data(&self) -> Option<&Value> {
        match self {
            Got::Data(v) => Some(v),
            _ => None,
        }
    }

    /// `keys` of a LIST answer (empty for anything else).
    pub fn keys(&self) -> Vec<String> {
        crate::vault::auth::strings(self.data().and_then(|d| d.get("keys")))
    }
}

/// Reads paths of one mount through the run's client, caching every answer.
pub struct Fetcher {
    io: Option<(Prepared, Token)>,
    /// The mount, without surrounding slashes.
    pub mount: String,
    cache: HashMap<String, Got>,
}

impl Fetcher {
    /// A fetcher reading through `p` with `token`.
    pub fn new(p: Prepared, token: Token, mount: &str) -> Fetcher {
        Fetcher {
            io: Some((p, token)),
            mount: mount.trim_matches('/').to_string(),
            cache: HashMap::new(),
        }
    }

    /// A fetcher answering only from `answers` (anything else is missing), for tests.
    #[cfg(test)]
    pub fn seeded(mount: &str, answers: &[(&str, Got)]) -> Fetcher {
        let cache = answers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Fetcher {
            io: None,
            mount: mount.into(),
            cache,
        }
    }

    /// The address the profile talks to, when there is one.
    pub fn prepared(&self) -> Option<&Prepared> {
        self.io.as_ref().map(|(p, _)| p)
    }

    /// `GET <mount>/<rel>`.
    pub async fn read(&mut self, rel: &str) -> Result<Got, VaultError> {
        let path = format!("{}/{rel}", encode_path(&self.mount));
        self.get(path).await
    }

    /// `LIST <mount>/<rel>`.
    pub async fn list(&mut self, rel: &str) -> Result<Got, VaultError> {
        let path = format!("{}/{rel}?list=true", encode_path(&self.mount));
        self.get(path).await
    }

    /// `GET sys/mounts/<mount>/tune`.
    pub async fn tune(&mut self) -> Result<Got, VaultError> {
        let path = format!("sys/mounts/{}/tune", encode_path(&self.mount));
        self.get(path).await
    }

    /// `GET sys/mounts/<mount>`: the mount's type and configuration.
    pub async fn mount_info(&mut self) -> Result<Got, VaultError> {
        let path = format!("sys/mounts/{}", encode_path(&self.mount));
        self.get(path).await
    }

    async fn get(&mut self, path: String) -> Result<Got, VaultError> {
        if let Some(hit) = self.cache.get(&path) {
            return Ok(hit.clone());
        }
        let got = match &self.io {
            Some((p, token)) => classify(p.client.get(&path, Some(token)).await?)?,
            None => Got::Missing,
        };
        self.cache.insert(path, got.clone());
        Ok(got)
    }

    /// The issuer IDs; `None` (with the answer) when they cannot be listed.
    pub async fn issuers(&mut self) -> Result<Result<Vec<String>, Got>, VaultError> {
        let got = self.list("issuers").await?;
        Ok(match got {
            Got::Data(_) => Ok(got.keys()),
            other => Err(other),
        })
    }

    /// An issuer's certificate (DER) from `issuer/<id>/json`; `None` if it cannot be read.
    pub async fn issuer_cert(&mut self, id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let rel = format!("issuer/{}/json", encode_path(id));
        let got = self.read(&rel).await?;
        pem_field(&got, "certificate", &self.path_of(&rel)).map(|o| o.map(|(der, _)| der))
    }

    /// A stored certificate (DER) from `cert/<serial>`.
    pub async fn cert(&mut self, serial: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let rel = format!("cert/{}", encode_path(serial));
        let got = self.read(&rel).await?;
        pem_field(&got, "certificate", &self.path_of(&rel)).map(|o| o.map(|(der, _)| der))
    }

    /// `<mount>/<rel>` for messages.
    pub fn path_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.mount)
    }
}

/// Sorts one answer; anything that is neither data nor one of the expected refusals stops the
/// check (as it stops `bao pki health-check`).
fn classify(reply: crate::vault::client::Reply) -> Result<Got, VaultError> {
    if reply.is_success() {
        let data = reply.json.as_ref().and_then(|j| j.get("data")).cloned();
        return Ok(Got::Data(data.unwrap_or(Value::Null)));
    }
    let errors = reply.errors().join("; ");
    if reply.status == 403 || errors.contains("permission denied") {
        return Ok(Got::Denied);
    }
    if errors.contains("unsupported path") {
        return Ok(Got::Unsupported);
    }
    if reply.status == 404 || errors.contains("unable to find") {
        return Ok(Got::Missing);
    }
    Err(reply.to_error())
}

/// The DER of the PEM in `data.<field>`, with the block's label.
pub fn pem_field(
    got: &Got,
    field: &str,
    path: &str,
) -> Result<Option<(Vec<u8>, String)>, VaultError> {
    let Some(text) = got
        .data()
        .and_then(|d| d.get(field))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    match x509_parser::pem::parse_x509_pem(text.as_bytes()) {
        Ok((_, pem)) => Ok(Some((pem.contents, pem.label))),
        Err(e) => Err(bad(path, format!("`{field}` is not PEM: {e}"))),
    }
}

/// A certificate parsed from DER, or the error naming where it came from.
pub fn parse_cert<'a>(der: &'a [u8], path: &str) -> Result<X509Certificate<'a>, VaultError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| bad(path, format!("the certificate does not parse: {e}")))
}

/// A malformed answer at `path`.
pub fn bad(path: &str, detail: String) -> VaultError {
    VaultError::BadResponse {
        method: "GET",
        path: path.to_string(),
        detail,
    }
}
