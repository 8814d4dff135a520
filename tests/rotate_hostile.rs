//! `rotcheck rotate` run as root against a target directory owned by a hostile local user
//! (`nobody`, through `setpriv`): symlinks planted at temp, backup and target names, FIFOs,
//! directories and devices in place of targets, state, lock and audit files; concurrent
//! `rotate issue` runs on one file set; a kill after the last rename; an unknown `--owner`.
//! Every run has a generous hang guard: a FIFO must be refused, not waited on.

use rotcheck_lab::{Lab, LabConfig};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const APP_B: &str = "app-b.lab.rotcheck.test";
const NOBODY: u32 = 65534;
const HANG_GUARD: Duration = Duration::from_secs(90);

/// One finished `rotcheck` run.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    out: String,
}

/// A lab Vault, a target directory owned by nobody, a root-only directory outside it.
struct Env {
    _tmp: tempfile::TempDir,
    lab: Arc<Lab>,
    root: PathBuf,
    out: PathBuf,
    outside: PathBuf,
    suite: PathBuf,
}

impl Env {
    async fn new(plan: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = LabConfig {
            dir: Some(root.join("lab")),
            ..LabConfig::default()
        };
        let lab = Arc::new(Lab::start(cfg).await.unwrap());
        let out = root.join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::chown(&out, Some(NOBODY), Some(NOBODY)).unwrap();
        let outside = root.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
        let suite = root.join("hostile.yaml");
        let env = Env {
            _tmp: tmp,
            lab,
            root,
            out,
            outside,
            suite,
        };
        std::fs::write(&env.suite, env.suite_yaml(plan)).unwrap();
        env
    }

    fn suite_yaml(&self, plan: &str) -> String {
        format!(
            r#"suite: hostile
vars:
  dir: "{dir}"
  vault: "{vault}"
defaults:
  timeout: 5s
vault:
  addr: https://${{vault}}
  server_name: vault.lab.rotcheck.test
  ca_file: ${{dir}}/vault/ca_chain.pem
  client_cert: ${{dir}}/vault/tls-admin/admin.crt
  client_key: ${{dir}}/vault/tls-admin/admin.key
  auth: {{ cert: {{ mount: cert, role: vault-admin }} }}
checks:
  - name: final-seal
    stage: final
    vault_health: {{}}
    expect: {{ sealed: false }}
{plan}"#,
            dir = self.lab.files().dir.display(),
            vault = self.lab.addr(),
        )
    }

    fn o(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    fn s(&self, name: &str) -> String {
        self.o(name).display().to_string()
    }

    async fn rotcheck(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("VAULT_TOKEN")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(HANG_GUARD, child)
            .await
            .unwrap_or_else(|_| panic!("rotcheck {args:?} hung"))
            .unwrap();
        Run {
            code: out.status.code(),
            signal: out.status.signal(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// `rotate issue` of app-b's role into out/svc.key + out/svc.crt.
    async fn issue(&self, extra: &[&str]) -> Run {
        let suite = self.suite.display().to_string();
        let (key, cert) = (self.s("svc.key"), self.s("svc.crt"));
        let mut args = issue_args(&suite, &key, &cert);
        args.extend_from_slice(&["--ttl", "24h"]);
        args.extend_from_slice(extra);
        self.rotcheck(&args, &[]).await
    }

    async fn plan(&self, envs: &[(&str, &str)]) -> Run {
        let suite = self.suite.display().to_string();
        self.rotcheck(&["rotate", "plan", "-c", &suite], envs).await
    }
}

/// Runs a shell script as nobody:nogroup (the hostile owner of the target directory).
fn as_nobody(script: &str) {
    let st = std::process::Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .status()
        .expect("setpriv (util-linux) is installed");
    assert!(st.success(), "as nobody: {script}");
}

/// Every entry under `dir`, with its owner, mode and content hash.
fn listing(dir: &Path) -> Vec<(String, u32, u32, String)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.uid(),
                m.mode(),
                rotcheck::certs::sha256_hex(&bytes),
            )
        })
        .collect();
    v.sort();
    v
}

/// The key and certificate files pair.
fn pairs(key: &Path, cert: &Path) -> Result<(), String> {
    let k = std::fs::read_to_string(key).map_err(|e| e.to_string())?;
    let c = rotcheck::certs::read_certs(cert).map_err(|e| e.to_string())?;
    let (_, leaf) = x509_parser::parse_x509_certificate(c[0].as_ref()).unwrap();
    let secret = rotcheck::rotate::secret::Secret::new(k);
    rotcheck::rotate::verify::pairs(&secret, &leaf).map_err(|e| e.to_string())
}

fn ok(r: &Run) {
    assert_eq!(r.code, Some(0), "{}", r.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_symlinks_at_temp_backup_and_prev_names_change_nothing_outside() {
    let env = Env::new("").await;
    ok(&env.issue(&[]).await);
    let victim = env.outside.join("victim.pem");
    std::fs::write(&victim, b"root's own file\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = listing(&env.outside);
    // The old naming scheme, `.NAME.rotcheck-<pid>-<n>.prev`, for the next pids; the backup
    // names themselves; all pointing outside (an existing root file and free names). One perl
    // process plants them all, so the planting itself does not use up the pids.
    let next: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let script = format!(
        "cd {out} && perl -e 'for $p ({next}..{last}) {{ for $n (0..5) {{ \
         symlink(\"{outside}/stolen.key\", \".svc.key.rotcheck-$p-$n.prev\"); \
         symlink(\"{outside}/stolen.crt\", \".svc.crt.rotcheck-$p-$n.prev\") }} }}' && \
         ln -s {victim} svc.key.prev && ln -s {outside}/new.pem svc.crt.prev",
        out = env.out.display(),
        last = next + 5000,
        outside = env.outside.display(),
        victim = victim.display(),
    );
    as_nobody(&script);
    let run = env.issue(&["--force"]).await;
    ok(&run);
    assert_eq!(listing(&env.outside), before, "nothing outside changed");
    pairs(&env.o("svc.key"), &env.o("svc.crt")).unwrap();
    for prev in ["svc.key.prev", "svc.crt.prev"] {
        let m = std::fs::symlink_metadata(env.o(prev)).unwrap();
        assert!(m.is_file(), "{prev} is now a real backup, not a link");
        assert_eq!(m.uid(), 0, "{prev} is the old root-owned file");
    }
    assert_eq!(
        env.o("svc.key.prev").metadata().unwrap().mode() & 0o7777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_with_owner_on_a_symlinked_chain_is_refused_and_the_target_keeps_owner_and_mode() {
    let env = Env::new("").await;
    let suite = env.suite.display().to_string();
    // The exact bytes trust writes, so the old code saw "same content" and fixed the owner.
    let scratch = env.root.join("scratch.pem").display().to_string();
    let t = [
        "rotate", "trust", "-c", &suite, "--mount", "pki-prod", "--out", &scratch,
    ];
    ok(&env.rotcheck(&t, &[]).await);
    let victim = env.outside.join("root-only.pem");
    std::fs::copy(&scratch, &victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    as_nobody(&format!(
        "ln -s {} {}",
        victim.display(),
        env.o("ca_chain.pem").display()
    ));
    let out = env.s("ca_chain.pem");
    let args = [
        "rotate",
        "trust",
        "-c",
        &suite,
        "--mount",
        "pki-prod",
        "--out",
        &out,
        "--owner",
        "nobody:nogroup",
    ];
    let run = env.rotcheck(&args, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(
        run.out
            .contains("is a symbolic link, expected a regular file"),
        "{}",
        run.out
    );
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o600));
    assert!(std::fs::symlink_metadata(env.o("ca_chain.pem"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_as_key_cert_state_lock_or_audit_are_refused_without_hanging() {
    let plan =
        "plan:\n  state_dir: ${dir}/../out/state\n  steps:\n    - name: final\n      gate: final\n";
    let env = Env::new(plan).await;
    for target in ["svc.key", "svc.crt"] {
        as_nobody(&format!("mkfifo {}", env.o(target).display()));
        let run = env.issue(&[]).await;
        assert_eq!(run.code, Some(1), "{target}: {}", run.out);
        let want = format!(
            "{} is a FIFO (named pipe), expected a regular file",
            env.s(target)
        );
        assert!(run.out.contains(&want), "{target}: {}", run.out);
        assert!(
            !run.out.contains("POST"),
            "refused before Vault: {}",
            run.out
        );
        std::fs::remove_file(env.o(target)).unwrap();
    }
    as_nobody(&format!("mkdir {}", env.o("state").display()));
    for name in ["state.json", "lock", "audit.jsonl"] {
        let path = env.o("state").join(name);
        as_nobody(&format!("rm -f {0} && mkfifo {0}", path.display()));
        let run = env.plan(&[]).await;
        assert_eq!(run.code, Some(2), "{name}: {}", run.out);
        let want = format!("out/state/{name} is a FIFO (named pipe)");
        assert!(run.out.contains(&want), "{name}: {}", run.out);
        std::fs::remove_file(&path).unwrap();
    }
    ok(&env.plan(&[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_or_device_in_place_of_a_target_is_refused() {
    let env = Env::new("").await;
    as_nobody(&format!("mkdir {}", env.o("svc.crt").display()));
    let run = env.issue(&[]).await;
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(
        run.out.contains("is a directory, expected a regular file"),
        "{}",
        run.out
    );
    std::fs::remove_dir(env.o("svc.crt")).unwrap();
    let dev = nix::sys::stat::makedev(1, 3);
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
    nix::sys::stat::mknod(&env.o("svc.key"), nix::sys::stat::SFlag::S_IFCHR, mode, dev).unwrap();
    let run = env.issue(&[]).await;
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(run.out.contains("is a character device"), "{}", run.out);
    let m = std::fs::symlink_metadata(env.o("svc.key")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &m.file_type()
    ));
    assert!(!env.o("svc.crt").exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issues_on_one_file_set_always_leave_a_pair() {
    let env = Env::new("").await;
    for round in 0..12 {
        let runs = tokio::join!(
            env.issue(&["--force"]),
            env.issue(&["--force"]),
            env.issue(&["--force"])
        );
        for r in [runs.0, runs.1, runs.2] {
            assert_eq!(r.code, Some(0), "round {round}: {}", r.out);
        }
        pairs(&env.o("svc.key"), &env.o("svc.crt"))
            .unwrap_or_else(|e| panic!("round {round}: key and cert do not pair: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_the_last_rename_still_reloads_on_resume() {
    let marker = "reloads.log";
    let plan = format!(
        r#"plan:
  state_dir: ${{dir}}/../state
  steps:
    - name: leaf
      gate: final
      actions:
        - issue: {{ mount: pki-prod, role: nginx-app-b, cn: {APP_B}, ttl: 24h, key: "${{dir}}/../out/svc.key", cert: "${{dir}}/../out/svc.crt" }}
      reload:
        - command: [sh, -c, "echo reloaded >> ${{dir}}/../{marker}"]
"#
    );
    let env = Env::new(&plan).await;
    let reloads = || {
        std::fs::read_to_string(env.root.join(marker))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let killed = env
        .plan(&[("ROTCHECK_TEST_KILL_AT", "renamed:svc.crt")])
        .await;
    assert_eq!(killed.signal, Some(9), "{}", killed.out);
    assert_eq!(reloads(), 0, "killed before the reload");
    pairs(&env.o("svc.key"), &env.o("svc.crt")).unwrap();
    let resumed = env.plan(&[]).await;
    ok(&resumed);
    assert!(
        resumed.out.contains("still owes the reload"),
        "{}",
        resumed.out
    );
    assert_eq!(reloads(), 1, "the resumed run reloaded:\n{}", resumed.out);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.root.join("state/state.json")).unwrap()).unwrap();
    assert_eq!(state["steps"][0]["reload_owed"], false);
    let again = env.plan(&[]).await;
    ok(&again);
    assert_eq!(
        reloads(),
        1,
        "nothing owed, nothing changed:\n{}",
        again.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_owner_or_a_relative_openssl_is_refused_before_vault_is_asked() {
    let env = Env::new("").await;
    let run = env
        .issue(&["--owner", "no-such-user-rotcheck:nogroup"])
        .await;
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(run.out.contains("no user named"), "{}", run.out);
    assert!(!run.out.contains("POST"), "Vault was asked: {}", run.out);
    assert!(!env.o("svc.key").exists());
    let suite = env.suite.display().to_string();
    let (key, cert) = (env.s("svc.key"), env.s("svc.crt"));
    let mut args = issue_args(&suite, &key, &cert);
    args.extend_from_slice(&["--csr", "--key-type", "rsa"]);
    let run = env
        .rotcheck(&args, &[("ROTCHECK_OPENSSL", "openssl")])
        .await;
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(run.out.contains("is not an absolute path"), "{}", run.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_directory_on_the_path_is_refused_and_nothing_is_created_through_it() {
    let env = Env::new("").await;
    as_nobody(&format!(
        "ln -s {} {}",
        env.outside.display(),
        env.o("link").display()
    ));
    let suite = env.suite.display().to_string();
    for (key, cert) in [
        ("link/svc.key", "link/svc.crt"),
        ("link/tls/svc.key", "link/tls/svc.crt"),
    ] {
        let (key, cert) = (env.s(key), env.s(cert));
        let args = issue_args(&suite, &key, &cert);
        let run = env.rotcheck(&args, &[]).await;
        assert_eq!(run.code, Some(1), "{}", run.out);
        assert!(
            run.out.contains("is a symbolic link owned by uid 65534"),
            "{}",
            run.out
        );
        assert!(
            listing(&env.outside).is_empty(),
            "nothing outside: {}",
            run.out
        );
    }
}

/// `rotate issue` of app-b's role into `key` and `cert`, with the suite's Vault profile.
fn issue_args<'a>(suite: &'a str, key: &'a str, cert: &'a str) -> Vec<&'a str> {
    vec![
        "rotate",
        "issue",
        "-c",
        suite,
        "--mount",
        "pki-prod",
        "--role",
        "nginx-app-b",
        "--cn",
        APP_B,
        "--key",
        key,
        "--cert",
        cert,
    ]
}
