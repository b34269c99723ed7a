//! One image's layers as a file system: their summaries stacked into a [`Tree`], and files
//! found in it the way a program inside the image finds them (links followed inside the
//! image, whiteouts honoured, hard links read as the file they link to).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::summaries::LayerSummaries;
use crate::error::{Error, LayerName, Result};
use crate::layer::{resolve, EntryInfo, EntryKind, KeptFile, LayerSummary, Lookup, Tree};
use crate::model::Descriptor;
use crate::pkgdb;
use crate::transport::Source;
use crate::verdict::elf::ElfInfo;
use crate::verdict::ldso;

/// One image's layers, bottom to top, and the file tree they add up to.
pub struct Stack<'a> {
    /// Which stack, for messages: `old base`, `new base`, `the application`.
    name: &'static str,
    layers: Vec<StackLayer<'a>>,
    tree: Tree,
}

struct StackLayer<'a> {
    src: &'a dyn Source,
    desc: &'a Descriptor,
    summary: Arc<LayerSummary>,
}

/// A regular file found through a [`Stack`]: where it is, its header and its contents.
#[derive(Clone, Debug)]
pub struct Copy {
    /// The canonical path the lookup led to.
    pub path: String,
    /// Its header (for a hard link, the link's own).
    pub entry: EntryInfo,
    /// Owner names of its header.
    pub uname: String,
    /// Group name of its header.
    pub gname: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// The index of the layer (in the stack) that holds it.
    pub layer: usize,
    /// For a hard link, the other name of the same file (also to be rewritten).
    pub hard_link_target: Option<String>,
}

/// What a lookup of a database path in a stack found.
#[derive(Clone, Debug)]
pub enum Found {
    /// A regular file.
    File(Box<Copy>),
    /// Nothing there (or a whiteout deleted it).
    Absent,
    /// Something else, or a link that cannot be followed: why, in words.
    Unusable(String),
    /// A regular file over the size cap of what summaries keep.
    TooLarge {
        /// The canonical path the lookup led to.
        path: String,
        /// Its size.
        size: u64,
        /// The index of the layer that holds it.
        layer: usize,
    },
}

impl<'a> Stack<'a> {
    /// `parts` bottom to top: each layer's source, descriptor and summary.
    pub fn new(
        name: &'static str,
        parts: impl IntoIterator<Item = (&'a dyn Source, &'a Descriptor, Arc<LayerSummary>)>,
    ) -> Stack<'a> {
        let mut tree = Tree::new();
        let layers: Vec<StackLayer> = parts
            .into_iter()
            .map(|(src, desc, summary)| {
                tree.apply(&summary.entries);
                StackLayer { src, desc, summary }
            })
            .collect();
        Stack { name, layers, tree }
    }

    /// The merged file tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The layer at `index`, named for errors (the stack alone when there is no such layer).
    pub fn layer(&self, index: usize) -> LayerName {
        LayerName {
            image: self.name,
            digest: self.layers.get(index).map(|l| l.desc.digest.clone()),
        }
    }

    /// The summary of the layer at `index`.
    pub fn summary(&self, index: usize) -> Option<&LayerSummary> {
        self.layers.get(index).map(|l| l.summary.as_ref())
    }

    /// Looks `path` up and reads the regular file it leads to. A file whose contents the
    /// summary did not keep (a link led somewhere unusual) is read from its layer again.
    pub fn file(&self, path: &str, counter: &AtomicU64) -> Result<Found> {
        let lookup = resolve(&self.tree, path, true);
        let (found, entry) = match &lookup {
            Lookup::Found {
                path,
                entry: Some(e),
                ..
            } => (path.clone(), *e),
            Lookup::Found { .. } => return Ok(Found::Unusable(format!("{path} is a directory"))),
            Lookup::Missing { .. } => return Ok(Found::Absent),
            other => {
                return Ok(Found::Unusable(
                    other.problem(path).unwrap_or_else(|| path.to_string()),
                ))
            }
        };
        let layer = self.tree.layer_of(&found).unwrap_or(0);
        let (content_path, hard_link_target) = match entry.kind {
            EntryKind::File => (found.clone(), None),
            EntryKind::HardLink => {
                let target = entry.link_target.clone().unwrap_or_default();
                (target.clone(), Some(target))
            }
            other => {
                return Ok(Found::Unusable(format!(
                    "{path} leads to {found}, which is a {other:?}, not a regular file"
                )))
            }
        };
        let summary = &self.layers[layer].summary;
        if let Some((_, size)) = summary
            .oversized
            .iter()
            .find(|(p, _)| *p == found || *p == content_path)
        {
            return Ok(Found::TooLarge {
                path: found,
                size: *size,
                layer,
            });
        }
        let kept = match summary.kept(&found).or_else(|| summary.kept(&content_path)) {
            Some(k) => k.clone(),
            None => self
                .read_again(layer, &content_path, counter)?
                .ok_or_else(|| Error::MissingContents {
                    reference: self.layers[layer].src.reference().to_string(),
                    path: path.to_string(),
                    found: found.clone(),
                    layer: self.layer(layer),
                })?,
        };
        Ok(Found::File(Box::new(Copy {
            path: found,
            entry: entry.clone(),
            uname: kept.uname,
            gname: kept.gname,
            content: kept.content,
            layer,
            hard_link_target,
        })))
    }

    /// The one exception to reading a layer once: a database a link leads to, outside the
    /// paths summaries keep. Not cached (only hostile or unusual images get here).
    fn read_again(
        &self,
        layer: usize,
        path: &str,
        counter: &AtomicU64,
    ) -> Result<Option<KeptFile>> {
        let l = &self.layers[layer];
        let keep = |p: &str| p == path;
        let read = super::layers::read_layer(l.src, l.desc, |tar| {
            crate::layer::summarize(tar, &keep, pkgdb::MAX_DB_SIZE)
        })?;
        Ok(read.and_then(|(s, bytes)| {
            counter.fetch_add(bytes, Ordering::Relaxed);
            s.kept(path).cloned()
        }))
    }
}

/// Reads the summaries of `layers` in parallel, adding their bytes to `counter`.
pub fn summaries_of(
    src: &dyn Source,
    layers: &[Descriptor],
    cache: &LayerSummaries,
    counter: &AtomicU64,
) -> Result<Vec<Arc<LayerSummary>>> {
    layers
        .par_iter()
        .map(|l| cache.get(src, l, counter))
        .collect()
}

/// A [`Stack`] as the loader model sees a file system ([`ldso::View`]): lookups through the
/// stack's tree (links followed inside the image), ELF summaries and small files from the layer
/// that holds each path, and `overlay` files on top (what the package-database layer writes).
pub struct StackView<'a> {
    stack: &'a Stack<'a>,
    overlay: &'a [crate::layer::FileEntry],
    /// Canonical path → its ELF summary, for the files the tree shows.
    elf: HashMap<&'a str, &'a ElfInfo>,
}

impl<'a> StackView<'a> {
    /// The view of `stack`, with `overlay` files replacing what is at their paths.
    pub fn new(stack: &'a Stack<'a>, overlay: &'a [crate::layer::FileEntry]) -> StackView<'a> {
        let mut elf = HashMap::new();
        for (index, layer) in stack.layers.iter().enumerate() {
            for (path, info) in &layer.summary.elf {
                if let Ok(info) = info {
                    if stack.tree.layer_of(path) == Some(index) {
                        elf.insert(path.as_str(), info);
                    }
                }
            }
        }
        StackView {
            stack,
            overlay,
            elf,
        }
    }

    /// Every ELF file the view shows, in path order, with the layer that holds it.
    pub fn elf_files(&self) -> Vec<(&'a str, &'a ElfInfo, usize)> {
        let mut out: Vec<_> = self
            .elf
            .iter()
            .map(|(p, i)| (*p, *i, self.stack.tree.layer_of(p).unwrap_or(0)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }
}

impl ldso::View for StackView<'_> {
    fn resolve(&self, path: &str) -> ldso::Resolved {
        match resolve(&self.stack.tree, path, true) {
            Lookup::Found { path, entry, .. } => match entry.map(|e| e.kind) {
                None | Some(EntryKind::Dir) => ldso::Resolved::Dir(path),
                Some(EntryKind::File | EntryKind::HardLink) => ldso::Resolved::File(path),
                Some(_) => ldso::Resolved::Missing,
            },
            Lookup::Missing { .. } | Lookup::NotADirectory { .. } => ldso::Resolved::Missing,
            broken @ (Lookup::TooManyLinks { .. } | Lookup::Escapes { .. }) => {
                ldso::Resolved::Broken(broken.problem(path).unwrap_or_default())
            }
        }
    }

    fn list(&self, dir: &str) -> Vec<(String, ldso::NodeKind)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: std::collections::BTreeMap<String, ldso::NodeKind> = Default::default();
        for e in self.stack.tree.below(dir) {
            let rest = &e.path[prefix.len()..];
            let (name, deeper) = match rest.split_once('/') {
                Some((name, _)) => (name, true),
                None => (rest, false),
            };
            if out.contains_key(name) {
                continue;
            }
            let kind = if deeper {
                ldso::NodeKind::Dir // an implicit directory (no entry of its own)
            } else {
                match e.kind {
                    EntryKind::File | EntryKind::HardLink => ldso::NodeKind::File,
                    EntryKind::Dir => ldso::NodeKind::Dir,
                    EntryKind::Symlink => ldso::NodeKind::Symlink,
                    _ => ldso::NodeKind::Other,
                }
            };
            out.insert(name.to_string(), kind);
        }
        out.into_iter().collect()
    }

    fn elf(&self, path: &str) -> Option<&ElfInfo> {
        self.elf.get(path).copied()
    }

    fn text(&self, path: &str) -> Option<&[u8]> {
        if let Some(f) = self.overlay.iter().find(|f| f.path == path) {
            return Some(&f.content);
        }
        let layer = self.stack.tree.layer_of(path)?;
        Some(&self.stack.layers[layer].summary.kept(path)?.content)
    }
}

/// Hand-made layer summaries for the unit tests of the package-database step and the verdict.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use crate::layer::{EntryInfo, EntryKind, KeptFile, LayerSummary};
    use crate::model::Digest;
    use crate::verdict::elf::{ElfClass, ElfInfo, ElfKind, NeededVersion, VersionNeed};

    /// One hand-made layer: regular files (with contents kept), ELF summaries of some of them.
    #[derive(Default)]
    pub(crate) struct L {
        files: Vec<(&'static str, Vec<u8>)>,
        elf: Vec<(&'static str, ElfInfo)>,
    }

    impl L {
        pub(crate) fn file(mut self, path: &'static str, content: &[u8]) -> L {
            self.files.push((path, content.to_vec()));
            self
        }
        pub(crate) fn elf(mut self, path: &'static str, info: ElfInfo) -> L {
            self.files.push((path, format!("elf {path}").into_bytes()));
            self.elf.push((path, info));
            self
        }
        pub(crate) fn summary(self) -> Arc<LayerSummary> {
            let entry = |path: &str, content: &[u8]| EntryInfo {
                path: path.to_string(),
                kind: EntryKind::File,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: content.len() as u64,
                mtime: 0,
                link_target: None,
                content: Some(Digest::of(content)),
            };
            Arc::new(LayerSummary {
                entries: self.files.iter().map(|(p, c)| entry(p, c)).collect(),
                kept: self
                    .files
                    .iter()
                    .map(|(p, c)| KeptFile {
                        path: p.to_string(),
                        content: c.clone(),
                        uname: String::new(),
                        gname: String::new(),
                    })
                    .collect(),
                oversized: Vec::new(),
                elf: self
                    .elf
                    .into_iter()
                    .map(|(p, i)| (p.to_string(), Ok(i)))
                    .collect(),
            })
        }
    }

    pub(crate) fn elf(soname: Option<&str>, needed: &[&str]) -> ElfInfo {
        ElfInfo {
            class: ElfClass::Elf64,
            big_endian: false,
            machine: 62,
            osabi: 0,
            flags: 0,
            kind: ElfKind::SharedObject,
            interp: None,
            dynamic: true,
            soname: soname.map(str::to_string),
            needed: needed.iter().map(|s| s.to_string()).collect(),
            rpath: Vec::new(),
            runpath: Vec::new(),
            nodeflib: false,
            defines: Vec::new(),
            needs: Vec::new(),
        }
    }

    pub(crate) fn libc(defines_up_to: u32) -> ElfInfo {
        ElfInfo {
            defines: (30..=defines_up_to)
                .map(|v| format!("GLIBC_2.{v}"))
                .collect(),
            ..elf(Some("libc.so.6"), &[])
        }
    }

    pub(crate) fn binary(needed: &[&str], versions: &[(&str, &str)]) -> ElfInfo {
        let mut needs: Vec<VersionNeed> = Vec::new();
        for (file, v) in versions {
            let name = NeededVersion {
                name: v.to_string(),
                weak: false,
            };
            match needs.iter_mut().find(|n| n.file == *file) {
                Some(n) => n.versions.push(name),
                None => needs.push(VersionNeed {
                    file: file.to_string(),
                    versions: vec![name],
                }),
            }
        }
        ElfInfo {
            kind: ElfKind::Executable,
            interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needs,
            ..elf(None, needed)
        }
    }
}
