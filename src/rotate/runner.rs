//! `rotate plan`: runs the suite's plan steps in order — actions, reloads, then a gate on the
//! step's stage — recording every transition in the state file and the audit log, and stops
//! at the first failure with the step, the failing checks and the next command to run.

use super::actions;
use super::audit::{AuditLog, Event, Serial, Subject};
use super::ctx::{Done, Out, RotateError, VaultIo};
use super::gate;
use super::options::{forced, settings, Options, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use super::plan::{self, Action, Plan, ReloadWhen, Step, TrustFirst};
use super::state::{
    self, CertChange, GateSummary, Paths, PlanState, Revocation, RevokeStatus, RunStatus,
    StepStatus,
};
use super::{killpoint, reload, revoke};
use crate::model::Report;
use crate::suite::Suite;
use std::sync::Arc;
use std::time::Duration;

/// Why a step stopped.
struct Stop {
    message: String,
    gate: Option<GateSummary>,
}

impl Stop {
    fn new(message: impl Into<String>) -> Self {
        Stop {
            message: message.into(),
            gate: None,
        }
    }
}

/// Loads the suite and its plan, then runs it. Returns the exit code.
pub async fn run(opts: &Options, out: &mut Out) -> u8 {
    let (suite, plan) = match prepare(opts) {
        Ok(x) => x,
        Err(e) => return usage(out, e),
    };
    if opts.dry_run {
        return super::dryrun::run(&suite, &plan, opts, out).await;
    }
    let paths = Paths::in_dir(&plan.state_dir);
    let _lock = match state::lock(&paths.lock, &suite.file.suite) {
        Ok(l) => l,
        Err(e) => return usage(out, e.to_string()),
    };
    match Runner::new(suite, plan, paths, opts, out) {
        Ok(mut r) => r.go().await,
        Err(e) => usage(out, e),
    }
}

fn usage(out: &mut Out, e: String) -> u8 {
    out.error(format!("rotcheck: error: {e}"));
    EXIT_USAGE
}

/// The suite and its validated plan, with `--state-dir` applied.
fn prepare(opts: &Options) -> Result<(Arc<Suite>, Plan), String> {
    let (suite, mut plan) = load(opts)?;
    if let Some(d) = &opts.state_dir {
        if plan.audit_log == plan.state_dir.join("audit.jsonl") {
            plan.audit_log = d.join("audit.jsonl");
        }
        plan.state_dir = d.clone();
    }
    check_step_flags(opts, &plan)?;
    check_owners(&plan)?;
    Ok((suite, plan))
}

/// Every `owner:` of the plan names a user and group of this machine, checked before any
/// step runs (so no step changes anything and then a later one stops on a typo).
fn check_owners(plan: &Plan) -> Result<(), String> {
    for step in &plan.steps {
        for a in &step.actions {
            let owner = match a {
                Action::Issue(i) => i.owner.as_ref(),
                Action::Trust(t) => t.owner.as_ref(),
                _ => None,
            };
            if let Some(Err(e)) = owner.map(|o| o.resolve()) {
                return Err(format!(
                    "plan step {:?}: {} owner {}: {e}",
                    step.name,
                    a.kind(),
                    owner.map(|o| o.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

fn load(opts: &Options) -> Result<(Arc<Suite>, Plan), String> {
    let suite = crate::suite::load(&opts.config).map_err(|e| e.to_string())?;
    let plan = plan::parse(&suite).map_err(|e| e.to_string())?.ok_or_else(|| {
        format!(
            "{}: the suite has no plan: section; add one (steps: [{{name, gate, actions, reload}}]) — see docs/rotate.md",
            opts.config.display()
        )
    })?;
    Ok((Arc::new(suite), plan))
}

fn check_step_flags(opts: &Options, plan: &Plan) -> Result<(), String> {
    if opts.from.is_some() && opts.only.is_some() {
        return Err("give --from or --only, not both".into());
    }
    for s in opts.from.iter().chain(opts.only.iter()) {
        if plan.index_of(s).is_none() {
            return Err(format!(
                "no step named {s:?} in the plan; steps: {}",
                plan.names()
            ));
        }
    }
    Ok(())
}

struct Runner<'a> {
    suite: Arc<Suite>,
    plan: Plan,
    paths: Paths,
    state: PlanState,
    audit: AuditLog,
    opts: &'a Options,
    out: &'a mut Out,
}

impl<'a> Runner<'a> {
    fn new(
        suite: Arc<Suite>,
        plan: Plan,
        paths: Paths,
        opts: &'a Options,
        out: &'a mut Out,
    ) -> Result<Self, String> {
        let loaded = PlanState::load(&paths.state).map_err(|e| e.to_string())?;
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        let (state, resumed) = match loaded {
            Some(s) if s.status != RunStatus::Completed && s.suite == suite.file.suite => (s, true),
            earlier => {
                let mut fresh = PlanState::fresh(&suite.file.suite, &names);
                if let Some(e) = earlier.filter(|e| e.suite == suite.file.suite) {
                    fresh.carry_revocations(&e);
                }
                (fresh, false)
            }
        };
        let audit = AuditLog::new(&plan.audit_log);
        let mut r = Runner {
            suite,
            plan,
            paths,
            state,
            audit,
            opts,
            out,
        };
        r.begin(resumed)?;
        Ok(r)
    }

    /// Records the start (or resumption) of the run.
    fn begin(&mut self, resumed: bool) -> Result<(), String> {
        let from = if resumed {
            self.state.status.as_str()
        } else {
            "none"
        };
        self.state.status = RunStatus::Running;
        self.save()?;
        self.event(
            None,
            from,
            "running",
            &[],
            None,
            Some(if resumed { "resumed" } else { "new run" }),
        )
    }

    fn save(&mut self) -> Result<(), String> {
        self.state
            .save(&self.paths.state)
            .map_err(|e| e.to_string())
    }

    fn event(
        &self,
        step: Option<&str>,
        from: &str,
        to: &str,
        certs: &[CertChange],
        gate: Option<&GateSummary>,
        msg: Option<&str>,
    ) -> Result<(), String> {
        let run = (self.state.suite.as_str(), self.state.run_id.as_str());
        let mut e = Event::now(&self.audit, run, (from, to));
        e.step = step;
        e.serials = certs.iter().map(Serial::of).collect();
        e.gate = gate;
        e.message = msg;
        self.audit.append(&e).map_err(|e| e.to_string())
    }

    /// Appends the audit line of a revocation's transition.
    fn revocation_event(
        &self,
        step: &str,
        r: &Revocation,
        from: &str,
        to: &str,
        msg: Option<&str>,
    ) -> Result<(), String> {
        let run = (self.state.suite.as_str(), self.state.run_id.as_str());
        let id = format!("{}:{}", r.mount, r.serial);
        let about = Subject {
            target: format!("revocation:{id}"),
            secret_id: Some(id),
        };
        let mut e = Event::now(&self.audit, run, (from, to));
        e.step = Some(step);
        e.serials = vec![Serial {
            path: &r.path,
            old_serial: Some(&r.serial),
            new_serial: r.new_serial.as_deref(),
            old_sha256: Some(&r.sha256),
            new_sha256: r.new_sha256.as_deref(),
        }];
        e.message = msg;
        self.audit
            .append_about(&e, &about)
            .map_err(|e| e.to_string())
    }

    /// The steps to run, by index.
    fn selected(&self) -> Vec<usize> {
        let n = self.plan.steps.len();
        if let Some(only) = &self.opts.only {
            return self.plan.index_of(only).into_iter().collect();
        }
        if let Some(from) = &self.opts.from {
            return (self.plan.index_of(from).unwrap_or(0)..n).collect();
        }
        let first = self
            .plan
            .steps
            .iter()
            .position(|s| {
                self.state
                    .step(&s.name)
                    .is_none_or(|st| st.status != StepStatus::Done)
            })
            .unwrap_or(n);
        (first..n).collect()
    }

    async fn go(&mut self) -> u8 {
        let todo = self.selected();
        let n = self.plan.steps.len();
        if let Some(&first) = todo.first() {
            if first > 0 && self.opts.from.is_none() && self.opts.only.is_none() {
                self.out.line(format!(
                    "resuming run {} at step {}/{n} {:?} (earlier steps are done)",
                    self.state.run_id,
                    first + 1,
                    self.plan.steps[first].name
                ));
            }
        }
        for i in todo {
            let step = self.plan.steps[i].clone();
            self.out.line(format!(
                "[{}/{n}] {}{}",
                i + 1,
                step.name,
                step.description
                    .as_ref()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            ));
            self.out.indent = 2;
            let result = self.step(&step).await;
            self.out.indent = 0;
            if let Err(stop) = result {
                return self.stopped(i, &step, stop);
            }
        }
        self.finish().await
    }

    async fn finish(&mut self) -> u8 {
        if let Err(e) = self.settle_revocations().await {
            return self.owing(e);
        }
        let all_done = self.plan.steps.iter().all(|s| {
            self.state
                .step(&s.name)
                .is_some_and(|st| st.status == StepStatus::Done)
        });
        let to = if all_done {
            RunStatus::Completed
        } else {
            RunStatus::Running
        };
        self.state.status = to;
        let saved = self
            .save()
            .and_then(|_| self.event(None, "running", to.as_str(), &[], None, None));
        if let Err(e) = saved {
            self.out.error(format!("rotcheck: error: {e}"));
            return EXIT_FAILED;
        }
        if all_done {
            self.out.line(format!(
                "plan complete: {} step(s) done; state in {}",
                self.plan.steps.len(),
                self.paths.state.display()
            ));
        } else {
            self.out.line(format!("selected step(s) done; other steps are not; run `rotcheck rotate plan -c {}` to continue", self.opts.config.display()));
        }
        EXIT_OK
    }

    /// Moves a step to `to`, saving state and appending an audit line.
    fn transition(
        &mut self,
        name: &str,
        to: StepStatus,
        gate: Option<GateSummary>,
        msg: Option<String>,
    ) -> Result<(), String> {
        let st = self.state.step_mut(name);
        let from = st.status;
        st.status = to;
        match to {
            StepStatus::Running => {
                st.attempts += 1;
                st.started_at = Some(state::now());
                st.finished_at = None;
                st.message = None;
                st.gate = None;
            }
            StepStatus::Done | StepStatus::Failed => st.finished_at = Some(state::now()),
            _ => {}
        }
        if gate.is_some() {
            st.gate = gate.clone();
        }
        if msg.is_some() {
            st.message = msg.clone();
        }
        let certs = st.certs.clone();
        self.save()?;
        let log_certs: &[CertChange] = if matches!(to, StepStatus::Applied | StepStatus::Done) {
            &certs
        } else {
            &[]
        };
        self.event(
            Some(name),
            from.as_str(),
            to.as_str(),
            log_certs,
            gate.as_ref(),
            msg.as_deref(),
        )
    }

    async fn step(&mut self, step: &Step) -> Result<(), Stop> {
        self.start_step(step)?;
        if let Some(tf) = &step.trust_first {
            self.trust_first(step, tf).await?;
        }
        let owed = self.owe_reload(step).map_err(Stop::new)?;
        let changed = self.actions(step).await?;
        let reload_err = self.reloads(step, changed, owed).await;
        self.transition(&step.name, StepStatus::Applied, None, None)
            .map_err(Stop::new)?;
        killpoint::reached("step-applied", None);
        self.gate(step, reload_err).await
    }

    fn start_step(&mut self, step: &Step) -> Result<(), Stop> {
        let st = self.state.step_mut(&step.name);
        if st.status == StepStatus::Done || st.status == StepStatus::Pending {
            st.changed = false;
            st.certs.clear();
        }
        self.transition(&step.name, StepStatus::Running, None, None)
            .map_err(Stop::new)
    }

    async fn actions(&mut self, step: &Step) -> Result<bool, Stop> {
        let mut changed = self.state.step_mut(&step.name).changed;
        if step.actions.is_empty() {
            return Ok(changed);
        }
        let settings = settings(&self.suite).map_err(Stop::new)?;
        for a in &step.actions {
            let a = &forced(a, self.opts.force);
            self.out.line(actions::title(a));
            self.out.indent = 4;
            self.owe_revocation(step, a).map_err(Stop::new)?;
            let done = actions::run(a, &settings, false, self.out).await;
            self.out.indent = 2;
            let done = done.map_err(|e| Stop::new(format!("{} failed: {e}", a.kind())))?;
            changed |= done.changed;
            self.record(&step.name, &done).map_err(Stop::new)?;
            self.revocation_owed(step, a).map_err(Stop::new)?;
        }
        if !changed {
            self.out.line("nothing to change");
        }
        Ok(changed)
    }

    /// Before an issue with a revoke window: the current certificate is recorded as pending,
    /// so a crash after the rename still leaves its revocation owed.
    fn owe_revocation(&mut self, step: &Step, a: &Action) -> Result<(), String> {
        let (Action::Issue(spec), Some(window)) = (a, self.plan.revoke_window(a)) else {
            return Ok(());
        };
        let list = &mut self.state.step_mut(&step.name).revocations;
        let note = revoke::before_issue(list, spec, window).map_err(|e| e.to_string())?;
        if let Some(n) = note {
            self.out.line(n);
        }
        self.save()
    }

    /// After the issue: the pending revocation is owed when the certificate was replaced.
    fn revocation_owed(&mut self, step: &Step, a: &Action) -> Result<(), String> {
        let (Action::Issue(spec), Some(_)) = (a, self.plan.revoke_window(a)) else {
            return Ok(());
        };
        let list = &mut self.state.step_mut(&step.name).revocations;
        let owed = revoke::after_issue(list, spec).map_err(|e| e.to_string())?;
        self.save()?;
        let Some(i) = owed else { return Ok(()) };
        let r = self.state.step_mut(&step.name).revocations[i].clone();
        self.out.line(format!(
            "owes the revocation of {} once the new certificate is served and {} passed",
            revoke::describe(&r),
            crate::human::duration(std::time::Duration::from_secs(r.after_seconds))
        ));
        self.revocation_event(&step.name, &r, "pending", "owed", None)
    }

    /// Keeps what an action changed in the step's record (first old, latest new per file).
    fn record(&mut self, step: &str, done: &Done) -> Result<(), String> {
        self.state.changed |= done.changed;
        let st = self.state.step_mut(step);
        st.changed |= done.changed;
        for c in &done.certs {
            match st.certs.iter_mut().find(|x| x.path == c.path) {
                Some(x) => x.new = c.new.clone(),
                None => st.certs.push(c.clone()),
            }
        }
        self.save()
    }

    /// Records that the step's reloads are owed before any action can rename a file, and
    /// returns whether an earlier, interrupted run already owed them.
    fn owe_reload(&mut self, step: &Step) -> Result<bool, String> {
        if step.reload.is_empty() {
            return Ok(false);
        }
        let st = self.state.step_mut(&step.name);
        let before = st.reload_owed;
        st.reload_owed = true;
        self.save()?;
        Ok(before)
    }

    /// Settles the owed reloads: cleared only when they ran and succeeded, or were not due.
    fn settle_reload(&mut self, step: &Step) -> Option<String> {
        self.state.step_mut(&step.name).reload_owed = false;
        self.save().err()
    }

    async fn reloads(&mut self, step: &Step, changed: bool, owed: bool) -> Option<String> {
        if step.reload.is_empty() {
            return None;
        }
        let due = match step.reload_when {
            ReloadWhen::Changed => changed,
            ReloadWhen::RunChanged => changed || self.state.changed,
            ReloadWhen::Always => true,
        };
        if !due && !owed {
            self.out.line("reload skipped: nothing changed");
            return self.settle_reload(step);
        }
        if !due {
            self.out.line(
                "files are in place, but an interrupted run still owes the reload: running it",
            );
        }
        for r in &step.reload {
            self.out.line(format!("reload: {}", reload::describe(r)));
            match reload::run(r).await {
                Ok(done) => done
                    .details
                    .iter()
                    .for_each(|d| self.out.line(format!("  {d}"))),
                Err(e) => {
                    self.out.line(format!("  {e}"));
                    return Some(e.to_string());
                }
            }
        }
        self.settle_reload(step)
    }

    async fn gate(&mut self, step: &Step, reload_err: Option<String>) -> Result<(), Stop> {
        let wait = if reload_err.is_some() {
            std::time::Duration::ZERO
        } else {
            step.wait
        };
        self.out.line(format!(
            "gate: stage {} (waiting up to {})",
            step.gate,
            crate::human::duration(wait)
        ));
        let report = gate::stage(&self.suite, &step.gate, wait, step.interval)
            .await
            .map_err(Stop::new)?;
        for l in gate::render(&report).lines() {
            self.out.line(format!("  {l}"));
        }
        let summary = gate::summary(&step.gate, &report);
        if let Some(e) = reload_err {
            return Err(Stop {
                message: e,
                gate: Some(summary),
            });
        }
        if !gate::passed(&report) {
            let msg = format!(
                "gate on stage {} failed: {} of {} check(s) failing",
                step.gate,
                summary.failed,
                report.checks.len()
            );
            return Err(Stop {
                message: msg,
                gate: Some(summary),
            });
        }
        self.state.step_mut(&step.name).changed = false;
        self.see_served(&step.name, &step.gate, &report)
            .map_err(Stop::new)?;
        self.transition(&step.name, StepStatus::Done, Some(summary), None)
            .map_err(Stop::new)?;
        self.out.line(format!("step {} done", step.name));
        Ok(())
    }

    async fn trust_first(&mut self, step: &Step, tf: &TrustFirst) -> Result<(), Stop> {
        let mount = tf
            .mount
            .clone()
            .or_else(|| issue_mount(step))
            .unwrap_or_default();
        let settings = settings(&self.suite).map_err(Stop::new)?;
        let ca_file = self
            .plan
            .state_dir
            .join("trust-first")
            .join(format!("{}.pem", step.name));
        let issuer = super::trustfirst::issuing_ca(&settings, &mount, &ca_file, self.out)
            .await
            .map_err(Stop::new)?;
        let wait = tf.wait.map(|d| d.0).unwrap_or_default();
        self.out.line(format!(
            "trust first: every consumer bundle must contain {:?} ({})",
            issuer.subject_cn,
            issuer.short()
        ));
        let report = gate::bundles_contain(&self.suite, &tf.bundles, &ca_file, wait)
            .await
            .map_err(Stop::new)?;
        if gate::passed(&report) {
            return Ok(());
        }
        let summary = gate::summary("trust-first", &report);
        let message = format!(
            "refused: {mount} issues from {:?} ({}), which is new to {} consumer bundle(s); distribute it first (a trust step, or `rotcheck rotate trust --mount {mount} --out BUNDLE --keep`), then re-run",
            issuer.subject_cn,
            issuer.short(),
            summary.failed
        );
        Err(Stop {
            message,
            gate: Some(summary),
        })
    }

    /// Indexes of the step's revocations in `status`.
    fn revocations_in(&self, step: &str, status: RevokeStatus) -> Vec<usize> {
        self.state.step(step).map_or_else(Vec::new, |st| {
            (0..st.revocations.len())
                .filter(|&i| st.revocations[i].status == status)
                .collect()
        })
    }

    /// Marks the step's owed revocations served when a TLS check of its gate presented the
    /// new certificate; the others stay owed, saying why.
    fn see_served(&mut self, step: &str, stage: &str, report: &Report) -> Result<(), String> {
        for i in self.revocations_in(step, RevokeStatus::Owed) {
            let r = &mut self.state.step_mut(step).revocations[i];
            let seen = r
                .new_sha256
                .as_deref()
                .is_some_and(|h| revoke::served_in(report, h));
            if !seen {
                revoke::mark_unserved(r, stage);
                let why = r.message.clone().unwrap_or_default();
                self.save()?;
                self.out.line(why);
                continue;
            }
            revoke::mark_served(r);
            let r = r.clone();
            self.save()?;
            self.out.line(format!(
                "the new certificate (serial {}) is served; {} is revoked once {} passed",
                r.new_serial.as_deref().unwrap_or("?"),
                r.serial,
                crate::human::duration(Duration::from_secs(r.after_seconds))
            ));
            self.revocation_event(step, &r, "owed", "served", None)?;
            killpoint::reached("revocation-served", None);
        }
        Ok(())
    }

    /// Steps (in plan order, then any the plan lost) that still owe a revocation.
    fn owing_steps(&self) -> Vec<String> {
        let owes = |st: &state::StepState| {
            st.revocations
                .iter()
                .any(|r| matches!(r.status, RevokeStatus::Owed | RevokeStatus::Served))
        };
        self.state
            .steps
            .iter()
            .filter(|st| owes(st))
            .map(|st| st.name.clone())
            .collect()
    }

    /// A step's gate, run once now: its stage and report.
    async fn stage_now(&self, name: &str) -> Result<(String, Report), String> {
        let step = self.plan.steps.iter().find(|s| s.name == name).ok_or_else(|| {
            format!("step {name:?} owes a revocation but is no longer in the plan, so rotcheck cannot see its successor served; put the step back or revoke the serial by hand")
        })?;
        let report = gate::stage(&self.suite, &step.gate, Duration::ZERO, step.interval).await?;
        Ok((step.gate.clone(), report))
    }

    /// Revokes every superseded certificate whose successor is served once its window has
    /// passed (waiting for it); an error names what is still owed.
    async fn settle_revocations(&mut self) -> Result<(), String> {
        if self.state.owed_revocations() == 0 {
            return Ok(());
        }
        let steps = self.owing_steps();
        for name in &steps {
            if !self.revocations_in(name, RevokeStatus::Owed).is_empty() {
                let (stage, report) = self.stage_now(name).await?;
                self.see_served(name, &stage, &report)?;
            }
        }
        let due = self
            .state
            .steps
            .iter()
            .flat_map(|st| st.revocations.iter())
            .filter(|r| r.status == RevokeStatus::Served)
            .filter_map(|r| r.due_unix)
            .max();
        if let Some(due) = due {
            revoke::wait_until(due, "the superseded certificate(s)", self.out).await;
            self.revoke_served(&steps).await?;
        }
        match self.state.owed_revocations() {
            0 => Ok(()),
            n => Err(format!("{n} superseded certificate(s) not revoked yet")),
        }
    }

    /// Checks once more that each successor is served, then revokes its predecessor.
    async fn revoke_served(&mut self, steps: &[String]) -> Result<(), String> {
        let settings = settings(&self.suite)?;
        let vault = VaultIo::new(&settings).map_err(|e| e.to_string())?;
        let mut result = Ok(());
        for name in steps {
            if self.revocations_in(name, RevokeStatus::Served).is_empty() {
                continue;
            }
            result = match self.stage_now(name).await {
                Ok((stage, report)) => self.revoke_step(name, &stage, &report, &vault).await,
                Err(e) => Err(e),
            };
            if result.is_err() {
                break;
            }
        }
        for e in vault.close().await {
            self.out.line(format!("warning: {e}"));
        }
        result
    }

    async fn revoke_step(
        &mut self,
        step: &str,
        stage: &str,
        report: &Report,
        vault: &VaultIo,
    ) -> Result<(), String> {
        for i in self.revocations_in(step, RevokeStatus::Served) {
            let r = &mut self.state.step_mut(step).revocations[i];
            if !r
                .new_sha256
                .as_deref()
                .is_some_and(|h| revoke::served_in(report, h))
            {
                revoke::mark_unserved(r, stage);
                let r = r.clone();
                self.save()?;
                self.out.line(r.message.clone().unwrap_or_default());
                self.revocation_event(step, &r, "served", "owed", r.message.as_deref())?;
                continue;
            }
            r.attempts += 1;
            let (mount, serial) = (r.mount.clone(), r.serial.clone());
            self.save()?;
            let sent = revoke::send(vault, &mount, &serial).await;
            self.revoked(step, i, sent)?;
        }
        Ok(())
    }

    /// Records the answer to a revocation request.
    fn revoked(
        &mut self,
        step: &str,
        i: usize,
        sent: Result<(String, Vec<String>), RotateError>,
    ) -> Result<(), String> {
        let r = &mut self.state.step_mut(step).revocations[i];
        let (to, warnings) = match sent {
            Ok((time, warnings)) => {
                r.status = RevokeStatus::Revoked;
                r.revoked_at = Some(time);
                r.message = None;
                ("revoked", warnings)
            }
            Err(e) => {
                r.message = Some(format!(
                    "{}/revoke failed: {e}; serial {} is still owed: fix the cause (the token needs update on {}/revoke), then re-run the plan",
                    r.mount, r.serial, r.mount
                ));
                ("revoke_failed", vec![])
            }
        };
        let r = r.clone();
        self.save()?;
        warnings
            .iter()
            .for_each(|w| self.out.line(format!("Vault warns: {w}")));
        match &r.message {
            None => self.out.line(format!("revoked {}", revoke::describe(&r))),
            Some(m) => self.out.line(m.clone()),
        }
        self.revocation_event(step, &r, "served", to, r.message.as_deref())
    }

    /// The run ends failed while a revocation is owed (a re-run resumes and settles it).
    fn owing(&mut self, msg: String) -> u8 {
        self.state.status = RunStatus::Failed;
        let _ = self
            .save()
            .and_then(|_| self.event(None, "running", "failed", &[], None, Some(&msg)));
        self.out.line(format!("plan stopped: {msg}"));
        let owed: Vec<Revocation> = self
            .state
            .steps
            .iter()
            .flat_map(|st| st.revocations.iter())
            .filter(|r| matches!(r.status, RevokeStatus::Owed | RevokeStatus::Served))
            .cloned()
            .collect();
        for r in &owed {
            let why = r
                .message
                .clone()
                .unwrap_or_else(|| r.status.as_str().into());
            self.out
                .line(format!("  owed: {}: {why}", revoke::describe(r)));
        }
        let c = self.opts.config.display();
        self.out
            .line(format!("state saved in {}", self.paths.state.display()));
        self.out.line(format!(
            "next: fix the cause, then resume with `rotcheck rotate plan -c {c}`"
        ));
        EXIT_FAILED
    }

    fn stopped(&mut self, i: usize, step: &Step, stop: Stop) -> u8 {
        let n = self.plan.steps.len();
        let _ = self.transition(
            &step.name,
            StepStatus::Failed,
            stop.gate.clone(),
            Some(stop.message.clone()),
        );
        self.state.status = RunStatus::Failed;
        let _ = self
            .save()
            .and_then(|_| self.event(None, "running", "failed", &[], None, Some(&step.name)));
        self.out.line(format!(
            "plan stopped at step {}/{n} {:?}: {}",
            i + 1,
            step.name,
            stop.message
        ));
        for f in stop.gate.iter().flat_map(|g| g.failing.iter()) {
            self.out.line(format!("  failing: {f}"));
        }
        let c = self.opts.config.display();
        self.out
            .line(format!("state saved in {}", self.paths.state.display()));
        self.out.line(format!("next: fix the cause, then resume with `rotcheck rotate plan -c {c}` (re-check only: `rotcheck gate -c {c} --stage {}`)", step.gate));
        EXIT_FAILED
    }
}

/// The mount of the step's first issue action.
pub fn issue_mount(step: &Step) -> Option<String> {
    step.actions.iter().find_map(|a| match a {
        Action::Issue(i) => Some(i.mount.clone()),
        _ => None,
    })
}
