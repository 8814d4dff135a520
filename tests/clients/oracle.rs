//! The real clients the profiles are compared with: Debian's `openssl verify` (security level
//! 2 as `-auth_level 2`, the level nginx, haproxy and curl verify at on Debian), a Go
//! verifier built from tests/oracles/goverify with the toolchain `ROTCHECK_GO` names, and
//! rustls's own `WebPkiServerVerifier` / `WebPkiClientVerifier`.

use rotcheck::expect::chain::Purpose;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, RootCertStore};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::Case;

/// A real client's answer: accepted, or the error it printed.
pub type Answer = Result<(), String>;

fn pem(certs: &[CertificateDer<'_>]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for c in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

fn write(dir: &Path, name: &str, certs: &[CertificateDer<'_>]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem(certs)).expect("write PEM");
    p
}

fn is_ip(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
}

/// `openssl verify` as nginx/curl verify a peer on Debian.
pub fn openssl(case: &Case) -> Answer {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = write(dir.path(), "leaf.pem", &case.presented[..1]);
    let ca = write(dir.path(), "ca.pem", &case.store);
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-no-CApath", "-no-CAstore", "-auth_level", "2"]);
    cmd.arg("-CAfile").arg(&ca);
    if case.presented.len() > 1 {
        cmd.arg("-untrusted")
            .arg(write(dir.path(), "untrusted.pem", &case.presented[1..]));
    }
    let purpose = match case.purpose {
        Purpose::ServerAuth => "sslserver",
        Purpose::ClientAuth => "sslclient",
    };
    cmd.args(["-purpose", purpose, "-attime", &case.at.to_string()]);
    if let Some(name) = &case.name {
        let flag = if is_ip(name) {
            "-verify_ip"
        } else {
            "-verify_hostname"
        };
        cmd.args([flag, name]);
    }
    cmd.arg(&leaf);
    let out = cmd.output().expect("run openssl verify");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(())
    } else {
        Err(one_line(
            &text.replace(&dir.path().display().to_string(), ""),
        ))
    }
}

fn one_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| l.contains("error")).collect();
    let pick = if lines.is_empty() {
        s.lines().collect()
    } else {
        lines
    };
    pick.join(" | ").chars().take(300).collect()
}

/// The Go toolchain: `ROTCHECK_GO`, else `go` on PATH. None (a skip line) when neither is
/// there; a panic when `ROTCHECK_REQUIRE_GO` is set.
pub fn go_toolchain() -> Option<PathBuf> {
    let from_env = std::env::var_os("ROTCHECK_GO")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let on_path = || {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("go"))
                .find(|g| g.is_file())
        })
    };
    let found = from_env.filter(|p| p.is_file()).or_else(on_path);
    if found.is_none() {
        assert!(
            std::env::var_os("ROTCHECK_REQUIRE_GO").is_none(),
            "ROTCHECK_REQUIRE_GO is set but no Go toolchain was found (ROTCHECK_GO or go on PATH); run ./scripts/test.sh, which installs it with scripts/gobin.sh"
        );
        println!("skipped: no Go toolchain (set ROTCHECK_GO or put go on PATH; scripts/gobin.sh installs one)");
    }
    found
}

/// Builds tests/oracles/goverify into the target folder once; its path.
pub fn goverify(go: &Path) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/goverify");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
            let out_dir = target.join("goverify");
            let bin = out_dir.join("goverify");
            let status = Command::new(go)
                .current_dir(&src)
                .env("GOFLAGS", "-mod=mod")
                .env("GOPROXY", "off")
                .env("GOTOOLCHAIN", "local")
                .env("GOCACHE", out_dir.join("cache"))
                .env("GOPATH", out_dir.join("gopath"))
                .env("CGO_ENABLED", "0")
                .args(["build", "-o"])
                .arg(&bin)
                .arg(".")
                .status()
                .expect("run go build");
            assert!(
                status.success(),
                "go build of tests/oracles/goverify failed"
            );
            bin
        })
        .clone()
}

/// Go's `x509.Certificate.Verify`, through goverify.
pub fn go(bin: &Path, case: &Case) -> Answer {
    let dir = tempfile::tempdir().expect("tempdir");
    let presented = write(dir.path(), "presented.pem", &case.presented);
    let roots = write(dir.path(), "roots.pem", &case.store);
    let purpose = match case.purpose {
        Purpose::ServerAuth => "server",
        Purpose::ClientAuth => "client",
    };
    let mut cmd = Command::new(bin);
    cmd.arg("-presented")
        .arg(&presented)
        .arg("-roots")
        .arg(&roots);
    cmd.args(["-purpose", purpose, "-at", &case.at.to_string()]);
    if let Some(name) = &case.name {
        cmd.args(["-name", name]);
    }
    let out = cmd.output().expect("run goverify");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && text == "ok" {
        Ok(())
    } else {
        Err(text.replace(&dir.path().display().to_string(), ""))
    }
}

/// rustls's WebPKI verifiers with a root store made of the case's store. Without a name
/// (client certificates, or a server check without one) a name mismatch is not an error.
pub fn rustls(case: &Case) -> Answer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in &case.store {
        let _ = roots.add(c.clone());
    }
    let roots = Arc::new(roots);
    let now = UnixTime::since_unix_epoch(Duration::from_secs(case.at.max(0) as u64));
    let leaf = &case.presented[0];
    let inters = &case.presented[1..];
    let result = match case.purpose {
        Purpose::ServerAuth => {
            let v = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("{e:?}"))?;
            let name = case.name.clone().unwrap_or_else(|| "name.invalid".into());
            let name = ServerName::try_from(name).map_err(|e| format!("{e:?}"))?;
            v.verify_server_cert(leaf, inters, &name, &[], now)
                .map(|_| ())
        }
        Purpose::ClientAuth => {
            let v = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("{e:?}"))?;
            v.verify_client_cert(leaf, inters, now).map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) if case.name.is_none() => Ok(()),
        Err(e) => Err(format!("{e:?}")),
    }
}
