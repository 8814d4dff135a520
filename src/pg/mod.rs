//! PostgreSQL over TLS: the SSLRequest upgrade, then the handshake through the `tls` kind's
//! client ([`crate::kinds::tls::client::upgrade`]: the same recording verifier, so every
//! `tls` expectation applies to a database listener), then the login (SCRAM-SHA-256, md5 or
//! password, as the server asks) with `tokio-postgres` on that established stream, and
//! read-only queries. Used by the `postgres` kind and the Vault database kinds.
//!
//! `tokio-postgres` gets the stream after the handshake (`Config::connect_raw` with `NoTls`
//! and `sslmode=disable`): the handshake is then exactly the one the `tls` kind makes and
//! records, failures keep their classes, and no second TLS stack is involved. The price:
//! SCRAM runs without channel binding (`SCRAM-SHA-256`, not `-PLUS`), which PostgreSQL
//! accepts unless a role requires binding.
//!
//! Every session is read-only (`default_transaction_read_only = on` right after the login).
//! Passwords are [`Password`]s: never printed, and redacted from any text while held.

pub mod password;

pub use password::{Credential, Password};

use crate::kinds::classify::{self, Failure, Peer, Phase};
use crate::kinds::tls::client::{self, Failed, Open, Target, Watch};
use crate::model::FailureClass;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Sent as `application_name`, so administrators see who connects.
pub const APPLICATION_NAME: &str = "rotcheck";

/// The probe query: who we are, the server version, and that the session is read-only.
const PROBE_SQL: &str = "SELECT current_user, current_setting('server_version'), \
     current_setting('transaction_read_only')";

/// Client connections per role, leaving out our own. Without `pg_read_all_stats` the
/// checking role sees other roles' sessions with `backend_type` hidden: those count when they
/// are connected to a database (background workers are not, parallel and logical
/// replication workers are).
const CONNECTIONS_SQL: &str = "SELECT usename, count(*) FROM pg_stat_activity \
     WHERE usename IS NOT NULL AND pid <> pg_backend_pid() \
     AND (backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL)) \
     GROUP BY usename";

/// Why a connection, login or query failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    /// Resolving or connecting failed.
    #[error("{}", .0.message)]
    Connect(Failure),
    /// The server answered `N` to the SSLRequest: TLS is off on that listener.
    #[error("{addr} answered the SSLRequest with N: TLS is off on this PostgreSQL listener; expected it on; set ssl = on (with ssl_cert_file and ssl_key_file) in postgresql.conf and reload")]
    RefusedTls { addr: String },
    /// Something other than PostgreSQL answered.
    #[error("{addr} answered the SSLRequest with {found}; expected S (PostgreSQL with TLS on); is this the database port?")]
    NotPostgres { addr: String, found: String },
    /// The TLS handshake failed (with whatever chain the server presented).
    #[error("{}", .0.failure.message)]
    Tls(Box<Failed>),
    /// PostgreSQL answered with an error (a failed login, a missing database, a query).
    #[error("{addr}: PostgreSQL said {message:?} (SQLSTATE {sqlstate})")]
    Server {
        addr: String,
        /// The five-character SQLSTATE, e.g. `28P01`.
        sqlstate: String,
        message: String,
    },
    /// The connection broke after the handshake, or the server spoke something unexpected.
    #[error("{}", .0.message)]
    Broken(Failure),
    /// The deadline passed.
    #[error("{addr} did not {what} within {}; is the server hung or overloaded?", crate::human::duration(*.budget))]
    Timeout {
        addr: String,
        what: &'static str,
        budget: Duration,
    },
}

impl PgError {
    /// PostgreSQL's SQLSTATE, when the server answered with an error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Server { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// The failure class of a connection-level failure (`None` for a server error).
    pub fn class(&self) -> Option<FailureClass> {
        match self {
            PgError::Connect(f) | PgError::Broken(f) => Some(f.class),
            PgError::Tls(f) => Some(f.failure.class),
            PgError::NotPostgres { .. } => Some(FailureClass::Protocol),
            PgError::Timeout { .. } => Some(FailureClass::Timeout),
            PgError::RefusedTls { .. } | PgError::Server { .. } => None,
        }
    }

    /// The reason token: the failure class, `pg_refused_tls`, or `server` for a server error
    /// (callers name that one after what they asked).
    pub fn reason(&self) -> &'static str {
        match (self, self.class()) {
            (PgError::RefusedTls { .. }, _) => "pg_refused_tls",
            (_, Some(c)) => c.as_str(),
            (_, None) => "server",
        }
    }
}

/// A listener after the TLS handshake, before the login.
pub struct Connected {
    open: Open,
    addr: String,
}

/// Resolves, connects, sends the SSLRequest and handshakes, all before `deadline`.
pub async fn connect(
    target: &Target,
    template: &Arc<rustls::ClientConfig>,
    deadline: Instant,
    budget: Duration,
) -> Result<Connected, PgError> {
    let peer = Peer {
        addr: target.addr(),
        sni: target.sni(),
        ..Default::default()
    };
    let mut tcp = client::connect(target, &peer, deadline, budget)
        .await
        .map_err(PgError::Connect)?;
    ssl_request(&mut tcp, &peer, deadline, budget).await?;
    let open = client::upgrade(target, template, tcp, peer, deadline, budget)
        .await
        .map_err(|f| PgError::Tls(Box::new(f)))?;
    let addr = target.addr();
    Ok(Connected { open, addr })
}

/// Sends the SSLRequest and reads the one-byte answer (nothing more: bytes a server sends
/// before the handshake are never taken as part of it).
async fn ssl_request(
    tcp: &mut TcpStream,
    peer: &Peer,
    deadline: Instant,
    budget: Duration,
) -> Result<(), PgError> {
    let exchange = async {
        tcp.write_all(&SSL_REQUEST).await?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await.map(|_| answer[0])
    };
    let addr = peer.addr.clone();
    match timeout_at(deadline, exchange).await {
        Err(_) => Err(PgError::Timeout {
            addr,
            what: "answer the SSLRequest",
            budget,
        }),
        Ok(Err(e)) => Err(PgError::Broken(Failure {
            class: classify::class_of_io(&e),
            alert: None,
            message: format!("{addr} accepted the connection but did not answer the SSLRequest ({e}); expected PostgreSQL to answer S; is this the database port, and is the server accepting connections?"),
        })),
        Ok(Ok(b'S')) => Ok(()),
        Ok(Ok(b'N')) => Err(PgError::RefusedTls { addr }),
        Ok(Ok(b'E')) => Err(PgError::NotPostgres {
            addr,
            found: "an error message (a server too old for TLS, or one refusing connections)".into(),
        }),
        Ok(Ok(b)) => Err(PgError::NotPostgres {
            addr,
            found: format!("the byte 0x{b:02x} ({})", printable(b)),
        }),
    }
}

fn printable(b: u8) -> String {
    match b.is_ascii_graphic() {
        true => format!("{:?}", b as char),
        false => "not text".into(),
    }
}

impl Connected {
    /// What the handshake negotiated and the chain the server presented.
    pub fn tls(&self) -> &client::Session {
        &self.open.session
    }

    /// Logs in as `cred` to `database` on the established TLS stream, then makes the session
    /// read-only; before `deadline`.
    pub async fn login(
        self,
        database: &str,
        cred: &Credential,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Session, PgError> {
        let Connected { open, addr } = self;
        let mut cfg = tokio_postgres::Config::new();
        cfg.user(&cred.user)
            .password(cred.password.expose())
            .dbname(database)
            .application_name(APPLICATION_NAME)
            .ssl_mode(SslMode::Disable);
        let watch = open.watch;
        let tls = open.session;
        let (client, conn) = match timeout_at(deadline, cfg.connect_raw(open.stream, NoTls)).await {
            Err(_) => return Err(timeout(&addr, "finish the login", budget)),
            Ok(Err(e)) => return Err(from_pg(&e, &addr, &watch)),
            Ok(Ok(pair)) => pair,
        };
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        let session = Session {
            client,
            task,
            tls,
            addr,
            watch,
            budget,
        };
        session
            .query("SET default_transaction_read_only = on", deadline)
            .await?;
        Ok(session)
    }
}

/// Connects and logs in: [`connect`], then [`Connected::login`].
pub async fn login(
    target: &Target,
    template: &Arc<rustls::ClientConfig>,
    database: &str,
    cred: &Credential,
    deadline: Instant,
    budget: Duration,
) -> Result<Session, PgError> {
    let connected = connect(target, template, deadline, budget).await?;
    connected.login(database, cred, deadline, budget).await
}

fn timeout(addr: &str, what: &'static str, budget: Duration) -> PgError {
    PgError::Timeout {
        addr: addr.into(),
        what,
        budget,
    }
}

/// A server error keeps its SQLSTATE; a broken stream is classified like any connection
/// failure (a TLS alert after the handshake, such as a late client-certificate rejection,
/// keeps its alert name).
fn from_pg(e: &tokio_postgres::Error, addr: &str, watch: &Watch) -> PgError {
    if let Some(db) = e.as_db_error() {
        return PgError::Server {
            addr: addr.into(),
            sqlstate: db.code().code().into(),
            message: db.message().into(),
        };
    }
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    if let Some(io) = io {
        return PgError::Broken(watch.failure(Phase::AfterHandshake, io));
    }
    let message = match e.is_closed() {
        true => format!(
            "{addr} closed the connection during the PostgreSQL exchange ({e}); see the server log"
        ),
        false => {
            format!("{addr} broke the PostgreSQL protocol ({e}); expected a PostgreSQL server")
        }
    };
    let class = match e.is_closed() {
        true => FailureClass::Eof,
        false => FailureClass::Protocol,
    };
    PgError::Broken(Failure {
        class,
        alert: None,
        message,
    })
}

/// What the probe query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `current_user`.
    pub user: String,
    /// `server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`.
    pub server_version: String,
    /// The session is read-only (always, see the module doc).
    pub read_only: bool,
}

/// A logged-in, read-only session. Dropping it closes the connection.
pub struct Session {
    client: Client,
    task: JoinHandle<()>,
    /// What the handshake negotiated and the chain the server presented.
    pub tls: client::Session,
    addr: String,
    watch: Watch,
    budget: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Runs the fixed probe query.
    pub async fn probe(&self, deadline: Instant) -> Result<Probe, PgError> {
        let rows = self.query(PROBE_SQL, deadline).await?;
        let row = rows.into_iter().next().unwrap_or_default();
        let col = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        Ok(Probe {
            user: col(0),
            server_version: col(1),
            read_only: col(2) == "on",
        })
    }

    /// Client connections per role from `pg_stat_activity`, without this session's own
    /// (see [`CONNECTIONS_SQL`] for what a role without `pg_read_all_stats` counts). Roles
    /// without connections are absent.
    pub async fn connections_by_user(
        &self,
        deadline: Instant,
    ) -> Result<BTreeMap<String, u64>, PgError> {
        let rows = self.query(CONNECTIONS_SQL, deadline).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (Some(Some(user)), Some(Some(n))) = (row.first(), row.get(1)) else {
                continue;
            };
            out.insert(user.clone(), n.parse().unwrap_or(0));
        }
        Ok(out)
    }

    /// Runs SQL with the simple query protocol; the rows' text values.
    pub async fn query(
        &self,
        sql: &str,
        deadline: Instant,
    ) -> Result<Vec<Vec<Option<String>>>, PgError> {
        let msgs = match timeout_at(deadline, self.client.simple_query(sql)).await {
            Err(_) => return Err(timeout(&self.addr, "answer a query", self.budget)),
            Ok(Err(e)) => return Err(from_pg(&e, &self.addr, &self.watch)),
            Ok(Ok(m)) => m,
        };
        let rows = msgs.into_iter().filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        });
        Ok(rows.collect())
    }
}

impl Drop for Session {
    /// The client closes the connection (Terminate) as it drops; a connection that does not
    /// end within a second is cut.
    fn drop(&mut self) {
        let abort = self.task.abort_handle();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    abort.abort();
                });
            }
            Err(_) => abort.abort(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssl_request_is_postgres_code_80877103() {
        let code = u32::from_be_bytes([
            SSL_REQUEST[4],
            SSL_REQUEST[5],
            SSL_REQUEST[6],
            SSL_REQUEST[7],
        ]);
        assert_eq!(code, 80_877_103);
        assert_eq!(u32::from_be_bytes([0, 0, 0, 8]), 8);
    }

    #[test]
    fn reasons_and_sqlstates() {
        let refused = PgError::RefusedTls {
            addr: "h:5432".into(),
        };
        assert_eq!(refused.reason(), "pg_refused_tls");
        assert!(refused.to_string().contains("ssl = on"));
        let server = PgError::Server {
            addr: "h:5432".into(),
            sqlstate: "28P01".into(),
            message: "password authentication failed for user \"app\"".into(),
        };
        assert_eq!(server.sqlstate(), Some("28P01"));
        assert_eq!(server.reason(), "server");
        let t = timeout("h:5432", "answer a query", Duration::from_secs(2));
        assert_eq!(t.reason(), "timeout");
        assert_eq!(printable(b'H'), "'H'");
        assert_eq!(printable(0), "not text");
    }
}
