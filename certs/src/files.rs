//! Atomic file writes with the right permissions from the first byte.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Write a file readable only by its owner (0600 from creation, atomic temp+rename in the same dir).
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic(path, contents, 0o600)
}

/// Create `dir` and any missing parents `0700` from creation (an existing
/// directory keeps its mode: [`make_private`] is for those).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // Same directory so rename is atomic; a random suffix so concurrent writers never share a temp file.
    let tmp: PathBuf = dir.join(format!(
        ".{}.{:016x}.tmp",
        file_name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = open_new(&tmp, mode)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Persist the rename itself; not every platform lets us open a directory, so best effort.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What [`make_private`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MadePrivate {
    /// Paths whose mode changed.
    pub changed: Vec<PathBuf>,
    /// The top directory and its mode, when it belongs to someone else and
    /// its mode could not be set, but others cannot write in it: the
    /// volume root of a Kubernetes pod with `fsGroup` (owned by root,
    /// shared with the pod's group). Everything in it is private.
    pub top_not_ours: Option<(PathBuf, u32)>,
}

/// Make `dir` private to its owner, whatever modes it was created with: the
/// directory `0700` and, when `recursive`, every directory under it `0700`
/// and every file without group and other bits (`0644` becomes `0600`).
/// Symbolic links are neither followed nor changed. Fails, naming the path,
/// when a mode cannot be set (a file of another user): keeping secrets
/// readable to others is not an option. The one exception is the top
/// directory when it is not ours to change and nobody else can write in it
/// (see [`MadePrivate::top_not_ours`]).
#[cfg(unix)]
pub fn make_private(dir: &Path, recursive: bool) -> io::Result<MadePrivate> {
    let mut made = MadePrivate::default();
    restrict(dir, true, recursive, &mut made)?;
    Ok(made)
}

#[cfg(unix)]
fn restrict(path: &Path, top: bool, recursive: bool, made: &mut MadePrivate) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let meta = fs::symlink_metadata(path).map_err(named)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    let wanted = if meta.is_dir() { 0o700 } else { mode & 0o700 };
    if mode != wanted {
        match fs::set_permissions(path, fs::Permissions::from_mode(wanted)) {
            Ok(()) => made.changed.push(path.to_owned()),
            Err(e)
                if top
                    && meta.is_dir()
                    && e.kind() == io::ErrorKind::PermissionDenied
                    && mode & 0o002 == 0 =>
            {
                made.top_not_ours = Some((path.to_owned(), mode));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot make {} private (mode {mode:o}, wanted {wanted:o}): {e}",
                        path.display()
                    ),
                ));
            }
        }
    }
    if meta.is_dir() && recursive {
        for entry in fs::read_dir(path).map_err(named)? {
            restrict(&entry.map_err(named)?.path(), false, true, made)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // The mode is applied by open(2) itself, so the key is never readable by others, not even briefly.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn existing_modes_are_made_private_and_symlinks_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir_all(dir.join("store/blobs")).unwrap();
        fs::write(dir.join("store/db"), "secrets").unwrap();
        fs::write(dir.join("store/blobs/1"), "secrets").unwrap();
        fs::write(dir.join("key"), "k").unwrap();
        let outside = root.path().join("outside");
        fs::write(&outside, "not ours to change").unwrap();
        set(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        set(&dir, 0o755);
        set(&dir.join("store"), 0o775);
        set(&dir.join("store/blobs"), 0o755);
        set(&dir.join("store/db"), 0o644);
        set(&dir.join("store/blobs/1"), 0o664);
        set(&dir.join("key"), 0o600);

        // Not recursive: only the directory itself.
        let made = make_private(&dir, false).unwrap();
        assert_eq!(made.changed, std::slice::from_ref(&dir));
        assert_eq!(made.top_not_ours, None);
        assert_eq!(mode(&dir.join("store")), 0o775);

        let mut changed = make_private(&dir, true).unwrap().changed;
        changed.sort();
        assert_eq!(
            changed,
            [
                dir.join("store"),
                dir.join("store/blobs"),
                dir.join("store/blobs/1"),
                dir.join("store/db"),
            ]
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("store")), 0o700);
        assert_eq!(mode(&dir.join("store/blobs")), 0o700);
        assert_eq!(mode(&dir.join("store/db")), 0o600);
        assert_eq!(mode(&dir.join("store/blobs/1")), 0o600);
        assert_eq!(mode(&dir.join("key")), 0o600);
        assert_eq!(mode(&outside), 0o644, "a symlink's target is not changed");
        assert_eq!(make_private(&dir, true).unwrap(), MadePrivate::default());
    }

    #[cfg(unix)]
    #[test]
    fn private_file_is_0600_and_replaced_atomically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private_file(&path, b"one").unwrap();
        write_private_file(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
