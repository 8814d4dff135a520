//! The PKI secrets engine on any mount path (§5): roles, `issue/:role`, `sign/:role`, and the
//! CA/chain/issuer fetch endpoints. Certificates are really signed by the lab intermediate.
//!
//! Deliberate difference: ring cannot generate RSA keys, so roles default to `key_type=ec`
//! (P-256) and `issue` with `key_type=rsa` is refused; `sign` accepts any CSR key the role
//! allows.

use super::certinfo::CertInfo;
use super::http::{
    bool_field, dur_field, int_field, list_field, multierror, str_field, ApiError, Envelope, Op,
    Req, Resp,
};
use super::version::Ver;
use crate::encode;
use crate::pki::{random_serial, LabPki};
use crate::LabError;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The mount/system maximum lease TTL (768h).
const SYSTEM_MAX_TTL: u64 = 2_764_800;
/// Issuer id and name reported for the lab intermediate.
const ISSUER_NAME: &str = "lab-intermediate";

/// How a role field is typed, with its default.
enum Kind {
    Bool(bool),
    List(&'static [&'static str]),
    Dur(u64),
    Int(i64),
    Str(&'static str),
}

/// Role fields and defaults (§5.3).
const ROLE_FIELDS: &[(&str, Kind)] = &[
    ("allowed_domains", Kind::List(&[])),
    ("allowed_domains_template", Kind::Bool(false)),
    ("allow_bare_domains", Kind::Bool(false)),
    ("allow_subdomains", Kind::Bool(false)),
    ("allow_glob_domains", Kind::Bool(false)),
    ("allow_wildcard_certificates", Kind::Bool(true)),
    ("allow_any_name", Kind::Bool(false)),
    ("allow_localhost", Kind::Bool(true)),
    ("allow_ip_sans", Kind::Bool(true)),
    ("allow_token_displayname", Kind::Bool(false)),
    ("allowed_uri_sans", Kind::List(&[])),
    ("allowed_uri_sans_template", Kind::Bool(false)),
    ("allowed_other_sans", Kind::List(&[])),
    ("allowed_serial_numbers", Kind::List(&[])),
    ("allowed_user_ids", Kind::List(&[])),
    ("enforce_hostnames", Kind::Bool(true)),
    ("server_flag", Kind::Bool(true)),
    ("client_flag", Kind::Bool(true)),
    ("code_signing_flag", Kind::Bool(false)),
    ("email_protection_flag", Kind::Bool(false)),
    ("key_type", Kind::Str("rsa")),
    ("key_bits", Kind::Int(2048)),
    ("signature_bits", Kind::Int(0)),
    ("use_pss", Kind::Bool(false)),
    ("ttl", Kind::Dur(0)),
    ("max_ttl", Kind::Dur(0)),
    (
        "key_usage",
        Kind::List(&["DigitalSignature", "KeyAgreement", "KeyEncipherment"]),
    ),
    ("ext_key_usage", Kind::List(&[])),
    ("ext_key_usage_oids", Kind::List(&[])),
    ("use_csr_common_name", Kind::Bool(true)),
    ("use_csr_sans", Kind::Bool(true)),
    ("ou", Kind::List(&[])),
    ("organization", Kind::List(&[])),
    ("country", Kind::List(&[])),
    ("locality", Kind::List(&[])),
    ("province", Kind::List(&[])),
    ("street_address", Kind::List(&[])),
    ("postal_code", Kind::List(&[])),
    ("no_store", Kind::Bool(false)),
    ("require_cn", Kind::Bool(true)),
    ("policy_identifiers", Kind::List(&[])),
    ("basic_constraints_valid_for_non_ca", Kind::Bool(false)),
    ("not_before_duration", Kind::Dur(30)),
    ("not_after", Kind::Str("")),
    ("cn_validations", Kind::List(&["email", "hostname"])),
    ("issuer_ref", Kind::Str("default")),
];

/// A role, stored as its normalized read form.
#[derive(Debug, Clone)]
struct Role(Map<String, Value>);

impl Role {
    fn b(&self, k: &str) -> bool {
        self.0.get(k).and_then(Value::as_bool).unwrap_or(false)
    }

    fn u(&self, k: &str) -> u64 {
        self.0.get(k).and_then(Value::as_u64).unwrap_or(0)
    }

    fn s(&self, k: &str) -> &str {
        self.0.get(k).and_then(Value::as_str).unwrap_or("")
    }

    fn list(&self, k: &str) -> Vec<String> {
        let items = self
            .0
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// Applies a body over `base` (defaults for POST, the stored role for PATCH).
    fn build(base: Map<String, Value>, body: &Map<String, Value>) -> Result<Role, ApiError> {
        let mut m = base;
        for (key, kind) in ROLE_FIELDS {
            let v = match kind {
                Kind::Bool(_) => bool_field(body, key)?.map(Value::Bool),
                Kind::List(_) => list_field(body, key)?.map(|l| json!(l)),
                Kind::Dur(_) => dur_field(body, key)?.map(|d| json!(d)),
                Kind::Int(_) => int_field(body, key)?.map(|i| json!(i)),
                Kind::Str(_) => str_field(body, key).map(Value::String),
            };
            if let Some(v) = v {
                m.insert((*key).to_string(), v);
            }
        }
        if let Some(g) = bool_field(body, "generate_lease")? {
            m.insert("generate_lease".into(), Value::Bool(g));
        }
        m.entry("generate_lease").or_insert(Value::Bool(false));
        let role = Role(m);
        role.validate()?;
        Ok(role)
    }

    fn defaults() -> Map<String, Value> {
        let mut m = Map::new();
        for (key, kind) in ROLE_FIELDS {
            let v = match kind {
                Kind::Bool(b) => json!(b),
                Kind::List(l) => json!(l),
                Kind::Dur(d) => json!(d),
                Kind::Int(i) => json!(i),
                Kind::Str(s) => json!(s),
            };
            m.insert((*key).to_string(), v);
        }
        m
    }

    fn validate(&self) -> Result<(), ApiError> {
        let kt = self.s("key_type");
        if !matches!(kt, "rsa" | "ec" | "ed25519" | "any") {
            return Err(ApiError::bad(format!("unknown key type {kt}")));
        }
        if self.u("max_ttl") > 0 && self.u("ttl") > self.u("max_ttl") {
            return Err(ApiError::bad(
                r#""ttl" value must be less than "max_ttl" value"#,
            ));
        }
        Ok(())
    }
}

/// Body keys a role write takes without keeping them as role fields.
const KNOWN_ELSEWHERE: &[&str] = &["name"];

/// Builds a field's default value.
type Default = fn() -> Value;

/// Role fields OpenBao adds to every role it shows (its issuance-bound options).
const OPENBAO_ROLE_FIELDS: &[(&str, Default)] = &[
    ("allow_globs_in_identity_templates", || json!(false)),
    ("allowed_ip_sans_cidr", || json!([])),
    ("not_after_bound", || json!("permit")),
    ("not_before", || json!("")),
    ("not_before_bound", || json!("permit")),
];

/// A role as the server shows it: OpenBao's extra fields added in its mode.
fn shown(role: &Role, ver: Ver) -> Value {
    let mut m = role.0.clone();
    if ver.openbao() {
        for (k, v) in OPENBAO_ROLE_FIELDS {
            m.entry(*k).or_insert_with(v);
        }
    }
    Value::Object(m)
}

/// The warning both servers give for body keys a role write does not know.
fn ignored_parameters(body: &Map<String, Value>) -> Option<String> {
    let known = |k: &str| {
        k == "generate_lease"
            || ROLE_FIELDS.iter().any(|(f, _)| *f == k)
            || OPENBAO_ROLE_FIELDS.iter().any(|(f, _)| *f == k)
            || KNOWN_ELSEWHERE.contains(&k)
    };
    let mut unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !known(k))
        .collect();
    unknown.sort_unstable();
    (!unknown.is_empty()).then(|| {
        format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            unknown.join(" ")
        )
    })
}

/// One PKI mount: its roles, its issuer (absent on a freshly enabled mount), issued certs.
#[derive(Debug)]
pub(crate) struct PkiMount {
    roles: BTreeMap<String, Role>,
    ca: Option<Arc<LabPki>>,
    issuer_id: String,
    certs: BTreeMap<String, String>,
}

/// A request to issue or sign, after the role checks.
struct Plan {
    cn: String,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    ttl: u64,
    warnings: Vec<String>,
}

impl PkiMount {
    /// A mount that issues from `ca` (or from nothing yet).
    pub fn new(ca: Option<Arc<LabPki>>) -> PkiMount {
        PkiMount {
            roles: BTreeMap::new(),
            ca,
            issuer_id: encode::uuid(),
            certs: BTreeMap::new(),
        }
    }

    /// Paths that need no token (§0.6).
    pub fn unauthenticated(sub: &str) -> bool {
        matches!(
            sub,
            "ca" | "ca/pem" | "ca_chain" | "crl" | "crl/pem" | "issuers/"
        ) || sub.starts_with("cert/")
            || (sub.starts_with("issuer/")
                && (sub.ends_with("/json") || sub.ends_with("/pem") || sub.ends_with("/der")))
    }

    /// Dispatches `<mount>/<sub>`.
    pub fn handle(&mut self, sub: &str, req: &Req, ver: Ver) -> Result<Resp, ApiError> {
        let (head, rest) = sub.split_once('/').unwrap_or((sub, ""));
        match (head, rest, req.op) {
            ("roles", "", Op::List) => {
                super::http::list_reply(self.roles.keys().cloned().collect(), "pki", ver)
            }
            ("roles", name, _) if !name.is_empty() => self.role_op(name, req, ver),
            ("issue", role, Op::Write) => self.issue(role, req, ver, None),
            ("sign", role, Op::Write) => self.sign(role, req, ver),
            ("issuer", r, Op::Write) if r.contains("/issue/") || r.contains("/sign/") => {
                self.issuer_scoped(r, req, ver)
            }
            ("issue" | "sign", _, _) => Err(ApiError::unsupported_operation()),
            (_, _, Op::Read) => self.fetch(sub, ver),
            ("issuers", "", Op::List) => self.list_issuers(ver),
            _ => Err(ApiError::new(404, vec![multierror(&["unsupported path"])])),
        }
    }

    fn issuer_scoped(&mut self, rest: &str, req: &Req, ver: Ver) -> Result<Resp, ApiError> {
        let parts: Vec<&str> = rest.splitn(3, '/').collect();
        let [r, action, role] = parts[..] else {
            return Err(ApiError::not_found());
        };
        self.issuer_ref(r)?;
        match action {
            "issue" => self.issue(role, req, ver, None),
            _ => self.sign(role, req, ver),
        }
    }

    fn role_op(&mut self, name: &str, req: &Req, ver: Ver) -> Result<Resp, ApiError> {
        match req.op {
            Op::Read => {
                let role = self.roles.get(name).ok_or_else(ApiError::not_found)?;
                Envelope::new(shown(role, ver), "pki").ok(ver)
            }
            Op::Write | Op::Patch => {
                let base = match (req.op, self.roles.get(name)) {
                    (Op::Patch, Some(r)) => r.0.clone(),
                    (Op::Patch, None) => return Err(ApiError::not_found()),
                    _ => Role::defaults(),
                };
                let body = req.body()?;
                let role = Role::build(base, body)?;
                let data = shown(&role, ver);
                self.roles.insert(name.to_string(), role);
                let mut env = Envelope::new(data, "pki");
                if let Some(w) = ignored_parameters(body) {
                    env = env.warn(w);
                }
                env.ok(ver)
            }
            Op::Delete => {
                self.roles.remove(name);
                Ok(Resp::no_content())
            }
            Op::List => Err(ApiError::unsupported_operation()),
        }
    }

    fn role(&self, name: &str) -> Result<&Role, ApiError> {
        self.roles
            .get(name)
            .ok_or_else(|| ApiError::bad(format!("unknown role: {name}")))
    }

    fn ca(&self) -> Result<&Arc<LabPki>, ApiError> {
        self.ca.as_ref().ok_or_else(|| {
            ApiError::internal(multierror(&[
                "could not fetch the CA certificate (was one set?): no default issuer currently configured",
            ]))
        })
    }

    fn issue(
        &mut self,
        role_name: &str,
        req: &Req,
        ver: Ver,
        csr: Option<&Csr>,
    ) -> Result<Resp, ApiError> {
        let role = self.role(role_name)?.clone();
        let body = req.body()?;
        let format = str_field(body, "format").unwrap_or_else(|| "pem".into());
        if !matches!(format.as_str(), "pem" | "der" | "pem_bundle") {
            return Err(ApiError::bad(
                r#"the "format" path parameter must be "pem", "der", or "pem_bundle""#,
            ));
        }
        if csr.is_none() && role.s("key_type") != "ec" {
            return Err(ApiError::bad(format!(
                "role key type \"{}\" not allowed for issuing certificates in the lab (only \"ec\"); use sign with a CSR",
                role.s("key_type")
            )));
        }
        let ca = self.ca()?.clone();
        let plan = plan(&role, body, csr, &ca)?;
        let params = cert_params(&role, &plan)?;
        let (der, key) = match csr {
            Some(c) => (sign_with(&ca, &params, &c.key)?, None),
            None => {
                let kp = KeyPair::generate().map_err(|e| ApiError::internal(e.to_string()))?;
                (sign_with(&ca, &params, &kp)?, Some(kp.serialize_der()))
            }
        };
        let info = CertInfo::parse(&der)
            .ok_or_else(|| ApiError::internal("issued certificate does not parse"))?;
        let serial = encode::colon_hex(&info.serial);
        if !role.b("no_store") {
            self.certs
                .insert(serial.clone(), encode::pem("CERTIFICATE", &der));
        }
        let data = issue_data(
            &ca,
            &der,
            key.as_deref(),
            &serial,
            info.not_after,
            &format,
            body,
        );
        let mut env = Envelope::new(data, "pki");
        env.warnings = plan.warnings;
        env.ok(ver)
    }

    fn sign(&mut self, role_name: &str, req: &Req, ver: Ver) -> Result<Resp, ApiError> {
        let role = self.role(role_name)?.clone();
        let pem = str_field(req.body()?, "csr").unwrap_or_default();
        let csr = Csr::parse(&pem)?;
        let kt = role.s("key_type");
        if kt != "any" && kt != csr.key_type {
            return Err(ApiError::bad(format!("role requires keys of type {kt}")));
        }
        self.issue(role_name, req, ver, Some(&csr))
    }

    fn fetch(&self, sub: &str, ver: Ver) -> Result<Resp, ApiError> {
        let chain = self.chain_der();
        let pem_of = |d: &CertificateDer<'_>| encode::pem("CERTIFICATE", d);
        let joined = chain.iter().map(pem_of).collect::<Vec<_>>().join("\n");
        let issuer = chain.first();
        match sub {
            "ca/pem" => Ok(Resp::raw(
                "application/pem-certificate-chain",
                issuer.map(pem_of).unwrap_or_default().into_bytes(),
            )),
            "ca" => Ok(Resp::raw(
                "application/pkix-cert",
                issuer.map(|d| d.to_vec()).unwrap_or_default(),
            )),
            "ca_chain" => Ok(Resp::raw("application/pkix-cert", joined.into_bytes())),
            "cert/ca_chain" => cert_data(&joined, Some(&joined), ver),
            "cert/ca" => cert_data(&issuer.map(pem_of).unwrap_or_default(), None, ver),
            _ => self.fetch_more(sub, ver),
        }
    }

    fn fetch_more(&self, sub: &str, ver: Ver) -> Result<Resp, ApiError> {
        if let Some(serial) = sub.strip_prefix("cert/") {
            let key = serial.to_lowercase().replace('-', ":");
            let pem = self.certs.get(&key).ok_or_else(ApiError::not_found)?;
            return cert_data(pem, None, ver);
        }
        if let Some(rest) = sub.strip_prefix("issuer/") {
            return self.fetch_issuer(rest, ver);
        }
        if sub.starts_with("roles/") || sub == "roles" {
            return Err(ApiError::unsupported_operation());
        }
        Err(ApiError::new(404, vec![multierror(&["unsupported path"])]))
    }

    fn issuer_ref(&self, r: &str) -> Result<(), ApiError> {
        if self.ca.is_none() && r == "default" {
            return Err(ApiError::internal("no default issuer currently configured"));
        }
        if self.ca.is_some() && (r == "default" || r == self.issuer_id || r == ISSUER_NAME) {
            return Ok(());
        }
        Err(ApiError::internal(format!(
            "unable to find PKI issuer for reference: {r}"
        )))
    }

    fn fetch_issuer(&self, rest: &str, ver: Ver) -> Result<Resp, ApiError> {
        let (r, what) = rest.split_once('/').unwrap_or((rest, "json"));
        self.issuer_ref(r)?;
        let chain = self.chain_der();
        let stored = |d: &CertificateDer<'_>| encode::pem("CERTIFICATE", d) + "\n";
        match what {
            "pem" => Ok(Resp::raw(
                "application/pem-certificate-chain",
                stored(&chain[0]).into_bytes(),
            )),
            "der" => Ok(Resp::raw("application/pkix-cert", chain[0].to_vec())),
            "json" | "" => {
                let data = json!({
                    "certificate": stored(&chain[0]),
                    "ca_chain": chain.iter().map(stored).collect::<Vec<_>>(),
                    "issuer_id": self.issuer_id, "issuer_name": ISSUER_NAME,
                    "key_id": "", "leaf_not_after_behavior": "err", "manual_chain": null,
                    "usage": "crl-signing,issuing-certificates,ocsp-signing,read-only",
                });
                Envelope::new(data, "pki").ok(ver)
            }
            _ => Err(ApiError::new(404, vec![multierror(&["unsupported path"])])),
        }
    }

    fn list_issuers(&self, ver: Ver) -> Result<Resp, ApiError> {
        if self.ca.is_none() {
            return Err(ApiError::not_found());
        }
        let data = json!({
            "keys": [self.issuer_id],
            "key_info": { self.issuer_id.clone(): { "issuer_name": ISSUER_NAME, "is_default": true } },
        });
        Envelope::new(data, "pki").ok(ver)
    }

    /// Issuer first, then its parents up to the root; empty without a CA.
    fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        match &self.ca {
            Some(ca) => vec![
                ca.intermediate().cert().cert_der().clone(),
                ca.root().cert().cert_der().clone(),
            ],
            None => Vec::new(),
        }
    }
}

fn cert_data(pem: &str, chain: Option<&str>, ver: Ver) -> Result<Resp, ApiError> {
    let mut data =
        json!({ "certificate": pem, "revocation_time": 0, "revocation_time_rfc3339": "" });
    if let Some(c) = chain {
        data["ca_chain"] = json!(c);
    }
    Envelope::new(data, "pki").ok(ver)
}

fn sign_with(
    ca: &LabPki,
    params: &CertificateParams,
    key: &impl PublicKeyData,
) -> Result<CertificateDer<'static>, ApiError> {
    ca.intermediate()
        .sign_params(params, key)
        .map_err(|e: LabError| ApiError::internal(e.to_string()))
}

/// A parsed, signature-checked CSR.
struct Csr {
    key: rcgen::SubjectPublicKeyInfo,
    key_type: &'static str,
    cn: String,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl Csr {
    fn parse(pem: &str) -> Result<Csr, ApiError> {
        use rustls_pki_types::pem::PemObject;
        if pem.trim().is_empty() {
            return Err(ApiError::bad(r#""csr" is empty"#));
        }
        let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| ApiError::bad("csr contains no data"))?;
        let unparsable =
            |e: String| ApiError::bad(format!("certificate request could not be parsed: {e}"));
        CertificateSigningRequestParams::from_der(&der).map_err(|e| unparsable(e.to_string()))?;
        Csr::read(der.as_ref()).map_err(unparsable)
    }

    fn read(der: &[u8]) -> Result<Csr, String> {
        use x509_parser::certification_request::X509CertificationRequest;
        use x509_parser::prelude::{FromDer, ParsedExtension};
        use x509_parser::public_key::PublicKey;
        let (_, csr) = X509CertificationRequest::from_der(der).map_err(|e| e.to_string())?;
        let info = &csr.certification_request_info;
        let spki = &info.subject_pki;
        let key_type = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => {
                return Err("RSA keys < 2048 bits are unsafe and not supported".into())
            }
            Ok(PublicKey::RSA(_)) => "rsa",
            Ok(PublicKey::EC(_)) => "ec",
            _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => "ed25519",
            _ => return Err("unsupported public key type".into()),
        };
        let key = rcgen::SubjectPublicKeyInfo::from_der(spki.raw).map_err(|e| e.to_string())?;
        let cn = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok());
        let mut csr_out = Csr {
            key,
            key_type,
            cn: cn.unwrap_or_default().into(),
            dns: Vec::new(),
            ips: Vec::new(),
        };
        for ext in csr.requested_extensions().into_iter().flatten() {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                csr_out.add_names(&san.general_names);
            }
        }
        Ok(csr_out)
    }

    fn add_names(&mut self, names: &[x509_parser::extensions::GeneralName<'_>]) {
        use x509_parser::extensions::GeneralName;
        for n in names {
            match n {
                GeneralName::DNSName(d) => self.dns.push(d.to_string()),
                GeneralName::IPAddress(b) => self.ips.extend(ip_from_bytes(b)),
                _ => {}
            }
        }
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// Names, IPs and TTL after every role check (§5.1 errors).
fn plan(
    role: &Role,
    body: &Map<String, Value>,
    csr: Option<&Csr>,
    ca: &LabPki,
) -> Result<Plan, ApiError> {
    let mut warnings = Vec::new();
    let body_cn = str_field(body, "common_name").unwrap_or_default();
    let cn = match csr {
        Some(c) if role.b("use_csr_common_name") && !c.cn.is_empty() => {
            if !body_cn.is_empty() {
                warnings.push("the common_name field was provided but the role is set with \"use_csr_common_name\" set to true".into());
            }
            c.cn.clone()
        }
        _ => body_cn,
    };
    if cn.is_empty() && role.b("require_cn") {
        return Err(ApiError::bad(
            r#"the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false"#,
        ));
    }
    // With a CSR and `use_csr_sans`, the SANs are the CSR's and the body's are ignored.
    let alt = match csr.filter(|_| role.b("use_csr_sans")) {
        Some(c) => c.dns.clone(),
        None => list_field(body, "alt_names")?.unwrap_or_default(),
    };
    check_names(role, &cn, &alt)?;
    let mut dns = Vec::new();
    let exclude = bool_field(body, "exclude_cn_from_sans")?.unwrap_or(false);
    if !cn.is_empty() && !exclude && !cn.contains('@') {
        dns.push(cn.clone());
    }
    dns.extend(alt.into_iter().filter(|a| !a.contains('@')));
    dns.dedup();
    let ips = ip_sans(role, body, csr)?;
    let ttl = ttl(role, body, ca, &mut warnings)?;
    Ok(Plan {
        cn,
        dns,
        ips,
        ttl,
        warnings,
    })
}

fn check_names(role: &Role, cn: &str, alt: &[String]) -> Result<(), ApiError> {
    if !cn.is_empty() && !name_allowed(role, cn) {
        return Err(ApiError::bad(format!(
            "common name {cn} not allowed by this role"
        )));
    }
    for name in alt {
        if name.contains('@') && !name_allowed(role, name) {
            return Err(ApiError::bad(format!(
                "email address {name} not allowed by this role"
            )));
        }
        if !name_allowed(role, name) {
            return Err(ApiError::bad(format!(
                "subject alternate name {name} not allowed by this role"
            )));
        }
    }
    Ok(())
}

/// Vault's role name policy: any-name, localhost, bare/sub/glob domains, hostname checks.
fn name_allowed(role: &Role, name: &str) -> bool {
    let host = name.rsplit_once('@').map_or(name, |(_, d)| d);
    let wildcard = host.starts_with("*.");
    if wildcard && !role.b("allow_wildcard_certificates") {
        return false;
    }
    let bare = host.strip_prefix("*.").unwrap_or(host);
    if role.b("enforce_hostnames") && !valid_hostname(bare) {
        return false;
    }
    if role.b("allow_any_name") {
        return true;
    }
    if role.b("allow_localhost") && matches!(host, "localhost" | "localdomain") {
        return true;
    }
    role.list("allowed_domains")
        .iter()
        .any(|d| domain_match(role, d, host))
}

fn domain_match(role: &Role, domain: &str, host: &str) -> bool {
    let domain = domain.to_lowercase();
    let host = host.to_lowercase();
    (role.b("allow_bare_domains") && host == domain)
        || (role.b("allow_subdomains")
            && host.len() > domain.len() + 1
            && host.ends_with(&format!(".{domain}")))
        || (role.b("allow_glob_domains")
            && domain.contains('*')
            && super::http::glob(&domain, &host))
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn ip_sans(
    role: &Role,
    body: &Map<String, Value>,
    csr: Option<&Csr>,
) -> Result<Vec<IpAddr>, ApiError> {
    let ips = match csr.filter(|_| role.b("use_csr_sans")) {
        Some(c) => c.ips.clone(),
        None => body_ips(body)?,
    };
    if let (false, Some(ip)) = (role.b("allow_ip_sans"), ips.first()) {
        return Err(ApiError::bad(format!(
            "IP Subject Alternative Names are not allowed in this role, but was provided {ip}"
        )));
    }
    Ok(ips)
}

fn body_ips(body: &Map<String, Value>) -> Result<Vec<IpAddr>, ApiError> {
    let mut ips = Vec::new();
    for s in list_field(body, "ip_sans")?.unwrap_or_default() {
        let ip = s
            .parse()
            .map_err(|_| ApiError::bad(format!("the value {s:?} is not a valid IP address")))?;
        ips.push(ip);
    }
    Ok(ips)
}

/// The leaf lifetime: request ttl / not_after, else the role's, capped by max_ttl with a warning.
fn ttl(
    role: &Role,
    body: &Map<String, Value>,
    ca: &LabPki,
    warnings: &mut Vec<String>,
) -> Result<u64, ApiError> {
    let req_ttl = dur_field(body, "ttl")?.filter(|t| *t > 0);
    let not_after = str_field(body, "not_after").filter(|s| !s.is_empty());
    if req_ttl.is_some() && not_after.is_some() {
        return Err(ApiError::bad("Either ttl or not_after should be provided. Both should not be provided in the same request."));
    }
    let now = encode::unix(SystemTime::now());
    let from_not_after = match &not_after {
        Some(s) => Some(parse_not_after(s, now)?),
        None => None,
    };
    let max = if role.u("max_ttl") > 0 {
        role.u("max_ttl")
    } else {
        SYSTEM_MAX_TTL
    };
    let mut ttl = req_ttl.or(from_not_after).unwrap_or(if role.u("ttl") > 0 {
        role.u("ttl")
    } else {
        max
    });
    if ttl > max && not_after.is_none() {
        warnings.push(format!(
            "TTL {:?} is longer than permitted maxTTL {:?}, so maxTTL is being used",
            go_duration(ttl),
            go_duration(max)
        ));
        ttl = max;
    }
    let ca_end = encode::unix(ca.intermediate().not_after());
    if now + ttl > ca_end {
        return Err(ApiError::bad(format!(
            "cannot satisfy request, as TTL would result in notAfter of {} that is beyond the expiration of the CA certificate at {}",
            go_time(now + ttl),
            go_time(ca_end)
        )));
    }
    Ok(ttl)
}

fn parse_not_after(s: &str, now: u64) -> Result<u64, ApiError> {
    let t = encode::parse_rfc3339(s)
        .ok_or_else(|| ApiError::bad(format!("could not parse not_after {s:?}")))?;
    Ok((t.max(now as i64) as u64).saturating_sub(now))
}

/// Go's `time.Duration.String()` for whole seconds (`720h0m0s`).
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Go's default `time.Time` format in UTC (`2026-01-01 00:00:00 +0000 UTC`).
fn go_time(secs: u64) -> String {
    let r = encode::rfc3339(secs as i64);
    format!("{} {} +0000 UTC", &r[..10], &r[11..19])
}

fn cert_params(role: &Role, plan: &Plan) -> Result<CertificateParams, ApiError> {
    let mut p = CertificateParams::default();
    if !plan.cn.is_empty() {
        p.distinguished_name
            .push(DnType::CommonName, plan.cn.as_str());
    }
    for ou in role.list("ou") {
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
    }
    for o in role.list("organization") {
        p.distinguished_name.push(DnType::OrganizationName, o);
    }
    for name in &plan.dns {
        let ia5 = name
            .clone()
            .try_into()
            .map_err(|_| ApiError::bad(format!("invalid DNS name {name:?}")))?;
        p.subject_alt_names.push(SanType::DnsName(ia5));
    }
    p.subject_alt_names
        .extend(plan.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = role
        .list("key_usage")
        .iter()
        .filter_map(|k| key_usage(k))
        .collect();
    p.extended_key_usages = ekus(role);
    let now = SystemTime::now();
    p.not_before = (now - Duration::from_secs(role.u("not_before_duration"))).into();
    p.not_after = (now + Duration::from_secs(plan.ttl)).into();
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

fn key_usage(name: &str) -> Option<KeyUsagePurpose> {
    Some(match name.to_lowercase().as_str() {
        "digitalsignature" => KeyUsagePurpose::DigitalSignature,
        "contentcommitment" => KeyUsagePurpose::ContentCommitment,
        "keyencipherment" => KeyUsagePurpose::KeyEncipherment,
        "dataencipherment" => KeyUsagePurpose::DataEncipherment,
        "keyagreement" => KeyUsagePurpose::KeyAgreement,
        "certsign" => KeyUsagePurpose::KeyCertSign,
        "crlsign" => KeyUsagePurpose::CrlSign,
        "encipheronly" => KeyUsagePurpose::EncipherOnly,
        "decipheronly" => KeyUsagePurpose::DecipherOnly,
        _ => return None,
    })
}

fn ekus(role: &Role) -> Vec<ExtendedKeyUsagePurpose> {
    let mut out = Vec::new();
    let flags = [
        (
            "server_flag",
            "serverauth",
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "client_flag",
            "clientauth",
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        (
            "code_signing_flag",
            "codesigning",
            ExtendedKeyUsagePurpose::CodeSigning,
        ),
        (
            "email_protection_flag",
            "emailprotection",
            ExtendedKeyUsagePurpose::EmailProtection,
        ),
    ];
    let named: Vec<String> = role
        .list("ext_key_usage")
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    for (flag, name, eku) in flags {
        if role.b(flag) || named.iter().any(|n| n == name) {
            out.push(eku);
        }
    }
    out
}

/// The issue/sign response `data` (§5.1).
fn issue_data(
    ca: &LabPki,
    der: &CertificateDer<'_>,
    key_pkcs8: Option<&[u8]>,
    serial: &str,
    not_after: i64,
    format: &str,
    body: &Map<String, Value>,
) -> Value {
    let enc = |label: &str, d: &[u8]| match format {
        "der" => encode::base64(d),
        _ => encode::pem(label, d),
    };
    let issuing = enc("CERTIFICATE", ca.intermediate().cert().cert_der());
    let root = enc("CERTIFICATE", ca.root().cert().cert_der());
    let remove_roots = bool_field(body, "remove_roots_from_chain")
        .ok()
        .flatten()
        .unwrap_or(false);
    let chain = if remove_roots {
        vec![issuing.clone()]
    } else {
        vec![issuing.clone(), root]
    };
    let mut cert = enc("CERTIFICATE", der);
    let mut data = json!({ "issuing_ca": issuing, "ca_chain": chain, "serial_number": serial, "expiration": not_after });
    if let Some(pkcs8) = key_pkcs8 {
        let key = private_key(pkcs8, body, &enc);
        if format == "pem_bundle" {
            cert = format!("{key}\n{cert}\n{issuing}");
        }
        data["private_key"] = json!(key);
        data["private_key_type"] = json!("ec");
    }
    data["certificate"] = json!(cert);
    data
}

fn private_key(
    pkcs8: &[u8],
    body: &Map<String, Value>,
    enc: &dyn Fn(&str, &[u8]) -> String,
) -> String {
    let wants_pkcs8 = str_field(body, "private_key_format").is_some_and(|f| f == "pkcs8");
    match encode::pkcs8_ec_to_sec1(pkcs8) {
        Some(sec1) if !wants_pkcs8 => enc("EC PRIVATE KEY", &sec1),
        _ => enc("PRIVATE KEY", pkcs8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(body: Value) -> Role {
        Role::build(Role::defaults(), body.as_object().unwrap()).unwrap()
    }

    #[test]
    fn domain_rules() {
        let r = role(json!({"allowed_domains": "app-a.lab.test", "allow_subdomains": true}));
        assert!(name_allowed(&r, "www.app-a.lab.test"));
        assert!(name_allowed(&r, "*.app-a.lab.test"));
        assert!(!name_allowed(&r, "app-a.lab.test"));
        assert!(!name_allowed(&r, "evil-app-a.lab.test"));
        assert!(name_allowed(&r, "localhost"));
        let bare = role(json!({"allowed_domains": ["x.test"], "allow_bare_domains": true}));
        assert!(name_allowed(&bare, "x.test") && !name_allowed(&bare, "a.x.test"));
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(2_592_000), "720h0m0s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    }
}
