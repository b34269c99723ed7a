//! The rebase safety verdict of one platform: what swapping the base changes under the
//! application, and whether the result is still what the application was built against.
//!
//! Every layer of the image and of the new base is read once, through the run's
//! [`LayerSummaries`] (the package-database step has usually read most of them already), and the
//! analysis works on the summaries:
//! - paths the application hides, deletes or relies on ([`crate::layer::safety_findings`],
//!   comparing contents, not headers);
//! - the release of each base ([`crate::verdict::release`]);
//! - os.version / os.features / variant differences between the bases' configs.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::load::Image;
use super::stack::{summaries_of, Found, Stack, StackView};
use super::summaries::LayerSummaries;
use crate::error::Result;
use crate::layer::EntryKind;
use crate::layer::{resolve, Lookup};
use crate::layer::{safety_findings, EntryInfo, FileEntry, Finding, FindingClass, FindingKind};
use crate::model::Platform;
use crate::pkgdb::{self, BytesRead, Format};
use crate::transport::Source;
use crate::verdict::elf::ElfInfo;
use crate::verdict::{ldso, relations, release, LoadFacts, ReleaseFacts};

/// The rebase safety report of one platform: what the swap of bases changes under the application.
#[derive(Clone, Debug, Serialize)]
pub struct SafetyReport {
    /// The platform of the image's config.
    pub platform: Platform,
    /// What changes under the application, in path order.
    pub findings: Vec<Finding>,
    /// os.version / os.features / variant differences between the old and new base.
    pub platform_changes: Vec<String>,
    /// What the verdict could not check, and why (a relation it does not evaluate, a database
    /// that does not parse).
    pub notes: Vec<String>,
    /// The release of the old base (as its files say), when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_release: Option<release::Release>,
    /// The release of the new base, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_release: Option<release::Release>,
    /// Compressed bytes this verdict read, per source, beyond what the package-database step
    /// had already read (0 when the cache knew every layer).
    pub bytes_read: BytesRead,
}

impl SafetyReport {
    /// No real finding (notes on reconciled package databases and volatile state do not count).
    pub fn is_clean(&self) -> bool {
        self.real().next().is_none() && self.platform_changes.is_empty()
    }

    /// The real findings, in report order.
    pub fn real(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.class == FindingClass::Real)
    }

    /// How many things fail `--strict`: real findings and platform changes.
    pub fn real_count(&self) -> usize {
        self.real().count() + self.platform_changes.len()
    }

    /// The one-line verdict: `ok`, or `N real finding(s), first: …`.
    pub fn verdict(&self) -> String {
        let first = self
            .real()
            .map(|f| format!("{}: {}", f.path, f.detail))
            .chain(
                self.platform_changes
                    .iter()
                    .map(|c| format!("platform {c}")),
            )
            .next();
        match first {
            None => "ok".into(),
            Some(first) => format!("{} real finding(s), first: {first}", self.real_count()),
        }
    }
}

/// What the verdict of one platform looks at.
pub struct VerdictInput<'a> {
    /// Where the image's blobs are.
    pub image_src: &'a dyn Source,
    /// The image as it is (an earlier package-database layer stripped).
    pub image: &'a Image,
    /// How many of its layers are the old base's.
    pub base_len: usize,
    /// The old base.
    pub old_base: &'a Image,
    /// Where the new base's blobs are.
    pub new_src: &'a dyn Source,
    /// The new base.
    pub new_base: &'a Image,
    /// The files of the package-database layer the rebase adds on top (empty: none).
    pub db_files: &'a [FileEntry],
    /// Check that the binaries still load (`--no-abi-check` turns it off).
    pub abi: bool,
}

/// The verdict of one platform (see the module documentation).
pub fn analyze(input: &VerdictInput, summaries: &LayerSummaries) -> Result<SafetyReport> {
    let (image_bytes, new_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let image_layers = &input.image.manifest.layers;
    let new_layers = &input.new_base.manifest.layers;
    let (image_s, new_s) = rayon::join(
        || summaries_of(input.image_src, image_layers, summaries, &image_bytes),
        || summaries_of(input.new_src, new_layers, summaries, &new_bytes),
    );
    let (image_s, new_s) = (image_s?, new_s?);
    let image_parts: Vec<_> = image_layers
        .iter()
        .zip(image_s)
        .map(|(d, s)| (input.image_src, d, s))
        .collect();
    let new_parts: Vec<_> = new_layers
        .iter()
        .zip(new_s)
        .map(|(d, s)| (input.new_src, d, s))
        .collect();
    let base_len = input.base_len.min(image_parts.len());
    let stacks = Judged {
        old: Stack::new("old base", image_parts[..base_len].iter().cloned()),
        new: Stack::new("new base", new_parts.iter().cloned()),
        image: Stack::new("image", image_parts.iter().cloned()),
        result: Stack::new(
            "result",
            new_parts
                .iter()
                .cloned()
                .chain(image_parts[base_len..].iter().cloned()),
        ),
        app: image_parts[base_len..]
            .iter()
            .map(|(_, _, s)| s.entries.clone())
            .collect(),
        new_len: new_parts.len(),
    };
    let checks = Checks {
        db_files: input.db_files,
        library_path: library_path(input.image),
        windows: input.image.platform().os == "windows",
        abi: input.abi,
    };
    let judgement = stacks.judge(&checks, &image_bytes, &new_bytes);

    let mut platform_changes = Vec::new();
    let field = |c: &Image, k: &str| c.config.json.get(k).cloned().unwrap_or_default();
    for key in ["os.version", "os.features", "variant"] {
        let (a, b) = (field(input.old_base, key), field(input.new_base, key));
        if a != b {
            platform_changes.push(format!("{key}: {a} -> {b}"));
        }
    }
    Ok(SafetyReport {
        platform: input.image.platform().clone(),
        findings: judgement.findings,
        platform_changes,
        notes: judgement.notes,
        old_release: judgement.old_release,
        new_release: judgement.new_release,
        bytes_read: BytesRead {
            image: image_bytes.load(Ordering::Relaxed),
            new_base: new_bytes.load(Ordering::Relaxed),
        },
    })
}

/// The four views of a rebase the verdict judges, built from layer summaries.
struct Judged<'a> {
    /// The old base: the image's bottom layers.
    old: Stack<'a>,
    /// The new base.
    new: Stack<'a>,
    /// The image as it is: old base + application layers.
    image: Stack<'a>,
    /// The result: new base + application layers.
    result: Stack<'a>,
    /// The application layers' entries, bottom to top.
    app: Vec<Vec<EntryInfo>>,
    /// How many layers of `result` are the new base's.
    new_len: usize,
}

/// What else the verdict needs to know.
struct Checks<'a> {
    /// The files of the package-database layer.
    db_files: &'a [FileEntry],
    /// `LD_LIBRARY_PATH` of the image's config.
    library_path: Option<String>,
    /// A Windows image: no ELF check.
    windows: bool,
    /// Check that binaries still load.
    abi: bool,
}

/// The verdict, before the platform's config differences are added.
struct Judgement {
    findings: Vec<Finding>,
    notes: Vec<String>,
    old_release: Option<release::Release>,
    new_release: Option<release::Release>,
}

impl Judged<'_> {
    /// Every check of the verdict, over the summaries (a file a link leads to outside what
    /// summaries keep is read again, and its bytes counted).
    fn judge(&self, checks: &Checks, image_bytes: &AtomicU64, new_bytes: &AtomicU64) -> Judgement {
        let mut findings = safety_findings(self.old.tree(), self.new.tree(), &self.app);

        // The release of each base, read through its own layers (os-release is a link on
        // Debian).
        let old_release = release::detect(&|p: &str| contents(&self.old, p, image_bytes));
        let new_release = release::detect(&|p: &str| contents(&self.new, p, new_bytes));
        match (&old_release, &new_release) {
            (Some(o), Some(n)) => {
                if let Some(words) = release::change(o, n) {
                    let mut f = Finding::new(
                        FindingKind::ReleaseChange,
                        FindingClass::Real,
                        n.file.clone(),
                        words,
                    );
                    f.release = Some(ReleaseFacts {
                        from: o.clone(),
                        to: n.clone(),
                    });
                    findings.insert(0, f);
                }
            }
            (Some(o), None) => findings.insert(
                0,
                Finding::new(
                    FindingKind::ReleaseChange,
                    FindingClass::Real,
                    o.file.clone(),
                    format!(
                        "the old base is {}; the new base names no release (no os-release or distribution release file): the application's packages were built for {}",
                        o.label(),
                        o.series
                    ),
                ),
            ),
            _ => {}
        }
        let views = Views {
            image: &self.image,
            new: &self.new,
            result: &self.result,
            db_files: checks.db_files,
            image_bytes,
            new_bytes,
        };
        let mut notes = Vec::new();
        findings.extend(views.relation_findings(&mut notes));
        if checks.windows {
            notes.push(
                "Windows image: its binaries are not checked (PE files, no ELF loader)".into(),
            );
        } else if !checks.abi {
            notes.push("--no-abi-check: whether the binaries still load was not checked".into());
        } else {
            findings.extend(abi_findings(
                &self.image,
                &self.result,
                self.new_len,
                checks.db_files,
                checks.library_path.as_deref(),
                &mut notes,
            ));
        }
        Judgement {
            findings,
            notes,
            old_release,
            new_release,
        }
    }
}

/// The stacks the checks of the result look at.
struct Views<'a> {
    /// The image as it is: old base + application layers.
    image: &'a Stack<'a>,
    /// The new base alone.
    new: &'a Stack<'a>,
    /// The new base + the application layers, under the package-database layer's files.
    result: &'a Stack<'a>,
    db_files: &'a [FileEntry],
    image_bytes: &'a AtomicU64,
    new_bytes: &'a AtomicU64,
}

/// The package databases whose relations are checked.
#[derive(Clone, Copy)]
enum DbKind {
    Dpkg,
    Apk,
    Rpm,
}

impl DbKind {
    /// The relation problems of one database file (`None`: it does not parse). rpm's file
    /// requirements are looked up in `stack`.
    fn relations(self, bytes: &[u8], stack: &Stack) -> Option<relations::Checked> {
        match self {
            DbKind::Dpkg => Some(relations::dpkg(
                &pkgdb::parse(Format::DpkgStatus, bytes).ok()?,
            )),
            DbKind::Apk => Some(relations::apk(
                &pkgdb::parse(Format::ApkInstalled, bytes).ok()?,
            )),
            DbKind::Rpm => {
                let db = pkgdb::rpm::read(bytes).ok()?;
                let tree = stack.tree();
                Some(relations::rpm(&db, &|f: &str| {
                    let f = f.trim_start_matches('/');
                    matches!(resolve(tree, f, true), Lookup::Found { entry: Some(_), .. })
                }))
            }
        }
    }
}

/// A relation problem, for telling new ones from those the image or the new base already had.
type ProblemKey = (String, String, relations::RelationKind, String);

fn key(p: &relations::Problem) -> ProblemKey {
    (
        p.package.name.clone(),
        p.package.arch.clone(),
        p.relation,
        p.wanted.clone(),
    )
}

impl Views<'_> {
    /// A file of the result: the package-database layer's copy when it writes one there.
    fn result_file(&self, path: &str) -> Option<Vec<u8>> {
        let target = match resolve(self.result.tree(), path, true) {
            Lookup::Found { path, .. } => path,
            _ => path.to_string(),
        };
        if let Some(f) = self.db_files.iter().find(|f| f.path == target) {
            return Some(f.content.clone());
        }
        contents(self.result, path, self.image_bytes)
    }

    /// The relations of the merged package databases that the rebase breaks: problems of the
    /// result that neither the image as it was nor the new base alone has.
    fn relation_findings(&self, notes: &mut Vec<String>) -> Vec<Finding> {
        let checks = [
            (Format::DpkgStatus.path(), DbKind::Dpkg),
            (Format::ApkInstalled.path(), DbKind::Apk),
        ]
        .into_iter()
        .chain(
            pkgdb::RpmDbKind::PATHS
                .iter()
                .filter(|(_, k)| *k == pkgdb::RpmDbKind::Sqlite)
                .map(|(p, _)| (*p, DbKind::Rpm)),
        );
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (path, check) in checks {
            let Some(result) = self.result_file(path) else {
                continue;
            };
            if !seen.insert(crate::model::Digest::of(&result)) {
                continue; // two paths, one database (a link)
            }
            let Some(after) = check.relations(&result, self.result) else {
                notes.push(format!(
                    "/{path}: the result's database does not parse, so its package relations were not checked"
                ));
                continue;
            };
            let known: std::collections::HashSet<ProblemKey> =
                [(self.image, self.image_bytes), (self.new, self.new_bytes)]
                    .into_iter()
                    .filter_map(|(stack, counter)| {
                        check.relations(&contents(stack, path, counter)?, stack)
                    })
                    .flat_map(|c| c.problems.iter().map(key).collect::<Vec<_>>())
                    .collect();
            for u in after.unchecked {
                notes.push(format!("/{path}: not checked: {u}"));
            }
            for p in after.problems {
                if known.contains(&key(&p)) {
                    continue;
                }
                let mut f = Finding::new(
                    FindingKind::PackageRelation,
                    FindingClass::Real,
                    p.package.name.clone(),
                    p.to_string(),
                );
                f.relation = Some(p);
                out.push(f);
            }
        }
        out
    }
}

/// `LD_LIBRARY_PATH` of the image's config, which the loader searches before the cache.
fn library_path(image: &Image) -> Option<String> {
    image
        .config
        .json
        .get("config")?
        .get("Env")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str()?.strip_prefix("LD_LIBRARY_PATH="))
        .next_back()
        .map(str::to_string)
}

/// The `ld.so.cache` entries the loader of `view` will use: the overlay's (regenerated) file,
/// else the tree's, else none (the loader then searches the default directories only).
fn cache_of(view: &StackView) -> Vec<ldso::CacheEntry> {
    use crate::verdict::files::LD_SO_CACHE;
    use ldso::View as _;
    let path = match view.resolve(LD_SO_CACHE) {
        ldso::Resolved::File(p) => p,
        _ => return Vec::new(),
    };
    view.text(&path)
        .and_then(|b| ldso::read_cache(b).ok())
        .map(|c| c.entries)
        .unwrap_or_default()
}

/// A loader problem's identity, for telling the rebase's from those the image already had.
fn load_key(p: &ldso::LoadProblem) -> String {
    match p {
        ldso::LoadProblem::MissingInterpreter { binary, interp } => format!("i {binary} {interp}"),
        ldso::LoadProblem::UnresolvedLibrary { binary, soname, .. }
        | ldso::LoadProblem::InvalidLibrary { binary, soname, .. } => {
            format!("l {binary} {soname}")
        }
        ldso::LoadProblem::MissingVersion {
            binary,
            soname,
            version,
            ..
        } => format!("v {binary} {soname} {version}"),
    }
}

/// Whether the binaries still load: every ELF file of the application's layers, and every ELF
/// file of the new base that loads a library the application's layers replaced, checked as
/// glibc's (or musl's) loader would load it in the result. Problems the image already had are
/// not the rebase's.
fn abi_findings(
    image: &Stack,
    result: &Stack,
    new_len: usize,
    db_files: &[FileEntry],
    env: Option<&str>,
    notes: &mut Vec<String>,
) -> Vec<Finding> {
    use ldso::{Libc, LoadProblem};
    let after = StackView::new(result, db_files);
    let before = StackView::new(image, &[]);
    let (after_cache, before_cache) = (cache_of(&after), cache_of(&before));
    let after_c = checkers(&after, &after_cache, env);
    let before_c = checkers(&before, &before_cache, env);
    let libc_of = |info: &ElfInfo| match info.interp.as_deref().map(Libc::of_interp) {
        Some(Libc::Musl) => 1,
        _ => 0,
    };
    let files = after.elf_files();
    let from_app = |layer: usize| layer >= new_len;
    // Libraries of the application's that stand where the new base has a file of its own.
    let replaced: std::collections::HashSet<&str> = files
        .iter()
        .filter(|(p, _, l)| from_app(*l) && result_base_has(result, new_len, p))
        .map(|(p, _, _)| *p)
        .collect();
    let mut problems: Vec<LoadProblem> = Vec::new();
    for (path, info, layer) in &files {
        if !info.dynamic && info.interp.is_none() {
            continue; // static, or nothing to load
        }
        let c = &after_c[libc_of(info)];
        let wanted = from_app(*layer)
            || (!replaced.is_empty()
                && c.load_order(path)
                    .iter()
                    .any(|(_, real)| replaced.contains(real.as_str())));
        if !wanted {
            continue;
        }
        let found = c.check(path);
        if found.is_empty() {
            continue;
        }
        let known: std::collections::HashSet<String> = if from_app(*layer) {
            // The same file in the image as it was (old base under the same app layers).
            before_c[libc_of(info)]
                .check(path)
                .iter()
                .map(load_key)
                .collect()
        } else {
            Default::default()
        };
        problems.extend(found.into_iter().filter(|p| !known.contains(&load_key(p))));
    }
    for (path, why) in result_elf_errors(result, new_len) {
        notes.push(format!("{path}: not checked: {why}"));
    }
    problems.sort_by_key(load_key);
    problems.dedup_by(|a, b| load_key(a) == load_key(b));
    problems
        .into_iter()
        .map(|p| {
            let from_new_base =
                |lib: &str| result.tree().layer_of(lib).is_some_and(|l| l < new_len);
            let (kind, load) = match &p {
                LoadProblem::MissingInterpreter { binary, interp } => (
                    FindingKind::MissingInterpreter,
                    LoadFacts {
                        binary: binary.clone(),
                        library: interp.clone(),
                        resolved: None,
                        version: None,
                        highest: None,
                    },
                ),
                LoadProblem::UnresolvedLibrary { binary, soname, .. } => (
                    FindingKind::UnresolvedLibrary,
                    LoadFacts {
                        binary: binary.clone(),
                        library: soname.clone(),
                        resolved: None,
                        version: None,
                        highest: None,
                    },
                ),
                LoadProblem::InvalidLibrary {
                    binary,
                    soname,
                    path,
                } => (
                    FindingKind::UnresolvedLibrary,
                    LoadFacts {
                        binary: binary.clone(),
                        library: soname.clone(),
                        resolved: Some(path.clone()),
                        version: None,
                        highest: None,
                    },
                ),
                LoadProblem::MissingVersion {
                    binary,
                    library,
                    soname,
                    version,
                    highest,
                } => (
                    FindingKind::MissingSymbolVersion,
                    LoadFacts {
                        binary: binary.clone(),
                        library: soname.clone(),
                        resolved: Some(library.clone()),
                        version: Some(version.clone()),
                        highest: highest.clone(),
                    },
                ),
            };
            let mut detail = p.to_string();
            if let Some(lib) = &load.resolved {
                if from_new_base(lib) {
                    detail =
                        detail.replacen(&format!("; {lib}"), &format!("; the new base's {lib}"), 1);
                }
            }
            let mut f = Finding::new(kind, FindingClass::Real, load.binary.clone(), detail);
            f.load = Some(load);
            f
        })
        .collect()
}

/// A glibc and a musl checker over `view` (index 0 and 1), with the image's `LD_LIBRARY_PATH`.
fn checkers<'v>(
    view: &'v dyn ldso::View,
    cache: &'v [ldso::CacheEntry],
    env: Option<&str>,
) -> [ldso::Checker<'v>; 2] {
    [ldso::Libc::Glibc, ldso::Libc::Musl].map(|libc| {
        let c = ldso::Checker::new(view, cache, libc);
        match env {
            Some(p) => c.with_library_path(p),
            None => c,
        }
    })
}

/// Whether the new base (the bottom `new_len` layers of `result`) has a file at `path`.
fn result_base_has(result: &Stack, new_len: usize, path: &str) -> bool {
    (0..new_len).any(|l| {
        result.summary(l).is_some_and(|s| {
            s.entries
                .iter()
                .any(|e| e.path == path && e.kind != EntryKind::Whiteout)
        })
    })
}

/// ELF files of the application's layers that could not be summarised (too big, malformed).
fn result_elf_errors(result: &Stack, new_len: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for l in new_len..result.tree().layers() {
        if let Some(s) = result.summary(l) {
            for (p, e) in &s.elf {
                if let Err(why) = e {
                    if result.tree().layer_of(p) == Some(l) {
                        out.push((p.clone(), why.reason.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The contents of the regular file `path` leads to in `stack`, if any.
fn contents(stack: &Stack, path: &str, counter: &AtomicU64) -> Option<Vec<u8>> {
    match stack.file(path, counter) {
        Ok(Found::File(c)) => Some(c.content),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layer::LayerSummary;
    use crate::model::{Descriptor, Digest};
    use crate::ops::stack::testing::{binary, elf, libc, L};
    use crate::transport::memory::MemorySource;

    const LIBC: &str = "usr/lib/x86_64-linux-gnu/libc.so.6";
    const LDSO: &str = "lib64/ld-linux-x86-64.so.2";

    fn os_release(id: &str, version: &str, codename: &str) -> Vec<u8> {
        format!("ID={id}\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"{version}\"\nVERSION_CODENAME={codename}\n").into_bytes()
    }

    /// Judges old base + app layers rebased onto new base; `db_files` are the package-database
    /// layer's files.
    fn run(old: Vec<L>, new: Vec<L>, app: Vec<L>, db_files: &[FileEntry]) -> Judgement {
        let src = MemorySource::new("test").unwrap();
        let (old_n, new_n) = (old.len(), new.len());
        let layers: Vec<(Arc<LayerSummary>, Descriptor)> = old
            .into_iter()
            .chain(new)
            .chain(app)
            .enumerate()
            .map(|(i, l)| {
                let digest = Digest::of(format!("layer {i}").as_bytes());
                let d = Descriptor::new("application/vnd.oci.image.layer.v1.tar", digest, 1);
                (l.summary(), d)
            })
            .collect();
        let part = |r: std::ops::Range<usize>| {
            layers[r]
                .iter()
                .map(|(s, d)| (&src as &dyn Source, d, s.clone()))
                .collect::<Vec<_>>()
        };
        let (old, new, app) = (
            part(0..old_n),
            part(old_n..old_n + new_n),
            part(old_n + new_n..layers.len()),
        );
        let judged = Judged {
            old: Stack::new("old base", old.clone()),
            new: Stack::new("new base", new.clone()),
            image: Stack::new("image", old.iter().cloned().chain(app.iter().cloned())),
            result: Stack::new("result", new.iter().cloned().chain(app.iter().cloned())),
            app: app.iter().map(|(_, _, s)| s.entries.clone()).collect(),
            new_len: new.len(),
        };
        let checks = Checks {
            db_files,
            library_path: None,
            windows: false,
            abi: true,
        };
        judged.judge(&checks, &AtomicU64::new(0), &AtomicU64::new(0))
    }

    fn kinds(j: &Judgement) -> Vec<(FindingKind, &str)> {
        j.findings
            .iter()
            .filter(|f| f.class == FindingClass::Real)
            .map(|f| (f.kind, f.path.as_str()))
            .collect()
    }

    fn glibc(defines_up_to: u32) -> L {
        L::default()
            .elf(LIBC, libc(defines_up_to))
            .elf(LDSO, elf(Some("ld-linux-x86-64.so.2"), &[]))
    }

    #[test]
    fn a_release_change_is_named_with_both_releases() {
        let old = L::default().file("etc/os-release", &os_release("debian", "12", "bookworm"));
        let new = L::default().file("etc/os-release", &os_release("debian", "13", "trixie"));
        let j = run(vec![old], vec![new], vec![L::default()], &[]);
        assert_eq!(kinds(&j), [(FindingKind::ReleaseChange, "etc/os-release")]);
        let f = &j.findings[0];
        assert_eq!(
            f.detail,
            "Debian 12 (bookworm) → Debian 13 (trixie): the application's packages were built for 12"
        );
        let r = f.release.as_ref().unwrap();
        assert_eq!((r.from.series.as_str(), r.to.series.as_str()), ("12", "13"));
        // A point release is the same release: nothing.
        let same = L::default().file("etc/os-release", &os_release("debian", "12", "bookworm"));
        let old = L::default().file("etc/os-release", &os_release("debian", "12", "bookworm"));
        assert!(kinds(&run(vec![old], vec![same], vec![], &[])).is_empty());
    }

    const STATUS: &str = "var/lib/dpkg/status";

    fn stanza(name: &str, version: &str, depends: &str) -> String {
        let depends = if depends.is_empty() {
            String::new()
        } else {
            format!("Depends: {depends}\n")
        };
        format!("Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n{depends}\n")
    }

    #[test]
    fn a_relation_the_rebase_breaks_is_named_and_one_the_image_had_is_not() {
        let old_db = stanza("libc6", "2.38-1", "");
        let new_db = stanza("libc6", "2.36-9", "");
        let app_db = format!(
            "{}{}{}",
            stanza("libc6", "2.38-1", ""),
            stanza("oldbroken", "1", "gone"),
            stanza("tool", "1.0", "libc6 (>= 2.38)")
        );
        let merged = format!(
            "{}{}{}",
            stanza("libc6", "2.36-9", ""),
            stanza("oldbroken", "1", "gone"),
            stanza("tool", "1.0", "libc6 (>= 2.38)")
        );
        let db = FileEntry {
            path: STATUS.into(),
            content: merged.into_bytes(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
        };
        let j = run(
            vec![L::default().file(STATUS, old_db.as_bytes())],
            vec![L::default().file(STATUS, new_db.as_bytes())],
            vec![L::default().file(STATUS, app_db.as_bytes())],
            &[db],
        );
        // (The header finding at the status file becomes a note once the rebase reconciles it.)
        let relations: Vec<&Finding> = j
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::PackageRelation)
            .collect();
        assert_eq!(relations.len(), 1, "{:?}", kinds(&j));
        let f = relations[0];
        assert_eq!(
            f.detail,
            "tool 1.0 Depends libc6 (>= 2.38): libc6 2.36-9 is installed"
        );
        let r = f.relation.as_ref().unwrap();
        assert_eq!(r.found[0].version, "2.36-9");
    }

    #[test]
    fn a_library_the_new_base_lost_is_named() {
        let lib = "usr/lib/x86_64-linux-gnu/libfoo.so.1";
        let old = glibc(38).elf(lib, elf(Some("libfoo.so.1"), &["libc.so.6"]));
        let app = L::default().elf(
            "usr/local/bin/tool",
            binary(&["libfoo.so.1", "libc.so.6"], &[]),
        );
        let j = run(vec![old], vec![glibc(38)], vec![app], &[]);
        assert_eq!(
            kinds(&j),
            [(FindingKind::UnresolvedLibrary, "usr/local/bin/tool")]
        );
        let load = j.findings[0].load.as_ref().unwrap();
        assert_eq!(load.library, "libfoo.so.1");
        assert!(
            j.findings[0].detail.contains("needs libfoo.so.1"),
            "{}",
            j.findings[0].detail
        );
    }

    #[test]
    fn a_symbol_version_the_new_libc_lacks_is_named_with_what_it_has() {
        let app = L::default().elf(
            "usr/local/bin/tool",
            binary(
                &["libc.so.6"],
                &[("libc.so.6", "GLIBC_2.38"), ("libc.so.6", "GLIBC_2.34")],
            ),
        );
        let j = run(vec![glibc(38)], vec![glibc(36)], vec![app], &[]);
        assert_eq!(
            kinds(&j),
            [(FindingKind::MissingSymbolVersion, "usr/local/bin/tool")]
        );
        let f = &j.findings[0];
        let load = f.load.as_ref().unwrap();
        assert_eq!(
            (load.version.as_deref(), load.highest.as_deref()),
            (Some("GLIBC_2.38"), Some("GLIBC_2.36"))
        );
        assert_eq!(
            f.detail,
            "usr/local/bin/tool needs GLIBC_2.38 (from libc.so.6); the new base's usr/lib/x86_64-linux-gnu/libc.so.6 defines up to GLIBC_2.36"
        );
    }

    #[test]
    fn a_missing_program_interpreter_is_named() {
        let musl = "lib/ld-musl-x86_64.so.1";
        let old = L::default().elf(musl, elf(Some("libc.musl-x86_64.so.1"), &[]));
        let app = L::default().elf(
            "usr/bin/app",
            ElfInfo {
                interp: Some(format!("/{musl}")),
                ..binary(&["libc.musl-x86_64.so.1"], &[])
            },
        );
        let j = run(vec![old], vec![L::default()], vec![app], &[]);
        assert!(
            kinds(&j).contains(&(FindingKind::MissingInterpreter, "usr/bin/app")),
            "{:?}",
            kinds(&j)
        );
    }

    #[test]
    fn a_binary_that_already_failed_is_not_the_rebases_doing() {
        // The app's tool never found libplugin.so (it is dlopen'ed from elsewhere).
        let app = L::default().elf(
            "usr/local/bin/tool",
            binary(&["libplugin.so", "libc.so.6"], &[]),
        );
        let j = run(vec![glibc(38)], vec![glibc(38)], vec![app], &[]);
        assert!(kinds(&j).is_empty(), "{:?}", kinds(&j));
    }
}
