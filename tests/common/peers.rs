//! Real peer processes for tests (openssl s_server, nginx, haproxy): find the binary, start it,
//! wait until it listens, stop it on drop.

use super::{have, wait_listening};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process stopped on drop: SIGTERM first (nginx's master then stops its workers),
/// SIGKILL after a grace period, then reaped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits until `addr` accepts connections.
pub fn start(mut cmd: Command, addr: SocketAddr, what: &str) -> Running {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let running = Running(child);
    assert!(
        wait_listening(addr, Duration::from_secs(10)),
        "{what} did not listen on {addr}"
    );
    running
}

/// 127.0.0.1:`port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A binary on PATH or in the sbin directories (nginx lives in /usr/sbin); prints
/// "skipped: <name> not installed" when there is none.
pub fn find_bin(name: &str) -> Option<String> {
    let found = if have(name) {
        Some(name.to_string())
    } else {
        ["/usr/sbin", "/usr/local/sbin", "/sbin"]
            .iter()
            .map(|d| format!("{d}/{name}"))
            .find(|p| Path::new(p).exists())
    };
    if found.is_none() {
        println!("skipped: {name} not installed");
    }
    found
}
