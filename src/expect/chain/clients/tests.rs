//! Unit tests of the client profiles, the lint and `complete_chain` on a pinned rcgen PKI;
//! the comparison with the real clients is tests/clients.rs.

use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::time::Duration;

type Der = CertificateDer<'static>;

fn ca(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    p.use_authority_key_identifier_extension = true;
    p
}

fn leaf(names: &[&str]) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "svc.test");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = rcgen::date_time_ymd(2030, 1, 1);
    p.not_after = rcgen::date_time_ymd(2031, 1, 1);
    p
}

struct Pki {
    root: Der,
    inter: Der,
    inter_issuer: Issuer<'static, KeyPair>,
}

fn pki(root_params: CertificateParams) -> Pki {
    let (rk, ik) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let root = root_params.self_signed(&rk).unwrap().der().clone();
    let root_issuer = Issuer::new(root_params, rk);
    let inter = ca("inter")
        .signed_by(&ik, &root_issuer)
        .unwrap()
        .der()
        .clone();
    Pki {
        root,
        inter,
        inter_issuer: Issuer::new(ca("inter"), ik),
    }
}

impl Pki {
    fn issue(&self, p: CertificateParams) -> Der {
        let k = KeyPair::generate().unwrap();
        p.signed_by(&k, &self.inter_issuer).unwrap().der().clone()
    }
}

fn one(c: &Der) -> &[Der] {
    std::slice::from_ref(c)
}

fn at() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_906_502_400))
}

fn accepts(client: Client, presented: &[Der], store: &[Der], name: &str) -> bool {
    verdict(
        client,
        presented,
        store,
        Some(name),
        Purpose::ServerAuth,
        at(),
    )
    .accepts
}

#[test]
fn families_differ_where_their_clients_do() {
    let p = pki(ca("root"));
    let full = [p.issue(leaf(&["svc.test"])), p.inter.clone()];
    for c in Client::ALL {
        assert!(accepts(c, &full, one(&p.root), "svc.test"), "{c:?}");
        assert!(!accepts(c, &full, one(&p.root), "other.test"), "{c:?}");
    }
    // A CA file with the intermediate only: an anchor for Go and rustls, not for OpenSSL.
    let store = [p.inter.clone()];
    assert!(!accepts(Client::Openssl, &full, &store, "svc.test"));
    assert!(accepts(Client::Go, &full, &store, "svc.test"));
    assert!(accepts(Client::Rustls, &full, &store, "svc.test"));
    // A CN-only leaf: only OpenSSL falls back to the CN.
    let cn_only = [p.issue(leaf(&[])), p.inter.clone()];
    assert!(accepts(Client::Openssl, &cn_only, one(&p.root), "svc.test"));
    assert!(!accepts(Client::Go, &cn_only, one(&p.root), "svc.test"));
    assert!(!accepts(Client::Rustls, &cn_only, one(&p.root), "svc.test"));
}

#[test]
fn verdicts_carry_reasons_and_client_names() {
    let p = pki(ca("root"));
    let only_leaf = [p.issue(leaf(&["svc.test"]))];
    let v = verdict(
        Client::Go,
        &only_leaf,
        one(&p.root),
        Some("svc.test"),
        Purpose::ServerAuth,
        at(),
    );
    assert_eq!(v.reason, Some(ChainReason::UnknownIssuer));
    assert!(
        v.message.starts_with("go refuses the chain: "),
        "{}",
        v.message
    );
    assert_eq!(Client::Openssl.as_str(), "openssl");
}

#[test]
fn complete_chain_needs_every_intermediate() {
    let p = pki(ca("root"));
    let l = p.issue(leaf(&["svc.test"]));
    let root = [p.root.clone()];
    assert!(complete_chain(&[l.clone(), p.inter.clone()], &root));
    assert!(!complete_chain(one(&l), &root));
    assert!(!complete_chain(one(&l), &[p.inter.clone(), p.root.clone()]));
    assert!(!complete_chain(&[l, p.inter.clone()], one(&p.inter)));
    assert!(complete_chain(&root, &root));
}

fn tokens(lints: &[Lint]) -> Vec<&'static str> {
    lints.iter().map(|l| l.reason.as_str()).collect()
}

#[test]
fn lint_finds_private_pki_smells() {
    let p = pki(ca("root"));
    let clean = [p.issue(leaf(&["svc.test"])), p.inter.clone()];
    assert!(
        lint(&clean, one(&p.root), None).is_empty(),
        "{:?}",
        lint(&clean, one(&p.root), None)
    );

    let mut bare = leaf(&[]);
    bare.use_authority_key_identifier_extension = false;
    bare.not_before = rcgen::date_time_ymd(2030, 1, 1);
    bare.not_after = rcgen::date_time_ymd(2032, 1, 1);
    let found = lint(
        &[p.issue(bare), p.inter.clone()],
        &[p.root.clone(), p.root.clone()],
        Some(Duration::from_secs(398 * 86_400)),
    );
    assert_eq!(
        tokens(&found),
        [
            "leaf_without_aki",
            "cn_only_leaf",
            "validity_too_long",
            "duplicate_ca"
        ]
    );
}

#[test]
fn lint_finds_ca_smells() {
    // A root without SKI (basicConstraints written by hand), one without keyCertSign, and a
    // re-keyed root of the same name beside the first.
    let mut no_ski = ca("root");
    no_ski.is_ca = IsCa::NoCa;
    let mut bc = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 3, 1, 1, 0xff]);
    bc.set_criticality(true);
    no_ski.custom_extensions.push(bc);
    let a = pki(no_ski);
    let mut no_sign = ca("root");
    no_sign.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let b = pki(no_sign);
    let found = lint(
        &[a.issue(leaf(&["svc.test"])), a.inter.clone()],
        &[a.root.clone(), b.root.clone(), pki(ca("root")).root],
        None,
    );
    assert_eq!(
        tokens(&found),
        ["ca_without_ski", "ca_without_keycertsign", "same_dn_ca"],
        "{found:?}"
    );
}

/// A store parsed beforehand (a `files` check's CA file) judges as one parsed per judgement,
/// including a presented intermediate taken from it.
#[test]
fn a_store_parsed_once_judges_the_same() {
    let p = pki(ca("root"));
    let store = [p.root.clone(), p.inter.clone()];
    let parsed_store = Store::new(&store);
    let leaves = [p.issue(leaf(&["svc.test"])), p.issue(leaf(&[]))];
    for l in &leaves {
        for presented in [vec![l.clone()], vec![l.clone(), p.inter.clone()]] {
            let (fresh, once) = (
                Parsed::new(&presented, &store),
                Parsed::in_store(&presented, &parsed_store),
            );
            for c in Client::ALL {
                let v = |p: &Parsed<'_>| {
                    verdict_parsed(c, p, Some("svc.test"), Purpose::ServerAuth, at())
                };
                assert_eq!(v(&fresh), v(&once));
            }
            assert_eq!(complete_parsed(&fresh), complete_parsed(&once));
            assert_eq!(lint_parsed(&fresh, None), lint_parsed(&once, None));
        }
    }
}
