//! Packaging for real hosts: the systemd units pass `systemd-analyze verify` (and the serve
//! unit's sandbox scores as hardened), the Prometheus examples pass `promtool check config`,
//! the completion scripts name every subcommand (bash's really completes), every man page
//! renders with groff, `make install` into a DESTDIR produces the documented tree, and the
//! binary location follows cargo's target directory.
//!
//! A missing tool skips a test, unless ROTCHECK_REQUIRE_TOOLS is set (scripts/test.sh sets
//! it after installing them): then it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `tool` is on PATH (or in /usr/sbin); panics instead of skipping under
/// ROTCHECK_REQUIRE_TOOLS.
fn have(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let why = format!("{tool} is not installed (Debian package {package})");
        if std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_some() {
            panic!("{why}; ROTCHECK_REQUIRE_TOOLS is set");
        }
        eprintln!("skipped: {why}");
    }
    found
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommand names a `--help` lists under "Commands:" (clap's own help, read
/// independently of the completion and man generators), without `help`.
fn commands_in_help(args: &[&str]) -> Vec<String> {
    let help = run_ok(Command::new(BIN).args(args).arg("--help"));
    let listed: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        !listed.is_empty(),
        "no commands in {args:?} --help:\n{help}"
    );
    listed
}

fn top_commands() -> Vec<String> {
    let top = commands_in_help(&[]);
    for c in ["gate", "serve", "rotate", "completions", "man"] {
        assert!(top.iter().any(|t| t == c), "{c} missing from {top:?}");
    }
    top
}

#[test]
fn completions_name_every_subcommand() {
    let top = top_commands();
    let rotate = commands_in_help(&["rotate"]);
    for shell in ["bash", "zsh", "fish"] {
        let script = run_ok(Command::new(BIN).args(["completions", shell]));
        assert!(script.len() > 1000, "{shell}: {script}");
        for c in top.iter().chain(&rotate) {
            assert!(script.contains(c.as_str()), "{shell} script lacks {c}");
        }
    }
    let bad = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

/// Sources the bash script and asks its completion function what follows `words`.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let line = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; _rotcheck rotcheck '{}' '{}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = run_ok(Command::new("bash").args(["--norc", "-c", &line]));
    out.lines().map(str::to_owned).collect()
}

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rotcheck.bash");
    std::fs::write(
        &script,
        run_ok(Command::new(BIN).args(["completions", "bash"])),
    )
    .unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax));

    let top = bash_complete(&script, &["rotcheck", ""]);
    for c in top_commands() {
        assert!(top.contains(&c), "{c} not offered: {top:?}");
    }
    assert_eq!(bash_complete(&script, &["rotcheck", "ga"]), ["gate"]);
    let rotate = bash_complete(&script, &["rotcheck", "rotate", ""]);
    for c in commands_in_help(&["rotate"]) {
        assert!(rotate.contains(&c), "rotate {c} not offered: {rotate:?}");
    }
    let gate = bash_complete(&script, &["rotcheck", "gate", "--"]);
    for f in ["--config", "--stage", "--format", "--wait", "--strict"] {
        assert!(
            gate.iter().any(|g| g == f),
            "gate {f} not offered: {gate:?}"
        );
    }
}

/// Every page `rotcheck man --out-dir` writes: one per command and subcommand.
fn man_pages(dir: &Path) -> Vec<PathBuf> {
    run_ok(Command::new(BIN).arg("man").arg("--out-dir").arg(dir));
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    pages
}

#[test]
fn man_pages_cover_every_subcommand_and_render_with_groff() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let pages = man_pages(&out);
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut expected = vec!["rotcheck.1".to_owned()];
    expected.extend(top_commands().iter().map(|c| format!("rotcheck-{c}.1")));
    expected.extend(
        commands_in_help(&["rotate"])
            .iter()
            .map(|c| format!("rotcheck-rotate-{c}.1")),
    );
    for e in &expected {
        assert!(names.contains(e), "{e} not written: {names:?}");
    }
    assert_eq!(names.len(), expected.len(), "{names:?}");

    // Without --out-dir: rotcheck.1 on stdout, the same page.
    let stdout = run_ok(Command::new(BIN).arg("man"));
    assert_eq!(
        stdout,
        std::fs::read_to_string(out.join("rotcheck.1")).unwrap()
    );

    if !have("groff", "groff-base") {
        return;
    }
    for page in &pages {
        let roff = std::fs::read(page).unwrap();
        assert!(
            roff.is_ascii(),
            "{page:?} is not ASCII (groff reads it as Latin-1)"
        );
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-cbou", "-ww"])
            .arg(page)
            .output()
            .unwrap();
        let rendered = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.trim().is_empty(),
            "{page:?}: {warnings}"
        );
        let sections: Vec<&str> = rendered
            .lines()
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_uppercase()))
            .collect();
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"] {
            assert!(
                sections.contains(&section),
                "{page:?} lacks {section}:\n{rendered}"
            );
        }
    }
    let gate = std::fs::read_to_string(out.join("rotcheck-gate.1")).unwrap();
    assert!(
        gate.contains("\\-\\-strict") && gate.contains("\\-\\-wait"),
        "{gate}"
    );
}

#[test]
fn man_refuses_a_symlinked_page() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, "keep").unwrap();
    let out = dir.path().join("man1");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&target, out.join("rotcheck.1")).unwrap();
    let res = Command::new(BIN)
        .arg("man")
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", text(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.starts_with("rotcheck: error:") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

/// A copy of the unit with ExecStart pointed at the built binary, so `verify` finds it.
fn unit_copy(dir: &Path, name: &str) -> PathBuf {
    let src = std::fs::read_to_string(repo().join("deploy/systemd").join(name)).unwrap();
    let dst = dir.join(name);
    std::fs::write(&dst, src.replace("/usr/local/bin/rotcheck", BIN)).unwrap();
    dst
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // verify runs `man` on each Documentation=man:… page: the generated pages must hold them.
    let man = dir.path().join("man");
    man_pages(&man.join("man1"));
    let units: Vec<PathBuf> = [
        "rotcheck-serve.service",
        "rotcheck-gate.service",
        "rotcheck-gate.timer",
    ]
    .iter()
    .map(|u| unit_copy(dir.path(), u))
    .collect();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .env("MANPATH", &man)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("rotcheck")).collect();
    assert!(ours.is_empty(), "verify complains about our units: {said}");

    // A unit with a missing binary fails verify, so the pass above means something.
    let broken = dir.path().join("rotcheck-broken.service");
    std::fs::write(
        &broken,
        "[Service]\nExecStart=/nonexistent/rotcheck serve\nNoSuchKey=1\n",
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&broken)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("is not executable") && said.contains("NoSuchKey"),
        "{said}"
    );
}

/// `systemd-analyze security --offline` rates the serve unit's sandbox: "OK" (exposure below
/// 3.0 of 10) at least. The gate service is the same sandbox for a oneshot.
#[test]
fn serve_unit_is_rated_hardened_by_systemd_analyze_security() {
    if !have("systemd-analyze", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["rotcheck-serve.service", "rotcheck-gate.service"] {
        let unit = unit_copy(dir.path(), name);
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&unit)
            .output()
            .unwrap();
        let said = text(&out);
        let exposure = said
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no exposure level: {said}"));
        assert!(exposure < 3.0, "{name}: exposure {exposure}: {said}");
    }
}

#[test]
fn prometheus_examples_pass_promtool_check_config() {
    if !have("promtool", "prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = install(dir.path(), &[]);
    let examples = root.join("usr/share/doc/rotcheck/examples/prometheus");
    for config in ["prometheus.yml", "federate.yml"] {
        let out = Command::new("promtool")
            .args(["check", "config"])
            .arg(examples.join(config))
            .output()
            .unwrap();
        assert!(out.status.success(), "{config}: {}", text(&out));
        if config == "prometheus.yml" {
            let said = text(&out);
            assert!(said.contains("1 rule files found"), "{said}");
        }
    }
    // promtool reads the file_sd targets too: a broken target file fails the check.
    let targets = examples.join("targets/rotcheck-prod.yml");
    std::fs::write(&targets, "- targets: [a:9847]\n  labels: {bad-label: x}\n").unwrap();
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(examples.join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("bad-label"), "{}", text(&out));
}

/// `make install` of the built binary into `dir/root` with PREFIX=/usr; returns the root.
fn install(dir: &Path, extra: &[&str]) -> PathBuf {
    if !have("make", "make") {
        panic!("make is needed for the install target (Debian package make)");
    }
    let root = dir.join("root");
    run_ok(
        Command::new("make")
            .current_dir(repo())
            .args(["-s", "install", "PREFIX=/usr"])
            .arg(format!("DESTDIR={}", root.display()))
            .arg(format!("BIN={BIN}"))
            .args(extra),
    );
    root
}

/// Every regular file under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn make_install_into_a_destdir_produces_the_documented_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = install(dir.path(), &[]);
    let files = tree(&root);
    let mut expected: Vec<String> = [
        "etc/rotcheck/rotcheck.yaml",
        "usr/bin/rotcheck",
        "usr/lib/systemd/system/rotcheck-gate.service",
        "usr/lib/systemd/system/rotcheck-gate.timer",
        "usr/lib/systemd/system/rotcheck-serve.service",
        "usr/share/bash-completion/completions/rotcheck",
        "usr/share/doc/rotcheck/examples/prometheus/federate.yml",
        "usr/share/doc/rotcheck/examples/prometheus/prometheus.yml",
        "usr/share/doc/rotcheck/examples/prometheus/rotcheck.rules.yml",
        "usr/share/doc/rotcheck/examples/prometheus/targets/rotcheck-prod.yml",
        "usr/share/doc/rotcheck/examples/rotcheck.yaml",
        "usr/share/fish/vendor_completions.d/rotcheck.fish",
        "usr/share/zsh/site-functions/_rotcheck",
    ]
    .map(str::to_owned)
    .to_vec();
    let pages = man_pages(&dir.path().join("pages"));
    expected.extend(pages.iter().map(|p| {
        format!(
            "usr/share/man/man1/{}",
            p.file_name().unwrap().to_string_lossy()
        )
    }));
    expected.sort();
    assert_eq!(files, expected);

    assert_eq!(mode(&root.join("usr/bin/rotcheck")), 0o755);
    for f in files.iter().filter(|f| *f != "usr/bin/rotcheck") {
        assert_eq!(mode(&root.join(f)), 0o644, "{f}");
    }
    let version = run_ok(Command::new(root.join("usr/bin/rotcheck")).arg("--version"));
    assert!(version.starts_with("rotcheck "), "{version}");
    for unit in ["rotcheck-serve.service", "rotcheck-gate.service"] {
        let text = std::fs::read_to_string(root.join("usr/lib/systemd/system").join(unit)).unwrap();
        assert!(
            text.contains("ExecStart=/usr/bin/rotcheck "),
            "{unit}: {text}"
        );
        assert!(!text.contains("/usr/local"), "{unit}: {text}");
    }
    let lint = Command::new(root.join("usr/bin/rotcheck"))
        .args(["lint", "-c"])
        .arg(root.join("etc/rotcheck/rotcheck.yaml"))
        .output()
        .unwrap();
    assert!(lint.status.success(), "{}", text(&lint));

    // A second install keeps the host's own suite.
    std::fs::write(root.join("etc/rotcheck/rotcheck.yaml"), "suite: mine\n").unwrap();
    install(dir.path(), &[]);
    let kept = std::fs::read_to_string(root.join("etc/rotcheck/rotcheck.yaml")).unwrap();
    assert_eq!(kept, "suite: mine\n");
}

#[test]
fn split_debug_install_keeps_symbols_in_a_separate_file() {
    if !have("objcopy", "binutils") || !have("readelf", "binutils") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = install(dir.path(), &["SPLIT_DEBUG=1"]);
    let bin = root.join("usr/bin/rotcheck");
    let debug = root.join("usr/lib/debug/usr/bin/rotcheck.debug");
    let sections = |p: &Path| run_ok(Command::new("readelf").arg("-S").arg(p));
    let stripped = sections(&bin);
    assert!(stripped.contains(".gnu_debuglink"), "{stripped}");
    assert!(!stripped.contains(".symtab"), "{stripped}");
    assert!(sections(&debug).contains(".symtab"));
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&bin) < size(Path::new(BIN)),
        "the installed binary is not smaller"
    );
    let version = run_ok(Command::new(&bin).arg("--version"));
    assert!(version.starts_with("rotcheck "), "{version}");
}

#[test]
fn the_binary_location_follows_cargos_target_directory() {
    if !have("make", "make") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let asked = |env: Option<&Path>, args: &[&str]| {
        let mut cmd = Command::new("make");
        cmd.current_dir(repo()).args(["-s", "print-bin"]).args(args);
        match env {
            Some(d) => cmd.env("CARGO_TARGET_DIR", d),
            None => cmd.env_remove("CARGO_TARGET_DIR"),
        };
        run_ok(&mut cmd).trim().to_owned()
    };
    assert_eq!(
        asked(Some(&elsewhere), &[]),
        format!("{}/release/rotcheck", elsewhere.display())
    );
    assert_eq!(
        asked(Some(&elsewhere), &["SPLIT_DEBUG=1"]),
        format!("{}/release-debuginfo/rotcheck", elsewhere.display())
    );
    assert_eq!(
        asked(None, &[]),
        format!("{}/target/release/rotcheck", repo().display())
    );
    // The quick start asks the same script rather than assuming ./target.
    let quick = std::fs::read_to_string(repo().join("scripts/quickstart.sh")).unwrap();
    assert!(quick.contains("\"$(./scripts/target-dir.sh)/release\""));
    assert!(
        !quick.contains("target/release"),
        "quickstart.sh assumes ./target"
    );
}
