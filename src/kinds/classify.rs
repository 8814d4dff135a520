//! Connection failure classification (DESIGN.md "Results"): maps I/O and rustls errors to a
//! [`FailureClass`], the TLS alert name, and one line saying what was expected, what was
//! found and what to do. Shared by every probe that opens a connection.

use crate::model::{FailureClass, ProbeError};
use std::io;
use std::time::Duration;

/// Where in the connection a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Resolve,
    Connect,
    Handshake,
    /// The brief read after the handshake that catches a late client-cert rejection.
    AfterHandshake,
    /// Sending an HTTP request and reading its response (the `http` kind).
    Exchange,
}

impl Phase {
    fn during(self) -> &'static str {
        match self {
            Phase::Resolve => "during the DNS lookup",
            Phase::Connect => "while connecting",
            Phase::Handshake => "during the handshake",
            Phase::AfterHandshake => "right after the handshake",
            Phase::Exchange => "during the HTTP exchange",
        }
    }
}

/// What the classifier knows about the peer, for messages.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// `host:port` as configured.
    pub addr: String,
    /// The SNI sent, when any.
    pub sni: Option<String>,
    /// The first bytes the peer sent (up to 64).
    pub head: Vec<u8>,
    /// How many bytes the peer sent in all.
    pub received: u64,
    /// How far the server's handshake got (`ServerHello, Certificate, …`); `None` before a
    /// ServerHello.
    pub reached: Option<String>,
    /// The server finished its TLS 1.2 flight (ServerHelloDone) and waited for us.
    pub server_done: bool,
    /// Critical extensions of the presented leaf that rustls does not support (OIDs).
    pub unsupported_critical: Vec<String>,
}

/// A classified connection failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// The TLS alert name when `class` is `TlsAlert` (snake_case, e.g. `certificate_required`).
    pub alert: Option<String>,
    pub message: String,
}

impl Failure {
    fn new(class: FailureClass, message: String) -> Self {
        Failure {
            class,
            alert: None,
            message,
        }
    }

    /// The result-model form.
    pub fn to_probe_error(&self) -> ProbeError {
        let mut e = ProbeError::connect(self.class, self.message.clone());
        e.alert = self.alert.clone();
        e
    }
}

/// A DNS lookup that failed or found nothing.
pub fn dns(host: &str, detail: &str) -> Failure {
    Failure::new(
        FailureClass::Dns,
        format!("cannot resolve {host:?} ({detail}); expected an address for it: check the name, /etc/hosts and the DNS servers"),
    )
}

/// The deadline passed.
pub fn timeout(phase: Phase, peer: &Peer, budget: Duration) -> Failure {
    let t = crate::human::duration(budget);
    let msg = match phase {
        Phase::Resolve => format!("the DNS lookup for {} did not finish within {t}; is the resolver reachable?", peer.addr),
        Phase::Connect => format!("no TCP connection to {} within {t} (SYN unanswered); is a firewall dropping packets, or is the host down?", peer.addr),
        _ if peer.received == 0 => format!("connected to {} but got no TLS answer within {t}; the listener accepted and stalled: is the process hung, or is this a port that waits for the client to speak first?", peer.addr),
        _ => format!("the TLS handshake with {} did not finish within {t} (the peer stopped after {} bytes{}); is the server overloaded or hung?", peer.addr, peer.received, sent(peer)),
    };
    Failure::new(FailureClass::Timeout, msg)
}

/// Classifies an I/O error (which may wrap a rustls error) from connect, handshake or read.
pub fn classify(e: &io::Error, phase: Phase, peer: &Peer) -> Failure {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return classify_tls(tls, phase, peer);
    }
    match class_of_io(e) {
        FailureClass::Refused => refused(peer),
        FailureClass::Reset => reset(phase, peer),
        FailureClass::Unreachable => Failure::new(
            FailureClass::Unreachable,
            format!("no route to {} ({e}); expected the host to be reachable: check the address, routing and firewalls", peer.addr),
        ),
        FailureClass::Eof => eof(phase, peer),
        FailureClass::Timeout => Failure::new(
            FailureClass::Timeout,
            format!("the connection to {} timed out {} ({e}); is a firewall dropping packets?", peer.addr, phase.during()),
        ),
        class => Failure::new(
            class,
            format!("I/O error {} with {}: {e}", phase.during(), peer.addr),
        ),
    }
}

/// The class of a plain I/O error.
pub fn class_of_io(e: &io::Error) -> FailureClass {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => FailureClass::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => FailureClass::Reset,
        K::HostUnreachable | K::NetworkUnreachable => FailureClass::Unreachable,
        K::UnexpectedEof => FailureClass::Eof,
        K::TimedOut => FailureClass::Timeout,
        _ => match e.raw_os_error() {
            Some(101) | Some(113) => FailureClass::Unreachable,
            Some(104) => FailureClass::Reset,
            Some(111) => FailureClass::Refused,
            _ => FailureClass::Io,
        },
    }
}

fn refused(peer: &Peer) -> Failure {
    Failure::new(
        FailureClass::Refused,
        format!("connection refused by {} (errno 111); expected a listener on that port: is the service running and bound to this address?", peer.addr),
    )
}

fn reset(phase: Phase, peer: &Peer) -> Failure {
    let hint = match phase {
        Phase::AfterHandshake => "the server dropped us after the handshake: does it reject our client certificate?",
        Phase::Exchange => "the server dropped us before a complete response: does it reject our client certificate, or did the app behind it crash?",
        _ => "the listener is up but dropped us: is the process restarting, or does it require a client cert?",
    };
    Failure::new(
        FailureClass::Reset,
        format!(
            "connection reset by peer (errno 104) {} with {}{}; {hint}",
            phase.during(),
            peer.addr,
            sent(peer)
        ),
    )
}

/// `, after its ServerHello, Certificate` when the server's handshake got that far.
fn sent(peer: &Peer) -> String {
    peer.reached
        .as_deref()
        .map(|r| format!(", after its {r}"))
        .unwrap_or_default()
}

fn eof(phase: Phase, peer: &Peer) -> Failure {
    let sni = peer.sni.as_deref().unwrap_or("none");
    let msg = match (phase, &peer.reached) {
        (Phase::Exchange, _) => format!("{} closed the connection before a complete HTTP response, without close_notify; expected an answer to our request: does it reject our client certificate, or did the app behind it crash? See the server's log", peer.addr),
        (Phase::AfterHandshake, _) => format!("{} closed the connection right after the handshake without close_notify; expected it to wait for a request: does it reject our client certificate?", peer.addr),
        (_, None) => format!("{} closed the connection during the handshake after {} bytes, without a TLS alert and before any ServerHello; expected a ServerHello: is this a TLS port, and does the server accept our SNI ({sni})?", peer.addr, peer.received),
        (_, Some(r)) if peer.server_done => format!("{} closed the connection during the handshake without a TLS alert, after its {r} ({} bytes): it stopped when our certificate, key exchange and Finished arrived; expected its Finished: does it reject our client certificate or key exchange? See the server's log", peer.addr, peer.received),
        (_, Some(r)) => format!("{} closed the connection during the handshake without a TLS alert, after its {r} ({} bytes); expected it to finish the handshake: is the server crashing mid-handshake, or is a proxy cutting the connection? See the server's log", peer.addr, peer.received),
    };
    Failure::new(FailureClass::Eof, msg)
}

fn classify_tls(e: &rustls::Error, phase: Phase, peer: &Peer) -> Failure {
    match e {
        rustls::Error::AlertReceived(a) => alert(u8::from(*a), phase, peer),
        _ if !looks_like_tls(&peer.head) => not_tls(peer),
        rustls::Error::InvalidCertificate(c) => unusable_certificate(c, peer),
        rustls::Error::PeerIncompatible(p) => Failure::new(
            FailureClass::Protocol,
            format!("{} speaks TLS but nothing rotcheck accepts ({p:?}); expected TLS 1.2 or 1.3 with a modern cipher suite", peer.addr),
        ),
        rustls::Error::NoCertificatesPresented => Failure::new(
            FailureClass::Protocol,
            format!("{} presented no certificate; expected a server certificate chain", peer.addr),
        ),
        other => Failure::new(
            FailureClass::Protocol,
            format!("{} broke the TLS protocol {} ({other}); expected a well-formed TLS 1.2/1.3 handshake: is a proxy or load balancer in the way?", peer.addr, phase.during()),
        ),
    }
}

/// The presented certificate could not verify the handshake: say why the certificate itself
/// is unusable when it is, and blame the signature only when it is the signature.
fn unusable_certificate(c: &rustls::CertificateError, peer: &Peer) -> Failure {
    use rustls::CertificateError as C;
    let msg = match c {
        C::BadSignature => "the server's handshake signature does not verify with the key of the certificate it presented; expected the server to hold its certificate's key: wrong key file installed, or an RSA key under 2048 bits?".into(),
        C::BadEncoding => format!("{} presented a leaf certificate that is not valid DER; expected a well-formed X.509 certificate: reissue it", peer.addr),
        C::Other(o) if is_critical_extension(o) => critical_extension(peer),
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!("{} presented a certificate whose key or signature algorithm rustls does not support; expected RSA (2048+ bits), ECDSA P-256/P-384 or Ed25519", peer.addr),
        other => format!("{} presented a certificate rustls cannot use to verify the handshake ({other}); expected a well-formed X.509 certificate with a supported key", peer.addr),
    };
    Failure::new(FailureClass::Protocol, msg)
}

fn is_critical_extension(o: &rustls::OtherError) -> bool {
    matches!(
        o.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::UnsupportedCriticalExtension)
    )
}

fn critical_extension(peer: &Peer) -> String {
    let which = match peer.unsupported_critical.as_slice() {
        [] => "an unsupported critical extension".to_string(),
        [one] => format!("an unsupported critical extension ({one})"),
        many => format!("unsupported critical extensions ({})", many.join(", ")),
    };
    format!("{} presented a leaf certificate with {which}; TLS clients must refuse a certificate with a critical extension they do not know; expected only standard extensions to be critical: reissue it without marking that extension critical", peer.addr)
}

/// A TLS record starts with content type 20..=24 and major version 3.
fn looks_like_tls(head: &[u8]) -> bool {
    match head {
        [] => true,
        [t] => (20..=24).contains(t),
        [t, v, ..] => (20..=24).contains(t) && *v == 3,
    }
}

fn not_tls(peer: &Peer) -> Failure {
    Failure::new(
        FailureClass::Protocol,
        format!(
            "{} does not speak TLS: it answered {}; expected a TLS ServerHello: is this a plain HTTP (or other) port?",
            peer.addr,
            printable(&peer.head)
        ),
    )
}

/// The first bytes as text when they are text (`"HTTP/1.1 400 Bad Request"`), else as hex.
fn printable(head: &[u8]) -> String {
    let line: &[u8] = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.is_empty() && line.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(line))
    } else {
        let hex: Vec<String> = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

fn alert(code: u8, phase: Phase, peer: &Peer) -> Failure {
    let name = alert_name(code);
    let hint = alert_hint(&name, peer);
    Failure {
        class: FailureClass::TlsAlert,
        message: format!(
            "{} sent TLS alert {name} {}; {hint}",
            peer.addr,
            phase.during()
        ),
        alert: Some(name),
    }
}

fn alert_hint(name: &str, peer: &Peer) -> String {
    let sni = peer.sni.as_deref().unwrap_or("(none: connecting by IP)");
    match name {
        "certificate_required" => "it requires a client certificate: set client_cert and client_key".into(),
        "bad_certificate" | "unknown_ca" | "certificate_unknown" | "unsupported_certificate" | "access_denied" => {
            "it rejected our client certificate (or its absence): check that its client CA trusts our client_cert".into()
        }
        "certificate_expired" => "it says our client certificate expired: renew client_cert".into(),
        "certificate_revoked" => "it says our client certificate is revoked: issue a new one".into(),
        "unrecognized_name" => format!("it has no certificate for SNI {sni}: check server_name"),
        "handshake_failure" => "no common parameters (cipher suite, TLS version, signature scheme), or a client certificate is required".into(),
        "protocol_version" => "it does not accept TLS 1.2 or 1.3: upgrade its TLS settings".into(),
        "no_application_protocol" => "it supports none of the ALPN protocols we offered: check tls.alpn".into(),
        _ => "expected a completed handshake: see the server's log for why it refused".into(),
    }
}

/// IANA TLS alert names in snake_case; unknown codes as `alert_<n>`.
pub fn alert_name(code: u8) -> String {
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        n => return format!("alert_{n}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(head: &[u8]) -> Peer {
        Peer {
            addr: "127.0.0.1:1".into(),
            head: head.to_vec(),
            received: head.len() as u64,
            ..Default::default()
        }
    }

    #[test]
    fn io_kinds_map_to_classes() {
        let p = peer(b"");
        let c = |k| classify(&io::Error::from(k), Phase::Handshake, &p).class;
        assert_eq!(c(io::ErrorKind::ConnectionRefused), FailureClass::Refused);
        assert_eq!(c(io::ErrorKind::ConnectionReset), FailureClass::Reset);
        assert_eq!(c(io::ErrorKind::UnexpectedEof), FailureClass::Eof);
        assert_eq!(c(io::ErrorKind::Other), FailureClass::Io);
        let raw = classify(&io::Error::from_raw_os_error(113), Phase::Connect, &p);
        assert_eq!(raw.class, FailureClass::Unreachable);
    }

    #[test]
    fn alerts_are_named_in_snake_case() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        let f = classify(&e, Phase::AfterHandshake, &peer(&[21, 3, 3]));
        assert_eq!(f.class, FailureClass::TlsAlert);
        assert_eq!(f.alert.as_deref(), Some("certificate_required"));
        assert_eq!(alert_name(112), "unrecognized_name");
        assert_eq!(alert_name(200), "alert_200");
    }

    #[test]
    fn plain_http_is_protocol_and_quoted() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("x".into()),
        );
        let f = classify(&e, Phase::Handshake, &peer(b"HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(f.class, FailureClass::Protocol);
        assert!(
            f.message.contains("\"HTTP/1.1 400 Bad Request\""),
            "{}",
            f.message
        );
    }
}
