//! `rotcheck serve` as a child process: started on 127.0.0.1:0, its address read from the
//! start-up line, stopped with SIGTERM (and killed if a test fails first).

use super::client::{self, Conn, Resp};
use super::deadline_loop;
use super::prom::Metrics;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `rotcheck serve`.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    pub conn: Conn,
    /// Authorization header sent with every request, if any.
    pub auth: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// Starts `rotcheck serve -c suite --listen 127.0.0.1:0 EXTRA...`.
    pub fn start(suite: &Path, extra: &[&str]) -> Serve {
        Serve::start_via(&[], suite, extra)
    }

    /// The same, run through a wrapper command (`prlimit --nofile=... --`), whose process
    /// becomes serve's.
    pub fn start_via(wrapper: &[&str], suite: &Path, extra: &[&str]) -> Serve {
        let bin = env!("CARGO_BIN_EXE_rotcheck");
        let mut command = match wrapper.split_first() {
            None => Command::new(bin),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
        };
        let mut child = command
            .arg("serve")
            .arg("-c")
            .arg(suite)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the address is handed over, so a test that has the
                // address also sees the line it came from.
                let addr = line.split("://").nth(1).map(|a| a.trim().to_string());
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start: {:?}", log.lock().unwrap());
            }
        };
        Serve {
            child,
            addr,
            conn: Conn::default(),
            auth: None,
            log,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What serve printed so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until serve has printed a line containing `needle` (stderr is read by
    /// another thread, so a line written just now may not be in `log()` yet).
    pub fn wait_log(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.log().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve never printed {needle:?}: {:?}", self.log());
    }

    /// A request with this serve's connection settings and credentials.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Resp> {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &self.auth {
            h.push(("Authorization", a));
        }
        client::request(self.addr, &self.conn, method, path, &h)
    }

    /// GET, panicking on connection errors.
    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[]).unwrap()
    }

    /// POST, panicking on connection errors.
    pub fn post(&self, path: &str) -> Resp {
        self.request("POST", path, &[]).unwrap()
    }

    /// /metrics, parsed.
    pub fn metrics(&self) -> Metrics {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        Metrics::parse(&r.body)
    }

    /// Waits until /ready answers 200.
    pub fn wait_ready(&self, within: Duration) {
        deadline_loop("serve /ready", within, || self.get("/ready").status == 200);
    }

    /// Waits until the parsed /metrics satisfy `f`; returns them.
    pub fn wait_metrics(
        &self,
        what: &str,
        within: Duration,
        f: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        let mut last = Metrics::default();
        let start = Instant::now();
        while start.elapsed() < within {
            last = self.metrics();
            if f(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "timed out waiting for {what}; last /metrics samples: {:#?}",
            last.samples
        );
    }

    /// Sends a signal.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// SIGTERM, then waits (at most 10 s) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "serve ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
