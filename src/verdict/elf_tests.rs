//! The ELF scanner against `readelf` on real binaries and libraries, fed in random chunks, and
//! on truncated, bit-flipped and hand-made hostile files.
#![allow(clippy::disallowed_macros)] // a test says why it skipped

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Feeds `data` in chunks of random sizes (mostly small, sometimes large).
fn scan_chunked(data: &[u8], rng: &mut Rng) -> Result<Option<ElfInfo>, ElfError> {
    let mut s = ElfScanner::new(data.len() as u64);
    let mut rest = data;
    while !rest.is_empty() {
        let max = match rng.below(4) {
            0 => 7,
            1 => 4096,
            2 => 65536,
            _ => 1 << 20,
        };
        let n = (1 + rng.below(max) as usize).min(rest.len());
        s.feed(&rest[..n]);
        rest = &rest[n..];
    }
    s.finish()
}

fn scan_whole(data: &[u8]) -> Result<Option<ElfInfo>, ElfError> {
    let mut s = ElfScanner::new(data.len() as u64);
    s.feed(data);
    s.finish()
}

/// What `readelf -h -l -d -V --wide` says about a file, in the scanner's terms.
#[derive(Debug, Default, PartialEq)]
struct Readelf {
    class: Option<ElfClass>,
    big_endian: bool,
    kind: Option<ElfKind>,
    interp: Option<String>,
    soname: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    nodeflib: bool,
    defines: Vec<String>,
    needs: Vec<VersionNeed>,
}

fn bracketed(line: &str) -> String {
    let start = line.find('[').map_or(0, |i| i + 1);
    let end = line.rfind(']').unwrap_or(line.len());
    line[start..end].to_owned()
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(name)? + name.len();
    line[at..].split_whitespace().next()
}

fn readelf(path: &Path) -> Readelf {
    let out = Command::new("readelf")
        .args(["-h", "-l", "-d", "-V", "--wide"])
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("readelf (binutils) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut r = Readelf::default();
    #[derive(PartialEq)]
    enum Sect {
        Other,
        Verdef,
        Verneed,
    }
    let mut sect = Sect::Other;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("Class:") {
            r.class = Some(if t.contains("ELF64") {
                ElfClass::Elf64
            } else {
                ElfClass::Elf32
            });
        } else if t.starts_with("Data:") {
            r.big_endian = t.contains("big endian");
        } else if t.starts_with("Type:") && r.kind.is_none() {
            r.kind = Some(match field(t, "Type:") {
                Some("EXEC") => ElfKind::Executable,
                Some("DYN") => ElfKind::SharedObject,
                _ => ElfKind::Other,
            });
        } else if t.starts_with("[Requesting program interpreter:") {
            let v = t
                .trim_start_matches("[Requesting program interpreter:")
                .trim();
            r.interp = Some(v.trim_end_matches(']').to_owned());
        } else if t.contains("(NEEDED)") {
            r.needed.push(bracketed(t));
        } else if t.contains("(SONAME)") {
            r.soname = Some(bracketed(t));
        } else if t.contains("(RPATH)") {
            r.rpath = bracketed(t).split(':').map(str::to_owned).collect();
        } else if t.contains("(RUNPATH)") {
            r.runpath = bracketed(t).split(':').map(str::to_owned).collect();
        } else if t.contains("(FLAGS_1)") {
            r.nodeflib = t.split_whitespace().any(|w| w == "NODEFLIB");
        } else if t.starts_with("Version definition section") {
            sect = Sect::Verdef;
        } else if t.starts_with("Version needs section") {
            sect = Sect::Verneed;
        } else if t.starts_with("Version symbols section") || t.is_empty() {
            sect = Sect::Other;
        } else if sect == Sect::Verdef && t.contains("Rev:") {
            if field(t, "Flags:") != Some("BASE") {
                r.defines
                    .push(field(t, "Name:").unwrap_or_default().to_owned());
            }
        } else if sect == Sect::Verneed && t.contains("File:") {
            r.needs.push(VersionNeed {
                file: field(t, "File:").unwrap_or_default().to_owned(),
                versions: Vec::new(),
            });
        } else if sect == Sect::Verneed && t.contains("Name:") {
            let flags = t.split("Flags:").nth(1).unwrap_or_default();
            let weak = flags.split_whitespace().any(|w| w == "WEAK");
            if let Some(n) = r.needs.last_mut() {
                n.versions.push(NeededVersion {
                    name: field(t, "Name:").unwrap_or_default().to_owned(),
                    weak,
                });
            }
        }
    }
    r
}

/// Asserts that the summary of `path` (fed in random chunks) agrees with readelf and with the
/// raw header bytes. Returns the summary.
fn check_against_readelf(path: &Path, seed: u64) -> ElfInfo {
    let data = std::fs::read(path).unwrap();
    let mut rng = Rng(seed | 1);
    let info = scan_chunked(&data, &mut rng)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .unwrap_or_else(|| panic!("{}: not seen as ELF", path.display()));
    assert_eq!(
        scan_whole(&data).unwrap().as_ref(),
        Some(&info),
        "{}: chunking changed the summary",
        path.display()
    );
    let r = readelf(path);
    let p = path.display();
    assert_eq!(Some(info.class), r.class, "{p}: class");
    assert_eq!(info.big_endian, r.big_endian, "{p}: endianness");
    assert_eq!(Some(info.kind), r.kind, "{p}: type");
    assert_eq!(info.interp, r.interp, "{p}: interpreter");
    assert_eq!(info.soname, r.soname, "{p}: soname");
    assert_eq!(info.needed, r.needed, "{p}: needed");
    assert_eq!(info.rpath, r.rpath, "{p}: rpath");
    assert_eq!(info.runpath, r.runpath, "{p}: runpath");
    assert_eq!(info.nodeflib, r.nodeflib, "{p}: nodeflib");
    assert_eq!(info.defines, r.defines, "{p}: version definitions");
    assert_eq!(info.needs, r.needs, "{p}: version needs");
    let machine = if info.big_endian {
        u16::from_be_bytes([data[18], data[19]])
    } else {
        u16::from_le_bytes([data[18], data[19]])
    };
    assert_eq!(info.machine, machine, "{p}: machine");
    assert_eq!(info.osabi, data[7], "{p}: osabi");
    info
}

fn is_elf_file(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let mut magic = [0u8; 4];
    use std::io::Read;
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && is_elf_magic(&magic)
}

fn elf_files_in(dir: &str, limit: usize) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_elf_file(p))
        .collect();
    files.sort();
    // An even spread over the directory when it holds more than `limit`.
    let step = files.len().div_ceil(limit).max(1);
    files.into_iter().step_by(step).collect()
}

#[test]
fn usr_bin_agrees_with_readelf() {
    let files = elf_files_in("/usr/bin", 400);
    assert!(files.len() > 50, "too few ELF files in /usr/bin");
    let mut with_versions = 0;
    for (i, f) in files.iter().enumerate() {
        let info = check_against_readelf(f, i as u64 * 7919);
        with_versions += usize::from(!info.needs.is_empty());
    }
    assert!(with_versions > files.len() / 2);
}

#[test]
fn system_libraries_agree_with_readelf() {
    let mut libs = vec![PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6")];
    for extra in [
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libz.so.1",
    ] {
        if Path::new(extra).exists() {
            libs.push(PathBuf::from(extra));
        }
    }
    libs.extend(elf_files_in("/lib/x86_64-linux-gnu", 150));
    for (i, l) in libs.iter().enumerate() {
        let l = std::fs::canonicalize(l).unwrap();
        check_against_readelf(&l, 1000 + i as u64);
    }
    let libc = check_against_readelf(Path::new("/lib/x86_64-linux-gnu/libc.so.6"), 5);
    assert_eq!(libc.soname.as_deref(), Some("libc.so.6"));
    assert!(libc.defines.iter().any(|d| d == "GLIBC_2.34"));
    assert_eq!(libc.class, ElfClass::Elf64);
    assert_eq!(libc.machine, 62);
}

/// A scratch directory for objects built by the tests, removed when dropped.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ocipatch-elf-{name}."))
        .tempdir()
        .unwrap()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn built_objects_agree_with_readelf() {
    let tmp = scratch("built");
    let dir = tmp.path();
    let src = dir.join("t.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint shared_fn(void) { return 1; }\nint main(void) { puts(\"hi\"); return 0; }\n",
    )
    .unwrap();
    // A static binary: no PT_INTERP, no PT_DYNAMIC.
    let st = dir.join("static");
    run(Command::new("gcc")
        .arg("-static")
        .arg(&src)
        .arg("-o")
        .arg(&st));
    let info = check_against_readelf(&st, 3);
    assert!(info.interp.is_none() && info.needed.is_empty() && !info.dynamic);
    // RPATH, RUNPATH, NODEFLIB, a soname and version definitions, with and without the section
    // headers.
    let map = dir.join("v.map");
    std::fs::write(
        &map,
        "V_1 { global: shared_fn; local: *; };\nV_2 { } V_1;\n",
    )
    .unwrap();
    let so = dir.join("libv.so.1");
    run(Command::new("gcc")
        .args([
            "-shared",
            "-fPIC",
            "-Wl,-soname,libv.so.1",
            "-Wl,-z,nodefaultlib",
        ])
        .arg(format!("-Wl,--version-script={}", map.display()))
        .arg("-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib:/opt/x")
        .arg(&src)
        .arg("-o")
        .arg(&so));
    let info = check_against_readelf(&so, 4);
    assert_eq!(info.defines, ["V_1", "V_2"]);
    assert_eq!(info.rpath, ["$ORIGIN/../lib", "/opt/x"]);
    assert!(info.nodeflib);
    let exe = dir.join("runpath");
    run(Command::new("gcc")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", dir.display()))
        .arg("-Wl,--enable-new-dtags,-rpath,/a::/b,--no-as-needed")
        .arg(&so));
    let info = check_against_readelf(&exe, 5);
    assert_eq!(info.runpath, ["/a", "", "/b"]);
    assert!(info.needed.contains(&"libv.so.1".to_owned()));
    // Without section headers (what `ld.so` reads is all that is left).
    let stripped = dir.join("noshdr");
    let mut data = std::fs::read(&exe).unwrap();
    data[0x28..0x30].fill(0); // e_shoff
    data[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    std::fs::write(&stripped, &data).unwrap();
    assert_eq!(scan_whole(&data).unwrap().unwrap(), info);
    // A 32-bit shared object, linked without a 32-bit libc (none is installed here).
    let so32 = dir.join("lib32.so");
    let src32 = dir.join("t32.c");
    std::fs::write(&src32, "int shared_fn(void) { return 1; }\n").unwrap();
    let out = Command::new("gcc")
        .args([
            "-m32",
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,lib32.so.2",
        ])
        .arg(format!("-Wl,--version-script={}", map.display()))
        .arg(&src32)
        .arg("-o")
        .arg(&so32)
        .output()
        .unwrap();
    if out.status.success() {
        let info = check_against_readelf(&so32, 6);
        assert_eq!(info.class, ElfClass::Elf32);
        assert_eq!(info.machine, 3);
        assert_eq!(info.soname.as_deref(), Some("lib32.so.2"));
    } else {
        // gcc without -m32 support: the big-endian 32-bit case below still covers ELFCLASS32.
        eprintln!(
            "skipped: gcc -m32: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Big-endian objects, 64-bit (s390x) and 32-bit (powerpc), assembled and linked with the
/// cross binutils (Debian's binutils-s390x-linux-gnu and binutils-powerpc-linux-gnu, which
/// scripts/test.sh installs). Skipped, saying so, when they are missing.
#[test]
fn big_endian_objects_agree_with_readelf() {
    let tmp = scratch("be");
    let dir = tmp.path();
    for (prefix, class) in [
        ("s390x-linux-gnu", ElfClass::Elf64),
        ("powerpc-linux-gnu", ElfClass::Elf32),
    ] {
        let ld = format!("{prefix}-ld");
        if Command::new(&ld).arg("--version").output().is_err() {
            // scripts/test.sh installs them: in CI a missing one is a failure, not a skip.
            assert!(std::env::var_os("CI").is_none(), "{ld} is not installed");
            eprintln!("skipped: {ld} is not installed");
            continue;
        }
        let word = if class == ElfClass::Elf64 {
            ".quad"
        } else {
            ".long"
        };
        let asm = |name: &str, text: &str| {
            let s = dir.join(format!("{prefix}-{name}.s"));
            std::fs::write(&s, text).unwrap();
            let o = dir.join(format!("{prefix}-{name}.o"));
            run(Command::new(format!("{prefix}-as"))
                .arg(&s)
                .arg("-o")
                .arg(&o));
            o
        };
        let def = asm(
            "def",
            ".data\n.globl f\n.type f,@object\n.size f,4\nf:\n.long 0\n",
        );
        let user = asm("use", &format!(".data\n.globl x\nx:\n{word} f\n"));
        let map = dir.join("be.map");
        std::fs::write(
            &map,
            "BE_1.0 { global: f; local: *; };\nBE_2.0 { } BE_1.0;\n",
        )
        .unwrap();
        let dep = dir.join(format!("libdep-{prefix}.so"));
        run(Command::new(&ld)
            .args(["-shared", "-soname", "libdep.so.3"])
            .arg(format!("--version-script={}", map.display()))
            .arg(&def)
            .arg("-o")
            .arg(&dep));
        let lib = dir.join(format!("libbe-{prefix}.so"));
        run(Command::new(&ld)
            .args([
                "-shared",
                "-soname",
                "libbe.so.1",
                "-rpath",
                "/x/y",
                "--enable-new-dtags",
            ])
            .arg(&user)
            .arg(&dep)
            .arg("-o")
            .arg(&lib));
        let info = check_against_readelf(&dep, 8);
        assert!(info.big_endian);
        assert_eq!(info.class, class);
        assert_eq!(info.defines, ["BE_1.0", "BE_2.0"]);
        let info = check_against_readelf(&lib, 9);
        assert_eq!(info.needed, ["libdep.so.3"]);
        assert_eq!(info.runpath, ["/x/y"]);
        assert_eq!(info.needs.len(), 1, "{prefix}: {info:?}");
    }
}

#[test]
fn not_elf() {
    for data in [
        &b""[..],
        b"\x7fEL",
        b"#!/bin/sh\necho hi\n",
        b"GROUP ( libc.so.6 )",
    ] {
        assert_eq!(scan_whole(data), Ok(None));
        assert_eq!(scan_chunked(data, &mut Rng(3)), Ok(None));
    }
    assert!(!is_elf_magic(b"\x7fEL"));
    assert!(is_elf_magic(b"\x7fELF\x02"));
    // The magic alone is an ELF file we cannot read.
    assert!(scan_whole(b"\x7fELF").is_err());
}

/// Truncating or flipping bytes anywhere in real files gives a summary or an error, fast.
#[test]
fn truncated_and_corrupted_files_never_panic() {
    let mut inputs = vec![
        std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap(),
        std::fs::read("/usr/bin/ls").unwrap(),
    ];
    if let Ok(z) = std::fs::read("/lib/x86_64-linux-gnu/libz.so.1") {
        inputs.push(z);
    }
    let mut rng = Rng(0x5eed);
    let started = Instant::now();
    for data in &inputs {
        let full = scan_whole(data).unwrap().unwrap();
        // Truncation at many offsets: an error (or, past everything needed, the same summary).
        let mut cuts: Vec<usize> = (0..256).collect();
        cuts.extend((0..200).map(|_| rng.below(data.len() as u64) as usize));
        for cut in cuts {
            let part = &data[..cut];
            let mut s = ElfScanner::new(data.len() as u64);
            s.feed(part);
            match s.finish() {
                Ok(Some(info)) => assert_eq!(info, full, "cut at {cut}"),
                Ok(None) => assert!(cut < 4, "cut at {cut} seen as not ELF"),
                Err(_) => {}
            }
            // The tar header agrees with the truncated length: never a panic either.
            let _ = scan_chunked(part, &mut rng);
        }
        // Byte flips, concentrated on the headers, the dynamic segment and the version sections.
        for round in 0..600 {
            let mut bad = data.clone();
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = if round % 2 == 0 {
                    rng.below(4096.min(bad.len() as u64)) as usize
                } else {
                    rng.below(bad.len() as u64) as usize
                };
                bad[at] = rng.next() as u8;
            }
            let t = Instant::now();
            let _ = scan_chunked(&bad, &mut rng);
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "slow on a corrupted file"
            );
        }
    }
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// A minimal ELF64 little-endian shared object, built by hand: header, two program headers
/// (PT_LOAD at 0 covering everything, PT_DYNAMIC), a dynamic section, a string table and the
/// version sections given.
fn handmade(dynamic: &[(i64, u64)], tail: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 64 + 2 * 56];
    f[..4].copy_from_slice(&elf::ELFMAG);
    f[4] = 2; // ELFCLASS64
    f[5] = 1; // little-endian
    f[6] = 1;
    f[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    let dyn_off = f.len() as u64;
    let dyn_len = (dynamic.len() as u64 + 1) * 16;
    for &(tag, val) in dynamic {
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&val.to_le_bytes());
    }
    f.extend_from_slice(&[0u8; 16]);
    f.extend_from_slice(tail);
    let total = f.len() as u64;
    let ph = |f: &mut Vec<u8>, at: usize, kind: u32, off: u64, len: u64| {
        f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
        f[at + 16..at + 24].copy_from_slice(&off.to_le_bytes()); // vaddr = offset
        f[at + 32..at + 40].copy_from_slice(&len.to_le_bytes());
        f[at + 40..at + 48].copy_from_slice(&len.to_le_bytes());
    };
    ph(&mut f, 64, 1, 0, total);
    ph(&mut f, 120, 2, dyn_off, dyn_len);
    f
}

#[test]
fn version_chains_that_loop_are_bounded() {
    // One verneed whose vn_next points at itself, with one vernaux pointing at itself too.
    let strtab = b"\0libc.so.6\0GLIBC_2.2.5\0";
    let dyn_entries = 4u64;
    let tail_at = (64 + 2 * 56 + (dyn_entries + 1) * 16) as usize;
    let mut tail = strtab.to_vec();
    let verneed_at = tail_at + tail.len();
    tail.extend_from_slice(&1u16.to_le_bytes()); // vn_version
    tail.extend_from_slice(&60000u16.to_le_bytes()); // vn_cnt: a lie
    tail.extend_from_slice(&1u32.to_le_bytes()); // vn_file
    tail.extend_from_slice(&16u32.to_le_bytes()); // vn_aux
    tail.extend_from_slice(&(u32::MAX - 3).to_le_bytes()); // vn_next: far away
    tail.extend_from_slice(&0u32.to_le_bytes()); // vna_hash
    tail.extend_from_slice(&0u16.to_le_bytes()); // vna_flags
    tail.extend_from_slice(&2u16.to_le_bytes()); // vna_other
    tail.extend_from_slice(&11u32.to_le_bytes()); // vna_name
    tail.extend_from_slice(&0u32.to_le_bytes()); // vna_next: 0 stops the aux chain
    let f = handmade(
        &[
            (5, tail_at as u64),
            (10, strtab.len() as u64),
            (0x6fff_fffe, verneed_at as u64),
            (0x6fff_ffff, 1),
        ],
        &tail,
    );
    let info = scan_whole(&f).unwrap().unwrap();
    assert_eq!(
        info.needs,
        [VersionNeed {
            file: "libc.so.6".into(),
            versions: vec![NeededVersion {
                name: "GLIBC_2.2.5".into(),
                weak: false
            }]
        }]
    );
    // Now a loop: vn_next = 0 for the chain length but the count says 3000 and the aux chain
    // loops back on itself (vna_next = 0 would stop it; use 16 back... offsets only grow, so a
    // loop is a chain that never ends: vna_next pointing to the same record is impossible).
    // A count far beyond the data is an error, not a hang.
    let mut tail2 = tail.clone();
    let aux_next = verneed_at - tail_at + 16 + 12;
    tail2[aux_next..aux_next + 4].copy_from_slice(&16u32.to_le_bytes());
    let f = handmade(
        &[
            (5, tail_at as u64),
            (10, strtab.len() as u64),
            (0x6fff_fffe, verneed_at as u64),
        ],
        &tail2,
    );
    let t = Instant::now();
    assert!(scan_whole(&f).is_err());
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn lying_offsets_are_errors() {
    // DT_STRTAB outside every PT_LOAD.
    let f = handmade(&[(5, 1 << 40), (1, 1)], b"\0x\0");
    assert!(scan_whole(&f).unwrap_err().reason.contains("DT_STRTAB"));
    // A string index past the table.
    let at = (64 + 2 * 56 + 3 * 16) as u64;
    let f = handmade(&[(5, at), (10, 3), (1, 99)], b"\0x\0");
    assert!(scan_whole(&f).is_err());
    // Program headers past the end of the file.
    let mut f = handmade(&[], b"");
    f[32..40].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(scan_whole(&f).is_err());
    // A PT_DYNAMIC bigger than the cap.
    let mut f = handmade(&[], b"");
    f[120 + 32..120 + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(scan_whole(&f).is_err());
    // A declared size larger than what arrives.
    let f = handmade(&[(5, at), (10, 3), (1, 1)], b"\0x\0");
    let mut s = ElfScanner::new(f.len() as u64 + 100);
    s.feed(&f[..200.min(f.len())]);
    assert!(s.finish().is_err() || f.len() <= 200);
}

/// A string table after the dynamic section (as `patchelf` leaves it) is found in the stream.
#[test]
fn string_table_after_the_dynamic_section() {
    let dyn_entries = 3u64;
    let tail_at = 64 + 2 * 56 + (dyn_entries + 1) * 16;
    let strtab = b"\0libfoo.so.1\0libbar.so.2\0";
    let mut f = handmade(&[(5, tail_at), (10, strtab.len() as u64), (1, 1)], strtab);
    // Make the first PT_LOAD end before the string table, and add a second one holding it.
    let first_end = 64 + 2 * 56;
    f[64 + 32..64 + 40].copy_from_slice(&(first_end as u64).to_le_bytes());
    // Reuse the PT_DYNAMIC header slot's neighbour: rebuild with three program headers.
    let mut g = f[..64].to_vec();
    g[56..58].copy_from_slice(&3u16.to_le_bytes());
    let shift = 56u64;
    let mut phdrs = f[64..64 + 112].to_vec();
    let mut load2 = vec![0u8; 56];
    load2[..4].copy_from_slice(&1u32.to_le_bytes());
    let rest = f[64 + 112..].to_vec();
    let total = (64 + 168 + rest.len()) as u64;
    let seg2 = 64 + 168;
    for (at, v) in [
        (8, seg2 as u64),
        (16, seg2 as u64),
        (32, total - seg2 as u64),
        (40, total - seg2 as u64),
    ] {
        load2[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    // Shift PT_DYNAMIC's offset and address, and the string-table address, by one header.
    for at in [56 + 8, 56 + 16] {
        let v = u64::from_le_bytes(phdrs[at..at + 8].try_into().unwrap()) + shift;
        phdrs[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    phdrs[32..40].copy_from_slice(&(64u64 + 168).to_le_bytes());
    let mut rest = rest;
    let v = u64::from_le_bytes(rest[8..16].try_into().unwrap()) + shift;
    rest[8..16].copy_from_slice(&v.to_le_bytes());
    g.extend_from_slice(&phdrs);
    g.extend_from_slice(&load2);
    g.extend_from_slice(&rest);
    for seed in 0..50 {
        let info = scan_chunked(&g, &mut Rng(seed + 1)).unwrap().unwrap();
        assert_eq!(info.needed, ["libfoo.so.1"]);
    }
}

/// Thousands of DT_NEEDED entries naming one long string: an error, not gigabytes.
#[test]
fn many_entries_naming_one_long_string_are_capped() {
    let n = 20_000u64;
    let tail_at = 64 + 2 * 56 + (n + 2 + 1) * 16;
    let mut strtab = vec![0u8];
    strtab.extend(std::iter::repeat_n(b'x', 200_000));
    strtab.push(0);
    let mut entries = vec![(5i64, tail_at), (10, strtab.len() as u64)];
    entries.extend((0..n).map(|_| (1i64, 1u64)));
    let f = handmade(&entries, &strtab);
    let t = Instant::now();
    let e = scan_whole(&f).unwrap_err();
    assert!(e.reason.contains("cap"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// A reader may stop once the scanner is done: the summary is the same as from the whole file.
#[test]
fn is_done_means_the_rest_changes_nothing() {
    let mut s = ElfScanner::new(100);
    s.feed(b"#!/bin/sh");
    assert!(s.is_done());
    assert_eq!(s.finish(), Ok(None));
    let data = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    let mut s = ElfScanner::new(data.len() as u64);
    let mut fed = 0;
    for chunk in data.chunks(4096) {
        if s.is_done() {
            break;
        }
        s.feed(chunk);
        fed += chunk.len();
    }
    assert!(fed < data.len(), "libc's summary needs its whole file?");
    assert_eq!(s.finish().unwrap(), scan_whole(&data).unwrap());
}
