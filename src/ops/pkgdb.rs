//! The package databases of a rebase: find them in the application's layers, read the old
//! base's, the new base's and the application's copy, merge them ([`crate::pkgdb`]) and say
//! which files the package-database layer must hold.
//!
//! Every copy is found the way a program inside the image finds it: the path is looked up in
//! the merged view of that image's layers ([`Stack`]), whiteouts and opaque directories
//! honoured, symbolic links followed inside the image ([`crate::layer::resolve`]), and a hard
//! link read as the file it links to. The merged database is written at the path the lookup
//! leads to, so a link stays a link. A link that cannot be followed (it loops, climbs above
//! the root, or leads nowhere) is a real finding that names it; nothing is read or written
//! outside the image. "Deleted by the application" is said only when an application layer's
//! whiteout deleted the database.
//!
//! Cost: layers are read through [`LayerSummaries`] (one pass per layer, cached by digest).
//! The application's layers are read first; the bases' only when the application carries a
//! database, or something at a path that could lead to one.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::stack::{summaries_of, Copy, Found, Stack, StackView};
use super::summaries::LayerSummaries;
use crate::error::{Error, LayerName, PackageDbError, Result};
use crate::layer::{
    path, resolve, EntryKind, FileEntry, Finding, FindingClass, FindingKind, LayerSummary, Lookup,
};
use crate::model::Descriptor;
use crate::pkgdb::{
    self, BytesRead, DbAction, DbFile, Format, PackageChange, PackageDbReport, Pin,
};
use crate::transport::Source;
use crate::verdict::files::ACCOUNT_FILES;

/// `--no-package-db` and `--cache-dir`.
#[derive(Clone, Debug)]
pub struct PackageDbOptions {
    /// Reconcile package databases at all; `false` is `--no-package-db`.
    pub enabled: bool,
    /// Where layer summaries are cached across runs; `None`: memory only.
    pub cache_dir: Option<PathBuf>,
}

impl Default for PackageDbOptions {
    fn default() -> PackageDbOptions {
        PackageDbOptions {
            enabled: true,
            cache_dir: default_cache_dir(),
        }
    }
}

/// `$XDG_CACHE_HOME/ocipatch`, else `$HOME/.cache/ocipatch`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty());
    if let Some(x) = xdg {
        return Some(PathBuf::from(x).join("ocipatch"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("ocipatch"))
}

/// The outcome for one platform: the report (`None`: the application's layers carry no
/// database), the files of the package-database layer (empty: no layer), and what it cost.
#[derive(Clone, Debug)]
pub struct Reconciled {
    /// The platform's package report; `None` when the application's layers carry no database.
    pub report: Option<PackageDbReport>,
    /// The files of the package-database layer to write; empty when no layer is needed.
    pub files: Vec<FileEntry>,
    /// Compressed bytes read to find the databases.
    pub bytes_read: BytesRead,
    /// Links at database paths that cannot be followed: real safety findings.
    pub findings: Vec<Finding>,
}

/// One image's layers as the reconciliation sees them.
pub struct DbInput<'a> {
    /// Where the image's blobs are.
    pub image_src: &'a dyn Source,
    /// Every layer of the image, an earlier package-database layer included.
    pub image_layers: &'a [Descriptor],
    /// How many of them are the old base's.
    pub base_len: usize,
    /// The top layer is an earlier package-database layer (replaced, not stacked).
    pub replaces_top: bool,
    /// Where the new base's blobs are.
    pub new_src: &'a dyn Source,
    /// The new base's layers.
    pub new_layers: &'a [Descriptor],
    /// Read every layer, all at once, biggest first, instead of the application's first and
    /// the bases' only when needed: the verdict reads them all anyway, and one batch keeps
    /// both cores busy until the biggest layer is done.
    pub read_all: bool,
}

/// The paths a reconciliation looks up, in report order (distroless `status.d/` files are
/// found per image): the package databases, then the files a rebuild regenerates.
fn database_paths() -> impl Iterator<Item = &'static str> {
    Format::ALL
        .iter()
        .map(|f| f.path())
        .chain(pkgdb::RpmDbKind::PATHS.iter().map(|(p, _)| *p))
        .chain(ACCOUNT_FILES)
        .chain([crate::verdict::files::LD_SO_CACHE])
}

/// Whether an application entry at `path` can change what a database lookup finds: the
/// database itself, a directory above one (or a link there), or anything in `status.d/`.
fn may_lead_to_database(path: &str) -> bool {
    let covers = |file: &str| path.is_empty() || file == path || path::is_inside(file, path);
    database_paths().any(covers) || covers(pkgdb::DPKG_STATUS_D) || pkgdb::is_watched(path)
}

/// Reconciles the package databases of one image: the text formats ([`Format`]), distroless
/// `status.d/` files, rpm's databases. `report: None` when the application's layers carry none
/// (nothing to do, nothing added).
pub fn reconcile(input: &DbInput, cache: &LayerSummaries) -> Result<Reconciled> {
    let image_bytes = AtomicU64::new(0);
    let new_bytes = AtomicU64::new(0);
    let split = input.base_len.min(input.image_layers.len());
    let (base_layers, app_layers) = input.image_layers.split_at(split);
    if input.read_all {
        let layers: Vec<(&dyn Source, &Descriptor, &AtomicU64)> = input
            .image_layers
            .iter()
            .map(|l| (input.image_src, l, &image_bytes))
            .chain(
                input
                    .new_layers
                    .iter()
                    .map(|l| (input.new_src, l, &new_bytes)),
            )
            .collect();
        crate::engine::map_biggest_first(
            &layers,
            |(_, l, _)| l.size,
            |(src, l, counter)| cache.get(*src, l, counter).map(drop),
        )
        .into_iter()
        .collect::<Result<()>>()?;
    }
    let app = summaries_of(input.image_src, app_layers, cache, &image_bytes)?;
    let bytes_read = |a: &AtomicU64, b: &AtomicU64| BytesRead {
        image: a.load(Ordering::Relaxed),
        new_base: b.load(Ordering::Relaxed),
    };
    let touches = app
        .iter()
        .flat_map(|s| &s.entries)
        .any(|e| may_lead_to_database(&e.path));
    if !touches {
        return Ok(Reconciled {
            report: None,
            files: Vec::new(),
            bytes_read: bytes_read(&image_bytes, &new_bytes),
            findings: Vec::new(),
        });
    }
    let (base, new) = rayon::join(
        || summaries_of(input.image_src, base_layers, cache, &image_bytes),
        || summaries_of(input.new_src, input.new_layers, cache, &new_bytes),
    );
    let (base, new) = (base?, new?);
    let image_parts = |with_base: bool| {
        let base_part = base_layers.iter().zip(&base).filter(move |_| with_base);
        base_part
            .chain(app_layers.iter().zip(&app))
            .map(|(d, s)| (input.image_src, d, s.clone()))
    };
    let stacks = Stacks {
        image: Stack::new("application", image_parts(true)),
        old: Stack::new(
            "old base",
            base_layers
                .iter()
                .zip(&base)
                .map(|(d, s)| (input.image_src, d, s.clone())),
        ),
        new: Stack::new(
            "new base",
            input
                .new_layers
                .iter()
                .zip(&new)
                .map(|(d, s)| (input.new_src, d, s.clone())),
        ),
        result: Stack::new(
            "result",
            input
                .new_layers
                .iter()
                .zip(&new)
                .map(|(d, s)| (input.new_src, d, s.clone()))
                .chain(image_parts(false)),
        ),
        base_len: split,
        app_layers: &app,
    };
    let mut run = Run {
        input,
        stacks: &stacks,
        image_bytes: &image_bytes,
        new_bytes: &new_bytes,
        report: PackageDbReport {
            replaced_layer: input
                .replaces_top
                .then(|| input.image_layers.last().map(|l| l.digest.clone()))
                .flatten(),
            ..PackageDbReport::default()
        },
        files: Vec::new(),
        findings: Vec::new(),
        seen: BTreeSet::new(),
        touched: false,
        any_change: false,
    };
    for format in Format::ALL {
        run.text_database(format)?;
    }
    run.status_d()?;
    run.rpm()?;
    run.accounts()?;
    run.ld_so_cache()?;

    let bytes_read = bytes_read(&image_bytes, &new_bytes);
    if !run.touched {
        return Ok(Reconciled {
            report: None,
            files: Vec::new(),
            bytes_read,
            findings: run.findings,
        });
    }
    let mut report = run.report;
    report.bytes_read = bytes_read.clone();
    // A layer only when something changes, or to replace an earlier one (then always, so a
    // rebase onto the current base rebuilds the same layer and stays a no-op).
    let files = if run.any_change || input.replaces_top {
        run.files
    } else {
        Vec::new()
    };
    Ok(Reconciled {
        report: Some(report),
        files,
        bytes_read,
        findings: run.findings,
    })
}

/// The four views of one rebase: the image as it is (old base + application layers), each
/// base alone, and the result (new base + application layers).
struct Stacks<'a> {
    image: Stack<'a>,
    old: Stack<'a>,
    new: Stack<'a>,
    result: Stack<'a>,
    /// Layers of the old base at the bottom of `image`.
    base_len: usize,
    app_layers: &'a [Arc<LayerSummary>],
}

impl Stacks<'_> {
    /// Whether an application layer's whiteout (or opaque directory) deleted what the old base
    /// had at `path`, by the tree's one rule.
    fn app_deletes(&self, path: &str) -> bool {
        self.image
            .tree()
            .deleted_by(path)
            .is_some_and(|l| l >= self.base_len)
    }

    /// Whether the application's layers decide what `path` is in the image: an application
    /// layer holds what it leads to or a link on the way, or deletes it.
    fn app_decides(&self, path: &str) -> bool {
        let from_app = |p: &str| {
            self.image
                .tree()
                .layer_of(p)
                .is_some_and(|l| l >= self.base_len)
        };
        match resolve(self.image.tree(), path, true) {
            Lookup::Found { path: p, links, .. } => {
                from_app(&p) || links.iter().any(|l| from_app(&l.path))
            }
            Lookup::Missing { links, .. } | Lookup::NotADirectory { links, .. } => {
                links.iter().any(|l| from_app(&l.path)) || self.app_deletes(path)
            }
            Lookup::TooManyLinks { link } | Lookup::Escapes { link, .. } => from_app(&link),
        }
    }
}

/// One image's reconciliation under way.
struct Run<'a> {
    input: &'a DbInput<'a>,
    stacks: &'a Stacks<'a>,
    image_bytes: &'a AtomicU64,
    new_bytes: &'a AtomicU64,
    report: PackageDbReport,
    files: Vec<FileEntry>,
    findings: Vec<Finding>,
    /// Files already handled (two database paths that lead to one file are one database).
    seen: BTreeSet<String>,
    /// The application's layers carry a database (or delete one).
    touched: bool,
    /// Some merged file differs from the application's copy.
    any_change: bool,
}

/// A database over the size cap of what a layer summary keeps (`pkgdb::MAX_DB_SIZE`).
fn too_large(src: &dyn Source, stack: &Stack, path: &str, size: u64, layer: usize) -> Error {
    Error::PackageDb {
        reference: src.reference().to_string(),
        path: path.to_string(),
        layer: stack.layer(layer),
        line: None,
        source: Box::new(PackageDbError::TooLarge {
            size,
            limit: pkgdb::MAX_DB_SIZE,
        }),
    }
}

/// A database that does not parse: never write a wrong one; `--no-package-db` skips the step.
fn unparsable(src: &dyn Source, path: &str, layer: LayerName, e: pkgdb::ParseError) -> Error {
    Error::PackageDb {
        reference: src.reference().to_string(),
        path: path.to_string(),
        layer,
        line: Some(e.line),
        source: Box::new(e.into()),
    }
}

/// A file's header on new content: the reconciled file keeps the application copy's owner,
/// mode and mtime.
fn file_like(copy: &Copy, path: &str, content: Vec<u8>) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        content,
        mode: copy.entry.mode,
        uid: copy.entry.uid,
        gid: copy.entry.gid,
        uname: copy.uname.clone(),
        gname: copy.gname.clone(),
        mtime: copy.entry.mtime,
    }
}

/// The application's copy of one database, as [`Run::app_copy`] finds it.
enum AppCopy {
    /// The application does not carry it.
    Untouched,
    /// Handled already (another path led to the same file), deleted, or unusable: reported.
    Done,
    /// A regular file in an application layer.
    File(Box<Copy>),
}

impl Run<'_> {
    /// The application's copy of the database at `path`, or why there is none (reported).
    fn app_copy(&mut self, path: &str) -> Result<AppCopy> {
        let stacks = self.stacks;
        if !stacks.app_decides(path) {
            return Ok(AppCopy::Untouched);
        }
        match stacks.image.file(path, self.image_bytes)? {
            Found::File(copy) => {
                if !self.seen.insert(copy.path.clone()) {
                    return Ok(AppCopy::Done);
                }
                self.touched = true;
                Ok(AppCopy::File(copy))
            }
            Found::Absent if stacks.app_deletes(path) => {
                let had = matches!(stacks.old.file(path, self.image_bytes)?, Found::File(_));
                if had {
                    self.touched = true;
                    self.report.databases.push(DbFile {
                        path: path.to_string(),
                        resolved: None,
                        action: DbAction::DeletedByApplication,
                        packages: None,
                    });
                }
                Ok(AppCopy::Done)
            }
            Found::Absent => {
                // A link of the application's that leads nowhere: the old base's database is
                // hidden and no new one can be found.
                let lookup = resolve(stacks.image.tree(), path, true);
                let why = lookup
                    .problem(path)
                    .unwrap_or_else(|| format!("{path} cannot be found"));
                self.unresolvable(path, why);
                Ok(AppCopy::Done)
            }
            Found::Unusable(why) => {
                self.unresolvable(path, why);
                Ok(AppCopy::Done)
            }
            Found::TooLarge {
                path: at,
                size,
                layer,
            } => Err(too_large(
                self.input.image_src,
                &stacks.image,
                &at,
                size,
                layer,
            )),
        }
    }

    fn unresolvable(&mut self, path: &str, why: String) {
        self.touched = true;
        self.report.databases.push(DbFile {
            path: path.to_string(),
            resolved: None,
            action: DbAction::Unresolvable,
            packages: None,
        });
        self.findings.push(Finding::new(FindingKind::UnresolvablePath, FindingClass::Real, path.to_string(), format!(
                "package database not reconciled: {why}; scanners and the package manager may see a stale database or none"
            )));
    }

    /// The old and new bases' copies of `path`, each looked up in that base alone.
    fn base_copies(&self, path: &str) -> Result<(Option<Copy>, Option<Copy>)> {
        let one = |stack: &Stack, src: &dyn Source, counter: &AtomicU64| -> Result<Option<Copy>> {
            Ok(match stack.file(path, counter)? {
                Found::File(c) => Some(*c),
                Found::TooLarge { path, size, layer } => {
                    return Err(too_large(src, stack, &path, size, layer))
                }
                _ => None,
            })
        };
        Ok((
            one(&self.stacks.old, self.input.image_src, self.image_bytes)?,
            one(&self.stacks.new, self.input.new_src, self.new_bytes)?,
        ))
    }

    /// Where the merged file goes: the path `path` leads to in the result (the application's
    /// links over the new base), and, for a hard link, its other name too.
    fn write_merged(&mut self, copy: &Copy, path: &str, bytes: Vec<u8>) {
        let target = match resolve(self.stacks.result.tree(), path, true) {
            Lookup::Found { path: p, .. } => p,
            _ => copy.path.clone(),
        };
        if let Some(other) = &copy.hard_link_target {
            if other != &target {
                self.files.push(file_like(copy, other, bytes.clone()));
            }
        }
        self.files.push(file_like(copy, &target, bytes));
    }

    fn app_layer(&self, copy: &Copy) -> LayerName {
        self.stacks.image.layer(copy.layer)
    }

    /// One database file of a text format: the three copies, merged.
    fn text_database(&mut self, format: Format) -> Result<()> {
        let path = format.path();
        let AppCopy::File(app_copy) = self.app_copy(path)? else {
            return Ok(());
        };
        let (old_copy, new_copy) = self.base_copies(path)?;
        let parse = |copy: &Copy, src: &dyn Source, layer: LayerName| {
            pkgdb::parse(format, &copy.content).map_err(|e| unparsable(src, path, layer, e))
        };
        let (image_src, new_src) = (self.input.image_src, self.input.new_src);
        let app_db = parse(&app_copy, image_src, self.app_layer(&app_copy))?;
        let old_db = old_copy
            .as_ref()
            .map(|c| parse(c, image_src, self.stacks.old.layer(c.layer)))
            .transpose()?;
        let new_db = new_copy
            .as_ref()
            .map(|c| parse(c, new_src, self.stacks.new.layer(c.layer)))
            .transpose()?;
        let merged = pkgdb::merge(old_db.as_ref(), new_db.as_ref(), &app_db);
        let unchanged = merged.bytes == app_copy.content;
        self.any_change |= !unchanged;
        self.report.databases.push(DbFile {
            path: path.to_string(),
            resolved: (app_copy.path != path).then(|| app_copy.path.clone()),
            action: if unchanged {
                DbAction::Unchanged
            } else {
                DbAction::Reconciled
            },
            packages: format.has_versions().then_some(merged.packages),
        });
        self.report.changes.extend(merged.changes);
        self.report.added.extend(merged.added);
        self.report.removed.extend(merged.removed);
        self.report.pinned.extend(merged.pins);
        self.write_merged(&app_copy, path, merged.bytes);
        Ok(())
    }

    /// Distroless `status.d/` files: one stanza file per package.
    fn status_d(&mut self) -> Result<()> {
        // Every status.d file the application's layers name (the directory may be reached
        // through a link: then the files are under the link's target).
        let dir = match resolve(self.stacks.image.tree(), pkgdb::DPKG_STATUS_D, true) {
            Lookup::Found { path, .. } => path,
            _ => return Ok(()),
        };
        let names: BTreeSet<String> = self
            .stacks
            .app_layers
            .iter()
            .flat_map(|s| &s.entries)
            .filter(|e| {
                matches!(
                    e.kind,
                    EntryKind::File | EntryKind::HardLink | EntryKind::Symlink
                )
            })
            .filter_map(|e| {
                let name = e.path.strip_prefix(&format!("{dir}/"))?;
                (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
            })
            .collect();
        for name in names {
            let file = format!("{}/{name}", pkgdb::DPKG_STATUS_D);
            let AppCopy::File(app_copy) = self.app_copy(&file)? else {
                continue;
            };
            self.status_d_file(&file, &app_copy)?;
        }
        Ok(())
    }

    // The file is the unit: a stale copy the app carries (same as the old base's) gives way
    // to the new base's; one the app changed stays (a pin when the new base changed it too). A
    // package the new base dropped cannot be deleted by a files-only layer: reported, left as
    // it is.
    fn status_d_file(&mut self, file: &str, app_copy: &Copy) -> Result<()> {
        let src = self.input.image_src;
        let parse = |bytes: &[u8], layer: LayerName| {
            pkgdb::parse(Format::DpkgStatus, bytes).map_err(|e| unparsable(src, file, layer, e))
        };
        let app_db = parse(&app_copy.content, self.app_layer(app_copy))?;
        let (old_copy, new_copy) = self.base_copies(file)?;
        let new_db = new_copy
            .as_ref()
            .map(|n| parse(&n.content, self.stacks.new.layer(n.layer)))
            .transpose()?;
        let old_content = old_copy.as_ref().map(|c| &c.content[..]);
        let new_content = new_copy.as_ref().map(|c| &c.content[..]);
        let app_content = Some(&app_copy.content[..]);
        let versions = |db: Option<&pkgdb::Db>| db.map(pkgdb::packages).unwrap_or_default();
        let mut action = DbAction::Unchanged;
        if app_content == old_content && new_content != old_content {
            match (&new_copy, &new_db) {
                (Some(n), Some(ndb)) => {
                    for (a, b) in versions(Some(&app_db)).iter().zip(versions(Some(ndb))) {
                        if a.package == b.package && a.version != b.version {
                            self.report.changes.push(PackageChange {
                                package: a.package.clone(),
                                arch: a.arch.clone(),
                                from: a.version.clone(),
                                to: b.version,
                            });
                        }
                    }
                    self.write_merged(app_copy, file, n.content.clone());
                    self.any_change = true;
                    action = DbAction::Reconciled;
                }
                _ => {
                    for a in versions(Some(&app_db)) {
                        self.report.pinned.push(Pin {
                            package: a.package,
                            arch: a.arch,
                            app_version: Some(a.version),
                            new_base_version: None,
                        });
                    }
                    action = DbAction::ReportOnly;
                }
            }
        } else if app_content != old_content
            && new_content != old_content
            && new_content != app_content
        {
            let new_versions = versions(new_db.as_ref());
            for a in versions(Some(&app_db)) {
                let n = new_versions.iter().find(|n| n.package == a.package);
                if n.map(|n| &n.version) != Some(&a.version) {
                    self.report.pinned.push(Pin {
                        package: a.package,
                        arch: a.arch,
                        app_version: Some(a.version),
                        new_base_version: n.map(|n| n.version.clone()),
                    });
                }
            }
            action = DbAction::ReportOnly;
        }
        self.report.databases.push(DbFile {
            path: file.to_string(),
            resolved: (app_copy.path != file).then(|| app_copy.path.clone()),
            action,
            packages: Some(app_db.records.len()),
        });
        Ok(())
    }

    /// rpm's databases: `rpmdb.sqlite` is merged by header ([`pkgdb::rpm`]); BerkeleyDB and
    /// NDB are refused (reported as not reconciled when the new base changed them, which also
    /// leaves the shadowed-file safety finding real, so `--strict` fails).
    fn rpm(&mut self) -> Result<()> {
        let fail =
            |src: &dyn Source, path: &str, layer: LayerName, e: PackageDbError| Error::PackageDb {
                reference: src.reference().to_string(),
                path: path.to_string(),
                layer,
                line: None,
                source: Box::new(e),
            };
        for (path, kind) in pkgdb::RpmDbKind::PATHS {
            let AppCopy::File(app_copy) = self.app_copy(path)? else {
                continue;
            };
            let (old_copy, new_copy) = self.base_copies(path)?;
            let resolved = (app_copy.path != path).then(|| app_copy.path.clone());
            if kind != pkgdb::RpmDbKind::Sqlite {
                let stale =
                    old_copy.as_ref().map(|c| &c.content) != new_copy.as_ref().map(|c| &c.content);
                self.report.databases.push(DbFile {
                    path: path.to_string(),
                    resolved,
                    action: if stale {
                        DbAction::NotReconciled
                    } else {
                        DbAction::Unchanged
                    },
                    packages: None,
                });
                continue;
            }
            // A non-empty write-ahead log holds transactions the main file does not have yet.
            let wal = pkgdb::rpm_wal_path(&app_copy.path);
            let stacks = self.stacks;
            for (stack, src, counter) in [
                (&stacks.image, self.input.image_src, self.image_bytes),
                (&stacks.old, self.input.image_src, self.image_bytes),
                (&stacks.new, self.input.new_src, self.new_bytes),
            ] {
                if let Found::File(c) = stack.file(&wal, counter)? {
                    if !c.content.is_empty() {
                        return Err(fail(
                            src,
                            &wal,
                            stack.layer(c.layer),
                            PackageDbError::WalNotEmpty,
                        ));
                    }
                }
            }
            let (image_src, new_src) = (self.input.image_src, self.input.new_src);
            let app_db = pkgdb::rpm::read(&app_copy.content)
                .map_err(|e| fail(image_src, path, self.app_layer(&app_copy), e.into()))?;
            let old_db = match &old_copy {
                Some(c) => Some(
                    pkgdb::rpm::read(&c.content)
                        .map_err(|e| fail(image_src, path, stacks.old.layer(c.layer), e.into()))?,
                ),
                None => None,
            };
            let new_db = match &new_copy {
                Some(c) => Some(
                    pkgdb::rpm::read(&c.content)
                        .map_err(|e| fail(new_src, path, stacks.new.layer(c.layer), e.into()))?,
                ),
                None => None,
            };
            let merged = pkgdb::rpm::merge(old_db.as_ref(), new_db.as_ref(), &app_db)
                .map_err(|e| fail(image_src, path, self.app_layer(&app_copy), e.into()))?;
            self.any_change |= !merged.same_as_app;
            self.report.databases.push(DbFile {
                path: path.to_string(),
                resolved,
                action: if merged.same_as_app {
                    DbAction::Unchanged
                } else {
                    DbAction::Reconciled
                },
                packages: Some(merged.packages),
            });
            self.report.changes.extend(merged.changes);
            self.report.added.extend(merged.added);
            self.report.removed.extend(merged.removed);
            self.report.pinned.extend(merged.pins);
            // Unchanged: the application's own file, so a rebase onto the current base (or of
            // an earlier rebase's output) rebuilds the same layer.
            let bytes = if merged.same_as_app {
                app_copy.content.clone()
            } else {
                merged.bytes
            };
            self.write_merged(&app_copy, path, bytes);
        }
        Ok(())
    }
}

impl Run<'_> {
    /// The accounts files ([`pkgdb::accounts`]): merged only when both the application and
    /// the new base changed one; otherwise the copy on top already is what a rebuild has.
    fn accounts(&mut self) -> Result<()> {
        for file in ACCOUNT_FILES {
            if !self.stacks.app_decides(file) {
                continue;
            }
            let Found::File(app_copy) = self.stacks.image.file(file, self.image_bytes)? else {
                continue;
            };
            if !self.seen.insert(app_copy.path.clone()) {
                continue;
            }
            let (old_copy, new_copy) = self.base_copies(file)?;
            let (old_c, new_c) = (
                old_copy.as_ref().map(|c| &c.content[..]),
                new_copy.as_ref().map(|c| &c.content[..]),
            );
            if new_c == old_c || new_c == Some(&app_copy.content[..]) {
                continue;
            }
            self.touched = true;
            let resolved = (app_copy.path != file).then(|| app_copy.path.clone());
            let merged = match pkgdb::accounts::merge(file, old_c, new_c, &app_copy.content) {
                Ok(m) => m,
                Err(why) => {
                    self.report.databases.push(DbFile {
                        path: file.to_string(),
                        resolved,
                        action: DbAction::NotReconciled,
                        packages: None,
                    });
                    self.findings.push(Finding::new(FindingKind::AppOverwritesChangedFile, FindingClass::Real, file.to_string(), format!(
                            "the new base changes {file} and the application's copy hides it; it cannot be merged: {why}"
                        )));
                    continue;
                }
            };
            let unchanged = merged.bytes == app_copy.content;
            self.any_change |= !unchanged;
            self.report.databases.push(DbFile {
                path: file.to_string(),
                resolved,
                action: if unchanged {
                    DbAction::Unchanged
                } else {
                    DbAction::Reconciled
                },
                packages: None,
            });
            for c in merged.conflicts {
                self.findings.push(Finding::new(
                    FindingKind::AccountConflict,
                    FindingClass::Real,
                    file.to_string(),
                    c,
                ));
            }
            self.write_merged(&app_copy, file, merged.bytes);
        }
        Ok(())
    }
}

impl Run<'_> {
    /// `etc/ld.so.cache` of an application that ran `ldconfig`: checked against what ldconfig
    /// writes for the result (the application's layers over the new base); kept when it lists
    /// the same, else regenerated as ldconfig would write it (the new base's ldconfig's name
    /// in its generator field), so `ldconfig -p` in the result lists what a rebuild's lists.
    fn ld_so_cache(&mut self) -> Result<()> {
        use crate::verdict::files::LD_SO_CACHE;
        use crate::verdict::ldso;
        if !self.stacks.app_decides(LD_SO_CACHE) {
            return Ok(());
        }
        let Found::File(app_copy) = self.stacks.image.file(LD_SO_CACHE, self.image_bytes)? else {
            return Ok(());
        };
        if !self.seen.insert(app_copy.path.clone()) {
            return Ok(());
        }
        let result = self.stacks.result.tree();
        let view = StackView::new(&self.stacks.result, &[]);
        let Some(platform) = ldso::Platform::detect(&view) else {
            return Ok(()); // no C library: nothing reads the cache
        };
        let resolved = (app_copy.path != LD_SO_CACHE).then(|| app_copy.path.clone());
        let hwcaps = result.paths().any(|p| p.contains("/glibc-hwcaps/"));
        let model = ldso::cache_entries_for(&view, &platform);
        let app_cache = ldso::read_cache(&app_copy.content).ok();
        self.touched = true;
        if app_cache.as_ref().is_some_and(|c| c.entries == model) {
            self.report.databases.push(DbFile {
                path: LD_SO_CACHE.to_string(),
                resolved,
                action: DbAction::Unchanged,
                packages: None,
            });
            return Ok(());
        }
        if hwcaps {
            // glibc-hwcaps subdirectories are not modelled: say so rather than guess.
            self.report.databases.push(DbFile {
                path: LD_SO_CACHE.to_string(),
                resolved,
                action: DbAction::NotReconciled,
                packages: None,
            });
            self.findings.push(Finding::new(
                FindingKind::DerivedFile,
                FindingClass::Real,
                LD_SO_CACHE,
                "the application's ld.so.cache does not list what ldconfig would list in the result, and the image has glibc-hwcaps directories, which ocipatch does not model: run ldconfig in a rebuild",
            ));
            return Ok(());
        }
        let generator = match self.base_copies(LD_SO_CACHE)?.1 {
            Some(n) => ldso::read_cache(&n.content).ok().and_then(|c| c.generator),
            None => None,
        }
        .or_else(|| app_cache.as_ref().and_then(|c| c.generator.clone()));
        let options = ldso::CacheOptions {
            generator,
            big_endian: app_cache.as_ref().is_some_and(|c| c.big_endian),
        };
        let bytes = ldso::write_cache(&model, &options);
        self.any_change |= bytes != app_copy.content;
        self.report.databases.push(DbFile {
            path: LD_SO_CACHE.to_string(),
            resolved,
            action: DbAction::Reconciled,
            packages: None,
        });
        self.write_merged(&app_copy, LD_SO_CACHE, bytes);
        Ok(())
    }
}

/// What a rebase onto `base` would upgrade, as scanners see it: packages in both the image's
/// database and the base's whose versions differ. Empty when either has no database.
pub fn base_upgrades(
    image_src: &dyn Source,
    image_layers: &[Descriptor],
    base_src: &dyn Source,
    base_layers: &[Descriptor],
    cache: &LayerSummaries,
) -> Result<Vec<PackageChange>> {
    let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
    let (mine, theirs) = rayon::join(
        || summaries_of(image_src, image_layers, cache, &a),
        || summaries_of(base_src, base_layers, cache, &b),
    );
    let image = Stack::new(
        "image",
        image_layers
            .iter()
            .zip(mine?)
            .map(|(d, s)| (image_src, d, s)),
    );
    let base = Stack::new(
        "base",
        base_layers
            .iter()
            .zip(theirs?)
            .map(|(d, s)| (base_src, d, s)),
    );
    let mut out = Vec::new();
    for format in Format::ALL.into_iter().filter(|f| f.has_versions()) {
        let (Found::File(mine), Found::File(theirs)) = (
            image.file(format.path(), &a)?,
            base.file(format.path(), &b)?,
        ) else {
            continue;
        };
        let parse = |c: &Copy, src: &dyn Source, stack: &Stack| {
            pkgdb::parse(format, &c.content)
                .map_err(|e| unparsable(src, format.path(), stack.layer(c.layer), e))
        };
        let (mine, theirs) = (
            parse(&mine, image_src, &image)?,
            parse(&theirs, base_src, &base)?,
        );
        for r in &mine.records {
            if let Some(n) = theirs.records.iter().find(|n| n.key() == r.key()) {
                if n.version != r.version {
                    out.push(PackageChange {
                        package: r.name.clone(),
                        arch: r.arch.clone(),
                        from: r.version.clone(),
                        to: n.version.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Digest;
    use crate::ops::stack::testing::{elf, libc, L};
    use crate::transport::memory::MemorySource;
    use crate::verdict::ldso;

    /// Reconciles old base + app onto new base, every layer's summary made by hand.
    fn reconcile_layers(old: Vec<L>, new: Vec<L>, app: Vec<L>) -> Reconciled {
        let src = MemorySource::new("test").unwrap();
        let cache = LayerSummaries::new(None);
        let descs = |layers: Vec<L>, tag: &str| -> Vec<Descriptor> {
            layers
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    let digest = Digest::of(format!("{tag} {i}").as_bytes());
                    cache.insert(digest.clone(), l.summary());
                    Descriptor::new("application/vnd.oci.image.layer.v1.tar", digest, 1)
                })
                .collect()
        };
        let base_len = old.len();
        let mut image = descs(old, "old");
        image.extend(descs(app, "app"));
        let new = descs(new, "new");
        let input = DbInput {
            image_src: &src,
            image_layers: &image,
            base_len,
            replaces_top: false,
            new_src: &src,
            new_layers: &new,
            read_all: false,
        };
        reconcile(&input, &cache).unwrap()
    }

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n";

    #[test]
    fn users_the_app_added_go_on_the_new_bases_accounts_and_conflicts_are_real() {
        let new_passwd = format!("{PASSWD}systemd-network:x:998:998::/:/usr/sbin/nologin\n");
        let app_passwd = format!("{PASSWD}app:x:999:999::/home/app:/bin/sh\n");
        let r = reconcile_layers(
            vec![L::default().file("etc/passwd", PASSWD.as_bytes())],
            vec![L::default().file("etc/passwd", new_passwd.as_bytes())],
            vec![L::default().file("etc/passwd", app_passwd.as_bytes())],
        );
        let report = r.report.unwrap();
        assert_eq!(report.databases[0].path, "etc/passwd");
        assert_eq!(report.databases[0].action, DbAction::Reconciled);
        assert_eq!(r.files.len(), 1);
        assert_eq!(
            String::from_utf8(r.files[0].content.clone()).unwrap(),
            format!("{new_passwd}app:x:999:999::/home/app:/bin/sh\n")
        );
        assert!(r.findings.is_empty());

        // The app's user takes an ID the new base now gives to another name.
        let app_passwd = format!("{PASSWD}app:x:998:998::/home/app:/bin/sh\n");
        let r = reconcile_layers(
            vec![L::default().file("etc/passwd", PASSWD.as_bytes())],
            vec![L::default().file("etc/passwd", new_passwd.as_bytes())],
            vec![L::default().file("etc/passwd", app_passwd.as_bytes())],
        );
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].kind, FindingKind::AccountConflict);
        assert_eq!(r.findings[0].class, FindingClass::Real);
        assert!(
            r.findings[0].detail.contains("ID 998"),
            "{}",
            r.findings[0].detail
        );

        // The new base did not touch passwd: the app's copy is what a rebuild has, nothing to do.
        let r = reconcile_layers(
            vec![L::default().file("etc/passwd", PASSWD.as_bytes())],
            vec![L::default().file("etc/passwd", PASSWD.as_bytes())],
            vec![L::default().file("etc/passwd", app_passwd.as_bytes())],
        );
        assert!(r.report.is_none() && r.files.is_empty());
    }

    #[test]
    fn an_apps_ld_so_cache_is_kept_when_current_and_regenerated_when_stale() {
        const LIBC: &str = "usr/lib/x86_64-linux-gnu/libc.so.6";
        const LIBZ: &str = "usr/lib/x86_64-linux-gnu/libz.so.1";
        const LIBNEW: &str = "usr/lib/x86_64-linux-gnu/libnew.so.2";
        let conf = b"include /etc/ld.so.conf.d/*.conf\n";
        let multiarch = b"/usr/lib/x86_64-linux-gnu\n";
        let base = |extra: bool| {
            let l = L::default()
                .file("etc/ld.so.conf", conf)
                .file("etc/ld.so.conf.d/x86_64-linux-gnu.conf", multiarch)
                .elf(LIBC, libc(36))
                .elf(LIBZ, elf(Some("libz.so.1"), &["libc.so.6"]));
            if extra {
                l.elf(LIBNEW, elf(Some("libnew.so.2"), &["libc.so.6"]))
            } else {
                l
            }
        };
        // What ldconfig writes for the old base is what the app's ldconfig run left.
        let cache_for = |layer: L| {
            let src = MemorySource::new("t").unwrap();
            let d = Descriptor::new(
                "application/vnd.oci.image.layer.v1.tar",
                Digest::of(b"x"),
                1,
            );
            let stack = Stack::new("t", [(&src as &dyn Source, &d, layer.summary())]);
            let view = StackView::new(&stack, &[]);
            let entries = ldso::cache_entries(&view);
            assert!(!entries.is_empty());
            (ldso::write_cache(&entries, &Default::default()), entries)
        };
        let (app_cache, _) = cache_for(base(false));
        // The same libraries: the app's cache is current.
        let r = reconcile_layers(
            vec![base(false)],
            vec![base(false).file("etc/motd", b"patched")],
            vec![L::default().file("etc/ld.so.cache", &app_cache)],
        );
        let report = r.report.unwrap();
        assert_eq!(report.databases[0].path, "etc/ld.so.cache");
        assert_eq!(report.databases[0].action, DbAction::Unchanged);
        assert!(r.files.is_empty());
        // The new base adds a library: regenerated, listing it.
        let r = reconcile_layers(
            vec![base(false)],
            vec![base(true)],
            vec![L::default().file("etc/ld.so.cache", &app_cache)],
        );
        let report = r.report.unwrap();
        assert_eq!(report.databases[0].action, DbAction::Reconciled);
        let (want, entries) = cache_for(base(true));
        assert_eq!(r.files[0].content, want);
        assert!(entries.iter().any(|e| e.key == "libnew.so.2"));
    }

    #[test]
    fn paths_that_can_lead_to_a_database() {
        for p in [
            "",
            "var",
            "var/lib/dpkg",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d",
            "var/lib/dpkg/status.d/base",
            "usr",
            "usr/lib/sysimage/rpm",
            "var/lib/rpm/rpmdb.sqlite-wal",
            "lib/apk/db/installed",
            "etc/apk",
            "etc/passwd",
        ] {
            assert!(may_lead_to_database(p), "{p}");
        }
        for p in [
            "opt",
            "var/lib/dpkg/info",
            "usr/lib/sysimage/dnf",
            "etc/hosts",
        ] {
            assert!(!may_lead_to_database(p), "{p}");
        }
    }
}
