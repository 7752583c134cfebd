//! The command line: clap types, resolved into settings in one step, and the
//! commands on top of the library. Nothing below this module sees clap.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::validate;

/// Keep Google Workspace users supplied with the contacts they need, declared as
/// YAML manifests in git.
#[derive(Debug, Parser)]
#[command(name = "contact-sync", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check manifests against the schema and the semantic rules; exit 1 on any error.
    Validate {
        /// Manifest files or folders (searched recursively for *.yaml and *.yml).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// How to print errors: `text` (file:line:col lines, with a snippet on a
        /// terminal) or `github` (workflow annotations for GitHub Actions).
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Print the JSON Schema of the manifests.
    Schema,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// `file:line:col: /pointer: message`.
    Text,
    /// `::error file=…,line=…,col=…::message`.
    Github,
}

/// What the command line asks for, resolved: no clap types past this point.
#[derive(Debug)]
pub enum Settings {
    /// `validate`.
    Validate {
        /// Paths to read.
        paths: Vec<PathBuf>,
        /// Output format.
        format: DiagnosticFormat,
        /// Whether to add snippets (stdout is a terminal).
        snippets: bool,
        /// Whether snippets may use colour.
        color: bool,
    },
    /// `schema`.
    Schema,
}

impl Settings {
    /// Resolves parsed arguments against the environment (terminal, NO_COLOR).
    pub fn resolve(cli: Cli) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none();
        match cli.command {
            Command::Validate { paths, format } => {
                Settings::Validate { paths, format, snippets: terminal, color }
            }
            Command::Schema => Settings::Schema,
        }
    }
}

/// Parses the command line and runs it. Exit codes follow DESIGN §2: a usage
/// error is exit 1 like any other error, never clap's 2 (which `plan
/// --detailed-exitcode` reserves for "changes").
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    init_tracing();
    match run(Settings::resolve(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONTACT_SYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs resolved settings.
pub fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    match settings {
        Settings::Validate { paths, format, snippets, color } => {
            let report = validate::validate_paths(&paths);
            let mut out = std::io::stdout().lock();
            for d in &report.diagnostics {
                match format {
                    DiagnosticFormat::Text => {
                        writeln!(out, "{d}")?;
                        if let Some(snippet) = d.snippet(color).filter(|_| snippets) {
                            writeln!(out, "{snippet}")?;
                        }
                    }
                    DiagnosticFormat::Github => writeln!(out, "{}", d.to_github())?,
                }
            }
            writeln!(out, "{report}")?;
            Ok(if report.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Settings::Schema => {
            let schema = serde_json::to_string_pretty(&crate::manifest::json_schema())?;
            writeln!(std::io::stdout().lock(), "{schema}")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
