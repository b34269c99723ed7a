//! What differs between glibc builds: the trusted directories, `$LIB` and `$PLATFORM`, the
//! flags `ldconfig` gives a library and the flags `ld.so` accepts from the cache.
//!
//! glibc's `ldconfig` always adds `SLIBDIR` and `LIBDIR` after the `ld.so.conf` directories
//! (through the architecture's `add_system_dir`, which on x86-64 turns `/lib64` into `/lib`,
//! `/lib64` and `/libx32`); Debian builds glibc with `slibdir=/lib/TRIPLET`,
//! `libdir=/usr/lib/TRIPLET` and adds `/lib` and `/usr/lib`, which is also `ld.so`'s default
//! search path there (`ld.so --help` lists them as "system search path"). A view with a
//! `lib/TRIPLET` or `usr/lib/TRIPLET` directory is taken to be Debian-like; otherwise the
//! upstream defaults apply (`/lib64` and `/usr/lib64` for 64-bit, `/lib` and `/usr/lib` else).

use super::{resolve_spelled, Resolved, View};
use crate::verdict::elf::{ElfClass, ElfInfo, ElfKind};

/// `EM_386`.
pub const EM_386: u16 = 3;
/// `EM_ARM`.
pub const EM_ARM: u16 = 40;
/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;

/// `ldconfig`'s `FLAG_ELF`: an ELF library of no known libc.
pub const FLAG_ELF: i32 = 0x0001;
/// `FLAG_ELF_LIBC5`.
pub const FLAG_ELF_LIBC5: i32 = 0x0002;
/// `FLAG_ELF_LIBC6`: a glibc (libc.so.6) library.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `FLAG_X8664_LIB64`.
pub const FLAG_X8664_LIB64: i32 = 0x0300;
/// `FLAG_X8664_LIBX32`.
pub const FLAG_X8664_LIBX32: i32 = 0x0800;
/// `FLAG_ARM_LIBHF`.
pub const FLAG_ARM_LIBHF: i32 = 0x0900;
/// `FLAG_AARCH64_LIB64`.
pub const FLAG_AARCH64_LIB64: i32 = 0x0a00;
/// `FLAG_ARM_LIBSF`.
pub const FLAG_ARM_LIBSF: i32 = 0x0b00;

/// Interpreters whose presence marks a library as glibc's (`ldconfig`'s known names).
const GLIBC_INTERPRETERS: &[&str] = &[
    "/lib/ld-linux.so.2",
    "/lib64/ld-linux-x86-64.so.2",
    "/libx32/ld-linux-x32.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux-armhf.so.3",
    "/lib/ld-linux.so.3",
];

/// The glibc build an image's loader and `ldconfig` come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `e_machine` of the native objects.
    pub machine: u16,
    /// Their class.
    pub class: ElfClass,
    /// The Debian multiarch triplet, when the image uses one (`x86_64-linux-gnu`).
    pub triplet: Option<String>,
    /// `ld.so`'s default directories (after `RUNPATH` and the cache), absolute.
    pub default_dirs: Vec<String>,
    /// The directories `ldconfig` adds after those of `ld.so.conf`, absolute, in order.
    pub ldconfig_dirs: Vec<String>,
    /// What `$LIB` expands to.
    pub dst_lib: String,
    /// What `$PLATFORM` expands to: `AT_PLATFORM` (glibc 2.26 to 2.36 on x86-64 replace it
    /// with `haswell` or `xeon_phi` on Intel CPUs with those features, which a model of the
    /// image cannot know).
    pub dst_platform: String,
    /// The standard program interpreter (`/lib64/ld-linux-x86-64.so.2`): the loader already
    /// in memory when a library without `PT_INTERP` is loaded.
    pub interp: Option<String>,
}

/// (machine, class, triplet, AT_PLATFORM, interpreter) of the architectures modelled by name.
const KNOWN: &[(u16, ElfClass, &str, &str, &str)] = &[
    (
        EM_X86_64,
        ElfClass::Elf64,
        "x86_64-linux-gnu",
        "x86_64",
        "/lib64/ld-linux-x86-64.so.2",
    ),
    (
        EM_AARCH64,
        ElfClass::Elf64,
        "aarch64-linux-gnu",
        "aarch64",
        "/lib/ld-linux-aarch64.so.1",
    ),
    (
        EM_386,
        ElfClass::Elf32,
        "i386-linux-gnu",
        "i686",
        "/lib/ld-linux.so.2",
    ),
    (
        EM_X86_64,
        ElfClass::Elf32,
        "x86_64-linux-gnux32",
        "x86_64",
        "/libx32/ld-linux-x32.so.2",
    ),
    (
        EM_ARM,
        ElfClass::Elf32,
        "arm-linux-gnueabihf",
        "v7l",
        "/lib/ld-linux-armhf.so.3",
    ),
];

impl Platform {
    /// The platform of native objects with this machine and class, laid out as the view's
    /// directories suggest (Debian multiarch or upstream).
    pub fn for_machine(view: &dyn View, machine: u16, class: ElfClass) -> Platform {
        let known = KNOWN.iter().find(|k| k.0 == machine && k.1 == class);
        let interp = known.map(|k| k.4.to_owned());
        let triplet = known.map(|k| k.2).filter(|t| {
            [format!("/lib/{t}"), format!("/usr/lib/{t}")]
                .iter()
                .any(|d| matches!(resolve_spelled(view, d), Resolved::Dir(_)))
        });
        let at_platform = known.map_or("unknown", |k| k.3).to_owned();
        match triplet {
            Some(t) => {
                let dirs = vec![
                    format!("/lib/{t}"),
                    format!("/usr/lib/{t}"),
                    "/lib".to_owned(),
                    "/usr/lib".to_owned(),
                ];
                Platform {
                    machine,
                    class,
                    triplet: Some(t.to_owned()),
                    default_dirs: dirs.clone(),
                    ldconfig_dirs: dirs,
                    // Debian builds with DL_DST_LIB = "lib/TRIPLET".
                    dst_lib: format!("lib/{t}"),
                    dst_platform: at_platform,
                    interp,
                }
            }
            None => {
                let x32 = machine == EM_X86_64 && class == ElfClass::Elf32;
                let (default_dirs, dst_lib): (Vec<String>, &str) = if x32 {
                    (vec!["/libx32".into(), "/usr/libx32".into()], "libx32")
                } else if class == ElfClass::Elf64 {
                    (vec!["/lib64".into(), "/usr/lib64".into()], "lib64")
                } else {
                    (vec!["/lib".into(), "/usr/lib".into()], "lib")
                };
                // add_system_dir on x86-64 and aarch64: DIR/lib64 also adds DIR/lib (and x32).
                let mut ldconfig_dirs = Vec::new();
                for d in &default_dirs {
                    let base = d
                        .strip_suffix("64")
                        .or_else(|| d.strip_suffix("x32"))
                        .filter(|b| b.ends_with("/lib"));
                    match base {
                        Some(b) if machine == EM_X86_64 => ldconfig_dirs.extend([
                            b.to_owned(),
                            format!("{b}64"),
                            format!("{b}x32"),
                        ]),
                        Some(b) if machine == EM_AARCH64 => {
                            ldconfig_dirs.extend([b.to_owned(), format!("{b}64")])
                        }
                        _ => ldconfig_dirs.push(d.clone()),
                    }
                }
                Platform {
                    machine,
                    class,
                    triplet: None,
                    default_dirs,
                    ldconfig_dirs,
                    dst_lib: dst_lib.to_owned(),
                    dst_platform: at_platform,
                    interp,
                }
            }
        }
    }

    /// The platform of the image's C library: the `libc.so.6` (or musl loader) in the usual
    /// places, else the first ELF library in `lib`, `lib64`, `usr/lib`, `usr/lib64` (by
    /// name). `None` for an image without one.
    pub fn detect(view: &dyn View) -> Option<Platform> {
        let mut candidates: Vec<String> = KNOWN
            .iter()
            .flat_map(|k| {
                [
                    format!("/lib/{}/libc.so.6", k.2),
                    format!("/usr/lib/{}/libc.so.6", k.2),
                ]
            })
            .collect();
        for d in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
            candidates.push(format!("{d}/libc.so.6"));
        }
        for c in &candidates {
            if let Resolved::File(p) = resolve_spelled(view, c) {
                if let Some(info) = view.elf(&p) {
                    return Some(Platform::for_machine(view, info.machine, info.class));
                }
            }
        }
        // No glibc: the musl loader, else the first ELF library in the usual places.
        for musl_only in [true, false] {
            for dir in ["lib", "lib64", "usr/lib", "usr/lib64"] {
                let Resolved::Dir(d) = view.resolve(dir) else {
                    continue;
                };
                let mut names = view.list(&d);
                names.sort_by(|a, b| a.0.cmp(&b.0));
                for (name, _) in names {
                    let wanted = if musl_only {
                        name.starts_with("ld-musl-")
                    } else {
                        name.starts_with("lib") || name.starts_with("ld-")
                    };
                    if !wanted {
                        continue;
                    }
                    if let Resolved::File(p) = view.resolve(&format!("{d}/{name}")) {
                        if let Some(info) = view.elf(&p) {
                            return Some(Platform::for_machine(view, info.machine, info.class));
                        }
                    }
                }
            }
        }
        None
    }

    /// `true` when `ld.so` of this platform can load `info` (`elf_machine_matches_host` and
    /// the class check of `open_verify`); others are skipped while searching.
    pub fn loads(&self, info: &ElfInfo) -> bool {
        info.machine == self.machine
            && info.class == self.class
            && matches!(info.kind, ElfKind::SharedObject | ElfKind::Executable)
    }

    /// The cache flags `ld.so` of this platform accepts (`_dl_cache_check_flags`).
    pub fn accepts_cache_flags(&self, flags: i32) -> bool {
        match (self.machine, self.class) {
            (EM_X86_64, ElfClass::Elf64) => flags == FLAG_X8664_LIB64 | FLAG_ELF_LIBC6,
            (EM_X86_64, ElfClass::Elf32) => flags == FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6,
            (EM_AARCH64, ElfClass::Elf64) => flags == FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6,
            (EM_ARM, _) => {
                flags == FLAG_ARM_LIBHF | FLAG_ELF_LIBC6 || flags == FLAG_ELF_LIBC6 || flags == 1
            }
            _ => flags == FLAG_ELF || flags == FLAG_ELF_LIBC6,
        }
    }

    /// The flags this platform's `ldconfig` gives the shared object `info`, or `None` when it
    /// skips the file (wrong class or machine, not `ET_DYN`, no dynamic string table).
    pub fn ldconfig_flags(&self, info: &ElfInfo) -> Option<i32> {
        if info.kind != ElfKind::SharedObject || !info.dynamic {
            return None;
        }
        let generic = || {
            let libc6 = info
                .interp
                .as_deref()
                .is_some_and(|i| GLIBC_INTERPRETERS.contains(&i))
                || info
                    .needed
                    .iter()
                    .any(|n| n == "libc.so.6" || n == "libm.so.6");
            if libc6 {
                FLAG_ELF_LIBC6
            } else {
                FLAG_ELF
            }
        };
        match self.machine {
            // sysdeps/unix/sysv/linux/x86/readelflib.c
            EM_X86_64 | EM_386 => match (info.machine, info.class) {
                (EM_X86_64, ElfClass::Elf64) => Some(FLAG_X8664_LIB64 | FLAG_ELF_LIBC6),
                (EM_X86_64, ElfClass::Elf32) => Some(FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6),
                (EM_386, ElfClass::Elf32) => Some(generic()),
                _ => None,
            },
            // sysdeps/unix/sysv/linux/arm/readelflib.c (also used for aarch64): no machine check.
            EM_AARCH64 | EM_ARM => match info.class {
                ElfClass::Elf64 => Some(FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6),
                ElfClass::Elf32 if info.flags & 0xff00_0000 == 0x0500_0000 => {
                    Some(if info.flags & 0x400 != 0 {
                        FLAG_ARM_LIBHF | FLAG_ELF_LIBC6
                    } else if info.flags & 0x200 != 0 {
                        FLAG_ARM_LIBSF | FLAG_ELF_LIBC6
                    } else {
                        FLAG_ELF_LIBC6
                    })
                }
                ElfClass::Elf32 => Some(generic()),
            },
            // elf/readelflib.c: the native class only.
            _ => (info.class == self.class).then(generic),
        }
    }
}
