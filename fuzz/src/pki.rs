//! A small test PKI made with rcgen: root → intermediate → leaves, for the seed corpora and
//! for the files the web-config target's TLS settings point at. Nothing here is secret.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate, its key, and the issuer it can sign with when it is a CA.
pub struct Made {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    issuer: Option<Issuer<'static, KeyPair>>,
}

/// The whole set.
pub struct Pki {
    pub root: Made,
    pub intermediate: Made,
    /// CN `app`, SANs `app.example.test`, `10.0.0.1`; serverAuth.
    pub leaf: Made,
    /// Ed25519, clientAuth only, email and URI SANs.
    pub client: Made,
    /// Self-signed, not a CA.
    pub lone: Made,
}

impl Pki {
    /// Generates a fresh set (new keys every time; the structure is what matters).
    pub fn generate() -> Pki {
        let root = ca("rotcheck fuzz root", None);
        let intermediate = ca("rotcheck fuzz intermediate", Some(&root));
        let leaf = leaf(&intermediate);
        let client = client(&intermediate);
        let lone = lone();
        Pki {
            root,
            intermediate,
            leaf,
            client,
            lone,
        }
    }
}

fn ca(cn: &str, parent: Option<&Made>) -> Made {
    let mut p = CertificateParams::new(vec![]).expect("no names");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "rotcheck");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    make(p, &KeyPair::generate().expect("keygen"), parent, true)
}

fn leaf(by: &Made) -> Made {
    let mut p = CertificateParams::new(vec!["app.example.test".into()]).expect("names");
    p.subject_alt_names
        .push(SanType::IpAddress([10, 0, 0, 1].into()));
    p.distinguished_name.push(DnType::CommonName, "app");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    make(p, &KeyPair::generate().expect("keygen"), Some(by), false)
}

fn client(by: &Made) -> Made {
    let mut p = CertificateParams::new(vec![]).expect("no names");
    p.distinguished_name.push(DnType::CommonName, "agent-app-a");
    p.subject_alt_names = vec![
        SanType::Rfc822Name("ops@example.test".try_into().expect("ascii")),
        SanType::URI("spiffe://example.test/agent".try_into().expect("ascii")),
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("keygen");
    make(p, &key, Some(by), false)
}

fn lone() -> Made {
    let p = CertificateParams::new(vec!["localhost".into()]).expect("names");
    make(p, &KeyPair::generate().expect("keygen"), None, false)
}

fn make(p: CertificateParams, key: &KeyPair, parent: Option<&Made>, is_ca: bool) -> Made {
    let cert = match parent.and_then(|m| m.issuer.as_ref()) {
        Some(issuer) => p.signed_by(key, issuer).expect("sign"),
        None => p.self_signed(key).expect("self-sign"),
    };
    let key_pem = key.serialize_pem();
    let issuer =
        is_ca.then(|| Issuer::new(p, KeyPair::from_pem(&key_pem).expect("own key reads back")));
    Made {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem,
        issuer,
    }
}
