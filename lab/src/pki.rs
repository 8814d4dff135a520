//! Lab PKI: a self-signed root CA, an intermediate under it (the `pki-prod` issuer), and
//! helpers to issue server and client certificates or sign CSRs. Real ECDSA P-256 keys and
//! real signatures (rcgen on ring), usable by any test that needs a PKI.
//!
//! ```no_run
//! use rotcheck_lab::pki::{LabPki, LeafSpec};
//! use std::time::Duration;
//! let pki = LabPki::generate()?;
//! let server = pki.issue(&LeafSpec::server("vault.test", &["vault.test", "127.0.0.1"]))?;
//! let agent = pki.issue(&LeafSpec::client("agent-a").valid_for(Duration::from_secs(3600)))?;
//! # Ok::<(), rotcheck_lab::LabError>(())
//! ```

use crate::encode;
use crate::LabError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// Common name of the lab root CA made by [`LabPki::generate`].
pub const ROOT_CN: &str = "rotcheck lab root CA";
/// Common name of the lab intermediate CA (the issuer behind the `pki-prod` mount).
pub const INTERMEDIATE_CN: &str = "rotcheck lab pki-prod intermediate CA";

/// A certificate with its private key.
#[derive(Clone)]
pub struct CertKey {
    cert: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey")
            .field("cert_len", &self.cert.len())
            .finish_non_exhaustive()
    }
}

impl CertKey {
    /// Builds one from DER parts (a certificate and its PKCS#8 key).
    pub fn from_der(cert: CertificateDer<'static>, key_pkcs8: Vec<u8>) -> CertKey {
        CertKey { cert, key_pkcs8 }
    }

    /// The certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate as a PEM file body (ends with a newline).
    pub fn cert_pem(&self) -> String {
        encode::pem("CERTIFICATE", &self.cert) + "\n"
    }

    /// The private key for rustls.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The private key as a PKCS#8 PEM file body (ends with a newline).
    pub fn key_pem(&self) -> String {
        encode::pem("PRIVATE KEY", &self.key_pkcs8) + "\n"
    }

    /// The private key in PKCS#8 DER.
    pub fn key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }
}

/// A validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: SystemTime,
    /// notAfter.
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from one minute ago for `d`.
    pub fn for_duration(d: Duration) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(60),
            not_after: now + d,
        }
    }

    /// An explicit window.
    pub fn between(not_before: SystemTime, not_after: SystemTime) -> Validity {
        Validity {
            not_before,
            not_after,
        }
    }

    /// A window that ended an hour ago (started two days ago).
    pub fn expired() -> Validity {
        let now = SystemTime::now();
        Validity::between(
            now - Duration::from_secs(172_800),
            now - Duration::from_secs(3600),
        )
    }

    /// A window that starts tomorrow.
    pub fn not_yet_valid() -> Validity {
        let now = SystemTime::now();
        Validity::between(
            now + Duration::from_secs(86_400),
            now + Duration::from_secs(172_800),
        )
    }
}

/// What to put in a leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject CN.
    pub common_name: String,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addrs: Vec<IpAddr>,
    /// Subject O, if any.
    pub organization: Option<String>,
    /// Subject OU, if any.
    pub organizational_unit: Option<String>,
    /// Add the serverAuth EKU.
    pub server_auth: bool,
    /// Add the clientAuth EKU.
    pub client_auth: bool,
    /// Validity window.
    pub validity: Validity,
}

impl LeafSpec {
    /// A server certificate (serverAuth) for `names`; entries that parse as IPs become IP SANs.
    /// Valid for 30 days.
    pub fn server(common_name: &str, names: &[&str]) -> LeafSpec {
        let mut spec = LeafSpec::base(common_name, true, false);
        for name in names {
            match name.parse::<IpAddr>() {
                Ok(ip) => spec.ip_addrs.push(ip),
                Err(_) => spec.dns_names.push((*name).to_string()),
            }
        }
        spec
    }

    /// A client certificate (clientAuth) with only a CN. Valid for 30 days.
    pub fn client(common_name: &str) -> LeafSpec {
        LeafSpec::base(common_name, false, true)
    }

    fn base(common_name: &str, server_auth: bool, client_auth: bool) -> LeafSpec {
        LeafSpec {
            common_name: common_name.to_string(),
            dns_names: Vec::new(),
            ip_addrs: Vec::new(),
            organization: None,
            organizational_unit: None,
            server_auth,
            client_auth,
            validity: Validity::for_duration(Duration::from_secs(30 * 86_400)),
        }
    }

    /// Valid from a minute ago for `d`.
    pub fn valid_for(mut self, d: Duration) -> LeafSpec {
        self.validity = Validity::for_duration(d);
        self
    }

    /// An explicit validity window.
    pub fn validity(mut self, v: Validity) -> LeafSpec {
        self.validity = v;
        self
    }

    /// Sets the EKUs (serverAuth, clientAuth); both false means no EKU extension.
    pub fn eku(mut self, server_auth: bool, client_auth: bool) -> LeafSpec {
        self.server_auth = server_auth;
        self.client_auth = client_auth;
        self
    }

    /// Adds a DNS SAN.
    pub fn dns(mut self, name: &str) -> LeafSpec {
        self.dns_names.push(name.to_string());
        self
    }

    /// Sets the subject OU.
    pub fn ou(mut self, ou: &str) -> LeafSpec {
        self.organizational_unit = Some(ou.to_string());
        self
    }

    /// rcgen parameters for this leaf (fresh random serial, AKI on).
    pub(crate) fn params(&self) -> Result<CertificateParams, LabError> {
        let mut p = CertificateParams::default();
        p.distinguished_name = self.subject();
        p.subject_alt_names = self.sans()?;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        if self.server_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if self.client_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        set_validity(&mut p, self.validity);
        p.serial_number = Some(random_serial());
        p.use_authority_key_identifier_extension = true;
        Ok(p)
    }

    fn subject(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        if let Some(o) = &self.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &self.organizational_unit {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        if !self.common_name.is_empty() {
            dn.push(DnType::CommonName, self.common_name.as_str());
        }
        dn
    }

    fn sans(&self) -> Result<Vec<SanType>, LabError> {
        let mut out = Vec::new();
        for name in &self.dns_names {
            let ia5 = name
                .clone()
                .try_into()
                .map_err(LabError::cert(format!("DNS SAN {name}")))?;
            out.push(SanType::DnsName(ia5));
        }
        out.extend(self.ip_addrs.iter().map(|ip| SanType::IpAddress(*ip)));
        Ok(out)
    }
}

/// A random positive 20-byte serial without a leading zero byte.
pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes = encode::random_bytes(20);
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

fn set_validity(p: &mut CertificateParams, v: Validity) {
    p.not_before = to_offset(v.not_before);
    p.not_after = to_offset(v.not_after);
}

fn to_offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// A certificate authority that can sign.
pub struct Ca {
    cert: CertKey,
    issuer: Issuer<'static, KeyPair>,
    common_name: String,
    not_after: SystemTime,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A self-signed root CA.
    pub fn self_signed_root(common_name: &str, validity: Validity) -> Result<Ca, LabError> {
        let key = KeyPair::generate().map_err(LabError::cert("root CA key"))?;
        let params = ca_params(common_name, validity, None);
        let cert = params
            .self_signed(&key)
            .map_err(LabError::cert(common_name))?;
        Ok(Ca::assemble(
            cert.der().clone(),
            key,
            params,
            common_name,
            validity,
        ))
    }

    /// A subordinate CA signed by this one.
    pub fn issue_intermediate(
        &self,
        common_name: &str,
        validity: Validity,
    ) -> Result<Ca, LabError> {
        let key = KeyPair::generate().map_err(LabError::cert("intermediate CA key"))?;
        let params = ca_params(common_name, validity, Some(0));
        let der = self.sign_params(&params, &key)?;
        Ok(Ca::assemble(der, key, params, common_name, validity))
    }

    fn assemble(
        der: CertificateDer<'static>,
        key: KeyPair,
        params: CertificateParams,
        common_name: &str,
        validity: Validity,
    ) -> Ca {
        let cert = CertKey::from_der(der, key.serialize_der());
        Ca {
            cert,
            issuer: Issuer::new(params, key),
            common_name: common_name.to_string(),
            not_after: validity.not_after,
        }
    }

    /// This CA's certificate (and key).
    pub fn cert(&self) -> &CertKey {
        &self.cert
    }

    /// This CA's certificate as a PEM file body.
    pub fn cert_pem(&self) -> String {
        self.cert.cert_pem()
    }

    /// Subject CN.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// notAfter of the CA certificate.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Issues a leaf with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<CertKey, LabError> {
        let key = KeyPair::generate().map_err(LabError::cert("leaf key"))?;
        let der = self.sign_params(&spec.params()?, &key)?;
        Ok(CertKey::from_der(der, key.serialize_der()))
    }

    /// Signs a PEM CSR: the key comes from the CSR, everything else from `spec`.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        spec: &LeafSpec,
    ) -> Result<CertificateDer<'static>, LabError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(LabError::cert("parse CSR"))?;
        self.sign_params(&spec.params()?, &csr.public_key)
    }

    /// Signs arbitrary parameters for a public key.
    pub(crate) fn sign_params(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
    ) -> Result<CertificateDer<'static>, LabError> {
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(LabError::cert("sign"))?;
        Ok(cert.der().clone())
    }
}

fn ca_params(common_name: &str, validity: Validity, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::OrganizationName, "rotcheck lab");
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.is_ca = match path_len {
        Some(n) => IsCa::Ca(BasicConstraints::Constrained(n)),
        None => IsCa::Ca(BasicConstraints::Unconstrained),
    };
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut p, validity);
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = path_len.is_some();
    p
}

/// The lab's two-level PKI: root → intermediate → leaves.
#[derive(Debug)]
pub struct LabPki {
    root: Ca,
    intermediate: Ca,
}

impl LabPki {
    /// A fresh PKI: [`ROOT_CN`] (10 years) over [`INTERMEDIATE_CN`] (5 years).
    pub fn generate() -> Result<LabPki, LabError> {
        LabPki::with_names(ROOT_CN, INTERMEDIATE_CN)
    }

    /// A fresh PKI with chosen CA names (a "foreign" PKI for wrong-chain tests).
    pub fn with_names(root_cn: &str, intermediate_cn: &str) -> Result<LabPki, LabError> {
        let year = 365 * 86_400;
        let root = Ca::self_signed_root(root_cn, Validity::for_duration(secs(10 * year)))?;
        let intermediate =
            root.issue_intermediate(intermediate_cn, Validity::for_duration(secs(5 * year)))?;
        Ok(LabPki { root, intermediate })
    }

    /// The root CA.
    pub fn root(&self) -> &Ca {
        &self.root
    }

    /// The intermediate CA that issues leaves.
    pub fn intermediate(&self) -> &Ca {
        &self.intermediate
    }

    /// Issues a leaf from the intermediate.
    pub fn issue(&self, spec: &LeafSpec) -> Result<CertKey, LabError> {
        self.intermediate.issue(spec)
    }

    /// Intermediate then root, as a PEM file body (what clients trust).
    pub fn ca_chain_pem(&self) -> String {
        self.intermediate.cert_pem() + &self.root.cert_pem()
    }

    /// Leaf then intermediate, as a PEM file body (what a server presents).
    pub fn fullchain_pem(&self, leaf: &CertKey) -> String {
        leaf.cert_pem() + &self.intermediate.cert_pem()
    }

    /// Leaf then intermediate, in DER (what a rustls server presents).
    pub fn fullchain_der(&self, leaf: &CertKey) -> Vec<CertificateDer<'static>> {
        vec![
            leaf.cert_der().clone(),
            self.intermediate.cert().cert_der().clone(),
        ]
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A self-signed leaf (no CA behind it), for "self_signed" failure tests.
pub fn self_signed(spec: &LeafSpec) -> Result<CertKey, LabError> {
    let key = KeyPair::generate().map_err(LabError::cert("self-signed key"))?;
    let cert = spec
        .params()?
        .self_signed(&key)
        .map_err(LabError::cert("self-signed"))?;
    Ok(CertKey::from_der(cert.der().clone(), key.serialize_der()))
}

/// Parses every `CERTIFICATE` block of a PEM text.
pub fn parse_pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// Parses the first private key of a PEM text (PKCS#8, SEC1 or PKCS#1).
pub fn parse_pem_key(pem: &str) -> Option<PrivateKeyDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()
}
