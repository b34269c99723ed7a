//! The loader model (ocipatch::verdict::ldso) against the real glibc tools, on the Debian 12
//! fixture images (scripts/make-debian-fixture.sh, unpacked with umoci):
//!
//! 1. `cache_entries` + `write_cache` give the bytes `ldconfig -r ROOTFS` writes, and the
//!    entries of the image's own `etc/ld.so.cache`;
//! 2. for every dynamically linked ELF file in the tree, what `ld.so` lists (ldd's
//!    `LD_TRACE_LOADED_OBJECTS=1`, in a chroot of the tree) is what the model loads, path for
//!    path, and neither finds a problem;
//! 3. with a library deleted, the files the model says fail are exactly those `ld.so` reports
//!    "not found" for; with a library rebuilt without a version a program needs, both
//!    name the version; with libc's newest versions hidden, the model names the highest left.
//!
//! Run as root (umoci unpack, chroot). Fails when umoci, ldconfig, chroot or gcc are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::util::*;
use ocipatch::verdict::elf::{ElfInfo, ElfKind, ElfScanner};
use ocipatch::verdict::ldso::{
    cache_entries, read_cache, write_cache, CacheEntry, CacheOptions, Checker, Libc, LoadProblem,
    NodeKind, Resolved, View,
};

const TOOLS: &[&str] = &[
    "umoci",
    "skopeo",
    "debootstrap",
    "chroot",
    "dpkg-query",
    "tar",
    "ldconfig",
    "gcc",
];

enum DNode {
    File(Option<ElfInfo>, Option<Vec<u8>>),
    Dir,
    Symlink(String),
    Other,
}

/// A [`View`] over an unpacked root file system: walked once with std::fs, every regular ELF
/// file summarised with [`ElfScanner`] (fed in 64 KiB reads), symlinks resolved inside the
/// root.
struct DirView {
    nodes: BTreeMap<String, DNode>,
    /// ELF files the scanner could not summarise, with the reason.
    unreadable: Vec<(String, String)>,
}

impl DirView {
    fn new(root: &Path) -> DirView {
        let mut v = DirView {
            nodes: BTreeMap::new(),
            unreadable: Vec::new(),
        };
        v.walk(root, "");
        v
    }

    fn walk(&mut self, root: &Path, rel: &str) {
        let dir = root.join(rel);
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let ft = meta.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(e.path()).unwrap();
                self.nodes
                    .insert(path, DNode::Symlink(t.to_string_lossy().into_owned()));
            } else if ft.is_dir() {
                self.nodes.insert(path.clone(), DNode::Dir);
                self.walk(root, &path);
            } else if ft.is_file() {
                let elf = self.scan(&e.path(), meta.size(), &path);
                let text = (path.starts_with("etc/ld.so.conf") || path.starts_with("etc/ld-musl-"))
                    .then(|| fs::read(e.path()).unwrap());
                self.nodes.insert(path, DNode::File(elf, text));
            } else {
                self.nodes.insert(path, DNode::Other);
            }
        }
    }

    fn scan(&mut self, file: &Path, size: u64, rel: &str) -> Option<ElfInfo> {
        let mut f = fs::File::open(file).ok()?;
        let mut s = ElfScanner::new(size);
        let mut buf = vec![0u8; 65536];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.feed(&buf[..n]);
            if s.is_done() {
                break;
            }
        }
        match s.finish() {
            Ok(info) => info,
            Err(e) => {
                self.unreadable.push((rel.to_owned(), e.reason));
                None
            }
        }
    }

    fn elf_mut(&mut self, path: &str) -> &mut ElfInfo {
        match self.nodes.get_mut(path) {
            Some(DNode::File(Some(info), _)) => info,
            _ => panic!("{path} is not an ELF file in the view"),
        }
    }

    /// Regular ELF files the loader would run or load: dynamic, executable or shared object.
    fn dynamic_elf_files(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|(p, n)| match n {
                DNode::File(Some(info), _)
                    if info.dynamic
                        && matches!(info.kind, ElfKind::Executable | ElfKind::SharedObject) =>
                {
                    Some(p.clone())
                }
                _ => None,
            })
            .collect()
    }
}

impl View for DirView {
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
            cur.push(c);
            let key = cur.join("/");
            match self.nodes.get(&key) {
                None | Some(DNode::Other) => return Resolved::Missing,
                Some(DNode::Dir) => {}
                Some(DNode::File(..)) => {
                    return if pending.iter().all(|p| p.is_empty() || p == ".") {
                        Resolved::File(key)
                    } else {
                        Resolved::Missing
                    };
                }
                Some(DNode::Symlink(t)) => {
                    hops += 1;
                    if hops > 40 {
                        return Resolved::Broken("too many levels of symbolic links".into());
                    }
                    cur.pop();
                    if t.starts_with('/') {
                        cur.clear();
                    }
                    pending.extend(t.split('/').rev().map(str::to_owned));
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
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, n)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| {
                    let kind = match n {
                        DNode::File(..) => NodeKind::File,
                        DNode::Dir => NodeKind::Dir,
                        DNode::Symlink(_) => NodeKind::Symlink,
                        DNode::Other => NodeKind::Other,
                    };
                    (rest.to_owned(), kind)
                })
            })
            .collect()
    }

    fn elf(&self, path: &str) -> Option<&ElfInfo> {
        match self.nodes.get(path) {
            Some(DNode::File(Some(i), _)) => Some(i),
            _ => None,
        }
    }

    fn text(&self, path: &str) -> Option<&[u8]> {
        match self.nodes.get(path) {
            Some(DNode::File(_, Some(t))) => Some(t),
            _ => None,
        }
    }
}

/// The Debian fixture layout, built (or copied from the script's cache) once.
fn fixture() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| built_once("make-debian-fixture.sh", TOOLS))
}

/// `umoci unpack` of a fixture tag into a fresh temp dir; returns (guard, rootfs).
fn unpack(tag: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("ocipatch-ldso-rootfs.")
        .tempdir()
        .unwrap();
    let rootfs = unpack_in(dir.path(), fixture(), tag);
    (dir, rootfs)
}

/// What the real loader says about one file: the `name => path` lines of `ld.so --list` in
/// order, the names it did not find, and the `version ... not found` errors.
#[derive(Debug, Default)]
struct Listed {
    loaded: Vec<(String, String)>,
    not_found: BTreeSet<String>,
    /// (version, required by)
    versions: BTreeSet<(String, String)>,
}

fn ld_so_list(rootfs: &Path, file: &str) -> Listed {
    // What ldd does (`ld.so --list` stops at the first missing library instead); the variable
    // is set inside the chroot, not for the host's chroot binary.
    let out = run(cmd("env")
        .args(["-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "chroot"])
        .arg(rootfs)
        .arg("/usr/bin/env")
        .arg("LD_TRACE_LOADED_OBJECTS=1")
        .arg("/lib64/ld-linux-x86-64.so.2")
        .arg(format!("/{file}")));
    let mut l = Listed::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let t = line.trim();
        if t.starts_with('/') && !t.contains(" => ") {
            // A dependency named by path (and the interpreter): "/path (0x...)".
            let path = t.split(" (").next().unwrap_or(t).to_owned();
            if path != "/lib64/ld-linux-x86-64.so.2" {
                l.loaded.push((path.clone(), path));
            }
        } else if let Some((name, rest)) = t.split_once(" => ") {
            if rest.starts_with("not found") {
                l.not_found.insert(name.to_owned());
            } else {
                let path = rest.split(" (").next().unwrap_or(rest).to_owned();
                l.loaded.push((name.to_owned(), path));
            }
        }
    }
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for line in text.lines() {
        // "/usr/bin/x: /lib/.../libv.so.1: version `V_2' not found (required by /usr/bin/x)"
        if let Some(at) = line.find("version `") {
            let rest = &line[at + 9..];
            let version = rest.split('\'').next().unwrap_or_default().to_owned();
            let by = rest
                .split("(required by ")
                .nth(1)
                .map(|r| r.trim_end_matches(')').trim_start_matches('/').to_owned())
                .unwrap_or_default();
            l.versions.insert((version, by));
        }
    }
    l
}

fn ldconfig_generator() -> String {
    let cache = read_cache(&fs::read("/etc/ld.so.cache").unwrap()).unwrap();
    cache
        .generator
        .expect("the host's ld.so.cache names its generator")
}

fn listing(cache_file: &Path) -> String {
    let out = run(cmd("ldconfig").arg("-p").arg("-C").arg(cache_file));
    // The first line names the file.
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_once('\n')
        .map_or("", |(_, rest)| rest)
        .to_owned()
}

/// (1) The cache bytes, for the base and for the app image (which adds libraries).
#[test]
fn write_cache_is_byte_identical_to_ldconfig() {
    for tag in ["base-v1", "base-v2", "app"] {
        let (_guard, rootfs) = unpack(tag);
        let view = DirView::new(&rootfs);
        assert!(
            view.unreadable.is_empty(),
            "{tag}: ELF files the scanner could not read: {:?}",
            view.unreadable
        );
        let ours_entries = cache_entries(&view);
        assert!(
            ours_entries.len() > 50,
            "{tag}: {} entries",
            ours_entries.len()
        );
        // The image's own cache, written by the image's ldconfig when it was built.
        let image_cache = read_cache(&fs::read(rootfs.join("etc/ld.so.cache")).unwrap()).unwrap();
        assert_eq!(
            image_cache.entries, ours_entries,
            "{tag}: the model differs from the image's own etc/ld.so.cache"
        );
        // The host's ldconfig on the tree (-X: do not touch the links).
        run_ok(
            cmd("ldconfig")
                .arg("-r")
                .arg(&rootfs)
                .arg("-X")
                .arg("-C")
                .arg("/etc/ld.so.cache.ocipatch-test"),
        );
        let theirs_path = rootfs.join("etc/ld.so.cache.ocipatch-test");
        let theirs = fs::read(&theirs_path).unwrap();
        let ours = write_cache(
            &ours_entries,
            &CacheOptions {
                generator: Some(ldconfig_generator()),
                big_endian: false,
            },
        );
        let ours_path = rootfs.join("etc/ld.so.cache.ours");
        fs::write(&ours_path, &ours).unwrap();
        assert_eq!(
            listing(&ours_path),
            listing(&theirs_path),
            "{tag}: `ldconfig -p` lists the caches differently"
        );
        assert!(ours == theirs, "{tag}: same listing, different bytes");
        eprintln!(
            "{tag}: {} entries, {} bytes, byte-identical",
            ours_entries.len(),
            ours.len()
        );
    }
}

/// The loader model's verdict and load order for every dynamic ELF file of the tree, compared
/// with `ld.so --list`. Returns the number of files compared.
fn compare_with_ld_so(rootfs: &Path, view: &DirView, cache: &[CacheEntry]) -> usize {
    let checker = Checker::new(view, cache, Libc::Glibc);
    let mut compared = 0;
    let mut lines = 0;
    let mut disagreements = Vec::new();
    for file in view.dynamic_elf_files() {
        if file.ends_with("ld-linux-x86-64.so.2") {
            continue; // the loader itself
        }
        let real = ld_so_list(rootfs, &file);
        let problems = checker.check(&file);
        let ours_not_found: BTreeSet<String> = problems
            .iter()
            .filter_map(|p| match p {
                LoadProblem::UnresolvedLibrary { soname, .. } => Some(soname.clone()),
                _ => None,
            })
            .collect();
        let ours_versions: BTreeSet<(String, String)> = problems
            .iter()
            .filter_map(|p| match p {
                LoadProblem::MissingVersion {
                    version, binary, ..
                } => Some((version.clone(), binary.clone())),
                _ => None,
            })
            .collect();
        let interp = checker
            .load_order(&file)
            .into_iter()
            .filter(|(opened, _)| opened != "/lib64/ld-linux-x86-64.so.2")
            .map(|(opened, _)| opened)
            .collect::<Vec<_>>();
        let theirs: Vec<String> = real.loaded.iter().map(|(_, p)| p.clone()).collect();
        if ours_not_found != real.not_found || ours_versions != real.versions || interp != theirs {
            disagreements.push(format!(
                "{file}:\n  ld.so: loads {theirs:?}, not found {:?}, versions {:?}\n  model: loads {interp:?}, problems {problems:?}",
                real.not_found, real.versions
            ));
        }
        compared += 1;
        lines += theirs.len();
    }
    assert!(
        lines > compared,
        "ld.so --list printed only {lines} `=>` lines for {compared} files"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {compared} files disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    compared
}

/// (2) Every dynamic ELF file of the app image: same objects, same order, no problems.
#[test]
fn resolution_agrees_with_ld_so_list() {
    let (_guard, rootfs) = unpack("app");
    let view = DirView::new(&rootfs);
    let cache = read_cache(&fs::read(rootfs.join("etc/ld.so.cache")).unwrap())
        .unwrap()
        .entries;
    let checker = Checker::new(&view, &cache, Libc::Glibc);
    let files = view.dynamic_elf_files();
    let started = std::time::Instant::now();
    let with_problems: Vec<_> = files
        .iter()
        .filter(|f| !checker.check(f).is_empty())
        .collect();
    let elapsed = started.elapsed();
    assert!(with_problems.is_empty(), "{with_problems:?}");
    let n = compare_with_ld_so(&rootfs, &view, &cache);
    assert!(n > 100, "only {n} dynamic ELF files");
    eprintln!("{n} ELF files agree with ld.so's trace; the model checked them all in {elapsed:?}");
}

/// (3a) A deleted library: the same files fail, for the same name.
#[test]
fn a_deleted_library_fails_the_same_files_as_ld_so() {
    let (_guard, rootfs) = unpack("base-v1");
    let gnu = rootfs.join("usr/lib/x86_64-linux-gnu");
    let mut removed = 0;
    for e in fs::read_dir(&gnu).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("libz.so.1") {
            fs::remove_file(e.path()).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "the base has no libz.so.1");
    let view = DirView::new(&rootfs);
    // The image's cache still lists libz.so.1, as ld.so sees it.
    let cache = read_cache(&fs::read(rootfs.join("etc/ld.so.cache")).unwrap())
        .unwrap()
        .entries;
    let checker = Checker::new(&view, &cache, Libc::Glibc);
    let failing: BTreeSet<String> = view
        .dynamic_elf_files()
        .into_iter()
        .filter(|f| {
            checker.check(f).iter().any(|p| {
                matches!(p, LoadProblem::UnresolvedLibrary { soname, .. } if soname == "libz.so.1")
            })
        })
        .collect();
    assert!(!failing.is_empty(), "nothing in the base needs libz.so.1");
    compare_with_ld_so(&rootfs, &view, &cache);
    eprintln!(
        "{} files fail without libz.so.1: {failing:?}",
        failing.len()
    );
}

/// (3b) A library rebuilt without a version a program needs: both loaders name it; and libc
/// with its newest versions hidden gives the highest one left.
#[test]
fn a_missing_version_is_named_like_ld_so_names_it() {
    let (_guard, rootfs) = unpack("base-v1");
    let work = rootfs.join("opt/vtest");
    fs::create_dir_all(&work).unwrap();
    let w = |name: &str, text: &str| fs::write(work.join(name), text).unwrap();
    w(
        "v.c",
        "int v1(void) { return 1; }\nint v2(void) { return 2; }\n",
    );
    w("v1.c", "int v1(void) { return 1; }\n");
    w(
        "new.map",
        "V_1 { global: v1; local: *; };\nV_2 { global: v2; } V_1;\n",
    );
    w("old.map", "V_1 { global: v1; local: *; };\n");
    w(
        "app.c",
        "int v1(void); int v2(void);\nint main(void) { return v1() + v2(); }\n",
    );
    let gcc = |args: &[&str]| {
        run_ok(cmd("gcc").current_dir(&work).args(args));
    };
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libv.so.1",
        "-Wl,--version-script=new.map",
        "v.c",
        "-o",
        "libv.so.1",
    ]);
    gcc(&[
        "app.c",
        "-o",
        "app",
        "-L.",
        "-l:libv.so.1",
        "-Wl,-rpath,/opt/vtest",
    ]);
    // Swap in the old library, which has no V_2.
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libv.so.1",
        "-Wl,--version-script=old.map",
        "v1.c",
        "-o",
        "libv.so.1",
    ]);
    let mut view = DirView::new(&rootfs);
    let cache = read_cache(&fs::read(rootfs.join("etc/ld.so.cache")).unwrap())
        .unwrap()
        .entries;
    let problems = Checker::new(&view, &cache, Libc::Glibc).check("opt/vtest/app");
    assert_eq!(
        problems,
        [LoadProblem::MissingVersion {
            binary: "opt/vtest/app".into(),
            library: "opt/vtest/libv.so.1".into(),
            soname: "libv.so.1".into(),
            version: "V_2".into(),
            highest: Some("V_1".into()),
        }]
    );
    let real = ld_so_list(&rootfs, "opt/vtest/app");
    assert_eq!(
        real.versions,
        BTreeSet::from([("V_2".to_owned(), "opt/vtest/app".to_owned())])
    );
    // libc.so.6 without GLIBC_2.34 and later: every program using __libc_start_main@GLIBC_2.34
    // fails, and the message names GLIBC_2.33 as the highest left.
    let libc = "usr/lib/x86_64-linux-gnu/libc.so.6";
    let info = view.elf_mut(libc);
    let before = info.defines.len();
    info.defines
        .retain(|d| !matches!(d.as_str(), "GLIBC_2.34" | "GLIBC_2.35" | "GLIBC_2.36"));
    assert_eq!(info.defines.len(), before - 3);
    let checker = Checker::new(&view, &cache, Libc::Glibc);
    let p = checker.check("usr/bin/ls");
    assert!(
        p.iter().any(
            |p| matches!(p, LoadProblem::MissingVersion { version, highest: Some(h), library, .. }
            if version == "GLIBC_2.34" && h == "GLIBC_2.33" && library == libc)
        ),
        "{p:?}"
    );
    let shown = p
        .iter()
        .find(
            |p| matches!(p, LoadProblem::MissingVersion { version, .. } if version == "GLIBC_2.34"),
        )
        .unwrap()
        .to_string();
    assert_eq!(
        shown,
        "usr/bin/ls needs GLIBC_2.34 (from libc.so.6); usr/lib/x86_64-linux-gnu/libc.so.6 defines up to GLIBC_2.33"
    );
}

/// (1b) A small tree of built libraries, not laid out like Debian: a 32-bit library without
/// libc (flags "ELF"), a development `.so` link, a library without a soname, a directory typed
/// with `=libc6` and listed twice through a symlink; also the compat format, which carries the
/// same entries after an old-format table.
#[test]
fn write_cache_matches_ldconfig_on_a_built_tree() {
    require_tools(&["ldconfig", "gcc"]);
    let tmp = tempfile::Builder::new()
        .prefix("ocipatch-ldso-built.")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("root");
    for d in ["etc", "lib", "usr/lib", "opt/typed", "src"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let src = root.join("src");
    fs::write(src.join("a.c"), "int a(void) { return 1; }\n").unwrap();
    let gcc = |args: &[&str], out: &str| {
        run_ok(
            cmd("gcc")
                .current_dir(&src)
                .args(["-shared", "-fPIC", "-nostdlib"])
                .args(args)
                .arg("a.c")
                .arg("-o")
                .arg(root.join(out)),
        );
    };
    gcc(&["-Wl,-soname,liba.so.2"], "lib/liba.so.2.0.1");
    std::os::unix::fs::symlink("liba.so.2.0.1", root.join("lib/liba.so.2")).unwrap();
    std::os::unix::fs::symlink("liba.so.2.0.1", root.join("lib/liba.so")).unwrap();
    gcc(&[], "lib/libnosoname.so.7");
    gcc(&["-m32", "-Wl,-soname,lib32.so.1"], "usr/lib/lib32.so.1");
    gcc(&["-Wl,-soname,libt.so.3"], "opt/typed/libt.so.3");
    std::os::unix::fs::symlink("typed", root.join("opt/again")).unwrap();
    fs::write(
        root.join("etc/ld.so.conf"),
        "/usr/lib\n/opt/typed=libc6\n/opt/again/ # the same directory\n",
    )
    .unwrap();
    let view = DirView::new(&root);
    let entries = cache_entries(&view);
    assert!(
        entries
            .iter()
            .any(|e| e.key == "lib32.so.1" && e.flags == 1),
        "{entries:?}"
    );
    assert!(entries.iter().any(|e| e.key == "liba.so"), "{entries:?}");
    run_ok(cmd("ldconfig").arg("-r").arg(&root).arg("-X"));
    let theirs = fs::read(root.join("etc/ld.so.cache")).unwrap();
    let ours = write_cache(
        &entries,
        &CacheOptions {
            generator: Some(ldconfig_generator()),
            big_endian: false,
        },
    );
    let ours_path = root.join("etc/ours.cache");
    fs::write(&ours_path, &ours).unwrap();
    assert_eq!(listing(&ours_path), listing(&root.join("etc/ld.so.cache")));
    assert!(ours == theirs, "same listing, different bytes");
    run_ok(cmd("ldconfig").arg("-r").arg(&root).arg("-X").args([
        "-c",
        "compat",
        "-C",
        "/etc/compat.cache",
    ]));
    let compat = read_cache(&fs::read(root.join("etc/compat.cache")).unwrap()).unwrap();
    assert_eq!(compat.entries, entries);
}

/// (2b) The search rules, built into the tree and judged by the real loader: an inherited
/// `$ORIGIN` RPATH, a RUNPATH that is not inherited, NODEFLIB, a 32-bit candidate skipped
/// earlier in the path, `$LIB` (not `$PLATFORM`: glibc 2.36 makes it depend on the CPU), and a
/// DT_NEEDED with a slash.
#[test]
fn search_rules_agree_with_ld_so() {
    let (_guard, rootfs) = unpack("base-v1");
    let o = rootfs.join("opt/o");
    for d in ["src", "bin", "lib", "lib32", "lib/x86_64-linux-gnu"] {
        fs::create_dir_all(o.join(d)).unwrap();
    }
    let src = o.join("src");
    let w = |name: &str, text: &str| fs::write(src.join(name), text).unwrap();
    w("o1.c", "int o2(void);\nint o1(void) { return o2(); }\n");
    w("o2.c", "int o2(void) { return 2; }\n");
    w("o3.c", "int o3(void) { return 3; }\n");
    w(
        "main1.c",
        "int o1(void);\nint main(void) { return o1(); }\n",
    );
    w(
        "main2.c",
        "int o2(void);\nint main(void) { return o2(); }\n",
    );
    w(
        "main3.c",
        "int o3(void);\nint main(void) { return o3(); }\n",
    );
    w(
        "mainz.c",
        "int zlibVersion(void);\nint main(void) { return !zlibVersion(); }\n",
    );
    let gcc = |args: &[&str]| {
        run_ok(cmd("gcc").current_dir(&src).args(args));
    };
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libo2.so",
        "o2.c",
        "-o",
        "../lib/libo2.so",
    ]);
    gcc(&[
        "-m32",
        "-shared",
        "-fPIC",
        "-nostdlib",
        "-Wl,-soname,libo2.so",
        "o2.c",
        "-o",
        "../lib32/libo2.so",
    ]);
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libo1.so",
        "o1.c",
        "-L../lib",
        "-l:libo2.so",
        "-o",
        "../lib/libo1.so",
    ]);
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libo3.so",
        "o3.c",
        "-o",
        "../lib/x86_64-linux-gnu/libo3.so",
    ]);
    // The linker must not record the build-time paths; -rpath-link finds libo2 at link time.
    let link = "-Wl,-rpath-link,../lib";
    gcc(&[
        "main1.c",
        "-o",
        "../bin/rp",
        "-L../lib",
        "-l:libo1.so",
        link,
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);
    gcc(&[
        "main1.c",
        "-o",
        "../bin/ru",
        "-L../lib",
        "-l:libo1.so",
        link,
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);
    gcc(&[
        "main2.c",
        "-o",
        "../bin/wc",
        "-L../lib",
        "-l:libo2.so",
        "-Wl,--disable-new-dtags,-rpath,/opt/o/lib32:/opt/o/lib",
    ]);
    gcc(&[
        "main3.c",
        "-o",
        "../bin/tok",
        "-L../lib/x86_64-linux-gnu",
        "-l:libo3.so",
        "-Wl,--disable-new-dtags,-rpath,/opt/o/$LIB",
    ]);
    gcc(&[
        "mainz.c",
        "-o",
        "../bin/nd",
        "-Wl,-z,nodefaultlib",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
    ]);
    // A soname with a slash becomes a DT_NEEDED path.
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,/opt/o/lib/libo2s.so",
        "o2.c",
        "-o",
        "../lib/libo2s.so",
    ]);
    gcc(&["main2.c", "-o", "../bin/slash", "../lib/libo2s.so"]);
    fs::remove_dir_all(&src).unwrap();
    let view = DirView::new(&rootfs);
    assert!(view.elf("opt/o/bin/nd").is_some_and(|i| i.nodeflib));
    assert!(view
        .elf("opt/o/bin/slash")
        .is_some_and(|i| i.needed.contains(&"/opt/o/lib/libo2s.so".to_owned())));
    let cache = read_cache(&fs::read(rootfs.join("etc/ld.so.cache")).unwrap())
        .unwrap()
        .entries;
    let checker = Checker::new(&view, &cache, Libc::Glibc);
    let unresolved = |bin: &str| -> Vec<String> {
        checker
            .check(bin)
            .into_iter()
            .filter_map(|p| match p {
                LoadProblem::UnresolvedLibrary { soname, .. } => Some(soname),
                _ => None,
            })
            .collect()
    };
    assert_eq!(unresolved("opt/o/bin/rp"), Vec::<String>::new());
    assert_eq!(unresolved("opt/o/bin/ru"), ["libo2.so"]);
    assert_eq!(unresolved("opt/o/bin/nd"), ["libz.so.1", "libc.so.6"]);
    assert_eq!(unresolved("opt/o/bin/wc"), Vec::<String>::new());
    assert_eq!(unresolved("opt/o/bin/tok"), Vec::<String>::new());
    assert_eq!(unresolved("opt/o/bin/slash"), Vec::<String>::new());
    // And the real loader agrees on these and on every other file of the tree.
    compare_with_ld_so(&rootfs, &view, &cache);
}

/// `read_cache` on this machine's own `/etc/ld.so.cache` lists what `ldconfig -p` lists, in the
/// same order.
#[test]
fn read_cache_lists_what_ldconfig_p_lists() {
    require_tools(&["ldconfig"]);
    let cache = read_cache(&fs::read("/etc/ld.so.cache").unwrap()).unwrap();
    let theirs: Vec<(String, String)> = listing(Path::new("/etc/ld.so.cache"))
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (key, rest) = l.split_once(" (")?;
            let (_, path) = rest.split_once(" => ")?;
            Some((key.to_owned(), path.to_owned()))
        })
        .collect();
    let ours: Vec<(String, String)> = cache
        .entries
        .iter()
        .map(|e| (e.key.clone(), e.path.clone()))
        .collect();
    assert!(ours.len() > 10);
    assert_eq!(ours, theirs);
}
