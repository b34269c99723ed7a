//! A streaming summary of an ELF file: what the dynamic loader reads (interpreter, sonames,
//! search paths, symbol versions), from bytes pushed in order, once, without seeking.
//!
//! Layers arrive as tar streams and each file's bytes are hashed as they pass, so the scanner is
//! push-based: [`ElfScanner::feed`] takes the next chunk, [`ElfScanner::finish`] gives the
//! summary. It reads the file the way `ld.so` does, through the program headers (section
//! headers may be stripped, and sit at the end of the file anyway):
//!
//! 1. the ELF header and the program headers, which must end within [`MAX_HEADERS`] bytes;
//! 2. the first `PT_LOAD` segment (the one at file offset 0), up to [`MAX_FIRST_LOAD`] bytes:
//!    linkers put `.dynsym`, `.dynstr` and `.gnu.version_d`/`_r` there, before the code, while
//!    `.dynamic` usually comes later, in the data segment;
//! 3. `PT_INTERP` and `PT_DYNAMIC` (each at most [`MAX_SEGMENT`] bytes), wherever they are;
//! 4. once `PT_DYNAMIC` is complete, the ranges its entries point into (`DT_STRTAB`,
//!    `DT_VERDEF`, `DT_VERNEED`, mapped from addresses to offsets through the `PT_LOAD`
//!    segments) that were not kept already and still lie ahead in the stream (as after
//!    `patchelf`, which moves `.dynstr` to the end of the file).
//!
//! Everything else (the code, the data, the section headers) is skipped without copying. At most
//! [`MAX_BUFFERED`] bytes are kept per file; anything needed outside what was kept is an
//! [`ElfError`], never a panic or a guess. Strings that are not UTF-8 are converted lossily.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::Endianness;
use serde::{Deserialize, Serialize};

/// The ELF header and all program headers must end within this many bytes of the start.
pub const MAX_HEADERS: u64 = 1 << 20;
/// How much of the first `PT_LOAD` segment (the one at offset 0) is kept.
pub const MAX_FIRST_LOAD: u64 = 16 << 20;
/// The largest `PT_INTERP`, `PT_DYNAMIC` or pointed-to range kept apart from the first segment.
pub const MAX_SEGMENT: u64 = 4 << 20;
/// The most bytes kept for one file, all ranges together.
pub const MAX_BUFFERED: u64 = 32 << 20;
/// The most version definitions, version needs or auxiliary entries of one need read.
pub const MAX_VERSION_ENTRIES: usize = 4096;
/// The most bytes of strings one summary holds (names, paths, versions together): a hostile
/// file could otherwise point thousands of entries at one long string.
pub const MAX_SUMMARY_BYTES: usize = 1 << 20;
/// How much is kept after a version section found late (its size is not in the dynamic section).
const LATE_VERSION_BYTES: u64 = 1 << 20;

/// `true` when the first four bytes of a file are the ELF magic number.
pub fn is_elf_magic(first4: &[u8]) -> bool {
    first4.len() >= 4 && first4[..4] == elf::ELFMAG
}

/// 32- or 64-bit ELF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElfClass {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// The object file type (`e_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElfKind {
    /// `ET_EXEC`: a fixed-address executable.
    Executable,
    /// `ET_DYN`: a shared object (also position-independent executables and `ld.so` itself).
    SharedObject,
    /// Anything else: relocatable objects, core files.
    Other,
}

/// One version an object needs from a library (a `Vernaux` entry).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NeededVersion {
    /// The version name, e.g. `GLIBC_2.34`.
    pub name: String,
    /// `VER_FLG_WEAK`: the object still loads when the library lacks this version.
    pub weak: bool,
}

/// The versions an object needs from one library (a `Verneed` entry).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionNeed {
    /// The library's soname as the object names it, e.g. `libc.so.6`.
    pub file: String,
    /// The versions needed from it, in file order.
    pub versions: Vec<NeededVersion>,
}

/// What the dynamic loader and `ldconfig` read from an ELF file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfInfo {
    /// 32- or 64-bit.
    pub class: ElfClass,
    /// Big-endian (`ELFDATA2MSB`).
    pub big_endian: bool,
    /// `e_machine`, e.g. 62 for x86-64 (`EM_X86_64`).
    pub machine: u16,
    /// `EI_OSABI`.
    pub osabi: u8,
    /// `e_flags` (`ldconfig` reads the float ABI of ARM, MIPS and RISC-V libraries there).
    pub flags: u32,
    /// The object file type.
    pub kind: ElfKind,
    /// The program interpreter (`PT_INTERP`), e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interp: Option<String>,
    /// `true` when the file has a `PT_DYNAMIC` segment with a string table (`DT_STRTAB`):
    /// without one, `ldconfig` ignores a library and the file needs nothing.
    pub dynamic: bool,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_NEEDED`, in file order (the order `ld.so` loads them in).
    pub needed: Vec<String>,
    /// `DT_RPATH`, split on `:` (empty entries kept).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH`, split on `:` (empty entries kept).
    pub runpath: Vec<String>,
    /// `DF_1_NODEFLIB` in `DT_FLAGS_1`: neither `ld.so.cache` nor the default directories are
    /// searched for this object's dependencies.
    pub nodeflib: bool,
    /// The version definitions (`DT_VERDEF`), in file order, except the `VER_FLG_BASE` one (the
    /// object's own name).
    pub defines: Vec<String>,
    /// The version needs (`DT_VERNEED`), in file order.
    pub needs: Vec<VersionNeed>,
}

/// Why an ELF file could not be summarised.
/// Kept in layer summaries (and the layer cache) as its reason alone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(transparent)]
#[error("cannot summarise ELF file: {reason}")]
pub struct ElfError {
    /// What was wrong, in a few words.
    pub reason: String,
}

fn fail<T>(reason: impl Into<String>) -> Result<T, ElfError> {
    Err(ElfError {
        reason: reason.into(),
    })
}

/// A byte range of the file that is kept, apart from the prefix.
#[derive(Debug)]
struct Kept {
    start: u64,
    end: u64,
    data: Vec<u8>,
}

impl Kept {
    fn complete(&self) -> bool {
        self.data.len() as u64 == self.end - self.start
    }
}

/// Where the scan is.
#[derive(Debug)]
enum Stage {
    /// Waiting for `e_ident`.
    Ident,
    /// Waiting for the rest of the ELF header.
    Header,
    /// Waiting for the program headers.
    ProgramHeaders,
    /// Program headers parsed; keeping ranges until `PT_DYNAMIC` is complete.
    Segments,
    /// `PT_DYNAMIC` parsed (or absent) and every range it points to kept or refused.
    Done,
    /// Not an ELF file: everything else is ignored.
    NotElf,
    /// An ELF file we cannot summarise.
    Failed(ElfError),
}

/// The file-header fields the scan needs, whatever the class.
#[derive(Clone, Copy, Debug)]
struct Header {
    class: ElfClass,
    endian: Endianness,
    machine: u16,
    osabi: u8,
    flags: u32,
    kind: ElfKind,
    phoff: u64,
    phnum: u64,
    phentsize: u64,
}

/// One program header, whatever the class.
#[derive(Clone, Copy, Debug)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// The dynamic entries the summary needs, as read from `PT_DYNAMIC`.
#[derive(Clone, Debug, Default)]
struct Dynamic {
    strtab: Option<u64>,
    strsz: Option<u64>,
    needed: Vec<u64>,
    soname: Option<u64>,
    rpath: Option<u64>,
    runpath: Option<u64>,
    flags_1: u64,
    verdef: Option<u64>,
    verdefnum: Option<u64>,
    verneed: Option<u64>,
    verneednum: Option<u64>,
}

/// A push-based ELF reader: feed it a file's bytes in order, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct ElfScanner {
    size: u64,
    /// Bytes seen so far.
    pos: u64,
    stage: Stage,
    /// The file from offset 0, up to `prefix_want`.
    prefix: Vec<u8>,
    prefix_want: u64,
    kept: Vec<Kept>,
    header: Option<Header>,
    segments: Vec<Segment>,
    dynamic: Option<Dynamic>,
    /// Ranges the dynamic section points to that lay behind the stream when it was read.
    missed: Option<String>,
    /// Where `PT_DYNAMIC` ends, once the program headers are read.
    dynamic_end: Option<u64>,
}

impl ElfScanner {
    /// A scanner for one file. `size`: the file's size from its tar header.
    pub fn new(size: u64) -> ElfScanner {
        ElfScanner {
            size,
            pos: 0,
            stage: Stage::Ident,
            prefix: Vec::new(),
            prefix_want: 16.min(size),
            kept: Vec::new(),
            header: None,
            segments: Vec::new(),
            dynamic: None,
            missed: None,
            dynamic_end: None,
        }
    }

    /// The next bytes of the file (contiguous, in order). Cheap when the file is not ELF
    /// (decided from the first 4 bytes) or once everything needed is buffered.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.stage {
                Stage::NotElf | Stage::Failed(_) | Stage::Done => {
                    self.pos = self.pos.saturating_add(rest.len() as u64);
                    return;
                }
                _ => {}
            }
            // Stop at the next point where the plan may change: the end of the prefix and the
            // end of PT_DYNAMIC (what it points to may start right after it).
            let mut boundary = u64::MAX;
            if self.pos < self.prefix_want {
                boundary = self.prefix_want;
            }
            if let Some(end) = self.dynamic_end.filter(|&e| e > self.pos) {
                boundary = boundary.min(end);
            }
            let take = (boundary - self.pos).min(rest.len() as u64) as usize;
            let (now, later) = rest.split_at(take);
            if self.pos < self.prefix_want {
                self.prefix.extend_from_slice(now);
            }
            self.copy_to_kept(now);
            self.pos += take as u64;
            rest = later;
            if let Err(e) = self.advance() {
                self.stage = Stage::Failed(e);
                self.prefix = Vec::new();
                self.kept = Vec::new();
            }
        }
    }

    /// `true` once further bytes cannot change what [`finish`](Self::finish) returns (not
    /// ELF, failed, or everything needed kept): a caller that reads only for the summary may
    /// stop.
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::NotElf | Stage::Failed(_) | Stage::Done)
    }

    /// After the last chunk. `Ok(None)`: not an ELF file. `Err`: an ELF file we cannot summarise
    /// (truncated, lying offsets, over a cap), with a reason.
    pub fn finish(self) -> Result<Option<ElfInfo>, ElfError> {
        match self.stage {
            Stage::NotElf => return Ok(None),
            Stage::Failed(e) => return Err(e),
            Stage::Ident if !is_elf_magic(&self.prefix) => return Ok(None),
            Stage::Ident | Stage::Header | Stage::ProgramHeaders => {
                return fail(format!(
                    "the file ends at byte {} inside the ELF or program headers",
                    self.pos
                ))
            }
            Stage::Segments => {
                return fail(format!(
                    "the file ends at byte {} before its dynamic segment is complete",
                    self.pos
                ))
            }
            Stage::Done => {}
        }
        let Some(h) = self.header else {
            return fail("internal: no header after the scan");
        };
        let mut info = ElfInfo {
            class: h.class,
            big_endian: h.endian == Endianness::Big,
            machine: h.machine,
            osabi: h.osabi,
            flags: h.flags,
            kind: h.kind,
            interp: None,
            dynamic: false,
            soname: None,
            needed: Vec::new(),
            rpath: Vec::new(),
            runpath: Vec::new(),
            nodeflib: false,
            defines: Vec::new(),
            needs: Vec::new(),
        };
        if let Some(seg) = self.segments.iter().find(|s| s.kind == elf::PT_INTERP.0) {
            let bytes = self
                .bytes(seg.offset, seg.filesz)
                .ok_or_else(|| reason("PT_INTERP was not kept"))?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            info.interp = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
        }
        let Some(d) = &self.dynamic else {
            return Ok(Some(info));
        };
        let Some(strtab_addr) = d.strtab else {
            return Ok(Some(info));
        };
        if let Some(missed) = &self.missed {
            return fail(missed.clone());
        }
        let strtab_off = self
            .offset_of(strtab_addr)
            .ok_or_else(|| reason("DT_STRTAB is in no PT_LOAD segment"))?;
        let strtab = match d.strsz {
            Some(sz) => self.bytes(strtab_off, sz),
            None => self.bytes_from(strtab_off),
        }
        .ok_or_else(|| reason("the dynamic string table was not kept"))?;
        let produced = std::cell::Cell::new(0usize);
        let string = |index: u64| -> Result<String, ElfError> {
            let start = usize::try_from(index)
                .ok()
                .filter(|&i| i < strtab.len())
                .ok_or_else(|| reason(format!("string {index} is past the string table")))?;
            let tail = &strtab[start..];
            let len = tail
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| reason("a string runs past the string table"))?;
            produced.set(produced.get() + len + 1);
            if produced.get() > MAX_SUMMARY_BYTES {
                return fail(format!(
                    "the summary's strings pass the {MAX_SUMMARY_BYTES} byte cap"
                ));
            }
            Ok(String::from_utf8_lossy(&tail[..len]).into_owned())
        };
        info.dynamic = true;
        for &n in &d.needed {
            info.needed.push(string(n)?);
        }
        info.soname = d.soname.map(string).transpose()?;
        let split = |s: String| s.split(':').map(str::to_owned).collect::<Vec<_>>();
        info.rpath = d
            .rpath
            .map(string)
            .transpose()?
            .map(split)
            .unwrap_or_default();
        info.runpath = d
            .runpath
            .map(string)
            .transpose()?
            .map(split)
            .unwrap_or_default();
        info.nodeflib = d.flags_1 & elf::DF_1_NODEFLIB.0 != 0;
        if let Some(addr) = d.verdef {
            let data = self.version_bytes(addr, "DT_VERDEF")?;
            info.defines = read_verdefs(h.endian, data, d.verdefnum, &string)?;
        }
        if let Some(addr) = d.verneed {
            let data = self.version_bytes(addr, "DT_VERNEED")?;
            info.needs = read_verneeds(h.endian, data, d.verneednum, &string)?;
        }
        Ok(Some(info))
    }

    fn version_bytes(&self, addr: u64, what: &str) -> Result<&[u8], ElfError> {
        let off = self
            .offset_of(addr)
            .ok_or_else(|| reason(format!("{what} is in no PT_LOAD segment")))?;
        self.bytes_from(off)
            .ok_or_else(|| reason(format!("{what} at offset {off} was not kept")))
    }

    /// Copies the bytes at the current position into every kept range they overlap.
    fn copy_to_kept(&mut self, bytes: &[u8]) {
        let start = self.pos;
        let end = start + bytes.len() as u64;
        for k in &mut self.kept {
            let have = k.start + k.data.len() as u64;
            if have >= k.end || have < start || have >= end {
                continue;
            }
            let upto = k.end.min(end);
            let from = (have - start) as usize;
            let to = (upto - start) as usize;
            k.data.extend_from_slice(&bytes[from..to]);
        }
    }

    /// Moves the scan on once the prefix or a kept range is complete.
    fn advance(&mut self) -> Result<(), ElfError> {
        loop {
            let prefix_full = self.prefix.len() as u64 >= self.prefix_want;
            match self.stage {
                Stage::Ident if self.prefix.len() >= 4 && !is_elf_magic(&self.prefix) => {
                    self.stage = Stage::NotElf;
                    self.prefix = Vec::new();
                    return Ok(());
                }
                Stage::Ident if prefix_full => {
                    if self.prefix.len() < 16 {
                        return Ok(()); // an ELF magic in a file under 16 bytes: finish says so
                    }
                    let want = match elf::FileClass(self.prefix[4]) {
                        elf::ELFCLASS32 => size_of::<FileHeader32<Endianness>>(),
                        elf::ELFCLASS64 => size_of::<FileHeader64<Endianness>>(),
                        c => return fail(format!("unknown ELF class {}", c.0)),
                    };
                    self.want_prefix(want as u64)?;
                    self.stage = Stage::Header;
                }
                Stage::Header if prefix_full => {
                    let h = parse_header(&self.prefix)?;
                    let table = h.phnum * h.phentsize;
                    let end = h
                        .phoff
                        .checked_add(table)
                        .filter(|&e| e <= MAX_HEADERS)
                        .ok_or_else(|| {
                            reason(format!(
                                "the program headers ({} at offset {}) end past the {} byte cap",
                                h.phnum, h.phoff, MAX_HEADERS
                            ))
                        })?;
                    self.header = Some(h);
                    if h.phnum == 0 {
                        self.stage = Stage::Done;
                        return Ok(());
                    }
                    self.want_prefix(end)?;
                    self.stage = Stage::ProgramHeaders;
                }
                Stage::ProgramHeaders if prefix_full => {
                    let Some(h) = self.header else {
                        return fail("internal: no header");
                    };
                    self.segments = parse_segments(&h, &self.prefix)?;
                    self.plan_segments()?;
                    self.stage = Stage::Segments;
                }
                Stage::Segments => {
                    if let Some(end) = self.dynamic_end.filter(|_| self.dynamic.is_none()) {
                        if self.pos < end || !prefix_full {
                            return Ok(());
                        }
                        let seg = self.segments.iter().find(|s| s.kind == elf::PT_DYNAMIC.0);
                        let (Some(h), Some(seg)) = (self.header, seg.copied()) else {
                            return fail("internal: no dynamic segment");
                        };
                        let data = self
                            .bytes(seg.offset, seg.filesz)
                            .ok_or_else(|| reason("PT_DYNAMIC was not kept"))?;
                        let d = parse_dynamic(&h, data)?;
                        self.plan_dynamic(&d)?;
                        self.dynamic = Some(d);
                    }
                    if prefix_full && self.kept.iter().all(Kept::complete) {
                        self.stage = Stage::Done;
                    }
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }

    fn want_prefix(&mut self, end: u64) -> Result<(), ElfError> {
        if end > self.size {
            return fail(format!(
                "the headers end at byte {end}, past the end of the {} byte file",
                self.size
            ));
        }
        self.prefix_want = self.prefix_want.max(end);
        Ok(())
    }

    fn buffered(&self) -> u64 {
        self.prefix_want + self.kept.iter().map(|k| k.end - k.start).sum::<u64>()
    }

    /// Keeps `[start, start + len)` unless the prefix or a kept range covers it.
    fn keep(&mut self, start: u64, len: u64, what: &str) -> Result<(), ElfError> {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                reason(format!(
                    "{what} (offset {start}, {len} bytes) lies past the end of the {} byte file",
                    self.size
                ))
            })?;
        if end <= self.prefix_want || self.kept.iter().any(|k| k.start <= start && end <= k.end) {
            return Ok(());
        }
        if len > MAX_SEGMENT {
            return fail(format!(
                "{what} is {len} bytes, over the {MAX_SEGMENT} byte cap"
            ));
        }
        if self.buffered() + len > MAX_BUFFERED {
            return fail(format!(
                "keeping {what} would pass the {MAX_BUFFERED} byte cap"
            ));
        }
        let mut data = Vec::new();
        if start < self.pos {
            // What has gone by is only still here when the prefix holds all of it.
            if self.pos != self.prefix.len() as u64 {
                return fail(format!("{what} at offset {start} was not kept"));
            }
            data.extend_from_slice(&self.prefix[start as usize..]);
        }
        self.kept.push(Kept { start, end, data });
        Ok(())
    }

    fn plan_segments(&mut self) -> Result<(), ElfError> {
        let segments = self.segments.clone();
        if let Some(first) = segments
            .iter()
            .find(|s| s.kind == elf::PT_LOAD.0 && s.offset == 0)
        {
            let end = first.filesz.min(MAX_FIRST_LOAD).min(self.size);
            self.prefix_want = self.prefix_want.max(end);
        }
        for s in &segments {
            if s.kind == elf::PT_INTERP.0 {
                if s.filesz > 4096 {
                    return fail(format!("PT_INTERP is {} bytes", s.filesz));
                }
                self.keep(s.offset, s.filesz, "PT_INTERP")?;
            }
        }
        // ld.so uses the first PT_DYNAMIC; so does the summary.
        if let Some(s) = segments.iter().find(|s| s.kind == elf::PT_DYNAMIC.0) {
            self.keep(s.offset, s.filesz, "PT_DYNAMIC")?;
            self.dynamic_end = Some(s.offset + s.filesz);
        }
        Ok(())
    }

    /// Keeps what the dynamic entries point to, if it still lies ahead.
    fn plan_dynamic(&mut self, d: &Dynamic) -> Result<(), ElfError> {
        let mut wanted: Vec<(u64, Option<u64>, &str)> = Vec::new();
        if let Some(a) = d.strtab {
            wanted.push((a, d.strsz, "DT_STRTAB"));
        }
        if let Some(a) = d.verdef {
            wanted.push((a, None, "DT_VERDEF"));
        }
        if let Some(a) = d.verneed {
            wanted.push((a, None, "DT_VERNEED"));
        }
        for (addr, len, what) in wanted {
            let Some(off) = self.offset_of(addr) else {
                continue; // finish reports it
            };
            let len = match len {
                Some(l) => l,
                None => {
                    if self.bytes_from(off).is_some() {
                        continue;
                    }
                    let seg_end = self.segment_file_end(addr).unwrap_or(off);
                    (seg_end.min(self.size).saturating_sub(off)).min(LATE_VERSION_BYTES)
                }
            };
            if self.bytes(off, len).is_some() {
                continue;
            }
            if off < self.pos {
                self.missed = Some(format!(
                    "{what} at offset {off} lies outside the kept ranges (the first PT_LOAD \
                     segment is kept up to {} bytes)",
                    self.prefix_want
                ));
                continue;
            }
            self.keep(off, len, what)?;
        }
        Ok(())
    }

    /// File offset of a virtual address, through the `PT_LOAD` segment holding it.
    fn offset_of(&self, addr: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.kind == elf::PT_LOAD.0)
            .find(|s| addr >= s.vaddr && addr - s.vaddr < s.filesz)
            .and_then(|s| s.offset.checked_add(addr - s.vaddr))
    }

    fn segment_file_end(&self, addr: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.kind == elf::PT_LOAD.0)
            .find(|s| addr >= s.vaddr && addr - s.vaddr < s.filesz)
            .and_then(|s| s.offset.checked_add(s.filesz))
    }

    /// Exactly `[off, off + len)`, when kept.
    fn bytes(&self, off: u64, len: u64) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end <= self.prefix.len() as u64 {
            return Some(&self.prefix[off as usize..end as usize]);
        }
        self.kept
            .iter()
            .find(|k| k.start <= off && end <= k.start + k.data.len() as u64)
            .map(|k| &k.data[(off - k.start) as usize..(end - k.start) as usize])
    }

    /// The longest kept run of bytes starting at `off`.
    fn bytes_from(&self, off: u64) -> Option<&[u8]> {
        if off < self.prefix.len() as u64 {
            return Some(&self.prefix[off as usize..]);
        }
        self.kept
            .iter()
            .filter(|k| k.start <= off && off < k.start + k.data.len() as u64)
            .map(|k| &k.data[(off - k.start) as usize..])
            .max_by_key(|d| d.len())
    }
}

fn reason(r: impl Into<String>) -> ElfError {
    ElfError { reason: r.into() }
}

fn parse_header(data: &[u8]) -> Result<Header, ElfError> {
    match data.get(4).copied().map(elf::FileClass) {
        Some(elf::ELFCLASS32) => header_of::<FileHeader32<Endianness>>(data, ElfClass::Elf32),
        Some(elf::ELFCLASS64) => header_of::<FileHeader64<Endianness>>(data, ElfClass::Elf64),
        c => fail(format!("unknown ELF class {c:?}")),
    }
}

fn header_of<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class: ElfClass,
) -> Result<Header, ElfError> {
    let h = H::parse(data).map_err(|e| reason(format!("bad ELF header: {e}")))?;
    let endian = h
        .endian()
        .map_err(|e| reason(format!("bad ELF header: {e}")))?;
    if h.e_phnum(endian) == elf::PN_XNUM {
        return fail("extended program header counts (PN_XNUM) are not supported");
    }
    let phnum = u64::from(h.e_phnum(endian));
    let phentsize = u64::from(h.e_phentsize(endian));
    if phnum > 0 && phentsize != size_of::<H::ProgramHeader>() as u64 {
        return fail(format!("program header entries of {phentsize} bytes"));
    }
    let kind = match h.e_type(endian) {
        elf::ET_EXEC => ElfKind::Executable,
        elf::ET_DYN => ElfKind::SharedObject,
        _ => ElfKind::Other,
    };
    Ok(Header {
        class,
        endian,
        machine: h.e_machine(endian).0,
        osabi: h.e_ident().os_abi.0,
        flags: h.e_flags(endian).0,
        kind,
        phoff: h.e_phoff(endian).into(),
        phnum: if h.e_phoff(endian).into() == 0 {
            0
        } else {
            phnum
        },
        phentsize,
    })
}

fn parse_segments(h: &Header, data: &[u8]) -> Result<Vec<Segment>, ElfError> {
    match h.class {
        ElfClass::Elf32 => segments_of::<FileHeader32<Endianness>>(h, data),
        ElfClass::Elf64 => segments_of::<FileHeader64<Endianness>>(h, data),
    }
}

fn segments_of<H: FileHeader<Endian = Endianness>>(
    h: &Header,
    data: &[u8],
) -> Result<Vec<Segment>, ElfError> {
    let start = usize::try_from(h.phoff).map_err(|_| reason("phoff"))?;
    let rest = data
        .get(start..)
        .ok_or_else(|| reason("program headers past the kept prefix"))?;
    let count = usize::try_from(h.phnum).map_err(|_| reason("phnum"))?;
    let (table, _) = object::pod::slice_from_bytes::<H::ProgramHeader>(rest, count)
        .map_err(|()| reason("the program header table is truncated"))?;
    Ok(table
        .iter()
        .map(|p| Segment {
            kind: p.p_type(h.endian).0,
            offset: p.p_offset(h.endian).into(),
            vaddr: p.p_vaddr(h.endian).into(),
            filesz: p.p_filesz(h.endian).into(),
        })
        .collect())
}

fn parse_dynamic(h: &Header, data: &[u8]) -> Result<Dynamic, ElfError> {
    match h.class {
        ElfClass::Elf32 => dynamic_of::<FileHeader32<Endianness>>(h.endian, data),
        ElfClass::Elf64 => dynamic_of::<FileHeader64<Endianness>>(h.endian, data),
    }
}

/// The entries up to `DT_NULL` (or the end of the segment). As in `ld.so`, a later entry of a
/// single-valued tag replaces an earlier one.
fn dynamic_of<H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &[u8],
) -> Result<Dynamic, ElfError> {
    let count = data.len() / size_of::<H::Dyn>();
    let (entries, _) = object::pod::slice_from_bytes::<H::Dyn>(data, count)
        .map_err(|()| reason("the dynamic segment is truncated"))?;
    let mut d = Dynamic::default();
    for e in entries {
        let v = e.val(endian);
        match e.tag(endian) {
            elf::DT_NULL => break,
            elf::DT_NEEDED => d.needed.push(v),
            elf::DT_STRTAB => d.strtab = Some(v),
            elf::DT_STRSZ => d.strsz = Some(v),
            elf::DT_SONAME => d.soname = Some(v),
            elf::DT_RPATH => d.rpath = Some(v),
            elf::DT_RUNPATH => d.runpath = Some(v),
            elf::DT_FLAGS_1 => d.flags_1 = v,
            elf::DT_VERDEF => d.verdef = Some(v),
            elf::DT_VERDEFNUM => d.verdefnum = Some(v),
            elf::DT_VERNEED => d.verneed = Some(v),
            elf::DT_VERNEEDNUM => d.verneednum = Some(v),
            _ => {}
        }
    }
    Ok(d)
}

/// Reads a `T` at `off` in `data`.
fn pod_at<T: object::Pod>(data: &[u8], off: u64, what: &str) -> Result<T, ElfError> {
    let rest = usize::try_from(off)
        .ok()
        .and_then(|o| data.get(o..))
        .ok_or_else(|| reason(format!("{what} at {off} lies past the kept bytes")))?;
    object::pod::from_bytes::<T>(rest)
        .map(|(t, _)| *t)
        .map_err(|()| reason(format!("{what} at {off} is truncated")))
}

/// How many entries of a chain to read: the count the dynamic section gives, capped.
fn chain_limit(num: Option<u64>) -> usize {
    num.map_or(MAX_VERSION_ENTRIES, |n| {
        usize::try_from(n).map_or(MAX_VERSION_ENTRIES, |n| n.min(MAX_VERSION_ENTRIES))
    })
}

fn read_verdefs(
    endian: Endianness,
    data: &[u8],
    num: Option<u64>,
    string: &dyn Fn(u64) -> Result<String, ElfError>,
) -> Result<Vec<String>, ElfError> {
    let mut out = Vec::new();
    let mut off = 0u64;
    for _ in 0..chain_limit(num) {
        let vd: elf::Verdef<Endianness> = pod_at(data, off, "a version definition")?;
        let base = vd.vd_flags.get(endian).0 & elf::VER_FLG_BASE.0 != 0;
        if !base && vd.vd_cnt.get(endian) > 0 {
            let aux_off = off + u64::from(vd.vd_aux.get(endian));
            let aux: elf::Verdaux<Endianness> = pod_at(data, aux_off, "a version name")?;
            out.push(string(u64::from(aux.vda_name.get(endian)))?);
        }
        let next = vd.vd_next.get(endian);
        if next == 0 {
            break;
        }
        off += u64::from(next);
    }
    Ok(out)
}

fn read_verneeds(
    endian: Endianness,
    data: &[u8],
    num: Option<u64>,
    string: &dyn Fn(u64) -> Result<String, ElfError>,
) -> Result<Vec<VersionNeed>, ElfError> {
    let mut out = Vec::new();
    let mut off = 0u64;
    let mut total = 0usize;
    for _ in 0..chain_limit(num) {
        let vn: elf::Verneed<Endianness> = pod_at(data, off, "a version need")?;
        let file = string(u64::from(vn.vn_file.get(endian)))?;
        let mut versions = Vec::new();
        let mut aux_off = off + u64::from(vn.vn_aux.get(endian));
        for _ in 0..vn.vn_cnt.get(endian) {
            total += 1;
            if total > MAX_VERSION_ENTRIES {
                return fail("more than the cap of needed versions");
            }
            let a: elf::Vernaux<Endianness> = pod_at(data, aux_off, "a needed version")?;
            versions.push(NeededVersion {
                name: string(u64::from(a.vna_name.get(endian)))?,
                weak: a.vna_flags.get(endian).0 & elf::VER_FLG_WEAK.0 != 0,
            });
            let next = a.vna_next.get(endian);
            if next == 0 {
                break;
            }
            aux_off += u64::from(next);
        }
        out.push(VersionNeed { file, versions });
        let next = vn.vn_next.get(endian);
        if next == 0 {
            break;
        }
        off += u64::from(next);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "elf_tests.rs"]
mod tests;
