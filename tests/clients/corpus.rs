//! The generated corpus: one case per client difference and per rotation trap, made with
//! rcgen at test time (the RSA, SHA-1 and negative-serial ones with the openssl CLI, which
//! rcgen cannot sign), every case evaluated at [`AT`] so nothing goes stale.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use rotcheck::expect::chain::Purpose;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::process::Command;

use super::Case;

/// 2030-06-01T00:00:00Z: every case is evaluated then.
pub const AT: i64 = 1_906_502_400;
/// The name servers are checked for.
pub const NAME: &str = "svc.rotcheck.test";

type Der = CertificateDer<'static>;

/// A CA that can issue.
pub struct Ca {
    pub der: Der,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str) -> rcgen::DistinguishedName {
    let mut d = rcgen::DistinguishedName::new();
    d.push(DnType::OrganizationName, "rotcheck clients");
    d.push(DnType::CommonName, cn);
    d
}

fn dated(p: &mut CertificateParams, from: (i32, u8, u8), to: (i32, u8, u8)) {
    p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
}

/// CA parameters: basicConstraints CA (critical), keyCertSign + cRLSign, AKI, 2000..2099.
pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    dated(&mut p, (2000, 1, 1), (2099, 1, 1));
    p
}

/// Leaf parameters: CN and DNS SAN `names[0]`, serverAuth, digitalSignature, AKI, 2030..2031.
pub fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(names.clone()).expect("names");
    p.distinguished_name = dn(names.first().map_or("client", String::as_str));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    dated(&mut p, (2030, 1, 1), (2031, 1, 1));
    p
}

/// A CA without subjectKeyIdentifier: basicConstraints as a custom (critical) extension,
/// since rcgen writes an SKI on every CA it knows is one.
pub fn no_ski(mut p: CertificateParams) -> CertificateParams {
    p.is_ca = IsCa::NoCa;
    let mut bc =
        CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x03, 0x01, 0x01, 0xff]);
    bc.set_criticality(true);
    p.custom_extensions.push(bc);
    p
}

/// An authorityKeyIdentifier naming a key no CA has.
pub fn bogus_aki(mut p: CertificateParams) -> CertificateParams {
    p.use_authority_key_identifier_extension = false;
    let mut content = vec![0x30, 0x16, 0x80, 0x14];
    content.extend([0xab; 20]);
    p.custom_extensions
        .push(CustomExtension::from_oid_content(&[2, 5, 29, 35], content));
    p
}

impl Ca {
    pub fn root(p: CertificateParams) -> Ca {
        let key = KeyPair::generate().expect("key");
        let der = p.self_signed(&key).expect("root").der().clone();
        Ca {
            der,
            issuer: Issuer::new(p, key),
        }
    }

    /// A CA issued by this one.
    pub fn sub(&self, p: CertificateParams) -> Ca {
        let key = KeyPair::generate().expect("key");
        let der = p.signed_by(&key, &self.issuer).expect("ca").der().clone();
        Ca {
            der,
            issuer: Issuer::new(p, key),
        }
    }

    /// A certificate for `ca`'s name and key issued by this CA (a cross-signature).
    pub fn cross(
        &self,
        ca: &Ca,
        mut p: CertificateParams,
        from: (i32, u8, u8),
        to: (i32, u8, u8),
    ) -> Der {
        dated(&mut p, from, to);
        p.signed_by(ca.issuer.key(), &self.issuer)
            .expect("cross")
            .der()
            .clone()
    }

    /// An end-entity certificate issued by this CA.
    pub fn leaf(&self, p: CertificateParams) -> Der {
        let key = KeyPair::generate().expect("key");
        p.signed_by(&key, &self.issuer).expect("leaf").der().clone()
    }
}

fn case(id: &str, presented: Vec<Der>, store: Vec<Der>) -> Case {
    Case {
        id: id.into(),
        presented,
        store,
        name: Some(NAME.into()),
        purpose: Purpose::ServerAuth,
        at: AT,
    }
}

fn named(mut c: Case, name: Option<&str>) -> Case {
    c.name = name.map(str::to_string);
    c
}

fn for_client(mut c: Case) -> Case {
    c.purpose = Purpose::ClientAuth;
    c.name = None;
    c
}

/// Every generated case.
pub fn cases() -> Vec<Case> {
    let mut out = basics();
    out.extend(rotation_traps());
    out.extend(policy_rows());
    out.extend(openssl_made());
    out
}

fn basics() -> Vec<Case> {
    let root = Ca::root(ca_params("basic root"));
    let inter = root.sub(ca_params("basic intermediate"));
    let leaf = inter.leaf(leaf_params(&[NAME]));
    let (r, i, l) = (root.der.clone(), inter.der.clone(), leaf.clone());
    let mut expired = leaf_params(&[NAME]);
    dated(&mut expired, (2029, 1, 1), (2029, 6, 1));
    let mut future = leaf_params(&[NAME]);
    dated(&mut future, (2031, 1, 1), (2032, 1, 1));
    let mut old_inter = ca_params("basic intermediate");
    dated(&mut old_inter, (2020, 1, 1), (2030, 1, 1));
    let stale = root.sub(old_inter);
    let ip_leaf = inter.leaf(leaf_params(&["127.0.0.1"]));
    let wild = inter.leaf(leaf_params(&["*.rotcheck.test"]));
    let partial = inter.leaf(leaf_params(&["s*.rotcheck.test"]));
    let mut client = leaf_params(&[]);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = inter.leaf(client);
    vec![
        case(
            "good fullchain",
            vec![l.clone(), i.clone()],
            vec![r.clone()],
        ),
        named(
            case(
                "good, no name asked",
                vec![l.clone(), i.clone()],
                vec![r.clone()],
            ),
            None,
        ),
        case("name mismatch", vec![l.clone(), i.clone()], vec![r.clone()])
            .renamed("other.rotcheck.test"),
        case(
            "expired leaf",
            vec![root_leaf(&inter, expired), i.clone()],
            vec![r.clone()],
        ),
        case(
            "not yet valid leaf",
            vec![root_leaf(&inter, future), i.clone()],
            vec![r.clone()],
        ),
        case(
            "expired intermediate",
            vec![stale.leaf(leaf_params(&[NAME])), stale.der.clone()],
            vec![r.clone()],
        ),
        case("ip name", vec![ip_leaf.clone(), i.clone()], vec![r.clone()]).renamed("127.0.0.1"),
        case(
            "ip name not in SANs",
            vec![l.clone(), i.clone()],
            vec![r.clone()],
        )
        .renamed("127.0.0.1"),
        case(
            "wildcard leaf",
            vec![wild.clone(), i.clone()],
            vec![r.clone()],
        ),
        case(
            "wildcard does not cover two labels",
            vec![wild, i.clone()],
            vec![r.clone()],
        )
        .renamed("a.svc.rotcheck.test"),
        case(
            "partial wildcard s*.rotcheck.test",
            vec![partial, i.clone()],
            vec![r.clone()],
        ),
        case("leaf only, store root", vec![l.clone()], vec![r.clone()]),
        case(
            "leaf only, store intermediate + root",
            vec![l.clone()],
            vec![i.clone(), r.clone()],
        ),
        case(
            "store intermediate only",
            vec![l.clone(), i.clone()],
            vec![i.clone()],
        ),
        case(
            "store is an unrelated root",
            vec![l.clone(), i.clone()],
            vec![Ca::root(ca_params("other root")).der],
        ),
        case("intermediate-only bundle", vec![i.clone()], vec![r.clone()]),
        case(
            "reversed fullchain",
            vec![i.clone(), l.clone()],
            vec![r.clone()],
        ),
        case(
            "root sent too",
            vec![l.clone(), i.clone(), r.clone()],
            vec![r.clone()],
        ),
        case(
            "duplicate root in store",
            vec![l.clone(), i.clone()],
            vec![r.clone(), r.clone()],
        ),
        case(
            "intermediate sent twice",
            vec![l.clone(), i.clone(), i.clone()],
            vec![r.clone()],
        ),
        for_client(case(
            "client certificate",
            vec![client.clone(), i.clone()],
            vec![r.clone()],
        )),
        for_client(case(
            "server leaf used as client",
            vec![l.clone(), i.clone()],
            vec![r.clone()],
        )),
        case(
            "client leaf used as server",
            vec![client, i.clone()],
            vec![r.clone()],
        ),
    ]
}

fn root_leaf(ca: &Ca, p: CertificateParams) -> Der {
    ca.leaf(p)
}

impl Case {
    fn renamed(mut self, name: &str) -> Case {
        self.name = Some(name.into());
        self
    }
}

fn rotation_traps() -> Vec<Case> {
    let old = Ca::root(ca_params("rotating root"));
    let new = Ca::root(ca_params("rotating root"));
    let inter = new.sub(ca_params("rotating intermediate"));
    let leaf = inter.leaf(leaf_params(&[NAME]));
    // Without key identifiers, only names link the chain.
    let mut bare_inter = ca_params("bare intermediate");
    bare_inter.use_authority_key_identifier_extension = false;
    let bare_inter = new.sub(bare_inter);
    let mut bare_leaf = leaf_params(&[NAME]);
    bare_leaf.use_authority_key_identifier_extension = false;
    let bare_leaf = bare_inter.leaf(bare_leaf);
    // Cross-signature of the new root by a retiring one, expired.
    let retiring = Ca::root(ca_params("retiring root"));
    let cross_expired =
        retiring.cross(&new, ca_params("rotating root"), (2020, 1, 1), (2029, 1, 1));
    let cross_valid = retiring.cross(&new, ca_params("rotating root"), (2020, 1, 1), (2035, 1, 1));
    let other = Ca::root(ca_params("second root"));
    let (l, i) = (leaf.clone(), inter.der.clone());
    let ski_less = Ca::root(no_ski(ca_params("root without ski")));
    let ski_less_inter = ski_less.sub(ca_params("under ski-less root"));
    let self_signed = {
        let key = KeyPair::generate().expect("key");
        leaf_params(&[NAME])
            .self_signed(&key)
            .expect("ss")
            .der()
            .clone()
    };
    // A renewed intermediate (same name and key, new dates) next to its expired self, and a
    // renewed root the same way in the CA file.
    let inter_old = new.cross(
        &inter,
        ca_params("rotating intermediate"),
        (2020, 1, 1),
        (2029, 1, 1),
    );
    let new_old = new.cross(&new, ca_params("rotating root"), (2000, 1, 1), (2029, 1, 1));
    let root = || new.der.clone();
    let mut out = vec![
        case(
            "renewed intermediate, expired copy sent first",
            vec![l.clone(), inter_old.clone(), i.clone()],
            vec![root()],
        ),
        case(
            "renewed intermediate, expired copy sent last",
            vec![l.clone(), i.clone(), inter_old.clone()],
            vec![root()],
        ),
        case(
            "only the expired intermediate sent",
            vec![l.clone(), inter_old],
            vec![root()],
        ),
        case(
            "renewed root, expired copy first in the CA file",
            vec![l.clone(), i.clone()],
            vec![new_old.clone(), root()],
        ),
        case(
            "renewed root, expired copy last in the CA file",
            vec![l.clone(), i.clone()],
            vec![root(), new_old.clone()],
        ),
        case(
            "only the expired root in the CA file",
            vec![l.clone(), i.clone()],
            vec![new_old],
        ),
    ];
    out.extend(vec![
        case(
            "re-keyed root, store has the old one",
            vec![l.clone(), i.clone()],
            vec![old.der.clone()],
        ),
        case(
            "re-keyed root, store has old then new",
            vec![l.clone(), i.clone()],
            vec![old.der.clone(), new.der.clone()],
        ),
        case(
            "re-keyed root, store has new then old",
            vec![l.clone(), i.clone()],
            vec![new.der.clone(), old.der.clone()],
        ),
        case(
            "re-keyed root without AKI, old then new",
            vec![bare_leaf.clone(), bare_inter.der.clone()],
            vec![old.der.clone(), new.der.clone()],
        ),
        case(
            "re-keyed root without AKI, new then old",
            vec![bare_leaf.clone(), bare_inter.der.clone()],
            vec![new.der.clone(), old.der.clone()],
        ),
        case(
            "re-keyed root without AKI, old only",
            vec![bare_leaf, bare_inter.der.clone()],
            vec![old.der.clone()],
        ),
        case(
            "expired cross-sign served, store new root",
            vec![l.clone(), i.clone(), cross_expired.clone()],
            vec![new.der.clone()],
        ),
        case(
            "expired cross-sign served, store both roots",
            vec![l.clone(), i.clone(), cross_expired.clone()],
            vec![retiring.der.clone(), new.der.clone()],
        ),
        case(
            "expired cross-sign served, store retiring root only",
            vec![l.clone(), i.clone(), cross_expired],
            vec![retiring.der.clone()],
        ),
        case(
            "valid cross-sign served, store retiring root only",
            vec![l.clone(), i.clone(), cross_valid.clone()],
            vec![retiring.der.clone()],
        ),
        case(
            "valid cross-sign served, store both",
            vec![l.clone(), i.clone(), cross_valid],
            vec![new.der.clone(), retiring.der.clone()],
        ),
        case(
            "old and new CA in the bundle (overlap)",
            vec![l.clone(), i.clone()],
            vec![other.der.clone(), new.der.clone()],
        ),
        case(
            "root without SKI",
            vec![
                ski_less_inter.leaf(leaf_params(&[NAME])),
                ski_less_inter.der.clone(),
            ],
            vec![ski_less.der.clone()],
        ),
        case(
            "self-signed leaf, pinned in store",
            vec![self_signed.clone()],
            vec![self_signed.clone()],
        ),
        case(
            "self-signed leaf, not in store",
            vec![self_signed],
            vec![new.der.clone()],
        ),
        case(
            "CN-only leaf",
            vec![inter.leaf(cn_only()), i.clone()],
            vec![new.der.clone()],
        ),
        case(
            "leaf AKI names another key",
            vec![inter.leaf(bogus_aki(leaf_params(&[NAME]))), i.clone()],
            vec![new.der.clone()],
        ),
    ]);
    out
}

fn cn_only() -> CertificateParams {
    let mut p = leaf_params(&[]);
    p.distinguished_name = dn(NAME);
    p
}

fn policy_rows() -> Vec<Case> {
    let root = Ca::root(ca_params("policy root"));
    let store = vec![root.der.clone()];
    let with = |f: &dyn Fn(&mut CertificateParams)| {
        let mut p = ca_params("policy intermediate");
        f(&mut p);
        root.sub(p)
    };
    let mut rows = vec![];
    let mut row = |id: &str, inter: Ca, leaf: CertificateParams| {
        let l = inter.leaf(leaf);
        rows.push(case(id, vec![l, inter.der.clone()], store.clone()));
    };
    row(
        "intermediate EKU clientAuth only",
        with(&|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]),
        leaf_params(&[NAME]),
    );
    row(
        "intermediate EKU serverAuth",
        with(&|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]),
        leaf_params(&[NAME]),
    );
    row(
        "intermediate EKU anyExtendedKeyUsage",
        with(&|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any]),
        leaf_params(&[NAME]),
    );
    row(
        "intermediate keyUsage without keyCertSign",
        with(&|p| p.key_usages = vec![KeyUsagePurpose::DigitalSignature]),
        leaf_params(&[NAME]),
    );
    row(
        "intermediate without basicConstraints",
        with(&|p| p.is_ca = IsCa::NoCa),
        leaf_params(&[NAME]),
    );
    row(
        "intermediate pathLen 0",
        with(&|p| p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))),
        leaf_params(&[NAME]),
    );
    row(
        "name constraints permit the leaf",
        with(&|p| p.name_constraints = Some(permit("rotcheck.test"))),
        leaf_params(&[NAME]),
    );
    row(
        "name constraints exclude a leaf SAN",
        with(&|p| p.name_constraints = Some(permit("rotcheck.test"))),
        leaf_params(&[NAME, "evil.example"]),
    );
    let plain = || with(&|_| {});
    let mut no_eku = leaf_params(&[NAME]);
    no_eku.extended_key_usages = vec![];
    row("leaf without EKU", plain(), no_eku);
    let mut any_eku = leaf_params(&[NAME]);
    any_eku.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    row("leaf EKU anyExtendedKeyUsage only", plain(), any_eku);
    let mut ku_sign = leaf_params(&[NAME]);
    ku_sign.key_usages = vec![KeyUsagePurpose::ContentCommitment];
    row("leaf keyUsage nonRepudiation only", plain(), ku_sign);
    let mut long_serial = leaf_params(&[NAME]);
    long_serial.serial_number = Some(SerialNumber::from_slice(&[0x11; 25]));
    row("leaf serial of 25 octets", plain(), long_serial);
    let mut ca_leaf = leaf_params(&[NAME]);
    ca_leaf.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    row("leaf is a CA", plain(), ca_leaf);
    // Two intermediates under a pathLen 0 one.
    let top = with(&|p| p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0)));
    let lower = top.sub(ca_params("lower intermediate"));
    let l = lower.leaf(leaf_params(&[NAME]));
    rows.push(case(
        "pathLen 0 exceeded",
        vec![l, lower.der.clone(), top.der.clone()],
        store.clone(),
    ));
    // A root restricted to serverAuth, a client certificate under it.
    let mut eku_root = ca_params("server-only root");
    eku_root.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let eku_root = Ca::root(eku_root);
    let mut client = leaf_params(&[]);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    rows.push(for_client(case(
        "client leaf under a serverAuth-only root",
        vec![eku_root.leaf(client)],
        vec![eku_root.der.clone()],
    )));
    rows.push(case(
        "server leaf under a serverAuth-only root",
        vec![eku_root.leaf(leaf_params(&[NAME]))],
        vec![eku_root.der.clone()],
    ));
    rows
}

fn permit(dns: &str) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(dns.into())],
        excluded_subtrees: vec![],
    }
}

// ---------------------------------------------------------------- openssl-made

/// Runs openssl in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_der(path: &Path) -> Der {
    CertificateDer::from_pem_file(path).expect("PEM certificate")
}

/// A certificate made by `openssl x509 -req`: `key` is an `openssl genpkey` spec ("rsa:1024",
/// "ec"), `ca` the issuer (cert and key files in `dir`) or None for self-signed.
struct Made<'d> {
    dir: &'d Path,
}

impl Made<'_> {
    fn key(&self, name: &str, spec: &str) {
        let file = format!("{name}.key");
        match spec.strip_prefix("rsa:") {
            Some(bits) => openssl(
                self.dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    &format!("rsa_keygen_bits:{bits}"),
                    "-out",
                    &file,
                ],
            ),
            None => openssl(
                self.dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &file,
                ],
            ),
        }
    }

    /// Issues `name` (key `name.key`) from `ca` (`ca.pem`, `ca.key`), or self-signs.
    fn cert(&self, name: &str, ca: Option<&str>, ext: &str, extra: &[&str]) -> Der {
        let ext_file = format!("{name}.ext");
        std::fs::write(self.dir.join(&ext_file), format!("[x]\n{ext}\n")).expect("ext");
        let subj = format!("/O=rotcheck clients/CN={name}");
        openssl(
            self.dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &subj,
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let mut args = vec!["x509", "-req", "-in"];
        let csr = format!("{name}.csr");
        let out = format!("{name}.pem");
        let (ca_pem, ca_key, own_key) = ca
            .map_or((String::new(), String::new(), format!("{name}.key")), |c| {
                (format!("{c}.pem"), format!("{c}.key"), String::new())
            });
        args.extend([
            csr.as_str(),
            "-out",
            out.as_str(),
            "-days",
            "3650",
            "-extfile",
            ext_file.as_str(),
            "-extensions",
            "x",
        ]);
        if ca.is_some() {
            args.extend(["-CA", ca_pem.as_str(), "-CAkey", ca_key.as_str()]);
        } else {
            args.extend(["-key", own_key.as_str()]);
        }
        args.extend(extra);
        openssl(self.dir, &args);
        read_der(&self.dir.join(out))
    }
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid";
const LEAF_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:svc.rotcheck.test\nauthorityKeyIdentifier=keyid";

/// RSA sizes, SHA-1 signatures and negative serials, which rcgen (ring) cannot produce.
pub fn openssl_made() -> Vec<Case> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = Made { dir: tmp.path() };
    m.key("rsa root", "rsa:2048");
    let root = m.cert("rsa root", None, CA_EXT, &[]);
    m.key("sha1 root", "rsa:2048");
    let sha1_root = m.cert("sha1 root", None, CA_EXT, &["-sha1"]);
    m.key("rsa inter", "rsa:2048");
    let inter = m.cert("rsa inter", Some("rsa root"), CA_EXT, &[]);
    m.key("sha1 inter", "rsa:2048");
    let sha1_inter = m.cert("sha1 inter", Some("rsa root"), CA_EXT, &["-sha1"]);
    m.key("small inter", "rsa:1024");
    let small_inter = m.cert("small inter", Some("rsa root"), CA_EXT, &[]);
    m.key("under sha1 root", "rsa:2048");
    let under_sha1_root = m.cert("under sha1 root", Some("sha1 root"), CA_EXT, &[]);
    let leaf_of = |name: &str, key: &str, ca: &str, extra: &[&str]| {
        m.key(name, key);
        m.cert(name, Some(ca), LEAF_EXT, extra)
    };
    let good = leaf_of("rsa leaf", "rsa:2048", "rsa inter", &[]);
    let sha1_leaf = leaf_of("sha1 leaf", "rsa:2048", "rsa inter", &["-sha1"]);
    let small_leaf = leaf_of("small leaf", "rsa:1024", "rsa inter", &[]);
    let under_sha1 = leaf_of("leaf under sha1 inter", "ec", "sha1 inter", &[]);
    let under_small = leaf_of("leaf under small inter", "ec", "small inter", &[]);
    let neg = leaf_of(
        "negative serial leaf",
        "ec",
        "rsa inter",
        &["-set_serial", "-4242"],
    );
    let under_root = leaf_of("leaf under sha1 root", "ec", "under sha1 root", &[]);
    let store = vec![root.clone()];
    vec![
        case("RSA 2048 chain", vec![good, inter.clone()], store.clone()),
        case("SHA-1 leaf", vec![sha1_leaf, inter.clone()], store.clone()),
        case(
            "RSA 1024 leaf",
            vec![small_leaf, inter.clone()],
            store.clone(),
        ),
        case(
            "SHA-1 intermediate",
            vec![under_sha1, sha1_inter],
            store.clone(),
        ),
        case(
            "RSA 1024 intermediate",
            vec![under_small, small_inter],
            store.clone(),
        ),
        case("negative serial leaf", vec![neg, inter], store),
        case(
            "SHA-1 self-signed root",
            vec![under_root, under_sha1_root],
            vec![sha1_root],
        ),
    ]
}
