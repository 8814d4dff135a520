//! The TLS certificate auth method: `auth/<mount>/certs/:name` (§4) and
//! `auth/<mount>/login` (§3) with Vault's matching order and version-dependent messages.

use super::certinfo::CertInfo;
use super::http::{
    bool_field, dur_field, glob, int_field, list_field, str_field, ApiError, Envelope, Op, Req,
    Resp,
};
use super::token::{Token, TokenStore};
use super::version::Ver;
use crate::encode;
use crate::pki::parse_pem_certs;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The mount/system default token TTL (768h).
pub(crate) const SYSTEM_DEFAULT_TTL: u64 = 2_764_800;

/// Token settings shared by auth roles (`tokenutil`).
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenFields {
    pub policies: Vec<String>,
    pub ttl: u64,
    pub max_ttl: u64,
    pub explicit_max_ttl: u64,
    pub period: u64,
    pub no_default_policy: bool,
    pub num_uses: i64,
    pub bound_cidrs: Vec<String>,
    pub token_type: String,
}

/// One trusted-certificate role.
#[derive(Debug, Clone, Default)]
pub(crate) struct CertRole {
    pub name: String,
    pub certificate: String,
    pub display_name: String,
    pub lists: BTreeMap<&'static str, Option<Vec<String>>>,
    pub ocsp_ca_certificates: String,
    pub ocsp_enabled: bool,
    pub ocsp_fail_open: bool,
    pub ocsp_query_all_servers: bool,
    pub ocsp_this_update_max_age: u64,
    pub ocsp_max_retries: i64,
    pub token: TokenFields,
    /// Written with the deprecated `policies`/`ttl`/… names.
    pub legacy: bool,
    certs: Vec<CertificateDer<'static>>,
}

/// List-valued role fields, in read order.
const LIST_FIELDS: &[&str] = &[
    "allowed_names",
    "allowed_common_names",
    "allowed_dns_sans",
    "allowed_email_sans",
    "allowed_uri_sans",
    "allowed_organizational_units",
    "allowed_organizations",
    "required_extensions",
    "allowed_metadata_extensions",
    "ocsp_servers_override",
];

/// The roles of one cert auth mount.
#[derive(Debug, Default)]
pub(crate) struct CertMount {
    pub roles: BTreeMap<String, CertRole>,
}

/// Everything login needs besides the mount.
pub(crate) struct LoginCtx<'a> {
    pub mount: &'a str,
    pub ver: Ver,
    pub tokens: &'a mut TokenStore,
}

impl CertMount {
    /// Dispatches `auth/<mount>/<sub>`.
    pub fn handle(&mut self, sub: &str, req: &Req, ctx: LoginCtx<'_>) -> Result<Resp, ApiError> {
        let ver = ctx.ver;
        match (sub, req.op) {
            ("login", Op::Write) => self.login(req, ctx),
            ("login", _) => Err(ApiError::unsupported_operation()),
            ("certs/", Op::List) => {
                super::http::list_reply(self.roles.keys().cloned().collect(), "", ver)
            }
            _ => match sub.strip_prefix("certs/") {
                Some(name) if !name.is_empty() && !name.contains('/') => {
                    self.role_op(name, req, ver)
                }
                _ => Err(ApiError::new(
                    404,
                    vec![super::http::multierror(&["unsupported path"])],
                )),
            },
        }
    }

    fn role_op(&mut self, name: &str, req: &Req, ver: Ver) -> Result<Resp, ApiError> {
        let name = name.to_lowercase();
        match req.op {
            Op::Read => match self.roles.get(&name) {
                Some(role) => Envelope::new(role.read_data(), "").ok(ver),
                None => Err(ApiError::not_found()),
            },
            Op::Write => self.write_role(&name, req.body()?, ver),
            Op::Delete => {
                self.roles.remove(&name);
                Ok(Resp::no_content())
            }
            _ => Err(ApiError::unsupported_operation()),
        }
    }

    fn write_role(
        &mut self,
        name: &str,
        body: &Map<String, Value>,
        ver: Ver,
    ) -> Result<Resp, ApiError> {
        let mut role = self
            .roles
            .get(name)
            .cloned()
            .unwrap_or_else(|| CertRole::new(name));
        role.apply(body)?;
        let warning = (role.token.ttl > SYSTEM_DEFAULT_TTL).then(|| {
            format!(
                "Given ttl of {} seconds is greater than current mount/system default of {} seconds",
                role.token.ttl, SYSTEM_DEFAULT_TTL
            )
        });
        self.roles.insert(name.to_string(), role);
        match warning {
            Some(w) => Envelope::new(Value::Null, "").warn(w).ok(ver),
            None => Ok(Resp::no_content()),
        }
    }
}

impl CertRole {
    fn new(name: &str) -> CertRole {
        let lists = LIST_FIELDS.iter().map(|f| (*f, None)).collect();
        let token = TokenFields {
            token_type: "default".into(),
            ..TokenFields::default()
        };
        CertRole {
            name: name.into(),
            display_name: name.into(),
            lists,
            ocsp_max_retries: 4,
            token,
            ..CertRole::default()
        }
    }

    /// Applies a write body on top of the current values.
    fn apply(&mut self, body: &Map<String, Value>) -> Result<(), ApiError> {
        if let Some(pem) = str_field(body, "certificate") {
            self.certificate = pem;
        }
        self.certs = parse_pem_certs(&self.certificate);
        let first = self.certs.first().and_then(|c| CertInfo::parse(c));
        let Some(first) = first else {
            return Err(ApiError::bad("failed to parse certificate"));
        };
        if !first.is_ca && !first.client_auth_ok {
            return Err(ApiError::bad(
                "nonCA certificates should have TLS client authentication set as an extended key usage",
            ));
        }
        if let Some(d) = str_field(body, "display_name") {
            self.display_name = d;
        }
        for f in LIST_FIELDS {
            if let Some(v) = list_field(body, f)? {
                self.lists.insert(f, Some(v));
            }
        }
        self.apply_ocsp(body)?;
        self.apply_token(body)
    }

    fn apply_ocsp(&mut self, body: &Map<String, Value>) -> Result<(), ApiError> {
        if let Some(v) = str_field(body, "ocsp_ca_certificates") {
            self.ocsp_ca_certificates = v;
        }
        set(&mut self.ocsp_enabled, bool_field(body, "ocsp_enabled")?);
        set(
            &mut self.ocsp_fail_open,
            bool_field(body, "ocsp_fail_open")?,
        );
        set(
            &mut self.ocsp_query_all_servers,
            bool_field(body, "ocsp_query_all_servers")?,
        );
        set(
            &mut self.ocsp_this_update_max_age,
            dur_field(body, "ocsp_this_update_max_age")?,
        );
        if let Some(n) = int_field(body, "ocsp_max_retries")? {
            if n < 0 {
                return Err(ApiError::bad("ocsp_max_retries cannot be negative"));
            }
            self.ocsp_max_retries = n;
        }
        Ok(())
    }

    fn apply_token(&mut self, body: &Map<String, Value>) -> Result<(), ApiError> {
        let t = &mut self.token;
        for (new, old) in [("token_policies", "policies")] {
            if let Some(v) = list_field(body, new)? {
                t.policies = v;
            } else if let Some(v) = list_field(body, old)? {
                t.policies = v;
                self.legacy = true;
            }
        }
        let durs = [
            ("token_ttl", "ttl"),
            ("token_max_ttl", "max_ttl"),
            ("token_period", "period"),
        ];
        for (new, old) in durs {
            let slot = match new {
                "token_ttl" => &mut t.ttl,
                "token_max_ttl" => &mut t.max_ttl,
                _ => &mut t.period,
            };
            if let Some(v) = dur_field(body, new)? {
                *slot = v;
            } else if let Some(v) = dur_field(body, old)? {
                *slot = v;
                self.legacy = true;
            }
        }
        set(
            &mut t.explicit_max_ttl,
            dur_field(body, "token_explicit_max_ttl")?,
        );
        set(
            &mut t.no_default_policy,
            bool_field(body, "token_no_default_policy")?,
        );
        set(&mut t.num_uses, int_field(body, "token_num_uses")?);
        if let Some(v) = list_field(body, "token_bound_cidrs")?.or(list_field(body, "bound_cidrs")?)
        {
            t.bound_cidrs = v;
        }
        if let Some(v) = str_field(body, "token_type") {
            t.token_type = v;
        }
        if t.max_ttl > 0 && t.ttl > t.max_ttl {
            return Err(ApiError::bad("ttl should be shorter than max_ttl"));
        }
        Ok(())
    }

    /// The read `data` (§4.2).
    fn read_data(&self) -> Value {
        let mut d = Map::new();
        d.insert("certificate".into(), json!(self.certificate));
        d.insert("display_name".into(), json!(self.display_name));
        for (k, v) in &self.lists {
            d.insert((*k).into(), json!(v));
        }
        d.insert(
            "ocsp_ca_certificates".into(),
            json!(self.ocsp_ca_certificates),
        );
        d.insert("ocsp_enabled".into(), json!(self.ocsp_enabled));
        d.insert("ocsp_fail_open".into(), json!(self.ocsp_fail_open));
        d.insert(
            "ocsp_query_all_servers".into(),
            json!(self.ocsp_query_all_servers),
        );
        d.insert(
            "ocsp_this_update_max_age".into(),
            json!(self.ocsp_this_update_max_age),
        );
        d.insert("ocsp_max_retries".into(), json!(self.ocsp_max_retries));
        let t = &self.token;
        d.insert("token_bound_cidrs".into(), json!(t.bound_cidrs));
        d.insert("token_explicit_max_ttl".into(), json!(t.explicit_max_ttl));
        d.insert("token_max_ttl".into(), json!(t.max_ttl));
        d.insert("token_no_default_policy".into(), json!(t.no_default_policy));
        d.insert("token_num_uses".into(), json!(t.num_uses));
        d.insert("token_period".into(), json!(t.period));
        d.insert("token_policies".into(), json!(t.policies));
        d.insert("token_ttl".into(), json!(t.ttl));
        d.insert("token_type".into(), json!(t.token_type));
        if self.legacy {
            d.insert("policies".into(), json!(t.policies));
            d.insert("ttl".into(), json!(t.ttl));
            d.insert("max_ttl".into(), json!(t.max_ttl));
            d.insert("period".into(), json!(t.period));
            d.insert("bound_cidrs".into(), json!(t.bound_cidrs));
        }
        Value::Object(d)
    }

    fn list(&self, key: &str) -> &[String] {
        self.lists
            .get(key)
            .and_then(|v| v.as_deref())
            .unwrap_or(&[])
    }

    fn is_ca(&self) -> bool {
        self.certs
            .first()
            .and_then(|c| CertInfo::parse(c))
            .is_some_and(|i| i.is_ca)
    }

    /// Every constraint of §3.4 step 6 (CRLs and OCSP are not modelled).
    fn matches_constraints(&self, leaf: &CertInfo) -> bool {
        let any = |key: &str, values: &[String]| {
            let globs = self.list(key);
            globs.is_empty() || globs.iter().any(|g| values.iter().any(|v| glob(g, v)))
        };
        let mut names = vec![leaf.cn.clone()];
        names.extend(leaf.dns.iter().cloned());
        names.extend(leaf.emails.iter().cloned());
        any("allowed_names", &names)
            && any("allowed_common_names", std::slice::from_ref(&leaf.cn))
            && any("allowed_dns_sans", &leaf.dns)
            && any("allowed_email_sans", &leaf.emails)
            && any("allowed_uri_sans", &leaf.uris)
            && any("allowed_organizational_units", &leaf.ous)
            && any("allowed_organizations", &leaf.orgs)
            && self.required_extensions_match(leaf)
    }

    fn required_extensions_match(&self, leaf: &CertInfo) -> bool {
        self.list("required_extensions").iter().all(|req| {
            let (value, rest) = match req.strip_prefix("hex:") {
                Some(rest) => (
                    rest.split_once(':')
                        .and_then(|(o, _)| leaf.extension_hex(o)),
                    rest,
                ),
                None => (
                    req.split_once(':')
                        .and_then(|(o, _)| leaf.extension_string(o)),
                    req.as_str(),
                ),
            };
            let pattern = rest.split_once(':').map_or("", |(_, p)| p);
            value.is_some_and(|v| glob(pattern, &v))
        })
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// Why login failed before a role matched.
enum NoMatch {
    NoChain,
    Constraints,
}

impl CertMount {
    fn login(&self, req: &Req, ctx: LoginCtx<'_>) -> Result<Resp, ApiError> {
        if !req.conn.tls {
            return Err(ApiError::bad("tls connection required"));
        }
        let Some(leaf_der) = req.conn.peer_certs.first() else {
            return Err(ApiError::bad("client certificate must be supplied"));
        };
        let body = req.body()?;
        let name = str_field(body, "name").unwrap_or_default().to_lowercase();
        let roles: Vec<&CertRole> = self
            .roles
            .values()
            .filter(|r| name.is_empty() || r.name == name)
            .collect();
        let leaf = CertInfo::parse(leaf_der).ok_or_else(|| no_chain_error(ctx.ver))?;
        let role = match_role(&roles, leaf_der, &req.conn.peer_certs[1..], &leaf, ctx.ver)?;
        check_cidrs(role, req)?;
        issue_token(role, &leaf, ctx)
    }
}

fn match_role<'r>(
    roles: &[&'r CertRole],
    leaf_der: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    leaf: &CertInfo,
    ver: Ver,
) -> Result<&'r CertRole, ApiError> {
    if let Some(role) = match_trusted_leaf(roles, leaf_der, leaf, ver)? {
        return Ok(role);
    }
    check_validity(leaf)?;
    let mut outcome = NoMatch::NoChain;
    for role in roles.iter().filter(|r| r.is_ca()) {
        if !chains_to(role, leaf_der, intermediates)? {
            continue;
        }
        if !leaf.client_auth_ok {
            return Err(verify_error(
                "x509: certificate specifies an incompatible key usage",
            ));
        }
        if role.matches_constraints(leaf) {
            return Ok(role);
        }
        outcome = NoMatch::Constraints;
    }
    Err(match outcome {
        NoMatch::NoChain => no_chain_error(ver),
        NoMatch::Constraints => constraint_error(ver),
    })
}

/// Non-CA roles pin one leaf: same serial (and, before 1.18, same AKI).
fn match_trusted_leaf<'r>(
    roles: &[&'r CertRole],
    leaf_der: &CertificateDer<'static>,
    leaf: &CertInfo,
    ver: Ver,
) -> Result<Option<&'r CertRole>, ApiError> {
    for role in roles.iter().filter(|r| !r.is_ca()) {
        let Some(pinned_der) = role.certs.first() else {
            continue;
        };
        let Some(pinned) = CertInfo::parse(pinned_der) else {
            continue;
        };
        let same = pinned.serial == leaf.serial && (ver.at_least(1, 18) || pinned.aki == leaf.aki);
        if !same || !role.matches_constraints(leaf) {
            continue;
        }
        if pinned_der.as_ref() != leaf_der.as_ref() {
            if ver.at_least(1, 18) {
                return Err(ApiError::bad(
                    "certificate mismatch of a trusted leaf certificate",
                ));
            }
            continue;
        }
        return Ok(Some(role));
    }
    Ok(None)
}

/// Go's x509 checks the leaf's validity period before looking for a chain: 500 either way.
fn check_validity(leaf: &CertInfo) -> Result<(), ApiError> {
    let now = encode::unix(std::time::SystemTime::now()) as i64;
    let (now_s, nb, na) = (
        encode::rfc3339(now),
        encode::rfc3339(leaf.not_before),
        encode::rfc3339(leaf.not_after),
    );
    let detail = if now < leaf.not_before {
        format!("current time {now_s} is before {nb}")
    } else if now > leaf.not_after {
        format!("current time {now_s} is after {na}")
    } else {
        return Ok(());
    };
    Err(verify_error(&format!(
        "x509: certificate has expired or is not yet valid: {detail}"
    )))
}

fn verify_error(detail: &str) -> ApiError {
    ApiError::internal(format!("failed to verify client's certificate: {detail}"))
}

/// Whether the leaf chains (through presented intermediates) to one of the role's CAs.
fn chains_to(
    role: &CertRole,
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
) -> Result<bool, ApiError> {
    let anchors: Vec<_> = role
        .certs
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
        return Ok(false);
    };
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let res = ee.verify_for_usage(
        algs.all,
        &anchors,
        intermediates,
        UnixTime::now(),
        AnyUsage,
        None,
        None,
    );
    match res {
        Ok(_) => Ok(true),
        Err(webpki::Error::CertExpired { .. }) | Err(webpki::Error::CertNotValidYet { .. }) => Err(
            verify_error("x509: certificate has expired or is not yet valid: an issuer is outside its validity period"),
        ),
        Err(_) => Ok(false),
    }
}

/// Go's chain building does not look at EKUs until a chain exists; neither do we.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn no_chain_error(ver: Ver) -> ApiError {
    let msg = if ver.unified_login_error() {
        "failed to match all constraints for this login certificate"
    } else if ver.login_error_suffix() {
        "invalid certificate or no client certificate supplied; additionally got errors during verification: <nil>"
    } else {
        "invalid certificate or no client certificate supplied"
    };
    ApiError::bad(msg)
}

fn constraint_error(ver: Ver) -> ApiError {
    ApiError::bad(if ver.unified_login_error() {
        "failed to match all constraints for this login certificate"
    } else {
        "no chain matching all constraints could be found for this login certificate"
    })
}

fn check_cidrs(role: &CertRole, req: &Req) -> Result<(), ApiError> {
    let cidrs = &role.token.bound_cidrs;
    if cidrs.is_empty() {
        return Ok(());
    }
    let ip = req.conn.remote.map(|a| a.ip());
    match ip {
        Some(ip) if cidrs.iter().any(|c| cidr_contains(c, ip)) => Ok(()),
        _ => Err(ApiError::denied()),
    }
}

/// `10.0.0.0/8` (or a bare address) contains `ip`.
pub(crate) fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    let (n, i, max) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let bits = bits.unwrap_or(max).min(max);
    let shift = max - bits;
    shift == 128 || (n >> shift) == (i >> shift)
}

fn issue_token(role: &CertRole, leaf: &CertInfo, ctx: LoginCtx<'_>) -> Result<Resp, ApiError> {
    let mut policies = role.token.policies.clone();
    if !role.token.no_default_policy {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();
    let mut ttl = if role.token.ttl > 0 {
        role.token.ttl
    } else {
        SYSTEM_DEFAULT_TTL
    };
    if role.token.max_ttl > 0 {
        ttl = ttl.min(role.token.max_ttl);
    }
    let prefix = ctx.mount.trim_end_matches('/').replace('/', "-");
    let display = format!("{prefix}-{}", role.display_name);
    let path = format!("auth/{}/login", ctx.mount.trim_end_matches('/'));
    let mut token = Token::login(policies.clone(), ttl, path, display);
    let meta = login_metadata(role, leaf);
    token.meta = Some(meta.clone());
    let auth = json!({
        "client_token": token.id, "accessor": token.accessor, "policies": policies,
        "token_policies": policies, "metadata": meta, "lease_duration": ttl, "renewable": true,
        "entity_id": token.entity_id, "token_type": "service", "orphan": true,
        "mfa_requirement": null, "num_uses": 0,
    });
    ctx.tokens.issue(token);
    let mut env = Envelope::new(Value::Null, "");
    env.auth = auth;
    env.ok(ctx.ver)
}

fn login_metadata(role: &CertRole, leaf: &CertInfo) -> BTreeMap<String, String> {
    let hex = |b: &Option<Vec<u8>>| b.as_deref().map(encode::colon_hex).unwrap_or_default();
    let mut meta = BTreeMap::from([
        ("authority_key_id".to_string(), hex(&leaf.aki)),
        ("cert_name".to_string(), role.name.clone()),
        ("common_name".to_string(), leaf.cn.clone()),
        ("serial_number".to_string(), leaf.serial_decimal.clone()),
        ("subject_key_id".to_string(), hex(&leaf.ski)),
    ]);
    for oid in role.list("allowed_metadata_extensions") {
        if let Some(v) = leaf.extension_string(oid) {
            meta.insert(oid.replace('.', "-"), v);
        }
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(cidr_contains("10.0.0.0/8", ip));
        assert!(!cidr_contains("192.168.0.0/16", ip));
        assert!(cidr_contains("10.1.2.3", ip));
        assert!(cidr_contains("0.0.0.0/0", ip));
        assert!(cidr_contains("::1/128", "::1".parse().unwrap()));
    }
}
