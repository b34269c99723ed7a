//! The crate's one maker of temp files: random names, created exclusively.
//!
//! A writer works next to its destination (a layout's `blobs/sha256`, the directory of an
//! archive), where someone else may be able to write too. Every temp file is therefore created
//! with `O_CREAT|O_EXCL` under a random name (the `tempfile` crate), so a symlink planted at a
//! guessable name is never followed, and it is renamed over its destination, which replaces a
//! planted symlink instead of writing through it. Every temp file is also registered with
//! [`crate::cleanup`], so an interrupted run removes it.
//!
//! All names start with [`TEMP_PREFIX`] (or, next to an archive, `.NAME` + [`TEMP_PREFIX`]): a
//! writer that finds such names in a directory knows another writer is at work there.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cleanup::{self, Registration};

/// How every temp file and directory of ours is named; never part of a finished result.
pub const TEMP_PREFIX: &str = ".ocipatch-tmp-";

/// A temp file's name: removed when dropped (or when the run is interrupted) unless it was
/// persisted.
#[derive(Debug)]
pub struct TempPath {
    path: tempfile::TempPath,
    _registration: Registration,
}

impl TempPath {
    /// The temporary path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `dest` (replacing what is there, a symlink included, without
    /// following it). On failure the temp file is removed.
    pub fn persist(self, dest: &Path) -> io::Result<()> {
        self.path.persist(dest).map_err(|e| e.error)
    }
}

/// `File::create`'s permissions (0666 less the umask): a blob we write must be as readable as
/// one written by any other tool, not 0600 like a private temp file.
fn builder<'a>(prefix: &'a str, suffix: &'a str) -> tempfile::Builder<'a, 'a> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix)
        .suffix(suffix)
        .permissions(Permissions::from_mode(0o666));
    b
}

fn make(dir: &Path, prefix: &str, suffix: &str) -> io::Result<(File, TempPath)> {
    let (made, registration) = cleanup::create(
        || builder(prefix, suffix).tempfile_in(dir),
        |f| register_path(f.path()),
    )?;
    let (file, path) = made.into_parts();
    Ok((
        file,
        TempPath {
            path,
            _registration: registration,
        },
    ))
}

fn register_path(path: &Path) -> Box<dyn FnOnce() + Send> {
    let path = path.to_path_buf();
    Box::new(move || {
        let _ = fs::remove_file(path);
    })
}

/// A new file in `dir` named `.ocipatch-tmp-HINT-RANDOM`, readable by its owner only (0600):
/// for a cache that no one else may read or change.
pub fn private_file_in(dir: &Path, hint: &str) -> io::Result<(File, TempPath)> {
    let prefix = format!("{TEMP_PREFIX}{hint}-");
    let (made, registration) = cleanup::create(
        || {
            let mut b = builder(&prefix, "");
            b.permissions(Permissions::from_mode(0o600));
            b.tempfile_in(dir)
        },
        |f| register_path(f.path()),
    )?;
    let (file, path) = made.into_parts();
    Ok((
        file,
        TempPath {
            path,
            _registration: registration,
        },
    ))
}

/// A new file in `dir` named `.ocipatch-tmp-HINT-RANDOM`.
pub fn file_in(dir: &Path, hint: &str) -> io::Result<(File, TempPath)> {
    make(dir, &format!("{TEMP_PREFIX}{hint}-"), "")
}

/// A new hidden file next to `target`, named `.NAME.ocipatch-tmp-RANDOM.SUFFIX`.
pub fn file_next_to(target: &Path, suffix: &str) -> io::Result<(File, TempPath)> {
    make(
        &parent_of(target),
        &hidden_prefix(target),
        &format!(".{suffix}"),
    )
}

/// A hard link to `src` in `dir`, named `.ocipatch-tmp-HINT-RANDOM` (`link(2)` never follows
/// or replaces what is at the new name).
pub fn link_in(dir: &Path, hint: &str, src: &Path) -> io::Result<TempPath> {
    let prefix = format!("{TEMP_PREFIX}{hint}-");
    let (made, registration) = cleanup::create(
        || builder(&prefix, "").make_in(dir, |p| fs::hard_link(src, p)),
        |f| register_path(f.path()),
    )?;
    Ok(TempPath {
        path: made.into_temp_path(),
        _registration: registration,
    })
}

/// `.NAME.ocipatch-tmp-`: how temp files and directories next to `target` begin.
pub fn hidden_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!(".{name}{TEMP_PREFIX}")
}

/// The directory `target` is in (`.` for a bare file name).
pub fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A private directory next to `target`, `.NAME.ocipatch-tmp-RANDOM.d`, removed when dropped
/// or when the run is interrupted.
pub fn dir_next_to(target: &Path) -> io::Result<(tempfile::TempDir, Registration)> {
    let prefix = hidden_prefix(target);
    let parent = parent_of(target);
    cleanup::create(
        || {
            tempfile::Builder::new()
                .prefix(&prefix)
                .suffix(".d")
                .tempdir_in(&parent)
        },
        |d| {
            let path = d.path().to_path_buf();
            Box::new(move || {
                let _ = fs::remove_dir_all(path);
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    #[test]
    fn temp_files_never_follow_a_planted_symlink_and_replace_one_at_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"precious").unwrap();
        let dest = dir.path().join("dest");
        symlink(&outside, &dest).unwrap();
        let (mut f, tmp) = file_in(dir.path(), "x").unwrap();
        let name = tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(".ocipatch-tmp-x-"), "{name}");
        f.write_all(b"new").unwrap();
        tmp.persist(&dest).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&dest).unwrap().file_type().is_file());
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        let mode = fs::metadata(&dest).unwrap().permissions().mode();
        assert_ne!(
            mode & 0o044,
            0,
            "readable like File::create's files: {mode:o}"
        );
    }

    #[test]
    fn names_next_to_a_target_and_removal_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.tar");
        let (_f, tmp) = file_next_to(&target, "tar").unwrap();
        let name = tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(".a.tar.ocipatch-tmp-") && name.ends_with(".tar"),
            "{name}"
        );
        let (d, _r) = dir_next_to(&target).unwrap();
        let link = link_in(d.path(), "l", tmp.path()).unwrap();
        assert!(link.path().exists());
        drop((tmp, link, d));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
