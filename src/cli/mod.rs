//! The command line: clap types, resolved into [`Settings`] in one step, and the
//! commands on top of the library. Nothing below this module sees clap.

mod commands;
mod remote;
mod stdout;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::input::LoadOptions;

/// Keep Google Workspace users supplied with the contacts they need, declared as
/// YAML manifests in git.
#[derive(Debug, Parser)]
#[command(name = "contact-sync", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No colour in the output (also when NO_COLOR is set, TERM is dumb, or stdout
    /// is not a terminal).
    #[arg(long, global = true)]
    no_color: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check manifests against the schema and the semantic rules; exit 1 on any error.
    Validate {
        /// Manifest files or folders (searched recursively for *.yaml and *.yml).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// How to print errors: `text` (file:line:col lines; on a terminal, each
        /// with a snippet of the file), `github` (workflow annotations for GitHub
        /// Actions) or `json`.
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Print the JSON Schema of the manifests.
    Schema,
    /// Show what apply would change, for every sync and destination user.
    Plan {
        #[command(flatten)]
        common: CommonArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Also save the plan (with a fingerprint of the actual state) for `apply PLAN.json`.
        #[arg(long, value_name = "PLAN.json")]
        out: Option<PathBuf>,
        /// Exit 2 when the plan has changes and no errors (0: no changes, 1: errors).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Hide contact field values and addresses in the output.
        #[arg(long)]
        redact: bool,
        /// Show every destination user on its own. Without it, the text and markdown
        /// plans show the users of a sync that get the same changes (or are up to
        /// date) once, as a group: "4000 users (ann@example.com, bob@example.com,
        /// and 3998 more), each:" and the changes below. JSON always lists every
        /// destination.
        #[arg(long)]
        expand: bool,
    },
    /// Show whom each sync's destination selectors reach, and why.
    ///
    /// Every user by address, group, org unit or domain, who is excluded and by which rule, who is skipped
    /// (suspended, archived), and which addresses and groups do not resolve or name a
    /// renamed user. Reads the directory only, no contacts; exit 1 when a sync has
    /// errors.
    Resolve {
        /// Manifest files or folders.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// A file with the Workspace document to use instead of the manifests' own.
        #[arg(long, value_name = "FILE")]
        workspace: Option<PathBuf>,
        /// Only this sync (repeatable).
        #[arg(long = "sync", value_name = "NAME")]
        syncs: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ResolveFormat::Text)]
        format: ResolveFormat,
    },
    /// Rewrite every address of a renamed user in the manifests to the user's
    /// new primary address.
    ///
    /// `source.user`, `destinations.users` and `destinations.exclude.users` that
    /// name a user by an address that is now an alias (the user was renamed) are
    /// changed in place: only that value's text changes — comments, order, quoting
    /// and layout stay — and each file is written whole or not at all. Prints the
    /// change as a unified diff. Reads the directory only, no contacts.
    Fix {
        /// Manifest files or folders.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// A file with the Workspace document to use instead of the manifests' own.
        #[arg(long, value_name = "FILE")]
        workspace: Option<PathBuf>,
        /// Change nothing: print the diff, and exit 1 when something would change.
        #[arg(long)]
        check: bool,
    },
    /// Print a plan saved with `plan --out`, as `plan` printed it.
    ///
    /// Reads no tenant: it shows what `apply PLAN.json` would apply, if the tenant
    /// has not moved since.
    Show {
        /// The saved plan.
        #[arg(value_name = "PLAN.json")]
        plan: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Hide contact field values and addresses in the output.
        #[arg(long)]
        redact: bool,
        /// Show every destination user on its own (text and markdown).
        #[arg(long)]
        expand: bool,
    },
    /// Plan and apply the changes; or apply a plan saved with `plan --out`, exactly
    /// as saved or not at all (no prompt: the saved plan was the review).
    ///
    /// An apply holds the tenant's writer lease from before it reads the tenant
    /// until its last write, so two applies (a person, a CI job, the reconcile loop)
    /// never write at once: the second waits for the first, up to --lock-timeout.
    #[command(mut_arg("paths", |a| a.help(
        "Manifest files or folders; or a single PLAN.json saved by `plan --out`, applied exactly as saved"
    )))]
    Apply {
        #[command(flatten)]
        common: CommonArgs,
        /// Apply without asking (required when stdin is not a terminal).
        #[arg(long)]
        auto_approve: bool,
        /// Show every destination user on its own in the plan shown before applying,
        /// not the users that get the same changes as one group.
        #[arg(long)]
        expand: bool,
        /// How long to wait for another apply that holds the writer lease, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = crate::lease::DEFAULT_WAIT.as_secs())]
        lock_timeout: u64,
        /// Hide contact field values and addresses in the plan shown (and in the
        /// plan inside the JSON report).
        #[arg(long)]
        redact: bool,
        /// `text`: the plan, then a line per destination as it finishes and the
        /// summary. `json`: nothing but one JSON document at the end — the plan,
        /// per destination what was done and any error, and the result (needs
        /// --auto-approve or a saved plan: there is no prompt).
        #[arg(long, value_enum, default_value_t = ApplyFormat::Text)]
        format: ApplyFormat,
    },
    /// Take over existing contact groups of the target name, on request.
    ///
    /// A destination that already has a group named like the sync's target group, not written by contact-sync (a
    /// targetGroupConflict in the plan), gets that group marked as the sync's. The
    /// contacts in it that match a source contact (same e-mail address, else same
    /// name) become that contact's copies and are brought in line with it; every
    /// other contact in it is left alone, and none is deleted. Shows the plan of
    /// just that first and asks, like apply.
    Adopt {
        /// Manifest files or folders.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// A file with the Workspace document to use instead of the manifests' own.
        #[arg(long, value_name = "FILE")]
        workspace: Option<PathBuf>,
        /// The sync whose target groups to take over.
        #[arg(long = "sync", value_name = "NAME", required = true)]
        sync: String,
        /// Only this destination (repeatable); without it, every destination with
        /// such a group.
        #[arg(long = "user", value_name = "EMAIL")]
        users: Vec<String>,
        /// Apply without asking (required when stdin is not a terminal).
        #[arg(long)]
        auto_approve: bool,
        /// Hide contact field values and addresses in the plan shown.
        #[arg(long)]
        redact: bool,
        /// How long to wait for another apply that holds the writer lease, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = crate::lease::DEFAULT_WAIT.as_secs())]
        lock_timeout: u64,
    },
    /// Keep every destination in step with the manifests, on each sync's schedule,
    /// until stopped (SIGTERM/SIGINT): the long-running loop for a container.
    ///
    /// Manifests are watched; a bad edit keeps the last good ones running. Serves
    /// /healthz, /readyz, /metrics (Prometheus), /status (JSON) and
    /// POST /syncs/NAME/run on --listen. That endpoint requires
    /// `Authorization: Bearer $CONTACT_SYNC_TRIGGER_TOKEN` when the variable is set,
    /// and is disabled when it is not and the address is not loopback.
    Reconcile {
        /// Manifest files or folders (watched for changes).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// A file with the Workspace document to use instead of the manifests' own.
        #[arg(long, value_name = "FILE")]
        workspace: Option<PathBuf>,
        /// Address of the HTTP server (the container image sets 0.0.0.0:9090).
        #[arg(long, env = "CONTACT_SYNC_LISTEN", default_value = "127.0.0.1:9090")]
        listen: String,
        /// Run every sync once (manual ones too), then exit: 0 when every run
        /// succeeded, 1 otherwise.
        #[arg(long)]
        once: bool,
        /// Between scheduled runs, look this often (seconds) for directory changes
        /// — a new member of a destination group or org unit, a renamed or
        /// suspended user, an edited source group — with a few directory reads, and
        /// run the syncs they concern. 0 turns the check off.
        #[arg(long, value_name = "SECS", default_value_t = 900)]
        check_interval: u64,
        /// A run reads the users its sync selects and those the inventory lists as
        /// holding synced contacts; once the inventory's last full scan is older than
        /// this (seconds; a week by default), the next run reads every user instead,
        /// finds contacts the inventory does not list and rebuilds it. 0: never on a
        /// schedule (a missing or damaged inventory still causes one).
        #[arg(long, value_name = "SECS", default_value_t = 7 * 24 * 3600)]
        full_scan_every: u64,
        /// Folder of the read cache: per user, the sync tokens of its listings and
        /// what its last full read concluded, so that a quiet night reads only
        /// what changed. Default: $XDG_CACHE_HOME/contact-sync or
        /// ~/.cache/contact-sync (the container image: /var/cache/contact-sync).
        /// Losing it only makes the next run read every user in full.
        #[arg(long, value_name = "DIR", env = "CONTACT_SYNC_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Serve the Google APIs contact-sync uses from a local workspace file, for
    /// testing the google backend without Google.
    Emulator(EmulatorArgs),
    /// Ask a running `reconcile` whether it is alive (a container health check).
    ///
    /// GET /healthz on its address; exit 0 on 200 and 1 otherwise. The image has no
    /// curl: this is its HEALTHCHECK.
    Healthcheck {
        /// The address `reconcile` listens on; 0.0.0.0 and [::] are asked on loopback.
        #[arg(long, env = "CONTACT_SYNC_LISTEN", default_value = "127.0.0.1:9090")]
        listen: String,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 5)]
        timeout: u64,
    },
    /// Print what a running `reconcile` reports, per sync (like `argocd app get`).
    ///
    /// GET /status on its address: for each sync whether it is in sync, out of
    /// sync (not run yet), syncing, held back (a rename, a conflict, the deletion
    /// guard) or failed, its last run, the next, and the errors. Exit 0 when no
    /// sync is held back or failed and the manifests have no errors; 1 otherwise,
    /// or when the loop cannot be reached.
    Status {
        /// The address `reconcile` listens on; 0.0.0.0 and [::] are asked on loopback.
        #[arg(long, env = "CONTACT_SYNC_LISTEN", default_value = "127.0.0.1:9090")]
        listen: String,
        /// `text` for people, `json` for /status as the loop serves it.
        #[arg(long, value_enum, default_value_t = ResolveFormat::Text)]
        format: ResolveFormat,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
    },
    /// Ask a running `reconcile` to run a sync now (like `argocd app sync`).
    ///
    /// POST /syncs/NAME/run on its address, with $CONTACT_SYNC_TRIGGER_TOKEN as the
    /// bearer token when it is set (the loop requires it when it has one). Exit 0
    /// when the run was accepted; 1 for an unknown sync, a sync already running, a
    /// refused token or a loop that cannot be reached.
    Trigger {
        /// The sync's `metadata.name`.
        name: String,
        /// Approve, once, exactly this many deletions the sync's deletion guard
        /// refused: the run may delete that many past maxDeletePercent, and is
        /// refused again if it would delete another number.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
        /// The address `reconcile` listens on; 0.0.0.0 and [::] are asked on loopback.
        #[arg(long, env = "CONTACT_SYNC_LISTEN", default_value = "127.0.0.1:9090")]
        listen: String,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
    },
    /// Print a shell completion script.
    ///
    /// `contact-sync completions bash > /etc/bash_completion.d/contact-sync` (zsh:
    /// a file `_contact-sync` in a folder of $fpath; fish:
    /// ~/.config/fish/completions/contact-sync.fish).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    ///
    /// `contact-sync man | man -l -`. With --dir, write contact-sync.1 and a page
    /// per command (contact-sync-plan.1, …) into that folder instead.
    Man {
        /// Folder to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Options of `contact-sync emulator`.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// The tenant to serve: a local workspace file, or a tenant database (a path
    /// ending in .db, .sqlite or .sqlite3). A workspace file is served from a
    /// database beside it (.NAME.db, kept for the next start unless the file is
    /// edited meanwhile) and written back when the emulator stops. Edits made to
    /// it while the emulator runs are loaded, unless that would drop writes not
    /// yet written back.
    #[arg(long, value_name = "WORKSPACE.yaml")]
    pub data: PathBuf,
    /// Do not serve: write the tenant as the emulator would serve it (with the
    /// writes of an earlier run not yet written back to the data file) to this
    /// file and exit. A path ending in .db, .sqlite or .sqlite3 gets a tenant
    /// database, which the local backend and the emulator can use in place of
    /// the YAML file; any other path a workspace file.
    #[arg(long, value_name = "OUT")]
    pub export: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: String,
    /// Share of API requests answered 500 or 503 (0.0 to 1.0). For half of the
    /// writes among them the write is carried out first: the answer fails, not the
    /// write, as when Google saves a batch and then errs.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of writes that are carried out and then answered by nothing: the
    /// connection is closed before the answer (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0, value_name = "R")]
    pub drop_response_rate: f64,
    /// Seconds that listings (contactGroups.list, people.connections.list) trail a
    /// user's writes: for that long after a user's last write they show the user's
    /// groups and contacts as they were before it. Reads by resource name
    /// (contactGroups.get, people:batchGet) stay current. Google's listings can
    /// lag writes like this; 0 (the default) never lags.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub list_lag: f64,
    /// Seconds a sync token (nextSyncToken of people.connections.list and
    /// contactGroups.list) is good for, from the full listing its chain started
    /// from; an older one is refused with 400 FAILED_PRECONDITION,
    /// EXPIRED_SYNC_TOKEN. Google's: 7 days.
    #[arg(long, default_value_t = 604_800.0, value_name = "SECS")]
    pub sync_token_ttl: f64,
    /// Seconds that writes stay out of incremental listings (those given a
    /// syncToken), whose token then stands before the oldest write left out, so
    /// that it comes in a later one. Full listings stay current. Google documents
    /// such a delay for sync requests; 0 (the default) has none.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub sync_lag: f64,
    /// Delay added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// After every N API requests, answer a burst of 429s (0: never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub burst_429_every: u32,
    /// Length of each 429 burst.
    #[arg(long, default_value_t = 3)]
    pub burst_429_len: u32,
    /// Length of the quota window in seconds (Google's is 60).
    #[arg(long, default_value_t = 60)]
    pub quota_window_secs: u64,
    /// Seed of the fault generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only accept token assertions signed by this service-account key (JSON key
    /// file or PEM); without it, assertions are checked but not their signature.
    #[arg(long, value_name = "KEY")]
    pub trust_key: Option<PathBuf>,
    /// Serve requests Google would refuse, for debugging a client. Without it the
    /// emulator is as strict as Google's front end, by Google's discovery
    /// documents: an unknown path or verb is answered 404; an unknown query
    /// parameter or body field (at any depth), a value of the wrong type, an
    /// unknown enum value or field-mask path, or a missing required parameter is
    /// answered 400 INVALID_ARGUMENT, naming it, and counted as "invalid" in
    /// /_emulator/stats. A client that works only with --lenient fails against
    /// Google.
    #[arg(long)]
    pub lenient: bool,
    /// Check every successful answer against Google's response schema, and count
    /// those that do not match as "invalidResponses" in /_emulator/stats.
    #[arg(long)]
    pub check_responses: bool,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Manifest files or folders.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// A file with the Workspace document to use instead of the manifests' own.
    #[arg(long, value_name = "FILE")]
    workspace: Option<PathBuf>,
    /// Only this sync (repeatable). Syncs whose manifest was deleted are not looked
    /// for then; neither are they when the paths do not include the folder of the
    /// Workspace document.
    #[arg(long = "sync", value_name = "NAME")]
    syncs: Vec<String>,
    /// Let the run delete more than the Workspace's maxDeletePercent.
    #[arg(long)]
    allow_deletes: bool,
    /// Read every user of the tenant, not only those the syncs select and the
    /// inventory lists as holding synced contacts: finds contacts the inventory
    /// does not know of (and `apply --full-scan` rebuilds the inventory).
    #[arg(long)]
    full_scan: bool,
    /// Folder of the read cache, which lets a run skip users whose incremental
    /// listings say nothing changed since it last read them in full (google
    /// backend). Default: $XDG_CACHE_HOME/contact-sync or ~/.cache/contact-sync.
    /// Losing it only makes the next run read every user in full.
    #[arg(long, value_name = "DIR", env = "CONTACT_SYNC_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// `file:line:col: /pointer: message`.
    Text,
    /// `::error file=…,line=…,col=…::message`.
    Github,
    /// One JSON document: `valid`, `files`, `syncs`, `errors` and `diagnostics`,
    /// each with `file`, `line`, `column`, `pointer`, `message` and `kind` (file,
    /// yaml, schema or semantic).
    Json,
}

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people; colour on a terminal.
    Text,
    /// One JSON document, for scripts (formatVersion "1").
    Json,
    /// For a pull-request comment.
    Markdown,
}

/// How `resolve` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResolveFormat {
    /// For people.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// How `apply` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    /// For people: the plan, a line per destination, the summary.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// What the terminal allows.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    /// stdout is a terminal.
    pub stdout: bool,
    /// stdin is a terminal (prompts possible).
    pub stdin: bool,
    /// stderr is a terminal (progress bars possible).
    pub stderr: bool,
    /// Colour allowed (stdout is a terminal and NO_COLOR is unset).
    pub color: bool,
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
    },
    /// `schema`.
    Schema,
    /// `plan`.
    Plan {
        /// Shared options.
        run: LoadOptions,
        /// Output format.
        format: PlanFormat,
        /// `--out`.
        out: Option<PathBuf>,
        /// `--detailed-exitcode`.
        detailed_exitcode: bool,
        /// `--redact`.
        redact: bool,
        /// `--expand`.
        expand: bool,
    },
    /// `resolve`.
    Resolve {
        /// The manifests and `--sync`.
        run: LoadOptions,
        /// Output format.
        format: ResolveFormat,
    },
    /// `fix`.
    Fix {
        /// The manifests.
        run: LoadOptions,
        /// `--check`.
        check: bool,
    },
    /// `show`.
    Show {
        /// The saved plan.
        path: PathBuf,
        /// Output format.
        format: PlanFormat,
        /// `--redact`.
        redact: bool,
        /// `--expand`.
        expand: bool,
    },
    /// `apply`.
    Apply {
        /// Shared options.
        run: LoadOptions,
        /// `--auto-approve`.
        auto_approve: bool,
        /// `--expand`.
        expand: bool,
        /// `--lock-timeout`.
        lock_timeout: std::time::Duration,
        /// `--redact` and `--format`.
        report: ApplyOutput,
    },
    /// `apply PLAN.json`.
    ApplySaved {
        /// The saved plan.
        path: PathBuf,
        /// `--cache-dir`.
        cache_dir: Option<PathBuf>,
        /// `--expand`.
        expand: bool,
        /// `--lock-timeout`.
        lock_timeout: std::time::Duration,
        /// `--redact` and `--format`.
        report: ApplyOutput,
    },
    /// `reconcile`.
    Reconcile(crate::reconcile::Options),
    /// `emulator`.
    Emulator(EmulatorArgs),
    /// `healthcheck`.
    Healthcheck {
        /// The address asked.
        listen: String,
        /// How long to wait.
        timeout: std::time::Duration,
    },
    /// `status`.
    Status {
        /// The address asked.
        listen: String,
        /// `--format json`.
        json: bool,
        /// How long to wait.
        timeout: std::time::Duration,
    },
    /// `trigger`.
    Trigger {
        /// The sync.
        name: String,
        /// `--allow-deletes N`.
        allow_deletes: Option<usize>,
        /// The address asked.
        listen: String,
        /// How long to wait.
        timeout: std::time::Duration,
    },
    /// `completions` and `man`: text made from the command line's own definition.
    Generated(Generated),
}

/// How `apply` shows the plan and reports.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOutput {
    /// `--redact`.
    pub redact: bool,
    /// `--format`.
    pub format: ApplyFormat,
}

/// What `completions` and `man` print or write.
#[derive(Debug)]
pub enum Generated {
    /// A completion script for the shell, on stdout.
    Completions(clap_complete::Shell),
    /// The manual page on stdout, or every page into the folder.
    Man(Option<PathBuf>),
}

impl Generated {
    /// Prints or writes it.
    pub fn write(&self, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        use clap::CommandFactory;
        let mut command = Cli::command();
        match self {
            Generated::Completions(shell) => {
                // Made in memory: clap_complete panics on a failed write.
                let mut script = Vec::new();
                clap_complete::generate(*shell, &mut command, "contact-sync", &mut script);
                out.write_all(&script)?;
            }
            Generated::Man(None) => clap_mangen::Man::new(command).render(out)?,
            Generated::Man(Some(dir)) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                clap_mangen::generate_to(command, dir)
                    .map_err(|e| anyhow::anyhow!("cannot write into {}: {e}", dir.display()))?;
                writeln!(out, "manual pages written to {}", dir.display())?;
            }
        }
        Ok(())
    }
}

impl From<CommonArgs> for LoadOptions {
    fn from(a: CommonArgs) -> Self {
        Self {
            paths: a.paths,
            workspace: a.workspace,
            syncs: a.syncs,
            allow_deletes: a.allow_deletes,
            full_scan: if a.full_scan {
                crate::plan::FullScan::Always
            } else {
                crate::plan::FullScan::Never
            },
            adopt: None,
            cache_dir: a.cache_dir,
        }
    }
}

impl Settings {
    /// Resolves parsed arguments; a combination that makes no sense is a usage
    /// error, explained.
    pub fn resolve(cli: Cli) -> Result<Self, String> {
        Ok(match cli.command {
            Command::Validate { paths, format } => Settings::Validate { paths, format },
            Command::Schema => Settings::Schema,
            Command::Plan { common, format, out, detailed_exitcode, redact, expand } => {
                Settings::Plan {
                    run: common.into(),
                    format,
                    out,
                    detailed_exitcode,
                    redact,
                    expand,
                }
            }
            Command::Adopt {
                paths,
                workspace,
                sync,
                users,
                auto_approve,
                redact,
                lock_timeout,
            } => {
                Settings::adopt(paths, workspace, sync, &users, auto_approve, redact, lock_timeout)
            }
            Command::Resolve { paths, workspace, syncs, format } => Settings::Resolve {
                run: LoadOptions { paths, workspace, syncs, ..LoadOptions::default() },
                format,
            },
            Command::Fix { paths, workspace, check } => Settings::Fix {
                run: LoadOptions { paths, workspace, ..LoadOptions::default() },
                check,
            },
            Command::Show { plan, format, redact, expand } => {
                Settings::Show { path: plan, format, redact, expand }
            }
            Command::Apply { common, auto_approve, expand, lock_timeout, redact, format } => {
                Settings::apply(
                    common,
                    auto_approve,
                    expand,
                    lock_timeout,
                    ApplyOutput { redact, format },
                )?
            }
            Command::Reconcile {
                paths,
                workspace,
                listen,
                once,
                check_interval,
                full_scan_every,
                cache_dir,
            } => {
                let mut settings = Settings::reconcile(
                    paths,
                    workspace,
                    listen,
                    once,
                    check_interval,
                    full_scan_every,
                );
                if let Settings::Reconcile(options) = &mut settings {
                    options.load.cache_dir = cache_dir;
                }
                settings
            }
            Command::Emulator(args) => Settings::Emulator(args),
            Command::Healthcheck { listen, timeout } => Settings::Healthcheck {
                listen,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
            },
            Command::Status { listen, format, timeout } => Settings::Status {
                listen,
                json: format == ResolveFormat::Json,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
            },
            Command::Trigger { name, allow_deletes, listen, timeout } => Settings::Trigger {
                name,
                allow_deletes,
                listen,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
            },
            Command::Completions { shell } => Settings::Generated(Generated::Completions(shell)),
            Command::Man { dir } => Settings::Generated(Generated::Man(dir)),
        })
    }

    /// `adopt`: an apply of one sync's plan that takes over the target groups
    /// `users` already have.
    fn adopt(
        paths: Vec<PathBuf>,
        workspace: Option<PathBuf>,
        sync: String,
        users: &[String],
        auto_approve: bool,
        redact: bool,
        lock_timeout: u64,
    ) -> Self {
        let users = users.iter().map(|u| u.to_lowercase()).collect();
        let adopt = crate::plan::Adopt { sync: sync.clone(), users };
        Settings::Apply {
            run: LoadOptions {
                paths,
                workspace,
                syncs: vec![sync],
                adopt: Some(adopt),
                ..LoadOptions::default()
            },
            auto_approve,
            expand: true,
            lock_timeout: std::time::Duration::from_secs(lock_timeout),
            report: ApplyOutput { redact, format: ApplyFormat::Text },
        }
    }

    /// `apply`: of the manifests, or of the saved plan they name (alone).
    fn apply(
        common: CommonArgs,
        auto_approve: bool,
        expand: bool,
        lock_timeout: u64,
        report: ApplyOutput,
    ) -> Result<Self, String> {
        let lock_timeout = std::time::Duration::from_secs(lock_timeout);
        match saved_plan(&common.paths) {
            Some(path) => {
                saved_plan_alone(&common)?;
                let cache_dir = common.cache_dir;
                Ok(Settings::ApplySaved { path, cache_dir, expand, lock_timeout, report })
            }
            None if report.format == ApplyFormat::Json && !auto_approve => {
                Err("apply --format json needs --auto-approve: the JSON report is for scripts, \
                     and there is no prompt to answer"
                    .into())
            }
            None => Ok(Settings::Apply {
                run: common.into(),
                auto_approve,
                expand,
                lock_timeout,
                report,
            }),
        }
    }

    /// `reconcile`: the loop's options, the trigger token from the environment.
    fn reconcile(
        paths: Vec<PathBuf>,
        workspace: Option<PathBuf>,
        listen: String,
        once: bool,
        check_interval: u64,
        full_scan_every: u64,
    ) -> Self {
        let full_scan = match full_scan_every {
            0 => crate::plan::FullScan::Never,
            secs => crate::plan::FullScan::OlderThan(secs),
        };
        Settings::Reconcile(crate::reconcile::Options {
            load: LoadOptions { paths, workspace, full_scan, ..LoadOptions::default() },
            listen,
            once,
            trigger_token: std::env::var("CONTACT_SYNC_TRIGGER_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            check_interval: std::time::Duration::from_secs(check_interval),
        })
    }
}

/// The saved plan among `paths`, if they name one (a `.json` file).
fn saved_plan(paths: &[PathBuf]) -> Option<PathBuf> {
    paths.iter().find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))).cloned()
}

/// A saved plan is applied as it was saved: nothing may change what it does.
fn saved_plan_alone(common: &CommonArgs) -> Result<(), String> {
    let why = "a saved plan is applied exactly as it was saved";
    if common.paths.len() > 1 {
        return Err(format!(
            "apply takes either manifest paths or one saved plan, not both: {why}"
        ));
    }
    let options = [
        ("--sync", !common.syncs.is_empty()),
        ("--workspace", common.workspace.is_some()),
        ("--allow-deletes", common.allow_deletes),
        ("--full-scan", common.full_scan),
    ];
    for (flag, given) in options {
        if given {
            return Err(format!(
                "{flag} cannot be used with a saved plan: {why}. Pass {flag} to \
                 `contact-sync plan --out` instead"
            ));
        }
    }
    Ok(())
}

impl Terminal {
    /// Reads the process's terminal state, `NO_COLOR` and `TERM`; `no_color` is
    /// `--no-color`.
    pub fn detect(no_color: bool) -> Self {
        let stdout = std::io::stdout().is_terminal();
        // NO_COLOR counts when set to anything but the empty string (no-color.org).
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self {
            stdout,
            stdin: std::io::stdin().is_terminal(),
            // A dumb terminal cannot redraw a progress bar in place.
            stderr: std::io::stderr().is_terminal() && !dumb,
            color: stdout && !no_color && !no_color_env && !dumb,
        }
    }
}

/// Parses the command line and runs it. Exit codes: 0 success, 1 any error, 2 only
/// for `plan --detailed-exitcode` with changes; so a usage error is exit 1 like any
/// other error, never clap's 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    init_tracing(matches!(cli.command, Command::Reconcile { .. }), cli.no_color);
    let no_color = cli.no_color;
    let settings = match Settings::resolve(cli) {
        Ok(settings) => settings,
        Err(usage) => {
            eprintln!("error: {usage}");
            return ExitCode::from(1);
        }
    };
    match commands::run(settings, Terminal::detect(no_color)) {
        Ok(code) => code,
        // `contact-sync plan | head`: the reader has what it wanted.
        Err(e) if stdout::closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::text::error_chain(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

/// Logs on stderr, filtered by `CONTACT_SYNC_LOG` (default `warn`; `info` for the
/// long-running `reconcile`, one line per run): for people on a terminal, JSON
/// lines otherwise (a container's log collector).
fn init_tracing(long_running: bool, no_color: bool) {
    let default = if long_running { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONTACT_SYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        let plain = no_color
            || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        builder.with_ansi(!plain).try_init()
    } else {
        builder.json().try_init()
    };
}
