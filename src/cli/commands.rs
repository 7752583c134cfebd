//! The commands: each turns resolved settings into library calls and output.
//! Plans go to stdout; diagnostics, prompts and progress to stderr.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{
    ApplyFormat, ApplyOutput, DiagnosticFormat, PlanFormat, ResolveFormat, Settings, Terminal,
};
use crate::backend::Backend;
use crate::backend::open::Target;
use crate::cache::ReadCache;
use crate::diagnostic::Diagnostic;
use crate::input::PlanInput;
use crate::input::{self, LoadError, LoadOptions};
use crate::plan::Plan;
use crate::plan::json;
use crate::plan::reach::ReachDocument;
use crate::plan::render::{self, Style};
use crate::saved::SavedPlan;
use crate::validate;
use crate::{apply, lease, reader};

/// Runs resolved settings.
pub fn run(settings: Settings, term: Terminal) -> anyhow::Result<ExitCode> {
    match settings {
        Settings::Validate { paths, format } => validate(&paths, format, term),
        Settings::Schema => {
            let schema = serde_json::to_string_pretty(&crate::manifest::json_schema())?;
            writeln!(super::stdout::lock(), "{schema}")?;
            Ok(ExitCode::SUCCESS)
        }
        Settings::Plan { run, format, out, detailed_exitcode, redact, expand } => {
            let style = Style { color: term.color, redact, expand };
            plan(&run, format, out.as_deref(), detailed_exitcode, style, term)
        }
        Settings::Resolve { run, format } => resolve(&run, format),
        Settings::Fix { run, check } => fix(&run, check),
        Settings::Show { path, format, redact, expand } => {
            let saved = SavedPlan::load(&path)?;
            let style = Style { color: term.color, redact, expand };
            print_plan(&saved.plan, format, style, &saved.target.name)?;
            Ok(exit_code(&saved.plan, false))
        }
        Settings::Apply { run, auto_approve, expand, lock_timeout, report } => {
            let json = report.format == ApplyFormat::Json;
            let Some((input, target)) = prepare(&run, json)? else { return Ok(ExitCode::from(1)) };
            let cache = ReadCache::open(&target, run.cache_dir.as_deref());
            let job = Apply {
                input,
                target,
                cache,
                saved: None,
                auto_approve,
                expand,
                lock_timeout,
                report,
                term,
            };
            run_apply(job)
        }
        Settings::ApplySaved { path, cache_dir, expand, lock_timeout, report } => {
            let saved = SavedPlan::load(&path)?;
            let cache = ReadCache::open(&saved.target, cache_dir.as_deref());
            let job = Apply {
                input: saved.input,
                target: saved.target,
                cache,
                saved: Some((path, saved.plan)),
                auto_approve: true,
                expand,
                lock_timeout,
                report,
                term,
            };
            run_apply(job)
        }
        Settings::Reconcile(options) => reconcile(options),
        Settings::Emulator(args) => emulator(args),
        Settings::Healthcheck { listen, timeout } => healthcheck(&listen, timeout),
        Settings::Status { listen, json, timeout } => super::remote::status(&listen, json, timeout),
        Settings::Trigger { name, allow_deletes, listen, timeout } => {
            let token = std::env::var("CONTACT_SYNC_TRIGGER_TOKEN").ok().filter(|t| !t.is_empty());
            super::remote::trigger(&listen, &name, allow_deletes, token.as_deref(), timeout)
        }
        Settings::Generated(what) => {
            what.write(&mut super::stdout::lock())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Says on stderr how many users were planned from the read cache, when any were.
fn say_cached(plan: &Plan) {
    let (full, cached) = (plan.survey.read_full, plan.survey.read_incremental);
    if cached > 0 {
        eprintln!(
            "{cached} of {} users unchanged since their last full read (read cache); {full} read in full.",
            full + cached
        );
    }
}

/// `contact-sync plan`: the plan of the tenant as it is, shown, and saved to `out`
/// if asked.
fn plan(
    run: &LoadOptions,
    format: PlanFormat,
    out: Option<&Path>,
    detailed_exitcode: bool,
    style: Style,
    term: Terminal,
) -> anyhow::Result<ExitCode> {
    let json = format == PlanFormat::Json;
    let Some((input, target)) = prepare(run, json)? else { return Ok(ExitCode::from(1)) };
    let backend = target.open_read_only()?;
    let bar = reading_bar(term);
    let progress = |read, total| show_reading(&bar, read, total);
    let cache = ReadCache::open(&target, run.cache_dir.as_deref());
    let plan = runtime()?.block_on(reader::plan_cached(
        backend.as_ref(),
        &input,
        &progress,
        cache.as_ref(),
    ))?;
    bar.finish_and_clear();
    if let Some(cache) = &cache {
        cache.save_or_warn();
    }
    say_cached(&plan);
    let printed = print_plan(&plan, format, style, &target.name);
    let code = exit_code(&plan, detailed_exitcode);
    // Saved even when nobody reads stdout any more (`plan --out p.json | head`).
    if let Some(path) = out {
        SavedPlan::new(plan, input, target).save(path)?;
        eprintln!(
            "Saved the plan to {}; apply it with: contact-sync apply {}",
            path.display(),
            path.display()
        );
    }
    printed?;
    Ok(code)
}

/// `contact-sync resolve`: who each sync reaches; exit 1 when a source or a
/// selector could not be resolved.
fn resolve(run: &LoadOptions, format: ResolveFormat) -> anyhow::Result<ExitCode> {
    let json = format == ResolveFormat::Json;
    let Some((input, target)) = prepare(run, json)? else { return Ok(ExitCode::from(1)) };
    let backend = target.open_read_only()?;
    let reaches = runtime()?.block_on(reader::reach(backend.as_ref(), &input))?;
    let mut out = super::stdout::lock();
    match format {
        ResolveFormat::Text => write!(out, "{}", render::reach_text(&reaches))?,
        ResolveFormat::Json => json::write_document(&ReachDocument::new(&reaches), out)?,
    }
    let failed = reaches.iter().any(|r| {
        !r.source_errors.is_empty()
            || r.reach.as_ref().map_or(true, |reach| !reach.unresolved.is_empty())
    });
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// GET /healthz of a running `reconcile`; 0 on 200. An unspecified address
/// (0.0.0.0, [::]) listens on every interface, loopback included: ask there.
fn healthcheck(listen: &str, timeout: std::time::Duration) -> anyhow::Result<ExitCode> {
    let url = format!("{}/healthz", super::remote::base_url(listen)?);
    let answer = runtime()?.block_on(async {
        // Loopback, never through an HTTP_PROXY the container may have.
        let client = reqwest::Client::builder().timeout(timeout).no_proxy().build()?;
        anyhow::Ok(client.get(&url).send().await?.status())
    });
    match answer {
        Ok(status) if status.is_success() => {
            writeln!(super::stdout::lock(), "{url}: {status}")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            eprintln!("unhealthy: {url} answered {status}");
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {}", crate::text::error_chain(e.as_ref()));
            Ok(ExitCode::from(1))
        }
    }
}

fn reconcile(options: crate::reconcile::Options) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let ok = rt.block_on(async move {
        let cancel = CancellationToken::new();
        tokio::spawn(stop_on_signals(cancel.clone()));
        crate::reconcile::run(options, cancel).await
    })?;
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Cancels `cancel` on the first SIGTERM or Ctrl-C (the loop starts nothing new,
/// lets the users in flight finish, gives the lease up and exits 0); exits at once
/// on the second.
async fn stop_on_signals(cancel: CancellationToken) {
    let Ok(mut stop) = termination_signals() else { return };
    stop.recv().await;
    eprintln!("contact-sync reconcile: stopping (signal again to stop at once)");
    cancel.cancel();
    stop.recv().await;
    eprintln!("contact-sync reconcile: stopped at once. The writer lease lapses by itself.");
    std::process::exit(1);
}

fn emulator(args: super::EmulatorArgs) -> anyhow::Result<ExitCode> {
    use crate::emulator::{Config, quota::Limits};
    for (flag, rate) in
        [("--fail-rate", args.fail_rate), ("--drop-response-rate", args.drop_response_rate)]
    {
        if !(0.0..=1.0).contains(&rate) {
            anyhow::bail!("{flag} must be between 0.0 and 1.0, not {rate}");
        }
    }
    if let Some(out) = &args.export {
        crate::emulator::export(&args.data, out)?;
        eprintln!(
            "contact-sync emulator: wrote the tenant of {} to {}",
            args.data.display(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let seconds = |flag: &str, secs: f64| {
        std::time::Duration::try_from_secs_f64(secs).map_err(|_| {
            anyhow::anyhow!("{flag} must be a number of seconds, 0 or more, not {secs}")
        })
    };
    let list_lag = seconds("--list-lag", args.list_lag)?;
    let sync_token_ttl = seconds("--sync-token-ttl", args.sync_token_ttl)?;
    let sync_lag = seconds("--sync-lag", args.sync_lag)?;
    let mut config = Config::new(args.data);
    config.list_lag = list_lag;
    config.sync_token_ttl = sync_token_ttl;
    config.sync_lag = sync_lag;
    config.fail_rate = args.fail_rate;
    config.drop_response_rate = args.drop_response_rate;
    config.latency = std::time::Duration::from_millis(args.latency_ms);
    config.burst_every = args.burst_429_every;
    config.burst_len = args.burst_429_len;
    config.seed = args.seed;
    config.lenient = args.lenient;
    config.check_responses = args.check_responses;
    config.limits = Limits {
        window: std::time::Duration::from_secs(args.quota_window_secs.max(1)),
        ..Limits::default()
    };
    if let Some(key) = &args.trust_key {
        config.trusted_key = Some(crate::emulator::public_key(key)?);
    }
    let data = config.data.clone();
    let lenient = config.lenient;
    let loaded = crate::emulator::load(config)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("contact-sync emulator serving {} on http://{addr}", data.display());
        eprintln!("  token endpoint: http://{addr}/token   stats: http://{addr}/_emulator/stats");
        if lenient {
            eprintln!("  lenient: requests Google would refuse are served, not refused");
        }
        let mut stop = termination_signals()?;
        let shutdown = async move {
            stop.recv().await;
            eprintln!(
                "contact-sync emulator: stopping; writing the tenant back to {}",
                data.display()
            );
        };
        crate::emulator::serve_until(loaded, listener, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime the commands run their async work on.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn validate(
    paths: &[PathBuf],
    format: DiagnosticFormat,
    term: Terminal,
) -> anyhow::Result<ExitCode> {
    let report = validate::validate_paths(paths);
    let mut out = super::stdout::lock();
    if format == DiagnosticFormat::Json {
        json::write_document(&report.to_json(), out)?;
        return Ok(if report.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    for d in &report.diagnostics {
        if format == DiagnosticFormat::Github {
            writeln!(out, "{}", d.to_github())?;
            continue;
        }
        // On a terminal the snippet says it all: where, what, and the line.
        match term.stdout.then(|| d.snippet(term.color)).flatten() {
            Some(snippet) => writeln!(out, "{snippet}")?,
            None => writeln!(out, "{d}")?,
        }
    }
    writeln!(out, "{report}")?;
    Ok(if report.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Prints diagnostics to stderr (for plan and apply, whose stdout is the plan).
fn print_diagnostics(diagnostics: &[Diagnostic], summary: &str) {
    let mut err = std::io::stderr().lock();
    for d in diagnostics {
        let _ = writeln!(err, "{d}");
    }
    let _ = writeln!(err, "{summary}");
}

/// `contact-sync fix`: the renamed addresses of every manifest rewritten (or, with
/// `check`, only shown), file by file; exit 1 when `check` finds something, or
/// when an address cannot be rewritten in place or a sync's directory entries
/// cannot be read.
fn fix(options: &LoadOptions, check: bool) -> anyhow::Result<ExitCode> {
    use std::collections::BTreeMap;
    let Some((input, target)) = prepare(options, false)? else { return Ok(ExitCode::from(1)) };
    let manifests = validate::validate_paths(&options.paths).manifests;
    let backend = target.open_read_only()?;
    let none = std::collections::BTreeSet::new();
    let resolution =
        runtime()?.block_on(crate::directory::resolve(backend.as_ref(), &input, Some(&none)))?;
    let mut failed = false;
    let mut files: BTreeMap<PathBuf, (&crate::diagnostic::SourceFile, Vec<crate::fix::Edit>)> =
        BTreeMap::new();
    for (sync, resolved) in input.syncs.iter().zip(&resolution.syncs) {
        let resolved = match resolved {
            Ok(r) => r,
            Err(why) => {
                eprintln!("error: sync {}: cannot read its users: {why}", sync.name());
                failed = true;
                continue;
            }
        };
        let Some(located) = manifests.syncs.iter().find(|s| s.value.metadata.name == sync.name())
        else {
            continue;
        };
        let file = &located.doc.file;
        for rename in crate::fix::renames(&located.value, resolved) {
            match crate::fix::edit(&file.path, &file.text, &located.doc.root, &rename) {
                Ok(edit) => {
                    files.entry(file.path.clone()).or_insert((file, Vec::new())).1.push(edit)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
    }
    let mut changed = 0;
    let mut out = super::stdout::lock();
    for (path, (file, edits)) in &files {
        let after = crate::fix::apply(&file.text, edits);
        write!(out, "{}", crate::fix::diff(path, &file.text, &after))?;
        if !check {
            crate::fsutil::write_atomic(path, after.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        changed += edits.len();
    }
    out.flush()?;
    let in_files = match files.len() {
        1 => "1 file".to_owned(),
        n => format!("{n} files"),
    };
    match (changed, check) {
        (0, _) => eprintln!("No renamed address in the manifests."),
        (n, true) => eprintln!(
            "{n} renamed address{} in {in_files}; run `contact-sync fix` to rewrite them",
            if n == 1 { "" } else { "es" }
        ),
        (n, false) => {
            eprintln!("Rewrote {n} renamed address{} in {in_files}", if n == 1 { "" } else { "es" })
        }
    }
    Ok(if failed || (check && changed > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Validates the manifests and resolves the Workspace; `None` when they are
/// invalid (the diagnostics have been printed to stderr, and with `json` the
/// document of `validate --format json` to stdout, so a script reads why).
fn prepare(options: &LoadOptions, json: bool) -> anyhow::Result<Option<(PlanInput, Target)>> {
    match input::load(options) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(LoadError::Invalid(report)) => {
            print_diagnostics(&report.diagnostics, &report.to_string());
            if json {
                json::write_document(&report.to_json(), super::stdout::lock())?;
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints a plan to stdout; `workspace` (the Workspace's name, may be empty)
/// heads the markdown form, whose rename fixes are read from the manifest files.
fn print_plan(
    plan: &Plan,
    format: PlanFormat,
    style: Style,
    workspace: &str,
) -> anyhow::Result<()> {
    let mut out = super::stdout::lock();
    match format {
        PlanFormat::Text => write!(out, "{}", render::text(plan, style))?,
        PlanFormat::Markdown => {
            let name = Some(workspace).filter(|n| !n.is_empty());
            let read = |path: &Path| std::fs::read_to_string(path).ok();
            write!(out, "{}", render::markdown(plan, style, name, &read))?
        }
        PlanFormat::Json => json::write(plan, style.redact, &mut out)?,
    }
    Ok(())
}

/// Exit code of `plan`: 1 with errors; with `--detailed-exitcode`, 2 with changes.
fn exit_code(plan: &Plan, detailed: bool) -> ExitCode {
    if plan.summary.errors > 0 {
        ExitCode::from(1)
    } else if detailed && plan.summary.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// SIGTERM (how containers and service managers stop a process) and SIGINT (Ctrl-C).
struct TerminationSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl TerminationSignals {
    /// Waits for the next of either.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Catches SIGTERM and SIGINT from now on (they no longer end the process).
fn termination_signals() -> std::io::Result<TerminationSignals> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(TerminationSignals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
    })
}

fn run_apply(job: Apply) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let result = rt.block_on(job.run());
    // A prompt cut short by an interruption still waits for a line in its own
    // thread: do not wait for it.
    rt.shutdown_background();
    result
}

/// One `apply`: take the writer lease, plan (and, for a saved plan, check that the
/// plan is still the one saved), confirm, apply, give the lease up — also when
/// anything on the way fails or the process is interrupted.
struct Apply {
    input: PlanInput,
    target: Target,
    /// The read cache, for the google backend.
    cache: Option<ReadCache>,
    /// A saved plan to apply exactly: its path and the plan.
    saved: Option<(PathBuf, Plan)>,
    auto_approve: bool,
    /// `--expand`: every destination on its own in the plan shown.
    expand: bool,
    lock_timeout: Duration,
    /// `--redact` and `--format`.
    report: ApplyOutput,
    term: Terminal,
}

impl Apply {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let backend = self.target.open()?;
        let cancel = CancellationToken::new();
        tokio::spawn(interrupt_on_signals(cancel.clone()));
        let holder = lease::holder_name("contact-sync apply");
        let mut waiting_since = None;
        let lease = lease::acquire(backend.clone(), holder, self.lock_timeout, &cancel, |h, waited| {
            // Say so when the wait begins, then every 30 seconds.
            let say = waiting_since.is_none_or(|last: Duration| waited >= last + Duration::from_secs(30));
            if say {
                waiting_since = Some(waited);
                eprintln!(
                    "Waiting for the writer lease, held by {h} (waited {}s of --lock-timeout {}s)…",
                    waited.as_secs(),
                    self.lock_timeout.as_secs()
                );
            }
        })
        .await?;
        if let Some(h) = &lease.took_over {
            eprintln!("Took over the writer lease from {h}: it had lapsed without being renewed.");
        }
        let result = self.under_lease(backend.as_ref(), &cancel).await;
        let ttl = lease.ttl();
        if let Err(e) = lease.release().await {
            eprintln!(
                "warning: cannot give the writer lease up ({e}); it lapses by itself within {}s",
                ttl.as_secs()
            );
        }
        result
    }

    /// Plans, checks the plan, shows it, confirms and applies it: the library
    /// decides, this renders and maps the outcome to an exit code.
    async fn under_lease(
        &self,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> anyhow::Result<ExitCode> {
        let plan = self.read_plan(backend, cancel).await?;
        if let Some(cache) = &self.cache {
            // Saved before anything is written: a user about to be written is
            // read in full next time, however this run ends.
            cache.forget_planned(&plan);
            cache.save_or_warn();
        }
        let Some(checked) = self.check(&plan) else { return Ok(ExitCode::from(1)) };
        if let Some(note) = checked.note() {
            eprintln!("{note}");
        }
        if !self.show(&plan)? {
            return Ok(ExitCode::from(1));
        }
        if !plan.summary.has_changes() {
            return self.apply_no_changes(checked, &plan, backend, cancel).await;
        }
        if !self.approved(cancel).await? {
            return Ok(ExitCode::from(1));
        }
        self.apply_changes(checked, &plan, backend, cancel).await
    }

    /// The library's check of `plan`: `None`, said, when it refuses it (a stale
    /// saved plan, an adoption that takes over less than asked).
    fn check<'a>(&'a self, plan: &'a Plan) -> Option<apply::Checked<'a>> {
        let mut job = apply::Apply::new(plan).adopt(self.input.adopt.as_ref());
        if let Some((path, saved)) = &self.saved {
            job = job.saved(path, saved);
        }
        job.check().inspect_err(|refusal| eprintln!("error: {refusal}")).ok()
    }

    /// A plan without changes, applied without asking: only the inventory may
    /// need bringing up to date.
    async fn apply_no_changes(
        &self,
        checked: apply::Checked<'_>,
        plan: &Plan,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> anyhow::Result<ExitCode> {
        let outcome = checked.run(backend, cancel, &|_| {}).await;
        if self.report.format == ApplyFormat::Json {
            print_json_report(&outcome.report, plan, self.report.redact)?;
        } else {
            print_inventory_notes(&outcome.report)?;
        }
        Ok(exit_of(outcome.exit))
    }

    /// The approved plan applied with a progress bar, each destination's line as
    /// it finishes, then the report.
    async fn apply_changes(
        &self,
        checked: apply::Checked<'_>,
        plan: &Plan,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> anyhow::Result<ExitCode> {
        let json = self.report.format == ApplyFormat::Json;
        if !json {
            // Each destination's line follows as it finishes.
            let _ = writeln!(super::stdout::lock());
        }
        let bar = progress_bar(apply::work(plan), self.term);
        let outcome = checked
            .run(backend, cancel, &|done| {
                bar.inc(1);
                if !json {
                    bar.suspend(|| print_destination(done));
                }
            })
            .await;
        bar.finish_and_clear();
        let printed = if json {
            print_json_report(&outcome.report, plan, self.report.redact)
        } else {
            print_report(&outcome.report, plan)
        };
        // What was applied decides the exit code, whether or not anyone still reads.
        if let Err(e) = printed
            && !super::stdout::closed(&e)
        {
            return Err(e);
        }
        Ok(exit_of(outcome.exit))
    }

    /// The plan of the tenant as it is now, read with a progress bar.
    async fn read_plan(
        &self,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Plan> {
        let bar = reading_bar(self.term);
        let progress = |read, total| show_reading(&bar, read, total);
        let plan = tokio::select! {
            plan = reader::plan_cached(backend, &self.input, &progress, self.cache.as_ref()) => plan?,
            () = cancel.cancelled() => anyhow::bail!("interrupted while reading the tenant; nothing was applied"),
        };
        bar.finish_and_clear();
        say_cached(&plan);
        Ok(plan)
    }

    /// Shows the plan as text (not for `--format json`, whose document holds it);
    /// `false` when nobody could see it, so nothing may be applied.
    fn show(&self, plan: &Plan) -> anyhow::Result<bool> {
        if self.report.format == ApplyFormat::Json {
            return Ok(true);
        }
        let style =
            Style { color: self.term.color, redact: self.report.redact, expand: self.expand };
        match print_plan(plan, PlanFormat::Text, style, "") {
            Ok(()) => Ok(true),
            Err(e) if super::stdout::closed(&e) => {
                // Nobody saw the plan: apply nothing rather than what was not shown.
                eprintln!(
                    "error: standard output was closed before the plan was shown; nothing was applied"
                );
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the changes may be applied: `--auto-approve`, or `yes` at the prompt.
    async fn approved(&self, cancel: &CancellationToken) -> anyhow::Result<bool> {
        if self.auto_approve {
            return Ok(true);
        }
        if !self.term.stdin {
            eprintln!(
                "error: apply needs --auto-approve when stdin is not a terminal. Nothing was applied."
            );
            return Ok(false);
        }
        let answer = tokio::task::spawn_blocking(confirm);
        let approved = tokio::select! {
            answer = answer => answer??,
            () = cancel.cancelled() => false,
        };
        if !approved {
            eprintln!("Apply cancelled.");
        }
        Ok(approved)
    }
}

/// The exit code of an apply: 1 unless it did all it was asked.
fn exit_of(exit: apply::Exit) -> ExitCode {
    match exit {
        apply::Exit::Success => ExitCode::SUCCESS,
        apply::Exit::Failed => ExitCode::from(1),
    }
}

/// Cancels `cancel` on the first SIGTERM or Ctrl-C (the apply finishes the users in
/// flight, starts no other and gives the lease up); exits at once on the second.
async fn interrupt_on_signals(cancel: CancellationToken) {
    let Ok(mut stop) = termination_signals() else { return };
    let mut signals = 0;
    loop {
        stop.recv().await;
        signals += 1;
        if signals == 1 {
            eprintln!(
                "\nInterrupted: finishing the users in flight, starting no other, then giving the \
                 writer lease up. Interrupt again to stop at once."
            );
            cancel.cancel();
        } else {
            eprintln!("Stopped at once. The writer lease lapses by itself.");
            std::process::exit(1);
        }
    }
}

fn confirm() -> anyhow::Result<bool> {
    eprint!("\nApply these changes? Only 'yes' is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// "reading the tenant: 120/4000 users" on stderr while a plan reads, on a
/// terminal only.
fn reading_bar(term: Terminal) -> indicatif::ProgressBar {
    if !term.stderr {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} reading the tenant: {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message("the directory and the sources");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_reading(bar: &indicatif::ProgressBar, read: usize, total: usize) {
    if read == 0 {
        bar.set_length(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} reading the tenant: {pos}/{len} users {wide_bar} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    bar.set_position(read as u64);
}

fn progress_bar(len: usize, term: Terminal) -> indicatif::ProgressBar {
    if !term.stderr || len < 2 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} applying {pos}/{len} destinations {wide_bar} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// One destination's line, printed as it finishes: what was applied on stdout, a
/// failure in full on stderr. (A stdout nobody reads any more is not an error
/// here: the report at the end decides.)
fn print_destination(d: &apply::DestinationReport) {
    use crate::text::printable as p;
    let (sync, user) = (p(&d.sync), p(&d.user));
    let mut out = super::stdout::lock();
    match &d.error {
        None => {
            let _ = writeln!(
                out,
                "{sync}  {user}: {} added, {} changed, {} deleted",
                d.added, d.changed, d.deleted
            );
        }
        Some(e) => {
            let _ = writeln!(out, "! {sync}  {user}: failed");
            eprintln!("error: {sync}  {user}: {}", crate::text::error_chain(e));
        }
    }
}

/// The end of the apply report, after the destinations' lines: whether they were
/// saved, the inventory, and a last line that accounts for everything.
fn print_report(report: &apply::Report, plan: &Plan) -> anyhow::Result<()> {
    let mut out = super::stdout::lock();
    if let Some(e) = &report.commit_error {
        if !report.destinations.is_empty() {
            writeln!(
                out,
                "! none of the {} destinations above was saved",
                report.destinations.len()
            )?;
        }
        eprintln!("error: nothing was saved: {}", crate::text::error_chain(e));
    }
    print_inventory_notes(report)?;
    writeln!(out, "{}", report.summary(plan.summary.errors))?;
    Ok(())
}

/// `apply --format json`: one document with the plan, what was done per
/// destination, and the result.
fn print_json_report(report: &apply::Report, plan: &Plan, redact: bool) -> anyhow::Result<()> {
    let saved = report.commit_error.is_none();
    let destinations: Vec<serde_json::Value> = report
        .destinations
        .iter()
        .map(|d| {
            let status = match (&d.error, saved) {
                (Some(_), _) => "failed",
                (None, true) => "applied",
                (None, false) => "notSaved",
            };
            serde_json::json!({
                "sync": d.sync,
                "user": d.user,
                "status": status,
                "create": d.added,
                "update": d.changed,
                "delete": d.deleted,
                "error": d.error.as_ref().map(|e| crate::text::error_chain(e)),
            })
        })
        .collect();
    let (added, changed, deleted) = if saved { report.totals() } else { (0, 0, 0) };
    let failed = report.failed() || plan.summary.errors > 0;
    let mut errors: Vec<String> = Vec::new();
    errors.extend(
        report
            .commit_error
            .as_ref()
            .map(|e| format!("nothing was saved: {}", crate::text::error_chain(e))),
    );
    errors.extend(report.inventory_error.as_ref().map(ToString::to_string));
    let document = serde_json::json!({
        "formatVersion": "1",
        "result": if failed { "failed" } else { "complete" },
        "summary": report.summary(plan.summary.errors),
        "create": added,
        "update": changed,
        "delete": deleted,
        "destinations": destinations,
        "notStarted": report.not_started,
        "heldBack": report.held_back,
        "errors": errors,
        "warnings": report.inventory_warning.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "plan": plan.to_json(redact),
    });
    json::write_document(&document, super::stdout::lock())?;
    Ok(())
}

/// What went wrong keeping the inventory, on stderr.
fn print_inventory_notes(report: &apply::Report) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    if let Some(e) = &report.inventory_error {
        writeln!(err, "error: {e}")?;
    }
    if let Some(w) = &report.inventory_warning {
        writeln!(err, "warning: {w}")?;
    }
    Ok(())
}
