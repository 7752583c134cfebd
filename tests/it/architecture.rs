//! The layers stay where they are: the planner pure (no async runtime, no I/O, no
//! backend) and the only place that decides; the model on its own; the emulator
//! independent of the backend it stands in for. Imports are read from the parsed
//! `use` trees (`syn`), so a grouped import (`use crate::{backend::Error}`) or a
//! relative one (`use super::super::backend`) counts like a plain one.

use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Every `.rs` file under `src/<dir>`, recursively.
fn sources(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&crate::root().join("src").join(dir), &mut out);
    out.sort();
    out
}

/// The file's code: comment lines left out (doc links may name anything).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file under `src` (`src/plan/error.rs` → `plan::error`,
/// `src/plan/mod.rs` → `plan`).
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(crate::root().join("src")).unwrap_or(path);
    let mut parts: Vec<String> =
        rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every path a piece of code imports, its `use` trees expanded (groups, renames,
/// globs) and resolved from `module` (the code's module path): `crate`, `self`,
/// `super` and a child module's name become `crate::…`; other crates stay as
/// they are (`tokio::sync::Mutex`). A glob ends in `*`.
fn imports(
    source: &str,
    module: &[String],
    children: &dyn Fn(&[String], &str) -> bool,
) -> Vec<String> {
    struct Uses<'a> {
        module: Vec<String>,
        children: &'a dyn Fn(&[String], &str) -> bool,
        out: Vec<String>,
    }
    impl Uses<'_> {
        fn tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    self.tree(prefix, &p.tree);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => self.path(prefix, &n.ident.to_string()),
                syn::UseTree::Rename(r) => self.path(prefix, &r.ident.to_string()),
                syn::UseTree::Glob(_) => self.path(prefix, "*"),
                syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.tree(prefix, t)),
            }
        }
        /// `prefix::last`, resolved to an absolute path.
        fn path(&mut self, prefix: &[String], last: &str) {
            let mut segments: Vec<&str> = prefix.iter().map(String::as_str).collect();
            segments.push(last);
            let mut here = self.module.clone();
            let mut rest = segments.as_slice();
            let local = match rest.first() {
                Some(&"crate") => {
                    here.clear();
                    rest = &rest[1..];
                    true
                }
                Some(&"self") => {
                    rest = &rest[1..];
                    true
                }
                Some(&"super") => {
                    while rest.first() == Some(&"super") {
                        here.pop();
                        rest = &rest[1..];
                    }
                    true
                }
                Some(first) => (self.children)(&here, first),
                None => false,
            };
            let mut path: Vec<String> = if local {
                std::iter::once("crate".to_owned()).chain(here).collect()
            } else {
                Vec::new()
            };
            path.extend(rest.iter().map(|s| (*s).to_owned()));
            self.out.push(path.join("::"));
        }
    }
    impl<'ast> Visit<'ast> for Uses<'_> {
        fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
            self.tree(&mut Vec::new(), &item.tree);
        }
        fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }
    let file = syn::parse_file(source).expect("the file parses");
    let mut uses = Uses { module: module.to_vec(), children, out: Vec::new() };
    uses.visit_file(&file);
    uses.out
}

/// Whether `src/<module>/<name>` is a module on disk.
fn child_on_disk(module: &[String], name: &str) -> bool {
    let dir = module.iter().fold(crate::root().join("src"), |d, m| d.join(m));
    dir.join(format!("{name}.rs")).is_file() || dir.join(name).join("mod.rs").is_file()
}

/// The paths the file at `path` imports (see [`imports`]).
fn imports_of(path: &Path) -> Vec<String> {
    imports(&std::fs::read_to_string(path).unwrap(), &module_of(path), &child_on_disk)
}

/// Whether `import` is `prefix` or lies under it.
fn under(import: &str, prefix: &str) -> bool {
    import == prefix || import.starts_with(&format!("{prefix}::"))
}

#[test]
fn grouped_renamed_and_relative_imports_are_all_seen() {
    let code = "
        use crate::{backend::{google::http, Error as E}, model};
        use super::super::backend::*;
        use self::inner::Thing;
        use tokio::{sync::Mutex, time};
        use child::Item;
        mod tests { use super::*; }
    ";
    let module = ["plan".to_owned(), "sub".to_owned()];
    let found = imports(code, &module, &|_, name| name == "child");
    assert_eq!(
        found,
        [
            "crate::backend::google::http",
            "crate::backend::Error",
            "crate::model",
            "crate::backend::*",
            "crate::plan::sub::inner::Thing",
            "tokio::sync::Mutex",
            "tokio::time",
            "crate::plan::sub::child::Item",
            "crate::plan::sub::*",
        ]
    );
    // The grouped upward import that a text search for "crate::backend" misses.
    let hidden = "use crate::{backend::Error, model::Contact};";
    assert!(!hidden.contains("crate::backend"));
    let found = imports(hidden, &module, &|_, _| false);
    assert!(found.iter().any(|i| under(i, "crate::backend")), "{found:?}");
    assert_eq!(module_of(&crate::root().join("src/plan/mod.rs")), ["plan"]);
    assert_eq!(module_of(&crate::root().join("src/plan/error.rs")), ["plan", "error"]);
}

#[test]
fn the_planner_imports_no_runtime_io_or_backend() {
    let files = sources("plan");
    for path in &files {
        let text = code(path);
        for forbidden in [
            "tokio::",
            "reqwest::",
            "crate::backend",
            "std::fs",
            "std::net",
            "async fn",
            "futures::",
        ] {
            assert!(!text.contains(forbidden), "{} uses {forbidden}", path.display());
        }
        for import in imports_of(path) {
            for forbidden in
                ["tokio", "reqwest", "crate::backend", "std::fs", "std::net", "futures"]
            {
                assert!(!under(&import, forbidden), "{} imports {import}", path.display());
            }
        }
    }
    assert!(files.len() >= 6);
}

#[test]
fn plan_errors_and_reasons_are_made_in_the_planner_only() {
    let plan = crate::root().join("src/plan");
    for path in sources("").iter().filter(|p| !p.starts_with(&plan)) {
        let text = code(path);
        for forbidden in ["PlanError::new(", "PlanError {", "ErrorKind::", "Reason::"] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: plan decisions belong to src/plan",
                path.display()
            );
        }
    }
}

/// The identifiers of a piece of code.
fn identifiers(code: &str) -> std::collections::BTreeSet<&str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect()
}

/// The names of the `pub struct`s and `pub enum`s of a file.
fn public_types(path: &Path) -> Vec<String> {
    let text = code(path);
    text.split("pub ")
        .filter_map(|rest| rest.strip_prefix("struct ").or_else(|| rest.strip_prefix("enum ")))
        .filter_map(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next())
        .map(str::to_owned)
        .filter(|name| name.starts_with(|c: char| c.is_uppercase()))
        .collect()
}

#[test]
fn the_driver_only_reads() {
    let root = crate::root();
    let driver = code(&root.join("src/reader.rs"));
    let names = identifiers(&driver);
    // It writes nothing: it calls none of the Backend trait's writes.
    let backend = code(&root.join("src/backend/mod.rs"));
    let start = backend.find("pub trait Backend").expect("the Backend trait");
    let end = start + backend[start..].find("\n}").expect("the trait's end");
    let methods: Vec<&str> =
        backend[start..end].split("fn ").skip(1).filter_map(|m| m.split('(').next()).collect();
    let writes: Vec<&str> = methods
        .iter()
        .copied()
        .filter(|m| {
            ["create_", "update_", "delete_", "modify_", "write_", "commit", "guard_writes"]
                .iter()
                .any(|w| m.starts_with(w))
                || m.ends_with("_lease")
        })
        .collect();
    assert!(writes.len() >= 10, "the trait's writes are found: {writes:?} of {methods:?}");
    for write in &writes {
        assert!(!names.contains(write), "the driver calls Backend::{write}: it only reads");
    }
    // It decides nothing: of the plan's types it names only its input and the
    // plan the planner hands back — no status, action, reason or error of its own.
    let plan_types: Vec<String> = ["src/plan/mod.rs", "src/plan/error.rs"]
        .iter()
        .flat_map(|f| public_types(&root.join(f)))
        .collect();
    assert!(plan_types.iter().any(|t| t == "Status") && plan_types.len() >= 10, "{plan_types:?}");
    for name in plan_types.iter().filter(|t| !["PlanInput", "Plan"].contains(&t.as_str())) {
        assert!(
            !names.contains(name.as_str()),
            "the driver names plan::{name}: decisions belong to src/plan"
        );
    }
    assert!(root.join("src/directory/mod.rs").is_file());
}

#[test]
fn the_model_depends_on_nothing_of_the_crate() {
    for path in sources("model") {
        assert!(!code(&path).contains("crate::"), "{} imports from the crate", path.display());
        for import in imports_of(&path) {
            assert!(
                !import.starts_with("crate::") || under(&import, "crate::model"),
                "{} imports {import} from the crate",
                path.display()
            );
        }
    }
}

#[test]
fn the_emulator_does_not_use_the_backend_it_stands_in_for() {
    for path in sources("emulator") {
        assert!(
            !code(&path).contains("backend::google"),
            "{} uses the google backend; share through crate::google_api",
            path.display()
        );
        for import in imports_of(&path) {
            assert!(
                !under(&import, "crate::backend::google"),
                "{} imports {import}; share through crate::google_api",
                path.display()
            );
        }
    }
}
