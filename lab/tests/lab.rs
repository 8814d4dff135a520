//! End-to-end tests of the lab over real TLS and HTTP: status codes, cert login, tokens,
//! PKI issuance, KV, faults, and the `rotcheck-lab up` binary.

mod support;

use rotcheck_lab::pki::{CertKey, LabPki, LeafSpec, Validity};
use rotcheck_lab::{FaultKind, FaultListener, Lab, LabConfig};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde_json::json;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};
use support::{within, Client};

async fn lab() -> Lab {
    Lab::start(LabConfig {
        drift: true,
        ..LabConfig::default()
    })
    .await
    .unwrap()
}

const UNIFIED: &str = "failed to match all constraints for this login certificate";
const INVALID_TOKEN_117: &str = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";
const DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

#[tokio::test]
async fn health_status_codes_follow_state_and_query() {
    let lab = lab().await;
    let c = Client::anonymous(&lab);
    let code = |path: &'static str| {
        let c = c.clone();
        async move { c.call("GET", path, None, None).await.unwrap().status }
    };
    let r = c.call("GET", "/v1/sys/health", None, None).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = r.json();
    assert_eq!(
        (body["sealed"].clone(), body["standby"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(body["version"], "1.20.4");
    assert_eq!(body["cluster_name"], "vault-cluster-lab");
    assert_eq!(body["removed_from_cluster"], false);
    let head = c.call("HEAD", "/v1/sys/health", None, None).await.unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(
        head.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        c.call("POST", "/v1/sys/health", None, None)
            .await
            .unwrap()
            .status,
        405
    );
    assert_eq!(code("/v1/sys/health?activecode=299").await, 299);
    assert_eq!(code("/v1/sys/health?activecode=abc").await, 400);
    assert_eq!(code("/v1/sys/health?removedcode=abc").await, 400);

    lab.set_standby(true);
    assert_eq!(code("/v1/sys/health").await, 429);
    assert_eq!(
        code("/v1/sys/health?standbyok").await,
        429,
        "an empty value means false"
    );
    assert_eq!(code("/v1/sys/health?standbyok=true").await, 200);
    assert_eq!(code("/v1/sys/health?standbycode=299").await, 299);
    lab.set_standby(false);

    lab.set_sealed(true);
    let sealed = c.call("GET", "/v1/sys/health", None, None).await.unwrap();
    assert_eq!(sealed.status, 503);
    assert_eq!(
        (
            sealed.json()["sealed"].clone(),
            sealed.json()["standby"].clone()
        ),
        (json!(true), json!(true))
    );
    assert!(sealed.json().get("cluster_name").is_none());
    assert_eq!(
        code("/v1/sys/health?sealedcode=299&uninitcode=299").await,
        299
    );
    let mounts = c.get("/v1/sys/mounts", lab.root_token()).await;
    assert_eq!(
        (mounts.status, mounts.error()),
        (503, "Vault is sealed".to_string())
    );
    let seal = c
        .call("GET", "/v1/sys/seal-status", None, None)
        .await
        .unwrap();
    assert_eq!(
        (seal.status, seal.json()["sealed"].clone()),
        (200, json!(true))
    );
    lab.set_sealed(false);

    lab.set_initialized(false);
    assert_eq!(code("/v1/sys/health").await, 501);
    assert_eq!(code("/v1/sys/health?uninitcode=299").await, 299);
    lab.set_initialized(true);

    lab.set_version("1.18.2").unwrap();
    assert_eq!(
        code("/v1/sys/health?removedcode=abc").await,
        200,
        "1.18 ignores removedcode"
    );
    assert!(c
        .call("GET", "/v1/sys/health", None, None)
        .await
        .unwrap()
        .json()
        .get("removed_from_cluster")
        .is_none());
    assert_eq!(code("/v1/sys/leader").await, 200);
    assert_eq!(code("/v2/anything").await, 404);
}

#[tokio::test]
async fn required_client_certs_refuse_anonymous_handshakes() {
    let cfg = LabConfig {
        require_client_cert: true,
        ..LabConfig::default()
    };
    let lab = Lab::start(cfg).await.unwrap();
    let anon = Client::anonymous(&lab)
        .call("GET", "/v1/sys/health", None, None)
        .await;
    assert!(
        anon.is_err(),
        "handshake without a client cert must fail: {anon:?}"
    );
    let foreign = LabPki::generate()
        .unwrap()
        .issue(&LeafSpec::client("intruder"))
        .unwrap();
    let r = Client::with_cert(&lab, &foreign)
        .call("GET", "/v1/sys/health", None, None)
        .await;
    assert!(r.is_err(), "a cert from another CA must be refused");
    let ok = Client::admin(&lab)
        .call("GET", "/v1/sys/health", None, None)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn cert_login_puts_mapping_policies_on_the_token_and_counts_tokens() {
    let lab = lab().await;
    let a = &lab.files().agents[0];
    let app_a = Client::with_files(&lab, &a.cert, &a.key);
    let r = app_a.login(Some("agent-app-a")).await;
    assert_eq!(r.status, 200);
    let auth = &r.json()["auth"];
    assert_eq!(
        auth["policies"],
        json!(["app-a-issue", "debug-policy", "default"])
    );
    assert_eq!(auth["metadata"]["cert_name"], "agent-app-a");
    assert_eq!(
        auth["metadata"]["common_name"],
        "agent-app-a.lab.rotcheck.test"
    );
    assert!(auth["metadata"]["serial_number"]
        .as_str()
        .unwrap()
        .chars()
        .all(|c| c.is_ascii_digit()));
    assert_eq!(
        (auth["lease_duration"].clone(), auth["renewable"].clone()),
        (json!(3600), json!(true))
    );
    let token = auth["client_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("hvs.") && token.len() > 40);

    let look = app_a.get("/v1/auth/token/lookup-self", &token).await;
    assert_eq!(look.status, 200);
    assert_eq!(look.json()["data"]["path"], "auth/cert/login");
    assert_eq!(look.json()["data"]["display_name"], "cert-agent-app-a");
    let bearer = vec![("Authorization", format!("Bearer {token}"))];
    let via_bearer = app_a
        .call_with("GET", "/v1/auth/token/lookup-self", &bearer, String::new())
        .await
        .unwrap();
    assert_eq!(via_bearer.status, 200);
    assert_eq!((lab.tokens_issued(), lab.tokens_live()), (1, 1));

    let revoke = app_a
        .call("POST", "/v1/auth/token/revoke-self", Some(&token), None)
        .await
        .unwrap();
    assert_eq!((revoke.status, revoke.body.len()), (204, 0));
    assert_eq!((lab.tokens_revoked(), lab.tokens_live()), (1, 0));
    let again = app_a.get("/v1/auth/token/lookup-self", &token).await;
    assert_eq!(
        (again.status, again.error()),
        (403, INVALID_TOKEN_117.to_string())
    );
    lab.set_version("1.16.3").unwrap();
    assert_eq!(
        app_a
            .get("/v1/auth/token/lookup-self", &token)
            .await
            .error(),
        DENIED
    );
    let any = app_a.token(None).await;
    assert_eq!(
        app_a.get("/v1/auth/token/lookup-self", &any).await.json()["data"]["meta"]["cert_name"],
        "agent-app-a"
    );
}

#[tokio::test]
async fn cert_login_failures_match_vault_by_version() {
    let lab = lab().await;
    let none = Client::anonymous(&lab).login(None).await;
    assert_eq!(
        (none.status, none.error()),
        (400, "client certificate must be supplied".to_string())
    );

    let foreign = LabPki::generate()
        .unwrap()
        .issue(&LeafSpec::client("agent-app-a.lab.rotcheck.test"))
        .unwrap();
    let unmapped = Client::with_cert(&lab, &foreign);
    assert_eq!(
        (
            unmapped.login(None).await.status,
            unmapped.login(None).await.error()
        ),
        (400, UNIFIED.to_string())
    );

    let wrong_cn = lab
        .pki()
        .issue(&LeafSpec::client("agent-app-b.lab.rotcheck.test"))
        .unwrap();
    let b = Client::with_cert(&lab, &wrong_cn);
    assert_eq!(b.login(Some("agent-app-a")).await.error(), UNIFIED);
    assert_eq!(b.login(Some("agent-app-b")).await.status, 200);
    assert_eq!(b.login(Some("no-such-role")).await.error(), UNIFIED);

    let expired = lab
        .pki()
        .issue(&LeafSpec::client("agent-app-a.lab").validity(Validity::expired()))
        .unwrap();
    let r = Client::with_cert(&lab, &expired).login(None).await;
    assert_eq!(r.status, 500);
    assert!(r.error().starts_with("failed to verify client's certificate: x509: certificate has expired or is not yet valid: current time"), "{}", r.error());
    let foreign_expired = LabPki::generate()
        .unwrap()
        .issue(&LeafSpec::client("x").validity(Validity::expired()))
        .unwrap();
    assert_eq!(
        Client::with_cert(&lab, &foreign_expired)
            .login(None)
            .await
            .status,
        500,
        "expired beats untrusted"
    );

    lab.set_version("1.17.6").unwrap();
    assert_eq!(
        unmapped.login(None).await.error(),
        "invalid certificate or no client certificate supplied; additionally got errors during verification: <nil>"
    );
    assert_eq!(
        b.login(Some("agent-app-a")).await.error(),
        "no chain matching all constraints could be found for this login certificate"
    );
    lab.set_version("1.13.2").unwrap();
    assert_eq!(
        unmapped.login(None).await.error(),
        "invalid certificate or no client certificate supplied"
    );
    assert_eq!(lab.tokens_issued(), 1);
}

#[tokio::test]
async fn policies_gate_paths_and_roles_round_trip() {
    let lab = lab().await;
    let admin = Client::admin(&lab);
    let root = admin.token(Some("vault-admin")).await;
    let a = &lab.files().agents[0];
    let app_a = Client::with_files(&lab, &a.cert, &a.key);
    let t = app_a.token(Some("agent-app-a")).await;
    let ok = app_a
        .post(
            "/v1/pki-prod/issue/nginx-app-a",
            &t,
            json!({"common_name": "app-a.lab.rotcheck.test"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let denied = app_a
        .post(
            "/v1/pki-prod/issue/nginx-app-b",
            &t,
            json!({"common_name": "app-b.lab.rotcheck.test"}),
        )
        .await;
    assert_eq!((denied.status, denied.error()), (403, DENIED.to_string()));
    assert_eq!(
        app_a.get("/v1/sys/policies/acl/lab-admin", &t).await.status,
        403
    );
    assert_eq!(
        admin.get("/v1/nope/x", &root).await.error(),
        "no handler for route \"nope/x\". route entry not found."
    );

    let ca = lab.pki().intermediate().cert_pem();
    let body = json!({"certificate": ca, "allowed_common_names": ["agent-app-a.*"], "token_policies": "app-a-issue"});
    let w = admin
        .post("/v1/auth/cert/certs/Agent-App-A", &root, body)
        .await;
    assert_eq!((w.status, w.body.len()), (204, 0));
    let role = admin
        .get("/v1/auth/cert/certs/agent-app-a", &root)
        .await
        .json();
    assert_eq!(role["data"]["token_policies"], json!(["app-a-issue"]));
    assert_eq!(role["data"]["allowed_dns_sans"], json!(null));
    assert_eq!(role["data"]["token_bound_cidrs"], json!([]));
    let list = admin
        .call("LIST", "/v1/auth/cert/certs", Some(&root), None)
        .await
        .unwrap();
    assert_eq!(
        list.json()["data"]["keys"],
        json!(["agent-app-a", "agent-app-b", "vault-admin"])
    );
    let bad = admin
        .post(
            "/v1/auth/cert/certs/x",
            &root,
            json!({"certificate": "nope"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.error()),
        (400, "failed to parse certificate".to_string())
    );
    let fixed = app_a.login(Some("agent-app-a")).await.json();
    assert_eq!(fixed["auth"]["policies"], json!(["app-a-issue", "default"]));

    let p = admin
        .post(
            "/v1/sys/policies/acl/New-One",
            &root,
            json!({"policy": "path \"x/*\" { capabilities = [\"read\"] }"}),
        )
        .await;
    assert_eq!(
        (p.status, p.json()["warnings"][0].clone()),
        (200, json!("policy name was converted to new-one"))
    );
    let read = admin
        .get("/v1/sys/policies/acl/new-one", &root)
        .await
        .json();
    assert!(
        read["data"]["policy"].as_str().unwrap().contains("x/*") && read.get("policy").is_none()
    );
    let junk = admin
        .post(
            "/v1/sys/policies/acl/junk",
            &root,
            json!({"policy": "path {"}),
        )
        .await;
    assert!(junk.status == 400 && junk.error().starts_with("failed to parse policy"));
    let mounts = admin.get("/v1/sys/mounts", &root).await.json();
    assert_eq!(
        mounts["secret/"]["options"]["version"], "2",
        "data is injected at the top level"
    );
    assert_eq!(mounts["data"]["pki-prod/"]["type"], "pki");
    assert_eq!(
        admin.get("/v1/sys/auth", &root).await.json()["cert/"]["type"],
        "cert"
    );
    assert_eq!(
        admin
            .call("FOO", "/v1/sys/mounts", Some(&root), None)
            .await
            .unwrap()
            .status,
        405
    );
    let garbage = admin
        .call_with(
            "POST",
            "/v1/sys/policies/acl/g",
            &[("X-Vault-Token", root.clone())],
            "{not json".into(),
        )
        .await
        .unwrap();
    assert!(garbage.status == 400 && garbage.error().starts_with("failed to parse JSON input"));
}

fn verify(
    der: &CertificateDer<'_>,
    chain: &[CertificateDer<'static>],
    root: &CertificateDer<'_>,
    usage: webpki::KeyUsage,
) -> Result<(), webpki::Error> {
    let anchors = [webpki::anchor_from_trusted_cert(root).unwrap()];
    let ee = webpki::EndEntityCert::try_from(der).unwrap();
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    ee.verify_for_usage(
        algs.all,
        &anchors,
        chain,
        UnixTime::now(),
        usage,
        None,
        None,
    )
    .map(|_| ())
}

fn pem_der(pem: &str) -> CertificateDer<'static> {
    rotcheck_lab::pki::parse_pem_certs(pem).remove(0)
}

#[tokio::test]
async fn pki_issue_and_sign_honour_roles_and_chain_to_the_lab_root() {
    let lab = lab().await;
    let c = Client::anonymous(&lab);
    let root = lab.root_token().to_string();
    let root_der = lab.pki().root().cert().cert_der().clone();
    let r = c
        .post(
            "/v1/pki-prod/issue/nginx-app-a",
            &root,
            json!({"common_name": "www.app-a.lab.rotcheck.test", "ttl": "9000h"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let d = &r.json()["data"];
    assert!(r.json()["warnings"][0]
        .as_str()
        .unwrap()
        .contains("so maxTTL is being used"));
    let leaf_pem = d["certificate"].as_str().unwrap();
    assert!(!leaf_pem.ends_with('\n'));
    assert!(d["private_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(d["private_key_type"], "ec");
    assert_eq!(d["ca_chain"].as_array().unwrap().len(), 2);
    assert!(d["serial_number"].as_str().unwrap().contains(':'));
    let expiration = d["expiration"].as_u64().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 720 * 3600).abs_diff(expiration) < 120,
        "capped at max_ttl 720h"
    );
    let chain = vec![pem_der(d["issuing_ca"].as_str().unwrap())];
    let leaf = pem_der(leaf_pem);
    verify(&leaf, &chain, &root_der, webpki::KeyUsage::server_auth()).unwrap();
    assert!(
        verify(
            &leaf,
            &chain,
            &root_der,
            webpki::KeyUsage::required(&[43, 6, 1, 5, 5, 7, 3, 2])
        )
        .is_err(),
        "no clientAuth EKU"
    );

    let bad = c
        .post(
            "/v1/pki-prod/issue/nginx-app-a",
            &root,
            json!({"common_name": "evil.example.com"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.error()),
        (
            400,
            "common name evil.example.com not allowed by this role".to_string()
        )
    );
    let alt = c
        .post(
            "/v1/pki-prod/issue/nginx-app-a",
            &root,
            json!({"common_name": "app-a.lab.rotcheck.test", "alt_names": "x.example.com"}),
        )
        .await;
    assert_eq!(
        alt.error(),
        "subject alternate name x.example.com not allowed by this role"
    );
    assert_eq!(
        c.post(
            "/v1/pki-prod/issue/nope",
            &root,
            json!({"common_name": "a"})
        )
        .await
        .error(),
        "unknown role: nope"
    );
    let no_cn = c
        .post("/v1/pki-prod/issue/nginx-app-a", &root, json!({}))
        .await;
    assert!(no_cn
        .error()
        .starts_with("the common_name field is required"));

    let agent = c
        .post(
            "/v1/pki-prod/issue/agent-app-a",
            &root,
            json!({"common_name": "agent-app-a.lab.rotcheck.test", "ttl": "2h"}),
        )
        .await
        .json();
    let agent_leaf = pem_der(agent["data"]["certificate"].as_str().unwrap());
    verify(
        &agent_leaf,
        &chain,
        &root_der,
        webpki::KeyUsage::client_auth(),
    )
    .unwrap();
    assert!(
        verify(
            &agent_leaf,
            &chain,
            &root_der,
            webpki::KeyUsage::required(&[43, 6, 1, 5, 5, 7, 3, 1])
        )
        .is_err(),
        "client-only role"
    );
    assert!((now + 7200).abs_diff(agent["data"]["expiration"].as_u64().unwrap()) < 120);

    let key = rcgen::KeyPair::generate().unwrap();
    let csr =
        rcgen::CertificateParams::new(vec!["api.app-b.lab.rotcheck.test".to_string()]).unwrap();
    let mut csr = csr;
    csr.distinguished_name
        .push(rcgen::DnType::CommonName, "api.app-b.lab.rotcheck.test");
    let csr_pem = csr.serialize_request(&key).unwrap().pem().unwrap();
    let s = c
        .post(
            "/v1/pki-prod/sign/nginx-app-b",
            &root,
            json!({"csr": csr_pem}),
        )
        .await;
    assert_eq!(s.status, 200, "{}", String::from_utf8_lossy(&s.body));
    assert!(s.json()["data"].get("private_key").is_none());
    let signed = pem_der(s.json()["data"]["certificate"].as_str().unwrap());
    verify(&signed, &chain, &root_der, webpki::KeyUsage::server_auth()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&signed).unwrap();
    assert_eq!(
        parsed.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    assert_eq!(
        c.post(
            "/v1/pki-prod/sign/nginx-app-a",
            &root,
            json!({"csr": csr_pem})
        )
        .await
        .status,
        400,
        "wrong domain"
    );
    assert_eq!(
        c.post("/v1/pki-prod/sign/nginx-app-b", &root, json!({"csr": ""}))
            .await
            .error(),
        "\"csr\" is empty"
    );

    let role = c
        .post(
            "/v1/pki-prod/roles/web",
            &root,
            json!({"allowed_domains": "web.test", "allow_subdomains": true, "max_ttl": "1h", "key_type": "ec"}),
        )
        .await;
    assert_eq!(
        (
            role.status,
            role.json()["data"]["max_ttl"].clone(),
            role.json()["data"]["server_flag"].clone()
        ),
        (200, json!(3600), json!(true))
    );
    assert_eq!(
        c.post(
            "/v1/pki-prod/issue/web",
            &root,
            json!({"common_name": "web.test"})
        )
        .await
        .status,
        400,
        "bare domain not allowed"
    );
    assert_eq!(
        c.post(
            "/v1/pki-prod/issue/web",
            &root,
            json!({"common_name": "a.web.test"})
        )
        .await
        .status,
        200
    );

    let raw = c
        .call("GET", "/v1/pki-prod/ca_chain", None, None)
        .await
        .unwrap();
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/pkix-cert")
    );
    assert_eq!(
        rotcheck_lab::pki::parse_pem_certs(std::str::from_utf8(&raw.body).unwrap()).len(),
        2
    );
    let ca_pem = c
        .call("GET", "/v1/pki-prod/ca/pem", None, None)
        .await
        .unwrap();
    assert!(!ca_pem.body.ends_with(b"\n"));
    let json_chain = c
        .call("GET", "/v1/pki-prod/cert/ca_chain", None, None)
        .await
        .unwrap()
        .json();
    assert!(json_chain["data"]["ca_chain"].is_string());
    let issuer = c
        .call("GET", "/v1/pki-prod/issuer/default/json", None, None)
        .await
        .unwrap()
        .json();
    assert!(issuer["data"]["ca_chain"][0]
        .as_str()
        .unwrap()
        .ends_with('\n'));
    let mount = c
        .post("/v1/sys/mounts/pki-empty", &root, json!({"type": "pki"}))
        .await;
    assert_eq!(mount.status, 204);
    assert_eq!(
        c.call("GET", "/v1/pki-empty/ca/pem", None, None)
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        c.call("GET", "/v1/pki-prod/roles/web", None, None)
            .await
            .unwrap()
            .status,
        403
    );
}

#[tokio::test]
async fn kv_v2_and_v1_mounts() {
    let lab = lab().await;
    let c = Client::anonymous(&lab);
    let root = lab.root_token().to_string();
    let seeded = c.get("/v1/secret/data/app-a/config", &root).await;
    assert_eq!(seeded.json()["data"]["data"]["owner"], "app-a");
    assert_eq!(seeded.json()["mount_type"], "kv");
    assert_eq!(
        c.get("/v1/secret/data/app-b/config", &root).await.status,
        404
    );
    let w = c
        .post(
            "/v1/secret/data/app-a/config",
            &root,
            json!({"data": {"v": 2}}),
        )
        .await;
    assert_eq!(w.json()["data"]["version"], 2);
    assert_eq!(
        c.post(
            "/v1/secret/data/app-a/config",
            &root,
            json!({"data": {}, "options": {"cas": 1}})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        c.post("/v1/secret/data/x", &root, json!({"v": 1}))
            .await
            .error(),
        "no data provided"
    );
    let meta = c.get("/v1/secret/metadata/app-a/config", &root).await;
    assert_eq!(meta.json()["data"]["current_version"], 2);
    let list = c
        .call("LIST", "/v1/secret/metadata", Some(&root), None)
        .await
        .unwrap();
    assert_eq!(list.json()["data"]["keys"], json!(["app-a/"]));

    assert_eq!(
        c.post("/v1/sys/mounts/kv1", &root, json!({"type": "kv"}))
            .await
            .status,
        204
    );
    assert_eq!(
        c.post("/v1/kv1/app/one", &root, json!({"k": "v"}))
            .await
            .status,
        204
    );
    let r = c.get("/v1/kv1/app/one", &root).await.json();
    assert_eq!(
        (r["data"]["k"].clone(), r["lease_duration"].clone()),
        (json!("v"), json!(2_764_800))
    );
    let listed = c
        .call("GET", "/v1/kv1/app?list=true", Some(&root), None)
        .await
        .unwrap();
    assert_eq!(listed.json()["data"]["keys"], json!(["one"]));
    assert_eq!(
        c.post("/v1/sys/mounts/kv1", &root, json!({"type": "kv"}))
            .await
            .error(),
        "path is already in use at kv1/"
    );
    let mounts = c.get("/v1/sys/mounts", &root).await.json();
    assert_eq!(mounts["data"]["kv1/"]["options"], json!(null));
}

#[tokio::test]
async fn reset_stall_and_failure_faults() {
    let lab = lab().await;
    let c = Client::anonymous(&lab);
    lab.reset_for(Duration::from_millis(600));
    let err = c.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        c.call("GET", "/v1/sys/health", None, None)
            .await
            .unwrap()
            .status,
        200
    );

    lab.stall_for(Duration::from_secs(5));
    assert!(
        within(1, c.connect()).await.is_none(),
        "a stalled server never finishes the handshake"
    );
    lab.clear_faults();
    lab.fail_path("sys/seal-status", 500);
    let r = c
        .call("GET", "/v1/sys/seal-status", None, None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.header("content-type")),
        (500, Some("application/json".to_string()))
    );
    lab.clear_faults();
    assert_eq!(
        c.call("GET", "/v1/sys/seal-status", None, None)
            .await
            .unwrap()
            .status,
        200
    );

    let renewed = lab
        .pki()
        .issue(&LeafSpec::server(lab.server_name(), &[lab.server_name()]))
        .unwrap();
    std::fs::write(
        &lab.files().server_fullchain,
        lab.pki().fullchain_pem(&renewed),
    )
    .unwrap();
    std::fs::write(&lab.files().server_key, renewed.key_pem()).unwrap();
    lab.reload_tls().unwrap();
    // A fresh client: a resumed TLS 1.3 session would report the old session's certificate.
    let tls = Client::anonymous(&lab).connect().await.unwrap();
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, renewed.cert_der().clone());
}

fn tls_chain(pki: &LabPki, leaf: &CertKey, leaf_only: bool) -> Vec<CertificateDer<'static>> {
    if leaf_only {
        vec![leaf.cert_der().clone()]
    } else {
        pki.fullchain_der(leaf)
    }
}

#[tokio::test]
async fn standalone_fault_listeners() {
    let pki = LabPki::generate().unwrap();
    let leaf = pki.issue(&LeafSpec::server("f.test", &["f.test"])).unwrap();
    let root = pki.root().cert().cert_der().clone();
    let client = |addr| Client {
        addr,
        server_name: "f.test".into(),
        config: support::client_config(std::slice::from_ref(&root), None),
    };
    let reset = FaultListener::start(FaultKind::ResetOnAccept)
        .await
        .unwrap();
    assert_eq!(
        client(reset.addr()).connect().await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    let garbage = FaultListener::start(FaultKind::Garbage(b"\x00\x01garbage".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        client(garbage.addr()).connect().await.unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    let plain = FaultListener::start(FaultKind::PlainHttp).await.unwrap();
    assert!(client(plain.addr()).connect().await.is_err());
    let stall = FaultListener::start(FaultKind::Stall).await.unwrap();
    assert!(within(1, client(stall.addr()).connect()).await.is_none());

    let leaf_only = FaultListener::start(FaultKind::Tls {
        chain: tls_chain(&pki, &leaf, true),
        key: leaf.key_der(),
    })
    .await
    .unwrap();
    let e = client(leaf_only.addr()).connect().await.unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    let full = FaultListener::start(FaultKind::Tls {
        chain: tls_chain(&pki, &leaf, false),
        key: leaf.key_der(),
    })
    .await
    .unwrap();
    let ok = client(full.addr())
        .call("GET", "/", None, None)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(full.accepted(), 1);

    let cas = vec![root.clone()];
    let mtls = FaultListener::start(FaultKind::TlsClientAuth {
        chain: tls_chain(&pki, &leaf, false),
        key: leaf.key_der(),
        client_cas: cas,
    })
    .await
    .unwrap();
    assert!(client(mtls.addr())
        .call("GET", "/", None, None)
        .await
        .is_err());
    let id = pki.issue(&LeafSpec::client("c")).unwrap();
    let with_cert = Client {
        config: support::client_config(
            std::slice::from_ref(&root),
            Some((
                vec![
                    id.cert_der().clone(),
                    pki.intermediate().cert().cert_der().clone(),
                ],
                id.key_der(),
            )),
        ),
        ..client(mtls.addr())
    };
    assert_eq!(
        with_cert.call("GET", "/", None, None).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn up_writes_the_lab_directory_and_obeys_ctl_and_sigterm() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let bin = env!("CARGO_BIN_EXE_rotcheck-lab");
    let mut child = std::process::Command::new(bin)
        .args([
            "up",
            "--emulator",
            "--dir",
            dir.to_str().unwrap(),
            "--version",
            "1.19.5",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("https://127.0.0.1:"), "{line}");
    let mode = |rel: &str| {
        std::fs::metadata(dir.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for key in [
        "vault/tls-admin/admin.key",
        "app-a/vault/mtls/agent.key",
        "app-b/vault/mtls/agent.key",
        "vault/tls/server.key",
        "vault/root-token",
        "control.token",
    ] {
        assert_eq!(mode(key), 0o600, "{key}");
    }
    for cert in [
        "vault/tls-admin/admin.crt",
        "vault/ca_chain.pem",
        "app-a/vault/mtls/agent.crt",
        "app-a/vault/ca/ca.pem",
        "app-b/vault/ca/ca.pem",
        "lab.yaml",
    ] {
        assert_eq!(mode(cert), 0o644, "{cert}");
    }
    let env = std::fs::read_to_string(dir.join("lab.env")).unwrap();
    assert!(env.contains(&format!("export VAULT_ADDR='{}'", line.trim())));
    assert!(env.contains("export VAULT_TLS_SERVER_NAME='vault.lab.rotcheck.test'"));
    let suite = std::fs::read_to_string(dir.join("lab.yaml")).unwrap();
    let addr = line.trim().trim_start_matches("https://");
    assert!(
        suite.contains(&format!("lab_addr: \"{addr}\""))
            && suite.contains("vault_version: \"1.19.5\"")
    );
    assert!(!line.contains("hvs.") && !line.contains("PRIVATE"));

    let ctl = std::process::Command::new(bin)
        .args(["ctl", "--dir", dir.to_str().unwrap(), "seal"])
        .output()
        .unwrap();
    assert!(
        ctl.status.success(),
        "{}",
        String::from_utf8_lossy(&ctl.stderr)
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}
