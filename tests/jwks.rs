//! The `jwks` kind against a real OpenBao OIDC provider — its keys announced, switched and
//! retired between runs, real signed tokens verified, tampered and expired ones refused — and
//! against in-process HTTPS and plain servers that serve key sets made in the test (RSA, EC,
//! OKP keys, `x5c` chains, weak keys, long caching) or misbehave (garbage, a huge body, a
//! stall). The token never appears in any output.

mod common;

use base64::Engine;
use common::bao::{self, DevServer};
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A one-check suite: `source` and `expect` are flow mappings.
fn suite(source: &str, expect: &str) -> String {
    format!("suite: jwks\ndefaults:\n  timeout: 3s\nchecks:\n  - name: idp\n    jwks: {source}\n    expect: {expect}\n")
}

fn now_arg(offset: Duration) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + offset).to_string()
}

fn passes(g: &Gate, assertion: &str) {
    assert_eq!(
        g.verdict("idp", assertion),
        ("pass".into(), None),
        "{:#}",
        g.json
    );
}

fn fails(g: &Gate, assertion: &str, reason: &str) {
    assert_eq!(
        g.verdict("idp", assertion),
        ("fail".into(), Some(reason.to_string())),
        "{:#}",
        g.json
    );
}

// ---------------------------------------------------------------- OpenBao

/// A dev server with userpass user `alice` allowed to read OIDC tokens; her token.
fn openbao() -> Option<(DevServer, String)> {
    let bin = bao::server_binary()?;
    let dev = DevServer::start(&bin);
    dev.must(&["auth", "enable", "userpass"]);
    let policy = dev.dir.path().join("oidc.hcl");
    std::fs::write(
        &policy,
        "path \"identity/oidc/token/*\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    dev.must(&["policy", "write", "oidc", &policy.display().to_string()]);
    let user = "auth/userpass/users/alice";
    dev.must(&["write", user, "password=alice-pw-2026", "policies=oidc"]);
    let login = "auth/userpass/login/alice";
    let token = dev.must(&["write", "-field=token", login, "password=alice-pw-2026"]);
    Some((dev, token.trim().to_string()))
}

/// A signing key and a role using it.
fn oidc_key(dev: &DevServer, key: &str, verification_ttl: &str, role_ttl: &str) {
    let path = format!("identity/oidc/key/{key}");
    let vttl = format!("verification_ttl={verification_ttl}");
    dev.must(&[
        "write",
        &path,
        "rotation_period=1h",
        &vttl,
        "allowed_client_ids=*",
    ]);
    let role = format!("identity/oidc/role/{key}-role");
    dev.must(&[
        "write",
        &role,
        &format!("key={key}"),
        &format!("ttl={role_ttl}"),
    ]);
}

/// A token of the role, signed by the key's current signing key.
fn oidc_token(dev: &DevServer, user: &str, key: &str) -> String {
    let out = Command::new(&dev.bin)
        .args([
            "read",
            "-field=token",
            &format!("identity/oidc/token/{key}-role"),
        ])
        .env("BAO_ADDR", dev.url())
        .env("BAO_CACERT", dev.ca())
        .env("BAO_TOKEN", user)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `kid` of a token's header.
fn kid_of(token: &str) -> String {
    let head = token.split('.').next().unwrap();
    let head = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    let v: Value = serde_json::from_slice(&head).unwrap();
    v["kid"].as_str().unwrap().to_string()
}

/// The kids OpenBao publishes.
fn published(dev: &DevServer) -> Vec<String> {
    let keys = dev.read_json("identity/oidc/.well-known/keys")["keys"].clone();
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// The discovery document of the dev server over its TLS listener, judged like a client.
fn discovery(dev: &DevServer) -> String {
    format!(
        "{{discovery: '{}/v1/identity/oidc/.well-known/openid-configuration', server_name: localhost, ca_file: '{}'}}",
        dev.url(),
        dev.ca().display()
    )
}

fn kids(list: &[&str]) -> String {
    let q: Vec<String> = list.iter().map(|k| format!("'{k}'")).collect();
    format!("[{}]", q.join(", "))
}

#[test]
fn openbao_keys_announced_switched_and_retired_between_runs() {
    let Some((dev, user)) = openbao() else { return };
    oidc_key(&dev, "app", "1h", "10m");
    let env = Env::new();
    let now = now_arg(Duration::ZERO);

    // Announced: the current key signs, the next one is already published.
    let first = oidc_token(&dev, &user, "app");
    let current = kid_of(&first);
    let before = published(&dev);
    assert_eq!(before.len(), 2, "{before:?}");
    let next = before.iter().find(|k| **k != current).unwrap().clone();
    let token = env.write("token.jwt", &first);
    let expect = format!(
        "{{kids_include: {}, min_keys: 2, chain: valid, names: [localhost], token_file: '{token}', key_policy: {{min_rsa_bits: 2048, allowed_algs: [RS256], allowed_kty: [RSA]}}, max_cache_age: 1h}}",
        kids(&[&current, &next])
    );
    let g = env.gate(&suite(&discovery(&dev), &expect), &["--at", &now]);
    assert_eq!(g.status("idp"), "pass", "{:#}", g.json);
    for a in [
        "discovery",
        "fetch",
        "handshake",
        "chain",
        "keys",
        "kids_include",
        "min_keys",
        "key_policy",
        "max_cache_age",
        "token",
    ] {
        passes(&g, a);
    }

    // Switched: the announced key signs; the old one is still published for its tokens.
    dev.must(&["write", "-f", "identity/oidc/key/app/rotate"]);
    let second = oidc_token(&dev, &user, "app");
    assert_eq!(
        kid_of(&second),
        next,
        "the announced key signs after the rotation"
    );
    let after = published(&dev);
    assert!(
        after.contains(&current) && after.contains(&next),
        "{after:?}"
    );
    std::fs::write(env.path("token.jwt"), &second).unwrap();
    let url = format!(
        "{{url: '{}/v1/identity/oidc/.well-known/keys', server_name: localhost, ca_file: '{}'}}",
        dev.url(),
        dev.ca().display()
    );
    let switched = format!(
        "{{kids_include: {}, kids_exclude: {}, min_keys: 2, token_file: '{token}'}}",
        kids(&[&next]),
        kids(&[&current])
    );
    let g = env.gate(&suite(&url, &switched), &["--at", &now]);
    passes(&g, "token");
    passes(&g, "min_keys");
    passes(&g, "kids_include");
    fails(&g, "kids_exclude", "jwks_retired_kid_present");
    assert_eq!(g.code, 1);

    // The old token still verifies (its key is published until verification_ttl passes).
    std::fs::write(env.path("token.jwt"), &first).unwrap();
    let g = env.gate(&suite(&url, &switched), &["--at", &now]);
    passes(&g, "token");

    // A JWKS without the announced kid; the series say which kid is missing.
    let missing = format!("{{kids_include: ['{next}', 'announced-but-unpublished']}}");
    let g = env.gate(&suite(&url, &missing), &["--at", &now]);
    fails(&g, "kids_include", "jwks_missing_kid");
    let msg = g.assertion("idp", "kids_include")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("announced-but-unpublished")
            && !msg.contains(&format!("expected kid \"{next}\"")),
        "{msg}"
    );
    let path = env.write("suite.yaml", suite(&url, &missing));
    let prom = rotcheck(&["gate", "-c", &path, "--format", "prom", "--at", &now]);
    let prom = String::from_utf8(prom.stdout).unwrap();
    assert!(prom.contains("rotcheck_jwks_kid_present{suite=\"jwks\",check=\"idp\",kid=\"announced-but-unpublished\",expected=\"present\"} 0"), "{prom}");
    assert!(prom.contains(&format!("rotcheck_jwks_kid_present{{suite=\"jwks\",check=\"idp\",kid=\"{next}\",expected=\"present\"}} 1")), "{prom}");
    assert!(
        prom.contains("rotcheck_jwks_keys{suite=\"jwks\",check=\"idp\"} 3"),
        "{prom}"
    );

    // A tampered token (one byte of the signature changed) and an expired one.
    let mut bytes = second.clone().into_bytes();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    std::fs::write(env.path("token.jwt"), &bytes).unwrap();
    let tok = format!("{{token_file: '{token}'}}");
    let g = env.gate(&suite(&url, &tok), &["--at", &now]);
    fails(&g, "token", "jwt_bad_signature");
    std::fs::write(env.path("token.jwt"), &second).unwrap();
    let g = env.gate(
        &suite(&url, &tok),
        &["--at", &now_arg(Duration::from_secs(3600))],
    );
    fails(&g, "token", "jwt_expired");

    // The token is a credential: it is in no output format.
    let path = env.write("suite.yaml", suite(&url, &tok));
    for format in ["human", "json", "junit", "tap", "prom"] {
        let at = now_arg(Duration::from_secs(3600));
        let out = rotcheck(&["gate", "-c", &path, "--format", format, "--at", &at]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let signature = second.rsplit('.').next().unwrap();
        assert!(
            !text.contains(&second) && !text.contains(signature),
            "{format}: {text}"
        );
    }
}

#[test]
fn openbao_retires_the_old_key_after_its_verification_ttl() {
    let Some((dev, user)) = openbao() else { return };
    oidc_key(&dev, "short", "4s", "3s");
    let old = kid_of(&oidc_token(&dev, &user, "short"));
    dev.must(&["write", "-f", "identity/oidc/key/short/rotate"]);
    assert!(published(&dev).contains(&old));
    let env = Env::new();
    let url = format!(
        "{{url: '{}/v1/identity/oidc/.well-known/keys', server_name: localhost, ca_file: '{}'}}",
        dev.url(),
        dev.ca().display()
    );
    let expect = format!("{{kids_exclude: ['{old}'], min_keys: 2}}");
    // Right after the rotation the old key is still published for its tokens.
    let g = env.gate(&suite(&url, &expect), &["--at", &now_arg(Duration::ZERO)]);
    fails(&g, "kids_exclude", "jwks_retired_kid_present");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let g = env.gate(&suite(&url, &expect), &["--at", &now_arg(Duration::ZERO)]);
        if g.verdict("idp", "kids_exclude").0 == "pass" {
            passes(&g, "min_keys");
            assert_eq!(g.status("idp"), "pass", "{:#}", g.json);
            break;
        }
        fails(&g, "kids_exclude", "jwks_retired_kid_present");
        assert!(
            Instant::now() < deadline,
            "OpenBao kept the old key 3 minutes after its verification_ttl"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(!published(&dev).contains(&old));
}

// ---------------------------------------------------------------- in-process servers

/// What the server answers to a request for a path.
type Answer = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// Serves `answer` on 127.0.0.1:0 over TLS (`tls`) or plain TCP.
fn serve(tls: Option<TlsOpts>, answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = tls.map(server_config);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (cfg, answer) = (cfg.clone(), answer.clone());
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                match cfg {
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg).unwrap();
                        let mut s = rustls::StreamOwned::new(conn, tcp);
                        respond(&mut s, &answer);
                        s.conn.send_close_notify();
                        let _ = s.flush();
                    }
                    None => respond(&mut { tcp }, &answer),
                }
            });
        }
    });
    addr
}

fn respond<S: Read + Write>(s: &mut S, answer: &Answer) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let _ = s.write_all(&answer(&path));
    let _ = s.flush();
}

fn ok_json(body: &str, cache: Option<&str>) -> Vec<u8> {
    let cc = cache
        .map(|c| format!("Cache-Control: {c}\r\n"))
        .unwrap_or_default();
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{cc}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

/// A fixed answer for every request.
fn fixed(bytes: Vec<u8>) -> Answer {
    Arc::new(move |_| bytes.clone())
}

/// The public JWK of an rcgen key pair (P-256, P-384 or Ed25519).
fn jwk_of(key: &rcgen::KeyPair, kid: &str) -> Value {
    let raw = key.public_key_raw();
    if key.algorithm() == &rcgen::PKCS_ED25519 {
        return json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "x": b64url(raw)});
    }
    let (crv, alg) = match raw.len() {
        65 => ("P-256", "ES256"),
        _ => ("P-384", "ES384"),
    };
    let n = (raw.len() - 1) / 2;
    json!({"kty": "EC", "crv": crv, "kid": kid, "alg": alg, "use": "sig", "x": b64url(&raw[1..=n]), "y": b64url(&raw[n + 1..])})
}

/// An RSA JWK of `bits` (the modulus is random odd bytes: only its size is judged).
fn rsa_jwk(kid: &str, bits: usize) -> Value {
    let mut n: Vec<u8> = (0..bits / 8).map(|i| (i * 7 + 13) as u8).collect();
    n[0] |= 0x80;
    *n.last_mut().unwrap() |= 1;
    json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": b64url(&n), "e": "AQAB"})
}

fn set(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// An HTTPS server of the usual test PKI answering `answer`; the suite source for `path`.
fn https(pki: &Pki, env: &Env, answer: Answer, path: &str) -> String {
    let addr = serve(Some(TlsOpts::new(pki.fullchain(), &pki.leaf)), answer);
    let ca = env.write("ca.pem", &pki.root.cert.pem);
    format!("{{url: 'https://{addr}{path}', server_name: localhost, ca_file: '{ca}'}}")
}

#[test]
fn rsa_ec_and_okp_keys_parse_and_the_policy_finds_weak_ones() {
    let pki = Pki::new();
    let env = Env::new();
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let keys = vec![
        rsa_jwk("rsa-new", 3072),
        jwk_of(&p256, "ec-256"),
        jwk_of(&p384, "ec-384"),
        jwk_of(&ed, "ed"),
    ];
    let body = set(&keys);
    let src = https(
        &pki,
        &env,
        fixed(ok_json(&body, Some("public, max-age=300"))),
        "/jwks.json",
    );
    let policy = "key_policy: {min_rsa_bits: 2048, allowed_algs: [RS256, ES256, ES384, EdDSA], allowed_kty: [RSA, EC, OKP]}";
    let expect = format!("{{chain: valid, min_keys: 4, max_keys: 4, kids_include: [rsa-new, ec-256, ec-384, ed], {policy}, max_cache_age: 10m}}");
    let g = env.gate(&suite(&src, &expect), &[]);
    assert_eq!(g.status("idp"), "pass", "{:#}", g.json);
    let msg = g.assertion("idp", "keys")["message"]
        .as_str()
        .unwrap()
        .to_string();
    for part in ["RSA 3072", "EC P-256", "EC P-384", "OKP Ed25519"] {
        assert!(msg.contains(part), "{msg}");
    }

    // A 1024-bit RSA key, an algorithm outside the policy, a point off the curve.
    let mut weak = keys.clone();
    weak.push(rsa_jwk("rsa-old", 1024));
    let src = https(&pki, &env, fixed(ok_json(&set(&weak), None)), "/jwks.json");
    let g = env.gate(&suite(&src, &format!("{{{policy}}}")), &[]);
    fails(&g, "key_policy", "jwks_weak_key");
    let g = env.gate(&suite(&src, "{key_policy: {allowed_algs: [RS256]}}"), &[]);
    fails(&g, "key_policy", "jwks_alg_not_allowed");
    let mut off = jwk_of(&p256, "ec-off");
    off["y"] = json!(b64url(&[7u8; 32]));
    let src = https(&pki, &env, fixed(ok_json(&set(&[off]), None)), "/jwks.json");
    let g = env.gate(&suite(&src, "{}"), &[]);
    fails(&g, "keys", "jwks_bad_key");
    assert!(g.assertion("idp", "keys")["message"]
        .as_str()
        .unwrap()
        .contains("not a point on P-256"));

    // A published private key is a bad key, and its material is never quoted.
    let mut private = rsa_jwk("leaked", 2048);
    private["d"] = json!("cHJpdmF0ZS1leHBvbmVudC1zZWNyZXQ");
    let src = https(
        &pki,
        &env,
        fixed(ok_json(&set(&[private]), None)),
        "/jwks.json",
    );
    let g = env.gate(&suite(&src, "{}"), &[]);
    fails(&g, "keys", "jwks_bad_key");
    assert!(!g
        .json
        .to_string()
        .contains("cHJpdmF0ZS1leHBvbmVudC1zZWNyZXQ"));
}

#[test]
fn x5c_chains_are_judged_and_must_carry_their_key() {
    let pki = Pki::new();
    let env = Env::new();
    let leaf_key = rcgen::KeyPair::from_pem(&pki.leaf.key_pem).unwrap();
    let mut good = jwk_of(&leaf_key, "x5c-key");
    good["x5c"] = json!([b64(&pki.leaf.der), b64(&pki.inter.cert.der)]);
    let src = https(
        &pki,
        &env,
        fixed(ok_json(&set(&[good.clone()]), None)),
        "/k",
    );
    let g = env.gate(&suite(&src, "{x5c: {required: true}}"), &[]);
    passes(&g, "x5c");
    passes(&g, "x5c_expiry");
    let positions: Vec<&str> = g.check("idp")["certs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["position"].as_str())
        .collect();
    assert!(positions.contains(&"x5c"), "{positions:?}");

    // Another PKI's chain: unknown issuer; another key's certificate: a mismatch.
    let other = Pki::build("other", VALID);
    let mut foreign = jwk_of(
        &rcgen::KeyPair::from_pem(&other.leaf.key_pem).unwrap(),
        "foreign",
    );
    foreign["x5c"] = json!([b64(&other.leaf.der), b64(&other.inter.cert.der)]);
    let src = https(&pki, &env, fixed(ok_json(&set(&[foreign]), None)), "/k");
    let g = env.gate(&suite(&src, "{x5c: {}}"), &[]);
    fails(&g, "x5c", "unknown_issuer");
    let mut swapped = good.clone();
    swapped["x5c"] = json!([b64(&other.leaf.der)]);
    let src = https(&pki, &env, fixed(ok_json(&set(&[swapped]), None)), "/k");
    let g = env.gate(&suite(&src, "{x5c: {}}"), &[]);
    fails(&g, "x5c", "jwks_x5c_mismatch");

    // An expired certificate in the chain; a key without x5c when every key must carry one.
    let old = Pki::with_leaf(EXPIRED);
    let mut expired = jwk_of(&rcgen::KeyPair::from_pem(&old.leaf.key_pem).unwrap(), "old");
    expired["x5c"] = json!([b64(&old.leaf.der), b64(&old.inter.cert.der)]);
    let ca = env.write("old-root.pem", &old.root.cert.pem);
    let src = https(
        &pki,
        &env,
        fixed(ok_json(&set(&[expired, rsa_jwk("bare", 2048)]), None)),
        "/k",
    );
    let g = env.gate(&suite(&src, &format!("{{x5c: {{ca_file: '{ca}'}}}}")), &[]);
    fails(&g, "x5c_expiry", "expired");
    let g = env.gate(
        &suite(
            &src,
            &format!("{{x5c: {{ca_file: '{ca}', required: true}}}}"),
        ),
        &[],
    );
    fails(&g, "x5c", "jwks_x5c_missing");
}

#[test]
fn an_es256_token_signed_by_a_published_key_verifies() {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let pki = Pki::new();
    let env = Env::new();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let signer =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
            .unwrap();
    let h = b64url(br#"{"alg":"ES256","kid":"ec-1","typ":"JWT"}"#);
    let p = b64url(br#"{"iss":"https://idp.test","sub":"payroll-service","exp":1924992000}"#);
    let sig = signer.sign(&rng, format!("{h}.{p}").as_bytes()).unwrap();
    let token = format!("{h}.{p}.{}", b64url(sig.as_ref()));
    let file = env.write("t.jwt", &token);
    let src = https(
        &pki,
        &env,
        fixed(ok_json(&set(&[jwk_of(&key, "ec-1")]), None)),
        "/k",
    );
    let g = env.gate(&suite(&src, &format!("{{token_file: '{file}'}}")), &[]);
    passes(&g, "token");
    let msg = g.assertion("idp", "token")["message"].as_str().unwrap();
    assert!(
        msg.contains("ec-1")
            && msg.contains("https://idp.test")
            && !msg.contains("payroll-service"),
        "{msg}"
    );
    // Signed by the same kid but another key: refused.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let src = https(
        &pki,
        &env,
        fixed(ok_json(&set(&[jwk_of(&other, "ec-1")]), None)),
        "/k",
    );
    let g = env.gate(&suite(&src, &format!("{{token_file: '{file}'}}")), &[]);
    fails(&g, "token", "jwt_bad_signature");
}

#[test]
fn discovery_caching_and_a_key_set_on_disk() {
    let pki = Pki::new();
    let env = Env::new();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let body = set(&[jwk_of(&key, "k1")]);
    let port = Arc::new(std::sync::OnceLock::<SocketAddr>::new());
    let me = port.clone();
    let answer: Answer = Arc::new(move |path| match path {
        "/.well-known/openid-configuration" => {
            let uri = format!("https://{}/keys", me.get().unwrap());
            ok_json(
                &json!({"issuer": "https://idp.test", "jwks_uri": uri}).to_string(),
                None,
            )
        }
        "/keys" => ok_json(&body, Some("public, max-age=86400")),
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    });
    let addr = serve(Some(TlsOpts::new(pki.fullchain(), &pki.leaf)), answer);
    port.set(addr).unwrap();
    let ca = env.write("ca.pem", &pki.root.cert.pem);
    let src = format!("{{discovery: 'https://{addr}/.well-known/openid-configuration', server_name: localhost, ca_file: '{ca}'}}");
    let g = env.gate(
        &suite(
            &src,
            "{chain: valid, kids_include: [k1], max_cache_age: 1h}",
        ),
        &[],
    );
    passes(&g, "discovery");
    passes(&g, "chain");
    passes(&g, "kids_include");
    fails(&g, "max_cache_age", "jwks_cache_too_long");
    let path = env.write("suite.yaml", suite(&src, "{max_cache_age: 1h}"));
    let prom =
        String::from_utf8(rotcheck(&["gate", "-c", &path, "--format", "prom", "--at", AT]).stdout)
            .unwrap();
    assert!(
        prom.contains("rotcheck_jwks_cache_max_age_seconds{suite=\"jwks\",check=\"idp\"} 86400"),
        "{prom}"
    );

    // A discovery URL that is the key set itself; a 404.
    let src =
        format!("{{discovery: 'https://{addr}/keys', server_name: localhost, ca_file: '{ca}'}}");
    fails(
        &env.gate(&suite(&src, "{}"), &[]),
        "discovery",
        "jwks_bad_discovery",
    );
    let src = format!("{{url: 'https://{addr}/missing', server_name: localhost, ca_file: '{ca}'}}");
    fails(&env.gate(&suite(&src, "{}"), &[]), "fetch", "status");

    // The same set on disk; the policy applies without a server.
    let file = env.write(
        "keys.json",
        set(&[jwk_of(&key, "k1"), rsa_jwk("small", 1024)]),
    );
    let g = env.gate(
        &suite(
            &format!("{{file: '{file}'}}"),
            "{key_policy: {min_rsa_bits: 2048}, kids_exclude: [small]}",
        ),
        &[],
    );
    fails(&g, "key_policy", "jwks_weak_key");
    fails(&g, "kids_exclude", "jwks_retired_kid_present");
}

#[test]
fn hostile_servers_get_classified_failures_within_the_timeout() {
    let env = Env::new();
    let timed = |src: String| {
        let start = Instant::now();
        let g = env.gate(&suite(&src, "{}"), &[]);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
        g
    };
    // Garbage instead of HTTP.
    let g = timed(format!("{{url: 'http://{}/keys'}}", garbage_server()));
    fails(&g, "fetch", "protocol");
    // A stall after accepting.
    let g = timed(format!("{{url: 'http://{}/keys'}}", stall_server()));
    fails(&g, "fetch", "timeout");
    assert_eq!(g.error_class("idp").as_deref(), Some("timeout"));
    // A head, then a body that stops half-way and stalls.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            let _ = tcp.read(&mut [0u8; 4096]);
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"keys\": [");
            std::thread::sleep(Duration::from_secs(30));
        }
    });
    let g = timed(format!("{{url: 'http://{slow}/keys'}}"));
    fails(&g, "fetch", "timeout");
    let msg = g.assertion("idp", "fetch")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("did not finish"), "{msg}");
    // A body that claims 1 GB and keeps coming.
    let huge: Answer = Arc::new(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n{\"keys\": [".to_vec();
        r.extend(vec![b' '; 3 * 1024 * 1024]);
        r
    });
    let g = timed(format!("{{url: 'http://{}/keys'}}", serve(None, huge)));
    fails(&g, "fetch", "jwks_too_large");
    // HTML, not a key set.
    let html = fixed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<html></html>".to_vec(),
    );
    let g = timed(format!("{{url: 'http://{}/keys'}}", serve(None, html)));
    fails(&g, "keys", "jwks_not_json");
}

#[test]
fn the_shipped_example_lints() {
    let out = rotcheck(&["lint", "-c", "checks/jwks.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = rotcheck(&["list", "-c", "checks/jwks.yaml"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("stage retire") && list.contains("oidc-old-key-retired"),
        "{list}"
    );
}
