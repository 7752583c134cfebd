//! Files written whole or not at all: the tenant file and saved plans.
//!
//! A write goes to a temporary file beside the file it replaces, private (mode
//! 0600) from the moment it is created, flushed to disk and then renamed over the
//! target, which gets its previous permissions just before the rename. The
//! temporary file is named `.<name>.contact-sync-tmp.<random>`, so that a copy left
//! behind by a writer that was killed half-way can be recognised and removed
//! ([`remove_leftovers`]). A path that is a symbolic link is written through: the
//! file it points at gets the new content and the link stays a link.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind as IoKind;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What follows `.<name>` in the name of a temporary file.
const TEMP_INFIX: &str = ".contact-sync-tmp.";

/// How many symbolic links [`resolve`] follows before it gives up (Linux's limit).
const MAX_LINKS: usize = 40;

/// The file `path` stands for: symbolic links followed to the file they end at,
/// which need not exist yet. A path that is no link is returned as it is.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == IoKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("too many levels of symbolic links at {}", path.display())))
}

/// The folder a file is in (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `.<name>.contact-sync-tmp.`: how the temporary files of `target` begin.
fn temp_prefix(target: &Path) -> io::Result<String> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(IoKind::InvalidInput, "the path does not name a file"))?;
    Ok(format!(".{name}{TEMP_INFIX}"))
}

/// Creates a new, empty temporary file beside `target`, readable and writable by
/// its owner only.
fn create_temp(target: &Path) -> io::Result<(File, PathBuf)> {
    let prefix = temp_prefix(target)?;
    let dir = folder(target);
    let mut attempts = 0;
    loop {
        let path = dir.join(format!("{prefix}{:016x}", rand::random::<u64>()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == IoKind::AlreadyExists && attempts < 100 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Removes the temporary file unless it was renamed into place.
struct Temp(Option<PathBuf>);

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Replaces the file at `path` (or what its symbolic links point at) by `bytes`,
/// atomically: on any failure the old file is left as it was, and nothing else
/// is left behind. Errors are the operating system's, without the temporary
/// file's name: callers name `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] with the content streamed by `write` (through a buffer), for
/// files too large to hold in memory twice.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let target = resolve(path)?;
    let (file, temp_path) = create_temp(&target)?;
    let mut temp = Temp(Some(temp_path));
    let mut buffered = io::BufWriter::new(file);
    write(&mut buffered)?;
    let file = buffered.into_inner().map_err(io::IntoInnerError::into_error)?;
    if let Ok(meta) = std::fs::metadata(&target) {
        file.set_permissions(meta.permissions())?;
    }
    file.sync_all()?;
    drop(file);
    let temp_path = temp.0.take().expect("not renamed yet");
    if let Err(e) = std::fs::rename(&temp_path, &target) {
        temp.0 = Some(temp_path);
        return Err(e);
    }
    if let Ok(dir) = File::open(folder(&target)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Removes the temporary files that writers of `path` (or of what its links point
/// at) left behind when they were killed half-way: each is a full copy of the file
/// that nothing else would ever remove. Call it only while holding the lock every
/// writer of `path` takes, so that no write is in progress. Returns the files
/// removed.
pub fn remove_leftovers(path: &Path) -> io::Result<Vec<PathBuf>> {
    let target = resolve(path)?;
    let prefix = temp_prefix(&target)?;
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(folder(&target))? {
        let entry = entry?;
        let ours = entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix));
        if ours && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    #[test]
    fn the_copy_being_written_is_private_and_the_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_file, temp) = create_temp(&path).unwrap();
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".t.yaml.contact-sync-tmp."), "{name}");
        let mode = std::fs::metadata(&temp).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a copy of contact data is readable by others");
        std::fs::remove_file(&temp).unwrap();

        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(names(dir.path()), ["t.yaml"], "nothing is left beside it");
    }

    #[test]
    fn a_failed_write_names_no_temporary_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("missing/p.json"), b"{}").unwrap_err();
        assert_eq!(err.kind(), IoKind::NotFound);
        assert!(!err.to_string().contains("tmp"), "{err}");
        // The rename fails: the target is a folder.
        std::fs::create_dir(dir.path().join("p.json")).unwrap();
        write_atomic(&dir.path().join("p.json"), b"{}").unwrap_err();
        assert_eq!(names(dir.path()), ["p.json"]);
    }

    #[test]
    fn leftovers_of_this_file_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        for name in [
            "t.yaml",
            ".t.yaml.contact-sync-tmp.0123abcd",
            ".t.yaml.contact-sync-tmp.x",
            ".u.yaml.contact-sync-tmp.0123abcd",
            ".t.yaml.lock",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let removed = remove_leftovers(&path).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(
            names(dir.path()),
            [".t.yaml.lock", ".u.yaml.contact-sync-tmp.0123abcd", "notes.txt", "t.yaml"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("a/real.yaml"), "old").unwrap();
        std::os::unix::fs::symlink("../a/real.yaml", dir.path().join("b/link.yaml")).unwrap();
        std::os::unix::fs::symlink("link.yaml", dir.path().join("b/link2.yaml")).unwrap();
        let link = dir.path().join("b/link2.yaml");
        assert_eq!(resolve(&link).unwrap(), dir.path().join("b/../a/real.yaml"));
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(dir.path().join("a/real.yaml")).unwrap(), "new");
        assert_eq!(names(&dir.path().join("a")), ["real.yaml"]);
    }
}
