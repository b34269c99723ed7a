//! An in-memory [`View`] for the unit tests: files (with an ELF summary or text), directories
//! and symlinks, resolved inside the tree as the kernel resolves them inside a chroot.

use std::collections::BTreeMap;

use super::{NodeKind, Resolved, View};
use crate::verdict::elf::{ElfClass, ElfInfo, ElfKind, NeededVersion, VersionNeed};

#[derive(Clone, Debug)]
pub enum Node {
    File(Option<ElfInfo>, Option<Vec<u8>>),
    Dir,
    Symlink(String),
}

#[derive(Default)]
pub struct MemView {
    pub nodes: BTreeMap<String, Node>,
}

impl MemView {
    pub fn new() -> MemView {
        MemView::default()
    }

    fn add_parents(&mut self, path: &str) {
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(p);
            self.nodes.entry(at.clone()).or_insert(Node::Dir);
        }
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.add_parents(path);
        self.nodes.insert(path.to_owned(), Node::Dir);
        self
    }

    pub fn put_elf(&mut self, path: &str, info: ElfInfo) -> &mut Self {
        self.add_parents(path);
        self.nodes
            .insert(path.to_owned(), Node::File(Some(info), None));
        self
    }

    pub fn put_text(&mut self, path: &str, text: &str) -> &mut Self {
        self.add_parents(path);
        self.nodes.insert(
            path.to_owned(),
            Node::File(None, Some(text.as_bytes().to_vec())),
        );
        self
    }

    pub fn link(&mut self, path: &str, target: &str) -> &mut Self {
        self.add_parents(path);
        self.nodes
            .insert(path.to_owned(), Node::Symlink(target.to_owned()));
        self
    }

    /// A Debian 12 style tree: merged /usr, ld.so and libc in usr/lib/x86_64-linux-gnu, the
    /// stock ld.so.conf.
    pub fn debian() -> MemView {
        let mut v = MemView::new();
        v.link("lib", "usr/lib")
            .link("lib64", "usr/lib64")
            .link("usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            .put_elf(
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                ElfBuilder::lib("ld-linux-x86-64.so.2")
                    .defines(&["GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.34", "GLIBC_2.35", "GLIBC_PRIVATE"])
                    .build(),
            )
            .put_elf(
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                ElfBuilder::lib("libc.so.6")
                    .needed(&["ld-linux-x86-64.so.2"])
                    .defines(&["GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.34", "GLIBC_2.35", "GLIBC_2.36", "GLIBC_PRIVATE"])
                    .need("ld-linux-x86-64.so.2", &["GLIBC_2.35", "GLIBC_PRIVATE"])
                    .build(),
            )
            .put_text("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n\n")
            .put_text("etc/ld.so.conf.d/libc.conf", "# libc default configuration\n/usr/local/lib\n")
            .put_text(
                "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
                "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
            )
            .dir("usr/local/lib")
            .dir("usr/bin");
        v
    }
}

impl View for MemView {
    fn resolve(&self, path: &str) -> Resolved {
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            if c.is_empty() || c == "." {
                continue;
            }
            if c == ".." {
                cur.pop();
                continue;
            }
            let mut cand = cur.clone();
            cand.push(c.clone());
            let key = cand.join("/");
            match self.nodes.get(&key) {
                None => return Resolved::Missing,
                Some(Node::Dir) => cur = cand,
                Some(Node::File(..)) => {
                    if pending.iter().all(|p| p.is_empty() || p == ".") {
                        return Resolved::File(key);
                    }
                    return Resolved::Missing;
                }
                Some(Node::Symlink(t)) => {
                    hops += 1;
                    if hops > 40 {
                        return Resolved::Broken("too many levels of symbolic links".into());
                    }
                    if t.starts_with('/') {
                        cur.clear();
                    }
                    for part in t.split('/').rev() {
                        pending.push(part.to_owned());
                    }
                }
            }
        }
        Resolved::Dir(cur.join("/"))
    }

    fn list(&self, dir: &str) -> Vec<(String, NodeKind)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .iter()
            .filter_map(|(k, n)| {
                let rest = k.strip_prefix(&prefix)?;
                (!rest.is_empty() && !rest.contains('/')).then(|| {
                    let kind = match n {
                        Node::File(..) => NodeKind::File,
                        Node::Dir => NodeKind::Dir,
                        Node::Symlink(_) => NodeKind::Symlink,
                    };
                    (rest.to_owned(), kind)
                })
            })
            .collect()
    }

    fn elf(&self, path: &str) -> Option<&ElfInfo> {
        match self.nodes.get(path) {
            Some(Node::File(Some(info), _)) => Some(info),
            _ => None,
        }
    }

    fn text(&self, path: &str) -> Option<&[u8]> {
        match self.nodes.get(path) {
            Some(Node::File(_, Some(t))) => Some(t),
            _ => None,
        }
    }
}

/// Builds ElfInfo values for tests: x86-64 shared objects unless told otherwise.
pub struct ElfBuilder(pub ElfInfo);

impl ElfBuilder {
    pub fn lib(soname: &str) -> ElfBuilder {
        let mut b = ElfBuilder::bare();
        b.0.soname = Some(soname.to_owned());
        b
    }

    pub fn bare() -> ElfBuilder {
        ElfBuilder(ElfInfo {
            class: ElfClass::Elf64,
            big_endian: false,
            machine: 62,
            osabi: 0,
            flags: 0,
            kind: ElfKind::SharedObject,
            interp: None,
            dynamic: true,
            soname: None,
            needed: Vec::new(),
            rpath: Vec::new(),
            runpath: Vec::new(),
            nodeflib: false,
            defines: Vec::new(),
            needs: Vec::new(),
        })
    }

    pub fn exe(needed: &[&str]) -> ElfBuilder {
        let mut b = ElfBuilder::bare();
        b.0.interp = Some("/lib64/ld-linux-x86-64.so.2".into());
        b.0.needed = needed.iter().map(|s| s.to_string()).collect();
        b
    }

    pub fn needed(mut self, n: &[&str]) -> Self {
        self.0.needed = n.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn defines(mut self, d: &[&str]) -> Self {
        self.0.defines = d.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn need(mut self, file: &str, versions: &[&str]) -> Self {
        self.0.needs.push(VersionNeed {
            file: file.to_owned(),
            versions: versions
                .iter()
                .map(|v| NeededVersion {
                    name: v.trim_start_matches('~').to_string(),
                    weak: v.starts_with('~'),
                })
                .collect(),
        });
        self
    }

    pub fn rpath(mut self, r: &[&str]) -> Self {
        self.0.rpath = r.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn runpath(mut self, r: &[&str]) -> Self {
        self.0.runpath = r.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn nodeflib(mut self) -> Self {
        self.0.nodeflib = true;
        self
    }

    pub fn class32(mut self) -> Self {
        self.0.class = ElfClass::Elf32;
        self.0.machine = 3;
        self
    }

    pub fn interp(mut self, i: &str) -> Self {
        self.0.interp = Some(i.to_owned());
        self
    }

    pub fn build(self) -> ElfInfo {
        self.0
    }
}
