//! `rotcheck rotate …`: the rotation subcommands (issue, cert-role, pki-role, trust, reload)
//! and the plan runner. Exit 0 done (changed or not), 1 failed, 2 usage / suite / refused.

use super::{error, EXIT_USAGE};
use crate::rotate::ctx::{Done, Out};
use crate::rotate::options::{self, Options};
use crate::rotate::plan::Action;
use crate::rotate::revoke::{self, ServedAt};
use crate::rotate::runner;
use crate::rotate::spec::{CertRoleSpec, IssueSpec, PkiRoleSpec, ReloadSpec, TrustSpec};
use crate::rotate::{actions, reload};
use crate::vault::Settings;
use std::path::PathBuf;

/// The rotate subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum RotateCommand {
    /// Issue a certificate from <mount>/issue/<role> (or sign a local key's CSR with --csr) and write key, cert, chain and CA files.
    Issue(Box<IssueArgs>),
    /// Upsert the cert-auth mapping auth/<mount>/certs/<name>, enabling cert auth if absent.
    CertRole(Box<CertRoleArgs>),
    /// Upsert a PKI role that allows only the intended domains.
    PkiRole(Box<PkiRoleArgs>),
    /// Refresh a CA chain file from <mount>/ca_chain.
    Trust(Box<TrustArgs>),
    /// Reload a service: podman containers by label, a systemd user unit, a pid file, or -- CMD.
    Reload(Box<ReloadArgs>),
    /// Run the suite's plan: steps in order, a gate after each, resumable, audited.
    Plan(Box<PlanArgs>),
}

/// Flags every Vault-calling subcommand takes.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Suite whose vault profile to use (default: VAULT_ADDR, VAULT_CACERT, VAULT_TOKEN … from the environment).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Print the planned reads, writes and Vault calls; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `rotate issue`.
#[derive(clap::Args, Debug)]
pub struct IssueArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub spec: IssueSpec,
    /// With --revoke-previous-after: the TLS listener (host:port) that must serve the new certificate before the old one is revoked.
    #[arg(long = "served-at")]
    pub served_at: Option<String>,
    /// With --served-at: the SNI name sent (default: the host of --served-at).
    #[arg(long = "server-name")]
    pub server_name: Option<String>,
    /// With --served-at: how long to wait for the listener to serve the new certificate.
    #[arg(long = "served-wait", value_parser = crate::suite::parse_duration, default_value = "60s")]
    pub served_wait: std::time::Duration,
}

/// `rotate cert-role`.
#[derive(clap::Args, Debug)]
pub struct CertRoleArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub spec: CertRoleSpec,
}

/// `rotate pki-role`.
#[derive(clap::Args, Debug)]
pub struct PkiRoleArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub spec: PkiRoleSpec,
}

/// `rotate trust`.
#[derive(clap::Args, Debug)]
pub struct TrustArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub spec: TrustSpec,
}

/// `rotate reload`.
#[derive(clap::Args, Debug)]
pub struct ReloadArgs {
    /// Print what would run; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub spec: ReloadSpec,
}

/// `rotate plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The suite file with a plan: section.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Start at this step (earlier steps are left as they are).
    #[arg(long)]
    pub from: Option<String>,
    /// Run only this step.
    #[arg(long)]
    pub only: Option<String>,
    /// Print what each step would do; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the state file and lock live (default: plan.state_dir, else .rotcheck/<suite>/ beside the suite).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Re-issue every certificate now, even fresh ones (e.g. after a key compromise).
    #[arg(long)]
    pub force: bool,
}

/// Runs a rotate subcommand.
pub fn run(c: RotateCommand) -> u8 {
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            error(format!("cannot start the runtime: {e}"));
            return EXIT_USAGE;
        }
    };
    match c {
        RotateCommand::Issue(a) => rt.block_on(issue(*a)),
        RotateCommand::CertRole(a) => {
            let a = *a;
            rt.block_on(action(Action::CertRole(a.spec), a.common))
        }
        RotateCommand::PkiRole(a) => {
            let a = *a;
            rt.block_on(action(Action::PkiRole(a.spec), a.common))
        }
        RotateCommand::Trust(a) => {
            let a = *a;
            rt.block_on(action(Action::Trust(a.spec), a.common))
        }
        RotateCommand::Reload(a) => rt.block_on(reload_cmd(*a)),
        RotateCommand::Plan(a) => rt.block_on(plan(*a)),
    }
}

/// The vault profile: the suite's (with env fallbacks) or the environment alone.
fn profile(config: Option<&PathBuf>) -> Result<Settings, String> {
    match config {
        Some(p) => {
            let suite = crate::suite::load(p).map_err(|e| e.to_string())?;
            options::settings(&suite)
        }
        None => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
            let path = |p: &str| PathBuf::from(p);
            Settings::resolve(None, &env, &path)
                .map_err(|e| format!("vault profile from the environment: {e}"))
        }
    }
}

async fn action(a: Action, common: Common) -> u8 {
    match run_action(&a, &common).await {
        Ok(_) => 0,
        Err(code) => code,
    }
}

/// Runs one action, printing its outcome; on success the profile, what it did and its output.
async fn run_action(a: &Action, common: &Common) -> Result<(Settings, Done, Out), u8> {
    let settings = profile(common.config.as_ref()).map_err(|e| {
        error(e);
        EXIT_USAGE
    })?;
    let mut out = Out::default();
    out.line(actions::title(a));
    out.indent = 2;
    match actions::run(a, &settings, common.dry_run, &mut out).await {
        Ok(done) => {
            let what = match (done.changed, common.dry_run) {
                (false, _) => "nothing to change",
                (true, true) => "changes planned (dry run: nothing was changed)",
                (true, false) => "changed",
            };
            out.line(what);
            Ok((settings, done, out))
        }
        Err(e) => {
            error(e);
            Err(1)
        }
    }
}

/// Where `--served-at` points, when a revocation was asked for (usage error otherwise).
fn served_at(a: &IssueArgs) -> Result<Option<ServedAt>, String> {
    match (a.spec.revoke_previous_after, &a.served_at) {
        (Some(_), Some(addr)) => Ok(Some(ServedAt {
            addr: addr.clone(),
            server_name: a.server_name.clone(),
            wait: a.served_wait,
        })),
        (Some(_), None) => Err("--revoke-previous-after needs --served-at HOST:PORT: the listener that must serve the new certificate before the old one is revoked".into()),
        (None, Some(_)) => Err("--served-at is only used with --revoke-previous-after DURATION; add it, or drop --served-at".into()),
        (None, None) => Ok(None),
    }
}

/// `rotate issue`, then (with --revoke-previous-after) the revocation of the replaced certificate.
async fn issue(a: IssueArgs) -> u8 {
    let served = match served_at(&a) {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    let action = Action::Issue(Box::new(a.spec.clone()));
    let (settings, done, mut out) = match run_action(&action, &a.common).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (Some(served), Some(window)) = (served, a.spec.revoke_previous_after) else {
        return 0;
    };
    if a.common.dry_run {
        out.line(format!(
            "[dry-run] would revoke the replaced certificate once {} serves the new one and {} passed",
            served.addr,
            crate::human::duration(window)
        ));
        return 0;
    }
    let trail = a
        .common
        .config
        .as_deref()
        .and_then(revoke::Trail::for_suite);
    let sent = revoke::standalone(
        &a.spec,
        &served,
        window,
        &settings,
        &done,
        trail.as_ref(),
        &mut out,
    );
    match sent.await {
        Ok(()) => 0,
        Err(e) => {
            error(e);
            1
        }
    }
}

async fn reload_cmd(a: ReloadArgs) -> u8 {
    if a.spec.mechanisms() != 1 {
        error("give exactly one of --podman-label, --systemd-user, --pid-file, -- CMD ARGS...");
        return EXIT_USAGE;
    }
    let what = reload::describe(&a.spec);
    if a.dry_run {
        println!("[dry-run] would reload: {what}");
        return 0;
    }
    println!("reload: {what}");
    match reload::run(&a.spec).await {
        Ok(r) => {
            let shown = |d: &String| crate::redact::redact(d);
            r.details.iter().for_each(|d| println!("  {}", shown(d)));
            0
        }
        Err(e) => {
            error(e);
            1
        }
    }
}

async fn plan(a: PlanArgs) -> u8 {
    let opts = Options {
        config: a.config,
        from: a.from,
        only: a.only,
        dry_run: a.dry_run,
        state_dir: a.state_dir,
        force: a.force,
    };
    let mut out = Out::default();
    runner::run(&opts, &mut out).await
}
