//! Plans saved by `plan --out` and applied by `apply PLAN.json`: exactly what was
//! reviewed, or nothing.
//!
//! The file holds the plan with its operations, the manifests as the planner saw
//! them, where the tenant is, and a checksum over all of it. `apply PLAN.json`
//! refuses a file of another format version or whose checksum does not match (it
//! was edited), then — holding the writer lease — plans again from the saved
//! manifests against the tenant as it is now, and applies only if the fresh plan
//! is the saved one, change for change: a tenant that moved since is refused, and
//! so is a plan edited with its checksum recomputed, unless the edit is what the
//! saved manifests would plan anyway. (The checksum has no key: it proves the file
//! intact, not who made it; the re-plan is what proves the operations.)

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::open::Target;
use crate::plan::render::{self, Style};
use crate::plan::{Plan, PlanInput};

/// The saved-plan format this version reads and writes.
pub const FORMAT_VERSION: &str = "1";

/// A plan saved by `plan --out`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The plan (the `--format json` document plus the operations and the
    /// fingerprint).
    #[serde(flatten)]
    pub plan: Plan,
    /// The manifests as the planner saw them.
    pub input: PlanInput,
    /// The tenant.
    pub target: Target,
    /// SHA-256 over the rest of the file, as written.
    #[serde(default)]
    pub checksum: String,
}

impl SavedPlan {
    /// A saved plan with its checksum.
    pub fn new(plan: Plan, input: PlanInput, target: Target) -> Self {
        let mut saved = Self { plan, input, target, checksum: String::new() };
        saved.checksum = saved.digest();
        saved
    }

    /// SHA-256 of the compact JSON of the file with an empty checksum, streamed
    /// into the hash (a saved plan can be gigabytes).
    fn digest(&self) -> String {
        struct Hashing(Sha256);
        impl std::io::Write for Hashing {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let unsigned = Unsigned(self);
        let mut hashing = Hashing(Sha256::new());
        serde_json::to_writer(&mut hashing, &unsigned).expect("plans serialize");
        format!("sha256:{}", hex::encode(hashing.0.finalize()))
    }

    /// Writes the plan atomically (it is read back by `apply`), private to its
    /// owner unless it replaces a file that was not; streamed, not built in memory.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::fsutil::write_atomic_with(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
        .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads a saved plan; refuses one of another format or that was edited.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the saved plan {}", path.display()))?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            format_version: Option<String>,
        }
        let version: Version = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a plan saved by `contact-sync plan --out`", path.display())
        })?;
        let version = version.format_version.unwrap_or_else(|| "(none)".into());
        if version != FORMAT_VERSION {
            anyhow::bail!(
                "{} has formatVersion {version:?}, and this contact-sync reads saved plans of \
                 formatVersion {FORMAT_VERSION:?} only. Nothing was applied; make the plan again \
                 with this version (contact-sync plan --out)",
                path.display()
            );
        }
        let saved: Self = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a plan saved by `contact-sync plan --out`", path.display())
        })?;
        if saved.checksum.is_empty() || saved.checksum != saved.digest() {
            anyhow::bail!(
                "{} was changed after `plan --out` saved it (its checksum does not match), so it \
                 is not the plan that was reviewed. Nothing was applied; make the plan again",
                path.display()
            );
        }
        Ok(saved)
    }
}

/// A saved plan serialized with an empty checksum: what the checksum covers.
struct Unsigned<'a>(&'a SavedPlan);

impl Serialize for Unsigned<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            #[serde(flatten)]
            plan: &'a Plan,
            input: &'a PlanInput,
            target: &'a Target,
            checksum: &'a str,
        }
        let s = self.0;
        View { plan: &s.plan, input: &s.input, target: &s.target, checksum: "" }
            .serialize(serializer)
    }
}

/// How `fresh` differs from the saved plan, as a diff of their text forms (at
/// most `max_lines` lines); `None` when they are the same plan.
pub fn differences(saved: &Plan, fresh: &Plan, max_lines: usize) -> Option<String> {
    let same = saved.syncs == fresh.syncs
        && saved.orphans == fresh.orphans
        && saved.errors == fresh.errors
        && saved.summary == fresh.summary;
    if same {
        return None;
    }
    let style = Style::default();
    let (before, after) = (render::text(saved, style), render::text(fresh, style));
    if before == after {
        return Some(format!("  {}\n", first_difference(saved, fresh)));
    }
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut out = "  --- the saved plan\n  +++ the plan now\n".to_owned();
    let mut lines = 0;
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        for line in hunk.to_string().lines() {
            if lines == max_lines {
                out.push_str("  …\n");
                return Some(out);
            }
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
            lines += 1;
        }
    }
    Some(out)
}

/// Where two plans that print alike differ: the first change whose operation (what
/// would be written) is not the same.
fn first_difference(saved: &Plan, fresh: &Plan) -> String {
    for (a, b) in saved.syncs.iter().zip(&fresh.syncs) {
        for (da, db) in a.destinations.iter().zip(&b.destinations) {
            for (ca, cb) in da.changes.iter().zip(&db.changes) {
                if ca != cb {
                    return format!(
                        "sync {}, {}: what would be written for \"{}\" is not what was saved",
                        a.name, da.user, ca.name
                    );
                }
            }
        }
    }
    "what would be written is not what was saved".to_owned()
}
