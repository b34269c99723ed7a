//! The dependency relations of an installed-package database, checked the way the package
//! manager itself would call them broken: [`dpkg`] (as `apt-get check`), [`apk`] (apk-tools
//! 2.x), [`rpm`] (as `rpm -V`'s dependency check).
//!
//! Why: after a rebase the merged database holds the application's packages on top of the new
//! base's; a package built against the old base may now depend on a version that is gone, or
//! be broken by a newer base package (`libssl3t64 : Breaks: libssl3 (< 3.5.9-1~deb13u1)`).
//!
//! PURE: records and headers in, [`Checked`] out. Bounded: providers are indexed by name, each
//! check has a work budget ([`MAX_WORK`] candidate comparisons), and at most [`MAX_PROBLEMS`]
//! problems (each with at most [`MAX_FOUND`] packages) and [`MAX_UNCHECKED`] notes are kept;
//! what the budget cuts off is named in [`Checked::unchecked`]. Nothing here panics on any
//! input: what does not parse is an `unchecked` note, never a problem.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use super::version::{
    apk_version_valid, dpkg_cmp, dpkg_parse, rpm_ds_matches, rpm_sense_str, ApkOp, Op,
    RPMSENSE_SENSEMASK,
};
use crate::pkgdb::rpm::{self as rpmdb, RpmDb};
use crate::pkgdb::rpmheader::{Header, Value};
use crate::pkgdb::{deb822, Db, Format, Record};

/// At most this many packages are listed in one [`Problem::found`] (the first ones in
/// database order).
pub const MAX_FOUND: usize = 16;
/// At most this many problems are kept; a note in [`Checked::unchecked`] counts the rest.
pub const MAX_PROBLEMS: usize = 4096;
/// At most this many notes are kept in [`Checked::unchecked`]; a last note counts the rest.
pub const MAX_UNCHECKED: usize = 256;
/// The work budget of one check: name look-ups plus candidate version comparisons (about a
/// tenth of a second of work in a release build). Real databases need a few hundred thousand
/// at most (a full Fedora install: some 3000 packages with 40 requires each, one or two
/// providers per name); past the budget the remaining relations are not checked, and
/// [`Checked::unchecked`] says so.
pub const MAX_WORK: u64 = 2_000_000;

/// One installed package, as a problem names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Installed {
    /// The package name.
    pub name: String,
    /// Its version as the database writes it (rpm: `[E:]V-R`).
    pub version: String,
    /// Its architecture; empty when the database gives none.
    pub arch: String,
    /// When the package is named for what it provides: that provide as written
    /// (`libz (= 1.2)`, `so:libz.so.1=1.3.1`, `osslite = 3.0.1-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provides: Option<String>,
}

impl Installed {
    fn new(name: &str, version: &str, arch: &str) -> Installed {
        Installed {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
            provides: None,
        }
    }
}

/// Which kind of relation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelationKind {
    /// dpkg `Depends:`, apk `D:` dependencies.
    Depends,
    /// dpkg `Pre-Depends:`.
    PreDepends,
    /// dpkg `Breaks:`.
    Breaks,
    /// dpkg `Conflicts:`, apk `!name` dependencies, rpm `Conflicts:`.
    Conflicts,
    /// rpm `Requires:`.
    Requires,
    /// dpkg's implicit multi-arch relations between the architectures of one package, as apt
    /// adds them: a `Multi-Arch: same` package needs the same version on every architecture;
    /// any other package can be installed for one architecture only.
    MultiArch,
}

impl fmt::Display for RelationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RelationKind::Depends => "Depends",
            RelationKind::PreDepends => "Pre-Depends",
            RelationKind::Breaks => "Breaks",
            RelationKind::Conflicts => "Conflicts",
            RelationKind::Requires => "Requires",
            RelationKind::MultiArch => "Multi-Arch:",
        })
    }
}

impl RelationKind {
    /// Whether the relation is met by what is installed (a dependency), rather than broken by
    /// it (a conflict).
    fn is_positive(self) -> bool {
        matches!(
            self,
            RelationKind::Depends | RelationKind::PreDepends | RelationKind::Requires
        )
    }
}

/// A relation of an installed package that what is installed breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The package whose relation fails.
    pub package: Installed,
    /// Which relation.
    pub relation: RelationKind,
    /// The clause as written in the database: `libssl3 (< 3.5.9-1~deb13u1)`,
    /// `libc6 (>= 2.38) | libc6.1`, `so:libc.musl-x86_64.so.1`, `osslite >= 3.0`.
    pub wanted: String,
    /// Dependencies: the installed packages of that name (or providing it) that do not meet it
    /// (by version or architecture); empty when nothing installed provides it at all.
    /// Conflicts and breaks: the installed packages it matches. At most [`MAX_FOUND`].
    pub found: Vec<Installed>,
}

impl fmt::Display for Problem {
    /// One line: `libssl3t64 3.5.1-1 Breaks libssl3 (< 3.5.9-1~deb13u1): libssl3
    /// 3.0.17-1~deb12u2 is installed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.package;
        write!(
            f,
            "{} {} {} {}: ",
            p.name, p.version, self.relation, self.wanted
        )?;
        if self.found.is_empty() {
            return f.write_str(if self.relation.is_positive() {
                "not installed, and nothing installed provides it"
            } else {
                "nothing installed matches it"
            });
        }
        for (i, x) in self.found.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", x.name, x.version)?;
            let neutral = |a: &str| a.is_empty() || a == "all" || a == "noarch";
            if x.arch != p.arch && !neutral(&x.arch) {
                write!(f, " ({})", x.arch)?;
            }
            if let Some(provides) = &x.provides {
                write!(f, " providing {provides}")?;
            }
        }
        f.write_str(if self.found.len() == 1 {
            " is installed"
        } else {
            " are installed"
        })
    }
}

/// The outcome of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// The broken relations, in database order.
    pub problems: Vec<Problem>,
    /// Relations not checked, each with why (a rich rpm dependency, a clause that does not
    /// parse, the work budget), and what else the check could not judge.
    pub unchecked: Vec<String>,
}

/// Collects the outcome within the caps, and counts the work.
struct Out {
    checked: Checked,
    more_problems: usize,
    more_unchecked: usize,
    work: u64,
    out_of_budget: usize,
}

impl Out {
    fn new() -> Out {
        Out {
            checked: Checked::default(),
            more_problems: 0,
            more_unchecked: 0,
            work: 0,
            out_of_budget: 0,
        }
    }

    /// Spends `n` units of work; false once the budget is gone.
    fn spend(&mut self, n: u64) -> bool {
        self.work = self.work.saturating_add(n);
        self.work <= MAX_WORK
    }

    fn problem(&mut self, p: Problem) {
        if self.checked.problems.len() < MAX_PROBLEMS {
            self.checked.problems.push(p);
        } else {
            self.more_problems += 1;
        }
    }

    fn unchecked(&mut self, note: String) {
        if self.checked.unchecked.len() < MAX_UNCHECKED {
            self.checked.unchecked.push(note);
        } else {
            self.more_unchecked += 1;
        }
    }

    fn finish(mut self) -> Checked {
        let u = &mut self.checked.unchecked;
        if self.out_of_budget > 0 {
            u.push(format!(
                "{} relations not checked: the check's work budget ({MAX_WORK} comparisons) ran out",
                self.out_of_budget
            ));
        }
        if self.more_problems > 0 {
            u.push(format!(
                "{} more problems not listed (the first {MAX_PROBLEMS} are)",
                self.more_problems
            ));
        }
        if self.more_unchecked > 0 {
            u.push(format!(
                "{} more unchecked relations not listed",
                self.more_unchecked
            ));
        }
        self.checked
    }
}

/// A note's quote of database text: at most 120 characters.
fn quote(s: &str) -> String {
    let mut q: String = s.chars().take(120).collect();
    if q.len() < s.len() {
        q.push('…');
    }
    format!("{q:?}")
}

// =============================================================================================
// dpkg

/// dpkg's `Multi-Arch:` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

/// One alternative of a relation clause: `name[:arch] [(op version)]`.
#[derive(Clone, Debug)]
struct DebAlt<'a> {
    name: &'a str,
    arch: Option<&'a str>,
    constraint: Option<(Op, &'a str)>,
}

/// The fields of a stanza the checks read.
#[derive(Default)]
struct DebFields {
    status: Option<String>,
    multi_arch: Option<String>,
    depends: Option<String>,
    pre_depends: Option<String>,
    breaks: Option<String>,
    conflicts: Option<String>,
    provides: Option<String>,
}

/// Reads the relation fields of a stanza (field names case-insensitively, continuation lines
/// joined). A record's `text` is the stanza exactly as dpkg wrote it.
fn deb_fields(text: &str) -> DebFields {
    let mut f = DebFields::default();
    let mut current: Option<&mut Option<String>> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            // A line break is whitespace: the clause text stays on one line.
            if let Some(Some(v)) = current.as_mut().map(|c| c.as_mut()) {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            current = None;
            continue;
        };
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "status" => &mut f.status,
            "multi-arch" => &mut f.multi_arch,
            "depends" => &mut f.depends,
            "pre-depends" => &mut f.pre_depends,
            "breaks" => &mut f.breaks,
            "conflicts" => &mut f.conflicts,
            "provides" => &mut f.provides,
            _ => {
                current = None;
                continue;
            }
        };
        *slot = Some(value.trim().to_string());
        current = Some(slot);
    }
    f
}

/// Why a relation (a dpkg alternative, an apk dependency token) does not parse; becomes a
/// note of the verdict (the relation is not checked).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum SyntaxError {
    #[error("missing package name")]
    MissingName,
    #[error("invalid package name {}", quote(.0))]
    InvalidName(String),
    #[error("missing architecture name after ':'")]
    MissingArch,
    #[error("bad version relationship {0}")]
    BadRelationship(String),
    #[error("version unterminated")]
    Unterminated,
    #[error("version followed by something other than ')'")]
    AfterVersion,
    #[error("version {}: {source}", quote(version))]
    Version {
        version: String,
        source: super::version::DpkgVersionError,
    },
    #[error("{} after the package name", quote(.0))]
    Trailing(String),
    #[error("no version after the operator in {}", quote(.0))]
    NoVersion(String),
    #[error("bad operator in {}", quote(.0))]
    BadOperator(String),
    #[error("invalid version {}", quote(.0))]
    InvalidVersion(String),
    #[error("no package name in {}", quote(.0))]
    NoName(String),
}

/// Parses one alternative the way dpkg's `f_dependency` does (whitespace anywhere between the
/// parts; the obsolete `<`/`>`; a missing operator is dpkg's implicit `=`).
fn parse_deb_alt(s: &str) -> Result<DebAlt<'_>, SyntaxError> {
    let s = s.trim();
    let name_end = s
        .find(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | '[' | '<'))
        .unwrap_or(s.len());
    let name = &s[..name_end];
    if name.is_empty() {
        return Err(SyntaxError::MissingName);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b))
    {
        return Err(SyntaxError::InvalidName(name.to_string()));
    }
    let mut rest = &s[name_end..];
    let mut arch = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(r.len());
        if end == 0 {
            return Err(SyntaxError::MissingArch);
        }
        arch = Some(&r[..end]);
        rest = &r[end..];
    }
    rest = rest.trim_start();
    let mut constraint = None;
    if let Some(r) = rest.strip_prefix('(') {
        let r = r.trim_start();
        let b = r.as_bytes();
        // dpkg: `<=`, `>=`, `<<`, `>>`, `=`; a lone `<` or `>` is the obsolete `<=`/`>=`;
        // no operator at all is an implicit `=`.
        let (op, consumed) = match (b.first(), b.get(1)) {
            (Some(&c1 @ (b'<' | b'>')), c2) => {
                let le = if c1 == b'<' { Op::Le } else { Op::Ge };
                match c2 {
                    Some(b'=') => (le, 2),
                    Some(&c2) if c2 == c1 => (if c1 == b'<' { Op::Lt } else { Op::Gt }, 2),
                    Some(b'<' | b'>') => {
                        return Err(SyntaxError::BadRelationship(r[..2].to_string()));
                    }
                    _ => (le, 1),
                }
            }
            (Some(b'='), _) => (Op::Eq, 1),
            _ => (Op::Eq, 0),
        };
        let r = r[consumed..].trim_start();
        let vend = r
            .find(|c: char| c.is_whitespace() || c == ')' || c == '(')
            .unwrap_or(r.len());
        let version = &r[..vend];
        let after = r[vend..].trim_start();
        let Some(after) = after.strip_prefix(')') else {
            return Err(if after.is_empty() {
                SyntaxError::Unterminated
            } else {
                SyntaxError::AfterVersion
            });
        };
        dpkg_parse(version).map_err(|source| SyntaxError::Version {
            version: version.to_string(),
            source,
        })?;
        constraint = Some((op, version));
        rest = after.trim_start();
    }
    if !rest.is_empty() {
        return Err(SyntaxError::Trailing(rest.to_string()));
    }
    Ok(DebAlt {
        name,
        arch,
        constraint,
    })
}

/// A relation field: clauses separated by `,`, alternatives by `|`. An empty field has no
/// clauses; an empty clause is an error (dpkg's "missing package name").
fn parse_deb_field(value: &str) -> Vec<(&str, Result<Vec<DebAlt<'_>>, SyntaxError>)> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value
        .split(',')
        .map(|clause| {
            let clause = clause.trim();
            (clause, clause.split('|').map(parse_deb_alt).collect())
        })
        .collect()
}

/// One package of a dpkg status database.
struct DebPkg<'a> {
    record: &'a Record,
    /// Its architecture for matching; empty for `all` (and none), which match as the native
    /// one (`DebIndex::arch_of`).
    arch: &'a str,
    multi_arch: MultiArch,
    fields: DebFields,
}

impl DebPkg<'_> {
    fn installed(&self) -> Installed {
        Installed::new(&self.record.name, &self.record.version, &self.record.arch)
    }
}

/// A package that can meet (or match) an alternative: a real package or a provide.
#[derive(Clone, Copy, PartialEq, Eq)]
struct DebCandidate {
    pkg: usize,
    /// The index into the package's provides; `None` for the package itself.
    provide: Option<usize>,
}

struct DebIndex<'a> {
    pkgs: Vec<DebPkg<'a>>,
    native: String,
    /// Present packages by name.
    by_name: HashMap<&'a str, Vec<usize>>,
    /// Provides of present packages: name -> (package, index in `provides`).
    providers: HashMap<String, Vec<(usize, usize)>>,
    /// Each package's parsed provides (name, version when `=`, the text).
    provides: Vec<Vec<(String, Option<String>, String)>>,
}

/// Whether a package of `arch` and `multi_arch` can meet an alternative with qualifier
/// `qualifier` of a package of `dep_arch`, as dpkg's `deparchsatisfied` and apt's cache
/// decide it: no qualifier: the same architecture (`all` counts as the native one), or
/// `Multi-Arch: foreign`; `:any`: only `Multi-Arch: allowed` (even of the same architecture);
/// `:native` or `:ARCH`: exactly that architecture. For conflicts and breaks every
/// architecture matches unless one is named.
fn deb_arch_ok(
    negative: bool,
    qualifier: Option<&str>,
    dep_arch: &str,
    arch: &str,
    multi_arch: MultiArch,
    native: &str,
) -> bool {
    match qualifier {
        None if negative => true,
        None => multi_arch == MultiArch::Foreign || arch == dep_arch,
        Some("any") => negative || multi_arch == MultiArch::Allowed,
        Some("native") => arch == native,
        Some("all") => arch == native,
        Some(q) => arch == q,
    }
}

fn deb_version_ok(constraint: Option<(Op, &str)>, version: Option<&str>) -> bool {
    match (constraint, version) {
        (None, _) => true,
        // An unversioned provide never meets (or matches) a versioned relation.
        (Some(_), None) => false,
        (Some((op, wanted)), Some(v)) => op.holds(dpkg_cmp(v, wanted)),
    }
}

/// Checks the relations of a dpkg status database (`Format::DpkgStatus`; also a distroless
/// `status.d` stanza set parsed as one) the way `apt-get check` does:
///
/// - **Which packages are installed**: those whose `Status:` third word is anything but
///   `not-installed` or `config-files` (`half-installed`, `unpacked`, `half-configured`,
///   `triggers-awaited`, `triggers-pending`, `installed`), whatever the first two words say:
///   apt's status parser gives exactly those a current version, and its dependency checks look
///   only at current versions (dpkg itself, when configuring, wants dependencies configured;
///   that is `dpkg --audit`'s business, not a relation). A stanza without `Status:` is
///   installed: distroless `status.d` files have none, and a real status file always has one.
///   Only installed packages' relations are checked, and only installed packages meet or
///   match them. (apt also refuses a `half-installed` package as needing a reinstall; that is
///   a package state, not a relation, and not reported here.)
/// - `Depends` and `Pre-Depends`: each clause needs one alternative met by an installed package
///   of that name or by a `Provides:` of one, with the version constraint met (a provide meets
///   a versioned constraint only with a version, `foo (= 1.2)`), and dpkg's architecture rules
///   (`deparchsatisfied`, which apt's cache agrees with): without a qualifier the same
///   architecture (`all` counts as the native one) or a `Multi-Arch: foreign` package of any;
///   `:any` only a `Multi-Arch: allowed` package (of any architecture, but **not** a plain
///   package of the same one); `:native` and `:ARCH` exactly that architecture. A provide is
///   judged by its provider's architecture and `Multi-Arch`.
/// - `Breaks` and `Conflicts`: a clause is broken by any other installed package of that name
///   (any architecture unless qualified) or providing it, whose version matches; a package
///   never breaks itself, nor (apt's rule) another architecture of itself when it is
///   `Multi-Arch: same`, nor anything through a provide of its own name.
/// - Implicit multi-arch relations ([`RelationKind::MultiArch`]): apt's cache gives a
///   `Multi-Arch: same` package `Breaks: itself:other-arch (!= its version)` and every other
///   package `Conflicts: itself:other-arch`.
///
/// Field names are case-insensitive, continuation lines and whitespace are free; a clause that
/// does not parse is an `unchecked` note (apt refuses the whole file then).
pub fn dpkg(db: &Db) -> Checked {
    let mut out = Out::new();
    if db.format != Format::DpkgStatus {
        out.unchecked(format!("{} is not a dpkg status database", db.format));
        return out.finish();
    }
    let index = deb_index(db, &mut out);
    let mut cache: HashMap<(&str, &str), Option<Vec<DebCandidate>>> = HashMap::new();
    for (i, p) in index.pkgs.iter().enumerate() {
        if !deb_present(p, &mut out) {
            continue;
        }
        let fields = [
            (RelationKind::PreDepends, &p.fields.pre_depends),
            (RelationKind::Depends, &p.fields.depends),
            (RelationKind::Breaks, &p.fields.breaks),
            (RelationKind::Conflicts, &p.fields.conflicts),
        ];
        for (kind, value) in fields {
            let Some(value) = value else { continue };
            for (clause, alts) in parse_deb_field(value) {
                let alts = match alts {
                    Ok(a) => a,
                    Err(why) => {
                        out.unchecked(deb_note(p, kind, clause, &why));
                        continue;
                    }
                };
                if !out.spend(1) {
                    out.out_of_budget += 1;
                    continue;
                }
                if kind.is_positive() {
                    let failing = match cache.get(&(clause, p.arch)) {
                        Some(r) => r.clone(),
                        None => {
                            let r = deb_unmet(&index, p.arch, &alts, &mut out);
                            cache.insert((clause, p.arch), r.clone());
                            r
                        }
                    };
                    if let Some(found) = failing {
                        out.problem(Problem {
                            package: p.installed(),
                            relation: kind,
                            wanted: clause.to_string(),
                            found: found.iter().map(|c| deb_found(&index, *c)).collect(),
                        });
                    }
                } else {
                    if alts.len() != 1 {
                        let why = format!("alternatives ('|') are not allowed in {kind}");
                        out.unchecked(deb_note(p, kind, clause, &why));
                        continue;
                    }
                    let found = deb_matches(&index, i, &alts[0], &mut out);
                    if !found.is_empty() {
                        out.problem(Problem {
                            package: p.installed(),
                            relation: kind,
                            wanted: clause.to_string(),
                            found: found.iter().map(|c| deb_found(&index, *c)).collect(),
                        });
                    }
                }
            }
        }
    }
    deb_multi_arch(&index, &mut out);
    out.finish()
}

fn deb_note(p: &DebPkg, kind: RelationKind, clause: &str, why: &dyn fmt::Display) -> String {
    format!(
        "{} {}: {kind} {} does not parse: {why}",
        p.record.name,
        p.record.version,
        quote(clause)
    )
}

/// Whether a package counts as installed (see [`dpkg`]); a Status apt would not read is a
/// note, and the package counts as installed.
fn deb_present(p: &DebPkg, out: &mut Out) -> bool {
    let Some(status) = &p.fields.status else {
        return true;
    };
    let words: Vec<&str> = status.split_whitespace().collect();
    const STATES: [&str; 8] = [
        "not-installed",
        "config-files",
        "half-installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
        "installed",
    ];
    match words.as_slice() {
        [_, _, state] if STATES.contains(state) => {
            !matches!(*state, "not-installed" | "config-files")
        }
        _ => {
            out.unchecked(format!(
                "{} {}: Status {} is not 'want flag state': counted as installed",
                p.record.name,
                p.record.version,
                quote(status)
            ));
            true
        }
    }
}

fn deb_index<'a>(db: &'a Db, out: &mut Out) -> DebIndex<'a> {
    let native = deb822::native_arch(db.records.iter());
    let mut pkgs = Vec::with_capacity(db.records.len());
    for r in &db.records {
        let fields = deb_fields(std::str::from_utf8(&r.text).unwrap_or(""));
        let multi_arch = match fields.multi_arch.as_deref() {
            Some("same") => MultiArch::Same,
            Some("foreign") => MultiArch::Foreign,
            Some("allowed") => MultiArch::Allowed,
            _ => MultiArch::No,
        };
        let arch = if r.arch.is_empty() || r.arch == "all" {
            // `all` (or none) matches as the native architecture: `DebIndex::arch_of`.
            ""
        } else {
            r.arch.as_str()
        };
        pkgs.push(DebPkg {
            record: r,
            arch,
            multi_arch,
            fields,
        });
    }
    let mut index = DebIndex {
        pkgs,
        native,
        by_name: HashMap::new(),
        providers: HashMap::new(),
        provides: Vec::new(),
    };
    let mut provides = Vec::with_capacity(index.pkgs.len());
    let mut present = Vec::with_capacity(index.pkgs.len());
    for p in &index.pkgs {
        let mut silent = Out::new();
        present.push(deb_present(p, &mut silent));
        let mut list = Vec::new();
        if let Some(value) = &p.fields.provides {
            for (clause, alts) in parse_deb_field(value) {
                let alt = match alts {
                    Ok(a) if a.len() == 1 => a[0].clone(),
                    Ok(_) => {
                        let why = "alternatives ('|') are not allowed in Provides";
                        out.unchecked(format!(
                            "{} {}: Provides {}: {why}",
                            p.record.name,
                            p.record.version,
                            quote(clause)
                        ));
                        continue;
                    }
                    Err(why) => {
                        out.unchecked(format!(
                            "{} {}: Provides {} does not parse: {why}",
                            p.record.name,
                            p.record.version,
                            quote(clause)
                        ));
                        continue;
                    }
                };
                let version = match alt.constraint {
                    None => None,
                    Some((Op::Eq, v)) => Some(v.to_string()),
                    Some(_) => {
                        // apt: "Ignoring non-equal Provides".
                        out.unchecked(format!(
                            "{} {}: Provides {} is not '=': ignored, as apt ignores it",
                            p.record.name,
                            p.record.version,
                            quote(clause)
                        ));
                        continue;
                    }
                };
                list.push((alt.name.to_string(), version, clause.to_string()));
            }
        }
        provides.push(list);
    }
    for (i, p) in index.pkgs.iter().enumerate() {
        if !present[i] {
            continue;
        }
        index
            .by_name
            .entry(p.record.name.as_str())
            .or_default()
            .push(i);
        for (j, (name, _, _)) in provides[i].iter().enumerate() {
            index
                .providers
                .entry(name.clone())
                .or_default()
                .push((i, j));
        }
    }
    index.provides = provides;
    index
}

impl DebIndex<'_> {
    /// A package's architecture for matching (`all` and none: the native one).
    fn arch_of(&self, i: usize) -> &str {
        match self.pkgs[i].arch {
            "" => &self.native,
            a => a,
        }
    }

    fn arch_for(&self, dep_arch: &str) -> String {
        if dep_arch.is_empty() {
            self.native.clone()
        } else {
            dep_arch.to_string()
        }
    }
}

/// `None` when some alternative is met; otherwise the candidates that failed (at most
/// [`MAX_FOUND`]).
fn deb_unmet(
    index: &DebIndex,
    dep_arch: &str,
    alts: &[DebAlt],
    out: &mut Out,
) -> Option<Vec<DebCandidate>> {
    let dep_arch = index.arch_for(dep_arch);
    let mut failed = Vec::new();
    for alt in alts {
        let qualifier = alt.arch;
        let real = index.by_name.get(alt.name).map_or(&[][..], |v| v);
        for &c in real {
            if !out.spend(1) {
                // Out of budget: counted as met rather than guessed.
                out.out_of_budget += 1;
                return None;
            }
            let p = &index.pkgs[c];
            let ok = deb_arch_ok(
                false,
                qualifier,
                &dep_arch,
                index.arch_of(c),
                p.multi_arch,
                &index.native,
            ) && deb_version_ok(alt.constraint, Some(&p.record.version));
            if ok {
                return None;
            }
            if failed.len() < MAX_FOUND {
                failed.push(DebCandidate {
                    pkg: c,
                    provide: None,
                });
            }
        }
        let provs = index.providers.get(alt.name).map_or(&[][..], |v| v);
        for &(c, j) in provs {
            if !out.spend(1) {
                out.out_of_budget += 1;
                return None;
            }
            let p = &index.pkgs[c];
            let version = index.provides[c][j].1.as_deref();
            let ok = deb_arch_ok(
                false,
                qualifier,
                &dep_arch,
                index.arch_of(c),
                p.multi_arch,
                &index.native,
            ) && deb_version_ok(alt.constraint, version);
            if ok {
                return None;
            }
            if failed.len() < MAX_FOUND {
                failed.push(DebCandidate {
                    pkg: c,
                    provide: Some(j),
                });
            }
        }
    }
    Some(failed)
}

/// The installed packages (other than `me`) a Breaks/Conflicts alternative matches.
fn deb_matches(index: &DebIndex, me: usize, alt: &DebAlt, out: &mut Out) -> Vec<DebCandidate> {
    let mut found = Vec::new();
    let my = &index.pkgs[me];
    let my_name = my.record.name.as_str();
    let real = index.by_name.get(alt.name).map_or(&[][..], |v| v);
    for &c in real {
        if !out.spend(1) {
            out.out_of_budget += 1;
            break;
        }
        // apt: a package never conflicts with itself, nor with another architecture of itself
        // when it is Multi-Arch: same.
        if c == me || (alt.name == my_name && my.multi_arch == MultiArch::Same) {
            continue;
        }
        let p = &index.pkgs[c];
        if deb_arch_ok(
            true,
            alt.arch,
            index.arch_of(me),
            index.arch_of(c),
            p.multi_arch,
            &index.native,
        ) && deb_version_ok(alt.constraint, Some(&p.record.version))
            && found.len() < MAX_FOUND
        {
            found.push(DebCandidate {
                pkg: c,
                provide: None,
            });
        }
    }
    let provs = index.providers.get(alt.name).map_or(&[][..], |v| v);
    for &(c, j) in provs {
        if !out.spend(1) {
            out.out_of_budget += 1;
            break;
        }
        // apt: provides never apply against the same package name (any architecture).
        if index.pkgs[c].record.name == my_name {
            continue;
        }
        let p = &index.pkgs[c];
        if deb_arch_ok(
            true,
            alt.arch,
            index.arch_of(me),
            index.arch_of(c),
            p.multi_arch,
            &index.native,
        ) && deb_version_ok(alt.constraint, index.provides[c][j].1.as_deref())
            && found.len() < MAX_FOUND
        {
            found.push(DebCandidate {
                pkg: c,
                provide: Some(j),
            });
        }
    }
    found
}

fn deb_found(index: &DebIndex, c: DebCandidate) -> Installed {
    let mut x = index.pkgs[c.pkg].installed();
    x.provides = c.provide.map(|j| index.provides[c.pkg][j].2.clone());
    x
}

/// apt's implicit relations between the architectures of one package name.
fn deb_multi_arch(index: &DebIndex, out: &mut Out) {
    /// More architectures of one name than any system has: not checked.
    const MAX_ARCHS: usize = 64;
    for (i, p) in index.pkgs.iter().enumerate() {
        let Some(same_name) = index.by_name.get(p.record.name.as_str()) else {
            continue;
        };
        if same_name.len() < 2 || !same_name.contains(&i) {
            continue;
        }
        if same_name.len() > MAX_ARCHS {
            if same_name.first() == Some(&i) {
                out.unchecked(format!(
                    "{}: {} architectures installed: multi-arch relations not checked",
                    p.record.name,
                    same_name.len()
                ));
            }
            continue;
        }
        let mut found = Vec::new();
        for &c in same_name {
            if c == i || index.arch_of(c) == index.arch_of(i) || !out.spend(1) {
                continue;
            }
            let broken = match p.multi_arch {
                MultiArch::Same => {
                    dpkg_cmp(&index.pkgs[c].record.version, &p.record.version)
                        != std::cmp::Ordering::Equal
                }
                _ => true,
            };
            if broken {
                found.push(index.pkgs[c].installed());
            }
        }
        if !found.is_empty() {
            let wanted = match p.multi_arch {
                MultiArch::Same => "same (one version on every architecture)",
                MultiArch::Foreign => "foreign (one architecture at a time)",
                MultiArch::Allowed => "allowed (one architecture at a time)",
                MultiArch::No => "no (one architecture at a time)",
            };
            out.problem(Problem {
                package: p.installed(),
                relation: RelationKind::MultiArch,
                wanted: wanted.to_string(),
                found,
            });
        }
    }
}

// =============================================================================================
// apk

/// One apk dependency token: `[!]name[@tag][op version]`.
#[derive(Clone, Debug)]
struct ApkDep<'a> {
    conflict: bool,
    name: &'a str,
    /// `None`: any version (apk's `APK_DEPMASK_ANY`).
    constraint: Option<(ApkOp, &'a str)>,
}

/// Parses a token as apk-tools 2.x `apk_blob_pull_dep` does.
fn parse_apk_dep(token: &str) -> Result<ApkDep<'_>, SyntaxError> {
    let (conflict, body) = match token.strip_prefix('!') {
        Some(b) => (true, b),
        None => (false, token),
    };
    let is_op = |c: char| matches!(c, '<' | '>' | '=' | '~');
    let (name, constraint) = match body.find(is_op) {
        None => (body, None),
        Some(at) => {
            let ops = &body[at..];
            let op_len = ops
                .find(|c: char| !is_op(c))
                .ok_or_else(|| SyntaxError::NoVersion(token.to_string()))?;
            let op = ApkOp::parse(&ops[..op_len])
                .ok_or_else(|| SyntaxError::BadOperator(token.to_string()))?;
            let version = &ops[op_len..];
            if !op.is_checksum() && !apk_version_valid(version) {
                return Err(SyntaxError::InvalidVersion(version.to_string()));
            }
            (&body[..at], Some((op, version)))
        }
    };
    // A repository tag (`name@edge`) does not change what is installed.
    let name = name.split('@').next().unwrap_or("");
    if name.is_empty() {
        return Err(SyntaxError::NoName(token.to_string()));
    }
    Ok(ApkDep {
        conflict,
        name,
        constraint,
    })
}

/// One package of apk's installed database.
struct ApkPkg<'a> {
    record: &'a Record,
    checksum: String,
    depends: Vec<String>,
    /// `p:` provides: (name, version, token).
    provides: Vec<(String, Option<String>, String)>,
}

/// Whether an installed package (its version, or a provide's) meets the dependency, as
/// `apk_dep_is_materialized` / `apk_dep_is_provided` decide it (ignoring `!`).
fn apk_meets(dep: &ApkDep, version: Option<&str>, checksum: &str) -> bool {
    match dep.constraint {
        None => true,
        Some((op, wanted)) if op.is_checksum() => checksum == wanted,
        // A provide without a version meets only unversioned dependencies.
        Some((op, wanted)) => version.is_some_and(|v| op.matches(v, wanted)),
    }
}

/// Checks the dependencies of apk's installed database (`Format::ApkInstalled`) as apk-tools
/// 2.x reads them: each package's `D:` tokens (`name`, `name>=1.2`, `name=1.2-r0`,
/// `name~1.2`, `name><Q1checksum`, `so:libc.musl-x86_64.so.1`, `cmd:sh`, `pc:zlib`, ...) must
/// be met by an installed package of that name (`V:`) or a `p:` provide of one
/// (`so:libz.so.1=1.3.1`, `cmd:foo=1.0`; a provide without a version meets only unversioned
/// dependencies), and no other installed package may match a `!name` conflict. A token apk
/// cannot read makes apk ignore it and the rest of the line; so does this check, with a note.
pub fn apk(db: &Db) -> Checked {
    let mut out = Out::new();
    if db.format != Format::ApkInstalled {
        out.unchecked(format!("{} is not apk's installed database", db.format));
        return out.finish();
    }
    let mut pkgs = Vec::with_capacity(db.records.len());
    for r in &db.records {
        let mut p = ApkPkg {
            record: r,
            checksum: String::new(),
            depends: Vec::new(),
            provides: Vec::new(),
        };
        for line in std::str::from_utf8(&r.text).unwrap_or("").lines() {
            if let Some(v) = line.strip_prefix("C:") {
                p.checksum = v.to_string();
            } else if let Some(v) = line.strip_prefix("D:") {
                p.depends.extend(
                    v.split([' ', '\n'])
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
            } else if let Some(v) = line.strip_prefix("p:") {
                for token in v.split([' ', '\n']).filter(|t| !t.is_empty()) {
                    match parse_apk_dep(token) {
                        Ok(d) => p.provides.push((
                            d.name.to_string(),
                            d.constraint.map(|(_, v)| v.to_string()),
                            token.to_string(),
                        )),
                        Err(why) => {
                            out.unchecked(format!(
                                "{} {}: provide {} does not parse ({why}): it and the rest of the line are ignored, as apk ignores them",
                                r.name,
                                r.version,
                                quote(token)
                            ));
                            break;
                        }
                    }
                }
            }
        }
        pkgs.push(p);
    }
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut providers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        by_name.entry(p.record.name.as_str()).or_default().push(i);
        for (j, (name, _, _)) in p.provides.iter().enumerate() {
            providers.entry(name.as_str()).or_default().push((i, j));
        }
    }
    let installed = |c: usize, provide: Option<usize>| {
        let p = &pkgs[c];
        let mut x = Installed::new(&p.record.name, &p.record.version, &p.record.arch);
        x.provides = provide.map(|j| p.provides[j].2.clone());
        x
    };
    for (i, p) in pkgs.iter().enumerate() {
        for (k, token) in p.depends.iter().enumerate() {
            let dep = match parse_apk_dep(token) {
                Ok(d) => d,
                Err(why) => {
                    out.unchecked(format!(
                        "{} {}: dependency {} does not parse ({why}): it and the {} after it are not checked, as apk ignores them",
                        p.record.name,
                        p.record.version,
                        quote(token),
                        p.depends.len() - k - 1
                    ));
                    break;
                }
            };
            if !out.spend(1) {
                out.out_of_budget += 1;
                continue;
            }
            let real = by_name.get(dep.name).map_or(&[][..], |v| v);
            let provs = providers.get(dep.name).map_or(&[][..], |v| v);
            let mut found = Vec::new();
            let mut met = false;
            let mut exhausted = false;
            // A package of that name is judged by its own version; of a provider, apk's
            // conflict check (apk_dep_analyze) reads only its first provide of the name.
            let mut seen = HashSet::new();
            let candidates = real
                .iter()
                .map(|&c| (c, None))
                .chain(provs.iter().map(|&(c, j)| (c, Some(j))));
            for (c, provide) in candidates {
                if dep.conflict {
                    let named = pkgs[c].record.name == dep.name;
                    if c == i || (provide.is_some() && (named || !seen.insert(c))) {
                        continue;
                    }
                } else if met {
                    break;
                }
                if !out.spend(1) {
                    exhausted = true;
                    break;
                }
                let q = &pkgs[c];
                let version = match provide {
                    None => Some(q.record.version.as_str()),
                    Some(j) => q.provides[j].1.as_deref(),
                };
                let meets = apk_meets(&dep, version, &q.checksum);
                met |= meets;
                // Conflicts list what they match; dependencies what fails them.
                if meets == dep.conflict && found.len() < MAX_FOUND {
                    found.push(installed(c, provide));
                }
            }
            if exhausted {
                out.out_of_budget += 1;
                continue;
            }
            let broken = if dep.conflict { met } else { !met };
            if broken {
                out.problem(Problem {
                    package: installed(i, None),
                    relation: if dep.conflict {
                        RelationKind::Conflicts
                    } else {
                        RelationKind::Depends
                    },
                    wanted: token.clone(),
                    found,
                });
            }
        }
    }
    out.finish()
}

// =============================================================================================
// rpm

/// `RPMSENSE_MISSINGOK`: a weak dependency, never unsatisfied.
const RPMSENSE_MISSINGOK: u32 = 1 << 19;
/// `RPMSENSE_RPMLIB`: an `rpmlib(...)` feature of rpm itself.
const RPMSENSE_RPMLIB: u32 = 1 << 24;

/// A header's dependency list: (name, flags, EVR) per entry; flags and EVR are `None` when the
/// header lacks those arrays (rpm before 3.0.2: then every comparison matches).
struct RpmDeps<'a> {
    names: Vec<&'a [u8]>,
    flags: Option<&'a [u32]>,
    versions: Option<Vec<&'a [u8]>>,
}

impl<'a> RpmDeps<'a> {
    fn read(h: &'a Header, name: u32, flags: u32, version: u32) -> RpmDeps<'a> {
        let strings = |tag| match h.get(tag) {
            Some(Value::Strings(s)) => Some(s.iter().map(Vec::as_slice).collect::<Vec<_>>()),
            _ => None,
        };
        RpmDeps {
            names: strings(name).unwrap_or_default(),
            flags: h.u32s(flags),
            versions: strings(version),
        }
    }

    /// Entry `i`: name, flags, EVR; `None` flags/EVR as [`RpmDeps`] says.
    fn get(&self, i: usize) -> (&'a [u8], Option<u32>, Option<&'a [u8]>) {
        let flags = self.flags.map(|f| f.get(i).copied().unwrap_or(0));
        let version = self
            .versions
            .as_ref()
            .map(|v| v.get(i).copied().unwrap_or(&[][..]));
        (self.names[i], flags, version)
    }
}

/// rpm's dependency text (`rpmdsDNEVR` without the tag letter): `name >= 1:2.0-1`.
fn rpm_dep_text(name: &[u8], flags: u32, evr: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let op = rpm_sense_str(flags);
    if op.is_empty() || evr.is_empty() {
        name.into_owned()
    } else {
        format!("{name} {op} {}", String::from_utf8_lossy(evr))
    }
}

/// `rpmdsCompare` of a provide with a dependency, with the header-level rule that a header
/// without flags or versions matches everything.
fn rpm_provide_matches(
    provide: (Option<u32>, Option<&[u8]>),
    dep_flags: u32,
    dep_evr: &[u8],
) -> bool {
    let (Some(pf), Some(pv)) = provide else {
        return true;
    };
    rpm_ds_matches(
        pf,
        &String::from_utf8_lossy(pv),
        dep_flags,
        &String::from_utf8_lossy(dep_evr),
    )
}

/// Checks the requires and conflicts of an rpm database as `rpm -V` (`verifyDependencies`,
/// which runs `rpmtsCheck` on each installed header) does:
///
/// - A `Requires:` is met by a package whose `Provides:` of that name overlaps it
///   ([`rpm_ds_matches`]: an unversioned provide meets a versioned require, unlike dpkg); a
///   file require (`/bin/sh`) also by a package owning the file (file states: only normal and
///   net-shared files count, as rpm's installed-files index has it) or, since an image may
///   hold the file outside any package, by `file_exists(path)`.
/// - Skipped as rpm skips them for installed packages: `rpmlib(...)` requires
///   (`RPMSENSE_RPMLIB`, checked against rpm itself), install-time-only requires (`%pre`,
///   `%post`, `%pretrans`, `%posttrans`, keyring: rpm's `isTransientReq`), and weak ones
///   (`RPMSENSE_MISSINGOK`). Rich dependencies (`(a or b)`) are listed in
///   [`Checked::unchecked`].
/// - A `Conflicts:` is broken by another package providing (or, for a path, owning) what it
///   names, with overlapping versions; a package never conflicts with itself.
/// - `Obsoletes:` are not checked: they act when a transaction installs, not on what is
///   installed (though `rpm -V` reports an installed package that another one obsoletes).
///   `config(...)` provides are ordinary provides.
pub fn rpm(db: &RpmDb, file_exists: &dyn Fn(&str) -> bool) -> Checked {
    let mut out = Out::new();
    let pkgs = &db.packages;
    let requires: Vec<RpmDeps> = pkgs
        .iter()
        .map(|p| {
            RpmDeps::read(
                &p.header,
                rpmdb::TAG_REQUIRENAME,
                rpmdb::TAG_REQUIREFLAGS,
                rpmdb::TAG_REQUIREVERSION,
            )
        })
        .collect();
    let conflicts: Vec<RpmDeps> = pkgs
        .iter()
        .map(|p| {
            RpmDeps::read(
                &p.header,
                rpmdb::TAG_CONFLICTNAME,
                rpmdb::TAG_CONFLICTFLAGS,
                rpmdb::TAG_CONFLICTVERSION,
            )
        })
        .collect();
    let provides: Vec<RpmDeps> = pkgs
        .iter()
        .map(|p| {
            RpmDeps::read(
                &p.header,
                rpmdb::TAG_PROVIDENAME,
                rpmdb::TAG_PROVIDEFLAGS,
                rpmdb::TAG_PROVIDEVERSION,
            )
        })
        .collect();
    let mut providers: HashMap<&[u8], Vec<(usize, usize)>> = HashMap::new();
    for (i, deps) in provides.iter().enumerate() {
        for (j, name) in deps.names.iter().enumerate() {
            providers.entry(name).or_default().push((i, j));
        }
    }
    let owners = rpm_file_owners(db, &requires, &conflicts);
    let installed = |c: usize, provide: Option<usize>| {
        let p = &pkgs[c];
        let mut x = Installed::new(&p.name, &p.evr, &p.arch);
        x.provides = provide.map(|j| {
            let (name, flags, evr) = provides[c].get(j);
            rpm_dep_text(name, flags.unwrap_or(0), evr.unwrap_or(&[]))
        });
        x
    };
    // (name, sense bits, EVR) -> what fails it, when nothing meets it.
    type Unmet = Option<Vec<Installed>>;
    let mut cache: HashMap<(&[u8], u32, &[u8]), Unmet> = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        let note = |what: &str, dep: &[u8], why: &str| {
            format!(
                "{} {}: {what} {} {why}",
                p.name,
                p.evr,
                quote(&String::from_utf8_lossy(dep))
            )
        };
        for k in 0..requires[i].names.len() {
            let (name, flags, evr) = requires[i].get(k);
            let (flags, evr) = (flags.unwrap_or(0), evr.unwrap_or(&[]));
            if name.starts_with(b"rpmlib(")
                || flags & (RPMSENSE_RPMLIB | RPMSENSE_MISSINGOK) != 0
                || rpmdb::is_transient_req(flags)
            {
                continue;
            }
            if name.is_empty() {
                out.unchecked(note("Requires", name, "has no name"));
                continue;
            }
            if name.starts_with(b"(") {
                out.unchecked(note("Requires", name, "is a rich dependency: not checked"));
                continue;
            }
            if !out.spend(1) {
                out.out_of_budget += 1;
                continue;
            }
            let key = (name, flags & RPMSENSE_SENSEMASK, evr);
            let unmet = match cache.get(&key) {
                Some(r) => r.clone(),
                None => {
                    let mut found = Vec::new();
                    let mut met =
                        name.starts_with(b"/") && owners.get(name).is_some_and(|o| !o.is_empty());
                    for &(c, j) in providers.get(name).map_or(&[][..], |v| v) {
                        if met {
                            break;
                        }
                        if !out.spend(1) {
                            // Out of budget: counted as met rather than guessed.
                            out.out_of_budget += 1;
                            met = true;
                            break;
                        }
                        let (_, pf, pv) = provides[c].get(j);
                        if rpm_provide_matches((pf, pv), flags, evr) {
                            met = true;
                        } else if found.len() < MAX_FOUND {
                            found.push(installed(c, Some(j)));
                        }
                    }
                    if !met && name.starts_with(b"/") {
                        met = file_exists(&String::from_utf8_lossy(name));
                    }
                    let r = (!met).then_some(found);
                    cache.insert(key, r.clone());
                    r
                }
            };
            if let Some(found) = unmet {
                out.problem(Problem {
                    package: installed(i, None),
                    relation: RelationKind::Requires,
                    wanted: rpm_dep_text(name, flags, evr),
                    found,
                });
            }
        }
        for k in 0..conflicts[i].names.len() {
            let (name, flags, evr) = conflicts[i].get(k);
            let (flags, evr) = (flags.unwrap_or(0), evr.unwrap_or(&[]));
            if name.is_empty() || rpmdb::is_transient_req(flags) {
                continue;
            }
            if name.starts_with(b"(") {
                out.unchecked(note("Conflicts", name, "is a rich dependency: not checked"));
                continue;
            }
            if !out.spend(1) {
                out.out_of_budget += 1;
                continue;
            }
            let mut found = Vec::new();
            let mut hit = HashSet::new();
            if name.starts_with(b"/") {
                for &c in owners.get(name).map_or(&[][..], |v| v) {
                    if c != i && hit.insert(c) && found.len() < MAX_FOUND {
                        found.push(installed(c, None));
                    }
                }
            }
            for &(c, j) in providers.get(name).map_or(&[][..], |v| v) {
                if c == i || hit.contains(&c) {
                    continue;
                }
                if !out.spend(1) {
                    out.out_of_budget += 1;
                    break;
                }
                let (_, pf, pv) = provides[c].get(j);
                if rpm_provide_matches((pf, pv), flags, evr) {
                    hit.insert(c);
                    if found.len() < MAX_FOUND {
                        found.push(installed(c, Some(j)));
                    }
                }
            }
            if !found.is_empty() {
                out.problem(Problem {
                    package: installed(i, None),
                    relation: RelationKind::Conflicts,
                    wanted: rpm_dep_text(name, flags, evr),
                    found,
                });
            }
        }
    }
    out.finish()
}

/// The packages owning each path that some require or conflict names, from the compressed
/// file lists (`DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`). Only files in the normal or
/// net-shared state count (replaced, not installed and wrong-color files do not), as rpm's
/// installed-files index has it.
fn rpm_file_owners<'a>(
    db: &RpmDb,
    requires: &[RpmDeps<'a>],
    conflicts: &[RpmDeps<'a>],
) -> HashMap<&'a [u8], Vec<usize>> {
    let mut wanted: HashMap<&'a [u8], Vec<usize>> = HashMap::new();
    let mut basenames: HashSet<&[u8]> = HashSet::new();
    for deps in requires.iter().chain(conflicts) {
        for name in &deps.names {
            if name.starts_with(b"/") {
                wanted.entry(name).or_default();
                let base = name.rsplit(|&c| c == b'/').next().unwrap_or(name);
                basenames.insert(base);
            }
        }
    }
    if wanted.is_empty() {
        return wanted;
    }
    let mut path = Vec::new();
    for (i, p) in db.packages.iter().enumerate() {
        let h = &p.header;
        let (Some(Value::Strings(bases)), Some(Value::Strings(dirs)), Some(idx)) = (
            h.get(rpmdb::TAG_BASENAMES),
            h.get(rpmdb::TAG_DIRNAMES),
            h.u32s(rpmdb::TAG_DIRINDEXES),
        ) else {
            continue;
        };
        let states = match h.get(rpmdb::TAG_FILESTATES) {
            Some(Value::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        };
        for (k, base) in bases.iter().enumerate() {
            if !basenames.contains(base.as_slice()) {
                continue;
            }
            if let Some(state) = states.and_then(|s| s.get(k)) {
                // RPMFILE_STATE_NORMAL (0) and RPMFILE_STATE_NETSHARED (3).
                if *state != 0 && *state != 3 {
                    continue;
                }
            }
            let Some(dir) = idx.get(k).and_then(|d| dirs.get(*d as usize)) else {
                continue;
            };
            path.clear();
            path.extend_from_slice(dir);
            path.extend_from_slice(base);
            if let Some(owners) = wanted.get_mut(path.as_slice()) {
                if owners.last() != Some(&i) {
                    owners.push(i);
                }
            }
        }
    }
    wanted
}

#[cfg(test)]
mod tests;
