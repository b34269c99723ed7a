//! The package databases of a rebase: find them in the application's layers, read the old
//! base's, the new base's and the application's copy (each the topmost copy in that image's
//! layers, whiteouts honoured), merge them ([`crate::pkgdb`]) and say which files the
//! package-database layer must hold.
//!
//! Cost: the application's layers are streamed once each to find a database (never stored);
//! base layers are read only when the application carries one, top down, only until the base's
//! copy is found. What a layer holds of the databases is cached by layer digest, in memory for
//! the run and on disk under the cache directory, so a fleet or a second run reads no layer
//! twice. Every layer read is digest-checked before its summary is trusted or cached.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layer::{pick_files, FileEntry, LayerError, Picked, PickedKind};
use crate::model::{Descriptor, Digest};
use crate::pkgdb::{
    self, BytesRead, DbAction, DbFile, Format, PackageChange, PackageDbReport, Pin,
};
use crate::transport::{self, Source};

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
}

/// Directories whose whiteout or opaque marker can hide a database file.
fn hides(path: &str) -> bool {
    let covers =
        |file: &str| path.is_empty() || file == path || file.starts_with(&format!("{path}/"));
    Format::ALL.iter().any(|f| covers(f.path()))
        || covers(pkgdb::DPKG_STATUS_D)
        || pkgdb::is_status_d_file(path)
        || pkgdb::RpmDbKind::PATHS.iter().any(|(f, _)| covers(f))
        || pkgdb::is_watched(path)
}

/// What one layer holds of the databases: summaries shared by every image of a run.
pub struct LayerCache {
    dir: Option<PathBuf>,
    mem: Mutex<HashMap<Digest, Arc<Vec<Picked>>>>,
    /// One lock per layer being read: a fleet's images that share a layer wait for one read
    /// of it instead of each downloading it at once.
    reading: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
}

impl LayerCache {
    /// A cache kept in memory, and on disk under `dir` (in a `pkgdb-v1` subdirectory) when given.
    pub fn new(dir: Option<PathBuf>) -> LayerCache {
        LayerCache {
            dir: dir.map(|d| d.join("pkgdb-v1")),
            mem: Mutex::new(HashMap::new()),
            reading: Mutex::new(HashMap::new()),
        }
    }

    /// The database entries of one layer, from memory, disk, or by reading the layer once.
    fn picked(
        &self,
        src: &dyn Source,
        desc: &Descriptor,
        counter: &AtomicU64,
    ) -> Result<Arc<Vec<Picked>>> {
        let hit = || {
            self.mem
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&desc.digest)
                .cloned()
        };
        if let Some(hit) = hit() {
            return Ok(hit);
        }
        let lock = self
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(desc.digest.clone())
            .or_default()
            .clone();
        let _reading = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = hit() {
            return Ok(hit);
        }
        let picked = match self.load(&desc.digest) {
            Some(p) => Arc::new(p),
            None => {
                let p = Arc::new(read_layer(src, desc, counter)?);
                self.store(&desc.digest, &p);
                p
            }
        };
        self.mem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(desc.digest.clone(), picked.clone());
        Ok(picked)
    }

    fn entry_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(format!("{}.json", digest.hex())))
    }

    fn content_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("content").join(digest.hex()))
    }

    /// A cached summary, or `None` (missing, unreadable or inconsistent: the layer is re-read).
    fn load(&self, digest: &Digest) -> Option<Vec<Picked>> {
        let bytes = transport::read_capped(&self.entry_path(digest)?, 1 << 20).ok()?;
        let entries: Vec<CachedEntry> = serde_json::from_slice(&bytes).ok()?;
        entries
            .into_iter()
            .map(|e| {
                let kind = match (e.kind.as_str(), &e.content) {
                    ("file", Some(d)) => {
                        let content =
                            transport::read_capped(&self.content_path(d)?, pkgdb::MAX_DB_SIZE)
                                .ok()?;
                        (Digest::of(&content) == *d).then_some(PickedKind::File { content })?
                    }
                    ("deleted", None) => PickedKind::Deleted,
                    ("opaque", None) => PickedKind::Opaque,
                    ("not-a-file", None) => PickedKind::NotAFile,
                    _ => return None,
                };
                Some(Picked {
                    path: e.path,
                    kind,
                    mode: e.mode,
                    uid: e.uid,
                    gid: e.gid,
                    uname: e.uname,
                    gname: e.gname,
                    mtime: e.mtime,
                })
            })
            .collect()
    }

    /// Best effort: a cache that cannot be written only costs a re-read next time.
    fn store(&self, digest: &Digest, picked: &[Picked]) {
        let (Some(entry), Some(dir)) = (self.entry_path(digest), self.dir.as_ref()) else {
            return;
        };
        let mut entries = Vec::new();
        for p in picked {
            let (kind, content) = match &p.kind {
                PickedKind::File { content } => {
                    let d = Digest::of(content);
                    let Some(path) = self.content_path(&d) else {
                        return;
                    };
                    if !path.exists() && write_atomic(&dir.join("content"), &path, content).is_err()
                    {
                        return;
                    }
                    ("file", Some(d))
                }
                PickedKind::Deleted => ("deleted", None),
                PickedKind::Opaque => ("opaque", None),
                PickedKind::NotAFile => ("not-a-file", None),
            };
            entries.push(CachedEntry {
                path: p.path.clone(),
                kind: kind.to_string(),
                content,
                mode: p.mode,
                uid: p.uid,
                gid: p.gid,
                uname: p.uname.clone(),
                gname: p.gname.clone(),
                mtime: p.mtime,
            });
        }
        if let Ok(json) = serde_json::to_vec(&entries) {
            let _ = write_atomic(dir, &entry, &json);
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CachedEntry {
    path: String,
    kind: String,
    content: Option<Digest>,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: String,
    gname: String,
    mtime: u64,
}

/// Temp file (random name, O_EXCL) in `dir`, then rename to `path`.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let (mut file, tmp) = crate::transport::temp::file_in(dir, "cache")?;
    file.write_all(bytes)?;
    drop(file);
    tmp.persist(path)
}

/// Streams one layer, keeps its database entries; `super::layers::read_layer` checks the
/// blob's digest and size (the whole blob is read) before anyone trusts or caches them.
/// A database over the size cap is refused as one that does not parse: `--no-package-db`
/// skips the step.
fn read_layer(src: &dyn Source, desc: &Descriptor, counter: &AtomicU64) -> Result<Vec<Picked>> {
    let mut too_large = None;
    let read = super::layers::read_layer(src, desc, |tar| {
        pick_files(tar, &pkgdb::is_watched, &hides, pkgdb::MAX_DB_SIZE).inspect_err(|e| {
            if let LayerError::FileTooLarge { path, size, limit } = e {
                too_large = Some((path.clone(), *size, *limit));
            }
        })
    });
    if let Some((path, size, limit)) = too_large {
        return Err(Error::NeedsFlag {
            flag: "--no-package-db",
            message: format!(
                "{}: package database /{path} in layer {} is {size} bytes, more than the {limit} bytes ocipatch reads of one; pass --no-package-db to rebase without reconciling it",
                src.reference(),
                desc.digest
            ),
        });
    }
    Ok(match read? {
        Some((picked, bytes)) => {
            counter.fetch_add(bytes, Ordering::Relaxed);
            picked
        }
        None => Vec::new(),
    })
}

/// The copy of `path` that the layers (listed top first) show, or why there is none.
#[derive(Clone, Debug)]
enum Visible<'a> {
    File(&'a Picked),
    /// Deleted, hidden by an opaque directory, or not a regular file.
    Gone,
    /// No layer has anything to say about it.
    Untouched,
}

fn visible<'a>(layers_top_first: &[&'a [Picked]], path: &str) -> Visible<'a> {
    let covers = |dir: &str| dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"));
    for layer in layers_top_first {
        if let Some(p) = layer
            .iter()
            .rev()
            .find(|p| p.path == path && !matches!(p.kind, PickedKind::Deleted | PickedKind::Opaque))
        {
            return match p.kind {
                PickedKind::File { .. } => Visible::File(p),
                _ => Visible::Gone,
            };
        }
        let hidden = layer.iter().any(|p| match p.kind {
            PickedKind::Deleted => covers(&p.path),
            // An opaque directory hides what lower layers have strictly below it.
            PickedKind::Opaque => p.path != path && covers(&p.path),
            _ => false,
        });
        if hidden {
            return Visible::Gone;
        }
    }
    Visible::Untouched
}

/// Reads layers top down, one at a time, until `path`'s copy is decided.
struct LazyStack<'a> {
    src: &'a dyn Source,
    /// Bottom to top.
    layers: &'a [Descriptor],
    cache: &'a LayerCache,
    counter: &'a AtomicU64,
    read: Vec<Arc<Vec<Picked>>>,
}

impl<'a> LazyStack<'a> {
    fn new(
        src: &'a dyn Source,
        layers: &'a [Descriptor],
        cache: &'a LayerCache,
        counter: &'a AtomicU64,
    ) -> Self {
        LazyStack {
            src,
            layers,
            cache,
            counter,
            read: Vec::new(),
        }
    }

    /// The content and header of `path` in this stack, `None` when absent.
    fn copy_of(&mut self, path: &str) -> Result<Option<Picked>> {
        loop {
            let views: Vec<&[Picked]> = self.read.iter().map(|v| v.as_slice()).collect();
            match visible(&views, path) {
                Visible::File(p) => return Ok(Some(p.clone())),
                Visible::Gone => return Ok(None),
                Visible::Untouched if self.read.len() == self.layers.len() => return Ok(None),
                Visible::Untouched => {}
            }
            let next = &self.layers[self.layers.len() - 1 - self.read.len()];
            let picked = self.cache.picked(self.src, next, self.counter)?;
            self.read.push(picked);
        }
    }
}

fn content(p: &Picked) -> &[u8] {
    match &p.kind {
        PickedKind::File { content } => content,
        _ => &[],
    }
}

/// Reconciles the package databases of one image: the text formats ([`Format`]), distroless
/// `status.d/` files, rpm's databases. `report: None` when the application's layers carry none
/// (nothing to do, nothing added).
pub fn reconcile(input: &DbInput, cache: &LayerCache) -> Result<Reconciled> {
    let image_bytes = AtomicU64::new(0);
    let new_bytes = AtomicU64::new(0);
    let split = input.base_len.min(input.image_layers.len());
    let (base_layers, app_layers) = input.image_layers.split_at(split);
    let app: Vec<Arc<Vec<Picked>>> = app_layers
        .par_iter()
        .map(|l| cache.picked(input.image_src, l, &image_bytes))
        .collect::<Result<_>>()?;
    let mut run = Run {
        input,
        app_layers,
        app: &app,
        old: LazyStack::new(input.image_src, base_layers, cache, &image_bytes),
        new: LazyStack::new(input.new_src, input.new_layers, cache, &new_bytes),
        report: PackageDbReport {
            replaced_layer: input
                .replaces_top
                .then(|| input.image_layers.last().map(|l| l.digest.clone()))
                .flatten(),
            ..PackageDbReport::default()
        },
        files: Vec::new(),
        touched: false,
        any_change: false,
    };
    for format in Format::ALL {
        run.text_database(format)?;
    }
    run.status_d()?;
    let rpm = reconcile_rpm(
        input,
        app_layers,
        &app,
        &mut run.old,
        &mut run.new,
        &mut run.report,
    )?;
    run.touched |= rpm.touched;
    run.any_change |= rpm.changed;
    run.files.extend(rpm.files);

    let bytes_read = BytesRead {
        image: image_bytes.load(Ordering::Relaxed),
        new_base: new_bytes.load(Ordering::Relaxed),
    };
    if !run.touched {
        return Ok(Reconciled {
            report: None,
            files: Vec::new(),
            bytes_read,
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
    })
}

/// One image's reconciliation under way: the three stacks of layers and what was found.
struct Run<'a> {
    input: &'a DbInput<'a>,
    app_layers: &'a [Descriptor],
    /// What each application layer holds, bottom to top.
    app: &'a [Arc<Vec<Picked>>],
    old: LazyStack<'a>,
    new: LazyStack<'a>,
    report: PackageDbReport,
    files: Vec<FileEntry>,
    /// The application's layers carry a database (or delete one).
    touched: bool,
    /// Some merged file differs from the application's copy.
    any_change: bool,
}

/// A database that does not parse: never write a wrong one; `--no-package-db` skips the step.
fn unparsable(src: &dyn Source, path: &str, whence: &str, e: pkgdb::ParseError) -> Error {
    Error::NeedsFlag {
        flag: "--no-package-db",
        message: format!(
            "{}: /{path} in {whence} does not parse: {e}; fix the image, or pass --no-package-db to rebase without reconciling it",
            src.reference()
        ),
    }
}

/// A file's header on new content: the reconciled file keeps the application copy's owner,
/// mode and mtime.
fn file_like(copy: &Picked, path: &str, content: Vec<u8>) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        content,
        mode: copy.mode,
        uid: copy.uid,
        gid: copy.gid,
        uname: copy.uname.clone(),
        gname: copy.gname.clone(),
        mtime: copy.mtime,
    }
}

/// Layers listed top first, as [`visible`] takes them.
fn top_first(layers: &[Arc<Vec<Picked>>]) -> Vec<&[Picked]> {
    layers.iter().rev().map(|v| v.as_slice()).collect()
}

impl Run<'_> {
    /// Which application layer holds `path` (for errors).
    fn app_layer_of(&self, path: &str) -> String {
        self.app_layers
            .iter()
            .zip(self.app)
            .rev()
            .find(|(_, p)| p.iter().any(|e| e.path == path))
            .map_or_else(
                || "the application's layers".to_string(),
                |(l, _)| format!("application layer {}", l.digest),
            )
    }

    /// One database file of a text format: the three copies, merged.
    fn text_database(&mut self, format: Format) -> Result<()> {
        let path = format.path();
        let app_copy = match visible(&top_first(self.app), path) {
            Visible::Untouched => return Ok(()),
            Visible::Gone => {
                self.touched = true;
                self.report.databases.push(DbFile {
                    path: path.to_string(),
                    action: DbAction::DeletedByApplication,
                    packages: None,
                });
                return Ok(());
            }
            Visible::File(p) => p.clone(),
        };
        self.touched = true;
        let (old_copy, new_copy) = (self.old.copy_of(path)?, self.new.copy_of(path)?);
        let layer_of = |stack: &LazyStack, which: &str| match stack.read.len() {
            0 => which.to_string(),
            n => format!(
                "{which} layer {}",
                stack.layers[stack.layers.len() - n].digest
            ),
        };
        let parse = |copy: &Picked, src: &dyn Source, whence: String| {
            pkgdb::parse(format, content(copy)).map_err(|e| unparsable(src, path, &whence, e))
        };
        let (image_src, new_src) = (self.input.image_src, self.input.new_src);
        let app_db = parse(&app_copy, image_src, self.app_layer_of(path))?;
        let old_db = old_copy
            .as_ref()
            .map(|c| parse(c, image_src, layer_of(&self.old, "old base")))
            .transpose()?;
        let new_db = new_copy
            .as_ref()
            .map(|c| parse(c, new_src, layer_of(&self.new, "new base")))
            .transpose()?;
        let merged = pkgdb::merge(old_db.as_ref(), new_db.as_ref(), &app_db);
        let unchanged = merged.bytes == content(&app_copy);
        self.any_change |= !unchanged;
        self.report.databases.push(DbFile {
            path: path.to_string(),
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
        self.files.push(file_like(&app_copy, path, merged.bytes));
        Ok(())
    }

    /// Distroless `status.d/` self.files.
    fn status_d(&mut self) -> Result<()> {
        let app = self.app;
        let app_top_first = top_first(app);
        // distroless: one stanza file per package. The file is the unit: a stale copy the app
        // carries (same as the old base's) gives way to the new base's; one the app changed stays
        // (a pin when the new base changed it too). A package the new base dropped cannot be
        // deleted by a files-only layer: reported, left as it is.
        let mut status_d: Vec<&Picked> = app
            .iter()
            .flat_map(|l| l.iter())
            .filter(|p| {
                pkgdb::is_status_d_file(&p.path) && matches!(p.kind, PickedKind::File { .. })
            })
            .collect();
        status_d.sort_by(|a, b| a.path.cmp(&b.path));
        status_d.dedup_by(|a, b| a.path == b.path);
        for p in status_d {
            let Visible::File(app_copy) = visible(&app_top_first, &p.path) else {
                continue;
            };
            self.touched = true;
            let src = self.input.image_src;
            let parse = |bytes: &[u8], whence: &str| {
                pkgdb::parse(Format::DpkgStatus, bytes)
                    .map_err(|e| unparsable(src, &p.path, whence, e))
            };
            let app_db = parse(content(app_copy), "the application's layers")?;
            let (old_copy, new_copy) = (self.old.copy_of(&p.path)?, self.new.copy_of(&p.path)?);
            let new_db = new_copy
                .as_ref()
                .map(|n| parse(content(n), "the new base"))
                .transpose()?;
            let old_content = old_copy.as_ref().map(content);
            let new_content = new_copy.as_ref().map(content);
            let app_content = Some(content(app_copy));
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
                        self.files
                            .push(file_like(app_copy, &p.path, content(n).to_vec()));
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
                path: p.path.clone(),
                action,
                packages: Some(app_db.records.len()),
            });
        }

        Ok(())
    }
}

/// What a rebase onto `base` would upgrade, as scanners see it: packages in both the image's
/// database (its topmost copy) and the base's whose versions differ. Empty when either has no
/// database. Reads layers top down only until each copy is found.
pub fn base_upgrades(
    image_src: &dyn Source,
    image_layers: &[Descriptor],
    base_src: &dyn Source,
    base_layers: &[Descriptor],
    cache: &LayerCache,
) -> Result<Vec<PackageChange>> {
    let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut image = LazyStack::new(image_src, image_layers, cache, &a);
    let mut base = LazyStack::new(base_src, base_layers, cache, &b);
    let mut out = Vec::new();
    for format in Format::ALL.into_iter().filter(|f| f.has_versions()) {
        let (Some(mine), Some(theirs)) =
            (image.copy_of(format.path())?, base.copy_of(format.path())?)
        else {
            continue;
        };
        let parse = |p: &Picked, src: &dyn Source| {
            pkgdb::parse(format, content(p)).map_err(|e| {
                Error::Corrupt(format!("{}: /{}: {e}", src.reference(), format.path()))
            })
        };
        let (mine, theirs) = (parse(&mine, image_src)?, parse(&theirs, base_src)?);
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

struct RpmOutcome {
    touched: bool,
    changed: bool,
    files: Vec<FileEntry>,
}

/// rpm's databases: `rpmdb.sqlite` is merged by header ([`pkgdb::rpm`]); BerkeleyDB and NDB
/// are refused (reported as not reconciled when the new base changed them, which also leaves
/// the shadowed-file safety finding real, so `--strict` fails).
fn reconcile_rpm(
    input: &DbInput,
    app_layers: &[Descriptor],
    app: &[Arc<Vec<Picked>>],
    old: &mut LazyStack,
    new: &mut LazyStack,
    report: &mut PackageDbReport,
) -> Result<RpmOutcome> {
    let app_top_first: Vec<&[Picked]> = app.iter().rev().map(|v| v.as_slice()).collect();
    let mut out = RpmOutcome {
        touched: false,
        changed: false,
        files: Vec::new(),
    };
    let where_app = |path: &str| {
        app_layers
            .iter()
            .zip(app)
            .rev()
            .find(|(_, p)| p.iter().any(|e| e.path == path))
            .map_or_else(
                || "the application's layers".to_string(),
                |(l, _)| format!("application layer {}", l.digest),
            )
    };
    let where_stack = |stack: &LazyStack, which: &str| match stack.read.len() {
        0 => which.to_string(),
        n => format!(
            "{which} layer {}",
            stack.layers[stack.layers.len() - n].digest
        ),
    };
    let fail = |src: &dyn Source, path: &str, whence: String, e: &dyn std::fmt::Display| {
        Error::NeedsFlag {
        flag: "--no-package-db",
        message: format!(
            "{}: rpm database /{path} in {whence}: {e}; fix the image, or pass --no-package-db to rebase without reconciling it",
            src.reference()
        ),
    }
    };
    for (path, kind) in pkgdb::RpmDbKind::PATHS {
        let app_copy = match visible(&app_top_first, path) {
            Visible::Untouched => continue,
            Visible::Gone => {
                out.touched = true;
                report.databases.push(DbFile {
                    path: path.to_string(),
                    action: DbAction::DeletedByApplication,
                    packages: None,
                });
                continue;
            }
            Visible::File(p) => p.clone(),
        };
        out.touched = true;
        let old_copy = old.copy_of(path)?;
        let old_where = where_stack(old, "old base");
        let new_copy = new.copy_of(path)?;
        let new_where = where_stack(new, "new base");
        if kind != pkgdb::RpmDbKind::Sqlite {
            let stale = old_copy.as_ref().map(content) != new_copy.as_ref().map(content);
            report.databases.push(DbFile {
                path: path.to_string(),
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
        let wal = pkgdb::rpm_wal_path(path);
        let pending = |copy: Option<Picked>| copy.is_some_and(|c| !content(&c).is_empty());
        let app_wal = match visible(&app_top_first, &wal) {
            Visible::File(p) => Some(p.clone()),
            _ => None,
        };
        for (copy, src, whence) in [
            (app_wal, input.image_src, where_app(&wal)),
            (
                old.copy_of(&wal)?,
                input.image_src,
                where_stack(old, "old base"),
            ),
            (
                new.copy_of(&wal)?,
                input.new_src,
                where_stack(new, "new base"),
            ),
        ] {
            if pending(copy) {
                return Err(fail(
                    src,
                    &wal,
                    whence,
                    &"the write-ahead log is not empty (the database was not closed cleanly)",
                ));
            }
        }
        let app_db = pkgdb::rpm::read(content(&app_copy))
            .map_err(|e| fail(input.image_src, path, where_app(path), &e))?;
        let old_db = old_copy
            .as_ref()
            .map(|c| pkgdb::rpm::read(content(c)))
            .transpose()
            .map_err(|e| fail(input.image_src, path, old_where, &e))?;
        let new_db = new_copy
            .as_ref()
            .map(|c| pkgdb::rpm::read(content(c)))
            .transpose()
            .map_err(|e| fail(input.new_src, path, new_where, &e))?;
        let merged = pkgdb::rpm::merge(old_db.as_ref(), new_db.as_ref(), &app_db)
            .map_err(|e| fail(input.image_src, path, where_app(path), &e))?;
        out.changed |= !merged.same_as_app;
        report.databases.push(DbFile {
            path: path.to_string(),
            action: if merged.same_as_app {
                DbAction::Unchanged
            } else {
                DbAction::Reconciled
            },
            packages: Some(merged.packages),
        });
        report.changes.extend(merged.changes);
        report.added.extend(merged.added);
        report.removed.extend(merged.removed);
        report.pinned.extend(merged.pins);
        // Unchanged: the application's own file, so a rebase onto the current base (or of an
        // earlier rebase's output) rebuilds the same layer.
        let bytes = if merged.same_as_app {
            content(&app_copy).to_vec()
        } else {
            merged.bytes
        };
        out.files.push(file_like(&app_copy, path, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> Picked {
        Picked {
            path: path.into(),
            kind: PickedKind::File {
                content: content.to_vec(),
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
        }
    }

    fn marker(path: &str, kind: PickedKind) -> Picked {
        Picked {
            kind,
            ..file(path, b"")
        }
    }

    #[test]
    fn visible_copy_honours_whiteouts_and_opaque_dirs() {
        let s = "var/lib/dpkg/status";
        let top = vec![file("etc/apk/world", b"x\n")];
        let mid = vec![marker("var/lib/dpkg", PickedKind::Opaque), file(s, b"mid")];
        let low = vec![file(s, b"low")];
        // The opaque marker and the file in one layer: the layer's own file shows.
        match visible(&[&top, &mid, &low], s) {
            Visible::File(p) => assert_eq!(content(p), b"mid"),
            other => panic!("{other:?}"),
        }
        let mid = vec![marker("var/lib/dpkg", PickedKind::Opaque)];
        assert!(matches!(visible(&[&top, &mid, &low], s), Visible::Gone));
        let mid = vec![marker("var/lib", PickedKind::Deleted)];
        assert!(matches!(visible(&[&mid, &low], s), Visible::Gone));
        let mid = vec![marker(s, PickedKind::Deleted)];
        assert!(matches!(visible(&[&mid, &low], s), Visible::Gone));
        assert!(matches!(visible(&[&top], s), Visible::Untouched));
        match visible(&[&top, &low], s) {
            Visible::File(p) => assert_eq!(content(p), b"low"),
            other => panic!("{other:?}"),
        }
        assert!(
            hides("var")
                && hides("var/lib/dpkg")
                && hides("")
                && !hides("opt")
                && !hides("var/lib/dpkg/info")
        );
        // rpm's databases, at both canonical places, and sqlite's write-ahead log beside them.
        assert!(
            hides("usr")
                && hides("usr/lib/sysimage/rpm")
                && hides("var/lib/rpm")
                && hides("var/lib/rpm/rpmdb.sqlite-wal")
                && !hides("usr/lib/sysimage/dnf")
                && !hides("var/lib/rpm/rpmdb.sqlite-shm")
        );
    }
}
