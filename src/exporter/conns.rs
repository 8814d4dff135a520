//! The HTTP server's open connections: a cap, each connection's phase (fresh: no complete
//! request yet; busy: a request is being served; idle: kept alive between requests), and
//! eviction. At the cap a new connection closes the stalest connection that is not serving a
//! request (fresh ones first, then idle ones), so half-open or idle connections cannot lock
//! Prometheus out; only when every connection is busy is the new one closed. A reaper closes
//! fresh connections after the header timeout and idle ones after the keep-alive timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The default of `--web.max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// A connection must deliver a complete request head (after its TLS handshake) this soon.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max: DEFAULT_MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Busy,
    Idle,
}

struct Entry {
    phase: Phase,
    since: Instant,
    close: Arc<Notify>,
}

/// The registry of open connections.
pub struct Conns {
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

impl Conns {
    /// An empty registry.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Conns {
            limits: Limits {
                max: limits.max.max(1),
                ..limits
            },
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a new connection, evicting the stalest one not serving a request when at
    /// the cap; `None` when every connection is busy (the caller closes the new one).
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut inner = self.lock();
        if inner.open.len() >= self.limits.max && !evict(&mut inner) {
            return None;
        }
        let id = inner.next;
        inner.next += 1;
        let close = Arc::new(Notify::new());
        let entry = Entry {
            phase: Phase::Fresh,
            since: Instant::now(),
            close: close.clone(),
        };
        inner.open.insert(id, entry);
        Some(Ticket {
            id,
            conns: self.clone(),
            close,
        })
    }

    /// Closes the stalest connection not serving a request (to free a file descriptor);
    /// whether there was one.
    pub fn evict_one(&self) -> bool {
        evict(&mut self.lock())
    }

    /// Closes fresh connections past the header timeout and idle ones past the keep-alive
    /// timeout; returns how many.
    pub fn reap(&self, now: Instant) -> usize {
        let mut inner = self.lock();
        let due: Vec<u64> = inner
            .open
            .iter()
            .filter(|(_, e)| self.overdue(e, now))
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            close(&mut inner, *id);
        }
        due.len()
    }

    fn overdue(&self, e: &Entry, now: Instant) -> bool {
        let age = now.saturating_duration_since(e.since);
        match e.phase {
            Phase::Fresh => age > self.limits.header_timeout,
            Phase::Idle => age > self.limits.idle_timeout,
            Phase::Busy => false,
        }
    }

    fn set(&self, id: u64, phase: Phase) {
        if let Some(e) = self.lock().open.get_mut(&id) {
            e.phase = phase;
            e.since = Instant::now();
        }
    }
}

/// Picks the victim: the oldest fresh connection, else the oldest idle one.
fn evict(inner: &mut Inner) -> bool {
    let oldest = |phase: Phase| {
        inner
            .open
            .iter()
            .filter(|(_, e)| e.phase == phase)
            .min_by_key(|(id, e)| (e.since, **id))
            .map(|(id, _)| *id)
    };
    match oldest(Phase::Fresh).or_else(|| oldest(Phase::Idle)) {
        Some(id) => {
            close(inner, id);
            true
        }
        None => false,
    }
}

/// Removes a connection from the registry and tells its task to drop it.
fn close(inner: &mut Inner, id: u64) {
    if let Some(e) = inner.open.remove(&id) {
        e.close.notify_one();
    }
}

/// One admitted connection; dropping it unregisters the connection.
pub struct Ticket {
    id: u64,
    conns: Arc<Conns>,
    close: Arc<Notify>,
}

impl Ticket {
    /// Resolves when the registry closes this connection (eviction or a timeout).
    pub async fn closed(&self) {
        self.close.notified().await
    }

    /// A guard maker the request handler can own.
    pub fn marker(&self) -> Marker {
        Marker {
            id: self.id,
            conns: self.conns.clone(),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.conns.lock().open.remove(&self.id);
    }
}

/// Cloneable handle that marks its connection busy for one request.
#[derive(Clone)]
pub struct Marker {
    id: u64,
    conns: Arc<Conns>,
}

impl Marker {
    /// Busy until the guard drops.
    pub fn busy(&self) -> BusyGuard {
        self.conns.set(self.id, Phase::Busy);
        BusyGuard {
            id: self.id,
            conns: self.conns.clone(),
        }
    }
}

/// Marks its connection idle again when dropped.
pub struct BusyGuard {
    id: u64,
    conns: Arc<Conns>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.conns.set(self.id, Phase::Idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            max,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_stalest_fresh_connection_makes_room() {
        let conns = Conns::new(limits(2));
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        let _busy = b.marker().busy();
        let c = conns.admit().expect("a is fresh and can be evicted");
        assert_eq!(conns.len(), 2);
        tokio::time::timeout(Duration::from_millis(1), a.closed())
            .await
            .expect("a was told to close");
        // b is busy and c is fresh: c goes next, b never.
        let _d = conns.admit().unwrap();
        tokio::time::timeout(Duration::from_millis(1), c.closed())
            .await
            .expect("c was told to close");
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_the_new_one_is_refused() {
        let conns = Conns::new(limits(1));
        let a = conns.admit().unwrap();
        let guard = a.marker().busy();
        assert!(conns.admit().is_none());
        drop(guard);
        assert!(conns.admit().is_some(), "idle a is evicted");
    }

    #[tokio::test]
    async fn the_reaper_closes_fresh_and_idle_connections_after_their_timeouts() {
        let conns = Conns::new(limits(10));
        let fresh = conns.admit().unwrap();
        let kept = conns.admit().unwrap();
        drop(kept.marker().busy());
        let working = conns.admit().unwrap();
        let _g = working.marker().busy();
        let later = |s| Instant::now() + Duration::from_secs(s);
        assert_eq!(conns.reap(later(11)), 1, "only the fresh one");
        fresh.closed().await;
        assert_eq!(conns.reap(later(31)), 1, "then the idle one");
        kept.closed().await;
        assert_eq!(conns.len(), 1, "the busy one stays");
        drop(working);
        assert!(conns.is_empty());
    }
}
