//! The files the verdict reads whole from a layer (besides the package databases): small, and
//! the same for every image, so a layer's summary can be cached by its digest alone.

/// Release files: `os-release` in both places, and the distributions' own.
pub const RELEASE_FILES: [&str; 6] = [
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/alpine-release",
    "etc/redhat-release",
    "etc/system-release",
];

/// The accounts files a rebuild regenerates when an application adds users.
pub const ACCOUNT_FILES: [&str; 4] = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];

/// The dynamic loader's cache.
pub const LD_SO_CACHE: &str = "etc/ld.so.cache";

/// Whether the verdict reads the whole file at `path` (canonical).
pub fn is_read(path: &str) -> bool {
    RELEASE_FILES.contains(&path)
        || ACCOUNT_FILES.contains(&path)
        || path == LD_SO_CACHE
        || path == "etc/ld.so.conf"
        || path
            .strip_prefix("etc/ld.so.conf.d/")
            .is_some_and(|n| !n.is_empty() && !n.contains('/'))
        || path
            .strip_prefix("etc/ld-musl-")
            .is_some_and(|n| n.ends_with(".path") && !n.contains('/'))
}

/// Whether `path` is a file a rebuild regenerates (the accounts files, the loader's cache),
/// which a rebase reconciles beside the package databases.
pub fn is_derived(path: &str) -> bool {
    ACCOUNT_FILES.contains(&path) || path == LD_SO_CACHE
}
