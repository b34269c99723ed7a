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
use super::stack::{summaries_of, Found, Stack};
use super::summaries::LayerSummaries;
use crate::error::Result;
use crate::layer::{resolve, Lookup};
use crate::layer::{safety_findings, EntryInfo, FileEntry, Finding, FindingClass, FindingKind};
use crate::model::Platform;
use crate::pkgdb::{self, BytesRead, Format};
use crate::transport::Source;
use crate::verdict::{relations, release, ReleaseFacts};

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
    let base_len = input.base_len.min(image_s.len());
    let old = Stack::new(
        "old base",
        image_layers[..base_len]
            .iter()
            .zip(&image_s)
            .map(|(d, s)| (input.image_src, d, s.clone())),
    );
    let new = Stack::new(
        "new base",
        new_layers
            .iter()
            .zip(&new_s)
            .map(|(d, s)| (input.new_src, d, s.clone())),
    );
    let app: Vec<Vec<EntryInfo>> = image_s[base_len..]
        .iter()
        .map(|s| s.entries.clone())
        .collect();
    let mut findings = safety_findings(old.tree(), new.tree(), &app);

    // The release of each base, read through its own layers (os-release is a link on Debian).
    let old_release = release::detect(&|p: &str| contents(&old, p, &image_bytes));
    let new_release = release::detect(&|p: &str| contents(&new, p, &new_bytes));
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
    let result = Stack::new(
        "result",
        new_layers
            .iter()
            .zip(&new_s)
            .map(|(d, s)| (input.new_src, d, s.clone()))
            .chain(
                image_layers[base_len..]
                    .iter()
                    .zip(&image_s[base_len..])
                    .map(|(d, s)| (input.image_src, d, s.clone())),
            ),
    );
    let image = Stack::new(
        "image",
        image_layers
            .iter()
            .zip(&image_s)
            .map(|(d, s)| (input.image_src, d, s.clone())),
    );
    let views = Views {
        image: &image,
        new: &new,
        result: &result,
        db_files: input.db_files,
        image_bytes: &image_bytes,
        new_bytes: &new_bytes,
    };
    let mut notes = Vec::new();
    findings.extend(views.relation_findings(&mut notes));

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
        findings,
        platform_changes,
        notes,
        old_release,
        new_release,
        bytes_read: BytesRead {
            image: image_bytes.load(Ordering::Relaxed),
            new_base: new_bytes.load(Ordering::Relaxed),
        },
    })
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

/// The contents of the regular file `path` leads to in `stack`, if any.
fn contents(stack: &Stack, path: &str, counter: &AtomicU64) -> Option<Vec<u8>> {
    match stack.file(path, counter) {
        Ok(Found::File(c)) => Some(c.content),
        _ => None,
    }
}
