//! The emulator stays honest: the same requests go to the lab (reporting OpenBao 2.7.2) and to
//! a real OpenBao dev server, and the answers must agree on status, the envelope's and data's
//! keys, `errors` and `warnings` — the shapes rotcheck's checks read. The lab is kept for what a
//! real server cannot do on demand (faults, old versions' texts); everything it serves in
//! OpenBao mode must look like OpenBao.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use common::Authority;
use rotcheck::vault::{Addr, Endpoint, Token, VaultClient};
use rotcheck_lab::{Lab, LabConfig};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One side of the comparison: a client (optionally with a client certificate) and its root
/// token.
struct Side {
    name: &'static str,
    endpoint: Endpoint,
    root: Token,
}

impl Side {
    fn client(&self, identity: Option<(&Path, &Path)>) -> VaultClient {
        let mut ep = self.endpoint.clone();
        if let Some((c, k)) = identity {
            ep.client_cert = Some(c.to_path_buf());
            ep.client_key = Some(k.to_path_buf());
        }
        VaultClient::new(&ep, Duration::from_secs(10)).unwrap()
    }
}

/// What is compared of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    status: u16,
    keys: BTreeSet<String>,
    data_keys: BTreeSet<String>,
    errors: Value,
    warnings: Value,
}

fn keys(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn shape(status: u16, json: Option<Value>) -> Shape {
    let j = json.unwrap_or(Value::Null);
    Shape {
        status,
        keys: keys(Some(&j)),
        data_keys: keys(j.get("data")),
        errors: j.get("errors").cloned().unwrap_or(Value::Null),
        warnings: j.get("warnings").cloned().unwrap_or(Value::Null),
    }
}

async fn call(
    side: &Side,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&Token>,
) -> Shape {
    let c = side.client(None);
    let r = match (method, body) {
        ("GET", _) => c.get(path, token).await,
        ("PATCH", Some(b)) => c.patch(path, &b, token).await,
        (_, b) => c.post(path, &b.unwrap_or(json!({})), token).await,
    };
    let r = r.unwrap_or_else(|e| panic!("{} {method} {path}: {e}", side.name));
    shape(r.status, r.json)
}

fn assert_same(what: &str, lab: Shape, real: Shape) {
    assert_eq!(
        lab, real,
        "{what}: the lab (left) answers unlike OpenBao (right)"
    );
}

async fn lab() -> (Lab, Side) {
    let cfg = LabConfig {
        version: "2.7.2".into(),
        ..LabConfig::default()
    };
    let lab = Lab::start(cfg).await.expect("the lab starts");
    let side = Side {
        name: "lab",
        endpoint: Endpoint {
            addr: Addr::parse(&lab.url()).unwrap(),
            server_name: Some(lab.server_name().to_string()),
            ca_file: Some(lab.files().ca_chain.clone()),
            client_cert: None,
            client_key: None,
            namespace: None,
        },
        root: Token::new(lab.root_token()).unwrap(),
    };
    (lab, side)
}

fn real(dev: &DevServer) -> Side {
    Side {
        name: "openbao",
        endpoint: Endpoint {
            addr: Addr::parse(&dev.url()).unwrap(),
            server_name: Some("localhost".into()),
            ca_file: Some(dev.ca()),
            client_cert: None,
            client_key: None,
            namespace: None,
        },
        root: Token::new(DEV_ROOT_TOKEN).unwrap(),
    }
}

/// The real server gets what the lab's standard world already has: a PKI mount with an
/// issuer, cert auth.
fn prepare_real(dev: &DevServer) {
    dev.must(&["secrets", "enable", "-path=pki-prod", "pki"]);
    dev.must(&[
        "write",
        "pki-prod/root/generate/internal",
        "common_name=Contract Root",
    ]);
    dev.must(&["auth", "enable", "cert"]);
}

/// A client CA and two client certificates (one from a CA no mapping trusts), as files.
struct Clients {
    ca_pem: String,
    unmatched: (PathBuf, PathBuf),
    foreign: (PathBuf, PathBuf),
}

fn clients(dir: &Path) -> Clients {
    let ca = Authority::root("Contract Clients");
    let write = |name: &str, pem: &str, key: &str| {
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, pem).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    };
    let unmatched = ca.client("someone.contract.test");
    let foreign = Authority::root("Nobody Trusts Me").client("someone.contract.test");
    Clients {
        ca_pem: ca.cert.pem.clone(),
        unmatched: write("unmatched", &unmatched.pem, &unmatched.key_pem),
        foreign: write("foreign", &foreign.pem, &foreign.key_pem),
    }
}

async fn login_shape(side: &Side, id: &(PathBuf, PathBuf)) -> Shape {
    let c = side.client(Some((&id.0, &id.1)));
    let r = c
        .post("auth/cert/login", &json!({"name": "contract"}), None)
        .await
        .unwrap();
    shape(r.status, r.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_answers_like_openbao() {
    let Some(bin) = bao::server_binary().filter(|b| b == "bao") else {
        return;
    };
    let dev = DevServer::start(&bin);
    prepare_real(&dev);
    let (_lab, lab) = lab().await;
    let real = real(&dev);
    let bogus = Token::new("s.notatokenthisserverissued").unwrap();

    for path in ["sys/health", "sys/seal-status"] {
        let (l, r) = (
            call(&lab, "GET", path, None, None).await,
            call(&real, "GET", path, None, None).await,
        );
        assert_same(path, l, r);
    }
    for (path, token) in [("secret/data/x", Some(&bogus)), ("sys/mounts", None)] {
        let (l, r) = (
            call(&lab, "GET", path, None, token).await,
            call(&real, "GET", path, None, token).await,
        );
        assert_same(&format!("{path} without a valid token"), l, r);
    }

    let role = json!({"allowed_domains": "c.example", "allow_bare_domains": true, "bogus": 1});
    for (method, path, body) in [
        ("POST", "pki-prod/roles/contract", Some(role)),
        ("GET", "pki-prod/roles/contract", None),
        (
            "PATCH",
            "pki-prod/roles/contract",
            Some(json!({"allow_localhost": false})),
        ),
    ] {
        let l = call(&lab, method, path, body.clone(), Some(&lab.root)).await;
        let r = call(&real, method, path, body, Some(&real.root)).await;
        assert_same(&format!("{method} {path}"), l, r);
    }
    for side in [&lab, &real] {
        let c = side.client(None);
        let v = c
            .get("pki-prod/roles/contract", Some(&side.root))
            .await
            .unwrap()
            .json
            .unwrap();
        let d = &v["data"];
        let defaults = (
            d["key_type"].clone(),
            d["key_bits"].clone(),
            d["signature_bits"].clone(),
        );
        assert_eq!(
            defaults,
            (json!("rsa"), json!(2048), json!(0)),
            "{}: role defaults",
            side.name
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let ids = clients(dir.path());
    let mapping =
        json!({"certificate": ids.ca_pem, "allowed_common_names": "nobody.contract.test"});
    for side in [&lab, &real] {
        let s = call(
            side,
            "POST",
            "auth/cert/certs/contract",
            Some(mapping.clone()),
            Some(&side.root),
        )
        .await;
        assert!(s.status < 300, "{}: mapping write {s:?}", side.name);
    }
    for (what, id) in [
        ("constraints unmet", &ids.unmatched),
        ("unknown CA", &ids.foreign),
    ] {
        let (l, r) = (login_shape(&lab, id).await, login_shape(&real, id).await);
        assert_same(&format!("cert login, {what}"), l, r);
    }

    let kv = json!({"data": {"k": "v"}});
    for (method, path, body) in [
        ("POST", "secret/data/contract", Some(kv)),
        ("GET", "secret/data/contract", None),
    ] {
        let l = call(&lab, method, path, body.clone(), Some(&lab.root)).await;
        let r = call(&real, method, path, body, Some(&real.root)).await;
        assert_same(&format!("{method} {path}"), l, r);
    }
}
