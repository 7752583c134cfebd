//! The commands: each turns resolved settings into library calls and output.
//! Plans go to stdout; diagnostics, prompts and progress to stderr.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{DiagnosticFormat, PlanFormat, RunSettings, Settings, Terminal};
use crate::diagnostic::Diagnostic;
use crate::plan::render::{self, Style};
use crate::plan::{Plan, PlanInput};
use crate::validate;
use crate::workspace::{self, LoadError, LoadOptions, Target};
use crate::{apply, inventory};

/// A plan saved by `plan --out`: the plan with its operations, what it was
/// computed from, and where the tenant is.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The plan (DESIGN §3 JSON plus the operations and the fingerprint).
    #[serde(flatten)]
    pub plan: Plan,
    /// The manifests as the planner saw them.
    pub input: PlanInput,
    /// The tenant.
    pub workspace: Target,
}

/// Runs resolved settings.
pub fn run(settings: Settings, term: Terminal) -> anyhow::Result<ExitCode> {
    match settings {
        Settings::Validate { paths, format } => validate(&paths, format, term),
        Settings::Schema => {
            let schema = serde_json::to_string_pretty(&crate::manifest::json_schema())?;
            writeln!(std::io::stdout().lock(), "{schema}")?;
            Ok(ExitCode::SUCCESS)
        }
        Settings::Plan { run, format, out, detailed_exitcode, redact } => {
            let Some((input, target)) = prepare(&run)? else { return Ok(ExitCode::from(1)) };
            let backend = target.open()?;
            let plan = runtime()?.block_on(inventory::plan(backend.as_ref(), &input))?;
            print_plan(&plan, format, Style { color: term.color, redact })?;
            if let Some(path) = out {
                save_plan(&path, SavedPlan { plan: plan.clone(), input, workspace: target })?;
                eprintln!(
                    "Saved the plan to {}; apply it with: contact-sync apply {}",
                    path.display(),
                    path.display()
                );
            }
            Ok(exit_code(&plan, detailed_exitcode))
        }
        Settings::Apply { run, auto_approve } => apply(&run, auto_approve, term),
        Settings::Emulator(args) => emulator(args),
    }
}

fn emulator(args: super::EmulatorArgs) -> anyhow::Result<ExitCode> {
    use crate::emulator::{Config, quota::Limits};
    if !(0.0..=1.0).contains(&args.fail_rate) {
        anyhow::bail!("--fail-rate must be between 0.0 and 1.0");
    }
    let mut config = Config::new(args.data);
    config.fail_rate = args.fail_rate;
    config.latency = std::time::Duration::from_millis(args.latency_ms);
    config.burst_every = args.burst_429_every;
    config.burst_len = args.burst_429_len;
    config.seed = args.seed;
    config.limits = Limits {
        window: std::time::Duration::from_secs(args.quota_window_secs.max(1)),
        ..Limits::default()
    };
    if let Some(key) = &args.trust_key {
        config.trusted_key = Some(crate::emulator::public_key(key)?);
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("contact-sync emulator serving {} on http://{addr}", config.data.display());
        eprintln!("  token endpoint: http://{addr}/token   stats: http://{addr}/_emulator/stats");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        crate::emulator::serve_until(config, listener, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn validate(
    paths: &[PathBuf],
    format: DiagnosticFormat,
    term: Terminal,
) -> anyhow::Result<ExitCode> {
    let report = validate::validate_paths(paths);
    let mut out = std::io::stdout().lock();
    for d in &report.diagnostics {
        match format {
            DiagnosticFormat::Text => {
                writeln!(out, "{d}")?;
                if let Some(snippet) = d.snippet(term.color).filter(|_| term.stdout) {
                    writeln!(out, "{snippet}")?;
                }
            }
            DiagnosticFormat::Github => writeln!(out, "{}", d.to_github())?,
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

/// Validates the manifests and resolves the Workspace; `None` when they are
/// invalid (the diagnostics have been printed to stderr).
fn prepare(run: &RunSettings) -> anyhow::Result<Option<(PlanInput, Target)>> {
    let options = LoadOptions {
        paths: run.paths.clone(),
        workspace: run.workspace.clone(),
        syncs: run.syncs.clone(),
        allow_deletes: run.allow_deletes,
    };
    match workspace::load(&options) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(LoadError::Invalid(report)) => {
            print_diagnostics(&report.diagnostics, &report.to_string());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_plan(plan: &Plan, format: PlanFormat, style: Style) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        PlanFormat::Text => write!(out, "{}", render::text(plan, style))?,
        PlanFormat::Markdown => write!(out, "{}", render::markdown(plan, style.redact))?,
        PlanFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&plan.to_json(style.redact))?)?
        }
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

/// Writes a saved plan atomically (it is read back by `apply`).
fn save_plan(path: &Path, saved: SavedPlan) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, &saved)?;
    tmp.write_all(b"\n")?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn is_saved_plan(paths: &[PathBuf]) -> bool {
    matches!(paths, [p] if p.is_file() && p.extension().is_some_and(|e| e == "json"))
}

fn apply(run: &RunSettings, auto_approve: bool, term: Terminal) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    // One backend for planning and applying: the google backend's tokens are reused.
    let (plan, backend) = if is_saved_plan(&run.paths) {
        let path = &run.paths[0];
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let saved: SavedPlan = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a plan saved by `contact-sync plan --out`", path.display())
        })?;
        let backend = saved.workspace.open()?;
        let fresh = rt.block_on(inventory::plan(backend.as_ref(), &saved.input))?;
        if fresh.fingerprint != saved.plan.fingerprint {
            eprintln!(
                "error: the saved plan {} is stale: contacts, groups or users changed since it was made, \
                 so applying it could undo those changes. Nothing was applied. Run plan again.",
                path.display()
            );
            return Ok(ExitCode::from(1));
        }
        (saved.plan, backend)
    } else {
        let Some((input, target)) = prepare(run)? else { return Ok(ExitCode::from(1)) };
        let backend = target.open()?;
        let plan = rt.block_on(inventory::plan(backend.as_ref(), &input))?;
        (plan, backend)
    };
    print_plan(&plan, PlanFormat::Text, Style { color: term.color, redact: false })?;
    if !plan.summary.has_changes() {
        return Ok(exit_code(&plan, false));
    }
    if !auto_approve {
        if !term.stdin {
            eprintln!(
                "error: apply needs --auto-approve when stdin is not a terminal. Nothing was applied."
            );
            return Ok(ExitCode::from(1));
        }
        if !confirm()? {
            eprintln!("Apply cancelled.");
            return Ok(ExitCode::from(1));
        }
    }
    let bar = progress_bar(apply::work(&plan), term);
    let report = rt.block_on(apply::apply(backend.as_ref(), &plan, &|_| bar.inc(1)));
    bar.finish_and_clear();
    print_report(&report)?;
    Ok(if report.failed() || plan.summary.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn confirm() -> anyhow::Result<bool> {
    eprint!("\nApply these changes? Only 'yes' is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
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

fn print_report(report: &apply::Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    for d in &report.destinations {
        match &d.error {
            None => writeln!(
                out,
                "{}  {}: {} added, {} changed, {} deleted",
                d.sync, d.user, d.added, d.changed, d.deleted
            )?,
            Some(e) => writeln!(out, "! {}  {}: failed: {e}", d.sync, d.user)?,
        }
    }
    for sync in &report.held_back {
        writeln!(out, "! {sync}: not applied, the plan has errors for this sync")?;
    }
    if let Some(e) = &report.commit_error {
        writeln!(out, "! nothing was saved: {e}")?;
        return Ok(());
    }
    let (added, changed, deleted) = report.totals();
    let failed = report.destinations.iter().filter(|d| d.error.is_some()).count();
    if failed > 0 {
        writeln!(
            out,
            "Apply finished with {failed} failed destination(s): {added} added, {changed} changed, {deleted} deleted."
        )?;
    } else {
        writeln!(out, "Apply complete: {added} added, {changed} changed, {deleted} deleted.")?;
    }
    Ok(())
}
