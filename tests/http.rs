//! The http probe against real servers: an in-process server (rustls or plain TCP) that
//! records each request and answers with a script (status, body, stalls), a real nginx with
//! `ssl_verify_client on`, and a real haproxy edge in front of a backend whose chain is wrong.
//! The nginx and haproxy tests print "skipped: <bin> not installed" and return without them.

mod common;

use common::peers::{find_bin, local, start};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- in-process server

/// One thing the server does while answering.
#[derive(Clone)]
enum Step {
    Send(Vec<u8>),
    Pause(Duration),
}

/// A request as the server read it.
#[derive(Debug, Clone, Default)]
struct Seen {
    head: String,
    body: String,
}

type Script = Arc<dyn Fn(&Seen) -> Vec<Step> + Send + Sync>;

/// A server on 127.0.0.1:0 and the requests it read.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Answers every connection with `script`, over TLS when `tls` is given.
    fn start(tls: Option<TlsOpts>, script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(vec![]));
        let cfg = tls.map(server_config);
        let log = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (cfg, script, log) = (cfg.clone(), script.clone(), log.clone());
                std::thread::spawn(move || serve(tcp, cfg, &script, &log));
            }
        });
        Server { addr, seen }
    }

    /// The one request it read.
    fn request(&self) -> Seen {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen[0].clone()
    }
}

fn serve(
    tcp: TcpStream,
    cfg: Option<Arc<rustls::ServerConfig>>,
    script: &Script,
    log: &Mutex<Vec<Seen>>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    match cfg {
        None => answer(tcp, script, log),
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            answer(&mut tls, script, log);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

/// Reads one request (head and Content-Length body), then plays the script.
fn answer<S: Read + Write>(mut s: S, script: &Script, log: &Mutex<Vec<Seen>>) {
    let Some(seen) = read_request(&mut s) else {
        return;
    };
    log.lock().unwrap().push(seen.clone());
    for step in script(&seen) {
        let ok = match step {
            Step::Send(b) => s.write_all(&b).and_then(|_| s.flush()).is_ok(),
            Step::Pause(d) => {
                std::thread::sleep(d);
                true
            }
        };
        if !ok {
            return;
        }
    }
}

fn read_request<S: Read>(s: &mut S) -> Option<Seen> {
    let mut buf = vec![];
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>())
        })
        .and_then(Result::ok)
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Some(Seen { head, body })
}

/// A complete response with a Content-Length body.
fn reply(status: &str, headers: &str, body: &[u8]) -> Vec<Step> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    vec![Step::Send(bytes)]
}

fn fixed(status: &'static str, body: &'static str) -> Script {
    Arc::new(move |_| reply(status, "", body.as_bytes()))
}

fn https(pki: &Pki, script: Script) -> Server {
    Server::start(Some(TlsOpts::new(pki.fullchain(), &pki.leaf)), script)
}

// ---------------------------------------------------------------- suites

/// A one-check http suite. `http` and `expect` are YAML flow mappings.
fn suite(http: &str, expect: &str, timeout: &str) -> String {
    format!(
        "suite: test\ndefaults:\n  timeout: {timeout}\nchecks:\n  - name: t\n    http: {http}\n    expect: {expect}\n"
    )
}

fn ca(env: &Env, pki: &Pki) -> String {
    env.write("ca.pem", &pki.root.cert.pem)
}

fn message(g: &Gate, assertion: &str) -> String {
    g.assertion("t", assertion)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn names(g: &Gate) -> Vec<String> {
    g.check("t")["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- basics

#[test]
fn https_answer_passes_with_every_tls_expectation() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(&pki, fixed("200 OK", "app-a ok\n"));
    let (ca, leaf) = (ca(&env, &pki), env.write("server.crt", &pki.leaf.pem));
    let http = format!(
        r#"{{url: "https://{}/health?full=1", server_name: svc.rotcheck.test, ca_file: "{ca}", headers: {{X-Check: rotcheck}}}}"#,
        srv.addr
    );
    let expect = format!(
        r#"{{status: 200, body_contains: "app-a ok", body_matches: "^app-a (ok|up)", chain: valid, names: [svc.rotcheck.test], issuer_cn: rotcheck test intermediate, min_tls: "1.2", serves_file: "{leaf}"}}"#
    );
    let g = env.gate(&suite(&http, &expect, "5s"), &[]);
    assert_eq!(g.code, 0, "{:#}", g.json);
    for a in [
        "handshake",
        "chain",
        "names",
        "expiry",
        "issuer_cn",
        "min_tls",
        "serves_file",
        "response",
        "status",
        "body_contains",
        "body_matches",
    ] {
        assert_eq!(g.verdict("t", a).0, "pass", "{a}: {:#}", g.json);
    }
    assert_eq!(g.check("t")["facts"]["extra"]["http_status"], "200");
    let req = srv.request();
    assert!(
        req.head.starts_with("GET /health?full=1 HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    let head = req.head.to_ascii_lowercase();
    let port = srv.addr.port();
    assert!(
        head.contains(&format!("host: svc.rotcheck.test:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("x-check: rotcheck\r\n"), "{head}");
    assert!(head.contains("user-agent: rotcheck/"), "{head}");
}

#[test]
fn method_body_and_host_header_are_sent_as_written() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(&pki, fixed("201 Created", ""));
    let http = format!(
        r#"{{url: "https://{}/submit", method: POST, body: "ping=1", headers: {{Host: app.example.test, Content-Type: application/x-www-form-urlencoded}}}}"#,
        srv.addr
    );
    let g = env.gate(&suite(&http, "{status: [200, 201]}", "5s"), &[]);
    assert_eq!(g.status("t"), "pass", "{:#}", g.json);
    let req = srv.request();
    assert!(
        req.head.starts_with("POST /submit HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(req
        .head
        .to_ascii_lowercase()
        .contains("host: app.example.test\r\n"));
    assert_eq!(req.body, "ping=1");
}

#[test]
fn wrong_status_and_body_fail_with_their_reasons() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(&pki, fixed("503 Service Unavailable", "maintenance\n"));
    let http = format!(r#"{{url: "https://{}/"}}"#, srv.addr);
    let g = env.gate(
        &suite(&http, r#"{body_contains: ok, body_matches: "^up$"}"#, "5s"),
        &[],
    );
    assert_eq!(g.code, 1);
    assert_eq!(g.verdict("t", "response").0, "pass");
    assert_eq!(
        g.verdict("t", "status"),
        ("fail".into(), Some("status".into()))
    );
    let msg = message(&g, "status");
    assert!(
        msg.starts_with("expected status 2xx; got 503 Service Unavailable"),
        "{msg}"
    );
    assert!(msg.contains("\"maintenance\""), "{msg}");
    assert_eq!(g.verdict("t", "body_contains").1.as_deref(), Some("body"));
    assert_eq!(g.verdict("t", "body_matches").1.as_deref(), Some("body"));
}

#[test]
fn a_redirect_is_not_followed_and_names_its_location() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(
        &pki,
        Arc::new(|_| {
            reply(
                "302 Found",
                "Location: https://sso.example.test/login\r\n",
                b"",
            )
        }),
    );
    let http = format!(r#"{{url: "https://{}/"}}"#, srv.addr);
    let g = env.gate(&suite(&http, "{}", "5s"), &[]);
    let msg = message(&g, "status");
    assert!(
        msg.contains("redirect to https://sso.example.test/login"),
        "{msg}"
    );
    assert_eq!(srv.seen.lock().unwrap().len(), 1, "not followed");
}

#[test]
fn a_server_stalling_after_its_headers_ends_in_timeout() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(
        &pki,
        Arc::new(|_| {
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".to_vec();
            vec![Step::Send(head), Step::Pause(Duration::from_secs(30))]
        }),
    );
    let http = format!(r#"{{url: "https://{}/"}}"#, srv.addr);
    let started = Instant::now();
    let g = env.gate(&suite(&http, "{body_contains: partial}", "1s"), &[]);
    let took = started.elapsed();
    assert_eq!(
        g.error_class("t").as_deref(),
        Some("timeout"),
        "{:#}",
        g.json
    );
    assert_eq!(
        g.verdict("t", "response"),
        ("fail".into(), Some("timeout".into()))
    );
    let msg = message(&g, "response");
    assert!(
        msg.contains("answered 200 but its body did not finish within 1s (got 7 bytes)"),
        "{msg}"
    );
    assert_eq!(g.verdict("t", "status").0, "pass", "the status did arrive");
    assert!(!names(&g).contains(&"body_contains".to_string()));
    // A bound, not a performance target: 1 s budget plus process start and slack.
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn a_server_that_never_answers_ends_in_timeout() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(
        &pki,
        Arc::new(|_| vec![Step::Pause(Duration::from_secs(30))]),
    );
    let http = format!(r#"{{url: "https://{}/health"}}"#, srv.addr);
    let g = env.gate(&suite(&http, "{}", "1s"), &[]);
    assert_eq!(g.verdict("t", "handshake").0, "pass");
    assert_eq!(g.error_class("t").as_deref(), Some("timeout"));
    assert!(
        message(&g, "response").contains("sent GET /health"),
        "{:#}",
        g.json
    );
}

#[test]
fn the_body_is_judged_on_its_first_64_kib_and_read_up_to_a_limit() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(
        &pki,
        Arc::new(|_| {
            let mut body = b"ok ".to_vec();
            body.extend(vec![b'a'; 2 * 1024 * 1024]);
            body.extend_from_slice(b"needle");
            reply("200 OK", "", &body)
        }),
    );
    let http = format!(r#"{{url: "https://{}/"}}"#, srv.addr);
    let g = env.gate(
        &suite(&http, "{body_contains: needle, body_matches: ^ok}", "5s"),
        &[],
    );
    assert_eq!(g.verdict("t", "response").0, "pass", "{:#}", g.json);
    assert!(message(&g, "response").contains("stopped reading after 1024 KiB"));
    assert_eq!(g.verdict("t", "body_matches").0, "pass");
    let msg = message(&g, "body_contains");
    assert!(msg.contains("only the first 64 KiB were kept"), "{msg}");
}

#[test]
fn plain_http_has_no_handshake_and_fails_like_tls_on_a_closed_port() {
    let env = Env::new();
    let srv = Server::start(None, fixed("200 OK", "pong"));
    let http = format!(r#"{{url: "http://{}/ping", method: HEAD}}"#, srv.addr);
    let g = env.gate(&suite(&http, "{status: 2xx}", "5s"), &[]);
    assert_eq!(g.status("t"), "pass", "{:#}", g.json);
    assert_eq!(names(&g), ["response", "status"]);
    assert!(srv.request().head.starts_with("HEAD /ping HTTP/1.1\r\n"));
    let g = env.gate(
        &suite(
            &format!(r#"{{url: "http://{}/"}}"#, closed_port()),
            "{}",
            "5s",
        ),
        &[],
    );
    assert_eq!(g.error_class("t").as_deref(), Some("refused"));
    assert_eq!(g.verdict("t", "response").1.as_deref(), Some("refused"));
}

#[test]
fn connection_failures_are_classified_like_the_tls_kind() {
    let env = Env::new();
    for (addr, class) in [
        (reset_server(), "reset"),
        (http_server(), "protocol"),
        (closed_port(), "refused"),
    ] {
        let g = env.gate(
            &suite(&format!(r#"{{url: "https://{addr}/"}}"#), "{}", "3s"),
            &[],
        );
        assert_eq!(g.error_class("t").as_deref(), Some(class), "{:#}", g.json);
        assert_eq!(g.verdict("t", "handshake").1.as_deref(), Some(class));
        assert!(!names(&g).contains(&"status".to_string()));
    }
}

#[test]
fn a_tls13_client_certificate_rejection_is_a_tls_alert() {
    let (env, pki) = (Env::new(), Pki::new());
    let clients = Authority::root("rotcheck test client ca");
    let mut opts = TlsOpts::new(pki.fullchain(), &pki.leaf);
    opts.client_ca = Some(clients.cert.der.clone());
    opts.versions = TLS13_ONLY;
    let srv = Server::start(Some(opts), fixed("200 OK", "ok"));
    let g = env.gate(
        &suite(&format!(r#"{{url: "https://{}/"}}"#, srv.addr), "{}", "3s"),
        &[],
    );
    assert_eq!(
        g.error_class("t").as_deref(),
        Some("tls_alert"),
        "{:#}",
        g.json
    );
    assert_eq!(g.check("t")["error"]["alert"], "certificate_required");
    assert!(message(&g, "response").contains("set client_cert and client_key"));
}

#[test]
fn the_status_code_is_a_metric() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(&pki, fixed("418 I'm a teapot", "short and stout"));
    let path = env.write(
        "suite.yaml",
        suite(
            &format!(r#"{{url: "https://{}/"}}"#, srv.addr),
            "{status: 418}",
            "5s",
        ),
    );
    let out = rotcheck(&["gate", "-c", &path, "--format", "prom", "--at", AT]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("# TYPE rotcheck_http_status_code gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("rotcheck_http_status_code{suite=\"test\",check=\"t\"} 418\n"),
        "{text}"
    );
    assert!(
        text.contains("rotcheck_tls_version_info{suite=\"test\",check=\"t\",version=\"1.3\"} 1\n"),
        "{text}"
    );
}

// ---------------------------------------------------------------- real nginx and haproxy

/// nginx with one TLS server that requires a client certificate from `clients_ca`.
fn nginx_conf(dir: &Path, port: u16, cert: &str, key: &str, clients_ca: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    ssl_client_certificate {clients_ca};\n    ssl_verify_client on;\n    location / {{ return 200 \"app-a ok\\n\"; }}\n  }}\n}}\n"
    )
}

#[test]
fn nginx_requiring_a_client_certificate_answers_400_and_the_status_says_why() {
    let Some(bin) = find_bin("nginx") else { return };
    let (env, pki) = (Env::new(), Pki::new());
    let clients = Authority::root("rotcheck test client ca");
    let me = clients.client("rotcheck-agent");
    let full = env.write("fullchain.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let key = env.write("server.key", &pki.leaf.key_pem);
    let clients_ca = env.write("clients.pem", &clients.cert.pem);
    let port = free_port();
    let conf = env.write(
        "nginx.conf",
        nginx_conf(env.dir.path(), port, &full, &key, &clients_ca),
    );
    let prefix = env.dir.path().display().to_string();
    let mut cmd = Command::new(&bin);
    cmd.args([
        "-p",
        &prefix,
        "-e",
        &format!("{prefix}/error.log"),
        "-c",
        &conf,
    ]);
    cmd.args(["-g", &format!("daemon off; pid {prefix}/nginx.pid;")]);
    let _nginx = start(cmd, local(port), "nginx");
    let (cert, mkey, ca) = (
        env.write("me.crt", &me.pem),
        env.write("me.key", &me.key_pem),
        ca(&env, &pki),
    );
    let base = format!(
        r#"url: "https://127.0.0.1:{port}/health", server_name: svc.rotcheck.test, ca_file: "{ca}""#
    );
    let s = format!(
        "suite: t\ndefaults:\n  timeout: 5s\nchecks:\n  - name: anonymous\n    http: {{{base}}}\n    expect: {{chain: valid, body_contains: ok}}\n  - name: with-cert\n    http: {{{base}, client_cert: \"{cert}\", client_key: \"{mkey}\"}}\n    expect: {{chain: valid, status: 200, body_contains: app-a ok}}\n"
    );
    let g = env.gate(&s, &[]);
    assert_eq!(
        g.verdict("anonymous", "handshake").0,
        "pass",
        "{:#}",
        g.json
    );
    assert_eq!(g.verdict("anonymous", "chain").0, "pass");
    assert_eq!(
        g.verdict("anonymous", "status"),
        ("fail".into(), Some("status".into()))
    );
    let msg = g.assertion("anonymous", "status")["message"]
        .as_str()
        .unwrap()
        .to_string();
    println!("nginx without a client certificate: {msg}");
    assert!(
        msg.contains(
            "got 400 Bad Request: the server requires a client certificate and none was sent"
        ),
        "{msg}"
    );
    assert!(msg.contains("set client_cert and client_key"), "{msg}");
    assert_eq!(g.status("with-cert"), "pass", "{:#}", g.json);
}

/// haproxy: TLS edges on `good` and `bad`, each proxying to its backend with
/// `verify required` against `ca` (the root only).
fn haproxy_cfg(
    edge_pem: &str,
    ca: &str,
    good: (u16, SocketAddr),
    bad: (u16, SocketAddr),
) -> String {
    let backend = |name: &str, to: SocketAddr| {
        format!("backend {name}\n  server app {to} ssl verify required ca-file {ca} sni str(localhost) verifyhost localhost\n")
    };
    format!(
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n  retries 0\n\
         frontend good\n  bind 127.0.0.1:{} ssl crt {edge_pem}\n  default_backend good\n\
         frontend bad\n  bind 127.0.0.1:{} ssl crt {edge_pem}\n  default_backend bad\n{}{}",
        good.0,
        bad.0,
        backend("good", good.1),
        backend("bad", bad.1)
    )
}

#[test]
fn haproxy_in_front_of_a_backend_with_a_wrong_chain_fails_on_status() {
    let Some(bin) = find_bin("haproxy") else {
        return;
    };
    let (env, pki) = (Env::new(), Pki::new());
    // haproxy verifies the backend at the real time: its leaf is valid 2000..2099.
    let backend_leaf = pki.inter.leaf(NAMES, FOREVER);
    let full = vec![backend_leaf.der.clone(), pki.inter.cert.der.clone()];
    let good = Server::start(
        Some(TlsOpts::new(full, &backend_leaf)),
        fixed("200 OK", "app-a ok\n"),
    );
    // After a botched chain refresh the backend sends only its leaf.
    let leaf_only = vec![backend_leaf.der.clone()];
    let bad = Server::start(
        Some(TlsOpts::new(leaf_only, &backend_leaf)),
        fixed("200 OK", "app-a ok\n"),
    );
    let edge_pem = env.write(
        "edge.pem",
        format!("{}{}{}", pki.leaf.pem, pki.inter.cert.pem, pki.leaf.key_pem),
    );
    let ca = ca(&env, &pki);
    let (pg, pb) = (free_port(), free_port());
    let cfg = env.write(
        "haproxy.cfg",
        haproxy_cfg(&edge_pem, &ca, (pg, good.addr), (pb, bad.addr)),
    );
    let mut cmd = Command::new(&bin);
    cmd.args(["-db", "-f", &cfg]);
    let _haproxy = start(cmd, local(pg), "haproxy");
    assert!(wait_listening(local(pb), Duration::from_secs(5)));
    let check = |name: &str, port: u16| {
        format!("  - name: {name}\n    http: {{url: \"https://127.0.0.1:{port}/\", server_name: svc.rotcheck.test, ca_file: \"{ca}\"}}\n    expect: {{chain: valid, body_contains: app-a ok}}\n")
    };
    let s = format!(
        "suite: t\ndefaults:\n  timeout: 5s\nchecks:\n{}{}",
        check("edge-good", pg),
        check("edge-bad", pb)
    );
    let g = env.gate(&s, &[]);
    assert_eq!(g.status("edge-good"), "pass", "{:#}", g.json);
    assert_eq!(
        g.verdict("edge-bad", "chain").0,
        "pass",
        "the edge's own chain is fine"
    );
    assert_eq!(
        g.verdict("edge-bad", "status"),
        ("fail".into(), Some("status".into()))
    );
    let msg = g.assertion("edge-bad", "status")["message"]
        .as_str()
        .unwrap()
        .to_string();
    println!("haproxy with a backend sending only its leaf: {msg}");
    assert!(msg.contains("got 50"), "{msg}");
    assert!(
        msg.contains("did not trust the backend's certificate"),
        "{msg}"
    );
    assert!(
        bad.seen.lock().unwrap().is_empty(),
        "haproxy never sent the request"
    );
}

// ---------------------------------------------------------------- revocation

#[test]
fn not_revoked_is_judged_on_the_served_chain_with_crl_file() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = https(&pki, fixed("200 OK", "ok\n"));
    let ca = ca(&env, &pki);
    let (_, leaf) = x509_parser::parse_x509_certificate(&pki.leaf.der).unwrap();
    let crl = pki.inter.crl(&[leaf.raw_serial()], VALID);
    let crl = env.write("inter.crl", crl);
    let http = format!(
        r#"{{url: "https://{}/", server_name: svc.rotcheck.test, ca_file: "{ca}", crl_file: "{crl}"}}"#,
        srv.addr
    );
    let g = env.gate(&suite(&http, "{not_revoked: true}", "5s"), &[]);
    assert_eq!(g.verdict("t", "status").0, "pass", "{:#}", g.json);
    let got = g.verdict("t", "not_revoked");
    assert_eq!(got, ("fail".into(), Some("revoked".into())), "{:#}", g.json);
    let plain = r#"{url: "http://127.0.0.1:1/", crl_file: x.crl}"#;
    let path = env.write("plain.yaml", suite(plain, "{}", "5s"));
    let out = rotcheck(&["gate", "-c", &path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("crl_file needs TLS"), "{err}");
}
