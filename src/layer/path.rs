//! Layer path rules shared by the builder and the scanner: one canonical spelling of a path
//! (`etc/passwd`: relative, no `./`, no trailing `/`, never `..`) and the whiteout names.

pub use super::tar_header::{MAX_NAME_BYTES, MAX_PATH_BYTES};
use super::LayerError;

/// Prefix of a whiteout entry: `dir/.wh.name` deletes `dir/name` from lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of an opaque-directory marker: `dir/.wh..wh..opq` hides everything lower layers put in `dir`.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Canonical form of a path found in a tar header or given on the command line.
///
/// Leading `/` and `./`, empty and `.` components and a trailing `/` are dropped. Refused, because
/// no extractor can apply them: a `..` component (it would write outside the root), a path over
/// [`MAX_PATH_BYTES`] or a component over [`MAX_NAME_BYTES`], and the whiteout of nothing, `.` or
/// `..` (`.wh.`, `.wh..`, `.wh...`). `Ok(None)` means the root itself.
pub fn normalize(raw: &str) -> Result<Option<String>, LayerError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(LayerError::too_long("path", raw.as_bytes(), MAX_PATH_BYTES));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(LayerError::unsafe_path(raw, "it contains a `..` component")),
            _ if part.contains('\0') => {
                return Err(LayerError::unsafe_path(raw, "it contains a NUL byte"))
            }
            _ if part.len() > MAX_NAME_BYTES => {
                return Err(LayerError::unsafe_path(
                    raw,
                    "a component is longer than 255 bytes (NAME_MAX)",
                ))
            }
            ".wh." | ".wh.." | ".wh..." => {
                return Err(LayerError::unsafe_path(
                    raw,
                    "it is a whiteout of nothing, `.` or `..`",
                ))
            }
            _ => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The parent of a canonical path, `None` for a top-level name.
pub fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(dir, _)| dir)
}

/// The last component of a canonical path.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: Option<&str>, name: &str) -> String {
    match dir {
        Some(dir) => format!("{dir}/{name}"),
        None => name.to_string(),
    }
}

/// Proper ancestors of a canonical path, outermost first: `a/b/c` gives `a`, `a/b`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Whether `path` is strictly inside the directory `dir`.
pub fn is_inside(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// The whiteout entry that deletes `path`: `usr/share/doc/foo` → `usr/share/doc/.wh.foo`.
pub fn whiteout_for(path: &str) -> String {
    join(
        parent(path),
        &format!("{WHITEOUT_PREFIX}{}", file_name(path)),
    )
}

/// What a whiteout entry name means.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout {
    /// `dir/.wh.name`: `dir/name` is deleted.
    Deletes(String),
    /// `dir/.wh..wh..opq`: `dir` is opaque (`None`: the root).
    Opaque(Option<String>),
}

/// Classify a canonical path as a whiteout, or `None` for an ordinary entry.
pub fn whiteout_meaning(path: &str) -> Option<Whiteout> {
    let name = file_name(path);
    let dir = parent(path);
    if name == OPAQUE_WHITEOUT {
        return Some(Whiteout::Opaque(dir.map(str::to_string)));
    }
    let deleted = name.strip_prefix(WHITEOUT_PREFIX)?;
    Some(Whiteout::Deletes(join(dir, deleted)))
}

/// Whether a symlink at `link` with a relative `target` resolves (lexically) outside the root.
/// Absolute targets never escape: a runtime resolves them inside the container's root.
pub fn symlink_escapes(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = parent(link).map_or(0, |dir| dir.split('/').count());
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_gives_one_spelling() {
        for raw in [
            "etc/passwd",
            "./etc/passwd",
            "/etc/passwd",
            "etc//./passwd",
            "etc/passwd/",
        ] {
            assert_eq!(
                normalize(raw).unwrap().as_deref(),
                Some("etc/passwd"),
                "{raw}"
            );
        }
        assert_eq!(normalize("./").unwrap(), None);
        assert_eq!(normalize("").unwrap(), None);
    }

    #[test]
    fn normalize_refuses_dotdot() {
        for raw in ["../etc", "a/../../b", "a/..", "/.."] {
            let err = normalize(raw).unwrap_err().to_string();
            assert!(err.contains(raw) && err.contains(".."), "{err}");
        }
        assert!(normalize("a/..b/c..").is_ok());
    }

    #[test]
    fn whiteout_names_round_trip() {
        assert_eq!(whiteout_for("usr/share/doc/foo"), "usr/share/doc/.wh.foo");
        assert_eq!(whiteout_for("foo"), ".wh.foo");
        assert_eq!(
            whiteout_meaning("usr/share/doc/.wh.foo"),
            Some(Whiteout::Deletes("usr/share/doc/foo".into()))
        );
        assert_eq!(
            whiteout_meaning("var/cache/.wh..wh..opq"),
            Some(Whiteout::Opaque(Some("var/cache".into())))
        );
        assert_eq!(
            whiteout_meaning(".wh..wh..opq"),
            Some(Whiteout::Opaque(None))
        );
        assert_eq!(whiteout_meaning("usr/wh.foo"), None);
    }

    #[test]
    fn ancestors_and_inside() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
        assert!(is_inside("a/b", "a"));
        assert!(!is_inside("ab", "a"));
        assert!(!is_inside("a", "a"));
    }

    #[test]
    fn symlink_escape_is_lexical_and_relative_only() {
        assert!(!symlink_escapes("usr/bin/python", "python3"));
        assert!(!symlink_escapes("usr/bin/python", "../lib/x"));
        assert!(!symlink_escapes("usr/bin/python", "../../etc/x"));
        assert!(symlink_escapes("usr/bin/python", "../../../etc/x"));
        assert!(symlink_escapes("top", ".."));
        assert!(!symlink_escapes("etc/localtime", "/usr/share/zoneinfo/UTC"));
        assert!(!symlink_escapes("etc/x", "/../../../y"));
    }
}
