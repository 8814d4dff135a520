//! `rotcheck serve` under attack, on 127.0.0.1 only: a connection flood past the cap (with a
//! low open-file limit), 200 concurrent wrong passwords against bcrypt cost 10, 300 parallel
//! `/probe` of a stalled check, running out of file descriptors, and which callers a `/probe`
//! refusal names the suite's checks to. Each flood asserts that the scheduled checks kept
//! running and kept passing while it lasted.

mod exporter_support;

use exporter_support::client::{self, Conn};
use exporter_support::prom::Metrics;
use exporter_support::serve::Serve;
use exporter_support::Env;
use rotcheck_lab::pki::{LabPki, LeafSpec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Two healthy checks run every second: a TLS handshake and file checks.
const HEALTHY: &str = r#"
suite: flood
defaults: { interval: 1s, timeout: 3s }
checks:
  - name: vault-listener
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
    expect: { chain: valid, names: [{sni}] }
  - name: server-files
    files:
      - { path: "{server_key}", kind: key, mode: "0600" }
      - { path: "{fullchain}", kind: chain }
"#;

const SCHEDULED: [&str; 2] = ["vault-listener", "server-files"];

fn labels(check: &str) -> [(&'static str, &str); 2] {
    [("suite", "flood"), ("check", check)]
}

/// Each scheduled check's last run time, after asserting that every one of them passes.
fn passing(m: &Metrics, when: &str) -> Vec<f64> {
    SCHEDULED
        .iter()
        .map(|c| {
            let ok = m.value("rotcheck_check_success", &labels(c));
            assert_eq!(ok, Some(1.0), "{when}: {c} no longer passes");
            m.value("rotcheck_check_last_run_timestamp_seconds", &labels(c))
                .unwrap()
        })
        .collect()
}

/// Waits until every scheduled check has passed once; returns their last run times.
fn wait_passing(serve: &Serve) -> Vec<f64> {
    let m = serve.wait_metrics("the scheduled checks to pass", secs(20), |m| {
        SCHEDULED
            .iter()
            .all(|c| m.value("rotcheck_check_success", &labels(c)) == Some(1.0))
    });
    passing(&m, "before the flood")
}

/// Every scheduled check ran again since `before` and still passes.
fn ran_and_passed_since(m: &Metrics, before: &[f64], when: &str) {
    let now = passing(m, when);
    for ((c, b), n) in SCHEDULED.iter().zip(before).zip(&now) {
        assert!(n > b, "{when}: {c} did not run (last run {n}, before {b})");
    }
}

/// A field of /proc/PID/status, e.g. `Threads`.
fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// CPU time (user + system) the process used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; the state (field 3) is first here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap_or(100) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Opens `n` connections that send nothing; connections the server closed are fine.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&addr, secs(2)).ok())
        .collect()
}

/// Opens a connection and sends `head` (which may stop mid-request).
fn send_raw(addr: SocketAddr, head: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, secs(2)).ok()?;
    s.write_all(head.as_bytes()).ok()?;
    Some(s)
}

/// Reads a whole answer from a connection opened with `send_raw` (status 0: no answer).
fn read_status(mut s: TcpStream, within: Duration) -> (u16, String) {
    s.set_read_timeout(Some(within)).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> String {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let env = Env::start(false);
    let suite = env.write_suite("healthy.yaml", HEALTHY);
    let serve = Serve::start_via(&["prlimit", "--nofile=256:4096", "--"], &suite, &[]);
    serve.wait_log("open-file limit raised from 256 to 4096", secs(5));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", serve.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"],
        "{line}"
    );
    assert!(serve.stop().success());
}

#[test]
fn a_connection_flood_past_the_cap_keeps_metrics_answering_and_checks_passing() {
    let env = Env::start(false);
    let suite = env.write_suite("healthy.yaml", HEALTHY);
    // 128 descriptors: serve caps connections at 64 and keeps the rest for its checks.
    let serve = Serve::start_via(&["prlimit", "--nofile=128:128", "--"], &suite, &[]);
    serve.wait_log("at most 64 connections", secs(5));
    let before = wait_passing(&serve);
    let partial = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n", serve.addr);
    let mut flood = idle_connections(serve.addr, 300);
    flood.extend((0..50).filter_map(|_| send_raw(serve.addr, &partial)));
    let start = Instant::now();
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    while start.elapsed() < secs(6) {
        // More idle and half-sent connections keep the server at its cap all along.
        flood.extend(idle_connections(serve.addr, 40));
        flood.extend((0..10).filter_map(|_| send_raw(serve.addr, &partial)));
        let t = Instant::now();
        let r = serve.request("GET", "/metrics", &[]);
        let r = r.unwrap_or_else(|e| panic!("/metrics during the flood: {e}"));
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.body);
        passing(&Metrics::parse(&r.body), "during the flood");
        answered += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(answered >= 5, "only {answered} scrapes in 6 s");
    ran_and_passed_since(&serve.metrics(), &before, "after the flood");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", serve.pid()))
        .unwrap()
        .count();
    assert!(fds < 128, "{fds} descriptors open");
    eprintln!(
        "connection flood: {} connections opened, {answered} scrapes answered, slowest {slowest:?}, {fds} descriptors open",
        flood.len()
    );
    drop(flood);
    assert!(serve.stop().success());
}

#[test]
fn running_out_of_descriptors_is_logged_once_and_the_accept_loop_backs_off() {
    let env = Env::start(false);
    let suite = env.write_suite("healthy.yaml", HEALTHY);
    let serve = Serve::start(&suite, &[]);
    wait_passing(&serve);
    // Lowered under its feet, below what the cap of 512 connections needs.
    let limit = Command::new("prlimit")
        .args(["--pid", &serve.pid().to_string(), "--nofile=48:48"])
        .status()
        .unwrap();
    assert!(limit.success());
    let flood = idle_connections(serve.addr, 200);
    serve.wait_log("out of file descriptors", secs(10));
    let cpu = cpu_time(serve.pid());
    std::thread::sleep(secs(3));
    let spent = cpu_time(serve.pid()) - cpu;
    // Spinning on accept would burn a whole core: 3 s of CPU in these 3 s.
    assert!(spent < Duration::from_millis(1500), "{spent:?} CPU in 3 s");
    let reports = serve
        .log()
        .iter()
        .filter(|l| l.contains("out of file descriptors"))
        .count();
    assert_eq!(reports, 1, "{:#?}", serve.log());
    let line = serve.log().into_iter().find(|l| l.contains("descriptors"));
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains("open-file limit 48")),
        "{line:?}"
    );
    // Closing the stalest idle connections lets a scrape through.
    let conn = Conn {
        tls: None,
        timeout: Some(secs(20)),
    };
    let r = client::request(serve.addr, &conn, "GET", "/healthz", &[]).unwrap();
    assert_eq!(r.status, 200);
    drop(flood);
    assert!(serve.stop().success());
}

/// A web config with basic auth for `prometheus` (bcrypt cost 10).
fn basic_auth_config(env: &Env) -> std::path::PathBuf {
    let hash = bcrypt::hash("s3cret", 10).unwrap();
    let web = env.dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    web
}

#[test]
fn an_auth_flood_keeps_threads_bounded_and_checks_passing() {
    let env = Env::start(false);
    let suite = env.write_suite("healthy.yaml", HEALTHY);
    let web = basic_auth_config(&env);
    let mut serve = Serve::start(&suite, &["--web-config", web.to_str().unwrap()]);
    let good = client::basic("prometheus", "s3cret");
    serve.auth = Some(good.clone());
    let before = wait_passing(&serve);
    let pid = serve.pid();
    let threads_before = proc_status(pid, "Threads");
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|i| {
            let wrong = client::basic(
                if i % 2 == 0 { "prometheus" } else { "mallory" },
                &format!("guess{i}"),
            );
            send_raw(serve.addr, &get(serve.addr, "/metrics", Some(&wrong)))
        })
        .collect();
    assert_eq!(flood.len(), 200);
    let mut most_threads = 0;
    let start = Instant::now();
    while start.elapsed() < secs(3) {
        most_threads = most_threads.max(proc_status(pid, "Threads"));
        let r = serve.request("GET", "/metrics", &[]).unwrap();
        assert_eq!(
            r.status, 200,
            "the right password during the flood: {}",
            r.body
        );
        passing(&Metrics::parse(&r.body), "during the auth flood");
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers: Vec<(u16, String)> = flood
        .into_iter()
        .map(|s| read_status(s, secs(30)))
        .collect();
    for (status, text) in &answers {
        assert!(matches!(status, 401 | 503), "{text}");
        if *status == 503 {
            assert!(
                text.to_ascii_lowercase().contains("retry-after: 1"),
                "{text}"
            );
        }
    }
    assert!(
        answers.iter().any(|(s, _)| *s == 503),
        "the queue is bounded"
    );
    assert!(
        most_threads <= 24,
        "{most_threads} threads during the flood"
    );
    eprintln!(
        "auth flood: threads {threads_before} before, at most {most_threads} during; {} of 200 answered 503",
        answers.iter().filter(|(s, _)| *s == 503).count()
    );
    ran_and_passed_since(&serve.metrics(), &before, "after the auth flood");
    assert!(serve.stop().success());
}

const WITH_STALLED: &str = r#"
suite: flood
defaults: { interval: 1s, timeout: 3s }
checks:
  - name: vault-listener
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
    expect: { chain: valid, names: [{sni}] }
  - name: server-files
    files:
      - { path: "{server_key}", kind: key, mode: "0600" }
      - { path: "{fullchain}", kind: chain }
  - name: stalled
    timeout: 8s
    interval: 1h
    tls: { addr: "{stall}", server_name: stall.lab.rotcheck.test }
"#;

#[test]
fn a_probe_flood_of_a_stalled_check_starves_neither_other_probes_nor_the_schedule() {
    let env = Env::start(false);
    let suite = env.write_suite("stalled.yaml", WITH_STALLED);
    let serve = Serve::start(&suite, &[]);
    let before = wait_passing(&serve);
    let probe = get(serve.addr, "/probe?check=stalled", None);
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| send_raw(serve.addr, &probe))
        .collect();
    assert_eq!(flood.len(), 300);
    std::thread::sleep(Duration::from_millis(500));
    let conn = Conn {
        tls: None,
        timeout: Some(secs(10)),
    };
    let t = Instant::now();
    let r = client::request(serve.addr, &conn, "GET", "/probe?check=vault-listener", &[])
        .expect("a probe of a healthy check answers during the flood");
    let healthy_took = t.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    let m = Metrics::parse(&r.body);
    assert_eq!(
        m.value("rotcheck_check_success", &labels("vault-listener")),
        Some(1.0)
    );
    std::thread::sleep(secs(2));
    ran_and_passed_since(&serve.metrics(), &before, "during the probe flood");
    let answers: Vec<(u16, String)> = flood
        .into_iter()
        .map(|s| read_status(s, secs(30)))
        .collect();
    let refused = answers.iter().filter(|(s, _)| *s == 503).count();
    for (status, text) in &answers {
        match status {
            200 => {
                let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                let m = Metrics::parse(body);
                let ok = m.value("rotcheck_check_success", &labels("stalled"));
                assert_eq!(ok, Some(0.0), "{text}");
            }
            503 => assert!(
                text.to_ascii_lowercase().contains("retry-after: 5"),
                "{text}"
            ),
            _ => panic!("unexpected answer: {text}"),
        }
    }
    assert!(
        refused >= 200,
        "only {refused} of 300 refused: the queue is bounded"
    );
    eprintln!("probe flood: healthy probe answered in {healthy_took:?}; {refused} of 300 stalled probes answered 503");
    assert!(serve.stop().success());
}

#[test]
fn probe_refusals_name_the_checks_only_to_authenticated_callers() {
    let env = Env::start(false);
    let suite = env.write_suite("healthy.yaml", HEALTHY);
    let pki = LabPki::generate().unwrap();
    let server = pki
        .issue(&LeafSpec::server("rotcheck.test", &["127.0.0.1"]))
        .unwrap();
    let client_cert = pki.issue(&LeafSpec::client("prometheus")).unwrap();
    let dir = env.dir.path();
    std::fs::write(dir.join("server.crt"), pki.fullchain_pem(&server)).unwrap();
    std::fs::write(dir.join("server.key"), server.key_pem()).unwrap();
    std::fs::write(dir.join("client-ca.pem"), pki.root().cert_pem()).unwrap();
    let web = dir.join("web-certs.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: client-ca.pem\n",
    )
    .unwrap();
    let extra = [
        "--web-config",
        web.to_str().unwrap(),
        "--web.max-connections",
        "8",
    ];
    let mut serve = Serve::start(&suite, &extra);
    let roots = [pki.root().cert().cert_der().clone()];
    serve.conn.tls = Some(client::tls_config(&roots, None));
    // Half-open TLS connections (no ClientHello) past the cap do not lock callers out.
    let _half_open = idle_connections(serve.addr, 20);
    let anonymous = serve.get("/probe?check=nope");
    assert_eq!(anonymous.status, 400, "{}", anonymous.body);
    assert!(
        anonymous.body.contains("unknown check \"nope\""),
        "{}",
        anonymous.body
    );
    for name in SCHEDULED {
        assert!(!anonymous.body.contains(name), "{}", anonymous.body);
    }
    serve.conn.tls = Some(client::tls_config(
        &roots,
        Some((pki.fullchain_der(&client_cert), client_cert.key_der())),
    ));
    let known = serve.get("/probe?check=nope");
    assert_eq!(known.status, 400);
    assert!(
        known
            .body
            .contains("checks of the suite: vault-listener, server-files"),
        "{}",
        known.body
    );
    assert!(serve.stop().success());

    let basic = basic_auth_config(&env);
    let mut serve = Serve::start(&suite, &["--web-config", basic.to_str().unwrap()]);
    assert_eq!(serve.get("/probe?check=nope").status, 401);
    serve.auth = Some(client::basic("prometheus", "s3cret"));
    let known = serve.get("/probe?check=nope");
    assert!(
        known.body.contains("checks of the suite: vault-listener"),
        "{}",
        known.body
    );
    assert!(serve.stop().success());
}
