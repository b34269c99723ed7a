//! Version comparison exactly as each package manager does it, and the constraint operators of
//! their relations.
//!
//! | tool | order | constraint check |
//! | --- | --- | --- |
//! | dpkg / apt | [`dpkg_cmp`] (`verrevcmp` on epoch, upstream, revision) | [`Op`] over [`dpkg_cmp`] |
//! | rpm | [`rpm_vercmp`] on one field, [`rpm_label_cmp`] on `[E:]V[-R]` | [`rpm_ds_matches`] (`rpmdsCompare`) |
//! | apk-tools 2.x | [`apk_cmp`] (`apk_version_compare`) | [`ApkOp`] |
//!
//! Every function is total: any string compares without a panic and without overflow (digit
//! runs of any length). Like the C tools, a string ends at its first NUL byte.

use std::cmp::Ordering;
use std::fmt;

/// The bytes a C tool sees: up to the first NUL.
fn c_bytes(s: &str) -> &[u8] {
    let b = s.as_bytes();
    match b.iter().position(|&c| c == 0) {
        Some(end) => &b[..end],
        None => b,
    }
}

/// A version relation: `installed OP wanted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Strictly earlier (dpkg `<<`, rpm `<`, apk `<`).
    Lt,
    /// Earlier or equal (dpkg `<=` and the obsolete `<`, rpm `<=`, apk `<=`).
    Le,
    /// Equal (`=`).
    Eq,
    /// Later or equal (dpkg `>=` and the obsolete `>`, rpm `>=`, apk `>=`).
    Ge,
    /// Strictly later (dpkg `>>`, rpm `>`, apk `>`).
    Gt,
}

impl Op {
    /// Whether `installed OP wanted` holds, given `installed.cmp(wanted)`.
    pub fn holds(self, installed_vs_wanted: Ordering) -> bool {
        use Ordering::*;
        match self {
            Op::Lt => installed_vs_wanted == Less,
            Op::Le => installed_vs_wanted != Greater,
            Op::Eq => installed_vs_wanted == Equal,
            Op::Ge => installed_vs_wanted != Less,
            Op::Gt => installed_vs_wanted == Greater,
        }
    }

    /// A dpkg relation operator: `<<`, `<=`, `=`, `>=`, `>>`, and the obsolete `<` and `>`,
    /// which dpkg and apt read as `<=` and `>=`. `None` for anything else.
    pub fn parse_dpkg(op: &str) -> Option<Op> {
        Some(match op {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    /// The operator as dpkg writes it (`<<`, `<=`, `=`, `>=`, `>>`).
    pub fn dpkg_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// The operator of rpm sense flags (`RPMSENSE_LESS`/`GREATER`/`EQUAL`); `None` when the
    /// flags name no version relation (an unversioned dependency) or the combination `<>`
    /// that no spec file writes. Dependency matching itself uses [`rpm_ds_matches`].
    pub fn from_rpm_flags(flags: u32) -> Option<Op> {
        match flags & (RPMSENSE_LESS | RPMSENSE_GREATER | RPMSENSE_EQUAL) {
            RPMSENSE_LESS => Some(Op::Lt),
            x if x == RPMSENSE_LESS | RPMSENSE_EQUAL => Some(Op::Le),
            RPMSENSE_EQUAL => Some(Op::Eq),
            x if x == RPMSENSE_GREATER | RPMSENSE_EQUAL => Some(Op::Ge),
            RPMSENSE_GREATER => Some(Op::Gt),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// dpkg

/// Why dpkg rejects a version string (its `parseversion` errors; `dpkg --compare-versions`
/// exits 2 on them). The messages are dpkg's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpkgVersionError {
    /// Nothing but blanks.
    #[error("version string is empty")]
    Empty,
    /// Blanks inside the version.
    #[error("version string has embedded spaces")]
    EmbeddedSpaces,
    /// A colon with no number before it.
    #[error("epoch in version is empty")]
    EpochEmpty,
    /// Something other than a number before the first colon.
    #[error("epoch in version is not number")]
    EpochNotNumber,
    /// A negative epoch.
    #[error("epoch in version is negative")]
    EpochNegative,
    /// An epoch above `INT_MAX`.
    #[error("epoch in version is too big")]
    EpochTooBig,
    /// Nothing after the epoch's colon.
    #[error("nothing after colon in version number")]
    NothingAfterColon,
    /// A hyphen with nothing after it.
    #[error("revision number is empty")]
    RevisionEmpty,
    /// Nothing between the epoch and the revision.
    #[error("version number is empty")]
    UpstreamEmpty,
}

/// A Debian version split as dpkg's `parseversion` splits it: `[epoch:]upstream[-revision]`,
/// the epoch up to the first colon, the revision after the LAST hyphen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpkgVersion {
    /// The epoch (0 when absent).
    pub epoch: u32,
    /// The upstream version.
    pub upstream: String,
    /// The Debian revision (empty when absent).
    pub revision: String,
}

impl fmt::Display for DpkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn trim_blanks(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_blank(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_blank(*last) {
            break;
        }
        b = rest;
    }
    b
}

/// Parses a version the way dpkg does, with dpkg's errors. dpkg's *warnings* (an upstream
/// version that does not start with a digit, characters outside `[A-Za-z0-9.+~:-]`) are
/// accepted, as `dpkg --compare-versions` accepts them (it warns and compares).
pub fn dpkg_parse(version: &str) -> Result<DpkgVersion, DpkgVersionError> {
    let s = trim_blanks(c_bytes(version));
    if s.is_empty() {
        return Err(DpkgVersionError::Empty);
    }
    if s.iter().any(|&c| is_blank(c)) {
        return Err(DpkgVersionError::EmbeddedSpaces);
    }
    let (epoch, rest) = match s.iter().position(|&c| c == b':') {
        None => (0, s),
        Some(colon) => {
            // strtol: an optional sign, then decimal digits, which must end at the colon.
            let field = &s[..colon];
            let (negative, digits) = match field.first() {
                Some(b'-') => (true, &field[1..]),
                Some(b'+') => (false, &field[1..]),
                _ => (false, field),
            };
            let ndigits = digits.iter().take_while(|c| c.is_ascii_digit()).count();
            if ndigits == 0 {
                return Err(DpkgVersionError::EpochEmpty);
            }
            if ndigits != digits.len() {
                return Err(DpkgVersionError::EpochNotNumber);
            }
            let value = digits.iter().try_fold(0u64, |v, &d| {
                v.checked_mul(10)?
                    .checked_add(u64::from(d - b'0'))
                    .filter(|v| *v <= i32::MAX as u64)
            });
            let value = match value {
                Some(0) => 0,
                Some(_) if negative => return Err(DpkgVersionError::EpochNegative),
                Some(v) => v as u32,
                // Out of range: strtol saturates, so a negative one is "negative".
                None if negative => return Err(DpkgVersionError::EpochNegative),
                None => return Err(DpkgVersionError::EpochTooBig),
            };
            let rest = &s[colon + 1..];
            if rest.is_empty() {
                return Err(DpkgVersionError::NothingAfterColon);
            }
            (value, rest)
        }
    };
    let (upstream, revision) = match rest.iter().rposition(|&c| c == b'-') {
        Some(h) if h + 1 == rest.len() => return Err(DpkgVersionError::RevisionEmpty),
        Some(h) => (&rest[..h], &rest[h + 1..]),
        None => (rest, &[][..]),
    };
    if upstream.is_empty() {
        return Err(DpkgVersionError::UpstreamEmpty);
    }
    Ok(DpkgVersion {
        epoch,
        upstream: String::from_utf8_lossy(upstream).into_owned(),
        revision: String::from_utf8_lossy(revision).into_owned(),
    })
}

/// dpkg's `order()`: where a non-digit character sorts. `~` before the end of the string,
/// the end before letters, letters (by ASCII) before everything else. dpkg reads `char` as
/// signed, so bytes above 127 sort between letters and ASCII punctuation.
fn dpkg_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c as i8) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit runs (compared by [`dpkg_order`]) and digit runs
/// (compared as numbers of any length: leading zeros skipped, the longer run is larger, then
/// the first differing digit).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (dpkg_order(a.get(i).copied()), dpkg_order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            // Equal orders of non-digits: both sides are on the same character.
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// The three parts of a version for comparison. The epoch is kept as text and compared with
/// `verrevcmp`, which on digit strings is numeric comparison of any length.
struct DebParts<'a> {
    epoch: &'a [u8],
    upstream: &'a [u8],
    revision: &'a [u8],
}

impl DebParts<'_> {
    fn split(version: &str) -> DebParts<'_> {
        let s = trim_blanks(c_bytes(version));
        let (mut epoch, rest) = match s.iter().position(|&c| c == b':') {
            Some(colon) => (&s[..colon], &s[colon + 1..]),
            None => (&b""[..], s),
        };
        // strtol's optional sign: `+1:` is epoch 1 (and `-0:` epoch 0).
        if let [b'+' | b'-', digits @ ..] = epoch {
            if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                epoch = digits;
            }
        }
        let (upstream, revision) = match rest.iter().rposition(|&c| c == b'-') {
            Some(h) => (&rest[..h], &rest[h + 1..]),
            None => (rest, &b""[..]),
        };
        DebParts {
            epoch,
            upstream,
            revision,
        }
    }

    /// dpkg's `dpkg_version_is_informative`: anything but epoch 0 with nothing else.
    fn informative(&self) -> bool {
        self.epoch.iter().any(|&c| c != b'0')
            || !self.upstream.is_empty()
            || !self.revision.is_empty()
    }
}

/// Compares two Debian versions exactly as `dpkg --compare-versions` does for every string it
/// accepts (including the ones it only warns about): epochs numerically (absent = 0), then the
/// upstream versions, then the revisions (after the LAST hyphen; absent = empty, which equals
/// `0`) with `verrevcmp`. An empty version sorts before every other version, as
/// `--compare-versions` treats it (the command line's `<unknown>` alias is not special here).
///
/// Strings dpkg rejects ([`dpkg_parse`] errors: embedded blanks, a non-numeric or negative or
/// oversized epoch, an empty revision or upstream part) have no dpkg order; they are compared
/// the way apt compares any string (apt never rejects one): the text before the first colon is
/// the epoch, compared with `verrevcmp` (numerically when it is digits), the text after the
/// last hyphen is the revision. This keeps the order total, and it equals dpkg's order on
/// every string dpkg accepts.
pub fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (DebParts::split(a), DebParts::split(b));
    match (a.informative(), b.informative()) {
        (false, false) => return Ordering::Equal,
        (false, true) => return Ordering::Less,
        (true, false) => return Ordering::Greater,
        (true, true) => {}
    }
    verrevcmp(a.epoch, b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision))
}

// ---------------------------------------------------------------------------------------------
// rpm

/// `RPMSENSE_LESS`.
pub const RPMSENSE_LESS: u32 = 1 << 1;
/// `RPMSENSE_GREATER`.
pub const RPMSENSE_GREATER: u32 = 1 << 2;
/// `RPMSENSE_EQUAL`.
pub const RPMSENSE_EQUAL: u32 = 1 << 3;
/// `RPMSENSE_SENSEMASK`: the bits that make a dependency versioned.
pub const RPMSENSE_SENSEMASK: u32 = 15;

/// rpm's `rpmvercmp` (rpmio/rpmvercmp.c) on one field (a version or a release): the strings
/// are cut into segments at every character that is not an ASCII letter, digit, `~` or `^`;
/// `~` sorts before everything, even the end of the string; `^` sorts after the end of the
/// string but before any other segment; a numeric segment beats an alphabetic one; numeric
/// segments compare as numbers of any length (leading zeros stripped, then the longer wins,
/// then bytewise); alphabetic ones bytewise; when one string runs out, the other wins if it has
/// anything left but separators.
pub fn rpm_vercmp(a: &str, b: &str) -> Ordering {
    vercmp_bytes(c_bytes(a), c_bytes(b))
}

fn vercmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    use Ordering::*;
    if a == b {
        return Equal;
    }
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Greater;
            }
            if cb != Some(b'~') {
                return Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Less;
            }
            if cb.is_none() {
                return Greater;
            }
            if ca != Some(b'^') {
                return Greater;
            }
            if cb != Some(b'^') {
                return Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = ca.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let ea = i + a[i..].iter().take_while(|c| class(c)).count();
        let eb = j + b[j..].iter().take_while(|c| class(c)).count();
        let (mut sa, mut sb) = (&a[i..ea], &b[j..eb]);
        if sb.is_empty() {
            // Segments of different kinds: numeric beats alphabetic.
            return if numeric { Greater } else { Less };
        }
        if numeric {
            while let [b'0', rest @ ..] = sa {
                sa = rest;
            }
            while let [b'0', rest @ ..] = sb {
                sb = rest;
            }
            match sa.len().cmp(&sb.len()) {
                Equal => {}
                longer_wins => return longer_wins,
            }
        }
        match sa.cmp(sb) {
            Equal => {}
            differs => return differs,
        }
        i = ea;
        j = eb;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Equal,
        (true, false) => Less,
        _ => Greater,
    }
}

/// `[E:]V[-R]` split as rpm's `parseEVR` (rpmio/rpmver.c) splits it: an epoch only when the
/// string starts with digits followed by `:` (`:1.0` has epoch `0`), the release after the
/// last hyphen.
struct Evr<'a> {
    epoch: Option<&'a [u8]>,
    version: &'a [u8],
    release: Option<&'a [u8]>,
}

impl Evr<'_> {
    fn parse(evr: &str) -> Evr<'_> {
        let s = c_bytes(evr);
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let (epoch, start) = if s.get(digits) == Some(&b':') {
            (
                Some(if digits == 0 { &b"0"[..] } else { &s[..digits] }),
                digits + 1,
            )
        } else {
            (None, 0)
        };
        let (version, release) = match s[start..].iter().rposition(|&c| c == b'-') {
            Some(h) => (&s[start..start + h], Some(&s[start + h + 1..])),
            None => (&s[start..], None),
        };
        Evr {
            epoch,
            version,
            release,
        }
    }
}

/// `atol(e) > 0` for the digit strings an epoch is made of (saturating, as glibc's is).
fn epoch_positive(e: &[u8]) -> bool {
    e.iter().any(|&c| c != b'0')
}

/// The comparison inside rpm's dependency matching (`rpmverOverlap`, rpmio/rpmver.c, which
/// `rpmdsCompare` calls): epochs with `rpmvercmp` when both sides have one, otherwise a
/// missing epoch counts as 0; then the versions; then the releases, **but only when both sides
/// have a non-empty release**: `1.0` and `1.0-3` compare equal, so a `Requires: foo >= 1.0` is
/// met by `foo-1.0-3` and `Requires: foo > 1.0` is not.
///
/// Because of that last rule this is not a total order when some strings lack a release
/// (`1.0-1` = `1.0` = `1.0-2`, yet `1.0-1` < `1.0-2`): match dependencies with it, sort with
/// [`rpm_label_cmp`]. An empty string is version `""`; rpm itself never compares one (an
/// empty EVR matches everything in [`rpm_ds_matches`]).
pub fn rpm_evr_cmp(a: &str, b: &str) -> Ordering {
    evr_sense(&Evr::parse(a), &Evr::parse(b))
}

fn evr_sense(a: &Evr, b: &Evr) -> Ordering {
    let epoch = match (a.epoch, b.epoch) {
        (Some(x), Some(y)) => vercmp_bytes(x, y),
        (Some(x), None) if epoch_positive(x) => Ordering::Greater,
        (None, Some(y)) if epoch_positive(y) => Ordering::Less,
        _ => Ordering::Equal,
    };
    epoch
        .then_with(|| vercmp_bytes(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => vercmp_bytes(x, y),
            _ => Ordering::Equal,
        })
}

/// rpm's order of package labels (`rpmverCmp`, rpmio/rpmver.c; what `rpm.labelCompare` and
/// `rpmdev-vercmp` use): epoch (absent = 0), version, release with `rpmvercmp`, where a
/// missing release sorts before any release (`1.0` < `1.0-1`). A total order.
pub fn rpm_label_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (Evr::parse(a), Evr::parse(b));
    let zero = &b"0"[..];
    vercmp_bytes(a.epoch.unwrap_or(zero), b.epoch.unwrap_or(zero))
        .then_with(|| vercmp_bytes(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (Some(x), Some(y)) => vercmp_bytes(x, y),
        })
}

/// Whether two rpm dependency ranges overlap, as `rpmdsCompare` (lib/rpmds.c) decides it for a
/// provide and a require (or a conflict) of the same name: an unversioned side (no sense bits)
/// or an empty EVR matches everything (so an unversioned provide satisfies a versioned
/// require, unlike dpkg and apk); otherwise `rpmverOverlap`: compare as [`rpm_evr_cmp`], except
/// that when exactly one side has a release and the side *without* it includes `=`, the ranges
/// always overlap. Then the ranges overlap when the comparison and the flags say so (`<` of
/// the larger side reaches the smaller, both `=` at equal versions, ...).
pub fn rpm_ds_matches(a_flags: u32, a_evr: &str, b_flags: u32, b_evr: &str) -> bool {
    if a_flags & RPMSENSE_SENSEMASK == 0 || b_flags & RPMSENSE_SENSEMASK == 0 {
        return true;
    }
    if c_bytes(a_evr).is_empty() || c_bytes(b_evr).is_empty() {
        return true;
    }
    let (a, b) = (Evr::parse(a_evr), Evr::parse(b_evr));
    let sense = evr_sense(&a, &b);
    let has_release = |e: &Evr| e.release.is_some_and(|r| !r.is_empty());
    if sense == Ordering::Equal
        && !(has_release(&a) && has_release(&b))
        && ((has_release(&a) && b_flags & RPMSENSE_EQUAL != 0)
            || (has_release(&b) && a_flags & RPMSENSE_EQUAL != 0))
    {
        return true;
    }
    let has = |flags: u32, bit: u32| flags & bit != 0;
    match sense {
        Ordering::Less => has(a_flags, RPMSENSE_GREATER) || has(b_flags, RPMSENSE_LESS),
        Ordering::Greater => has(a_flags, RPMSENSE_LESS) || has(b_flags, RPMSENSE_GREATER),
        Ordering::Equal => {
            (has(a_flags, RPMSENSE_EQUAL) && has(b_flags, RPMSENSE_EQUAL))
                || (has(a_flags, RPMSENSE_LESS) && has(b_flags, RPMSENSE_LESS))
                || (has(a_flags, RPMSENSE_GREATER) && has(b_flags, RPMSENSE_GREATER))
        }
    }
}

/// rpm's relation text for sense flags (`<`, `>`, `=` in that order, as `rpmdsNewDNEVR`
/// writes them): `>=`, `<`, `=`; empty for an unversioned dependency.
pub fn rpm_sense_str(flags: u32) -> String {
    let mut s = String::new();
    if flags & RPMSENSE_LESS != 0 {
        s.push('<');
    }
    if flags & RPMSENSE_GREATER != 0 {
        s.push('>');
    }
    if flags & RPMSENSE_EQUAL != 0 {
        s.push('=');
    }
    s
}

// ---------------------------------------------------------------------------------------------
// apk

/// apk's `APK_VERSION_EQUAL` result bit.
pub const APK_EQUAL: u8 = 1;
/// apk's `APK_VERSION_LESS` result bit.
pub const APK_LESS: u8 = 2;
/// apk's `APK_VERSION_GREATER` result bit.
pub const APK_GREATER: u8 = 4;
/// apk's `APK_VERSION_FUZZY` bit (`~`).
pub const APK_FUZZY: u8 = 8;
/// apk's `APK_DEPMASK_CHECKSUM` (`><`): the dependency names a package checksum.
pub const APK_CHECKSUM: u8 = APK_LESS | APK_GREATER;

// The token types of apk-tools 2.x's version.c, in their order (the order matters).
const T_INVALID: i8 = -1;
const T_DIGIT_OR_ZERO: i8 = 0;
const T_DIGIT: i8 = 1;
const T_LETTER: i8 = 2;
const T_SUFFIX: i8 = 3;
const T_SUFFIX_NO: i8 = 4;
const T_REVISION_NO: i8 = 5;
const T_END: i8 = 6;

/// Finds the type of the token at the start of `b` given the type of the previous one,
/// consuming separators (`.`, `_`, `-r`). Mirrors `next_token`.
fn apk_next_token(ty: &mut i8, b: &mut &[u8]) {
    let prev = *ty;
    let mut n = T_INVALID;
    match b.first() {
        None | Some(&0) => n = T_END,
        Some(c) if (prev == T_DIGIT || prev == T_DIGIT_OR_ZERO) && c.is_ascii_lowercase() => {
            n = T_LETTER
        }
        Some(c) if prev == T_LETTER && c.is_ascii_digit() => n = T_DIGIT,
        Some(c) if prev == T_SUFFIX && c.is_ascii_digit() => n = T_SUFFIX_NO,
        Some(&c) => {
            match c {
                b'.' => n = T_DIGIT_OR_ZERO,
                b'_' => n = T_SUFFIX,
                b'-' if b.get(1) == Some(&b'r') => {
                    n = T_REVISION_NO;
                    *b = &b[1..];
                }
                _ => {}
            }
            *b = &b[1..];
        }
    }
    if n < prev
        && !((n == T_DIGIT_OR_ZERO && prev == T_DIGIT)
            || (n == T_SUFFIX && prev == T_SUFFIX_NO)
            || (n == T_DIGIT && prev == T_LETTER))
    {
        n = T_INVALID;
    }
    *ty = n;
}

/// Reads the token of type `ty` at the start of `b`, returns its value and leaves `ty` as the
/// type of the next token. Mirrors `get_token`: numbers of 18 digits or more are invalid (apk
/// reads them into an int64), leading zeros after a `.` count as a negative value, suffixes
/// `_alpha`, `_beta`, `_pre`, `_rc` are -4..-1 and `_cvs`, `_svn`, `_git`, `_hg`, `_p` 0..4.
fn apk_get_token(ty: &mut i8, b: &mut &[u8]) -> i64 {
    const PRE: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
    const POST: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];
    if b.is_empty() {
        *ty = T_END;
        return 0;
    }
    let mut i = 0usize;
    let mut next = T_INVALID;
    let mut v: i64 = 0;
    let invalid = |ty: &mut i8| {
        *ty = T_INVALID;
        -1
    };
    match *ty {
        T_DIGIT_OR_ZERO if b[0] == b'0' => {
            while i + 1 < b.len() && b[i + 1] == b'0' {
                i += 1;
            }
            next = T_DIGIT;
            v = -(i as i64);
        }
        T_DIGIT_OR_ZERO | T_DIGIT | T_SUFFIX_NO | T_REVISION_NO => {
            while i < b.len() && b[i].is_ascii_digit() {
                if i < 18 {
                    v = v * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i >= 18 {
                return invalid(ty);
            }
        }
        T_LETTER => {
            v = i64::from(b[0]);
            i = 1;
        }
        T_SUFFIX => {
            if let Some(k) = PRE.iter().position(|p| b.starts_with(p)) {
                v = k as i64 - PRE.len() as i64;
                i = PRE[k].len();
            } else if let Some(k) = POST.iter().position(|p| b.starts_with(p)) {
                v = k as i64;
                i = POST[k].len();
            } else {
                return invalid(ty);
            }
        }
        _ => return invalid(ty),
    }
    *b = &b[i..];
    if b.is_empty() {
        *ty = T_END;
    } else if next != T_INVALID {
        *ty = next;
    } else {
        apk_next_token(ty, b);
    }
    v
}

/// apk-tools 2.x `apk_version_compare_blob_fuzzy`: the result bit ([`APK_LESS`], [`APK_EQUAL`]
/// or [`APK_GREATER`]) of comparing `a` with `b`. With `fuzzy` (a `~` dependency), two
/// versions whose tokens agree until one of them ends are equal: `1.2.3` ~ `1.2`, and also
/// `1` ~ `1.2` (apk 2.x checks only the common prefix).
pub fn apk_compare_mask(a: &str, b: &str, fuzzy: bool) -> u8 {
    let (mut a, mut b) = (c_bytes(a), c_bytes(b));
    let (mut at, mut bt) = (T_DIGIT, T_DIGIT);
    let (mut av, mut bv) = (0i64, 0i64);
    while at == bt && at != T_END && at != T_INVALID && av == bv {
        av = apk_get_token(&mut at, &mut a);
        bv = apk_get_token(&mut bt, &mut b);
    }
    if av < bv {
        return APK_LESS;
    }
    if av > bv {
        return APK_GREATER;
    }
    if at == bt || fuzzy {
        return APK_EQUAL;
    }
    // Equal so far and one goes on: the longer one is greater, unless what follows is a
    // pre-release suffix (or an invalid one).
    let mut tt = at;
    if at == T_SUFFIX && apk_get_token(&mut tt, &mut a) < 0 {
        return APK_LESS;
    }
    tt = bt;
    if bt == T_SUFFIX && apk_get_token(&mut tt, &mut b) < 0 {
        return APK_GREATER;
    }
    match at.cmp(&bt) {
        Ordering::Greater => APK_LESS,
        Ordering::Less => APK_GREATER,
        Ordering::Equal => APK_EQUAL,
    }
}

/// apk-tools 2.x `apk_version_compare`: Gentoo-style versions
/// `{digit}{.digit}...{letter}{_suffix{number}}...{-r{number}}`. Digits compare as numbers (a
/// component after a `.` with leading zeros sorts below one without), a letter after the
/// digits sorts above none, `_alpha`/`_beta`/`_pre`/`_rc` sort below the release and
/// `_cvs`/`_svn`/`_git`/`_hg`/`_p` above it, `-rN` is the package revision. Where a string
/// stops being a valid version, apk compares what came before and then the token types, and so
/// does this function; see [`apk_version_valid`].
pub fn apk_cmp(a: &str, b: &str) -> Ordering {
    match apk_compare_mask(a, b, false) {
        APK_LESS => Ordering::Less,
        APK_GREATER => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// apk's `apk_version_validate`: whether the whole string is a valid apk version. apk refuses
/// a dependency whose version is not (the empty string is valid).
pub fn apk_version_valid(version: &str) -> bool {
    let mut b = c_bytes(version);
    let mut t = T_DIGIT;
    while t != T_END && t != T_INVALID {
        apk_get_token(&mut t, &mut b);
    }
    t == T_END
}

/// The operator of an apk dependency (`<`, `<=`, `=`, `>=`, `>`, `~`, `<~`, `>~`, `><`), as
/// `apk_blob_pull_dep` reads it: `<` sets LESS, `>` GREATER, `=` EQUAL, `~` FUZZY|EQUAL, in
/// any combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApkOp {
    /// The result bits that satisfy it ([`APK_LESS`], [`APK_EQUAL`], [`APK_GREATER`],
    /// [`APK_FUZZY`]).
    pub mask: u8,
    /// Whether `~` was given (compare fuzzily).
    pub fuzzy: bool,
}

impl ApkOp {
    /// Reads an operator made of `<`, `>`, `=`, `~`; `None` when it holds any other character
    /// or is empty.
    pub fn parse(op: &str) -> Option<ApkOp> {
        if op.is_empty() {
            return None;
        }
        let mut out = ApkOp {
            mask: 0,
            fuzzy: false,
        };
        for c in op.bytes() {
            match c {
                b'<' => out.mask |= APK_LESS,
                b'>' => out.mask |= APK_GREATER,
                b'=' => out.mask |= APK_EQUAL,
                b'~' => {
                    out.mask |= APK_FUZZY | APK_EQUAL;
                    out.fuzzy = true;
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// `><`: the version is a package checksum, not a version.
    pub fn is_checksum(self) -> bool {
        self.mask & APK_CHECKSUM == APK_CHECKSUM
    }

    /// Whether an installed `version` satisfies `OP wanted` (not for checksum operators).
    pub fn matches(self, version: &str, wanted: &str) -> bool {
        apk_compare_mask(version, wanted, self.fuzzy) & self.mask != 0
    }
}

impl fmt::Display for ApkOp {
    /// As `apk_version_op_string` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.mask {
            APK_LESS => "<",
            x if x == APK_LESS | APK_EQUAL => "<=",
            x if x == APK_EQUAL | APK_FUZZY || x == APK_FUZZY => "~",
            APK_EQUAL => "=",
            x if x == APK_GREATER | APK_EQUAL => ">=",
            APK_GREATER => ">",
            APK_CHECKSUM => "><",
            _ => "?",
        };
        f.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    fn check(cmp: fn(&str, &str) -> Ordering, cases: &[(&str, Ordering, &str)]) {
        for (a, want, b) in cases {
            assert_eq!(cmp(a, b), *want, "{a:?} vs {b:?}");
            assert_eq!(cmp(b, a), want.reverse(), "{b:?} vs {a:?} (reversed)");
        }
    }

    #[test]
    fn dpkg_orders_like_dpkg() {
        check(
            dpkg_cmp,
            &[
                ("1.0", Equal, "1.0"),
                ("1.0", Less, "1.1"),
                ("1.9", Less, "1.10"),
                ("1.0", Equal, "1.0-0"),
                ("1.0", Equal, "1.00"),
                ("1.0", Equal, "0:1.0"),
                ("1:0.1", Greater, "9.9"),
                ("2:1", Greater, "1:9"),
                ("10:1", Greater, "9:1"),
                // ~ sorts before everything, even the end.
                ("1.0~rc1", Less, "1.0"),
                ("1.0~~", Less, "1.0~"),
                ("1.0~", Less, "1.0"),
                ("1.0~rc1", Less, "1.0~rc2"),
                // Letters before non-letters.
                ("1.0a", Less, "1.0+"),
                ("1.0a", Less, "1.0."),
                ("1.0+", Greater, "1.0"),
                ("1.0", Less, "1.0a"),
                ("1.0Z", Less, "1.0a"),
                // The revision is after the LAST hyphen.
                ("1.0-1-2", Greater, "1.0-1-1"),
                ("1.0-1-2", Greater, "1.0-2"),
                ("1.0-2", Less, "1.0-10"),
                ("3.5.1-1", Less, "3.5.9-1~deb13u1"),
                ("3.0.17-1~deb12u2", Less, "3.0.17-1"),
                ("3.0.17-1~deb12u2", Greater, "3.0.17-1~deb12u1"),
                // Digit runs of any length, no overflow.
                (
                    "1.99999999999999999999999999999",
                    Less,
                    "1.100000000000000000000000000000",
                ),
                ("1.000000000000000000000000000000000002", Equal, "1.2"),
                (
                    "99999999999999999999999:1",
                    Greater,
                    "99999999999999999999998:2",
                ),
                // Empty: before everything, as --compare-versions treats it.
                ("", Equal, ""),
                ("", Less, "0"),
                ("", Less, "~"),
                // Blanks around the version are trimmed.
                ("  1.0\t", Equal, "1.0"),
                // strtol's sign on the epoch.
                ("+1:1.0", Equal, "1:1.0"),
                // Versions dpkg only warns about.
                ("abc", Less, "abd"),
                ("1.0_x", Greater, "1.0a"),
            ],
        );
        // dpkg reads bytes as signed: a byte above 127 sorts after letters, before '+'.
        assert_eq!(dpkg_cmp("1.0z", "1.0é"), Less);
        assert_eq!(dpkg_cmp("1.0é", "1.0+"), Less);
        // A C string ends at its NUL.
        assert_eq!(dpkg_cmp("1.0\0junk", "1.0"), Equal);
    }

    #[test]
    fn dpkg_parse_has_dpkgs_errors() {
        use DpkgVersionError::*;
        let v = dpkg_parse(" 2:1.2-3-4 ").unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (2, "1.2-3", "4")
        );
        assert_eq!(v.to_string(), "2:1.2-3-4");
        assert_eq!(dpkg_parse("1.0").unwrap().to_string(), "1.0");
        assert!(dpkg_parse("abc").is_ok(), "a warning, not an error");
        assert!(dpkg_parse("-0:1").is_ok(), "strtol reads -0");
        for (bad, why) in [
            ("", Empty),
            ("  ", Empty),
            ("1.0 2", EmbeddedSpaces),
            (":1", EpochEmpty),
            ("a:1", EpochEmpty),
            ("1a:1", EpochNotNumber),
            ("-1:1", EpochNegative),
            ("2147483648:1", EpochTooBig),
            ("99999999999999999999999:1", EpochTooBig),
            ("1:", NothingAfterColon),
            ("1.0-", RevisionEmpty),
            ("-1", UpstreamEmpty),
            ("1:-1", UpstreamEmpty),
        ] {
            assert_eq!(dpkg_parse(bad), Err(why), "{bad:?}");
        }
        assert_eq!(dpkg_parse("2147483647:1").unwrap().epoch, i32::MAX as u32);
    }

    #[test]
    fn dpkg_cmp_is_total_on_rejected_strings() {
        // No dpkg order; compared leniently, consistently, without panics.
        let odd = [
            "1.0 2", ":1", "a:1", "-1:1", "1:", "1.0-", "-", "1:-1", "::", "1::2", "~:~",
        ];
        for a in odd {
            assert_eq!(dpkg_cmp(a, a), Equal, "{a:?}");
            for b in odd {
                assert_eq!(dpkg_cmp(a, b), dpkg_cmp(b, a).reverse(), "{a:?} {b:?}");
            }
        }
        assert_eq!(dpkg_cmp("1.0-", "1.0"), Equal);
        let mut sorted = odd.to_vec();
        sorted.sort_by(|a, b| dpkg_cmp(a, b));
    }

    #[test]
    fn ops_read_like_dpkg_and_apt() {
        assert_eq!(Op::parse_dpkg("<"), Some(Op::Le), "obsolete < is <=");
        assert_eq!(Op::parse_dpkg(">"), Some(Op::Ge), "obsolete > is >=");
        assert_eq!(Op::parse_dpkg("<<"), Some(Op::Lt));
        assert_eq!(Op::parse_dpkg(">>"), Some(Op::Gt));
        assert_eq!(Op::parse_dpkg("!="), None);
        assert_eq!(Op::parse_dpkg(""), None);
        for op in [Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt] {
            assert_eq!(Op::parse_dpkg(op.dpkg_str()), Some(op));
        }
        assert!(Op::Lt.holds(Less) && !Op::Lt.holds(Equal));
        assert!(Op::Le.holds(Equal) && !Op::Le.holds(Greater));
        assert!(Op::Ge.holds(Greater) && Op::Ge.holds(Equal) && !Op::Ge.holds(Less));
        assert!(Op::Gt.holds(Greater) && !Op::Gt.holds(Equal));
        assert!(Op::Eq.holds(Equal) && !Op::Eq.holds(Less));
        assert_eq!(
            Op::from_rpm_flags(RPMSENSE_GREATER | RPMSENSE_EQUAL),
            Some(Op::Ge)
        );
        assert_eq!(Op::from_rpm_flags(RPMSENSE_LESS | (1 << 9)), Some(Op::Lt));
        assert_eq!(Op::from_rpm_flags(0), None);
        assert_eq!(Op::from_rpm_flags(RPMSENSE_LESS | RPMSENSE_GREATER), None);
    }

    #[test]
    fn rpmvercmp_segments() {
        check(
            rpm_vercmp,
            &[
                ("1.0", Equal, "1.0"),
                ("1.0", Less, "2.0"),
                ("2.0.1", Greater, "2.0"),
                ("2.0.1a", Greater, "2.0.1"),
                ("5.5p1", Less, "5.5p2"),
                ("5.5p10", Greater, "5.5p1"),
                ("10xyz", Less, "10.1xyz"),
                ("xyz10", Less, "xyz10.1"),
                ("xyz.4", Equal, "xyz.4"),
                ("xyz.4", Less, "8"),
                ("xyz.4", Less, "2"),
                ("5.5p2", Less, "5.6p1"),
                ("6.0", Less, "6.0.rc1"),
                // Numeric beats alphabetic; leading zeros do not count.
                ("1.1", Greater, "1.a"),
                ("1.001", Equal, "1.1"),
                ("1.0010", Greater, "1.9"),
                // Separators only separate: different ones are equal.
                ("1.0", Equal, "1_0"),
                ("1.0", Equal, "1.0."),
                ("1..0", Equal, "1.0"),
                ("+1", Equal, "1"),
                // Tilde: before everything.
                ("1.0~rc1", Less, "1.0"),
                ("1.0~rc1", Less, "1.0~rc2"),
                ("1.0~rc1~git1", Less, "1.0~rc1"),
                ("1.0~", Less, "1.0"),
                // Caret: after the end, before anything else.
                ("1.0^", Greater, "1.0"),
                ("1.0^git1", Greater, "1.0"),
                ("1.0^git1", Less, "1.01"),
                ("1.0^git1", Less, "1.0.1"),
                ("1.0^20160101", Less, "1.0^20160102"),
                ("1.0~rc1^git1", Greater, "1.0~rc1"),
                ("1.0^git1~pre", Less, "1.0^git1"),
                // Arbitrary length.
                (
                    "1.123456789012345678901234567890",
                    Greater,
                    "1.123456789012345678901234567889",
                ),
                ("1.00000000000000000000000000000000001", Equal, "1.1"),
                // Case matters (bytewise).
                ("1.A", Less, "1.a"),
                ("", Equal, ""),
                ("", Less, "0"),
            ],
        );
    }

    #[test]
    fn rpm_evr_ignores_a_missing_release() {
        check(
            rpm_evr_cmp,
            &[
                ("1.0-1", Equal, "1.0-1"),
                ("1.0-1", Less, "1.0-2"),
                ("1.0", Equal, "1.0-2"),
                ("1.0-", Equal, "1.0-2"),
                ("0:1.0-1", Equal, "1.0-1"),
                ("1:1.0-1", Greater, "2.0-1"),
                ("1:1.0", Greater, "9.9"),
                ("2:1.0", Greater, "1:9.9"),
                (":1.0", Equal, "0:1.0"),
                ("001:1.0", Equal, "1:1.0"),
                ("1.0-1.el9", Less, "1.0-1.el10"),
                ("1-2-3", Greater, "1-2-2"),
                // Not an epoch: a colon after a non-digit.
                ("a:1", Less, "b:1"),
            ],
        );
        // labelCompare: no release sorts first.
        check(
            rpm_label_cmp,
            &[
                ("1.0", Less, "1.0-1"),
                ("1.0-1", Less, "1.0-2"),
                ("1.0", Equal, "0:1.0"),
                ("1.0-", Less, "1.0-0"),
                ("1:1", Greater, "2"),
            ],
        );
    }

    #[test]
    fn rpm_ranges_overlap_like_rpmds() {
        const L: u32 = RPMSENSE_LESS;
        const G: u32 = RPMSENSE_GREATER;
        const E: u32 = RPMSENSE_EQUAL;
        // (provide flags, provide evr, require flags, require evr, matches)
        for (pf, pv, rf, rv, want) in [
            (E, "3.0.1-2", G | E, "3.0", true),
            (E, "2.9-1", G | E, "3.0", false),
            (E, "1.0-1", G, "1.0", false),
            (E, "1.0-1", L | E, "1.0", true),
            (E, "1.0-1", L, "1.0", false),
            (E, "1.0-1", E, "1.0", true),
            (E, "1.0-1", E, "1.0-2", false),
            // The side without a release has '=': always overlaps at equal E:V.
            (E, "1.0", L, "1.0-1", true),
            (E, "1.0", G, "1.0-1", true),
            (G, "1.0", L, "1.0-1", false),
            // Unversioned provides and empty EVRs match everything.
            (0, "", G | E, "99", true),
            (E, "", G | E, "99", true),
            (E, "1.0-1", 0, "", true),
            // Both ranges open the same way.
            (L, "1.0", L, "2.0", true),
            (G, "5.0", G, "2.0", true),
            (L, "1.0", G, "2.0", false),
            // Epochs: a missing one is 0.
            (E, "1:1.0-1", G | E, "2.0", true),
            (E, "1.0-1", G | E, "1:0.1", false),
        ] {
            assert_eq!(
                rpm_ds_matches(pf, pv, rf, rv),
                want,
                "{pv} ({pf}) vs {rv} ({rf})"
            );
            assert_eq!(
                rpm_ds_matches(rf, rv, pf, pv),
                want,
                "{rv} ({rf}) vs {pv} ({pf}), symmetric"
            );
        }
        assert_eq!(rpm_sense_str(G | E), ">=");
        assert_eq!(rpm_sense_str(L), "<");
        assert_eq!(rpm_sense_str(0), "");
    }

    #[test]
    fn apk_orders_like_apk_tools() {
        check(
            apk_cmp,
            &[
                ("1.0", Equal, "1.0"),
                ("1.0", Less, "1.1"),
                ("1.9", Less, "1.10"),
                ("1.0", Less, "1.0.1"),
                ("1.0-r0", Equal, "1.0-r0"),
                ("1.0", Less, "1.0-r0"),
                ("1.0-r1", Less, "1.0-r2"),
                ("1.0-r9", Less, "1.0-r10"),
                ("1.0-r1", Less, "1.0.1"),
                // Letters after the digits sort above none.
                ("1.0", Less, "1.0a"),
                ("1.0a", Less, "1.0b"),
                ("1.0b", Less, "1.0.1"),
                // Pre-release suffixes sort below the release, in order.
                ("1.0_alpha", Less, "1.0_beta"),
                ("1.0_beta", Less, "1.0_pre"),
                ("1.0_pre", Less, "1.0_rc"),
                ("1.0_rc", Less, "1.0"),
                ("1.0_rc1", Less, "1.0_rc2"),
                ("1.0_rc2", Less, "1.0_rc10"),
                ("1.0_alpha1", Less, "1.0"),
                ("1.0_rc1-r5", Less, "1.0-r0"),
                // Post-release suffixes above it, in order.
                ("1.0", Less, "1.0_cvs"),
                ("1.0_cvs", Less, "1.0_svn"),
                ("1.0_svn", Less, "1.0_git"),
                ("1.0_git", Less, "1.0_hg"),
                ("1.0_hg", Less, "1.0_p"),
                ("1.0_p1", Less, "1.0_p2"),
                ("1.0_p1", Less, "1.0.1"),
                ("1.0_git20240101", Less, "1.0_git20240102"),
                // Multiple suffixes.
                ("1.0_rc1_p1", Greater, "1.0_rc1"),
                ("1.0_rc1_p1", Less, "1.0"),
                // A component after '.' with leading zeros sorts below one without.
                ("1.01", Less, "1.1"),
                ("1.001", Less, "1.01"),
                ("1.00", Less, "1.0"),
                ("1.010", Less, "1.10"),
                // The first component is a plain number.
                ("01.0", Equal, "1.0"),
                ("3.5.1-r0", Less, "3.5.9-r0"),
                ("2.38-r1", Greater, "2.4-r9"),
            ],
        );
    }

    #[test]
    fn apk_invalid_versions_compare_like_apk() {
        for v in [
            "1.0",
            "1.0-r0",
            "1.0_rc1-r2",
            "1.0a_p3",
            "",
            "0",
            "1.2.3.4.5",
        ] {
            assert!(apk_version_valid(v), "{v:?}");
        }
        for v in [
            "1.0-foo",
            "1.0_foo",
            "1.0-",
            "1.a.2",
            "1.0A",
            "abc",
            "1.0_patch",
            "1.123456789012345678",
            "1.0-r1.2",
        ] {
            assert!(!apk_version_valid(v), "{v:?}");
        }
        // Up to the invalid part, then by token types: an invalid tail sorts above the end...
        assert_eq!(apk_cmp("1.0-foo", "1.0"), Greater);
        // ...two invalid tails are equal...
        assert_eq!(apk_cmp("1.0-foo", "1.0-bar"), Equal);
        // ...and 18 digits or more are invalid: no overflow, and a lower value (-1).
        assert_eq!(apk_cmp("1.123456789012345678", "1.0"), Less);
        assert_eq!(
            apk_cmp(
                "1.99999999999999999999999999",
                "1.99999999999999999999999998"
            ),
            Equal
        );
        assert_eq!(
            apk_cmp("1.12345678901234567", "1.12345678901234566"),
            Greater
        );
        // Garbage never panics.
        for a in [
            "", "_", "-", "-r", ".", "..", "_rc_", "1_", "1-r", "~", "\u{e9}",
        ] {
            for b in ["", "1", "1.0_rc", "x"] {
                let _ = apk_cmp(a, b);
                let _ = apk_compare_mask(a, b, true);
            }
        }
    }

    #[test]
    fn apk_operators() {
        let op = |s| ApkOp::parse(s).unwrap();
        assert!(op(">=").matches("1.2-r0", "1.2"));
        assert!(!op(">").matches("1.2", "1.2"));
        assert!(op("<").matches("1.9", "2"));
        assert!(op("=").matches("1.2-r0", "1.2-r0"));
        assert!(!op("=").matches("1.2-r1", "1.2-r0"));
        // Fuzzy: the tokens agree until one ends.
        assert!(op("~").matches("1.2.3-r4", "1.2"));
        assert!(op("~").matches("1.2", "1.2.3"));
        assert!(!op("~").matches("1.3", "1.2"));
        assert!(op(">~").matches("1.3", "1.2"));
        assert!(op("<~").matches("1.2.9", "1.2"));
        assert!(op("><").is_checksum());
        assert!(!op(">=").is_checksum());
        assert_eq!(ApkOp::parse(""), None);
        assert_eq!(ApkOp::parse("=>!"), None);
        for s in ["<", "<=", "~", "=", ">=", ">", "><"] {
            assert_eq!(op(s).to_string(), s);
        }
        assert_eq!(op("=~").to_string(), "~");
    }
}
