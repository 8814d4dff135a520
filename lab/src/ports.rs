//! Ports for servers started as separate processes (OpenBao, nginx, haproxy, Prometheus):
//! chosen below the kernel's ephemeral range (Linux: 32768–60999), checked free by binding,
//! and handed over. A port from `bind(…:0)` lies inside that range, where the kernel may give
//! it to an outgoing connection as its source port before the server binds it (the server
//! then fails with "address in use" and whatever answered the readiness probe is gone by the
//! time the test connects), and a client retrying a connect to it can connect to itself.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

const LOW: u32 = 20_000;
const SPAN: u32 = 12_000;
/// Coprime with `SPAN`: successive picks in one process never repeat within `SPAN` picks.
const STEP: u32 = 7_919;

/// A port on `ip` that nothing is bound to now, nor the port after it (Vault and OpenBao dev
/// servers put their cluster listener on the API port + 1), below the ephemeral range; the
/// kernel's own choice only when every such port is taken.
pub fn free_port(ip: IpAddr) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + seed().wrapping_add(n.wrapping_mul(STEP)) % SPAN;
        if free(ip, port) && free(ip, port + 1) {
            return u16::try_from(port).expect("below 32000");
        }
    }
    let l = TcpListener::bind(SocketAddr::new(ip, 0));
    l.and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn free(ip: IpAddr, port: u32) -> bool {
    let Ok(port) = u16::try_from(port) else {
        return false;
    };
    TcpListener::bind(SocketAddr::new(ip, port)).is_ok()
}

/// Differs between processes, so test binaries run side by side start at different ports.
fn seed() -> u32 {
    static SEED: OnceLock<u32> = OnceLock::new();
    *SEED.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        let nanos = now.map(|d| d.subsec_nanos()).unwrap_or(0);
        nanos ^ std::process::id().wrapping_mul(2_654_435_761)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_free_ports_below_the_ephemeral_range_without_repeating() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let picks: Vec<u16> = (0..50).map(|_| free_port(ip)).collect();
        assert!(
            picks.iter().all(|p| (20_000..32_000).contains(p)),
            "{picks:?}"
        );
        let mut unique = picks.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), picks.len(), "{picks:?}");
        let held = TcpListener::bind(SocketAddr::new(ip, picks[0]));
        assert!(held.is_ok(), "a picked port binds");
    }
}
