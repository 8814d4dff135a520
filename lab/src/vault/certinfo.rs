//! The facts about a certificate the emulator looks at (names, serial, key ids, validity,
//! EKU, raw extensions), read once with x509-parser.

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Parsed certificate facts.
#[derive(Debug, Clone, Default)]
pub(crate) struct CertInfo {
    pub cn: String,
    pub dns: Vec<String>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
    pub ous: Vec<String>,
    pub orgs: Vec<String>,
    /// Big-endian serial bytes (no sign byte).
    pub serial: Vec<u8>,
    /// Serial in base 10, as cert auth reports it.
    pub serial_decimal: String,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// The leaf may be used for client auth (no EKU, `any`, or clientAuth).
    pub client_auth_ok: bool,
    /// (dotted OID, raw extension value).
    pub extensions: Vec<(String, Vec<u8>)>,
}

impl CertInfo {
    /// Parses DER; `None` if it is not a certificate.
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut info = CertInfo {
            cn: first_attr(cert.subject().iter_common_name()),
            ous: all_attrs(cert.subject().iter_organizational_unit()),
            orgs: all_attrs(cert.subject().iter_organization()),
            serial: strip_zeros(cert.raw_serial()),
            serial_decimal: cert.serial.to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            client_auth_ok: client_auth_ok(&cert),
            ..CertInfo::default()
        };
        info.read_extensions(&cert);
        Some(info)
    }

    fn read_extensions(&mut self, cert: &X509Certificate<'_>) {
        for ext in cert.extensions() {
            self.extensions
                .push((ext.oid.to_id_string(), ext.value.to_vec()));
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => self.ski = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    self.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        self.add_name(name);
                    }
                }
                _ => {}
            }
        }
    }

    fn add_name(&mut self, name: &GeneralName<'_>) {
        match name {
            GeneralName::DNSName(d) => self.dns.push(d.to_string()),
            GeneralName::RFC822Name(e) => self.emails.push(e.to_string()),
            GeneralName::URI(u) => self.uris.push(u.to_string()),
            _ => {}
        }
    }

    /// The value of an extension as an ASN.1 string, for `required_extensions`.
    pub fn extension_string(&self, oid: &str) -> Option<String> {
        let raw = &self.extensions.iter().find(|(o, _)| o == oid)?.1;
        let text = der_string(raw).unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned());
        Some(text)
    }

    /// The raw value of an extension, hex-encoded (for `hex:` required extensions).
    pub fn extension_hex(&self, oid: &str) -> Option<String> {
        let raw = &self.extensions.iter().find(|(o, _)| o == oid)?.1;
        Some(raw.iter().map(|b| format!("{b:02x}")).collect())
    }
}

fn first_attr<'a>(
    mut it: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> String {
    it.next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn all_attrs<'a>(
    it: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Vec<String> {
    it.filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect()
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let i = b
        .iter()
        .position(|x| *x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    b[i..].to_vec()
}

fn client_auth_ok(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(Some(eku)) => eku.value.any || eku.value.client_auth,
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Decodes a DER string type (UTF8String, PrintableString, IA5String, …).
fn der_string(raw: &[u8]) -> Option<String> {
    let tag = *raw.first()?;
    if !matches!(tag, 0x0c | 0x13 | 0x16 | 0x14 | 0x1a | 0x1e) {
        return None;
    }
    let len = usize::from(*raw.get(1)?);
    let body = raw.get(2..2 + len)?;
    String::from_utf8(body.to_vec()).ok()
}
