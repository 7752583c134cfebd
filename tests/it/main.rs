//! Integration tests, one binary (so it links once): the CLI as a user runs it, the
//! committed JSON Schema, and the examples shipped in `examples/`.

mod architecture;
mod cli;
mod comment;
mod directory_extra;
mod directory_fields;
mod documents;
mod edges;
mod emulator;
mod examples;
mod fields;
mod fix;
mod fuzz;
mod google;
mod harness;
mod incremental;
mod inventory;
mod lagging;
mod nobody;
mod photos;
mod plan_cli;
mod planner;
mod properties;
mod readme;
mod reconcile;
mod scenarios;
mod schema;
mod strict;
mod sync_tokens;
mod unattended;
mod yaml_interop;

use std::path::{Path, PathBuf};

/// The repository root, where `examples/` and `schemas/` live.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `contact-sync` run from the repository root.
pub fn contact_sync() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("contact-sync").unwrap();
    cmd.current_dir(root()).env_remove("NO_COLOR");
    // The read cache of this test process, never the user's own.
    cmd.env("CONTACT_SYNC_CACHE_DIR", test_cache_dir());
    cmd
}

/// A read cache folder for this test process (tenants are told apart inside it).
pub fn test_cache_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// Every file of `examples/invalid/`, sorted.
pub fn invalid_examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}
