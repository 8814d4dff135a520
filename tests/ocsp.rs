//! OCSP for `not_revoked` against real responders: `openssl ocsp` (a delegated responder) for
//! good, revoked and unknown certificates, a stale answer and a responder the issuer did not
//! certify; a real OpenBao's `/v1/pki/ocsp` before and after `pki/revoke`; `openssl s_server`
//! and nginx (`ssl_stapling_file`) stapling a response over TLS 1.3 and 1.2, for `tls` and
//! `http` checks (decided without a fetch); and a garbage, a stalled and a replayed (another
//! request's nonce) answer, classified within the check's timeout. The certificates are made
//! with the openssl CLI, their authority information access naming the responder under test.

mod common;

use common::bao::{self, DevServer};
use common::peers::{self, Running};
use common::{Env, Gate};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The openssl CLI, or `None` (skip) when absent and `ROTCHECK_REQUIRE_TOOLS` is unset.
fn openssl() -> Option<()> {
    if common::have("openssl") {
        return Some(());
    }
    assert!(
        std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_none(),
        "openssl is not installed; ROTCHECK_REQUIRE_TOOLS is set"
    );
    println!("skipped: openssl not installed");
    None
}

/// Runs openssl in `dir` with `words` (split on spaces) then `args`, asserting success.
fn ossl(dir: &Path, words: &str, args: &[&str]) {
    let out = Command::new("openssl")
        .args(words.split_whitespace())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {words} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

/// A self-signed CA made with openssl in the env's folder: `name.pem`, `name.key`.
fn ca(env: &Env, name: &str, cn: &str) {
    let words = format!("req -x509 {EC_KEY} -days 30 -keyout {name}.key -out {name}.pem");
    let subj = format!("/CN={cn}");
    let ext = ["-addext", "basicConstraints=critical,CA:TRUE"];
    let usage = ["-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    ossl(
        env.dir.path(),
        &words,
        &[&["-subj", &subj][..], &ext, &usage].concat(),
    );
}

/// A certificate `name.pem` (and `name.key`) signed by CA `by` with serial `serial` (hex)
/// and the extensions `ext` (an openssl extension file's lines).
fn issue(env: &Env, by: &str, name: &str, cn: &str, serial: &str, ext: &str) {
    let dir = env.dir.path();
    env.write(&format!("{name}.cnf"), ext);
    let subj = format!("/CN={cn}");
    let req = format!("req -new {EC_KEY} -keyout {name}.key -out {name}.csr");
    ossl(dir, &req, &["-subj", &subj]);
    let sign = format!(
        "x509 -req -in {name}.csr -CA {by}.pem -CAkey {by}.key -set_serial 0x{serial} -days 2 -extfile {name}.cnf -out {name}.pem"
    );
    ossl(dir, &sign, &[]);
}

/// A server leaf for 127.0.0.1 whose AIA names the OCSP responder `url`.
fn leaf(env: &Env, name: &str, serial: &str, url: &str) {
    let ext = format!("basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nauthorityInfoAccess=OCSP;URI:{url}\n");
    issue(env, "ca", name, "localhost", serial, &ext);
}

/// A responder certificate CA `by` delegates OCSP signing to.
fn delegate(env: &Env, by: &str, name: &str) {
    let ext = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n";
    issue(env, by, name, "OCSP Responder", "2001", ext);
}

/// openssl's responder database: 1001 valid, 1002 revoked (keyCompromise); 1003 absent.
fn index(env: &Env) -> String {
    env.write("index.txt.attr", "unique_subject = no\n");
    env.write(
        "index.txt",
        "V\t301231000000Z\t\t1001\tunknown\t/CN=localhost\nR\t301231000000Z\t200101000000Z,keyCompromise\t1002\tunknown\t/CN=localhost\n",
    )
}

/// `openssl ocsp` answering on `port`, signing with `signer` (a delegated certificate), its
/// answers valid for an hour. Readiness is read from its output, not probed: OpenSSL 3.0's
/// responder stops answering after a connection that closes without a request.
fn responder(env: &Env, port: u16, signer: &str) -> Running {
    let log = env.path(&format!("ocsp-{port}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let words = format!(
        "ocsp -index index.txt -port {port} -rsigner {signer}.pem -rkey {signer}.key -CA ca.pem -nmin 60 -ignore_err"
    );
    let child = Command::new("openssl")
        .current_dir(env.dir.path())
        .args(words.split_whitespace())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start openssl ocsp");
    let running = Running(child);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    while !said().contains("waiting for OCSP client") {
        assert!(
            std::time::Instant::now() < until,
            "openssl ocsp did not start: {}",
            said()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

fn suite(checks: &str) -> String {
    format!("suite: ocsp\ndefaults:\n  timeout: 3s\nchecks:\n{checks}")
}

/// A `files` check of `name.pem` against `ca.pem` with `not_revoked: {want}`.
fn file_check(env: &Env, check: &str, name: &str, want: &str) -> String {
    let (cert, ca) = (env.path(&format!("{name}.pem")), env.path("ca.pem"));
    format!(
        "  - name: {check}\n    files: [{{ path: '{}', kind: cert, ca_file: '{}' }}]\n    expect: {{ not_revoked: {want} }}\n",
        cert.display(),
        ca.display()
    )
}

fn at(ahead: Duration) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + ahead).to_string()
}

fn verdict(g: &Gate, check: &str, assertion: &str) -> (String, Option<String>) {
    g.verdict(check, assertion)
}

fn message(g: &Gate, check: &str, assertion: &str) -> String {
    let m = &g.assertion(check, assertion)["message"];
    m.as_str().unwrap_or_default().to_string()
}

fn pass() -> (String, Option<String>) {
    ("pass".into(), None)
}

fn fail(reason: &str) -> (String, Option<String>) {
    ("fail".into(), Some(reason.into()))
}

#[test]
fn openssl_responder_answers_good_revoked_and_unknown() {
    let Some(()) = openssl() else { return };
    let env = Env::new();
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    ca(&env, "ca", "OCSP Test Root");
    delegate(&env, "ca", "resp");
    for (name, serial) in [("good", "1001"), ("revoked", "1002"), ("unknown", "1003")] {
        leaf(&env, name, serial, &url);
    }
    index(&env);
    let _ocsp = responder(&env, port, "resp");
    let checks = [
        file_check(&env, "good", "good", "true"),
        file_check(&env, "revoked", "revoked", "true"),
        file_check(&env, "unknown", "unknown", "true"),
        file_check(&env, "unknown-warns", "unknown", "{ ocsp_unknown: warn }"),
        file_check(&env, "crl-only", "good", "{ via: [crl] }"),
    ];
    let g = env.gate(&suite(&checks.concat()), &["--at", &at(Duration::ZERO)]);
    assert_eq!(
        verdict(&g, "good", "not_revoked:good.pem"),
        pass(),
        "{:#}",
        g.json
    );
    let msg = message(&g, "good", "not_revoked:good.pem");
    assert!(msg.contains("good per OCSP") && msg.contains(&url), "{msg}");
    assert!(
        msg.contains("delegated responder \"OCSP Responder\""),
        "{msg}"
    );
    assert_eq!(g.check("good")["certs"][0]["revoked"], false);

    assert_eq!(
        verdict(&g, "revoked", "not_revoked:revoked.pem"),
        fail("revoked")
    );
    let msg = message(&g, "revoked", "not_revoked:revoked.pem");
    assert!(msg.contains("serial 1002"), "{msg}");
    assert!(msg.contains("revoked at 2020-01-01T00:00:00Z"), "{msg}");
    assert!(msg.contains("reason code 1"), "{msg}");
    assert_eq!(g.check("revoked")["certs"][0]["revoked"], true);

    let unknown = verdict(&g, "unknown", "not_revoked:unknown.pem");
    assert_eq!(unknown, fail("ocsp_unknown"));
    let softened = verdict(&g, "unknown-warns", "not_revoked:unknown.pem");
    assert_eq!(softened, ("warn".into(), Some("ocsp_unknown".into())));
    // Only the CRL is asked for, and the certificate names no distribution point.
    let crl_only = verdict(&g, "crl-only", "not_revoked:good.pem");
    assert_eq!(crl_only, fail("crl_unavailable"));

    // Two hours on, the responder's hour-long answers have passed their nextUpdate.
    let later = env.gate(
        &suite(&checks[0]),
        &["--at", &at(Duration::from_secs(7200))],
    );
    let stale = verdict(&later, "good", "not_revoked:good.pem");
    assert_eq!(stale, fail("ocsp_stale"), "{:#}", later.json);
    revoked_metric(&env, &suite(&checks[1]));
}

/// `gate --format prom` exports the OCSP-revoked leaf as `rotcheck_cert_revoked 1`.
fn revoked_metric(env: &Env, suite: &str) {
    let path = env.write("prom.yaml", suite);
    let out = common::rotcheck(&["gate", "-c", &path, "--format", "prom"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("rotcheck_cert_revoked{"))
        .unwrap_or_else(|| panic!("no rotcheck_cert_revoked in {text}"));
    assert!(line.ends_with(" 1"), "{line}");
}

#[test]
fn a_responder_the_issuer_did_not_certify_is_a_bad_signature() {
    let Some(()) = openssl() else { return };
    let env = Env::new();
    let port = common::free_port();
    ca(&env, "ca", "OCSP Test Root");
    ca(&env, "other", "Another Root");
    delegate(&env, "other", "rogue");
    leaf(&env, "good", "1001", &format!("http://127.0.0.1:{port}"));
    index(&env);
    let _ocsp = responder(&env, port, "rogue");
    let g = env.gate(&suite(&file_check(&env, "good", "good", "true")), &[]);
    let got = verdict(&g, "good", "not_revoked:good.pem");
    assert_eq!(got, fail("ocsp_bad_signature"), "{:#}", g.json);
    let msg = message(&g, "good", "not_revoked:good.pem");
    assert!(
        msg.contains("not issued by the certificate's issuer"),
        "{msg}"
    );
    assert_eq!(
        g.check("good")["certs"][0]["revoked"],
        serde_json::Value::Null
    );
}

/// A listener that counts connections and answers none.
fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    (addr, n)
}

/// openssl's answer about `name.pem`, signed by the CA itself: `name.ocsp` (DER).
fn offline_response(env: &Env, name: &str) {
    offline_response_with(env, name, "-no_nonce");
}

/// As [`offline_response`]; `nonce` is `-nonce` or `-no_nonce`.
fn offline_response_with(env: &Env, name: &str, nonce: &str) {
    let dir = env.dir.path();
    let ask = format!("ocsp -issuer ca.pem -cert {name}.pem -reqout {name}.req {nonce}");
    ossl(dir, &ask, &[]);
    let answer = format!(
        "ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin {name}.req -respout {name}.ocsp -nmin 60"
    );
    ossl(dir, &answer, &[]);
}

/// `openssl s_server` serving `name.pem` and stapling `name.ocsp`; it answers HTTP GETs
/// with a status page (`-www`).
fn stapling_server(env: &Env, name: &str, extra: &str) -> (Running, SocketAddr) {
    let port = common::free_port();
    let words = format!(
        "s_server -accept 127.0.0.1:{port} -cert {name}.pem -key {name}.key -status_file {name}.ocsp -quiet -www {extra}"
    );
    let mut cmd = Command::new("openssl");
    cmd.current_dir(env.dir.path())
        .args(words.split_whitespace());
    let addr = peers::local(port);
    (peers::start(cmd, addr, "openssl s_server"), addr)
}

#[test]
fn a_stapled_response_decides_without_a_fetch() {
    let Some(()) = openssl() else { return };
    let env = Env::new();
    let (aia, asked) = counting_listener();
    let url = format!("http://{aia}");
    ca(&env, "ca", "OCSP Test Root");
    leaf(&env, "good", "1001", &url);
    leaf(&env, "revoked", "1002", &url);
    index(&env);
    offline_response(&env, "good");
    offline_response(&env, "revoked");
    let (_good_srv, good) = stapling_server(&env, "good", "");
    let (_revoked_srv, revoked) = stapling_server(&env, "revoked", "");
    let (_tls12_srv, tls12) = stapling_server(&env, "revoked", "-tls1_2");
    let ca_file = env.path("ca.pem").display().to_string();
    let check = |name: &str, addr: SocketAddr| {
        format!("  - name: {name}\n    tls: {{ addr: '{addr}', ca_file: '{ca_file}' }}\n    expect: {{ not_revoked: true }}\n")
    };
    let web = format!("  - name: web\n    http: {{ url: 'https://{revoked}/', ca_file: '{ca_file}' }}\n    expect: {{ not_revoked: true }}\n");
    let checks = check("good", good) + &check("revoked", revoked) + &check("tls12", tls12) + &web;
    let g = env.gate(&suite(&checks), &["--at", &at(Duration::ZERO)]);
    assert_eq!(verdict(&g, "good", "not_revoked"), pass(), "{:#}", g.json);
    let msg = message(&g, "good", "not_revoked");
    assert!(
        msg.contains("the stapled OCSP response, signed by the issuer"),
        "{msg}"
    );
    assert_eq!(verdict(&g, "revoked", "not_revoked"), fail("revoked"));
    let msg = message(&g, "revoked", "not_revoked");
    assert!(
        msg.contains("stapled") && msg.contains("reason code 1"),
        "{msg}"
    );
    let tls12_version = g.check("tls12")["assertions"][0]["message"].to_string();
    assert!(tls12_version.contains("TLS 1.2"), "{tls12_version}");
    assert_eq!(verdict(&g, "tls12", "not_revoked"), fail("revoked"));
    assert_eq!(verdict(&g, "web", "status"), pass(), "{:#}", g.json);
    assert_eq!(verdict(&g, "web", "not_revoked"), fail("revoked"));
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the responder was asked");
}

/// nginx serving `name.pem` with `ssl_stapling_file name.ocsp`, once it listens.
fn nginx_stapling(bin: &str, env: &Env, name: &str) -> (Running, SocketAddr) {
    let port = common::free_port();
    let d = env.dir.path().display();
    let temps: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("  {t}_temp_path {d}/{t};\n"))
        .collect();
    let conf = format!(
        "worker_processes 1;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n{temps}  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/{name}.pem;\n    ssl_certificate_key {d}/{name}.key;\n    ssl_stapling on;\n    ssl_stapling_file {d}/{name}.ocsp;\n    return 200 \"ok\\n\";\n  }}\n}}\n"
    );
    let conf = env.write("nginx.conf", conf);
    let globals = format!("daemon off; pid {d}/nginx.pid;");
    let mut cmd = Command::new(bin);
    let error_log = format!("{d}/error.log");
    let prefix = d.to_string();
    cmd.args(["-p", &prefix, "-e", &error_log, "-c", &conf, "-g", &globals]);
    let addr = peers::local(port);
    (peers::start(cmd, addr, "nginx"), addr)
}

#[test]
fn nginx_staples_the_revoked_answer_it_was_given() {
    let Some(()) = openssl() else { return };
    let Some(bin) = peers::find_bin("nginx") else {
        assert!(
            std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_none(),
            "nginx is not installed; ROTCHECK_REQUIRE_TOOLS is set"
        );
        return;
    };
    let env = Env::new();
    let (aia, asked) = counting_listener();
    ca(&env, "ca", "OCSP Test Root");
    leaf(&env, "revoked", "1002", &format!("http://{aia}"));
    index(&env);
    offline_response(&env, "revoked");
    let (_nginx, addr) = nginx_stapling(&bin, &env, "revoked");
    let ca_file = env.path("ca.pem").display().to_string();
    let checks = format!("  - name: nginx\n    http: {{ url: 'https://{addr}/', ca_file: '{ca_file}' }}\n    expect: {{ not_revoked: true, body_contains: ok }}\n");
    let g = env.gate(&suite(&checks), &["--at", &at(Duration::ZERO)]);
    assert_eq!(
        verdict(&g, "nginx", "body_contains"),
        pass(),
        "{:#}",
        g.json
    );
    assert_eq!(verdict(&g, "nginx", "not_revoked"), fail("revoked"));
    let msg = message(&g, "nginx", "not_revoked");
    assert!(msg.contains("the stapled OCSP response"), "{msg}");
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the responder was asked");
}

/// Answers every HTTP request with 200 and a body that is no OCSP response.
fn garbage_responder() -> SocketAddr {
    canned_responder(b"\x30\x82\xff\xffnot an OCSP response".to_vec())
}

/// A bound listener and its URL, for a certificate made before its answer is.
fn reserved_url() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    (l, url)
}

/// Answers every HTTP request with 200 and `body`.
fn canned_responder(body: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    serve_canned(l, body);
    addr
}

/// Answers every HTTP request on `l` with 200 and `body`.
fn serve_canned(l: TcpListener, body: Vec<u8>) {
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = c.read(&mut [0u8; 4096]);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
}

#[test]
fn garbage_stalled_and_replayed_answers_are_classified_within_the_timeout() {
    let Some(()) = openssl() else { return };
    let env = Env::new();
    let garbage = garbage_responder();
    let stalled = common::stall_server();
    ca(&env, "ca", "OCSP Test Root");
    leaf(&env, "garbage", "1001", &format!("http://{garbage}/"));
    leaf(&env, "stalled", "1001", &format!("http://{stalled}/"));
    // A genuine answer signed by the CA, but to another request (another nonce), replayed.
    let (listener, replay_url) = reserved_url();
    leaf(&env, "replayed", "1001", &replay_url);
    index(&env);
    offline_response_with(&env, "replayed", "-nonce");
    let canned = std::fs::read(env.path("replayed.ocsp")).unwrap();
    serve_canned(listener, canned);
    let checks = file_check(&env, "garbage", "garbage", "true")
        + &file_check(&env, "stalled", "stalled", "{ ocsp_unavailable: warn }")
        + &file_check(&env, "replayed", "replayed", "true");
    let g = env.gate(&suite(&checks), &["--at", &at(Duration::ZERO)]);
    let got = verdict(&g, "garbage", "not_revoked:garbage.pem");
    assert_eq!(got, fail("ocsp_unavailable"), "{:#}", g.json);
    assert!(message(&g, "garbage", "not_revoked:garbage.pem").contains("does not parse"));
    let got = verdict(&g, "stalled", "not_revoked:stalled.pem");
    assert_eq!(got, ("warn".into(), Some("ocsp_unavailable".into())));
    let msg = message(&g, "stalled", "not_revoked:stalled.pem");
    assert!(msg.contains("within the check's timeout"), "{msg}");
    let replayed = verdict(&g, "replayed", "not_revoked:replayed.pem");
    assert_eq!(replayed, fail("ocsp_bad_signature"), "{:#}", g.json);
    let msg = message(&g, "replayed", "not_revoked:replayed.pem");
    assert!(msg.contains("nonce differs"), "{msg}");
    let took = g.check("stalled")["duration_seconds"].as_f64().unwrap();
    assert!(
        took < 5.0,
        "the 3s timeout bounds the stalled responder: {took}s"
    );
}

/// A root PKI mount whose certificates name its own OCSP responder, with a role for 127.0.0.1.
fn ocsp_mount(dev: &DevServer) -> String {
    let responder = format!("ocsp_servers={}/v1/pki/ocsp", dev.url());
    bao::web_root_mount(dev, "pki", "OCSP Bao Root", &responder)
}

#[test]
fn openbao_answers_ocsp_for_a_good_then_revoked_leaf() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let env = Env::new();
    let ca = env.write("ca.pem", ocsp_mount(&dev));
    let out = dev.must(&[
        "write",
        "-format=json",
        "pki/issue/web",
        "common_name=localhost",
        "ip_sans=127.0.0.1",
        "ttl=24h",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let leaf = env.write("leaf.pem", v["data"]["certificate"].as_str().unwrap());
    let serial = v["data"]["serial_number"].as_str().unwrap().to_string();
    let checks = format!(
        "  - name: bao\n    files: [{{ path: '{leaf}', kind: cert, ca_file: '{ca}' }}]\n    expect: {{ not_revoked: {{ via: [ocsp] }} }}\n"
    );
    let g = env.gate(&suite(&checks), &["--at", &at(Duration::ZERO)]);
    assert_eq!(
        verdict(&g, "bao", "not_revoked:leaf.pem"),
        pass(),
        "{:#}",
        g.json
    );
    let msg = message(&g, "bao", "not_revoked:leaf.pem");
    assert!(
        msg.contains("/v1/pki/ocsp") && msg.contains("good per OCSP"),
        "{msg}"
    );

    dev.must(&["write", "pki/revoke", &format!("serial_number={serial}")]);
    let g = env.gate(&suite(&checks), &["--at", &at(Duration::ZERO)]);
    assert_eq!(
        verdict(&g, "bao", "not_revoked:leaf.pem"),
        fail("revoked"),
        "{:#}",
        g.json
    );
    let msg = message(&g, "bao", "not_revoked:leaf.pem");
    assert!(msg.contains("revoked at"), "{msg}");
    assert_eq!(g.check("bao")["certs"][0]["revoked"], true);
}
