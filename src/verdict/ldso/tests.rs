//! The loader's rules on small in-memory trees: search order, `$ORIGIN`, RPATH against
//! RUNPATH, NODEFLIB, wrong-class candidates, the cache, symbol versions, musl, ld.so.conf and
//! the cache file format.

use super::cache::libcmp;
use super::conf::{conf_dirs, fnmatch};
use super::testview::{ElfBuilder, MemView};
use super::*;

const GNU: &str = "usr/lib/x86_64-linux-gnu";

fn problems(v: &MemView, path: &str) -> Vec<LoadProblem> {
    let cache = cache_entries(v);
    check_binary(v, path, &cache, Libc::Glibc)
}

fn no_cache(v: &MemView, path: &str) -> Vec<LoadProblem> {
    check_binary(v, path, &[], Libc::Glibc)
}

#[test]
fn a_plain_binary_loads_and_its_order_is_breadth_first() {
    let mut v = MemView::debian();
    v.put_elf(
        "usr/bin/app",
        ElfBuilder::exe(&["libfoo.so.1", "libc.so.6"])
            .need("libc.so.6", &["GLIBC_2.34"])
            .build(),
    )
    .put_elf(
        &format!("{GNU}/libfoo.so.1.2"),
        ElfBuilder::lib("libfoo.so.1")
            .needed(&["libbar.so.3", "libc.so.6"])
            .build(),
    )
    .link(&format!("{GNU}/libfoo.so.1"), "libfoo.so.1.2")
    .put_elf(
        &format!("{GNU}/libbar.so.3"),
        ElfBuilder::lib("libbar.so.3")
            .needed(&["libc.so.6"])
            .build(),
    );
    assert_eq!(problems(&v, "usr/bin/app"), []);
    assert_eq!(no_cache(&v, "usr/bin/app"), []);
    let cache = cache_entries(&v);
    let order: Vec<String> = Checker::new(&v, &cache, Libc::Glibc)
        .load_order("usr/bin/app")
        .into_iter()
        .map(|(opened, _)| opened)
        .collect();
    assert_eq!(
        order,
        [
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libfoo.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/libbar.so.3",
        ]
    );
}

#[test]
fn a_missing_library_names_every_place_searched() {
    let mut v = MemView::debian();
    v.put_elf(
        "usr/bin/gnutls-cli",
        ElfBuilder::exe(&["libgnutls.so.30", "libc.so.6"])
            .runpath(&["/opt/gnutls/lib"])
            .build(),
    );
    let p = problems(&v, "usr/bin/gnutls-cli");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].to_string(),
        "usr/bin/gnutls-cli needs libgnutls.so.30: not found in (RUNPATH /opt/gnutls/lib, \
         ld.so.cache, /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib)"
    );
    let json = serde_json::to_value(&p[0]).unwrap();
    assert_eq!(json["kind"], "unresolved-library");
    // The interpreter itself missing: execve fails, nothing else matters.
    v.nodes.remove(&format!("{GNU}/ld-linux-x86-64.so.2"));
    let p = problems(&v, "usr/bin/gnutls-cli");
    assert_eq!(
        p,
        [LoadProblem::MissingInterpreter {
            binary: "usr/bin/gnutls-cli".into(),
            interp: "/lib64/ld-linux-x86-64.so.2".into()
        }]
    );
}

#[test]
fn origin_rpath_is_inherited_and_runpath_is_not() {
    let mut v = MemView::debian();
    v.put_elf(
        "opt/app/bin/app",
        ElfBuilder::exe(&["libx.so.1"])
            .rpath(&["$ORIGIN/../lib"])
            .build(),
    )
    .put_elf(
        "opt/app/lib/libx.so.1",
        ElfBuilder::lib("libx.so.1").needed(&["liby.so.1"]).build(),
    )
    .put_elf(
        "opt/app/lib/liby.so.1",
        ElfBuilder::lib("liby.so.1").build(),
    );
    assert_eq!(no_cache(&v, "opt/app/bin/app"), []);
    // ${ORIGIN} is the same token.
    v.put_elf(
        "opt/app/bin/app2",
        ElfBuilder::exe(&["libx.so.1"])
            .rpath(&["${ORIGIN}/../lib"])
            .build(),
    );
    assert_eq!(no_cache(&v, "opt/app/bin/app2"), []);
    // With RUNPATH on the executable, libx's own dependency is not searched there.
    v.put_elf(
        "opt/app/bin/app3",
        ElfBuilder::exe(&["libx.so.1"])
            .runpath(&["$ORIGIN/../lib"])
            .build(),
    );
    let p = no_cache(&v, "opt/app/bin/app3");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        matches!(&p[0], LoadProblem::UnresolvedLibrary { binary, soname, .. }
        if binary == "opt/app/lib/libx.so.1" && soname == "liby.so.1")
    );
    // An RPATH next to a RUNPATH on the same object is ignored.
    v.put_elf(
        "opt/app/bin/app4",
        ElfBuilder::exe(&["libx.so.1"])
            .rpath(&["$ORIGIN/../lib"])
            .runpath(&["/nowhere"])
            .build(),
    );
    let p = no_cache(&v, "opt/app/bin/app4");
    assert!(
        matches!(&p[0], LoadProblem::UnresolvedLibrary { soname, searched, .. }
        if soname == "libx.so.1" && searched[0] == "RUNPATH /nowhere"),
        "{p:?}"
    );
    // A library whose RUNPATH is $ORIGIN finds its sibling: origin is its directory.
    v.put_elf(
        "opt/app/bin/app5",
        ElfBuilder::exe(&["libz9.so"])
            .runpath(&["/opt/app/lib2"])
            .build(),
    )
    .put_elf(
        "opt/app/lib2/libz9.so",
        ElfBuilder::lib("libz9.so")
            .needed(&["libw.so"])
            .runpath(&["$ORIGIN"])
            .build(),
    )
    .put_elf("opt/app/lib2/libw.so", ElfBuilder::lib("libw.so").build());
    assert_eq!(no_cache(&v, "opt/app/bin/app5"), []);
}

#[test]
fn lib_and_platform_tokens_expand_for_the_platform() {
    let mut v = MemView::debian();
    v.put_elf(
        "usr/bin/tok",
        ElfBuilder::exe(&["libt.so"])
            .rpath(&["/opt/$LIB/$PLATFORM"])
            .build(),
    )
    .put_elf(
        "opt/lib/x86_64-linux-gnu/x86_64/libt.so",
        ElfBuilder::lib("libt.so").build(),
    );
    assert_eq!(no_cache(&v, "usr/bin/tok"), []);
    // A name with a slash is a path, with tokens expanded.
    v.put_elf(
        "usr/bin/direct",
        ElfBuilder::exe(&["$ORIGIN/../../opt/lib/x86_64-linux-gnu/x86_64/libt.so"]).build(),
    );
    assert_eq!(no_cache(&v, "usr/bin/direct"), []);
}

#[test]
fn nodeflib_skips_the_cache_and_the_default_directories() {
    let mut v = MemView::debian();
    v.put_elf(
        &format!("{GNU}/libq.so.1"),
        ElfBuilder::lib("libq.so.1").build(),
    )
    .put_elf(
        "usr/bin/nd",
        ElfBuilder::exe(&["libq.so.1"]).nodeflib().build(),
    );
    let p = problems(&v, "usr/bin/nd");
    assert_eq!(
        p,
        [LoadProblem::UnresolvedLibrary {
            binary: "usr/bin/nd".into(),
            soname: "libq.so.1".into(),
            searched: vec![]
        }]
    );
    v.put_elf(
        "usr/bin/nd2",
        ElfBuilder::exe(&["libq.so.1"])
            .nodeflib()
            .rpath(&["/usr/lib/x86_64-linux-gnu"])
            .build(),
    );
    assert_eq!(problems(&v, "usr/bin/nd2"), []);
}

#[test]
fn wrong_class_candidates_are_skipped_and_non_elf_ones_stop_the_search() {
    let mut v = MemView::debian();
    v.put_elf(
        "opt/lib32/libk.so.1",
        ElfBuilder::lib("libk.so.1").class32().build(),
    )
    .put_elf(
        &format!("{GNU}/libk.so.1"),
        ElfBuilder::lib("libk.so.1").build(),
    )
    .put_elf(
        "usr/bin/k",
        ElfBuilder::exe(&["libk.so.1"])
            .rpath(&["/opt/lib32"])
            .build(),
    );
    assert_eq!(no_cache(&v, "usr/bin/k"), []);
    let cache = cache_entries(&v);
    let order = Checker::new(&v, &cache, Libc::Glibc).load_order("usr/bin/k");
    assert_eq!(order[1].1, format!("{GNU}/libk.so.1"));
    // Only the 32-bit one: not found.
    v.nodes.remove(&format!("{GNU}/libk.so.1"));
    assert!(matches!(
        &no_cache(&v, "usr/bin/k")[..],
        [LoadProblem::UnresolvedLibrary { .. }]
    ));
    // A text file where the library should be: ld.so stops with "invalid ELF header".
    v.put_text("opt/lib32/libk.so.1", "not a library");
    assert!(
        matches!(&no_cache(&v, "usr/bin/k")[..], [LoadProblem::InvalidLibrary { path, .. }]
        if path == "opt/lib32/libk.so.1")
    );
}

#[test]
fn the_cache_is_searched_before_the_default_directories() {
    let mut v = MemView::debian();
    v.put_elf(
        "opt/cached/libc9.so.2",
        ElfBuilder::lib("libc9.so.2").build(),
    )
    .put_elf("usr/bin/c", ElfBuilder::exe(&["libc9.so.2"]).build());
    assert!(!no_cache(&v, "usr/bin/c").is_empty());
    let entry = |flags| CacheEntry {
        key: "libc9.so.2".into(),
        flags,
        path: "/opt/cached/libc9.so.2".into(),
        hwcap: 0,
    };
    let cache = [entry(0x0303)];
    assert_eq!(check_binary(&v, "usr/bin/c", &cache, Libc::Glibc), []);
    // Entries for another architecture are not used.
    let cache = [entry(0x0a03)];
    assert!(!check_binary(&v, "usr/bin/c", &cache, Libc::Glibc).is_empty());
    // A stale entry (file gone) falls through to the default directories.
    v.nodes.remove("opt/cached/libc9.so.2");
    v.put_elf(
        &format!("{GNU}/libc9.so.2"),
        ElfBuilder::lib("libc9.so.2").build(),
    );
    let cache = [entry(0x0303)];
    assert_eq!(check_binary(&v, "usr/bin/c", &cache, Libc::Glibc), []);
}

#[test]
fn missing_versions_name_the_highest_one_defined() {
    let mut v = MemView::debian();
    v.put_elf(
        "usr/local/bin/tool",
        ElfBuilder::exe(&["libc.so.6"])
            .need("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.38", "~GLIBC_2.99"])
            .build(),
    );
    let p = problems(&v, "usr/local/bin/tool");
    assert_eq!(
        p,
        [LoadProblem::MissingVersion {
            binary: "usr/local/bin/tool".into(),
            library: format!("{GNU}/libc.so.6"),
            soname: "libc.so.6".into(),
            version: "GLIBC_2.38".into(),
            highest: Some("GLIBC_2.36".into()),
        }]
    );
    assert_eq!(
        p[0].to_string(),
        "usr/local/bin/tool needs GLIBC_2.38 (from libc.so.6); \
         usr/lib/x86_64-linux-gnu/libc.so.6 defines up to GLIBC_2.36"
    );
    // A version of another family: no highest.
    v.put_elf(
        "usr/bin/cxx",
        ElfBuilder::exe(&["libc.so.6"])
            .need("libc.so.6", &["GLIBCXX_3.4.30"])
            .build(),
    );
    let p = problems(&v, "usr/bin/cxx");
    assert!(matches!(
        &p[0],
        LoadProblem::MissingVersion { highest: None, .. }
    ));
    // Numeric comparison: 2.10 is above 2.9.
    v.put_elf(
        &format!("{GNU}/libn.so.1"),
        ElfBuilder::lib("libn.so.1")
            .defines(&["N_2.9", "N_2.10", "N_2.2"])
            .build(),
    )
    .put_elf(
        "usr/bin/n",
        ElfBuilder::exe(&["libn.so.1"])
            .need("libn.so.1", &["N_3.0"])
            .build(),
    );
    let p = problems(&v, "usr/bin/n");
    assert!(matches!(&p[0], LoadProblem::MissingVersion { highest: Some(h), .. } if h == "N_2.10"));
    // A library without version definitions satisfies every need.
    v.put_elf(
        &format!("{GNU}/libnv.so.1"),
        ElfBuilder::lib("libnv.so.1").build(),
    )
    .put_elf(
        "usr/bin/nv",
        ElfBuilder::exe(&["libnv.so.1"])
            .need("libnv.so.1", &["NV_1"])
            .build(),
    );
    assert_eq!(problems(&v, "usr/bin/nv"), []);
}

#[test]
fn musl_searches_its_path_file_and_knows_its_own_names() {
    let mut v = MemView::new();
    let musl = |b: ElfBuilder| b.interp("/lib/ld-musl-x86_64.so.1").build();
    v.put_elf(
        "lib/ld-musl-x86_64.so.1",
        ElfBuilder::lib("libc.musl-x86_64.so.1").build(),
    )
    .link("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")
    .put_elf("usr/lib/libz.so.1", ElfBuilder::lib("libz.so.1").build())
    .put_elf(
        "usr/bin/a",
        musl(ElfBuilder::bare().needed(&["libc.musl-x86_64.so.1", "libz.so.1", "libc.so"])),
    );
    assert_eq!(check_binary(&v, "usr/bin/a", &[], Libc::Musl), []);
    // Detected from PT_INTERP even when the caller says glibc.
    assert_eq!(check_binary(&v, "usr/bin/a", &[], Libc::Glibc), []);
    v.put_elf("opt/l/libo.so", ElfBuilder::lib("libo.so").build())
        .put_elf("usr/bin/b", musl(ElfBuilder::bare().needed(&["libo.so"])));
    let p = check_binary(&v, "usr/bin/b", &[], Libc::Musl);
    assert!(
        matches!(&p[..], [LoadProblem::UnresolvedLibrary { searched, .. }]
        if searched == &["/lib", "/usr/local/lib", "/usr/lib"]),
        "{p:?}"
    );
    v.put_text("etc/ld-musl-x86_64.path", "/opt/l\n/lib:/usr/lib\n");
    assert_eq!(check_binary(&v, "usr/bin/b", &[], Libc::Musl), []);
}

#[test]
fn ld_so_conf_includes_comments_types_and_loops() {
    let mut v = MemView::new();
    v.put_text(
        "etc/ld.so.conf",
        "  # comment\n/opt/a/  # trailing comment\ninclude conf.d/*.conf other.conf\nhwcap 1 x\n/opt/typed=libc6\n\n",
    )
    .put_text("etc/conf.d/b.conf", "/opt/b\ninclude /etc/ld.so.conf\n")
    .put_text("etc/conf.d/a.conf", "/opt/c\t \n")
    .put_text("etc/conf.d/.hidden.conf", "/opt/hidden\n")
    .put_text("etc/other.conf", "/opt/other");
    let dirs: Vec<(String, Option<i32>)> = conf_dirs(&v)
        .into_iter()
        .map(|d| (d.path, d.flag))
        .collect();
    // The self-include repeats the list a bounded number of times; the first pass is in order.
    assert_eq!(
        &dirs[..4],
        [
            ("/opt/a".to_owned(), None),
            ("/opt/c".to_owned(), None),
            ("/opt/b".to_owned(), None),
            ("/opt/a".to_owned(), None),
        ]
    );
    assert!(dirs.len() < 200, "{}", dirs.len());
    assert!(dirs.contains(&("/opt/typed".to_owned(), Some(3))));
    assert!(dirs.contains(&("/opt/other".to_owned(), None)));
    assert!(!dirs.iter().any(|d| d.0 == "/opt/hidden"));
    assert!(fnmatch(b"*.conf", b"x.conf"));
    assert!(!fnmatch(b"*.conf", b".x.conf"));
    assert!(fnmatch(b"[a-c]?.so", b"bx.so"));
    assert!(!fnmatch(b"[!a-c]*", b"b"));
}

#[test]
fn cache_entries_follow_ldconfig_rules() {
    let mut v = MemView::debian();
    v.put_elf(
        &format!("{GNU}/libz.so.1.2.13"),
        ElfBuilder::lib("libz.so.1").build(),
    )
    .link(&format!("{GNU}/libz.so.1"), "libz.so.1.2.13")
    .link(&format!("{GNU}/libz.so"), "libz.so.1.2.13")
    .put_elf(
        &format!("{GNU}/libnosoname.so.4"),
        ElfBuilder::bare().build(),
    )
    .link(&format!("{GNU}/libdangling.so.1"), "nothing")
    .put_text(
        &format!("{GNU}/libc.so"),
        "GROUP ( /lib/x86_64-linux-gnu/libc.so.6 )",
    )
    .put_elf(
        &format!("{GNU}/notalib.so.1"),
        ElfBuilder::lib("notalib.so.1").build(),
    )
    .put_elf(&format!("{GNU}/libexe.so.1"), {
        let mut b = ElfBuilder::lib("libexe.so.1");
        b.0.kind = crate::verdict::elf::ElfKind::Executable;
        b.build()
    })
    .put_elf(
        "usr/local/lib/libz.so.1",
        ElfBuilder::lib("libz.so.1").build(),
    )
    .put_elf(
        "usr/lib/i386-linux-gnu/libc.so.6",
        ElfBuilder::lib("libc.so.6")
            .class32()
            .needed(&["ld-linux.so.2"])
            .build(),
    );
    let entries = cache_entries(&v);
    let listed: Vec<(&str, i32, &str)> = entries
        .iter()
        .map(|e| (e.key.as_str(), e.flags, e.path.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("libz.so.1", 0x0303, "/usr/local/lib/libz.so.1"),
            ("libz.so.1", 0x0303, "/lib/x86_64-linux-gnu/libz.so.1"),
            ("libz.so", 0x0303, "/lib/x86_64-linux-gnu/libz.so"),
            (
                "libnosoname.so.4",
                0x0303,
                "/lib/x86_64-linux-gnu/libnosoname.so.4"
            ),
            ("libc.so.6", 0x0303, "/lib/x86_64-linux-gnu/libc.so.6"),
            (
                "ld-linux-x86-64.so.2",
                0x0303,
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
            ),
        ]
    );
    // A write/read round trip keeps every entry and the generator.
    let opts = CacheOptions {
        generator: Some("ldconfig (test) stable release version 2.36".into()),
        big_endian: false,
    };
    let bytes = write_cache(&entries, &opts);
    let back = read_cache(&bytes).unwrap();
    assert_eq!(back.entries, entries);
    assert_eq!(back.generator, opts.generator);
    let be = write_cache(
        &entries,
        &CacheOptions {
            big_endian: true,
            ..opts.clone()
        },
    );
    assert_eq!(read_cache(&be).unwrap().entries, entries);
}

#[test]
fn libcmp_orders_numbers_numerically() {
    use std::cmp::Ordering::*;
    assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Greater);
    assert_eq!(libcmp("libfoo.so.1", "libfoo.so.1"), Equal);
    assert_eq!(libcmp("libfoo.so.01", "libfoo.so.1"), Equal);
    assert_eq!(libcmp("libfoo.so", "libfoo.so.1"), Less);
    assert_eq!(libcmp("liba1", "libab"), Greater);
    assert_eq!(libcmp("libab", "liba1"), Less);
}

#[test]
fn read_cache_survives_hostile_bytes() {
    let mut v = MemView::debian();
    v.put_elf(
        &format!("{GNU}/libz.so.1"),
        ElfBuilder::lib("libz.so.1").build(),
    );
    let bytes = write_cache(
        &cache_entries(&v),
        &CacheOptions {
            generator: Some("gen".into()),
            big_endian: false,
        },
    );
    for cut in 0..bytes.len() {
        let _ = read_cache(&bytes[..cut]);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..5000 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % b.len() as u64) as usize;
            b[at] = (x >> 32) as u8;
        }
        let _ = read_cache(&b);
    }
    let mut huge = bytes.clone();
    huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(read_cache(&huge).is_err());
    assert!(read_cache(b"glibc-ld.so.cache1.1").is_err());
    assert!(read_cache(b"").is_err());
}

#[test]
fn ld_library_path_comes_between_rpath_and_runpath() {
    let mut v = MemView::debian();
    v.put_elf("opt/env/libe.so.1", ElfBuilder::lib("libe.so.1").build())
        .put_elf("opt/rp/libe.so.1", ElfBuilder::lib("libe.so.1").build())
        .put_elf("usr/bin/e", ElfBuilder::exe(&["libe.so.1"]).build())
        .put_elf(
            "usr/bin/r",
            ElfBuilder::exe(&["libe.so.1"]).rpath(&["/opt/rp"]).build(),
        )
        .put_elf(
            "usr/bin/u",
            ElfBuilder::exe(&["libe.so.1"])
                .runpath(&["/opt/rp"])
                .build(),
        );
    assert!(!no_cache(&v, "usr/bin/e").is_empty());
    let c = Checker::new(&v, &[], Libc::Glibc).with_library_path("/opt/env::");
    assert_eq!(c.check("usr/bin/e"), []);
    let first = |bin: &str| c.load_order(bin)[1].1.clone();
    assert_eq!(first("usr/bin/e"), "opt/env/libe.so.1");
    assert_eq!(first("usr/bin/r"), "opt/rp/libe.so.1"); // RPATH before LD_LIBRARY_PATH
    assert_eq!(first("usr/bin/u"), "opt/env/libe.so.1"); // LD_LIBRARY_PATH before RUNPATH
}

/// One checker, a glibc and a musl binary asking for the same name: the memo keeps them apart.
#[test]
fn the_memo_keeps_glibc_and_musl_searches_apart() {
    let mut v = MemView::debian();
    v.put_elf(
        "usr/lib/ld-musl-x86_64.so.1",
        ElfBuilder::lib("libc.musl-x86_64.so.1").build(),
    )
    .put_elf(
        "usr/lib/libm2.so.1",
        ElfBuilder::lib("libm2.so.1").class32().build(),
    )
    .put_elf("usr/bin/g", ElfBuilder::exe(&["libm2.so.1"]).build())
    .put_elf(
        "usr/bin/m",
        ElfBuilder::bare()
            .needed(&["libm2.so.1"])
            .interp("/lib/ld-musl-x86_64.so.1")
            .build(),
    );
    let c = Checker::new(&v, &[], Libc::Glibc);
    // glibc skips the 32-bit file; musl takes the first file it finds.
    assert!(!c.check("usr/bin/g").is_empty());
    assert_eq!(c.check("usr/bin/m"), []);
    assert!(!c.check("usr/bin/g").is_empty());
}

#[test]
fn platforms_follow_the_image_architecture() {
    let with_machine = |machine: u16, class32: bool| {
        let mut b = ElfBuilder::lib("libc.so.6");
        if class32 {
            b = b.class32();
        }
        b.0.machine = machine;
        b
    };
    // aarch64, Debian layout.
    let mut v = MemView::new();
    v.link("lib", "usr/lib")
        .put_elf(
            "usr/lib/aarch64-linux-gnu/libc.so.6",
            with_machine(183, false).build(),
        )
        .put_elf("usr/lib/aarch64-linux-gnu/libx.so.1", {
            let mut b = ElfBuilder::lib("libx.so.1");
            b.0.machine = 183;
            b.build()
        });
    let p = Platform::detect(&v).unwrap();
    assert_eq!(p.triplet.as_deref(), Some("aarch64-linux-gnu"));
    assert_eq!(p.default_dirs[0], "/lib/aarch64-linux-gnu");
    assert_eq!(p.interp.as_deref(), Some("/lib/ld-linux-aarch64.so.1"));
    let e = cache_entries(&v);
    assert!(e.iter().all(|e| e.flags == 0x0a03), "{e:?}");
    assert!(p.accepts_cache_flags(0x0a03) && !p.accepts_cache_flags(0x0303));
    // i386, Debian layout: plain ELF libraries are libc6 when they need libc.so.6.
    let mut v = MemView::new();
    v.put_elf(
        "usr/lib/i386-linux-gnu/libc.so.6",
        with_machine(3, true).build(),
    )
    .put_elf("usr/lib/i386-linux-gnu/liby.so.2", {
        let mut b = ElfBuilder::lib("liby.so.2")
            .class32()
            .needed(&["libc.so.6"]);
        b.0.machine = 3;
        b.build()
    })
    .put_elf(
        "usr/lib/i386-linux-gnu/libplain.so.1",
        ElfBuilder::lib("libplain.so.1").class32().build(),
    );
    let p = Platform::detect(&v).unwrap();
    assert_eq!(p.dst_lib, "lib/i386-linux-gnu");
    let flags: Vec<(String, i32)> = cache_entries(&v)
        .into_iter()
        .map(|e| (e.key, e.flags))
        .collect();
    assert!(flags.contains(&("liby.so.2".to_owned(), 3)), "{flags:?}");
    assert!(
        flags.contains(&("libplain.so.1".to_owned(), 1)),
        "{flags:?}"
    );
    assert!(p.accepts_cache_flags(1) && p.accepts_cache_flags(3));
    // Another architecture, upstream layout (riscv64 in /lib64): the generic rules.
    let mut v = MemView::new();
    v.put_elf("usr/lib64/libc.so.6", with_machine(243, false).build())
        .link("lib64", "usr/lib64");
    let p = Platform::detect(&v).unwrap();
    assert_eq!(p.triplet, None);
    assert_eq!(p.default_dirs, ["/lib64", "/usr/lib64"]);
    assert_eq!(p.dst_lib, "lib64");
    let e = cache_entries(&v);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].flags, e[0].path.as_str()), (1, "/lib64/libc.so.6"));
}
