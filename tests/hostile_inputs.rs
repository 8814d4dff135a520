//! Hostile inputs through the real binary: devices and FIFOs in every file setting, a
//! `${var}` bomb, huge and zero durations, deep YAML nesting, and servers whose certificates
//! or handshakes are odd (an unknown critical extension, a malformed SAN, a connection cut
//! after the ServerHello). Each must end quickly with a message that says what happened.

mod common;

use common::*;
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Generous: every case here ends in well under a second when it works; it hangs or runs
/// out of memory when it does not.
const HANG_GUARD: Duration = Duration::from_secs(60);

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary; kills it and fails the test when it outlives `HANG_GUARD`.
fn guarded(args: &[&str]) -> Out {
    let child = Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rotcheck");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(HANG_GUARD) else {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("rotcheck {args:?} still running after {HANG_GUARD:?}");
    };
    let out = out.expect("wait for rotcheck");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `/dev/zero`, `/dev/urandom` and a FIFO in `env`, each with the type its error must name.
fn hostile_files(env: &Env) -> Vec<(String, &'static str)> {
    let fifo = env.path("pipe.pem");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    vec![
        ("/dev/zero".into(), "is a character device"),
        ("/dev/urandom".into(), "is a character device"),
        (fifo.display().to_string(), "is a FIFO (named pipe)"),
    ]
}

/// The exit code, and one message that names the path, its type and what was expected.
fn assert_refused(out: &Out, code: i32, path: &str, kind: &str) {
    assert_eq!(out.code, code, "{path}: {}", out.stderr);
    let text = format!("{}{}", out.stderr, out.stdout);
    let named = text.lines().any(|l| {
        l.contains(&format!("{path}: "))
            && l.contains(&format!(": {kind}; expected a regular file"))
    });
    assert!(named, "{path}: {text}");
}

const ONE_CHECK: &str = "checks:\n  - name: a\n    tls: { addr: \"127.0.0.1:1\" }\n";

// ---------------------------------------------------------------- non-regular files

#[test]
fn inspect_refuses_devices_and_fifos() {
    let env = Env::new();
    for (path, kind) in hostile_files(&env) {
        assert_refused(&guarded(&["inspect", &path]), 2, &path, kind);
    }
}

#[test]
fn verify_refuses_devices_and_fifos_as_cert_chain_and_ca() {
    let env = Env::new();
    let good = env.write("good.pem", &self_signed(NAMES).pem);
    for (path, kind) in hostile_files(&env) {
        assert_refused(&guarded(&["verify", &path, "--ca", &good]), 2, &path, kind);
        let chain = ["verify", &good, "--chain", &path, "--ca", &good];
        assert_refused(&guarded(&chain), 2, &path, kind);
        assert_refused(&guarded(&["verify", &good, "--ca", &path]), 2, &path, kind);
    }
}

#[test]
fn lint_and_gate_refuse_a_suite_that_is_a_device_or_fifo() {
    let env = Env::new();
    for (path, kind) in hostile_files(&env) {
        let out = guarded(&["lint", "-c", &path]);
        assert_refused(&out, 2, &path, kind);
        let want = format!("{path}: cannot read the suite file: {kind}; expected a regular file");
        assert!(out.stderr.contains(&want), "{}", out.stderr);
        assert_refused(&guarded(&["gate", "-c", &path]), 2, &path, kind);
    }
}

#[test]
fn env_file_that_is_a_device_or_fifo_is_a_suite_error() {
    let env = Env::new();
    for (path, kind) in hostile_files(&env) {
        let suite = env.write("s.yaml", format!("suite: t\nenv_file: {path}\n{ONE_CHECK}"));
        let out = guarded(&["lint", "-c", &suite]);
        assert_refused(&out, 2, &path, kind);
        assert!(
            out.stderr.contains("s.yaml:2: env_file: "),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn web_config_that_is_a_device_or_fifo_stops_serve() {
    let env = Env::new();
    let suite = env.write("s.yaml", format!("suite: t\n{ONE_CHECK}"));
    for (path, kind) in hostile_files(&env) {
        let args = [
            "serve",
            "-c",
            &suite,
            "--listen",
            "127.0.0.1:0",
            "--web-config",
            &path,
        ];
        assert_refused(&guarded(&args), 2, &path, kind);
    }
}

/// The assertion of `check` whose reason is `reason`.
fn by_reason<'a>(report: &'a Value, check: &str, reason: &str) -> &'a Value {
    let c = report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == check))
        .unwrap_or_else(|| panic!("no check {check}: {report:#}"));
    c["assertions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["reason"] == reason))
        .unwrap_or_else(|| panic!("no {reason} assertion in {c:#}"))
}

#[test]
fn files_checks_refuse_devices_and_fifos_as_cert_key_and_bundle() {
    let env = Env::new();
    for (path, kind) in hostile_files(&env) {
        let suite = env.write(
            "s.yaml",
            format!(
                "suite: t\nchecks:\n  - name: f\n    files:\n      - {{path: \"{path}\", kind: cert}}\n  - name: k\n    files:\n      - {{path: \"{path}\", kind: key}}\n  - name: b\n    files:\n      - {{path: \"{path}\", kind: bundle}}\n"
            ),
        );
        let out = guarded(&["gate", "-c", &suite, "--format", "json"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        for check in ["f", "k", "b"] {
            let a = by_reason(&report, check, "not_regular_file");
            let msg = a["message"].as_str().unwrap();
            assert!(msg.contains(&format!("{path}: {kind}")), "{msg}");
        }
    }
}

#[test]
fn tls_ca_file_client_cert_and_agent_log_refuse_devices_and_fifos() {
    let env = Env::new();
    let pki = Pki::new();
    let addr = tls_server(TlsOpts::new(pki.fullchain(), &pki.leaf));
    for (path, kind) in hostile_files(&env) {
        let suite = env.write(
            "s.yaml",
            format!(
                "suite: t\nchecks:\n  - name: ca\n    tls: {{addr: \"{addr}\", server_name: localhost, ca_file: \"{path}\"}}\n    expect: {{chain: valid}}\n  - name: client\n    tls: {{addr: \"{addr}\", server_name: localhost, client_cert: \"{path}\", client_key: \"{path}\"}}\n  - name: skew\n    version_skew: {{agent: {{log: \"{path}\"}}}}\n"
            ),
        );
        let out = guarded(&["gate", "-c", &suite, "--format", "json", "--at", AT]);
        assert!(out.code == 1 || out.code == 2, "{}", out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        for check in ["ca", "client", "skew"] {
            let text = report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == check)
                .unwrap()
                .to_string();
            assert!(text.contains(&format!("{path}: {kind}")), "{check}: {text}");
        }
    }
}

// ---------------------------------------------------------------- variable bomb

#[test]
fn doubling_variables_stop_with_an_error_naming_the_variable() {
    let path = "tests/data/bad/var_bomb.yaml";
    assert!(std::fs::metadata(path).unwrap().len() < 2048);
    for cmd in ["lint", "gate"] {
        let out = guarded(&[cmd, "-c", path]);
        assert_eq!(out.code, 2, "{cmd}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("vars: a2: ${a0} makes one variable (64 KiB) too long"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_variable_repeated_on_a_line_stops_at_the_suite_cap() {
    let env = Env::new();
    let big = "x".repeat(60 * 1024);
    let refs = "${big}".repeat(200);
    let suite = env.write(
        "s.yaml",
        format!("suite: t\nvars:\n  big: \"{big}\"\nchecks:\n  - name: a\n    description: \"{refs}\"\n    tls: {{ addr: \"127.0.0.1:1\" }}\n"),
    );
    let out = guarded(&["lint", "-c", &suite]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("s.yaml:6: description: ${big} makes the substituted suite (8 MiB) too long"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- durations

fn suite_with(env: &Env, defaults: &str, check: &str) -> String {
    env.write(
        "s.yaml",
        format!("suite: t\ndefaults:\n{defaults}checks:\n  - name: a\n{check}    tls: {{ addr: \"127.0.0.1:1\" }}\n"),
    )
}

#[test]
fn huge_and_zero_durations_in_a_suite_are_load_errors_in_gate_lint_and_serve() {
    let env = Env::new();
    let cases = [
        ("  timeout: 18446744073709551615s\n", "", "defaults.timeout: timeout \"18446744073709551615s\" is too long; expected at most 1h"),
        ("  timeout: 0s\n", "", "defaults.timeout: timeout \"0s\" is zero"),
        ("", "    timeout: 0s\n", "checks[0].timeout: timeout \"0s\" is zero"),
        ("  interval: 584542046090y\n", "", "defaults.interval: "),
        ("", "    interval: 18446744073709551615s\n", "checks[0].interval: interval \"18446744073709551615s\" is too long; expected at most 24h"),
        ("  expiry: {warn: 584542046090y}\n", "", "defaults.expiry.warn: "),
        ("  expiry: {crit: 18446744073709551615s}\n", "", "defaults.expiry.crit: expiry threshold \"18446744073709551615s\" is too long; expected at most 100y"),
        ("", "    expect: {expiry: {warn: 101y}}\n", "is too long; expected at most 100y"),
    ];
    for (defaults, check, want) in cases {
        let suite = suite_with(&env, defaults, check);
        for args in [
            vec!["lint", "-c", &suite],
            vec!["gate", "-c", &suite],
            vec!["serve", "-c", &suite, "--listen", "127.0.0.1:0"],
        ] {
            let out = guarded(&args);
            assert_eq!(out.code, 2, "{args:?} {defaults}{check}: {}", out.stderr);
            assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
            assert!(!out.stderr.contains("overflow"), "{}", out.stderr);
        }
    }
}

const ISSUE: &[&str] = &[
    "rotate", "issue", "--mount", "pki", "--role", "r", "--cn", "a", "--key", "k.pem", "--cert",
    "c.pem",
];

#[test]
fn huge_durations_in_a_plan_are_load_errors() {
    let env = Env::new();
    let suite = env.write(
        "s.yaml",
        "suite: t\nplan:\n  wait: 18446744073709551615s\n  steps:\n    - name: one\n      gate: s1\n      actions:\n        - issue: { mount: pki, role: r, cn: a, key: k.pem, cert: c.pem }\nchecks:\n  - name: a\n    stage: s1\n    tls: { addr: \"127.0.0.1:1\" }\n",
    );
    for args in [
        vec!["lint", "-c", &suite],
        vec!["rotate", "plan", "-c", &suite, "--dry-run"],
    ] {
        let out = guarded(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let want = "plan: duration \"18446744073709551615s\" is too long; expected at most 100y";
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn huge_and_zero_duration_flags_are_usage_errors() {
    let env = Env::new();
    let suite = suite_with(&env, "  timeout: 1s\n", "");
    let huge = "18446744073709551615s";
    let years = "584542046090y";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["gate", "-c", &suite, "--wait", huge],
            "wait \"18446744073709551615s\" is too long; expected at most 24h",
        ),
        (
            vec!["gate", "-c", &suite, "--wait", "1s", "--interval", years],
            "is too long; expected at most 24h",
        ),
        (
            vec!["gate", "-c", &suite, "--wait", "1s", "--interval", "0s"],
            "interval \"0s\" is zero",
        ),
        (
            vec![
                "serve",
                "-c",
                &suite,
                "--listen",
                "127.0.0.1:0",
                "--interval",
                huge,
            ],
            "is too long; expected at most 24h",
        ),
        (
            vec!["inspect", "127.0.0.1:1", "--timeout", huge],
            "timeout \"18446744073709551615s\" is too long; expected at most 1h",
        ),
        (
            vec!["inspect", "127.0.0.1:1", "--timeout", "0s"],
            "timeout \"0s\" is zero",
        ),
        (
            [ISSUE, &["--renew-below", years]].concat(),
            "expiry threshold \"584542046090y\" is too long; expected at most 100y",
        ),
        (
            [ISSUE, &["--ttl", huge]].concat(),
            "duration \"18446744073709551615s\" is too long; expected at most 100y",
        ),
        (
            vec!["rotate", "reload", "--timeout", huge, "--", "true"],
            "is too long; expected at most 100y",
        ),
    ];
    for (args, want) in cases {
        let out = guarded(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn the_largest_allowed_durations_run_without_overflow() {
    let env = Env::new();
    let suite = suite_with(
        &env,
        "  timeout: 1h\n  interval: 24h\n  expiry: {warn: 100y, crit: 100y}\n",
        "",
    );
    let out = guarded(&[
        "gate",
        "-c",
        &suite,
        "--format",
        "json",
        "--wait",
        "24h",
        "--interval",
        "24h",
    ]);
    // The check fails fast (connection refused); the wait never re-runs it (interval = wait).
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stdout.contains("internal"), "{}", out.stdout);
}

// ---------------------------------------------------------------- deep nesting

#[test]
fn deep_flow_nesting_is_refused_before_parsing() {
    let env = Env::new();
    let deep = "[".repeat(200_000);
    let cases = [
        format!("suite: t\nchecks: {deep}"),
        format!("suite: t\nchecks: {}", "{a: ".repeat(100_000)),
        // Brackets libyaml reads as text (a plain scalar's next line) hide nothing.
        format!("suite: t\nvars:\n  a: x\n    [ \"\nchecks: {deep}"),
        // A variable can carry the brackets into the substituted text.
        format!(
            "suite: t\nvars:\n  deep: \"{}\"\nchecks: ${{deep}}\n",
            "[".repeat(60_000)
        ),
    ];
    for text in cases {
        let suite = env.write("s.yaml", &text);
        let out = guarded(&["lint", "-c", &suite]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        let want = "flow collections (`[`, `{`) nested deeper than 64 levels";
        assert!(out.stderr.contains(want), "{}", out.stderr);
    }
    let web = env.write("web.yml", &deep);
    let suite = env.write("s.yaml", format!("suite: t\n{ONE_CHECK}"));
    let args = [
        "serve",
        "-c",
        &suite,
        "--listen",
        "127.0.0.1:0",
        "--web-config",
        &web,
    ];
    let out = guarded(&args);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let want = "web.yml: line 1: flow collections (`[`, `{`) nested deeper than 64 levels";
    assert!(out.stderr.contains(want), "{}", out.stderr);
}

#[test]
fn deep_block_nesting_is_a_quick_error() {
    // libyaml reads block nesting in linear time; the deserializer refuses it.
    let env = Env::new();
    let suite = env.write(
        "s.yaml",
        format!("suite: t\nchecks:\n  {}x\n", "- ".repeat(100_000)),
    );
    let out = guarded(&["lint", "-c", &suite]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

// ---------------------------------------------------------------- odd servers

/// Serves a fixed chain and key without rustls checking them (it would refuse a certificate
/// with an unknown critical extension as its own).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed leaf for 127.0.0.1/localhost with one extra extension.
fn leaf_with(ext: CustomExtension) -> (rustls::pki_types::CertificateDer<'static>, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".into()]).unwrap();
    if ext.oid_components().eq([2u64, 5, 29, 17]) {
        p.subject_alt_names.clear();
    }
    p.not_before = rcgen::date_time_ymd(2030, 1, 1);
    p.not_after = rcgen::date_time_ymd(2031, 1, 1);
    p.custom_extensions.push(ext);
    (p.self_signed(&key).unwrap().der().clone(), key)
}

fn config(
    leaf: (rustls::pki_types::CertificateDer<'static>, KeyPair),
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(leaf.1.serialize_der()).into();
    let signer = provider().key_provider.load_private_key(der).unwrap();
    let ck = Arc::new(CertifiedKey::new(vec![leaf.0], signer));
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(ck)));
    Arc::new(cfg)
}

fn acceptor(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let h = handle.clone();
            std::thread::spawn(move || h(tcp));
        }
    });
    addr
}

/// A rustls server that handshakes, then reads until the client closes.
fn serve(cfg: Arc<ServerConfig>) -> SocketAddr {
    acceptor(move |tcp| {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let mut tls = rustls::StreamOwned::new(ServerConnection::new(cfg.clone()).unwrap(), tcp);
        let mut buf = [0u8; 1024];
        while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
    })
}

/// Answers the ClientHello with the server's first flight cut to `keep(flight)` bytes, then
/// closes the connection without an alert.
fn cut_after(cfg: Arc<ServerConfig>, keep: Keep) -> SocketAddr {
    acceptor(move |mut tcp| {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let mut conn = ServerConnection::new(cfg.clone()).unwrap();
        while !conn.wants_write() {
            if conn.read_tls(&mut tcp).unwrap_or(0) == 0 || conn.process_new_packets().is_err() {
                return;
            }
        }
        let mut flight = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut flight).unwrap();
        }
        let _ = tcp.write_all(&flight[..keep(&flight)]);
        // Close our side only, and drain the client's answer so no reset follows the FIN.
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        while matches!(tcp.read(&mut [0u8; 4096]), Ok(n) if n > 0) {}
    })
}

/// How many bytes of the server's first flight to send.
type Keep = fn(&[u8]) -> usize;

fn first_record(flight: &[u8]) -> usize {
    5 + usize::from(u16::from_be_bytes([flight[3], flight[4]]))
}

fn tls_gate(env: &Env, addr: SocketAddr) -> (Out, Value) {
    let suite = env.write(
        "s.yaml",
        format!("suite: t\ndefaults:\n  timeout: 5s\nchecks:\n  - name: t\n    tls: {{addr: \"{addr}\", server_name: localhost}}\n"),
    );
    let out = guarded(&["gate", "-c", &suite, "--format", "json", "--at", AT]);
    let report: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr));
    let message = report["checks"][0]["error"].clone();
    (out, message)
}

#[test]
fn an_unknown_critical_extension_is_named_not_blamed_on_the_signature() {
    let env = Env::new();
    let ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);
    let mut ext = ext;
    ext.set_criticality(true);
    for versions in [TLS13_ONLY, TLS12_ONLY] {
        let addr = serve(config(leaf_with(ext.clone()), versions));
        let (out, error) = tls_gate(&env, addr);
        assert_eq!(out.code, 1);
        assert_eq!(error["class"], "protocol", "{error}");
        let msg = error["message"].as_str().unwrap();
        assert!(
            msg.contains("unsupported critical extension (1.3.6.1.4.1.55555.1)"),
            "{msg}"
        );
        assert!(!msg.contains("signature does not verify"), "{msg}");
        let shown = guarded(&["inspect", &addr.to_string(), "--servername", "localhost"]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(
            shown
                .stdout
                .contains("unsupported critical extension (1.3.6.1.4.1.55555.1)"),
            "{}",
            shown.stdout
        );
    }
}

#[test]
fn a_malformed_san_extension_is_called_malformed_in_inspect() {
    let env = Env::new();
    // GeneralNames holding a dNSName whose length runs past the end of the extension.
    let bad = CustomExtension::from_oid_content(
        &[2, 5, 29, 17],
        vec![0x30, 0x05, 0x82, 0x07, b'a', b'b', b'c'],
    );
    let leaf = leaf_with(bad);
    let file = env.write("bad-san.pem", pem(&leaf.0));
    let addr = serve(config(leaf, TLS13_ONLY));
    for target in [addr.to_string(), file] {
        let shown = guarded(&["inspect", &target, "--servername", "localhost"]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(
            shown
                .stdout
                .contains("SANs:     malformed subjectAltName extension ("),
            "{}",
            shown.stdout
        );
        assert!(!shown.stdout.contains("(none)"), "{}", shown.stdout);
        let json = guarded(&[
            "inspect",
            &target,
            "--servername",
            "localhost",
            "--format",
            "json",
        ]);
        let doc: Value = serde_json::from_str(&json.stdout).unwrap();
        assert!(doc["certs"][0]["san_error"].is_string(), "{doc:#}");
    }
}

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_connection_cut_after_the_server_hello_says_how_far_the_handshake_got() {
    let env = Env::new();
    let pki = Pki::new();
    let leaf = || {
        let der = pki.leaf.der.clone();
        (der, KeyPair::from_pem(&pki.leaf.key_pem).unwrap())
    };
    let cases: [(_, Keep, &str); 2] = [
        (TLS13_ONLY, first_record, "after its ServerHello ("),
        (
            TLS12_ONLY,
            <[u8]>::len,
            "after its ServerHello, Certificate, ServerKeyExchange, ServerHelloDone (",
        ),
    ];
    for (versions, keep, want) in cases {
        let addr = cut_after(config(leaf(), versions), keep);
        let (out, error) = tls_gate(&env, addr);
        assert_eq!(out.code, 1);
        assert_eq!(error["class"], "eof", "{error}");
        let msg = error["message"].as_str().unwrap();
        assert!(msg.contains(want), "{msg}");
        assert!(!msg.contains("expected a ServerHello"), "{msg}");
    }
    // Nothing at all still says no ServerHello came.
    let (_, error) = tls_gate(&env, eof_server());
    let msg = error["message"].as_str().unwrap();
    assert!(msg.contains("before any ServerHello"), "{msg}");
}
