//! Cert-auth login (`auth/<mount>/login` over mTLS) and token revocation
//! (`auth/token/revoke-self`). The token stays inside [`Token`]; only policies, TTL and
//! metadata are read out of the login answer.

use super::client::{encode_path, VaultClient};
use super::errors::VaultError;
use super::token::Token;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What a successful login gave.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: Token,
    /// `auth.policies`: token policies plus `default` plus identity policies.
    pub policies: Vec<String>,
    pub token_policies: Vec<String>,
    pub identity_policies: Vec<String>,
    /// Token TTL in seconds.
    pub lease_duration: u64,
    pub renewable: bool,
    /// `cert_name`, `common_name`, `serial_number` (decimal), key ids.
    pub metadata: BTreeMap<String, String>,
}

/// `POST auth/<mount>/login` with `{"name": role}` when a role is given. The client must carry
/// the client certificate (mTLS); a 4xx/5xx comes back as `VaultError::Http` with Vault's text.
pub async fn cert_login(
    client: &VaultClient,
    mount: &str,
    role: Option<&str>,
) -> Result<Login, VaultError> {
    let path = format!("auth/{}/login", encode_path(mount));
    if !client.addr().https {
        return Err(VaultError::Setup(format!(
            "a cert login at {path} needs TLS, but the address {} is plain http://, which cannot carry a client certificate; use the https:// address of a listener that asks for client certificates",
            client.addr()
        )));
    }
    let body = match role {
        Some(r) => json!({ "name": r }),
        None => json!({}),
    };
    let reply = client.post(&path, &body, None).await?;
    let bad = reply.clone();
    let v = reply.into_ok()?;
    parse_login(&v)
        .ok_or_else(|| bad.bad("expected auth.client_token in the login answer; found none"))
}

fn parse_login(v: &Value) -> Option<Login> {
    let auth = v.get("auth")?;
    let token = Token::new(auth.get("client_token")?.as_str()?)?;
    Some(Login {
        token,
        policies: strings(auth.get("policies")),
        token_policies: strings(auth.get("token_policies")),
        identity_policies: strings(auth.get("identity_policies")),
        lease_duration: auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        metadata: auth
            .get("metadata")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A JSON array of strings (or a comma string, Vault's loose form); null → empty.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// `POST auth/token/revoke-self`: 204 on success.
pub async fn revoke_self(client: &VaultClient, token: &Token) -> Result<(), VaultError> {
    client
        .post("auth/token/revoke-self", &Value::Null, Some(token))
        .await?
        .into_ok()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answer_parses_without_exposing_the_token() {
        let v = json!({"auth": {"client_token": "hvs.secretsecretsecretsecret",
            "policies": ["default", "app-a-issue"], "token_policies": ["default", "app-a-issue"],
            "lease_duration": 3600, "renewable": true,
            "metadata": {"cert_name": "agent-app-a", "common_name": "agent-a"}}});
        let l = parse_login(&v).unwrap();
        assert_eq!(l.policies, ["default", "app-a-issue"]);
        assert_eq!(l.lease_duration, 3600);
        assert!(!format!("{l:?}").contains("secret"));
        assert!(parse_login(&json!({"auth": null})).is_none());
        assert!(parse_login(&json!({"auth": {"client_token": 5}})).is_none());
    }
}
