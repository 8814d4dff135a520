//! The tls probe, `verify` and `inspect` against real servers that really fail: one test per
//! connection failure class and per chain reason. Certificates are dated around `common::AT`
//! and every run passes `--at`, so nothing goes stale.

mod common;

use common::*;
use rotcheck::kinds::tls::settle::Waited;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn good_server(pki: &Pki) -> SocketAddr {
    tls_server(TlsOpts::new(pki.fullchain(), &pki.leaf))
}

/// Runs one tls check named `t`.
fn run(env: &Env, tls: &str, expect: &str) -> Gate {
    env.gate(&tls_suite("t", tls, expect), &[])
}

/// Writes the CA file (root, plus the intermediate when `with_inter`).
fn ca_file(env: &Env, pki: &Pki, with_inter: bool) -> String {
    let mut certs = vec![&pki.root.cert];
    if with_inter {
        certs.push(&pki.inter.cert);
    }
    env.write("ca.pem", pem_of(&certs))
}

fn assert_connect_failure(g: &Gate, class: &str) {
    assert_eq!(g.code, 1, "{:#}", g.json);
    assert_eq!(g.error_class("t").as_deref(), Some(class), "{:#}", g.json);
    let (status, reason) = g.verdict("t", "handshake");
    assert_eq!((status.as_str(), reason.as_deref()), ("fail", Some(class)));
    let msg = g.assertion("t", "handshake")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !msg.is_empty() && !msg.contains('\n'),
        "one-line message: {msg}"
    );
}

#[test]
fn valid_chain_passes_and_reports_facts() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = good_server(&pki);
    let ca = ca_file(&env, &pki, false);
    let leaf = env.write("server.crt", &pki.leaf.pem);
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}", server_name: svc.rotcheck.test, ca_file: "{ca}"}}"#),
        &format!(
            r#"{{chain: valid, names: [localhost, "127.0.0.1"], issuer_cn: rotcheck test intermediate, min_tls: "1.2", serves_file: "{leaf}"}}"#
        ),
    );
    assert_eq!(g.code, 0, "{:#}", g.json);
    assert_eq!(g.status("t"), "pass");
    let c = g.check("t");
    assert!(c["error"].is_null());
    assert_eq!(c["facts"]["tls"]["version"], "1.3");
    let positions: Vec<&str> = c["certs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["position"].as_str().unwrap())
        .collect();
    assert_eq!(positions, ["leaf", "intermediate"]);
    for name in [
        "handshake",
        "chain",
        "names",
        "expiry",
        "issuer_cn",
        "min_tls",
        "serves_file",
    ] {
        assert_eq!(g.verdict("t", name).0, "pass", "{name}: {:#}", c);
    }
}

#[test]
fn refused_on_a_closed_port() {
    let env = Env::new();
    let g = run(&env, &format!(r#"{{addr: "{}"}}"#, closed_port()), "{}");
    assert_connect_failure(&g, "refused");
}

#[test]
fn reset_when_the_listener_drops_us() {
    let env = Env::new();
    let g = run(&env, &format!(r#"{{addr: "{}"}}"#, reset_server()), "{}");
    assert_connect_failure(&g, "reset");
    let msg = g.assertion("t", "handshake")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("errno 104"), "{msg}");
}

#[test]
fn timeout_on_a_stalled_listener_within_the_budget() {
    let env = Env::new();
    let suite = format!(
        "suite: test\nchecks:\n  - name: t\n    timeout: 1s\n    tls: {{addr: \"{}\"}}\n",
        stall_server()
    );
    let started = Instant::now();
    let g = env.gate(&suite, &[]);
    let took = started.elapsed();
    assert_connect_failure(&g, "timeout");
    // A bound, not a performance target: 1 s budget plus process start and slack.
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn dns_failure_for_an_invalid_name() {
    let env = Env::new();
    let g = run(&env, r#"{addr: "no-such-host.invalid:443"}"#, "{}");
    assert_connect_failure(&g, "dns");
}

#[test]
fn protocol_when_the_peer_speaks_plain_http() {
    let env = Env::new();
    let g = run(&env, &format!(r#"{{addr: "{}"}}"#, http_server()), "{}");
    assert_connect_failure(&g, "protocol");
    let msg = g.assertion("t", "handshake")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("HTTP/1.1 400"), "{msg}");
}

#[test]
fn protocol_when_the_peer_sends_garbage() {
    let env = Env::new();
    let g = run(&env, &format!(r#"{{addr: "{}"}}"#, garbage_server()), "{}");
    assert_connect_failure(&g, "protocol");
}

#[test]
fn eof_when_the_peer_closes_during_the_handshake() {
    let env = Env::new();
    let g = run(&env, &format!(r#"{{addr: "{}"}}"#, eof_server()), "{}");
    assert_connect_failure(&g, "eof");
}

#[test]
fn unreachable_or_skipped() {
    // Whether a documentation prefix is "unreachable" depends on the host's routes.
    let env = Env::new();
    let suite = "suite: test\nchecks:\n  - name: t\n    timeout: 6s\n    tls: {addr: \"[2001:db8::1]:443\"}\n";
    let g = env.gate(suite, &[]);
    let class = g.error_class("t").unwrap_or_default();
    if class != "unreachable" {
        println!("skipped: this network reports {class} (not unreachable) for 2001:db8::1");
        return;
    }
    assert_connect_failure(&g, "unreachable");
}

fn mtls_server(pki: &Pki, client_ca: &Authority) -> SocketAddr {
    let mut o = TlsOpts::new(pki.fullchain(), &pki.leaf);
    o.client_ca = Some(client_ca.cert.der.clone());
    o.versions = TLS13_ONLY;
    tls_server(o)
}

#[test]
fn tls_alert_certificate_required_without_a_client_cert() {
    let (env, pki) = (Env::new(), Pki::new());
    let clients = Authority::root("rotcheck test client ca");
    let srv = mtls_server(&pki, &clients);
    let ca = ca_file(&env, &pki, false);
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}", ca_file: "{ca}"}}"#),
        "{chain: valid}",
    );
    assert_connect_failure(&g, "tls_alert");
    assert_eq!(g.check("t")["error"]["alert"], "certificate_required");
    // The server's chain was recorded before the rejection, and still judged.
    assert_eq!(g.check("t")["certs"].as_array().unwrap().len(), 2);
    assert_eq!(g.verdict("t", "chain").0, "pass");
}

#[test]
fn mtls_with_a_client_cert_passes() {
    let (env, pki) = (Env::new(), Pki::new());
    let clients = Authority::root("rotcheck test client ca");
    let me = clients.client("rotcheck-agent");
    let srv = mtls_server(&pki, &clients);
    let ca = ca_file(&env, &pki, false);
    let (cert, key) = (env.write("c.crt", &me.pem), env.write("c.key", &me.key_pem));
    let g = run(
        &env,
        &format!(
            r#"{{addr: "{srv}", ca_file: "{ca}", client_cert: "{cert}", client_key: "{key}"}}"#
        ),
        "{chain: valid}",
    );
    assert_eq!(g.code, 0, "{:#}", g.json);
    assert_eq!(g.verdict("t", "handshake").0, "pass");
}

#[test]
fn no_wait_after_the_handshake_without_a_certificate_request() {
    let pki = Pki::new();
    let s = handshake(good_server(&pki), None).expect("handshake");
    assert_eq!(s.version.as_deref(), Some("1.3"));
    assert!(!s.asked_for_client_cert);
    assert_eq!(s.waited, Waited::No);
}

#[test]
fn the_wait_for_a_late_rejection_ends_at_the_session_ticket() {
    let pki = Pki::new();
    let clients = Authority::root("rotcheck test client ca");
    let me = clients.client("rotcheck-agent");
    let s = handshake(mtls_server(&pki, &clients), Some(&me)).expect("handshake");
    assert!(s.asked_for_client_cert);
    assert_eq!(s.waited, Waited::Ticket);
}

#[test]
fn without_a_ticket_the_wait_runs_its_course() {
    let pki = Pki::new();
    let clients = Authority::root("rotcheck test client ca");
    let me = clients.client("rotcheck-agent");
    let mut o = TlsOpts::new(pki.fullchain(), &pki.leaf);
    o.client_ca = Some(clients.cert.der.clone());
    o.versions = TLS13_ONLY;
    o.tickets = 0;
    let s = handshake(tls_server(o), Some(&me)).expect("handshake");
    assert!(s.asked_for_client_cert);
    assert_eq!(s.waited, Waited::Elapsed);
}

#[test]
fn tls12_client_auth_is_settled_in_the_handshake() {
    let pki = Pki::new();
    let clients = Authority::root("rotcheck test client ca");
    let mut o = TlsOpts::new(pki.fullchain(), &pki.leaf);
    o.client_ca = Some(clients.cert.der.clone());
    o.versions = TLS12_ONLY;
    let me = clients.client("rotcheck-agent");
    let s = handshake(tls_server(o), Some(&me)).expect("handshake");
    assert_eq!(s.version.as_deref(), Some("1.2"));
    assert!(s.asked_for_client_cert);
    assert_eq!(s.waited, Waited::No);
}

#[test]
fn a_late_certificate_required_alert_is_still_caught() {
    let pki = Pki::new();
    let clients = Authority::root("rotcheck test client ca");
    let f = handshake(mtls_server(&pki, &clients), None).expect_err("rejected");
    assert_eq!(f.failure.alert.as_deref(), Some("certificate_required"));
    assert_eq!(f.chain.len(), 2);
}

#[test]
fn a_client_cert_from_another_ca_is_rejected_after_the_handshake() {
    let pki = Pki::new();
    let clients = Authority::root("rotcheck test client ca");
    let stranger = Authority::root("some other ca").client("rotcheck-agent");
    let f = handshake(mtls_server(&pki, &clients), Some(&stranger)).expect_err("rejected");
    assert_eq!(f.failure.class.as_str(), "tls_alert", "{:?}", f.failure);
    assert!(f.failure.alert.is_some(), "{:?}", f.failure);
}

#[test]
fn unreadable_client_key_is_an_error_not_a_connection_failure() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = good_server(&pki);
    let cert = env.write("c.crt", &pki.leaf.pem);
    let missing = env.path("missing.key").display().to_string();
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}", client_cert: "{cert}", client_key: "{missing}"}}"#),
        "{}",
    );
    assert_eq!(g.status("t"), "error");
    assert_eq!(g.error_class("t").as_deref(), Some("not_found"));
}

/// Runs a server presenting `chain` and returns the `chain` verdict.
fn chain_verdict(
    env: &Env,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    leaf: &Issued,
    ca: &str,
    expect: &str,
) -> (Gate, String, Option<String>) {
    let srv = tls_server(TlsOpts::new(chain, leaf));
    let g = run(
        env,
        &format!(r#"{{addr: "{srv}", server_name: localhost, ca_file: "{ca}"}}"#),
        expect,
    );
    let (s, r) = g.verdict("t", "chain");
    (g, s, r)
}

#[test]
fn incomplete_chain_when_only_the_leaf_is_sent() {
    let (env, pki) = (Env::new(), Pki::new());
    let ca = ca_file(&env, &pki, true);
    // Every client trusting root + intermediate accepts; the chain is still not portable.
    let (g, s, r) = chain_verdict(
        &env,
        vec![pki.leaf.der.clone()],
        &pki.leaf,
        &ca,
        "{chain: valid}",
    );
    assert_eq!((s.as_str(), r), ("pass", None));
    for client in ["openssl", "go", "rustls"] {
        let (s, _) = g.verdict("t", &format!("accepted_by_{client}"));
        assert_eq!(s, "pass", "{client}");
    }
    assert_eq!(
        g.verdict("t", "complete_chain"),
        ("warn".into(), Some("incomplete_chain".into()))
    );
    let msg = g.assertion("t", "complete_chain")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("only the leaf") && msg.contains("fullchain.crt"),
        "{msg}"
    );
    assert_eq!(g.code, 0, "an incomplete chain only warns by default");
    // `complete: required` makes it fail the check.
    let (g, _, _) = chain_verdict(
        &env,
        vec![pki.leaf.der.clone()],
        &pki.leaf,
        &ca,
        "{chain: {valid: true, complete: required}}",
    );
    assert_eq!(
        g.verdict("t", "complete_chain"),
        ("fail".into(), Some("incomplete_chain".into()))
    );
    assert_eq!(g.code, 1);
}

#[test]
fn leaf_only_with_a_root_only_ca_file_names_the_missing_intermediate() {
    let (env, pki) = (Env::new(), Pki::new());
    let ca = ca_file(&env, &pki, false);
    let (g, s, r) = chain_verdict(
        &env,
        vec![pki.leaf.der.clone()],
        &pki.leaf,
        &ca,
        "{chain: valid}",
    );
    assert_eq!(
        (s.as_str(), r.as_deref()),
        ("fail", Some("incomplete_chain"))
    );
    let msg = g.assertion("t", "chain")["message"].as_str().unwrap();
    assert!(msg.contains("intermediate is missing"), "{msg}");
    assert!(!msg.contains("server sent"), "{msg}");
}

#[test]
fn unknown_issuer_for_another_pki() {
    let (env, pki) = (Env::new(), Pki::new());
    let other = Pki::build("elsewhere", VALID);
    let ca = ca_file(&env, &pki, false);
    let (g, s, r) = chain_verdict(&env, other.fullchain(), &other.leaf, &ca, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("unknown_issuer")));
    let msg = g.assertion("t", "chain")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("elsewhere intermediate"), "{msg}");
}

#[test]
fn bad_signature_for_a_rekeyed_ca_with_the_same_name() {
    let (env, pki, rekeyed) = (Env::new(), Pki::new(), Pki::new());
    let ca = ca_file(&env, &pki, false);
    let (_, s, r) = chain_verdict(
        &env,
        rekeyed.fullchain(),
        &rekeyed.leaf,
        &ca,
        "{chain: valid}",
    );
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("bad_signature")));
}

#[test]
fn invalid_usage_for_a_client_only_leaf() {
    let (env, pki) = (Env::new(), Pki::new());
    let leaf = pki.inter.client_only_leaf(NAMES);
    let ca = ca_file(&env, &pki, false);
    let chain = vec![leaf.der.clone(), pki.inter.cert.der.clone()];
    let (_, s, r) = chain_verdict(&env, chain, &leaf, &ca, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("invalid_usage")));
}

#[test]
fn self_signed_leaf() {
    let (env, pki) = (Env::new(), Pki::new());
    let me = self_signed(NAMES);
    let ca = ca_file(&env, &pki, false);
    let (_, s, r) = chain_verdict(&env, vec![me.der.clone()], &me, &ca, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("self_signed")));
}

#[test]
fn pinned_self_signed_leaf_in_ca_file_is_valid() {
    let env = Env::new();
    let me = self_signed(NAMES);
    let ca = env.write("ca.pem", &me.pem);
    let (_, s, _) = chain_verdict(&env, vec![me.der.clone()], &me, &ca, "{chain: valid}");
    assert_eq!(s, "pass");
}

#[test]
fn expired_leaf() {
    let (env, pki) = (Env::new(), Pki::with_leaf(EXPIRED));
    let ca = ca_file(&env, &pki, false);
    let (g, s, r) = chain_verdict(&env, pki.fullchain(), &pki.leaf, &ca, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("expired")));
    assert_eq!(g.verdict("t", "expiry").1.as_deref(), Some("expired"));
}

#[test]
fn not_yet_valid_leaf() {
    let (env, pki) = (Env::new(), Pki::with_leaf(FUTURE));
    let ca = ca_file(&env, &pki, false);
    let (_, s, r) = chain_verdict(&env, pki.fullchain(), &pki.leaf, &ca, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("not_yet_valid")));
}

#[test]
fn name_mismatch_in_chain_and_in_the_implicit_server_name() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = good_server(&pki);
    let ca = ca_file(&env, &pki, false);
    let suite = format!(
        "suite: test\nchecks:\n  - name: with-chain\n    tls: {{addr: \"{srv}\", server_name: other.example, ca_file: \"{ca}\"}}\n    expect: {{chain: valid}}\n  - name: without-chain\n    tls: {{addr: \"{srv}\", server_name: other.example}}\n"
    );
    let g = env.gate(&suite, &[]);
    let (s, r) = g.verdict("with-chain", "chain");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("name_mismatch")));
    let (s, r) = g.verdict("without-chain", "server_name");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("name_mismatch")));
}

#[test]
fn ip_address_target_matches_ip_san_without_sni() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = good_server(&pki);
    let ca = ca_file(&env, &pki, false);
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}", ca_file: "{ca}"}}"#),
        "{chain: valid}",
    );
    assert_eq!(g.verdict("t", "chain").0, "pass", "{:#}", g.json);
}

#[test]
fn names_expectation_uses_web_pki_rules() {
    let (env, root) = (Env::new(), Authority::root("wild root"));
    let leaf = root.leaf(&["*.wild.test", "10.1.2.3"], VALID);
    let srv = tls_server(TlsOpts::new(vec![leaf.der.clone()], &leaf));
    let tls = format!(r#"{{addr: "{srv}", server_name: a.wild.test}}"#);
    let g = run(
        &env,
        &tls,
        r#"{names: [a.wild.test, b.wild.test, "10.1.2.3"]}"#,
    );
    assert_eq!(g.verdict("t", "names").0, "pass", "{:#}", g.json);
    let g = run(
        &env,
        &tls,
        r#"{names: [a.b.wild.test, wild.test, "10.1.2.4"]}"#,
    );
    assert_eq!(
        g.verdict("t", "names"),
        ("fail".into(), Some("name_mismatch".into()))
    );
}

#[test]
fn min_tls_fails_against_a_tls12_only_server() {
    let (env, pki) = (Env::new(), Pki::new());
    let mut o = TlsOpts::new(pki.fullchain(), &pki.leaf);
    o.versions = TLS12_ONLY;
    let srv = tls_server(o);
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}"}}"#),
        r#"{min_tls: "1.3"}"#,
    );
    assert_eq!(
        g.verdict("t", "min_tls"),
        ("fail".into(), Some("tls_version".into()))
    );
    assert_eq!(g.check("t")["facts"]["tls"]["version"], "1.2");
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}"}}"#),
        r#"{min_tls: "1.2"}"#,
    );
    assert_eq!(g.verdict("t", "min_tls").0, "pass");
}

#[test]
fn serves_file_detects_a_stale_leaf() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = good_server(&pki);
    let renewed = pki.inter.leaf(NAMES, VALID);
    let same = env.write("same.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let newer = env.write("new.crt", &renewed.pem);
    let tls = format!(r#"{{addr: "{srv}"}}"#);
    let g = run(&env, &tls, &format!(r#"{{serves_file: "{same}"}}"#));
    assert_eq!(g.verdict("t", "serves_file").0, "pass");
    let g = run(&env, &tls, &format!(r#"{{serves_file: "{newer}"}}"#));
    assert_eq!(
        g.verdict("t", "serves_file"),
        ("fail".into(), Some("stale_leaf".into()))
    );
    let msg = g.assertion("t", "serves_file")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("reload"), "{msg}");
}

#[test]
fn issuer_cn_matches_the_leaf_issuer() {
    let (env, pki) = (Env::new(), Pki::new());
    let tls = format!(r#"{{addr: "{}"}}"#, good_server(&pki));
    let g = run(&env, &tls, "{issuer_cn: rotcheck test intermediate}");
    assert_eq!(g.verdict("t", "issuer_cn").0, "pass");
    let g = run(&env, &tls, "{issuer_cn: prod-intermediate}");
    assert_eq!(
        g.verdict("t", "issuer_cn"),
        ("fail".into(), Some("issuer_mismatch".into()))
    );
}

#[test]
fn at_shifts_expiry() {
    let (env, pki) = (Env::new(), Pki::new());
    let ca = ca_file(&env, &pki, false);
    let suite = tls_suite(
        "t",
        &format!(r#"{{addr: "{}", ca_file: "{ca}"}}"#, good_server(&pki)),
        "{chain: valid, expiry: {warn: 30d, crit: 7d}}",
    );
    let at = |t: &str| env.gate(&suite, &["--at", t]);
    assert_eq!(at(AT).verdict("t", "expiry").0, "pass");
    let soon = at("2030-12-10T00:00:00Z");
    assert_eq!(
        soon.verdict("t", "expiry"),
        ("warn".into(), Some("expires_soon".into()))
    );
    assert_eq!(soon.code, 0, "a warning passes the gate");
    let crit = at("2030-12-28T00:00:00Z");
    assert_eq!(
        crit.verdict("t", "expiry"),
        ("fail".into(), Some("expires_soon".into()))
    );
    let late = at("2031-02-01T00:00:00Z");
    assert_eq!(late.verdict("t", "chain").1.as_deref(), Some("expired"));
    assert_eq!(late.verdict("t", "expiry").1.as_deref(), Some("expired"));
}

#[test]
fn cert_facts_are_reported_on_a_failing_chain() {
    let (env, pki) = (Env::new(), Pki::new());
    let other = Pki::build("elsewhere", VALID);
    let ca = ca_file(&env, &pki, false);
    let (g, s, _) = chain_verdict(&env, other.fullchain(), &other.leaf, &ca, "{chain: valid}");
    assert_eq!(s, "fail");
    let certs = g.check("t")["certs"].as_array().unwrap().clone();
    assert_eq!(certs.len(), 2);
    let leaf = &certs[0];
    assert_eq!(leaf["position"], "leaf");
    assert!(leaf["subject"].as_str().unwrap().contains("localhost"));
    assert!(leaf["issuer"]
        .as_str()
        .unwrap()
        .contains("elsewhere intermediate"));
    assert_eq!(leaf["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(leaf["not_after"], "2031-01-01T00:00:00Z");
    assert!(leaf["sans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "IP:127.0.0.1"));
    assert!(!leaf["serial"].as_str().unwrap().is_empty());
}

#[test]
fn partial_chain_accepts_an_intermediate_anchor() {
    let (env, pki) = (Env::new(), Pki::new());
    let ca = env.write("inter.pem", &pki.inter.cert.pem);
    let (g, s, r) = chain_verdict(&env, pki.fullchain(), &pki.leaf, &ca, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("fail", Some("unknown_issuer")));
    let msg = g.assertion("t", "chain")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("partial"), "{msg}");
    let (_, s, _) = chain_verdict(
        &env,
        pki.fullchain(),
        &pki.leaf,
        &ca,
        "{chain: {valid: true, partial: true}}",
    );
    assert_eq!(s, "pass");
}

#[test]
fn missing_ca_file_is_an_error() {
    let (env, pki) = (Env::new(), Pki::new());
    let missing = env.path("nope.pem").display().to_string();
    let (g, s, r) = chain_verdict(&env, pki.fullchain(), &pki.leaf, &missing, "{chain: valid}");
    assert_eq!((s.as_str(), r.as_deref()), ("error", Some("not_found")));
    assert_eq!(g.code, 1);
}

// ---------------------------------------------------------------- verify

fn verify(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["verify", "--format", "json"];
    if !args.contains(&"--at") {
        all.extend(["--at", AT]);
    }
    all.extend(args);
    rotcheck_json(&all)
}

#[test]
fn verify_valid_incomplete_and_expired() {
    let (env, pki) = (Env::new(), Pki::new());
    let full = env.write("full.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let leaf = env.write("leaf.crt", &pki.leaf.pem);
    let root = env.write("root.pem", &pki.root.cert.pem);
    let both = env.write("both.pem", pem_of(&[&pki.root.cert, &pki.inter.cert]));
    let (code, v) = verify(&[&full, "--ca", &root, "--host", "localhost"]);
    assert_eq!((code, v["valid"].as_bool()), (0, Some(true)), "{v:#}");
    assert!(v["reason"].is_null());
    assert_eq!(v["certs"].as_array().unwrap().len(), 2);
    let (code, v) = verify(&[&leaf, "--chain", &full, "--ca", &root]);
    let listed = v["certs"].as_array().unwrap().len();
    assert_eq!(
        (code, listed),
        (0, 2),
        "the leaf of the fullchain is listed once: {v:#}"
    );
    // Every client completes a lone leaf from the CA file; completeness is a warning.
    let (code, v) = verify(&[&leaf, "--ca", &both]);
    assert_eq!((code, v["reason"].as_str()), (0, None), "{v:#}");
    assert_eq!(v["complete_chain"]["reason"], "incomplete_chain");
    let (code, v) = verify(&[
        &leaf,
        "--chain",
        &env.write("i.pem", &pki.inter.cert.pem),
        "--ca",
        &root,
    ]);
    assert_eq!((code, v["valid"].as_bool()), (0, Some(true)), "{v:#}");
    let (code, v) = verify(&[&full, "--ca", &root, "--at", "2031-06-01T00:00:00Z"]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("expired")));
    let (code, v) = verify(&[&full, "--ca", &root, "--host", "other.example"]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("name_mismatch")));
}

#[test]
fn verify_partial_and_usage_errors() {
    let (env, pki) = (Env::new(), Pki::new());
    let full = env.write("full.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let inter = env.write("inter.pem", &pki.inter.cert.pem);
    assert_eq!(verify(&[&full, "--ca", &inter]).0, 1);
    assert_eq!(verify(&[&full, "--ca", &inter, "--partial"]).0, 0);
    let missing = env.path("missing.pem").display().to_string();
    let out = rotcheck(&["verify", &missing, "--ca", &inter]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let garbage = env.write("garbage.pem", "not a certificate\n");
    assert_eq!(
        rotcheck(&["verify", &garbage, "--ca", &inter])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        rotcheck(&["verify", &full]).status.code(),
        Some(2),
        "--ca is required"
    );
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_a_file_reports_order() {
    let (env, pki) = (Env::new(), Pki::new());
    let good = env.write("full.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let (code, v) = rotcheck_json(&["inspect", &good, "--format", "json", "--at", AT]);
    assert_eq!(code, 0);
    let certs = v["certs"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0]["issued_by_next"], true);
    assert!(certs[1]["issued_by_next"].is_null());
    assert_eq!(certs[0]["key_type"], "ECDSA P-256");
    assert_eq!(v["order"]["leaf_first"], true);
    let reversed = env.write("rev.crt", pem_of(&[&pki.inter.cert, &pki.leaf]));
    let (_, v) = rotcheck_json(&["inspect", &reversed, "--format", "json"]);
    assert_eq!(v["order"]["leaf_first"], false);
    assert_eq!(v["order"]["ordered"], false);
    let human = rotcheck(&["inspect", &good, "--at", AT]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("subject:")
            && text.contains("expires in")
            && text.contains("issued by #2: yes"),
        "{text}"
    );
}

#[test]
fn inspect_a_listener_and_failures() {
    let pki = Pki::new();
    let srv = good_server(&pki).to_string();
    let (code, v) = rotcheck_json(&[
        "inspect",
        &srv,
        "--servername",
        "localhost",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["certs"].as_array().unwrap().len(), 2);
    assert_eq!(v["tls"]["version"], "1.3");
    let closed = closed_port().to_string();
    assert_eq!(rotcheck(&["inspect", &closed]).status.code(), Some(2));
    assert_eq!(
        rotcheck(&["inspect", "/no/such/file.pem"]).status.code(),
        Some(2)
    );
}

#[test]
fn inspect_reads_a_der_file_and_a_single_certificate() {
    let (env, pki) = (Env::new(), Pki::new());
    let der = env.write("leaf.der", pki.leaf.der.as_ref());
    let pem = env.write("leaf.pem", pem_of(&[&pki.leaf]));
    let (code, v) = rotcheck_json(&["inspect", &der, "--format", "json", "--at", AT]);
    assert_eq!(code, 0, "{v:#}");
    let (_, from_pem) = rotcheck_json(&["inspect", &pem, "--format", "json", "--at", AT]);
    assert_eq!(v["certs"], from_pem["certs"], "DER and PEM say the same");
    let human = rotcheck(&["inspect", &der, "--at", AT]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("1 certificate(s)"), "{text}");
    assert!(
        text.contains("chain order: leaf first: yes; a single certificate"),
        "{text}"
    );
    assert!(!text.contains("issued by the next"), "{text}");
    let mut trailing = pki.leaf.der.to_vec();
    trailing.extend_from_slice(b"junk");
    let bad = env.write("bad.der", trailing);
    let out = rotcheck(&["inspect", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a DER file holds exactly one"), "{err}");
}

#[test]
fn inspect_without_a_port_says_the_port_is_missing() {
    for (target, hint) in [
        ("127.0.0.1", "e.g. 127.0.0.1:443"),
        ("vault.example.test", "e.g. vault.example.test:443"),
        ("::1", "e.g. [::1]:443"),
    ] {
        let out = rotcheck(&["inspect", target]);
        assert_eq!(out.status.code(), Some(2), "{target}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the port is missing; write HOST:PORT"),
            "{err}"
        );
        assert!(err.contains(hint), "{err}");
    }
    let out = rotcheck(&["inspect", "/no/such/leaf.pem"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("port"));
}

// ---------------------------------------------------------------- hostile chains

/// A server padding its chain with copies of the intermediate: a long chain still validates
/// (duplicates are harmless); one past TLS's 64 KiB handshake limit is a classified failure,
/// within the timeout, never a hang or a crash.
#[test]
fn huge_chains_are_judged_or_classified_within_the_timeout() {
    let (env, pki) = (Env::new(), Pki::new());
    let ca = ca_file(&env, &pki, false);
    let padded = |copies: usize| {
        let mut chain = vec![pki.leaf.der.clone()];
        chain.extend(std::iter::repeat_n(pki.inter.cert.der.clone(), copies));
        chain
    };
    let (_, s, _) = chain_verdict(&env, padded(40), &pki.leaf, &ca, "{chain: valid}");
    assert_eq!(s, "pass", "a long but legal chain validates");
    let started = Instant::now();
    let srv = tls_server(TlsOpts::new(padded(400), &pki.leaf));
    let g = run(
        &env,
        &format!(r#"{{addr: "{srv}", server_name: localhost, ca_file: "{ca}"}}"#),
        "{chain: valid}",
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "bounded by the 3 s timeout"
    );
    assert_eq!(g.code, 1, "{:#}", g.json);
    let class = g.check("t")["error"]["class"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ["protocol", "tls_alert", "io", "reset", "eof"].contains(&class.as_str()),
        "{class}: {:#}",
        g.json
    );
    let msg = g.check("t")["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(!msg.is_empty(), "a one-line message says what happened");
    println!("huge chain: {class}: {msg}");
}

#[test]
fn lint_warns_about_a_leaf_living_longer_than_max_validity() {
    let (env, pki) = (Env::new(), Pki::new());
    let ca = ca_file(&env, &pki, false);
    let (g, s, _) = chain_verdict(
        &env,
        pki.fullchain(),
        &pki.leaf,
        &ca,
        "{chain: {valid: true, max_validity: 1h}}",
    );
    assert_eq!(s, "pass");
    assert_eq!(
        g.verdict("t", "lint"),
        ("warn".into(), Some("validity_too_long".into()))
    );
    assert_eq!(g.code, 0, "lint only warns");
    let (g, _, _) = chain_verdict(&env, pki.fullchain(), &pki.leaf, &ca, "{chain: valid}");
    let names: Vec<&str> = g.check("t")["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"lint"),
        "no finding, no lint assertion: {names:?}"
    );
}
