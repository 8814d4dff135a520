//! A real PostgreSQL for tests: `initdb` into a private temporary directory (local `trust`,
//! host `scram-sha-256`, a superuser password from a 0600 `--pwfile`), then `postgres` with
//! TLS on (a certificate and key the caller gives, usually from [`crate::pki`]), listening on
//! 127.0.0.1 at a port from [`crate::ports::free_port`] and on a unix socket inside the
//! directory. PostgreSQL refuses to run as root: as root, initdb and the server run as the
//! `postgres` system user (Debian's package creates it) and the directory is handed to it.
//!
//! ```no_run
//! # fn demo(cert: String, key: String) -> Result<(), rotcheck_lab::postgres::PgServerError> {
//! use rotcheck_lab::postgres::{PgConfig, PgServer};
//! let pg = PgServer::start(&PgConfig::tls(cert, key))?;
//! pg.create_login("app_v1", "s3cret")?;
//! assert_eq!(pg.superuser_sql("SELECT 1")?, "1");
//! println!("{}", pg.addr());
//! # Ok(()) }
//! ```

use crate::LabError;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long initdb, the server's start and its stop may each take.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `psql` call may take.
const PSQL_TIMEOUT: Duration = Duration::from_secs(30);
/// The superuser initdb creates.
pub const SUPERUSER: &str = "postgres";
/// Tests that need a PostgreSQL fail rather than skip when this is set (scripts/test.sh).
pub const REQUIRE_ENV: &str = "ROTCHECK_REQUIRE_POSTGRES";

/// How to start a server.
#[derive(Clone)]
pub struct PgConfig {
    /// The server's certificate chain (PEM, leaf first); `None` runs with `ssl = off`.
    pub cert_pem: Option<String>,
    /// The certificate's private key (PEM).
    pub key_pem: Option<String>,
    /// CA certificates (PEM) the server verifies client certificates with (`ssl_ca_file`).
    pub client_ca_pem: Option<String>,
    /// `postgresql.conf` settings added after the lab's own (name, value as written).
    pub settings: Vec<(String, String)>,
    /// TCP logins need a client certificate that `client_ca_pem` verifies.
    pub client_cert_required: bool,
}

impl std::fmt::Debug for PgConfig {
    /// Leaves the key out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("tls", &self.cert_pem.is_some())
            .field("client_ca", &self.client_ca_pem.is_some())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PgConfig {
    /// TLS on with this chain and key.
    pub fn tls(cert_pem: String, key_pem: String) -> PgConfig {
        PgConfig {
            cert_pem: Some(cert_pem),
            key_pem: Some(key_pem),
            client_ca_pem: None,
            settings: Vec::new(),
            client_cert_required: false,
        }
    }

    /// `ssl = off`: the server answers `N` to an SSLRequest.
    pub fn plain() -> PgConfig {
        PgConfig {
            cert_pem: None,
            key_pem: None,
            client_ca_pem: None,
            settings: Vec::new(),
            client_cert_required: false,
        }
    }

    /// Verifies client certificates against `ca_pem` and requires one on every TCP login
    /// (`hostssl … scram-sha-256 clientcert=verify-ca`: a certificate and the password).
    pub fn require_client_cert(mut self, ca_pem: String) -> PgConfig {
        self.client_ca_pem = Some(ca_pem);
        self.client_cert_required = true;
        self
    }

    /// Adds a `postgresql.conf` setting (the value as written in the file, quotes included).
    pub fn setting(mut self, name: &str, value: &str) -> PgConfig {
        self.settings.push((name.into(), value.into()));
        self
    }
}

/// Errors of the lab's PostgreSQL: each says what was run and what it said.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    /// Writing the directory's files failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// No PostgreSQL installation was found.
    #[error("no PostgreSQL server binaries (initdb, postgres) on PATH or under /usr/lib/postgresql/*/bin; install Debian's `postgresql` package (./scripts/test.sh does)")]
    NotInstalled,
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root and there is no `postgres` system user to run PostgreSQL as; install Debian's `postgresql` package, which creates it")]
    NoUser,
    /// A binary could not be run at all.
    #[error("cannot run {}: {source}", bin.display())]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{what} failed ({status}): {output}")]
    Failed {
        /// What was run.
        what: String,
        /// Exit status.
        status: String,
        /// Its standard error (and output).
        output: String,
    },
    /// The server did not come up, or a command did not end, in time.
    #[error("{what} did not finish within {}s; server log: {log}", secs.as_secs())]
    Timeout {
        /// What was waited for.
        what: String,
        /// The limit.
        secs: Duration,
        /// The server log so far.
        log: String,
    },
}

/// The directory holding `initdb`, `postgres` and (usually) `psql`.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    /// That directory.
    pub dir: PathBuf,
}

impl PgBinaries {
    fn tool(&self, name: &str) -> PathBuf {
        let here = self.dir.join(name);
        if here.is_file() {
            return here;
        }
        on_path(name).unwrap_or(here)
    }
}

/// `initdb` and `postgres` side by side: found through PATH (symlinks resolved), else the
/// highest version under `/usr/lib/postgresql/*/bin` (Debian keeps them off PATH).
pub fn find_binaries() -> Option<PgBinaries> {
    let complete = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(initdb) = on_path("initdb") {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent().filter(|d| complete(d)) {
            return Some(PgBinaries { dir: dir.into() });
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| complete(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| PgBinaries { dir })
}

/// The binaries, or `None` with a skip line; panics when [`REQUIRE_ENV`] is set and there are
/// none, so a run that promised a PostgreSQL fails instead of skipping.
pub fn binaries_or_skip() -> Option<PgBinaries> {
    let found = find_binaries();
    if found.is_none() {
        assert!(
            std::env::var_os(REQUIRE_ENV).is_none(),
            "{REQUIRE_ENV} is set but no PostgreSQL is installed; run ./scripts/test.sh, which installs it"
        );
        println!("skipped: no PostgreSQL installed (initdb, postgres)");
    }
    found
}

fn on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Who the server runs as: `None` runs as ourselves.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>, PgServerError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name(SUPERUSER)
        .ok()
        .flatten()
        .ok_or(PgServerError::NoUser)?;
    Ok(Some(RunAs {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }))
}

/// A running PostgreSQL; stopped, and its directory removed, on drop.
pub struct PgServer {
    bin: PgBinaries,
    dir: tempfile::TempDir,
    run_as: Option<RunAs>,
    port: u16,
    password: String,
    child: Option<Child>,
}

impl std::fmt::Debug for PgServer {
    /// Leaves the superuser password out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("addr", &self.addr())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl PgServer {
    /// initdb, configure and start a server; returns once it answers a query.
    pub fn start(cfg: &PgConfig) -> Result<PgServer, PgServerError> {
        let bin = find_binaries().ok_or(PgServerError::NotInstalled)?;
        let run_as = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix("rotcheck-pg-")
            .tempdir()
            .map_err(LabError::io(std::env::temp_dir()))?;
        let password = hex(&crate::encode::random_bytes(18));
        let mut pg = PgServer {
            bin,
            dir,
            run_as,
            port: crate::ports::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            password,
            child: None,
        };
        pg.hand_over(pg.dir.path())?;
        pg.initdb()?;
        pg.write_config(cfg)?;
        pg.launch()?;
        pg.wait_ready()?;
        Ok(pg)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (for tests that log in over TCP as `postgres`).
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The unix socket directory (psql `-h`).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The server log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs SQL as the superuser over the unix socket (`psql -X -A -t -v ON_ERROR_STOP=1`, the
    /// SQL on standard input so no secret is on a command line); the output, trimmed.
    pub fn superuser_sql(&self, sql: &str) -> Result<String, PgServerError> {
        let psql = self.bin.tool("psql");
        let mut cmd = Command::new(&psql);
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .args(["-f", "-"])
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE");
        let out = run_bounded(cmd, &psql, Some(sql), PSQL_TIMEOUT, "psql")?;
        Ok(out.trim().to_string())
    }

    /// `CREATE ROLE user LOGIN PASSWORD '…'` (stored as SCRAM-SHA-256).
    pub fn create_login(&self, user: &str, password: &str) -> Result<(), PgServerError> {
        let sql = format!(
            "CREATE ROLE {} LOGIN PASSWORD {};",
            quote_ident(user),
            quote_literal(password)
        );
        self.superuser_sql(&sql).map(drop)
    }

    /// Replaces the listener's certificate chain and key and reloads the configuration
    /// (`pg_reload_conf()`): the rotation step a deployment performs. TLS must be on.
    pub fn set_tls(&self, cert_pem: &str, key_pem: &str) -> Result<(), PgServerError> {
        for (name, body) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let path = self.dir.path().join(name);
            let _ = std::fs::remove_file(&path);
            self.private_file(name, body)?;
        }
        self.reload()
    }

    /// Reloads the configuration and waits until new connections use it.
    pub fn reload(&self) -> Result<(), PgServerError> {
        let loaded = "SELECT pg_conf_load_time();";
        let before = self.superuser_sql(loaded)?;
        self.superuser_sql("SELECT pg_reload_conf();")?;
        let deadline = Instant::now() + START_TIMEOUT;
        while self.superuser_sql(loaded)? == before {
            if Instant::now() > deadline {
                return Err(PgServerError::Timeout {
                    what: "the configuration reload".into(),
                    secs: START_TIMEOUT,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server (fast shutdown, then SIGKILL after a grace period). The directory
    /// stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// The log so far (for error messages).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(f) = std::fs::File::open(self.log_path()) {
            let _ = f.take(64 * 1024).read_to_string(&mut s);
        }
        s
    }

    /// Gives `path` to the server's user when running as root.
    fn hand_over(&self, path: &Path) -> Result<(), PgServerError> {
        if let Some(u) = self.run_as {
            let uid = nix::unistd::Uid::from_raw(u.uid);
            let gid = nix::unistd::Gid::from_raw(u.gid);
            nix::unistd::chown(path, Some(uid), Some(gid))
                .map_err(|e| LabError::io(path)(std::io::Error::from(e)))?;
        }
        Ok(())
    }

    /// Writes a private file owned by the server's user.
    fn private_file(&self, name: &str, body: &str) -> Result<PathBuf, PgServerError> {
        let path = self.dir.path().join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(LabError::io(&path))?;
        f.write_all(body.as_bytes()).map_err(LabError::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(LabError::io(&path))?;
        self.hand_over(&path)?;
        Ok(path)
    }

    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir.path());
        if let Some(u) = self.run_as {
            // std drops root's supplementary groups before switching (setgroups(0)).
            cmd.uid(u.uid).gid(u.gid);
            cmd.env("HOME", self.dir.path()).env("USER", SUPERUSER);
        }
        cmd
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn initdb(&self) -> Result<(), PgServerError> {
        let pwfile = self.private_file("pwfile", &format!("{}\n", self.password))?;
        let initdb = self.bin.tool("initdb");
        let mut cmd = self.command(&initdb);
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run_bounded(cmd, &initdb, None, START_TIMEOUT, "initdb")?;
        let _ = std::fs::remove_file(&pwfile);
        Ok(())
    }

    fn write_config(&self, cfg: &PgConfig) -> Result<(), PgServerError> {
        let sock = self.socket_dir();
        std::fs::create_dir(&sock).map_err(LabError::io(&sock))?;
        self.hand_over(&sock)?;
        let mut conf = vec![
            ("listen_addresses".to_string(), "'127.0.0.1'".to_string()),
            ("port".into(), self.port.to_string()),
            ("unix_socket_directories".into(), conf_string(&sock)),
            ("fsync".into(), "off".into()),
            ("max_connections".into(), "40".into()),
            ("shared_buffers".into(), "'16MB'".into()),
            ("log_connections".into(), "on".into()),
        ];
        conf.extend(self.tls_settings(cfg)?);
        if cfg.client_cert_required {
            self.write_hba("hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca")?;
        }
        conf.extend(cfg.settings.iter().cloned());
        let path = self.data_dir().join("postgresql.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(LabError::io(&path))?;
        let text: String = conf.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        f.write_all(format!("\n# rotcheck lab\n{text}").as_bytes())
            .map_err(LabError::io(&path))?;
        Ok(())
    }

    /// Replaces pg_hba.conf: local trust (for [`PgServer::superuser_sql`]) and `host`.
    fn write_hba(&self, host: &str) -> Result<(), PgServerError> {
        let path = self.data_dir().join("pg_hba.conf");
        let text = format!("local all all trust\n{host}\n");
        std::fs::write(&path, text).map_err(LabError::io(&path))?;
        Ok(())
    }

    fn tls_settings(&self, cfg: &PgConfig) -> Result<Vec<(String, String)>, PgServerError> {
        let (Some(cert), Some(key)) = (&cfg.cert_pem, &cfg.key_pem) else {
            return Ok(vec![("ssl".into(), "off".into())]);
        };
        let cert = self.private_file("server.crt", cert)?;
        let key = self.private_file("server.key", key)?;
        let mut out = vec![
            ("ssl".to_string(), "on".to_string()),
            ("ssl_cert_file".into(), conf_string(&cert)),
            ("ssl_key_file".into(), conf_string(&key)),
        ];
        if let Some(ca) = &cfg.client_ca_pem {
            let ca = self.private_file("client-ca.crt", ca)?;
            out.push(("ssl_ca_file".into(), conf_string(&ca)));
        }
        Ok(out)
    }

    fn launch(&mut self) -> Result<(), PgServerError> {
        let log_path = self.log_path();
        let log = std::fs::File::create(&log_path).map_err(LabError::io(&log_path))?;
        let log2 = log.try_clone().map_err(LabError::io(&log_path))?;
        let postgres = self.bin.tool("postgres");
        let mut cmd = self.command(&postgres);
        cmd.arg("-D")
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd.spawn().map_err(|source| PgServerError::Spawn {
            bin: postgres.clone(),
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<(), PgServerError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(PgServerError::Failed {
                    what: "postgres".into(),
                    status: status.to_string(),
                    output: self.log(),
                });
            }
            let socket = self.socket_dir().join(format!(".s.PGSQL.{}", self.port));
            if socket.exists() && self.superuser_sql("SELECT 1").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PgServerError::Timeout {
                    what: "PostgreSQL accepting connections".into(),
                    secs: START_TIMEOUT,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to the end within `limit`, with `stdin` written to it; its standard output.
fn run_bounded(
    mut cmd: Command,
    bin: &Path,
    stdin: Option<&str>,
    limit: Duration,
    what: &str,
) -> Result<String, PgServerError> {
    let out_file = tempfile::tempfile().map_err(LabError::io(std::env::temp_dir()))?;
    let err_file = tempfile::tempfile().map_err(LabError::io(std::env::temp_dir()))?;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(out_file.try_clone().map_err(LabError::io(bin))?)
    .stderr(err_file.try_clone().map_err(LabError::io(bin))?);
    let mut child = cmd.spawn().map_err(|source| PgServerError::Spawn {
        bin: bin.into(),
        source,
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(text.as_bytes());
    }
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PgServerError::Timeout {
                what: what.into(),
                secs: limit,
                log: read_all(err_file),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = read_all(out_file);
    if !status.success() {
        return Err(PgServerError::Failed {
            what: what.into(),
            status: status.to_string(),
            output: format!("{} {}", read_all(err_file).trim(), out.trim()),
        });
    }
    Ok(out)
}

fn read_all(mut f: std::fs::File) -> String {
    use std::io::Seek;
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let mut s = String::new();
    let _ = f.take(1024 * 1024).read_to_string(&mut s);
    s
}

/// SIGINT (PostgreSQL's fast shutdown), a grace period, then SIGKILL.
fn terminate(child: &mut Child) {
    let Ok(raw) = i32::try_from(child.id()) else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(raw);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A `postgresql.conf` string value.
fn conf_string(p: &Path) -> String {
    quote_literal(&p.display().to_string())
}

/// A SQL identifier, double-quoted.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A SQL string literal, single-quoted (standard_conforming_strings is on by default).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{LabPki, LeafSpec};

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn starts_a_real_server_with_tls_and_a_login() {
        if binaries_or_skip().is_none() {
            return;
        }
        let pki = LabPki::generate().unwrap();
        let leaf = pki
            .issue(&LeafSpec::server("db.test", &["db.test", "127.0.0.1"]))
            .unwrap();
        let cfg = PgConfig::tls(pki.fullchain_pem(&leaf), leaf.key_pem());
        let mut pg = PgServer::start(&cfg).unwrap();
        assert_eq!(pg.superuser_sql("SHOW ssl").unwrap(), "on");
        pg.create_login("app_v1", "pw'1").unwrap();
        let n = pg
            .superuser_sql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_v1'")
            .unwrap();
        assert_eq!(n, "1");
        assert!(std::net::TcpStream::connect(pg.addr()).is_ok());
        let err = pg.superuser_sql("SELECT nonsense_column").unwrap_err();
        assert!(err.to_string().contains("nonsense_column"), "{err}");
        assert!(!format!("{pg:?}").contains(pg.superuser_password()));
        let dir = pg.dir.path().to_path_buf();
        pg.stop();
        assert!(std::net::TcpStream::connect(pg.addr()).is_err());
        drop(pg);
        assert!(!dir.exists());
    }
}
