//! TLS server plumbing: a certificate resolver that can be swapped at runtime (SIGHUP reload),
//! Vault's default "request but do not verify" client-certificate mode, and the
//! `tls_require_and_verify_client_cert` mode.

use crate::LabError;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use std::sync::{Arc, RwLock};

/// The ring provider every lab TLS endpoint uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A chain and key checked to belong together.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, LabError> {
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

/// The server certificate, replaceable while the listener runs.
#[derive(Debug)]
pub(crate) struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl SwappableCert {
    /// Starts with `ck`.
    pub fn new(ck: Arc<CertifiedKey>) -> SwappableCert {
        SwappableCert {
            current: RwLock::new(ck),
        }
    }

    /// Serves `ck` on new handshakes.
    pub fn set(&self, ck: Arc<CertifiedKey>) {
        if let Ok(mut cur) = self.current.write() {
            *cur = ck;
        }
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Go's `tls.RequestClientCert`: ask for a certificate, accept whatever comes (cert auth
/// verifies it later), but still check the handshake signature proves key possession.
#[derive(Debug)]
struct RequestClientCert {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// How the listener treats client certificates.
pub(crate) enum ClientCerts {
    /// Vault's default: request, do not verify.
    Request,
    /// `tls_require_and_verify_client_cert`: refuse the handshake without a cert from these CAs.
    Require(Vec<CertificateDer<'static>>),
    /// Never ask.
    None,
}

/// A server config with the given certificate source and client-certificate mode.
pub(crate) fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    clients: ClientCerts,
) -> Result<ServerConfig, LabError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match clients {
        ClientCerts::None => builder.with_no_client_auth().with_cert_resolver(resolver),
        ClientCerts::Request => {
            let algs = provider.signature_verification_algorithms;
            let verifier = Arc::new(RequestClientCert { algs });
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver)
        }
        ClientCerts::Require(cas) => {
            let verifier = require_verifier(cas, provider)?;
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver)
        }
    };
    Ok(config)
}

fn require_verifier(
    cas: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, LabError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca)?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| LabError::invalid("client CA set", e.to_string()))
}
