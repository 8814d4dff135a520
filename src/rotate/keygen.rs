//! Local keys for `issue --csr`: the private key is generated on this machine (ECDSA P-256
//! in-process by default; RSA through the `openssl` binary, since ring cannot generate RSA
//! keys) and only a CSR goes to Vault. `openssl` is run by absolute path, never looked up in
//! PATH: `/usr/bin/openssl`, or the absolute path in `ROTCHECK_OPENSSL`.

use super::secret::Secret;
use super::spec::KeyType;
use rcgen::{CertificateParams, DnType, KeyPair, SanType};

/// A new key and its CSR.
pub struct Generated {
    pub key: Secret,
    pub csr_pem: String,
    /// `ECDSA P-256`, `RSA 2048`.
    pub kind: String,
}

/// Generates a key of the asked type and a CSR for the CN and SANs.
pub fn generate(
    kind: KeyType,
    bits: Option<u32>,
    cn: &str,
    sans: &[String],
    ips: &[String],
) -> Result<Generated, String> {
    let (pair, key, label) = match kind {
        KeyType::Ec => ec()?,
        KeyType::Rsa => rsa(bits.unwrap_or(2048))?,
    };
    let csr_pem = csr(&pair, cn, sans, ips)?;
    Ok(Generated {
        key,
        csr_pem,
        kind: label,
    })
}

fn ec() -> Result<(KeyPair, Secret, String), String> {
    let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("cannot generate an ECDSA P-256 key: {e}"))?;
    let pem = Secret::new(pair.serialize_pem());
    Ok((pair, pem, "ECDSA P-256".into()))
}

fn rsa(bits: u32) -> Result<(KeyPair, Secret, String), String> {
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "RSA keys need 2048 to 8192 bits, got {bits}; Vault refuses keys under 2048 bits"
        ));
    }
    let openssl = openssl_path()?;
    let out = std::process::Command::new(&openssl)
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}"), "-outform", "PEM"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} to generate an RSA key ({e}); install openssl, set {OPENSSL_ENV} to its absolute path, or use --key-type ec", openssl.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!("openssl genpkey failed ({}): {err}", out.status));
    }
    let key = Secret::new(
        String::from_utf8(out.stdout).map_err(|_| "openssl wrote a non-UTF-8 key".to_string())?,
    );
    let pair = KeyPair::from_pem_and_sign_algo(key.expose(), &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("the RSA key from openssl is unusable: {e}"))?;
    Ok((pair, key, format!("RSA {bits}")))
}

/// The variable that names the `openssl` binary for RSA keys.
pub const OPENSSL_ENV: &str = "ROTCHECK_OPENSSL";
/// Where `openssl` is unless [`OPENSSL_ENV`] says otherwise.
pub const DEFAULT_OPENSSL: &str = "/usr/bin/openssl";

/// The `openssl` binary: [`OPENSSL_ENV`] (an absolute path) or [`DEFAULT_OPENSSL`].
fn openssl_path() -> Result<std::path::PathBuf, String> {
    openssl_from(std::env::var_os(OPENSSL_ENV))
}

fn openssl_from(var: Option<std::ffi::OsString>) -> Result<std::path::PathBuf, String> {
    let p = match var.filter(|v| !v.is_empty()) {
        Some(v) => std::path::PathBuf::from(v),
        None => return Ok(DEFAULT_OPENSSL.into()),
    };
    if p.is_absolute() {
        return Ok(p);
    }
    Err(format!(
        "{OPENSSL_ENV}={} is not an absolute path; rotcheck never looks openssl up in PATH; give e.g. {DEFAULT_OPENSSL}",
        p.display()
    ))
}

fn csr(pair: &KeyPair, cn: &str, sans: &[String], ips: &[String]) -> Result<String, String> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    for s in sans {
        let san = if s.contains('@') {
            SanType::Rfc822Name(
                s.clone()
                    .try_into()
                    .map_err(|_| format!("bad email SAN {s:?}"))?,
            )
        } else {
            SanType::DnsName(
                s.clone()
                    .try_into()
                    .map_err(|_| format!("bad DNS SAN {s:?}"))?,
            )
        };
        p.subject_alt_names.push(san);
    }
    for ip in ips {
        let addr = ip
            .parse()
            .map_err(|_| format!("bad IP SAN {ip:?}; write e.g. 127.0.0.1"))?;
        p.subject_alt_names.push(SanType::IpAddress(addr));
    }
    let req = p
        .serialize_request(pair)
        .map_err(|e| format!("cannot build the CSR: {e}"))?;
    req.pem().map_err(|e| format!("cannot encode the CSR: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_key_and_csr() {
        let g = generate(
            KeyType::Ec,
            None,
            "a.example",
            &["a.example".into()],
            &["127.0.0.1".into()],
        )
        .unwrap();
        assert!(g.csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(g.key.expose().contains("PRIVATE KEY"));
        assert_eq!(format!("{:?}", g.key), "Secret([redacted])");
        assert_eq!(g.kind, "ECDSA P-256");
    }

    #[test]
    fn openssl_is_never_looked_up_in_path() {
        assert_eq!(
            openssl_from(None).unwrap(),
            std::path::PathBuf::from("/usr/bin/openssl")
        );
        let e = openssl_from(Some("openssl".into())).unwrap_err();
        assert!(e.contains("not an absolute path"), "{e}");
        let p = openssl_from(Some("/opt/ssl/bin/openssl".into())).unwrap();
        assert_eq!(p, std::path::PathBuf::from("/opt/ssl/bin/openssl"));
    }

    #[test]
    fn rsa_key_via_openssl() {
        let g = generate(KeyType::Rsa, Some(2048), "a.example", &[], &[]).unwrap();
        assert_eq!(g.kind, "RSA 2048");
        assert!(rsa(1024).is_err());
    }
}
