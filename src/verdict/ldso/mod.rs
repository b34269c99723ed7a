//! `ld.so` and `ldconfig`, modelled over a file-system view of an image: does every ELF file
//! still load after a rebase?
//!
//! A base that no longer has a library the application links, or has an older one than the
//! symbol versions the application needs (`GLIBC_2.38` on glibc 2.36), rebases cleanly and the
//! application dies at start. This module answers the loader's questions without running it:
//!
//! - [`conf`]: `etc/ld.so.conf` with its `include` globs, as `ldconfig` reads it;
//! - [`cache`]: the directories `ldconfig` scans, the entries it writes ([`cache_entries`]),
//!   the `etc/ld.so.cache` bytes ([`write_cache`]) and a bounded reader ([`read_cache`]);
//! - [`Checker`] / [`check_binary`]: the dependency search of glibc's `ld.so` (or musl's), the
//!   breadth-first load order, and the symbol-version check, as [`LoadProblem`]s.
//!
//! Everything is pure over a [`View`], which the caller implements over the merged layers of an
//! image (symlinks resolved inside the image, never on the host). Paths handed to and returned
//! by a view are canonical (`usr/lib/x86_64-linux-gnu/libc.so.6`: relative to the image root,
//! no leading `/`); paths the loader itself spells (cache entries, search directories) keep
//! their absolute spelling.

pub mod cache;
pub mod conf;
pub mod platform;
mod resolve;

pub use cache::{
    cache_entries, cache_entries_for, read_cache, write_cache, CacheEntry, CacheError, CacheFile,
    CacheOptions,
};
pub use platform::Platform;
pub use resolve::{check_binary, Checker, Libc, LoadProblem};

use super::elf::ElfInfo;

/// What a directory entry is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (whatever it points to).
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

/// Where a path leads once every symlink in it is followed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resolved {
    /// A regular file, at this canonical path.
    File(String),
    /// A directory, at this canonical path (`""` is the root).
    Dir(String),
    /// Nothing there (or something that is neither a file nor a directory).
    Missing,
    /// A symlink loop or too many hops.
    Broken(String),
}

/// A read-only view of an image's file system.
pub trait View {
    /// Follows `path` (canonical, relative to the image root) through symlinks in every
    /// component, as the kernel would inside a chroot at the image root (`..` clamped at the
    /// root, at most 40 hops).
    fn resolve(&self, path: &str) -> Resolved;
    /// Names directly in the canonical directory `dir` (`""` = root), with their kind (a
    /// symlink is [`NodeKind::Symlink`], not its target's kind).
    fn list(&self, dir: &str) -> Vec<(String, NodeKind)>;
    /// The ELF summary of the regular file at canonical `path`, when it is ELF.
    fn elf(&self, path: &str) -> Option<&ElfInfo>;
    /// The contents of a small configuration file (`etc/ld.so.conf`, `etc/ld.so.conf.d/*`,
    /// `etc/ld-musl-*.path`) at canonical `path`.
    fn text(&self, path: &str) -> Option<&[u8]>;
}

/// The view-relative form of a path the loader spells: leading `/`s dropped (a relative path is
/// taken relative to the root, the usual working directory of a container), empty and `.`
/// components dropped, `..` kept for the view's resolver.
pub(crate) fn view_path(spelled: &str) -> String {
    spelled
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Resolves a path the loader spells, through the view.
pub(crate) fn resolve_spelled(view: &dyn View, spelled: &str) -> Resolved {
    view.resolve(&view_path(spelled))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testview;
