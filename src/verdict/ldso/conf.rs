//! `etc/ld.so.conf` as glibc's `ldconfig` reads it (`parse_conf`, `parse_conf_include` and
//! `add_dir_1` in `elf/ldconfig.c`):
//!
//! - everything from the first `#` on a line is a comment; leading white space goes, and so do
//!   trailing white space and trailing `/`s of a directory;
//! - `include PATTERN...` (blank-separated) reads every file the glob matches, in sorted order;
//!   a relative pattern is relative to the directory of the file that includes it;
//! - `hwcap ...` lines are ignored (as glibc 2.36 does, with a warning);
//! - any other line names one directory, optionally with `=TYPE` (`libc4`, `libc5`, `libc6`,
//!   `glibc2`), which sets the flags of untyped ELF libraries found there.
//!
//! ldconfig does not bound its include recursion; we stop at [`MAX_INCLUDE_DEPTH`] levels and
//! [`MAX_CONF_FILES`] files.

use super::platform::{FLAG_ELF_LIBC5, FLAG_ELF_LIBC6};
use super::{resolve_spelled, Resolved, View};

/// How deep `include`s nest before the rest are ignored.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// How many configuration files are read at most.
pub const MAX_CONF_FILES: usize = 1024;

/// One directory line of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfDir {
    /// The directory as written (trailing white space and `/`s removed).
    pub path: String,
    /// The library type given with `=TYPE`, as `ldconfig` flags (`None`: any).
    pub flag: Option<i32>,
    /// The file and line it came from (`/etc/ld.so.conf.d/libc.conf:2`).
    pub from: String,
}

/// The directories `etc/ld.so.conf` lists, in the order `ldconfig` reads them.
pub fn conf_dirs(view: &dyn View) -> Vec<ConfDir> {
    let mut state = State {
        out: Vec::new(),
        files: 0,
    };
    parse_file(view, "/etc/ld.so.conf", 0, &mut state);
    state.out
}

struct State {
    out: Vec<ConfDir>,
    files: usize,
}

fn parse_file(view: &dyn View, file: &str, depth: usize, st: &mut State) {
    if depth > MAX_INCLUDE_DEPTH || st.files >= MAX_CONF_FILES {
        return;
    }
    st.files += 1;
    let Resolved::File(canon) = resolve_spelled(view, file) else {
        return;
    };
    let Some(text) = view.text(&canon) else {
        return;
    };
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = match raw.iter().position(|&b| b == b'#') {
            Some(at) => &raw[..at],
            None => raw,
        };
        // NUL ends a C string: what follows is never seen.
        let line = match line.iter().position(|&b| b == 0) {
            Some(at) => &line[..at],
            None => line,
        };
        let line = String::from_utf8_lossy(line);
        let line = line.trim_start_matches(is_c_space);
        if line.is_empty() {
            continue;
        }
        let blank_after = |n: usize| matches!(line.as_bytes().get(n), Some(b' ' | b'\t'));
        if line.starts_with("include") && blank_after(7) {
            for pattern in line[8..].split([' ', '\t']).filter(|p| !p.is_empty()) {
                include(view, file, pattern, depth, st);
            }
        } else if line
            .as_bytes()
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"hwcap"))
            && blank_after(5)
        {
            continue;
        } else {
            add_dir(line, &format!("{file}:{}", i + 1), &mut st.out);
        }
    }
}

fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn add_dir(line: &str, from: &str, out: &mut Vec<ConfDir>) {
    let (path, flag) = match line.split_once('=') {
        Some((p, t)) => {
            let flag = match t {
                "libc5" => Some(FLAG_ELF_LIBC5),
                "libc6" | "glibc2" => Some(FLAG_ELF_LIBC6),
                "libc4" => Some(0),
                _ => None, // "not a known library type": any
            };
            (p, flag)
        }
        None => (line, None),
    };
    let path = path.trim_end_matches(is_c_space).trim_end_matches('/');
    if path.is_empty() {
        return;
    }
    out.push(ConfDir {
        path: path.to_owned(),
        flag,
        from: from.to_owned(),
    });
}

fn include(view: &dyn View, file: &str, pattern: &str, depth: usize, st: &mut State) {
    let pattern = if !pattern.starts_with('/') && file.contains('/') {
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{}/{pattern}", if dir.is_empty() { "" } else { dir })
    } else {
        pattern.to_owned()
    };
    for path in glob(view, &pattern) {
        parse_file(view, &path, depth + 1, st);
    }
}

/// The paths matching a glob(3) pattern (`*`, `?`, `[...]` in any component; a leading `.` is
/// only matched explicitly), sorted, spelled as the pattern spells them.
pub fn glob(view: &dyn View, pattern: &str) -> Vec<String> {
    let absolute = pattern.starts_with('/');
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    // (spelled so far, canonical directory it resolves to)
    let mut current: Vec<(String, String)> = vec![(String::new(), String::new())];
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for (spelled, canon) in &current {
            let names: Vec<String> = if is_wild(comp) {
                let mut names: Vec<String> = view
                    .list(canon)
                    .into_iter()
                    .filter(|(n, _)| fnmatch(comp.as_bytes(), n.as_bytes()))
                    .map(|(n, _)| n)
                    .collect();
                names.sort();
                names
            } else {
                vec![comp.to_string()]
            };
            for n in names {
                let sp = if spelled.is_empty() && !absolute {
                    n.clone()
                } else {
                    format!("{spelled}/{n}")
                };
                let target = if canon.is_empty() {
                    n.clone()
                } else {
                    format!("{canon}/{n}")
                };
                match view.resolve(&target) {
                    Resolved::Dir(d) => next.push((sp, d)),
                    Resolved::File(f) if last => next.push((sp, f)),
                    _ => {}
                }
            }
            if next.len() > MAX_CONF_FILES {
                break;
            }
        }
        current = next;
    }
    if comps.is_empty() {
        return Vec::new();
    }
    current.into_iter().map(|(s, _)| s).collect()
}

fn is_wild(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// fnmatch(3) without flags but with glob's rule that a leading `.` needs an explicit `.`.
pub fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    matches_from(pattern, name, 0)
}

fn matches_from(p: &[u8], n: &[u8], depth: usize) -> bool {
    if depth > 64 {
        return false; // a pattern with that many stars is not a configuration file's
    }
    let (mut pi, mut ni) = (0, 0);
    while pi < p.len() {
        match p[pi] {
            b'*' => {
                while pi < p.len() && p[pi] == b'*' {
                    pi += 1;
                }
                if pi == p.len() {
                    return true;
                }
                return (ni..=n.len()).any(|k| matches_from(&p[pi..], &n[k..], depth + 1));
            }
            b'?' => {
                if ni >= n.len() {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
            b'[' => {
                let Some(&c) = n.get(ni) else {
                    return false;
                };
                match bracket(&p[pi..], c) {
                    Some((ok, used)) => {
                        if !ok {
                            return false;
                        }
                        pi += used;
                        ni += 1;
                    }
                    None => {
                        // No closing `]`: a literal `[`.
                        if c != b'[' {
                            return false;
                        }
                        pi += 1;
                        ni += 1;
                    }
                }
            }
            b'\\' if pi + 1 < p.len() => {
                if n.get(ni) != Some(&p[pi + 1]) {
                    return false;
                }
                pi += 2;
                ni += 1;
            }
            c => {
                if n.get(ni) != Some(&c) {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
        }
    }
    ni == n.len()
}

/// Matches `c` against the bracket expression at the start of `p`: (matched, bytes used).
fn bracket(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}
