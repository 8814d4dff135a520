//! The Prometheus exporter behind `rotcheck serve`: a background scheduler runs the suite
//! (scheduler.rs) into shared state (state.rs); the HTTP server (http.rs) renders it with the
//! metric families of metrics.rs in the text or OpenMetrics format of text.rs, gzip-compressed
//! on request (negotiate.rs), behind the optional exporter-toolkit web config (webconfig.rs);
//! `--compat blackbox` adds blackbox_exporter's series to `/probe` (compat.rs); `/status` and
//! `/probe?debug=true` answer with
//! the gate's report formats (status.rs) and status changes are logged (events.rs). SIGHUP or
//! `POST /-/reload` reload the suite, SIGTERM/SIGINT shut down cleanly.

pub mod admission;
pub mod compat;
pub mod conns;
pub mod events;
pub mod fdlimit;
pub mod http;
pub mod metrics;
pub mod negotiate;
pub mod probes;
pub mod scheduler;
pub mod state;
pub mod status;
pub mod stored;
pub mod webconfig;

use crate::suite::{self, Suite, SuiteError};
use admission::Admission;
use http::{App, Control, WebHandle};
use probes::ProbeGate;
use scheduler::{EngineRunner, Runner, Scheduler};
use state::State;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use webconfig::{WebConfig, WebConfigError};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub listen: String,
    /// `--interval`: overrides the suite's `defaults.interval` (not per-check intervals).
    pub interval: Option<Duration>,
    pub web_config: Option<PathBuf>,
    /// Checks run at once (scheduled runs and `/probe` together).
    pub concurrency: usize,
    /// `--web.max-connections`: open connections at most (lowered to half the open-file
    /// limit when that is smaller).
    pub max_connections: usize,
    /// `--log-format`: how status changes of checks are logged.
    pub log_format: events::LogFormat,
    /// `--compat`: extra series `/probe` writes (blackbox_exporter's).
    pub compat: compat::Compat,
}

/// bcrypt password checks at once: one, so a flood of wrong passwords costs one core at
/// most and one blocking thread.
pub const PASSWORD_CHECKS: usize = 1;
/// Password checks waiting in line; more are answered 503 without hashing.
pub const PASSWORD_QUEUE: usize = 32;

/// Why serve could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    #[error("cannot listen on {addr}: {detail}; pick a free address with --listen")]
    Listen { addr: String, detail: String },
    #[error("cannot install signal handlers: {0}")]
    Signals(String),
}

impl ServeError {
    /// 2 for configuration errors (nothing probed), 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Suite(_) | ServeError::WebConfig(_) => 2,
            _ => 1,
        }
    }
}

/// Writes one line to stderr: `rotcheck: ...`, redacted. Probes never log; the exporter does.
pub fn log(msg: impl std::fmt::Display) {
    let msg = crate::redact::redact(&msg.to_string());
    let _ = writeln!(std::io::stderr(), "rotcheck: {msg}");
}

/// Reads the suite and the web config named by the options.
#[derive(Debug, Clone)]
pub struct Loader {
    config: PathBuf,
    web_config: Option<PathBuf>,
}

impl Loader {
    /// Loads both; either failing fails the whole load.
    pub fn load(&self) -> Result<(Suite, WebConfig), ServeError> {
        let suite = suite::load(&self.config)?;
        let web = match &self.web_config {
            Some(p) => WebConfig::load(p)?,
            None => WebConfig::none(),
        };
        Ok((suite, web))
    }
}

/// Runs the exporter until SIGTERM or SIGINT.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let mut signals = Signals::install()?;
    let loader = Loader {
        config: opts.config.clone(),
        web_config: opts.web_config.clone(),
    };
    let (suite, web) = loader.load()?;
    let opts = ServeOptions {
        max_connections: connection_cap(opts.max_connections),
        ..opts
    };
    let listener = TcpListener::bind(&opts.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: opts.listen.clone(),
            detail: e.to_string(),
        })?;
    let running = start(&opts, loader, suite, web, listener, Arc::new(EngineRunner));
    signals.wait(&running.control).await;
    running.shutdown().await;
    Ok(())
}

/// Raises the open-file limit and fits the connection cap under it; logs both.
fn connection_cap(wanted: usize) -> usize {
    match fdlimit::raise() {
        Ok(r) => {
            let cap = fdlimit::connection_cap(wanted, r.now);
            log(format!("{r}; at most {cap} connections"));
            if cap < wanted {
                log(format!(
                    "warning: --web.max-connections {wanted} lowered to {cap}, half the open-file \
                     limit; raise LimitNOFILE= to allow more"
                ));
            }
            cap
        }
        Err(e) => {
            log(format!(
                "warning: cannot read or raise the open-file limit: {e}; at most {wanted} connections"
            ));
            wanted
        }
    }
}

/// A started exporter.
pub struct Running {
    pub addr: Option<SocketAddr>,
    control: mpsc::Sender<Control>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    controller: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets open requests finish briefly, stops the scheduler.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.controller.await;
        log("stopped");
    }
}

/// Starts the scheduler, the control loop and the HTTP server on `listener`.
pub fn start(
    opts: &ServeOptions,
    loader: Loader,
    suite: Suite,
    web: WebConfig,
    listener: TcpListener,
    runner: Arc<dyn Runner>,
) -> Running {
    let suite = Arc::new(suite);
    let state = Arc::new(State::new(
        suite.clone(),
        scheduler::intervals(&suite, opts.interval),
    ));
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut sched = Scheduler::new(
        state.clone(),
        runner.clone(),
        permits.clone(),
        opts.interval,
    )
    .with_log_format(opts.log_format);
    sched.start();
    let addr = listener.local_addr().ok();
    log_start(&suite, &web, addr, &opts.listen);
    let (control, rx) = mpsc::channel(4);
    let (stop, stop_rx) = watch::channel(false);
    let web = Arc::new(WebHandle::new(web));
    let limits = conns::Limits {
        max: opts.max_connections,
        ..Default::default()
    };
    let app = App {
        state: state.clone(),
        probes: Arc::new(ProbeGate::new(
            opts.concurrency,
            runner.clone(),
            permits.clone(),
        )),
        runner,
        permits,
        control: control.clone(),
        web: web.clone(),
        conns: conns::Conns::new(limits),
        passwords: Admission::new(PASSWORD_CHECKS, PASSWORD_QUEUE),
        compat: opts.compat,
    };
    let server = tokio::spawn(http::serve(listener, Arc::new(app), stop_rx.clone()));
    let ctl = Controller {
        sched,
        loader,
        state,
        web,
    };
    let controller = tokio::spawn(ctl.run(rx, stop_rx));
    Running {
        addr,
        control,
        stop,
        server,
        controller,
    }
}

/// `serving suite "prod" (12 checks) on https://127.0.0.1:9847`: tests read the address.
fn log_start(suite: &Suite, web: &WebConfig, addr: Option<SocketAddr>, listen: &str) {
    let scheme = if web.tls().is_some() { "https" } else { "http" };
    let shown = addr.map_or(listen.to_string(), |a| a.to_string());
    let (name, n) = (&suite.file.suite, suite.file.checks.len());
    log(format!(
        "serving suite {name:?} ({n} checks) on {scheme}://{shown}"
    ));
}

/// Serialises reloads and owns the scheduler.
struct Controller {
    sched: Scheduler,
    loader: Loader,
    state: Arc<State>,
    web: Arc<WebHandle>,
}

impl Controller {
    async fn run(mut self, mut rx: mpsc::Receiver<Control>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Control::Reload(reply)) => {
                        let outcome = self.reload().await;
                        let _ = reply.send(outcome);
                    }
                    None => break,
                },
                _ = stop.changed() => break,
            }
        }
        self.sched.stop().await;
    }

    async fn reload(&mut self) -> Result<usize, String> {
        match self.loader.load() {
            Ok((suite, web)) => {
                let n = self.sched.reload(suite).await;
                self.web.set(web);
                log(format!(
                    "reloaded {}: {n} checks",
                    self.loader.config.display()
                ));
                Ok(n)
            }
            Err(e) => {
                self.state.reload_failed();
                log(format!(
                    "error: reload failed, the previous suite stays in force: {e}"
                ));
                Err(e.to_string())
            }
        }
    }
}

/// SIGHUP (reload), SIGTERM and SIGINT (stop), installed before anything else so an early
/// SIGHUP cannot kill the process.
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Self, ServeError> {
        let s = |k: SignalKind| signal(k).map_err(|e| ServeError::Signals(e.to_string()));
        Ok(Signals {
            hup: s(SignalKind::hangup())?,
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
        })
    }

    /// Reloads on SIGHUP; returns on SIGTERM or SIGINT.
    async fn wait(&mut self, control: &mpsc::Sender<Control>) {
        loop {
            tokio::select! {
                _ = self.hup.recv() => {
                    let (tx, rx) = oneshot::channel();
                    if control.send(Control::Reload(tx)).await.is_err() {
                        return;
                    }
                    let _ = rx.await;
                }
                _ = self.term.recv() => return log("SIGTERM received, shutting down"),
                _ = self.int.recv() => return log("SIGINT received, shutting down"),
            }
        }
    }
}
