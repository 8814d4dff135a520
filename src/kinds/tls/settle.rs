//! After the handshake: a TLS 1.3 server rejects a client certificate (or its absence) only
//! once it has read our Finished, so its alert arrives after the handshake completed on our
//! side. This module records what tells us whether that can happen — did the server send a
//! CertificateRequest, did it send a NewSessionTicket — and waits only as long as it can
//! matter: not at all when the server asked for no certificate, and until the first ticket,
//! data, close_notify or alert when it did.

use rustls::client::{ClientSessionStore, ResolvesClientCert, Resumption, Tls12Resumption};
use rustls::client::{Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, NamedGroup, SignatureScheme};
use rustls_pki_types::ServerName;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{timeout_at, Instant};

/// The longest wait after the handshake for a late client-certificate rejection.
pub const LINGER: Duration = Duration::from_millis(150);

/// How the wait after the handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// No wait: TLS 1.2 (a rejection comes during the handshake), or the server asked for
    /// no client certificate, or the connection is used for something else (HTTP).
    No,
    /// The server sent a session ticket: it read our Finished and kept the connection.
    Ticket,
    /// The server sent application data.
    Data,
    /// The server sent close_notify (or closed cleanly).
    Closed,
    /// Nothing arrived within [`LINGER`] (or before the deadline).
    Elapsed,
}

/// What the server did during and after the handshake, as rustls reported it.
#[derive(Debug, Default)]
pub struct Signals {
    asked: AtomicBool,
    ticket: AtomicBool,
}

impl Signals {
    /// The server sent a CertificateRequest.
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }

    /// The server sent a NewSessionTicket.
    pub fn ticket(&self) -> bool {
        self.ticket.load(Ordering::Relaxed)
    }
}

/// Installs the recorders into a per-connection config: the client-cert resolver is wrapped
/// (it still answers as configured), and the session store records tickets but keeps none,
/// so no session is ever resumed (a resumed session shows no certificate).
pub fn install(cfg: &mut ClientConfig) -> Arc<Signals> {
    let signals = Arc::new(Signals::default());
    cfg.client_auth_cert_resolver = Arc::new(AskRecorder {
        inner: cfg.client_auth_cert_resolver.clone(),
        signals: signals.clone(),
    });
    let store = Arc::new(TicketRecorder {
        signals: signals.clone(),
    });
    cfg.resumption = Resumption::store(store).tls12_resumption(Tls12Resumption::Disabled);
    signals
}

/// True when a rejection may still come after the handshake: TLS 1.3 and the server asked
/// for a client certificate.
pub fn may_reject_late(version: Option<&str>, asked: bool) -> bool {
    asked && version == Some("1.3")
}

/// Reads until the server shows how it took our Finished — a ticket, data, close_notify —
/// or [`LINGER`] passes; an alert or reset is the error.
pub async fn linger<S: AsyncRead + Unpin>(
    stream: &mut S,
    signals: &Signals,
    deadline: Instant,
) -> io::Result<Waited> {
    let until = deadline.min(Instant::now() + LINGER);
    let mut buf = [0u8; 512];
    let first = poll_fn(|cx| {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(Ok(Waited::Closed)),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Waited::Data)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if signals.ticket() => Poll::Ready(Ok(Waited::Ticket)),
            Poll::Pending => Poll::Pending,
        }
    });
    timeout_at(until, first)
        .await
        .unwrap_or(Ok(Waited::Elapsed))
}

/// The configured resolver, noting that the server asked.
#[derive(Debug)]
struct AskRecorder {
    inner: Arc<dyn ResolvesClientCert>,
    signals: Arc<Signals>,
}

impl ResolvesClientCert for AskRecorder {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.signals.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A session store that notes ticket arrival and remembers nothing.
#[derive(Debug)]
struct TicketRecorder {
    signals: Arc<Signals>,
}

impl ClientSessionStore for TicketRecorder {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {
        self.signals.ticket.store(true, Ordering::Relaxed);
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_only_for_tls13_with_a_certificate_request() {
        assert!(may_reject_late(Some("1.3"), true));
        assert!(!may_reject_late(Some("1.3"), false));
        assert!(!may_reject_late(Some("1.2"), true));
        assert!(!may_reject_late(None, true));
    }

    #[test]
    fn the_store_resumes_nothing() {
        let signals = Arc::new(Signals::default());
        let store = TicketRecorder {
            signals: signals.clone(),
        };
        let name = ServerName::try_from("example.test").unwrap();
        assert!(store.take_tls13_ticket(&name).is_none());
        assert!(store.tls12_session(&name).is_none());
        assert!(store.kx_hint(&name).is_none());
        assert!(!signals.ticket());
    }
}
