//! Loading a binary as glibc's `ld.so` (or musl's) would: the interpreter, the dependency
//! search, the breadth-first load order and the symbol-version check.
//!
//! glibc (`_dl_map_object` in `elf/dl-load.c`, 2.36), for each `DT_NEEDED` name of an object:
//!
//! 1. an object already loaded under that name or soname is used again (the interpreter is
//!    loaded first, so `ld-linux-x86-64.so.2` is always found);
//! 2. a name with a `/` is a path (after `$ORIGIN`, `$LIB`, `$PLATFORM` expansion);
//! 3. when the object has no `DT_RUNPATH`: the `DT_RPATH` of the object, of the object that
//!    loaded it, and so on up to the executable (an object with a `DT_RUNPATH` has no
//!    `DT_RPATH`, as `get-dynamic-info.h` drops it);
//! 4. `LD_LIBRARY_PATH` (see [`Checker::with_library_path`]), then the object's own
//!    `DT_RUNPATH`;
//! 5. unless the object has `DF_1_NODEFLIB`: `ld.so.cache` (entries with the flags this
//!    platform's loader accepts, first match), then the platform's default directories.
//!
//! A candidate of the wrong class or machine is skipped, as `open_verify` skips it; a
//! candidate that is not ELF at all stops the search with an error, as it stops `ld.so`. A
//! found object's identity is its canonical path (`ld.so` compares device and inode). Then, for
//! every version an object needs from a library (`DT_VERNEED`), the object loaded for that
//! soname must define it (`_dl_check_map_versions`); weak needs may be missing, and a library
//! without version definitions satisfies any.
//!
//! musl (`load_library` in `ldso/dynlink.c`): its own names (`libc.so`, `libpthread.so`, ...)
//! are the loader itself; `LD_LIBRARY_PATH`; `DT_RUNPATH`, else `DT_RPATH`, of the object and of
//! every object up the loader chain; then the lines of `etc/ld-musl-ARCH.path`, else `/lib:/usr/local/lib:
//! /usr/lib`. No cache, no symbol versions, no class check.
//!
//! `LD_LIBRARY_PATH` comes from the image configuration: [`Checker::with_library_path`]
//! (glibc: after the `DT_RPATH`s; musl: first). Not modelled: `LD_PRELOAD`, `etc/ld.so.preload`, hwcap subdirectories, an empty search-path element
//! (the working directory), and setuid restrictions. Relative paths are taken relative to the
//! root, the usual working directory of a container.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::cache::{libcmp, CacheEntry};
use super::platform::Platform;
use super::{resolve_spelled, view_path, Resolved, View};
use crate::verdict::elf::ElfInfo;

/// The most objects one binary may load before the rest are ignored.
pub const MAX_OBJECTS: usize = 1024;

/// Which C library's loader runs the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Libc {
    /// glibc's `ld.so`.
    Glibc,
    /// musl's dynamic linker.
    Musl,
}

impl Libc {
    /// The loader an interpreter path names: musl for `ld-musl-*`, glibc otherwise.
    pub fn of_interp(interp: &str) -> Libc {
        if interp
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("ld-musl-"))
        {
            Libc::Musl
        } else {
            Libc::Glibc
        }
    }
}

/// Why a binary would not start.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LoadProblem {
    /// `PT_INTERP` names a file the image does not have: `execve` fails.
    MissingInterpreter {
        /// The binary (canonical path).
        binary: String,
        /// The interpreter as the binary names it.
        interp: String,
    },
    /// A `DT_NEEDED` library is found nowhere the loader looks.
    UnresolvedLibrary {
        /// The object whose `DT_NEEDED` it is (canonical path).
        binary: String,
        /// The name it needs.
        soname: String,
        /// Where the loader looked, in order (`RUNPATH /opt/lib`, `ld.so.cache`, `/usr/lib`).
        searched: Vec<String>,
    },
    /// The loader found a file for a `DT_NEEDED` name that it cannot load (not ELF): it stops.
    InvalidLibrary {
        /// The object whose `DT_NEEDED` it is (canonical path).
        binary: String,
        /// The name it needs.
        soname: String,
        /// The file found (canonical path).
        path: String,
    },
    /// A library lacks a (non-weak) symbol version an object needs from it.
    MissingVersion {
        /// The object that needs the version (canonical path).
        binary: String,
        /// The library loaded for `soname` (canonical path).
        library: String,
        /// The soname the need names.
        soname: String,
        /// The version needed, e.g. `GLIBC_2.38`.
        version: String,
        /// The highest version the library defines with the same prefix (`GLIBC_2.36`),
        /// compared numerically.
        highest: Option<String>,
    },
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadProblem::MissingInterpreter { binary, interp } => {
                write!(
                    f,
                    "{binary} needs the program interpreter {interp}, which is missing"
                )
            }
            LoadProblem::UnresolvedLibrary {
                binary,
                soname,
                searched,
            } => write!(
                f,
                "{binary} needs {soname}: not found in ({})",
                searched.join(", ")
            ),
            LoadProblem::InvalidLibrary {
                binary,
                soname,
                path,
            } => write!(
                f,
                "{binary} needs {soname}: {path} is found first but is not a loadable ELF file"
            ),
            LoadProblem::MissingVersion {
                binary,
                library,
                soname,
                version,
                highest,
            } => match highest {
                Some(h) => write!(
                    f,
                    "{binary} needs {version} (from {soname}); {library} defines up to {h}"
                ),
                None => write!(
                    f,
                    "{binary} needs {version} (from {soname}); {library} defines no {}* version",
                    version_prefix(version)
                ),
            },
        }
    }
}

/// `GLIBC_` of `GLIBC_2.38`: everything before the first digit.
fn version_prefix(v: &str) -> &str {
    let at = v.find(|c: char| c.is_ascii_digit()).unwrap_or(v.len());
    &v[..at]
}

/// Compares `2.38` with `2.4` as version numbers (dot-separated numbers; other parts as text).
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let mut ia = a.split('.');
    let mut ib = b.split('.');
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => x.cmp(y),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

/// The highest of `defines` with the prefix of `version`.
fn highest_like(defines: &[String], version: &str) -> Option<String> {
    let prefix = version_prefix(version);
    defines
        .iter()
        .filter(|d| version_prefix(d) == prefix && d.len() > prefix.len())
        .max_by(|a, b| version_cmp(&a[prefix.len()..], &b[prefix.len()..]))
        .cloned()
}

/// Checks one binary. For many binaries of one image, build a [`Checker`] once: it memoises
/// searches across binaries.
pub fn check_binary(
    view: &dyn View,
    path: &str,
    cache: &[CacheEntry],
    flavour: Libc,
) -> Vec<LoadProblem> {
    Checker::new(view, cache, flavour).check(path)
}

/// A loaded object.
#[derive(Debug)]
struct Obj<'v> {
    /// The path `ld.so` opened it by (its `l_name`): absolute as spelled, or the canonical
    /// path for the binary itself.
    name: String,
    /// Canonical path in the view.
    real: String,
    /// Names it answers to (the names it was loaded by, its soname).
    names: Vec<String>,
    info: &'v ElfInfo,
    /// Index of the object whose `DT_NEEDED` loaded it.
    loader: Option<usize>,
    /// `$ORIGIN` (absolute, no trailing `/`).
    origin: String,
}

/// The objects one binary loads, and what went wrong.
struct Walk<'v> {
    objs: Vec<Obj<'v>>,
    problems: Vec<LoadProblem>,
    flavour: Libc,
}

/// The outcome of a search.
#[derive(Clone, Debug)]
enum Found {
    /// (the path as opened, canonical path)
    Yes(String, String),
    No(Vec<String>),
    Invalid(String),
}

/// What one candidate file is.
#[derive(Clone, Debug)]
enum Candidate {
    Loadable(String),
    WrongKind,
    NotElf(String),
    Absent,
}

/// A search: (name, labelled directories, NODEFLIB, machine, 64-bit, loader).
type SearchKey = (String, Vec<String>, bool, u16, bool, Libc);
/// A candidate file: (view path, machine, 64-bit, loader).
type CandidateKey = (String, u16, bool, Libc);

/// Checks binaries of one image, memoising per (name, search context) across them.
pub struct Checker<'v> {
    view: &'v dyn View,
    cache: &'v [CacheEntry],
    flavour: Libc,
    platforms: RefCell<HashMap<(u16, bool), Platform>>,
    candidates: RefCell<HashMap<CandidateKey, Candidate>>,
    searches: RefCell<HashMap<SearchKey, Found>>,
    musl_path: RefCell<HashMap<String, Vec<String>>>,
    library_path: Vec<String>,
}

impl<'v> Checker<'v> {
    /// A checker over `view`, with the `ld.so.cache` entries the image will have (ignored
    /// for musl).
    pub fn new(view: &'v dyn View, cache: &'v [CacheEntry], flavour: Libc) -> Checker<'v> {
        Checker {
            view,
            cache,
            flavour,
            platforms: RefCell::default(),
            candidates: RefCell::default(),
            searches: RefCell::default(),
            musl_path: RefCell::default(),
            library_path: Vec::new(),
        }
    }

    /// The `LD_LIBRARY_PATH` the image's configuration sets (`Env`), searched after `DT_RPATH`
    /// and before `DT_RUNPATH` (glibc) or first (musl). Elements are separated by
    /// `:` (glibc also accepts `;`); empty ones (the working directory) are ignored.
    pub fn with_library_path(mut self, value: &str) -> Checker<'v> {
        self.library_path = value
            .split([':', ';'])
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
        self
    }

    fn platform(&self, info: &ElfInfo) -> Platform {
        let key = (
            info.machine,
            info.class == crate::verdict::elf::ElfClass::Elf64,
        );
        self.platforms
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| Platform::for_machine(self.view, info.machine, info.class))
            .clone()
    }

    /// What stops the binary at canonical `path` from starting (empty: it loads, or it is not
    /// a dynamically linked ELF file).
    pub fn check(&self, path: &str) -> Vec<LoadProblem> {
        let Some(mut walk) = self.walk(path) else {
            return Vec::new();
        };
        if walk.flavour == Libc::Glibc {
            self.check_versions(&walk.objs, &mut walk.problems);
        }
        walk.problems
    }

    /// The objects a binary loads after itself, in load order, as (path opened, canonical
    /// path): what `ld.so --list` prints (the interpreter second, as the loader lists it).
    pub fn load_order(&self, path: &str) -> Vec<(String, String)> {
        self.walk(path).map_or_else(Vec::new, |w| {
            w.objs
                .into_iter()
                .skip(1)
                .map(|o| (o.name, o.real))
                .collect()
        })
    }

    /// Loads `path` and its dependencies breadth-first, as `_dl_map_object_deps` does: each
    /// object's `DT_NEEDED` in order, new objects appended. `None`: not dynamic ELF.
    fn walk(&self, path: &str) -> Option<Walk<'v>> {
        let info = self.view.elf(path)?;
        if !info.dynamic && info.interp.is_none() {
            return None; // static
        }
        let platform = self.platform(info);
        let mut problems = Vec::new();
        let mut objs: Vec<Obj<'v>> = vec![Obj {
            name: path.to_owned(),
            real: path.to_owned(),
            names: info.soname.iter().cloned().collect(),
            info,
            loader: None,
            origin: parent_abs(path),
        }];
        let flavour = info.interp.as_deref().map_or(self.flavour, Libc::of_interp);
        let mut interp_at = None;
        // A library without PT_INTERP is loaded by a program: its loader is already there.
        let implicit = match (&info.interp, flavour) {
            (None, Libc::Glibc) => platform.interp.clone(),
            _ => None,
        };
        if let Some(interp) = info.interp.as_ref().or(implicit.as_ref()) {
            match resolve_spelled(self.view, interp) {
                Resolved::File(real) => {
                    if let Some(rinfo) = self.view.elf(&real) {
                        let mut names = vec![interp.clone()];
                        names.extend(rinfo.soname.iter().cloned());
                        interp_at = Some(objs.len());
                        objs.push(Obj {
                            name: interp.clone(),
                            real,
                            names,
                            info: rinfo,
                            loader: None,
                            origin: parent_abs_spelled(interp),
                        });
                    }
                }
                _ if implicit.is_some() => {}
                _ => {
                    problems.push(LoadProblem::MissingInterpreter {
                        binary: path.to_owned(),
                        interp: interp.clone(),
                    });
                    return Some(Walk {
                        objs,
                        problems,
                        flavour,
                    });
                }
            }
        }
        let mut i = 0;
        while i < objs.len() && objs.len() < MAX_OBJECTS {
            if Some(i) == interp_at {
                i += 1; // the interpreter is relocated on its own
                continue;
            }
            for name in objs[i].info.needed.clone() {
                if objs.iter().any(|o| o.names.contains(&name))
                    || (flavour == Libc::Musl && musl_reserved(&name))
                {
                    continue;
                }
                match self.locate(&objs, i, &name, &platform, flavour) {
                    Found::Yes(opened, real) => {
                        if let Some(o) = objs.iter_mut().find(|o| o.real == real) {
                            o.names.push(name);
                            continue;
                        }
                        let Some(linfo) = self.view.elf(&real) else {
                            continue;
                        };
                        let mut names = vec![name, opened.clone()];
                        names.extend(linfo.soname.iter().cloned());
                        let origin = parent_abs_spelled(&opened);
                        objs.push(Obj {
                            name: opened,
                            real,
                            names,
                            info: linfo,
                            loader: Some(i),
                            origin,
                        });
                    }
                    Found::No(searched) => problems.push(LoadProblem::UnresolvedLibrary {
                        binary: objs[i].real.clone(),
                        soname: name,
                        searched,
                    }),
                    Found::Invalid(p) => problems.push(LoadProblem::InvalidLibrary {
                        binary: objs[i].real.clone(),
                        soname: name,
                        path: p,
                    }),
                }
            }
            i += 1;
        }
        Some(Walk {
            objs,
            problems,
            flavour,
        })
    }

    fn check_versions(&self, objs: &[Obj<'v>], problems: &mut Vec<LoadProblem>) {
        let mut seen = HashSet::new();
        for o in objs {
            for need in &o.info.needs {
                let Some(lib) = objs.iter().find(|l| l.names.contains(&need.file)) else {
                    continue; // not loaded: reported as unresolved
                };
                if lib.info.defines.is_empty() {
                    continue; // no version information: ld.so only warns
                }
                for v in &need.versions {
                    if v.weak || lib.info.defines.contains(&v.name) {
                        continue;
                    }
                    if !seen.insert((o.real.clone(), lib.real.clone(), v.name.clone())) {
                        continue;
                    }
                    problems.push(LoadProblem::MissingVersion {
                        binary: o.real.clone(),
                        library: lib.real.clone(),
                        soname: need.file.clone(),
                        version: v.name.clone(),
                        highest: highest_like(&lib.info.defines, &v.name),
                    });
                }
            }
        }
    }

    /// Finds `name`, needed by `objs[by]`.
    fn locate(
        &self,
        objs: &[Obj<'v>],
        by: usize,
        name: &str,
        platform: &Platform,
        flavour: Libc,
    ) -> Found {
        let obj = &objs[by];
        if name.contains('/') {
            let Some(path) = expand(name, obj, platform, flavour) else {
                return Found::No(vec![name.to_owned()]);
            };
            return match self.candidate(&path, platform, flavour) {
                Candidate::Loadable(real) => Found::Yes(path, real),
                Candidate::NotElf(real) => Found::Invalid(real),
                _ => Found::No(vec![path]),
            };
        }
        // The search context: labelled directories, in order.
        let mut dirs: Vec<String> = Vec::new();
        let mut push_all = |label: &str, o: &Obj<'v>, list: &[String]| {
            for d in list {
                if d.is_empty() {
                    continue;
                }
                if let Some(e) = expand(d, o, platform, flavour) {
                    dirs.push(format!("{label} {}", trim_dir(&e)));
                }
            }
        };
        match flavour {
            Libc::Glibc => {
                if obj.info.runpath.is_empty() {
                    let mut at = Some(by);
                    let mut hops = 0;
                    while let Some(k) = at {
                        let o = &objs[k];
                        if o.info.runpath.is_empty() {
                            push_all("RPATH", o, &o.info.rpath);
                        }
                        at = o.loader;
                        hops += 1;
                        if hops > MAX_OBJECTS {
                            break;
                        }
                    }
                }
                push_all("LD_LIBRARY_PATH", &objs[0], &self.library_path);
                if !obj.info.runpath.is_empty() {
                    push_all("RUNPATH", obj, &obj.info.runpath);
                }
            }
            Libc::Musl => {
                push_all("LD_LIBRARY_PATH", &objs[0], &self.library_path);
                let mut at = Some(by);
                let mut hops = 0;
                while let Some(k) = at {
                    let o = &objs[k];
                    let list = if o.info.runpath.is_empty() {
                        &o.info.rpath
                    } else {
                        &o.info.runpath
                    };
                    push_all("RPATH", o, list);
                    at = o.loader;
                    hops += 1;
                    if hops > MAX_OBJECTS {
                        break;
                    }
                }
            }
        }
        let nodeflib = flavour == Libc::Glibc && obj.info.nodeflib;
        let key = (
            name.to_owned(),
            dirs,
            nodeflib,
            platform.machine,
            platform.class == crate::verdict::elf::ElfClass::Elf64,
            flavour,
        );
        if let Some(f) = self.searches.borrow().get(&key) {
            return f.clone();
        }
        let found = self.search(name, &key.1, nodeflib, platform, flavour);
        self.searches.borrow_mut().insert(key, found.clone());
        found
    }

    fn search(
        &self,
        name: &str,
        dirs: &[String],
        nodeflib: bool,
        platform: &Platform,
        flavour: Libc,
    ) -> Found {
        let mut searched = Vec::new();
        for labelled in dirs {
            let dir = labelled
                .split_once(' ')
                .map_or(labelled.as_str(), |(_, d)| d);
            searched.push(labelled.clone());
            if let Some(f) = self.try_dir(dir, name, platform, flavour) {
                return f;
            }
        }
        match flavour {
            Libc::Glibc => {
                if nodeflib {
                    return Found::No(searched);
                }
                searched.push("ld.so.cache".to_owned());
                for e in self.cache {
                    if e.hwcap != 0
                        || !platform.accepts_cache_flags(e.flags)
                        || libcmp(&e.key, name).is_ne()
                    {
                        continue;
                    }
                    // The first acceptable entry is the one ld.so opens; if that fails, it
                    // goes on to the default directories.
                    match self.candidate(&e.path, platform, flavour) {
                        Candidate::Loadable(real) => return Found::Yes(e.path.clone(), real),
                        Candidate::NotElf(real) => return Found::Invalid(real),
                        _ => break,
                    }
                }
                for d in &platform.default_dirs {
                    searched.push(d.clone());
                    if let Some(f) = self.try_dir(d, name, platform, flavour) {
                        return f;
                    }
                }
            }
            Libc::Musl => {
                for d in self.musl_sys_path(platform) {
                    searched.push(d.clone());
                    if let Some(f) = self.try_dir(&d, name, platform, flavour) {
                        return f;
                    }
                }
            }
        }
        Found::No(searched)
    }

    fn try_dir(&self, dir: &str, name: &str, platform: &Platform, flavour: Libc) -> Option<Found> {
        let path = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        match self.candidate(&path, platform, flavour) {
            Candidate::Loadable(real) => Some(Found::Yes(path, real)),
            Candidate::NotElf(real) => Some(Found::Invalid(real)),
            Candidate::WrongKind | Candidate::Absent => None,
        }
    }

    fn candidate(&self, spelled: &str, platform: &Platform, flavour: Libc) -> Candidate {
        let key = (
            view_path(spelled),
            platform.machine,
            platform.class == crate::verdict::elf::ElfClass::Elf64,
            flavour,
        );
        if let Some(c) = self.candidates.borrow().get(&key) {
            return c.clone();
        }
        let c = match self.view.resolve(&key.0) {
            Resolved::File(real) => match self.view.elf(&real) {
                Some(info) if flavour == Libc::Musl || platform.loads(info) => {
                    Candidate::Loadable(real)
                }
                Some(_) => Candidate::WrongKind,
                None => Candidate::NotElf(real),
            },
            _ => Candidate::Absent,
        };
        self.candidates.borrow_mut().insert(key, c.clone());
        c
    }

    /// musl's system search path: `etc/ld-musl-ARCH.path` (elements separated by `:` or new
    /// lines), else `/lib:/usr/local/lib:/usr/lib`.
    fn musl_sys_path(&self, platform: &Platform) -> Vec<String> {
        let arch = match platform.machine {
            super::platform::EM_X86_64 => "x86_64",
            super::platform::EM_AARCH64 => "aarch64",
            super::platform::EM_386 => "i386",
            super::platform::EM_ARM => "armhf",
            _ => "unknown",
        };
        let file = format!("etc/ld-musl-{arch}.path");
        if let Some(p) = self.musl_path.borrow().get(&file) {
            return p.clone();
        }
        let text = match self.view.resolve(&file) {
            Resolved::File(real) => self.view.text(&real).map(|t| t.to_vec()),
            _ => None,
        };
        let dirs: Vec<String> = match text {
            Some(t) => String::from_utf8_lossy(&t)
                .split([':', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => ["/lib", "/usr/local/lib", "/usr/lib"]
                .map(str::to_owned)
                .to_vec(),
        };
        self.musl_path.borrow_mut().insert(file, dirs.clone());
        dirs
    }
}

/// musl's reserved names, which are the loader itself: `libc.so`, `libdl.so`, ... and their
/// versioned forms.
fn musl_reserved(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("lib") else {
        return false;
    };
    ["c", "pthread", "rt", "m", "dl", "util", "xnet"]
        .iter()
        .any(|r| {
            rest.strip_prefix(r)
                .is_some_and(|t| t == ".so" || t.starts_with(".so."))
        })
}

/// `/usr/bin` for the canonical `usr/bin/ls`.
fn parent_abs(canonical: &str) -> String {
    match canonical.rsplit_once('/') {
        Some((d, _)) => format!("/{d}"),
        None => "/".to_owned(),
    }
}

/// The directory of a path the loader spells (absolute; relative taken from the root).
fn parent_abs_spelled(spelled: &str) -> String {
    parent_abs(&view_path(spelled))
}

/// A search directory without trailing `/`s (`/` stays).
fn trim_dir(d: &str) -> String {
    let t = d.trim_end_matches('/');
    if t.is_empty() && d.starts_with('/') {
        "/".to_owned()
    } else {
        t.to_owned()
    }
}

/// Expands `$ORIGIN`, `$LIB` and `$PLATFORM` (also in `${...}` form; musl knows only
/// `$ORIGIN`). `None` when a token cannot be expanded (ld.so drops that element).
fn expand(s: &str, obj: &Obj<'_>, platform: &Platform, flavour: Libc) -> Option<String> {
    if !s.contains('$') {
        return Some(s.to_owned());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (token, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = match token {
            "ORIGIN" => Some(obj.origin.as_str()),
            "LIB" if flavour == Libc::Glibc => Some(platform.dst_lib.as_str()),
            "PLATFORM" if flavour == Libc::Glibc => Some(platform.dst_platform.as_str()),
            _ => None,
        };
        match value {
            Some(v) if len > 0 => {
                out.push_str(v);
                rest = &after[len..];
            }
            _ if flavour == Libc::Glibc
                && len > 0
                && matches!(token, "ORIGIN" | "LIB" | "PLATFORM") =>
            {
                return None
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Some(out)
}
