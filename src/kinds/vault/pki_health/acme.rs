//! Whether a mount's ACME directory answers at the `path` of its `config/cluster`, as
//! `bao pki health-check` tries it (an https URL ending in the mount's API path).

use super::fetch::Fetcher;
use crate::vault::{Addr, VaultClient};
use std::time::Duration;

/// How long the directory may take to answer.
const BUDGET: Duration = Duration::from_secs(10);

/// `Ok` when `<url>/acme/directory` answers with a directory; else why not.
pub async fn reach(f: &Fetcher, url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("path is not set in config/cluster".into());
    }
    if !url.starts_with("https://") {
        return Err(format!("the configured path {url} does not use https"));
    }
    let Some((base, rest)) = url.split_once("/v1/") else {
        return Err(format!(
            "the configured path {url} is not an API path (https://host/v1/<mount>)"
        ));
    };
    let client = client_for(f, base)?;
    let path = format!("{}/acme/directory", rest.trim_end_matches('/'));
    let reply = client.get(&path, None).await.map_err(|e| e.to_string())?;
    let directory = reply
        .json
        .as_ref()
        .is_some_and(|j| j.get("newNonce").is_some());
    if reply.is_success() && directory {
        return Ok(());
    }
    Err(format!(
        "{url}/acme/directory answered HTTP {} without an ACME directory",
        reply.status
    ))
}

/// A client for `base` with the profile's CA (and its server name when the host is the same).
fn client_for(f: &Fetcher, base: &str) -> Result<VaultClient, String> {
    let p = f.prepared().ok_or("no Vault client")?;
    let mut ep = p.settings.endpoint.clone();
    let addr = Addr::parse(base).map_err(|e| e.to_string())?;
    if addr.host != ep.addr.host {
        ep.server_name = None;
    }
    ep.addr = addr;
    ep.client_cert = None;
    ep.client_key = None;
    VaultClient::new(&ep, BUDGET).map_err(|e| e.to_string())
}
