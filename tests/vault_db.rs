//! `vault_db_creds` and `vault_db_static_role` against a real PostgreSQL (TLS on, a certificate
//! from the lab PKI, a free port on 127.0.0.1) and a real OpenBao dev server whose database
//! secrets engine manages it: a dynamic credential is issued, logs in, is revoked and is then
//! refused, and the check's own lease is gone afterwards (counted with a LIST of
//! `sys/leases/lookup`); a lease longer than `lease_ttl_max`, a user that may not log in, a
//! password that is not the issued one, revocation statements that leave the user alive and a
//! token that may not revoke each fail with their reason; a static role passes within its
//! period, fails `static_not_rotated` judged later, fails `login` when its password was
//! changed behind Vault's back, and moves its rotation series when rotated. The `postgres`
//! kind logs in with a leased credential and revokes it; its drain gate fails while a session
//! as the old static user is open and passes once it closes; an expired lease is refused.
//! No password, lease id or token appears in any output format, nor in serve's answers and
//! log; scripts/secrets-demo.sh runs end to end.

mod common;
mod exporter_support;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use common::report::{assertion, fails, passes, verdict};
use rotcheck_lab::pki::{LabPki, LeafSpec};
use rotcheck_lab::postgres::{self as lab_pg, PgConfig, PgServer};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// Every password the engine generates (a password policy of one character): what must never
/// appear in any output.
const PASSWORD: &str = "QQQQQQQQQQQQQQQQQQQQQQQQ";

/// A PostgreSQL and an OpenBao whose `database/` engine manages it (connection `pg`).
struct Env {
    pg: PgServer,
    dev: DevServer,
    /// The root CA that verifies PostgreSQL's certificate (for 127.0.0.1 and db.test).
    ca: PathBuf,
}

fn start() -> Option<Env> {
    let bin = bao::server_binary()?;
    lab_pg::binaries_or_skip()?;
    let pki = LabPki::generate().unwrap();
    let leaf = pki
        .issue(&LeafSpec::server("db.test", &["db.test", "127.0.0.1"]))
        .unwrap();
    let pg = PgServer::start(&PgConfig::tls(pki.fullchain_pem(&leaf), leaf.key_pem())).unwrap();
    let dev = DevServer::start(&bin);
    let ca = dev.dir.path().join("pg-ca.pem");
    std::fs::write(&ca, pki.root().cert_pem()).unwrap();
    let env = Env { pg, dev, ca };
    env.configure();
    Some(env)
}

impl Env {
    fn configure(&self) {
        let policy = self.dev.dir.path().join("one-char.hcl");
        std::fs::write(
            &policy,
            "length = 24\nrule \"charset\" {\n  charset = \"Q\"\n}\n",
        )
        .unwrap();
        self.dev.must(&[
            "write",
            "sys/policies/password/one-char",
            &format!("policy=@{}", policy.display()),
        ]);
        self.dev.must(&["secrets", "enable", "database"]);
        let url = format!(
            "connection_url=postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
            self.pg.port(),
            self.ca.display()
        );
        self.dev.must(&[
            "write",
            "database/config/pg",
            "plugin_name=postgresql-database-plugin",
            &url,
            "allowed_roles=*",
            "username=postgres",
            &format!("password={}", self.pg.superuser_password()),
            "password_authentication=scram-sha-256",
            "password_policy=one-char",
        ]);
        self.role("app", CREATE, "1h", None);
    }

    /// A dynamic role of the `pg` connection.
    fn role(&self, name: &str, create: &str, ttl: &str, revoke: Option<&str>) {
        let mut args = vec![
            "write".to_string(),
            format!("database/roles/{name}"),
            "db_name=pg".into(),
            format!("creation_statements={create}"),
            format!("default_ttl={ttl}"),
            "max_ttl=24h".into(),
        ];
        if let Some(r) = revoke {
            args.push(format!("revocation_statements={r}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.dev.must(&args);
    }

    /// A static role for an existing user, created with a password Vault then replaces.
    fn static_role(&self, name: &str, user: &str, period: &str) {
        self.pg.create_login(user, "initial-password-0").unwrap();
        self.dev.must(&[
            "write",
            &format!("database/static-roles/{name}"),
            "db_name=pg",
            &format!("username={user}"),
            &format!("rotation_period={period}"),
        ]);
    }

    /// The live leases of `database/creds/<role>`.
    fn leases(&self, role: &str) -> usize {
        let out = self.dev.cli(&[
            "list",
            "-format=json",
            &format!("sys/leases/lookup/database/creds/{role}"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str::<Vec<Value>>(&text).map_or(0, |v| v.len())
    }

    /// Login roles whose name starts with `prefix`.
    fn users(&self, prefix: &str) -> String {
        let sql =
            format!("SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname LIKE '{prefix}%'");
        self.pg.superuser_sql(&sql).unwrap()
    }

    /// `postgres: {...}` of a check: PostgreSQL by address, verified as db.test.
    fn target(&self) -> String {
        format!(
            "{{ addr: \"{}\", server_name: db.test, database: postgres, ca_file: \"{}\" }}",
            self.pg.addr(),
            self.ca.display()
        )
    }

    fn suite(&self, checks: &str) -> PathBuf {
        let path = self.dev.dir.path().join("db.yaml");
        std::fs::write(&path, format!("suite: db\nchecks:\n{checks}")).unwrap();
        path
    }

    /// `rotcheck gate` on `checks`, evaluated at `at`, with the root token (or `token`).
    fn gate_as(&self, checks: &str, at: SystemTime, format: &str, token: &str) -> Output {
        self.gate_env(checks, at, format, token, &[])
    }

    /// [`Env::gate_as`] with more environment variables.
    fn gate_env(
        &self,
        checks: &str,
        at: SystemTime,
        format: &str,
        token: &str,
        vars: &[(&str, &str)],
    ) -> Output {
        let at = humantime::format_rfc3339_seconds(at).to_string();
        Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(["gate", "--format", format, "--at", &at, "-c"])
            .arg(self.suite(checks))
            .env("NO_COLOR", "1")
            .env("BAO_ADDR", self.dev.url())
            .env("BAO_CACERT", self.dev.ca())
            .env("BAO_TLS_SERVER_NAME", "localhost")
            .env("BAO_TOKEN", token)
            .envs(vars.iter().copied())
            .output()
            .expect("run rotcheck")
    }

    fn gate(&self, checks: &str, at: SystemTime, format: &str) -> Output {
        self.gate_as(checks, at, format, DEV_ROOT_TOKEN)
    }

    fn json(&self, checks: &str) -> Value {
        self.json_at(checks, SystemTime::now(), DEV_ROOT_TOKEN)
    }

    fn json_at(&self, checks: &str, at: SystemTime, token: &str) -> Value {
        self.json_env(checks, at, token, &[])
    }

    fn json_env(&self, checks: &str, at: SystemTime, token: &str, vars: &[(&str, &str)]) -> Value {
        let out = self.gate_env(checks, at, "json", token, vars);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_clean("json", &text);
        assert_clean("stderr", &String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "gate output is not JSON ({e}): {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A `vault_db_creds` check of `role` with `expect`.
    fn creds(&self, role: &str, expect: &str) -> String {
        format!(
            "  - name: creds\n    vault_db_creds:\n      role: {role}\n      postgres: {}\n    expect: {expect}\n",
            self.target()
        )
    }

    /// A `postgres` check (connection settings as [`Env::target`]) with `more` settings.
    fn postgres(&self, more: &str, expect: &str) -> String {
        format!(
            "  - name: pg\n    postgres: {{ addr: \"{}\", server_name: db.test, ca_file: \"{}\", {more} }}\n    expect: {expect}\n",
            self.pg.addr(),
            self.ca.display()
        )
    }

    /// Holds an idle session open as `user` (a `psql` waiting on its input) until dropped.
    fn hold_session(&self, user: &str, password: &str) -> Held {
        let conn = format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres sslmode=require",
            self.pg.port()
        );
        let held = Held(
            Command::new("psql")
                .args(["-X", "-q", &conn])
                .env("PGPASSWORD", password)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("run psql"),
        );
        let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'");
        for _ in 0..100 {
            if self.pg.superuser_sql(&sql).unwrap() == "1" {
                return held;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the session as {user} did not show up in pg_stat_activity");
    }

    /// A `vault_db_static_role` check of `role` logging in.
    fn static_check(&self, role: &str, expect: &str) -> String {
        format!(
            "  - name: static\n    vault_db_static_role:\n      role: {role}\n      grace: 5m\n      postgres: {}\n    expect: {expect}\n",
            self.target()
        )
    }
}

/// A `psql` session held open; closed on drop (its input ends, so it quits and logs out).
struct Held(std::process::Child);

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

const CREATE: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

/// No password, lease id or token in `text`.
fn assert_clean(what: &str, text: &str) {
    for secret in [PASSWORD, DEV_ROOT_TOKEN, "creds/app/", "creds/keep/"] {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

fn message(report: &Value, name: &str) -> String {
    assertion(report, name)["message"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The value of the sample `family{...check="CHECK"...}` in a prom report.
fn sample(prom: &str, family: &str, check: &str) -> Option<f64> {
    let label = format!("check=\"{check}\"");
    prom.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_dynamic_credential_is_issued_used_revoked_and_then_refused() {
    let Some(env) = start() else { return };
    assert_eq!(env.leases("app"), 0);
    let checks = env.creds("app", "{ lease_ttl_max: 1h, login: ok, revoked: true }");
    let r = env.json(&checks);
    assert_eq!(r["checks"][0]["status"], "pass", "{r:#}");
    for a in ["creds", "lease_ttl_max", "login", "revoke", "revoked"] {
        passes(&r, a);
    }
    assert!(message(&r, "creds").contains("issued user v-"), "{r:#}");
    // The check's own lease is gone and so is the user Vault created for it.
    assert_eq!(env.leases("app"), 0, "the probe's lease was revoked");
    assert_eq!(env.users("v-"), "0", "the revoked user was dropped");

    // A lease longer than allowed fails; the lease is revoked all the same.
    let r = env.json(&env.creds("app", "{ lease_ttl_max: 30m }"));
    fails(&r, "lease_ttl_max", "lease_too_long");
    assert!(
        message(&r, "lease_ttl_max").contains("default_ttl=30m"),
        "{r:#}"
    );
    passes(&r, "revoked");
    assert_eq!(env.leases("app"), 0);
}

#[test]
fn refused_logins_surviving_users_and_failed_revocations() {
    let Some(env) = start() else { return };
    // A user that may not log in: `login` fails with PostgreSQL's SQLSTATE, or passes when
    // the check expects the refusal; the lease is revoked either way.
    env.role(
        "nologin",
        "CREATE ROLE \"{{name}}\" WITH NOLOGIN PASSWORD '{{password}}';",
        "1h",
        None,
    );
    let r = env.json(&env.creds("nologin", "{}"));
    fails(&r, "login", "pg_login_failed");
    assert!(message(&r, "login").contains("28000"), "{r:#}");
    passes(&r, "revoke");
    let r = env.json(&env.creds("nologin", "{ login: failed }"));
    passes(&r, "login");
    assert_eq!(env.leases("nologin"), 0);

    // Nothing listens at the target: the login fails `refused`, the lease is revoked anyway
    // and the refusal after it proves nothing.
    let closed = rotcheck_lab::ports::free_port([127, 0, 0, 1].into());
    let nowhere = env
        .creds("app", "{}")
        .replace(&env.pg.addr().to_string(), &format!("127.0.0.1:{closed}"));
    let r = env.json(&nowhere);
    fails(&r, "login", "refused");
    passes(&r, "revoke");
    fails(&r, "revoked", "revocation_unproven");
    assert_eq!(env.leases("app"), 0);

    // The issued password is not the user's: 28P01.
    env.role(
        "wrongpw",
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD 'not-the-issued-one';",
        "1h",
        None,
    );
    let r = env.json(&env.creds("wrongpw", "{}"));
    fails(&r, "login", "pg_login_failed");
    assert!(message(&r, "login").contains("28P01"), "{r:#}");

    // Revocation statements that leave the user alive: it still logs in after the revoke.
    env.role("keep", CREATE, "1h", Some("SELECT 1;"));
    let r = env.json(&env.creds("keep", "{ revoked: true }"));
    passes(&r, "login");
    passes(&r, "revoke");
    fails(&r, "revoked", "still_valid");
    let r = env.json(&env.creds("keep", "{ revoked: false }"));
    assert_eq!(r["checks"][0]["status"], "pass", "{r:#}");

    // A token that may read credentials but not revoke leases.
    let policy = "path \"database/creds/app\" { capabilities = [\"read\"] }\n";
    let file = env.dev.dir.path().join("read-only.hcl");
    std::fs::write(&file, policy).unwrap();
    env.dev
        .must(&["policy", "write", "creds-read", &file.display().to_string()]);
    let token = env.dev.must(&[
        "token",
        "create",
        "-field=token",
        "-policy=creds-read",
        "-ttl=10m",
    ]);
    let r = env.json_at(&env.creds("app", "{}"), SystemTime::now(), token.trim());
    fails(&r, "revoke", "revoke_failed");
    let msg = message(&r, "revoke");
    assert!(
        msg.contains("bao lease revoke -prefix database/creds/app"),
        "{msg}"
    );
    assert!(!msg.contains(token.trim()), "{msg}");
    assert_eq!(
        env.leases("app"),
        1,
        "the report was right: the lease is still there"
    );
    env.dev
        .must(&["lease", "revoke", "-prefix", "database/creds/app"]);
    assert_eq!(env.leases("app"), 0);
}

#[test]
fn a_static_role_is_judged_by_its_last_rotation_and_its_password_logs_in() {
    let Some(env) = start() else { return };
    env.static_role("app-static", "app_static", "1h");
    let checks = env.static_check("app-static", "{ login: ok }");
    let now = SystemTime::now();
    let r = env.json_at(&checks, now, DEV_ROOT_TOKEN);
    assert_eq!(r["checks"][0]["status"], "pass", "{r:#}");
    for a in ["static_role", "rotation", "login"] {
        passes(&r, a);
    }
    let last = env.dev.read_json("database/static-creds/app-static")["last_vault_rotation"]
        .as_str()
        .unwrap()
        .to_string();
    let last = rotcheck::cli::at::instant(&last)
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let prom = String::from_utf8(env.gate(&checks, now, "prom").stdout).unwrap();
    assert_clean("prom", &prom);
    let family = "rotcheck_secret_last_rotation_timestamp_seconds";
    assert_eq!(sample(&prom, family, "static"), Some(last as f64), "{prom}");
    assert_eq!(
        sample(&prom, "rotcheck_secret_max_age_seconds", "static"),
        Some(3900.0),
        "{prom}"
    );

    // Judged past the period plus grace: Vault did not rotate it.
    let late = now + Duration::from_secs(3600 + 301);
    let r = env.json_at(&checks, late, DEV_ROOT_TOKEN);
    fails(&r, "rotation", "static_not_rotated");
    assert!(
        message(&r, "rotation").contains("bao write -f database/rotate-role/app-static"),
        "{r:#}"
    );

    // The password changed behind Vault's back: the current one no longer logs in.
    env.pg
        .superuser_sql("ALTER ROLE app_static PASSWORD 'changed-by-hand-1'")
        .unwrap();
    let r = env.json(&checks);
    fails(&r, "login", "pg_login_failed");
    assert!(message(&r, "login").contains("28P01"), "{r:#}");

    // Rotated by Vault: it logs in again and the series moves.
    std::thread::sleep(Duration::from_millis(1100));
    env.dev
        .must(&["write", "-f", "database/rotate-role/app-static"]);
    let r = env.json(&checks);
    passes(&r, "login");
    let prom = String::from_utf8(env.gate(&checks, SystemTime::now(), "prom").stdout).unwrap();
    assert!(
        sample(&prom, family, "static").unwrap() > last as f64,
        "{prom}"
    );

    // Missing role and mount.
    let r = env.json(&env.static_check("nope", "{}"));
    fails(&r, "static_role", "role_missing");
    let r = env.json(&checks.replace("role: app-static", "mount: db2\n      role: app-static"));
    fails(&r, "static_role", "mount_missing");
}

#[test]
fn no_output_format_shows_a_password_lease_or_token() {
    let Some(env) = start() else { return };
    env.static_role("app-static", "app_static", "1h");
    env.role("keep", CREATE, "1h", Some("SELECT 1;"));
    let checks = format!(
        "{}{}{}",
        env.creds("app", "{ lease_ttl_max: 1m }"),
        env.creds("keep", "{}").replace("name: creds", "name: keep"),
        env.static_check("app-static", "{}")
    );
    for format in ["human", "json", "junit", "tap", "prom"] {
        let out = env.gate(&checks, SystemTime::now(), format);
        assert_eq!(out.status.code(), Some(1), "{format}: two checks fail");
        for text in [&out.stdout, &out.stderr] {
            assert_clean(format, &String::from_utf8_lossy(text));
        }
    }
    env.dev
        .must(&["lease", "revoke", "-prefix", "database/creds/keep"]);
}

#[test]
fn the_drain_gate_waits_for_the_old_static_user_and_an_expired_lease_is_refused() {
    let Some(env) = start() else { return };
    env.static_role("app-v1", "app_v1", "1h");
    env.static_role("app-v2", "app_v2", "1h");
    let old = env.dev.read_json("database/static-creds/app-v1")["password"]
        .as_str()
        .unwrap()
        .to_string();
    let drain = env.postgres(
        "user: app_v2, password_vault: { path: database/static-creds/app-v2 }",
        "{ login: ok, connections_by_user: { app_v1: 0 } }",
    );
    // The application still holds a connection as the old user: not drained.
    let held = env.hold_session("app_v1", &old);
    let r = env.json(&drain);
    passes(&r, "login");
    fails(&r, "connections_by_user", "pg_connections_not_drained");
    assert!(
        message(&r, "connections_by_user").contains("app_v1 has 1"),
        "{r:#}"
    );
    // Closed: the gate passes.
    drop(held);
    let mut r = env.json(&drain);
    for _ in 0..50 {
        if verdict(&r, "connections_by_user").0 == "pass" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        r = env.json(&drain);
    }
    passes(&r, "connections_by_user");

    // A lease that expired: Vault revoked it and dropped the user, whose password is refused.
    env.role("short", CREATE, "2s", None);
    let issued = env
        .dev
        .must(&["read", "-format=json", "database/creds/short"]);
    let issued: Value = serde_json::from_str(&issued).unwrap();
    let user = issued["data"]["username"].as_str().unwrap().to_string();
    let expired = env.postgres(
        &format!("user: \"{user}\", password_env: SHORT_PW"),
        "{ login: ok }",
    );
    let vars = [("SHORT_PW", PASSWORD)];
    let r = env.json_env(&expired, SystemTime::now(), DEV_ROOT_TOKEN, &vars);
    passes(&r, "login");
    for _ in 0..100 {
        if env.leases("short") == 0 && env.users(&user) == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(env.leases("short"), 0, "the lease expired");
    let r = env.json_env(&expired, SystemTime::now(), DEV_ROOT_TOKEN, &vars);
    fails(&r, "login", "pg_login_failed");
    let refused = expired.replace("{ login: ok }", "{ login: failed }");
    let r = env.json_env(&refused, SystemTime::now(), DEV_ROOT_TOKEN, &vars);
    passes(&r, "login");
}

#[test]
fn the_example_secrets_suite_loads() {
    let out = Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["lint", "-c", "checks/secrets.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["list", "-c", "checks/secrets.yaml"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for kind in [
        "vault_db_creds",
        "vault_db_static_role",
        "postgres",
        "vault_transit_key",
    ] {
        assert!(list.contains(kind), "{list}");
    }
}

#[test]
fn the_postgres_kind_logs_in_with_a_leased_credential_and_revokes_it() {
    let Some(env) = start() else { return };
    env.static_role("app-v1", "app_v1", "1h");
    let old = env.dev.read_json("database/static-creds/app-v1")["password"]
        .as_str()
        .unwrap()
        .to_string();
    let checks = env.postgres(
        "vault_creds: { mount: database, role: app }",
        "{ chain: valid, login: ok, connections_by_user: { app_v1: 0 } }",
    );
    let held = env.hold_session("app_v1", &old);
    let r = env.json(&checks);
    for a in ["handshake", "chain", "login", "probe", "revoke"] {
        passes(&r, a);
    }
    assert!(message(&r, "login").contains("logged in as v-"), "{r:#}");
    fails(&r, "connections_by_user", "pg_connections_not_drained");
    assert_eq!(env.leases("app"), 0, "the leased credential was revoked");
    assert_eq!(env.users("v-"), "0");
    drop(held);

    // No such role: the login cannot be tried.
    let r = env.json(&checks.replace("role: app }", "role: nope }"));
    fails(&r, "login", "role_missing");

    // A user or a second source beside vault_creds is refused at load time.
    let both = env.postgres("user: app, vault_creds: { role: app }", "{}");
    let out = env.gate(&both, SystemTime::now(), "json");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("vault_creds issues the user"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_secrets_demo_shows_every_gate() {
    if bao::server_binary().is_none() || lab_pg::binaries_or_skip().is_none() {
        return;
    }
    let out = Command::new("scripts/secrets-demo.sh")
        .env("ROTCHECK_BIN", env!("CARGO_BIN_EXE_rotcheck"))
        .output()
        .expect("run scripts/secrets-demo.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    for line in [
        "revoked        pass  after the revocation the login as v-",
        "leases of database/creds/app left: 0",
        "fail connections_by_user (pg_connections_not_drained)",
        "PASS   db-app-v1-drained",
        "the password before the rotation is refused",
        "PASS   payments-key",
        "Done: every gate behaved as expected",
    ] {
        assert!(text.contains(line), "no {line:?} in {text}{err}");
    }
    assert!(
        !text.contains("demo-root-"),
        "the root token is never shown: {text}"
    );
}

#[test]
fn serve_exports_the_rotation_series_and_shows_no_secret() {
    let Some(env) = start() else { return };
    env.static_role("app-static", "app_static", "1h");
    let checks = format!(
        "{}{}",
        env.creds("app", "{ lease_ttl_max: 1m }"),
        env.static_check("app-static", "{ login: ok }")
    );
    let suite = format!(
        "suite: db\nvault: {{ addr: \"{}\", server_name: localhost, ca_file: \"{}\", token: {DEV_ROOT_TOKEN} }}\nchecks:\n{checks}",
        env.dev.url(),
        env.dev.ca().display()
    );
    let path = env.dev.dir.path().join("serve.yaml");
    std::fs::write(&path, suite).unwrap();
    let serve = exporter_support::serve::Serve::start(&path, &["--interval", "1h"]);
    serve.wait_ready(Duration::from_secs(30));
    let metrics = serve.get("/metrics").body;
    for line in [
        "rotcheck_check_failure_reason{suite=\"db\",check=\"creds\",reason=\"lease_too_long\"} 1",
        "rotcheck_secret_max_age_seconds{suite=\"db\",check=\"static\"} 3900",
        "rotcheck_check_success{suite=\"db\",check=\"static\",stage=\"default\",kind=\"vault_db_static_role\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    assert!(metrics.contains(
        "rotcheck_secret_last_rotation_timestamp_seconds{suite=\"db\",check=\"static\"}"
    ));
    let debug = serve.get("/probe?check=creds&debug=true").body;
    assert!(
        debug.contains("lease_too_long") && debug.contains("was revoked"),
        "{debug}"
    );
    let status = serve.get("/status").body;
    let log = serve.log().join("\n");
    for (what, text) in [
        ("/metrics", &metrics),
        ("/probe", &debug),
        ("/status", &status),
        ("log", &log),
    ] {
        assert_clean(what, text);
    }
    serve.stop();
    assert_eq!(env.leases("app"), 0, "every run's lease was revoked");
}
