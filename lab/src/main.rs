//! `rotcheck-lab`: run the lab (`up`: a real OpenBao when `bao` can be had, else the Vault
//! emulator), drive a running emulator (`ctl`), or start a standalone fault listener
//! (`listen`).

use clap::{Parser, Subcommand, ValueEnum};
use rotcheck_lab::layout::{write_file, LabFiles, CERT_MODE, KEY_MODE};
use rotcheck_lab::pki::{parse_pem_certs, parse_pem_key, LabPki, LeafSpec};
use rotcheck_lab::real::{find_bao, RealConfig, RealLab};
use rotcheck_lab::{control, FaultKind, FaultListener, Lab, LabConfig, LabError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "rotcheck-lab",
    version,
    about = "The rotcheck lab: a real OpenBao (or the Vault API emulator) and fault listeners"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the lab Vault on loopback and write the lab files into DIR: a real OpenBao
    /// (raft, mTLS listener) when `bao` is on PATH or given, else the Vault API emulator.
    Up {
        /// Lab directory (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Listen address: a loopback IP:PORT or just a PORT.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// The OpenBao binary (default: `bao` on PATH).
        #[arg(long, conflicts_with = "emulator")]
        bao: Option<PathBuf>,
        /// Run the Vault API emulator even when `bao` is available.
        #[arg(long)]
        emulator: bool,
        /// Emulator only: the Vault version to report and emulate [default: 1.20.4].
        #[arg(long)]
        version: Option<String>,
        /// Emulator only: refuse TLS handshakes without a client certificate from the lab CA
        /// (a real OpenBao lab always requires one).
        #[arg(long)]
        require_client_cert: bool,
        /// Seed a drifted cert-auth mapping (app-a keeps debug-policy) for drift demos.
        #[arg(long)]
        drift: bool,
    },
    /// Drive a running lab through its control endpoint (alias: fault).
    #[command(visible_alias = "fault")]
    Ctl {
        /// Lab directory of the running `up`.
        #[arg(long)]
        dir: PathBuf,
        /// reset DUR | stall DUR | fail PATH [STATUS] | clear | seal | unseal | init | uninit |
        /// standby | active | version X.Y.Z | reload | status
        action: String,
        /// Action arguments.
        args: Vec<String>,
    },
    /// Start one fault listener on 127.0.0.1 and print its address.
    Listen {
        /// What the listener does.
        #[arg(long, value_enum)]
        kind: ListenKind,
        /// Lab directory (TLS kinds use its server certificate and CA files).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ListenKind {
    /// TCP RST on every connection.
    Reset,
    /// Accept, never answer.
    Stall,
    /// Answer the ClientHello with garbage bytes.
    Garbage,
    /// Answer like a plain HTTP server.
    PlainHttp,
    /// Present the lab server leaf without its intermediate.
    LeafOnly,
    /// Present a chain from a foreign CA for the same names.
    WrongChain,
    /// Require a client certificate from the lab CA.
    Mtls,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Up {
            dir,
            listen,
            bao,
            emulator,
            version,
            require_client_cert,
            drift,
        } => {
            let opts = UpOptions {
                listen,
                version,
                require_client_cert,
                drift,
            };
            choose_and_up(&dir, bao.as_deref(), emulator, opts).await
        }
        Cmd::Ctl { dir, action, args } => ctl(&dir, &action, &args).await.map_err(Into::into),
        Cmd::Listen { kind, dir } => listen(kind, dir.as_deref()).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rotcheck-lab: {e}");
            ExitCode::from(1)
        }
    }
}

/// `127.0.0.1:0`, `[::1]:8200` or `8200`; only loopback addresses are accepted.
fn listen_addr(text: &str) -> Result<SocketAddr, LabError> {
    let addr = match text.parse::<u16>() {
        Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        Err(_) => text
            .parse()
            .map_err(|e| LabError::invalid("--listen", format!("{text}: {e}")))?,
    };
    if !addr.ip().is_loopback() {
        return Err(LabError::invalid(
            "--listen",
            format!("{} is not a loopback address", addr.ip()),
        ));
    }
    Ok(addr)
}

/// `up`'s settings besides the directory and the choice of server.
struct UpOptions {
    listen: String,
    version: Option<String>,
    require_client_cert: bool,
    drift: bool,
}

/// A real OpenBao unless `--emulator`, or unless no `bao` can be found (and then says so).
async fn choose_and_up(
    dir: &Path,
    bao: Option<&Path>,
    emulator: bool,
    opts: UpOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let listen = listen_addr(&opts.listen)?;
    let sigs = Signals::install()?;
    let bin = if emulator { None } else { find_bao(bao)? };
    let Some(bin) = bin else {
        let version = opts.version.as_deref().unwrap_or("1.20.4");
        let lab = up(dir, listen, version, opts.require_client_cert, opts.drift).await?;
        if !emulator {
            println!("no `bao` on PATH: this lab runs the Vault API emulator, not a real server (./scripts/openbao.sh installs OpenBao into .venv/bin; or pass --bao PATH)");
        }
        return wait_for_signals(&lab, sigs).await.map_err(Into::into);
    };
    if opts.version.is_some() {
        return Err(LabError::invalid(
            "--version",
            "a real OpenBao reports its own version; pass --emulator to emulate one",
        )
        .into());
    }
    let cfg = RealConfig {
        bin,
        dir: dir.to_path_buf(),
        listen,
        drift: opts.drift,
    };
    up_real(cfg, sigs).await
}

/// SIGTERM, SIGINT and SIGHUP, caught from before the first line is printed: a signal sent
/// as soon as the URL is read never meets the default action.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, LabError> {
        let sig = |k: SignalKind| {
            signal(k).map_err(|e| LabError::invalid("signal handler", e.to_string()))
        };
        Ok(Signals {
            term: sig(SignalKind::terminate())?,
            int: sig(SignalKind::interrupt())?,
            hup: sig(SignalKind::hangup())?,
        })
    }
}

/// Starts the real server, prints its URL and a description, then supervises it: SIGHUP is
/// passed on (listener reload), SIGTERM/SIGINT stop it, and its own exit ends `up`.
async fn up_real(cfg: RealConfig, sigs: Signals) -> Result<(), Box<dyn std::error::Error>> {
    let mut lab = tokio::task::spawn_blocking(move || RealLab::start(&cfg)).await??;
    let files = lab.files().clone();
    write_file(
        &files.dir.join("lab.pid"),
        format!("{}\n", std::process::id()).as_bytes(),
        CERT_MODE,
    )?;
    println!("{}", lab.url());
    println!(
        "OpenBao v{} (raft storage, client certificates required, SNI {}); files in {}, server log {}",
        lab.version(),
        rotcheck_lab::world::REAL_SERVER_NAME,
        files.dir.display(),
        lab.log_path().display()
    );
    let result = supervise(&mut lab, sigs).await;
    tokio::task::spawn_blocking(move || lab.stop()).await?;
    result
}

async fn supervise(lab: &mut RealLab, sigs: Signals) -> Result<(), Box<dyn std::error::Error>> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = sigs;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                eprintln!("rotcheck-lab: reload triggered (SIGHUP to the OpenBao server)");
                lab.reload()?;
            }
            _ = tick.tick() => {
                if let Some(status) = lab.exited() {
                    let log = lab.log_path();
                    return Err(format!("the OpenBao server exited ({status}); see {}", log.display()).into());
                }
            }
        }
    }
}

async fn up(
    dir: &Path,
    listen: SocketAddr,
    version: &str,
    require_client_cert: bool,
    drift: bool,
) -> Result<Arc<Lab>, LabError> {
    let cfg = LabConfig {
        drift,
        listen,
        version: version.to_string(),
        require_client_cert,
        dir: Some(dir.to_path_buf()),
        ..LabConfig::default()
    };
    let lab = Arc::new(Lab::start(cfg).await?);
    let files = lab.files().clone();
    let secret: String = hex(&rand_bytes());
    let (ctl_addr, _ctl) = control::serve(lab.clone(), secret.clone()).await?;
    write_file(
        &files.dir.join("control.token"),
        format!("{secret}\n").as_bytes(),
        KEY_MODE,
    )?;
    write_file(
        &files.dir.join("control.addr"),
        format!("{ctl_addr}\n").as_bytes(),
        CERT_MODE,
    )?;
    write_file(
        &files.dir.join("lab.pid"),
        format!("{}\n", std::process::id()).as_bytes(),
        CERT_MODE,
    )?;
    println!("{}", lab.url());
    Ok(lab)
}

async fn wait_for_signals(lab: &Lab, sigs: Signals) -> Result<(), LabError> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = sigs;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                eprintln!("rotcheck-lab: reload triggered");
                if let Err(e) = lab.reload_tls() {
                    eprintln!("rotcheck-lab: reload failed, keeping the old certificate: {e}");
                }
            }
        }
    }
}

fn rand_bytes() -> [u8; 24] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 24];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn ctl(dir: &Path, action: &str, args: &[String]) -> Result<(), LabError> {
    if !dir.join("control.addr").exists() && dir.join("vault/bao.pid").exists() {
        return Err(LabError::invalid(
            "ctl",
            format!("{} runs a real OpenBao, which has no control endpoint; drive it with its own CLI (`. {}/lab.env`, token in vault/root-token, e.g. `bao operator seal`)", dir.display(), dir.display()),
        ));
    }
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(LabError::io(p))
    };
    let addr: SocketAddr = read("control.addr")?
        .parse()
        .map_err(|e| LabError::invalid("control.addr", format!("{e}")))?;
    let secret = read("control.token")?;
    let query = ctl_query(action, args)?;
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = control::request(addr, &secret, action, &pairs).await?;
    print!("{body}");
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(LabError::invalid(
            "control action",
            format!("{action}: HTTP {status}"),
        ))
    }
}

fn ctl_query(action: &str, args: &[String]) -> Result<Vec<(&'static str, String)>, LabError> {
    let arg = |i: usize, what: &str| {
        args.get(i)
            .cloned()
            .ok_or_else(|| LabError::invalid(action, format!("missing {what}")))
    };
    Ok(match action {
        "reset" | "stall" => vec![("for", arg(0, "DURATION")?)],
        "fail" => vec![
            ("path", arg(0, "PATH")?),
            ("status", args.get(1).cloned().unwrap_or("500".into())),
        ],
        "version" => vec![("value", arg(0, "X.Y.Z")?)],
        _ => Vec::new(),
    })
}

async fn listen(kind: ListenKind, dir: Option<&Path>) -> Result<(), LabError> {
    let fault = match kind {
        ListenKind::Reset => FaultKind::ResetOnAccept,
        ListenKind::Stall => FaultKind::Stall,
        ListenKind::Garbage => FaultKind::Garbage(b"\x15\x03\x03garbage-not-tls\r\n".to_vec()),
        ListenKind::PlainHttp => FaultKind::PlainHttp,
        tls => tls_fault(tls, dir)?,
    };
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| LabError::invalid("signal handler", e.to_string()))?;
    let listener = FaultListener::start(fault).await?;
    println!("{}", listener.addr());
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

fn tls_fault(kind: ListenKind, dir: Option<&Path>) -> Result<FaultKind, LabError> {
    let dir =
        dir.ok_or_else(|| LabError::invalid("--dir", "TLS listener kinds need the lab directory"))?;
    let files = LabFiles::under(dir);
    let read = |p: &Path| std::fs::read_to_string(p).map_err(LabError::io(p));
    let leaf = parse_pem_certs(&read(&files.server_cert)?);
    let key = || {
        parse_pem_key(&read(&files.server_key)?).ok_or(LabError::Pem {
            what: files.server_key.display().to_string(),
        })
    };
    Ok(match kind {
        ListenKind::LeafOnly => FaultKind::Tls {
            chain: leaf,
            key: key()?,
        },
        ListenKind::Mtls => FaultKind::TlsClientAuth {
            chain: parse_pem_certs(&read(&files.server_fullchain)?),
            key: key()?,
            client_cas: parse_pem_certs(&(read(&files.root_ca)? + &read(&files.intermediate_ca)?)),
        },
        _ => wrong_chain()?,
    })
}

/// A chain from a foreign CA, for the lab's names.
fn wrong_chain() -> Result<FaultKind, LabError> {
    let foreign = LabPki::with_names("foreign root CA", "foreign intermediate CA")?;
    let names = [rotcheck_lab::world::SERVER_NAME, "localhost", "127.0.0.1"];
    let leaf = foreign.issue(&LeafSpec::server(rotcheck_lab::world::SERVER_NAME, &names))?;
    Ok(FaultKind::Tls {
        chain: foreign.fullchain_der(&leaf),
        key: leaf.key_der(),
    })
}
