//! Manifests as they are at a git revision, for `--before git:REV`.
//!
//! git runs as a subprocess in the current directory's repository. Files
//! are read with `git show REV:PATH` into a new folder under the system's
//! temporary folder, which is removed when the [`Checkout`] is dropped.
//! Nothing is ever written into the repository.

use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Files of one revision, copied out of the repository.
#[derive(Debug)]
pub struct Checkout {
    /// The temporary folder; repository paths keep their place under it.
    pub dir: PathBuf,
    /// The repository's top folder, canonical.
    pub root: PathBuf,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        // Removal is best effort: a leftover folder under the temporary
        // folder is harmless, and the diff's result is already made.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|error| format!("cannot run git: {error}; `git:` sources need git on PATH"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "`git {}` failed: {}",
            args.join(" "),
            stderr.trim()
        ));
    }
    Ok(output.stdout)
}

/// Finds the top folder of the repository the current directory is in.
pub fn repository_root() -> Result<PathBuf, String> {
    let stdout = git(Path::new("."), &["rev-parse", "--show-toplevel"])
        .map_err(|error| format!("the current directory is not in a git repository ({error})"))?;
    let text = String::from_utf8_lossy(&stdout);
    std::fs::canonicalize(text.trim()).map_err(|error| {
        format!(
            "cannot resolve the repository folder {}: {error}",
            text.trim()
        )
    })
}

/// Copies the files at `paths` (files or folders, relative to the
/// repository's top folder) as they are at revision `rev`. From folders
/// only `*.yaml` and `*.yml` files are copied, as manifests are read. A
/// path the revision lacks is skipped, and reading the manifests reports it.
pub fn checkout(rev: &str, paths: &[PathBuf]) -> Result<Checkout, String> {
    if rev.is_empty() || rev.starts_with('-') {
        return Err(format!(
            "invalid git revision `{rev}`; write one such as `HEAD~1` or `main`"
        ));
    }
    let root = repository_root()?;
    let commit = format!("{rev}^{{commit}}");
    git(&root, &["rev-parse", "--verify", "--quiet", &commit])
        .map_err(|_| format!("git revision `{rev}` not found in {}", root.display()))?;

    let relative: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["ls-tree", "-r", "-z", "--name-only", rev, "--"];
    args.extend(relative.iter().map(String::as_str));
    let listing = git(&root, &args)?;

    let dir = new_temporary_folder()?;
    let checkout = Checkout { dir, root };
    for name in listing.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let named_exactly = relative.iter().any(|r| r.trim_end_matches('/') == name);
        let is_manifest = name.ends_with(".yaml") || name.ends_with(".yml");
        if !(named_exactly || is_manifest) {
            continue;
        }
        let target = safe_join(&checkout.dir, &name)
            .ok_or_else(|| format!("git listed an unsafe path `{name}`"))?;
        let bytes = git(&checkout.root, &["show", &format!("{rev}:{name}")])?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
        }
        std::fs::write(&target, bytes)
            .map_err(|error| format!("cannot write {}: {error}", target.display()))?;
    }
    Ok(checkout)
}

/// `dir/name` when `name` is a plain relative path with no `..`.
fn safe_join(dir: &Path, name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let plain = path
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    plain.then(|| dir.join(path))
}

fn new_temporary_folder() -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("trafficsim-git-{}-{sequence}", std::process::id()));
    std::fs::create_dir(&dir)
        .map_err(|error| format!("cannot create temporary folder {}: {error}", dir.display()))?;
    Ok(dir)
}

/// `path` relative to `root`, or `None` when it lies outside. `path` must
/// exist, since it is resolved with symbolic links followed.
pub fn relative_to(root: &Path, path: &Path) -> Option<PathBuf> {
    let canonical = std::fs::canonicalize(path).ok()?;
    canonical.strip_prefix(root).ok().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_rejected() {
        let dir = Path::new("/tmp/x");
        assert_eq!(safe_join(dir, "a/b.yaml"), Some(dir.join("a/b.yaml")));
        assert_eq!(safe_join(dir, "../b.yaml"), None);
        assert_eq!(safe_join(dir, "/etc/passwd"), None);
    }
}
