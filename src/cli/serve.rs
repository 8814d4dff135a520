//! `rotcheck serve`: run the suite continuously and serve Prometheus metrics until SIGTERM.

use super::{error, parse_interval, EXIT_USAGE};
use crate::exporter::compat::Compat;
use crate::exporter::events::LogFormat;
use crate::exporter::{self, ServeOptions};
use std::path::PathBuf;

/// Arguments of `rotcheck serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The suite file.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Address to serve /metrics, /probe, /status, /healthz, /ready and /-/reload on.
    #[arg(long, default_value = "127.0.0.1:9847")]
    pub listen: String,
    /// Run each check this often, unless the check sets its own interval
    /// (default: the suite's defaults.interval, 60s when unset).
    #[arg(long, value_parser = parse_interval)]
    pub interval: Option<std::time::Duration>,
    /// Prometheus exporter-toolkit web config: TLS, client certificates, basic auth.
    #[arg(long = "web-config")]
    pub web_config: Option<PathBuf>,
    /// Checks run at once (scheduled runs and /probe together).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open connections at most (lowered to half the open-file limit if that is smaller).
    /// At the cap a new connection closes the stalest one that is not serving a request.
    #[arg(long = "web.max-connections", default_value_t = crate::exporter::conns::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// How status changes of checks are logged on stderr: logfmt or json.
    #[arg(long = "log-format", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,
    /// Also write another exporter's series on /probe: `blackbox` adds blackbox_exporter's
    /// probe_success, probe_duration_seconds, probe_ssl_earliest_cert_expiry,
    /// probe_ssl_last_chain_expiry_timestamp_seconds and probe_tls_version_info.
    #[arg(long, value_enum, default_value = "none")]
    pub compat: Compat,
}

/// Runs the exporter; returns 0 after a clean shutdown, 2 on a suite or web config error,
/// 1 when it cannot listen.
pub fn run(a: ServeArgs) -> u8 {
    let opts = ServeOptions {
        config: a.config,
        listen: a.listen,
        interval: a.interval,
        web_config: a.web_config,
        concurrency: a.concurrency,
        max_connections: a.max_connections,
        log_format: a.log_format,
        compat: a.compat,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            error(format!("cannot start the runtime: {e}"));
            return EXIT_USAGE;
        }
    };
    match rt.block_on(exporter::serve(opts)) {
        Ok(()) => 0,
        Err(e) => {
            error(&e);
            e.exit_code()
        }
    }
}

/// The serve runtime: tokio's multi-threaded default, with a blocking pool of twice the cores
/// (at least 4). `files` probes, DNS lookups and scrape rendering run there; more threads than
/// that only wait for a core, and every thread that ever allocated keeps a glibc arena (see
/// docs/metrics.md, "Benchmark"), so a pool of `--concurrency` threads cost memory for nothing.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((2 * cores).max(4))
        .build()
}
