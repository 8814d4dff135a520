//! The fourteen health checks of `bao pki health-check`, each reading what it needs through the
//! [`Fetcher`] and returning its findings with the original's levels and conditions.

use super::fetch::{bad, parse_cert, pem_field, Fetcher, Got};
use super::{Finding, Level, PkiHealthExpect};
use crate::suite::Dur;
use crate::vault::{encode_path, VaultError};
use serde_json::Value;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

type Found = Result<Vec<Finding>, VaultError>;

/// Runs health check `name` at `now` (Unix seconds).
pub async fn run(name: &str, f: &mut Fetcher, e: &PkiHealthExpect, now: i64) -> Found {
    match name {
        "ca_validity_period" => ca_validity(f, e, now).await,
        "crl_validity_period" => crl_validity(f, e, now).await,
        "hardware_backed_root" => hardware_backed_root(f).await,
        "root_issued_leaves" => root_issued_leaves(f, e).await,
        "role_allows_localhost" => {
            let ok = "no role allows localhost beside its allowed_domains";
            roles_check(f, allows_localhost, ok).await
        }
        "role_allows_glob_wildcards" => {
            let ok = "no role allows wildcard certificates together with glob domains";
            roles_check(f, glob_wildcards, ok).await
        }
        "role_no_store_false" => no_store_false(f, e).await,
        "audit_visibility" => audit_visibility(f, e).await,
        "allow_if_modified_since" => if_modified_since(f).await,
        "enable_auto_tidy" => auto_tidy(f, e).await,
        "tidy_last_run" => tidy_last_run(f, e, now).await,
        "too_many_certs" => too_many_certs(f, e).await,
        "enable_acme_issuance" => acme_issuance(f).await,
        "allow_acme_headers" => acme_headers(f).await,
        _ => Ok(vec![]),
    }
}

/// The issuers that can be read: ID and certificate DER.
async fn issuer_certs(f: &mut Fetcher) -> Result<Vec<(String, Vec<u8>)>, VaultError> {
    let ids = f.issuers().await?.unwrap_or_default();
    let mut out = vec![];
    for id in ids {
        if let Some(der) = f.issuer_cert(&id).await? {
            out.push((id, der));
        }
    }
    Ok(out)
}

fn date(unix: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64),
    )
    .to_string()[..10]
        .to_string()
}

/// `180d`, or hours and less when not whole days.
fn span(secs: i64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s => crate::human::ttl(s.max(0) as u64),
    }
}

async fn ca_validity(f: &mut Fetcher, e: &PkiHealthExpect, now: i64) -> Found {
    let mut out = vec![];
    for (id, der) in issuer_certs(f).await? {
        let c = parse_cert(&der, &f.path_of(&format!("issuer/{id}/json")))?;
        out.push(ca_finding(&id, &c, e, now));
    }
    Ok(out)
}

fn ca_finding(id: &str, c: &X509Certificate<'_>, e: &PkiHealthExpect, now: i64) -> Finding {
    let root = crate::certs::is_self_signed(c);
    let after = c.validity().not_after.timestamp();
    let what = format!(
        "{} issuer {id} ({})",
        if root { "root" } else { "intermediate" },
        crate::certs::first_cn(c.subject())
    );
    for (level, window) in windows(&e.ca_validity_period, root) {
        let w = window.0.as_secs() as i64;
        if after < now + w {
            return Finding::new(level, format!(
                "{what} is valid until {} and expires within {}; start rotating it to a new key (generate a new issuer and re-sign below it)",
                date(after), span(w)));
        }
    }
    Finding::new(Level::Ok, format!("{what} is valid until {}", date(after)))
}

/// The windows of a root or an intermediate, most severe first.
fn windows(t: &super::CaValidity, root: bool) -> [(Level, Dur); 3] {
    if root {
        [
            (Level::Critical, t.root_expiry_critical),
            (Level::Warning, t.root_expiry_warning),
            (Level::Informational, t.root_expiry_informational),
        ]
    } else {
        [
            (Level::Critical, t.intermediate_expiry_critical),
            (Level::Warning, t.intermediate_expiry_warning),
            (Level::Informational, t.intermediate_expiry_informational),
        ]
    }
}

async fn crl_validity(f: &mut Fetcher, e: &PkiHealthExpect, now: i64) -> Found {
    let mut out = vec![];
    let config = f.read("config/crl").await?;
    if config == Got::Denied {
        out.push(Finding::denied(
            &f.path_of("config/crl"),
            "read",
            "whether the CRL is disabled is unknown",
        ));
    }
    let disabled = flag(config.data(), "disabled");
    let pct = &e.crl_validity_period;
    for id in f.issuers().await?.unwrap_or_default() {
        let full = format!("issuer/{}/crl", encode_path(&id));
        let Some(crl) = crl_times(f, &full).await? else {
            continue;
        };
        out.push(crl_finding(
            &f.path_of(&full),
            crl,
            pct.crl_expiry_pct_critical,
            disabled,
            now,
        ));
        let delta = format!("{full}/delta");
        if let Some(d) = crl_times(f, &delta).await? {
            out.push(crl_finding(
                &f.path_of(&delta),
                d,
                pct.delta_crl_expiry_pct_critical,
                disabled,
                now,
            ));
        }
    }
    Ok(out)
}

/// `thisUpdate` and `nextUpdate` of the CRL at `rel`.
async fn crl_times(f: &mut Fetcher, rel: &str) -> Result<Option<(i64, i64)>, VaultError> {
    let got = f.read(rel).await?;
    let path = f.path_of(rel);
    let Some((der, _)) = pem_field(&got, "crl", &path)? else {
        return Ok(None);
    };
    let (_, crl) = CertificateRevocationList::from_der(&der)
        .map_err(|e| bad(&path, format!("the CRL does not parse: {e}")))?;
    let this = crl.last_update().timestamp();
    let next = crl.next_update().map(|t| t.timestamp()).unwrap_or(this);
    Ok(Some((this, next)))
}

fn crl_finding(path: &str, (this, next): (i64, i64), pct: u8, disabled: bool, now: i64) -> Finding {
    let limit = (next - this) * i64::from(pct) / 100;
    if now - this < limit {
        return Finding::new(
            Level::Ok,
            format!("{path} is valid {} to {}", date(this), date(next)),
        );
    }
    let mut msg = format!(
        "{path} was issued {} and its next update is due {}: past {pct}% of its validity; rebuild it ({}/crl/rotate) and check that auto-rebuild or a periodic rotation runs",
        date(this), date(next), path.split('/').next().unwrap_or_default());
    let level = if disabled {
        msg.push_str("; the CRL is disabled, so this matters less");
        Level::Informational
    } else {
        Level::Critical
    };
    Finding::new(level, msg)
}

fn flag(data: Option<&Value>, key: &str) -> bool {
    data.and_then(|d| d.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

async fn hardware_backed_root(f: &mut Fetcher) -> Found {
    let mut out = vec![];
    for id in f.issuers().await?.unwrap_or_default() {
        let rel = format!("issuer/{}", encode_path(&id));
        let got = f.read(&rel).await?;
        if got == Got::Denied {
            out.push(Finding::denied(
                &f.path_of(&rel),
                "read",
                "the issuer's key is unknown",
            ));
            continue;
        }
        let Some((der, _)) = pem_field(&got, "certificate", &f.path_of(&rel))? else {
            continue;
        };
        let key_id = got
            .data()
            .and_then(|d| d.get("key_id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if key_id.is_empty() || !crate::certs::is_self_signed(&parse_cert(&der, &f.path_of(&rel))?)
        {
            continue;
        }
        if let Some(fnd) = root_key(f, &id, &key_id).await? {
            out.push(fnd);
        }
    }
    Ok(out)
}

async fn root_key(f: &mut Fetcher, id: &str, key_id: &str) -> Result<Option<Finding>, VaultError> {
    let rel = format!("key/{}", encode_path(key_id));
    let key = f.read(&rel).await?;
    if key == Got::Denied {
        return Ok(Some(Finding::denied(
            &f.path_of(&rel),
            "read",
            "whether the root's key is managed is unknown",
        )));
    }
    let Some(data) = key.data() else {
        return Ok(None);
    };
    Ok(Some(match data.get("managed_key_id").and_then(Value::as_str) {
        Some(m) => Finding::new(Level::Ok, format!("root issuer {id} is backed by managed key {m}")),
        None => Finding::new(Level::Informational, format!("root issuer {id} uses a software key kept by the server; for a long-lived root consider an HSM or KMS managed key")),
    }))
}

async fn root_issued_leaves(f: &mut Fetcher, e: &PkiHealthExpect) -> Found {
    let mut roots = vec![];
    for (id, der) in issuer_certs(f).await? {
        if crate::certs::is_self_signed(&parse_cert(
            &der,
            &f.path_of(&format!("issuer/{id}/json")),
        )?) {
            roots.push((id, der));
        }
    }
    let listing = f.list("certs").await?;
    if listing == Got::Denied {
        let path = f.path_of("certs");
        return Ok(roots
            .iter()
            .map(|_| Finding::denied(&path, "list", "the stored leaves cannot be examined"))
            .collect());
    }
    let leaves = stored_leaves(f, &listing.keys(), e.root_issued_leaves.certs_to_fetch).await?;
    let mut out = vec![];
    for (id, der) in &roots {
        let root = parse_cert(der, &f.path_of(&format!("issuer/{id}/json")))?;
        if let Some(serial) = leaves
            .iter()
            .find(|(_, l)| signed_by(l, &root))
            .map(|(s, _)| s)
        {
            out.push(Finding::new(Level::Warning, format!(
                "root issuer {id} directly issued leaf {serial}; rotating the root then needs cross-signed roots; issue leaves from an intermediate and tidy once the root-issued ones expire")));
        }
    }
    if out.is_empty() && !roots.is_empty() {
        out.push(Finding::new(
            Level::Ok,
            "no root issuer of the mount has directly issued a non-CA leaf",
        ));
    }
    Ok(out)
}

/// Up to `limit` stored non-CA certificates: serial and DER.
async fn stored_leaves(
    f: &mut Fetcher,
    serials: &[String],
    limit: u32,
) -> Result<Vec<(String, Vec<u8>)>, VaultError> {
    let mut out = vec![];
    for serial in serials {
        if out.len() >= limit as usize {
            break;
        }
        let Some(der) = f.cert(serial).await? else {
            continue;
        };
        let c = parse_cert(&der, &f.path_of(&format!("cert/{serial}")))?;
        if !c.is_ca() {
            out.push((serial.clone(), der));
        }
    }
    Ok(out)
}

fn signed_by(leaf_der: &[u8], root: &X509Certificate<'_>) -> bool {
    let Ok((_, leaf)) = X509Certificate::from_der(leaf_der) else {
        return false;
    };
    leaf.issuer().as_raw() == root.subject().as_raw()
        && leaf.verify_signature(Some(root.public_key())).is_ok()
}

/// The roles that could be read, and a finding for each that could not.
struct Roles {
    read: Vec<(String, Value)>,
    denied: Vec<Finding>,
}

/// The roles, each read; `Err` with the finding when the roles cannot be listed.
async fn roles(f: &mut Fetcher) -> Result<Result<Roles, Finding>, VaultError> {
    let listing = f.list("roles").await?;
    if listing == Got::Denied {
        let path = f.path_of("roles");
        return Ok(Err(Finding::denied(
            &path,
            "list",
            "the roles cannot be examined",
        )));
    }
    let mut roles = Roles {
        read: vec![],
        denied: vec![],
    };
    for name in listing.keys() {
        let rel = format!("roles/{}", encode_path(&name));
        match f.read(&rel).await? {
            Got::Denied => roles.denied.push(Finding::denied(
                &f.path_of(&rel),
                "read",
                "the role cannot be examined",
            )),
            Got::Data(d) if !d.is_null() => roles.read.push((name, d)),
            _ => {}
        }
    }
    Ok(Ok(roles))
}

/// `prior` findings, then the denied roles and `rule`'s findings; `ok` when there are none and
/// some role was read.
fn judge_roles(
    mut out: Vec<Finding>,
    roles: Roles,
    rule: impl Fn(&str, &Value) -> Option<Finding>,
    ok: &str,
) -> Vec<Finding> {
    out.extend(roles.denied);
    out.extend(roles.read.iter().filter_map(|(n, d)| rule(n, d)));
    if out.is_empty() && !roles.read.is_empty() {
        out.push(Finding::new(Level::Ok, ok));
    }
    out
}

async fn roles_check(
    f: &mut Fetcher,
    rule: fn(&str, &Value) -> Option<Finding>,
    ok: &str,
) -> Found {
    let mut out = match roles(f).await? {
        Ok(roles) => judge_roles(vec![], roles, rule, ok),
        Err(denied) => vec![denied],
    };
    // A server too old for the check says so once, as the original does.
    if let Some(old) = out.iter().position(|x| x.level == Level::InvalidVersion) {
        out = vec![out.swap_remove(old)];
    }
    Ok(out)
}

fn domains(d: &Value) -> Vec<String> {
    crate::vault::auth::strings(d.get("allowed_domains"))
}

fn allows_localhost(name: &str, d: &Value) -> Option<Finding> {
    let domains = domains(d);
    (flag(Some(d), "allow_localhost") && !domains.is_empty()).then(|| Finding::new(Level::Warning, format!(
        "role {name} allows localhost besides allowed_domains [{}]; operators may overlook it; set allow_localhost=false (add localhost to allowed_domains if it is meant)",
        domains.join(", "))))
}

fn glob_wildcards(name: &str, d: &Value) -> Option<Finding> {
    let Some(wild) = d.get("allow_wildcard_certificates") else {
        return Some(Finding::new(
            Level::InvalidVersion,
            "roles have no allow_wildcard_certificates field: the server is too old for this check",
        ));
    };
    let domains = domains(d);
    let globbed = domains.iter().any(|x| x.contains('*'));
    (wild.as_bool() == Some(true) && flag(Some(d), "allow_glob_domains") && globbed).then(|| Finding::new(Level::Warning, format!(
        "role {name} allows wildcard certificates and glob domains [{}]: globs can expand to wildcards under further subdomains; turn off allow_wildcard_certificates or split the role in two",
        domains.join(", "))))
}

async fn no_store_false(f: &mut Fetcher, e: &PkiHealthExpect) -> Found {
    let roles = match roles(f).await? {
        Ok(roles) => roles,
        Err(denied) => return Ok(vec![denied]),
    };
    let config = f.read("config/crl").await?;
    let mut prior = vec![];
    if config == Got::Denied {
        let path = f.path_of("config/crl");
        prior.push(Finding::denied(
            &path,
            "read",
            "whether CRLs auto-rebuild is unknown",
        ));
    }
    let rebuild = flag(config.data(), "auto_rebuild");
    let allowed = &e.role_no_store_false.allowed_roles;
    let rule = |name: &str, d: &Value| {
        let stored = !flag(Some(d), "no_store") && !allowed.iter().any(|a| a == name);
        stored.then(|| stores(name, rebuild))
    };
    Ok(judge_roles(
        prior,
        roles,
        rule,
        "no role stores every certificate it issues",
    ))
}

fn stores(name: &str, rebuild: bool) -> Finding {
    let base = format!("role {name} stores every certificate it issues (no_store=false), which grows storage and slows the mount; set no_store=true, or shorten lifetimes");
    if rebuild {
        Finding::new(
            Level::Informational,
            format!("{base} (CRL auto-rebuild is on, which limits the cost)"),
        )
    } else {
        Finding::new(
            Level::Warning,
            format!("{base} and turn on CRL auto-rebuild (config/crl auto_rebuild=true)"),
        )
    }
}

const VISIBLE_REQUEST: &[&str] = &[
    "csr",
    "certificate",
    "issuer_ref",
    "common_name",
    "alt_names",
    "other_sans",
    "ip_sans",
    "uri_sans",
    "ttl",
    "not_after",
    "serial_number",
    "key_type",
    "private_key_format",
    "managed_key_name",
    "managed_key_id",
    "ou",
    "organization",
    "country",
    "locality",
    "province",
    "street_address",
    "postal_code",
    "permitted_dns_domains",
    "policy_identifiers",
    "ext_key_usage_oids",
];
const VISIBLE_RESPONSE: &[&str] = &[
    "certificate",
    "issuing_ca",
    "serial_number",
    "error",
    "ca_chain",
];
const HIDDEN: &[&str] = &["private_key", "pem_bundle"];
const REQ_KEYS: &str = "audit_non_hmac_request_keys";
const RESP_KEYS: &str = "audit_non_hmac_response_keys";

/// The tune data, or the finding for a tune that cannot be read.
async fn tune(f: &mut Fetcher) -> Result<Result<Value, Finding>, VaultError> {
    let path = format!("sys/mounts/{}/tune", f.mount);
    Ok(match f.tune().await? {
        Got::Data(d) => Ok(d),
        Got::Unsupported => Err(Finding::new(
            Level::InvalidVersion,
            format!("{path} is not supported by the server"),
        )),
        _ => Err(Finding::denied(
            &path,
            "read",
            "the mount's tuning is unknown",
        )),
    })
}

async fn audit_visibility(f: &mut Fetcher, e: &PkiHealthExpect) -> Found {
    let t = match tune(f).await? {
        Ok(t) => t,
        Err(x) => return Ok(vec![x]),
    };
    let ignored = &e.audit_visibility.ignored_parameters;
    let mut out = vec![];
    for (key, visible) in [(REQ_KEYS, VISIBLE_REQUEST), (RESP_KEYS, VISIBLE_RESPONSE)] {
        let has = crate::vault::auth::strings(t.get(key));
        for p in visible
            .iter()
            .filter(|p| !has.iter().any(|h| h == *p) && !ignored.iter().any(|i| i == *p))
        {
            out.push(Finding::new(Level::Informational, format!("the audit log HMACs {p}, which is not secret; add it to {key} (secrets tune -{}={p})", key.replace('_', "-"))));
        }
        for p in HIDDEN
            .iter()
            .filter(|p| has.iter().any(|h| h == *p) && !ignored.iter().any(|i| i == *p))
        {
            out.push(Finding::new(
                Level::Warning,
                format!(
                    "the audit log shows {p} in clear because it is in {key}; remove it from {key}"
                ),
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::new(
            Level::Ok,
            "the mount's audit HMAC settings are appropriate",
        ));
    }
    Ok(out)
}

fn has_header(t: &Value, key: &str, header: &str) -> bool {
    crate::vault::auth::strings(t.get(key))
        .iter()
        .any(|h| h.eq_ignore_ascii_case(header))
}

async fn if_modified_since(f: &mut Fetcher) -> Found {
    let t = match tune(f).await? {
        Ok(t) => t,
        Err(x) => return Ok(vec![x]),
    };
    let ims = has_header(&t, "passthrough_request_headers", "If-Modified-Since");
    let lm = has_header(&t, "allowed_response_headers", "Last-Modified");
    Ok(vec![if ims && lm {
        Finding::new(
            Level::Ok,
            "the mount passes If-Modified-Since and returns Last-Modified",
        )
    } else {
        Finding::new(Level::Informational, "the mount does not pass If-Modified-Since or return Last-Modified; tune passthrough_request_headers=If-Modified-Since and allowed_response_headers=Last-Modified so clients refetch CAs and CRLs only when changed")
    }])
}

/// Seconds from a number or a duration string (`0s`, `12h`, `2d`).
fn secs(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s
            .parse()
            .ok()
            .or_else(|| humantime::parse_duration(s).ok().map(|d| d.as_secs_f64()))
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The `data` at `rel`; else the findings the original gives: none when absent, one when the
/// server is too old or the token may not `read` it (`lost` says what is then unknown).
async fn read_or(
    f: &mut Fetcher,
    rel: &str,
    lost: &str,
) -> Result<Result<Value, Vec<Finding>>, VaultError> {
    let path = f.path_of(rel);
    Ok(match f.read(rel).await? {
        Got::Data(d) if !d.is_null() => Ok(d),
        Got::Unsupported => Err(vec![Finding::new(
            Level::InvalidVersion,
            format!("{path} is not supported by the server"),
        )]),
        Got::Denied => Err(vec![Finding::denied(&path, "read", lost)]),
        _ => Err(vec![]),
    })
}

/// `Critical` at or past `crit`, `Warning` at or past `warn`.
fn at_least(v: f64, crit: Dur, warn: Dur) -> Option<Level> {
    if v >= crit.0.as_secs_f64() {
        Some(Level::Critical)
    } else if v >= warn.0.as_secs_f64() {
        Some(Level::Warning)
    } else {
        None
    }
}

async fn auto_tidy(f: &mut Fetcher, e: &PkiHealthExpect) -> Found {
    let d = match read_or(
        f,
        "config/auto-tidy",
        "the auto-tidy configuration is unknown",
    )
    .await?
    {
        Ok(d) => d,
        Err(found) => return Ok(found),
    };
    let path = f.path_of("config/auto-tidy");
    if !flag(Some(&d), "enabled") {
        return Ok(vec![Finding::new(Level::Informational, format!("auto-tidy is off; turn it on ({path} enabled=true) so expired certificates are removed periodically"))]);
    }
    let c = &e.enable_auto_tidy;
    let limits = [
        (
            "interval_duration",
            c.interval_duration_critical,
            c.interval_duration_warning,
        ),
        (
            "pause_duration",
            c.pause_duration_critical,
            c.pause_duration_warning,
        ),
    ];
    let mut out = vec![];
    for (key, crit, warn) in limits {
        let v = secs(d.get(key));
        if let Some(level) = at_least(v, crit, warn) {
            out.push(Finding::new(level, format!("auto-tidy's {key} is {v}s, too long; tidies run too rarely or take too long; lower {key} on {path}")));
        }
    }
    if out.is_empty() {
        out.push(Finding::new(
            Level::Ok,
            "auto-tidy is on and configured appropriately",
        ));
    }
    Ok(out)
}

async fn tidy_last_run(f: &mut Fetcher, e: &PkiHealthExpect, now: i64) -> Found {
    let d = match read_or(f, "tidy-status", "when tidy last ran is unknown").await? {
        Ok(d) => d,
        Err(found) => return Ok(found),
    };
    let Some(when) = finished(d.get("time_finished")) else {
        return Ok(vec![Finding::new(Level::Critical, "tidy has never run on this mount; turn on auto-tidy (config/auto-tidy enabled=true) or run tidy periodically")]);
    };
    Ok(vec![last_run(&e.tidy_last_run, now - when, when)])
}

/// Tidy finished at `when`, `ago` seconds before the run's instant.
fn last_run(c: &super::TidyLastRun, ago: i64, when: i64) -> Finding {
    let level = if ago > c.last_run_critical.0.as_secs() as i64 {
        Level::Critical
    } else if ago > c.last_run_warning.0.as_secs() as i64 {
        Level::Warning
    } else {
        return Finding::new(Level::Ok, format!("tidy last finished {}", date(when)));
    };
    let msg = format!(
        "tidy last finished {} ({} ago); check auto-tidy or the external tidy job",
        date(when),
        span(ago)
    );
    Finding::new(level, msg)
}

/// `time_finished` as Unix seconds (RFC 3339 text or a number); `None` when never.
fn finished(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) if !s.is_empty() => humantime::parse_rfc3339_weak(s)
            .ok()
            .or_else(|| humantime::parse_rfc3339(s).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

async fn too_many_certs(f: &mut Fetcher, e: &PkiHealthExpect) -> Found {
    let listing = f.list("certs").await?;
    if listing == Got::Denied {
        return Ok(vec![Finding::denied(
            &f.path_of("certs"),
            "list",
            "the stored certificates cannot be counted",
        )]);
    }
    let n = listing.keys().len() as u64;
    let c = &e.too_many_certs;
    let level = if n >= c.count_critical {
        Level::Critical
    } else if n >= c.count_warning {
        Level::Warning
    } else {
        return Ok(vec![Finding::new(
            Level::Ok,
            format!("{n} stored certificates, below {}", c.count_warning),
        )]);
    };
    Ok(vec![Finding::new(level, format!("{n} stored certificates; set no_store=true on roles, tidy periodically and shorten lifetimes"))])
}

/// Whether ACME is on; `Err` with the finding when `config/acme` cannot be read.
async fn acme_enabled(f: &mut Fetcher) -> Result<Result<bool, Finding>, VaultError> {
    let path = f.path_of("config/acme");
    Ok(match f.read("config/acme").await? {
        Got::Data(d) => Ok(flag(Some(&d), "enabled")),
        Got::Unsupported => Err(Finding::new(
            Level::InvalidVersion,
            format!("{path} is not supported by the server"),
        )),
        Got::Denied => Err(Finding::denied(
            &path,
            "read",
            "whether ACME is on is unknown",
        )),
        Got::Missing => Err(Finding::new(
            Level::NotApplicable,
            format!("{path} does not exist"),
        )),
    })
}

async fn acme_issuance(f: &mut Fetcher) -> Found {
    let on = match acme_enabled(f).await? {
        Ok(on) => on,
        Err(x) => return Ok(vec![x]),
    };
    if !on {
        return Ok(vec![acme_off(f).await?]);
    }
    let path = f.path_of("config/cluster");
    let url = match f.read("config/cluster").await? {
        Got::Denied => {
            return Ok(vec![Finding::denied(
                &path,
                "read",
                "the ACME directory cannot be located",
            )])
        }
        got => got
            .data()
            .and_then(|d| d.get("path"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    Ok(vec![match super::acme::reach(f, &url).await {
        Ok(()) => Finding::new(
            Level::Ok,
            format!("ACME is on and {url}/acme/directory answers"),
        ),
        Err(why) => Finding::new(
            Level::Warning,
            format!(
                "ACME is on but does not work: {why}; set path on {path} to the mount's https URL"
            ),
        ),
    }])
}

async fn acme_off(f: &mut Fetcher) -> Result<Finding, VaultError> {
    let certs = issuer_certs(f).await?;
    let mut roots = 0;
    for (id, der) in &certs {
        roots += usize::from(crate::certs::is_self_signed(&parse_cert(
            der,
            &f.path_of(&format!("issuer/{id}/json")),
        )?));
    }
    Ok(if certs.is_empty() || roots == certs.len() {
        Finding::new(
            Level::NotApplicable,
            "ACME is off and the mount holds only roots (or no issuers): ACME is not needed",
        )
    } else {
        Finding::new(Level::Informational, format!("ACME is off; consider turning it on ({} enabled=true) so clients can rotate themselves", f.path_of("config/acme")))
    })
}

async fn acme_headers(f: &mut Fetcher) -> Found {
    match acme_enabled(f).await? {
        Ok(true) => {}
        Ok(false) => {
            return Ok(vec![Finding::new(
                Level::NotApplicable,
                "ACME is off: no response headers needed",
            )])
        }
        Err(x) => return Ok(vec![x]),
    }
    let t = match tune(f).await? {
        Ok(t) => t,
        Err(x) => return Ok(vec![x]),
    };
    let need = ["Replay-Nonce", "Link", "Location"];
    let missing: Vec<&str> = need
        .into_iter()
        .filter(|h| !has_header(&t, "allowed_response_headers", h))
        .collect();
    Ok(vec![if missing.is_empty() {
        Finding::new(
            Level::Ok,
            "the mount returns the Replay-Nonce, Link and Location headers ACME needs",
        )
    } else {
        Finding::new(Level::Warning, format!("the mount does not return {} which ACME needs; tune allowed_response_headers to include Replay-Nonce, Link and Location", missing.join(", ")))
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Got {
        Got::Data(v)
    }

    fn levels(found: Found) -> Vec<Level> {
        found.unwrap().iter().map(|f| f.level).collect()
    }

    async fn check(name: &str, answers: &[(&str, Got)], e: &PkiHealthExpect) -> Vec<Level> {
        let mut f = Fetcher::seeded("pki", answers);
        levels(run(name, &mut f, e, 2_000_000_000).await)
    }

    #[test]
    fn ca_windows_differ_for_roots_and_intermediates() {
        use crate::rotate::material::testpki::ca;
        let root = ca("Root", None);
        let int = ca("Int", Some(&root));
        let e = PkiHealthExpect::default();
        for (pem, want) in [
            (&root.cert_pem, Level::Critical),
            (&int.cert_pem, Level::Informational),
        ] {
            let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            let c = p.parse_x509().unwrap();
            let after = c.validity().not_after.timestamp();
            let found = ca_finding("id", &c, &e, after - 100 * 86_400);
            assert_eq!(found.level, want, "{}", found.message);
            assert_eq!(
                ca_finding("id", &c, &e, after - 3000 * 86_400).level,
                Level::Ok
            );
        }
    }

    #[tokio::test]
    async fn roles_are_judged_one_by_one_and_denials_name_the_capability() {
        let e = PkiHealthExpect::default();
        let answers = [
            (
                "pki/roles?list=true",
                data(json!({"keys": ["web", "quiet"]})),
            ),
            (
                "pki/roles/web",
                data(
                    json!({"allow_localhost": true, "allowed_domains": ["example.com"], "no_store": false, "allow_wildcard_certificates": true}),
                ),
            ),
            (
                "pki/roles/quiet",
                data(
                    json!({"allow_localhost": false, "allowed_domains": [], "no_store": true, "allow_wildcard_certificates": true}),
                ),
            ),
            ("pki/config/crl", data(json!({"auto_rebuild": true}))),
        ];
        assert_eq!(
            check("role_allows_localhost", &answers, &e).await,
            [Level::Warning]
        );
        assert_eq!(
            check("role_no_store_false", &answers, &e).await,
            [Level::Informational]
        );
        assert_eq!(
            check("role_allows_glob_wildcards", &answers, &e).await,
            [Level::Ok]
        );
        let denied = [("pki/roles?list=true", Got::Denied)];
        let mut f = Fetcher::seeded("pki", &denied);
        let found = run("role_allows_localhost", &mut f, &e, 0).await.unwrap();
        assert_eq!(found[0].level, Level::InsufficientPermissions);
        assert!(
            found[0].message.contains("lacks `list` on pki/roles"),
            "{}",
            found[0].message
        );
        assert!(check("role_allows_localhost", &[], &e).await.is_empty());
    }

    #[tokio::test]
    async fn tidy_settings_and_history_use_the_thresholds() {
        let mut e = PkiHealthExpect::default();
        let slow = [(
            "pki/config/auto-tidy",
            data(json!({"enabled": true, "interval_duration": 691_200, "pause_duration": "300ms"})),
        )];
        assert_eq!(
            check("enable_auto_tidy", &slow, &e).await,
            [Level::Critical, Level::Warning]
        );
        let off = [("pki/config/auto-tidy", data(json!({"enabled": false})))];
        assert_eq!(
            check("enable_auto_tidy", &off, &e).await,
            [Level::Informational]
        );
        let never = [("pki/tidy-status", data(json!({"time_finished": null})))];
        assert_eq!(check("tidy_last_run", &never, &e).await, [Level::Critical]);
        // 2_000_000_000 is 2033-05-18T03:33:20Z; three days earlier is a warning by default.
        let recent = [(
            "pki/tidy-status",
            data(json!({"time_finished": "2033-05-15T03:00:00Z"})),
        )];
        assert_eq!(check("tidy_last_run", &recent, &e).await, [Level::Warning]);
        e.tidy_last_run.last_run_warning =
            crate::suite::Dur(std::time::Duration::from_secs(4 * 86_400));
        assert_eq!(check("tidy_last_run", &recent, &e).await, [Level::Ok]);
    }

    #[tokio::test]
    async fn counts_headers_and_audit_keys() {
        let mut e = PkiHealthExpect::default();
        let certs = [(
            "pki/certs?list=true",
            data(json!({"keys": ["01", "02", "03"]})),
        )];
        assert_eq!(check("too_many_certs", &certs, &e).await, [Level::Ok]);
        e.too_many_certs.count_warning = 3;
        assert_eq!(check("too_many_certs", &certs, &e).await, [Level::Warning]);
        let tune = json!({
            "passthrough_request_headers": ["if-modified-since"],
            "allowed_response_headers": ["Last-Modified", "Replay-Nonce", "Link"],
            "audit_non_hmac_request_keys": ["private_key"],
        });
        let answers = [
            ("sys/mounts/pki/tune", data(tune)),
            ("pki/config/acme", data(json!({"enabled": true}))),
        ];
        assert_eq!(
            check("allow_if_modified_since", &answers, &e).await,
            [Level::Ok]
        );
        assert_eq!(
            check("allow_acme_headers", &answers, &e).await,
            [Level::Warning]
        );
        let audit = check("audit_visibility", &answers, &e).await;
        assert_eq!(audit.iter().filter(|l| **l == Level::Warning).count(), 1);
        assert_eq!(
            audit.len(),
            VISIBLE_REQUEST.len() + VISIBLE_RESPONSE.len() + 1
        );
        e.audit_visibility.ignored_parameters = vec!["private_key".into()];
        assert!(!check("audit_visibility", &answers, &e)
            .await
            .contains(&Level::Warning));
    }
}
