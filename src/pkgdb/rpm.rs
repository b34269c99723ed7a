//! rpm's sqlite database (`rpmdb.sqlite`, rpm 4.16+): read, 3-way merge by package, write.
//!
//! A package is identified by name and arch, its unit is the set of header blobs installed
//! under that name and arch (one, or several for install-only packages such as kernels), and
//! the merge rules are the common ones (see [`super::merge`]): untouched by the application ->
//! the new base's; changed by the application only -> the application's; both -> the
//! application's and a [`Pin`].
//!
//! The result is a fresh database with the application's schema (the tables and indexes rpm
//! created, in rpm's own SQL), the chosen headers numbered 1..n in `Packages`, and every index
//! table rebuilt from the headers as rpm's `tag2index` (lib/rpmdb.c, rpm 4.16-4.20) builds it:
//! `key` = the tag's value, `hnum` = the package number, `idx` = the index in the tag's array.
//!
//! PURE: bytes in, bytes out; sqlite runs in memory (`sqlite3_deserialize`). Memory: the three
//! input databases and the output are each held once in memory, so at most about four times the
//! size cap ([`super::MAX_DB_SIZE`]).
//!
//! Reproducible: fixed page size (4096), `VACUUM`, rollback-journal header (no WAL), no
//! timestamps; the same inputs give the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, MAIN_DB};

use super::rpmheader::{self, Header, Value};
use super::{PackageChange, PackageEntry, Pin};

/// `RPMSIGTAG_MD5`: MD5 of header and payload (in the signature region of an installed header).
pub const TAG_SIGMD5: u32 = 261;
/// `RPMTAG_SHA1HEADER`: SHA-1 of the header (an index table key).
pub const TAG_SHA1HEADER: u32 = 269;
/// `RPMTAG_NAME`: the package name.
pub const TAG_NAME: u32 = 1000;
/// `RPMTAG_VERSION`.
pub const TAG_VERSION: u32 = 1001;
/// `RPMTAG_RELEASE`.
pub const TAG_RELEASE: u32 = 1002;
/// `RPMTAG_EPOCH`: absent when the package has no epoch.
pub const TAG_EPOCH: u32 = 1003;
/// `RPMTAG_GROUP`.
pub const TAG_GROUP: u32 = 1016;
/// `RPMTAG_ARCH`: absent for `gpg-pubkey` pseudo-packages.
pub const TAG_ARCH: u32 = 1022;
/// `RPMTAG_PROVIDENAME`: the capabilities a package provides.
pub const TAG_PROVIDENAME: u32 = 1047;
/// `RPMTAG_REQUIREFLAGS`: per-requirement flags (which requirements are indexed depends on them).
pub const TAG_REQUIREFLAGS: u32 = 1048;
/// `RPMTAG_REQUIRENAME`: the capabilities a package requires.
pub const TAG_REQUIRENAME: u32 = 1049;
/// `RPMTAG_REQUIREVERSION`: the `[E:]V[-R]` of each requirement (empty when unversioned).
pub const TAG_REQUIREVERSION: u32 = 1050;
/// `RPMTAG_CONFLICTFLAGS`.
pub const TAG_CONFLICTFLAGS: u32 = 1053;
/// `RPMTAG_CONFLICTNAME`.
pub const TAG_CONFLICTNAME: u32 = 1054;
/// `RPMTAG_CONFLICTVERSION`.
pub const TAG_CONFLICTVERSION: u32 = 1055;
/// `RPMTAG_TRIGGERNAME`.
pub const TAG_TRIGGERNAME: u32 = 1066;
/// `RPMTAG_OBSOLETENAME`.
pub const TAG_OBSOLETENAME: u32 = 1090;
/// `RPMTAG_FILESTATES`: one byte per file (0 normal, 1 replaced, 2 not installed, 3 net
/// shared, 4 wrong color, -1 missing).
pub const TAG_FILESTATES: u32 = 1029;
/// `RPMTAG_PROVIDEFLAGS`.
pub const TAG_PROVIDEFLAGS: u32 = 1112;
/// `RPMTAG_PROVIDEVERSION`.
pub const TAG_PROVIDEVERSION: u32 = 1113;
/// `RPMTAG_DIRINDEXES`: for each base name, its directory in [`TAG_DIRNAMES`].
pub const TAG_DIRINDEXES: u32 = 1116;
/// `RPMTAG_BASENAMES`: file base names (with [`TAG_DIRNAMES`], the file list).
pub const TAG_BASENAMES: u32 = 1117;
/// `RPMTAG_DIRNAMES`: the directories the base names index into.
pub const TAG_DIRNAMES: u32 = 1118;
/// `RPMTAG_INSTALLTID`: the install transaction ID (a time in seconds).
pub const TAG_INSTALLTID: u32 = 1128;
/// `RPMTAG_RECOMMENDNAME`.
pub const TAG_RECOMMENDNAME: u32 = 5046;
/// `RPMTAG_SUGGESTNAME`.
pub const TAG_SUGGESTNAME: u32 = 5049;
/// `RPMTAG_SUPPLEMENTNAME`.
pub const TAG_SUPPLEMENTNAME: u32 = 5052;
/// `RPMTAG_ENHANCENAME`.
pub const TAG_ENHANCENAME: u32 = 5055;
/// `RPMTAG_FILETRIGGERNAME`.
pub const TAG_FILETRIGGERNAME: u32 = 5069;
/// `RPMTAG_FILETRIGGERINDEX`.
pub const TAG_FILETRIGGERINDEX: u32 = 5070;
/// `RPMTAG_TRANSFILETRIGGERNAME`.
pub const TAG_TRANSFILETRIGGERNAME: u32 = 5079;
/// `RPMTAG_TRANSFILETRIGGERINDEX`.
pub const TAG_TRANSFILETRIGGERINDEX: u32 = 5080;

/// The index tables rpm keeps (`dbiTags` in lib/rpmdb.c), named as rpm names them
/// (`rpmTagGetName`), with whether the key column is TEXT (string tags) or BLOB.
pub const INDEXES: [(&str, u32, bool); 18] = [
    ("Name", TAG_NAME, true),
    ("Basenames", TAG_BASENAMES, true),
    ("Group", TAG_GROUP, true),
    ("Requirename", TAG_REQUIRENAME, true),
    ("Providename", TAG_PROVIDENAME, true),
    ("Conflictname", TAG_CONFLICTNAME, true),
    ("Obsoletename", TAG_OBSOLETENAME, true),
    ("Triggername", TAG_TRIGGERNAME, true),
    ("Dirnames", TAG_DIRNAMES, true),
    ("Installtid", TAG_INSTALLTID, false),
    ("Sigmd5", TAG_SIGMD5, false),
    ("Sha1header", TAG_SHA1HEADER, true),
    ("Filetriggername", TAG_FILETRIGGERNAME, true),
    ("Transfiletriggername", TAG_TRANSFILETRIGGERNAME, true),
    ("Recommendname", TAG_RECOMMENDNAME, true),
    ("Suggestname", TAG_SUGGESTNAME, true),
    ("Supplementname", TAG_SUPPLEMENTNAME, true),
    ("Enhancename", TAG_ENHANCENAME, true),
];

/// Tables sqlite itself keeps (AUTOINCREMENT, `PRAGMA optimize`). The statistics are not
/// carried over: rpm's next `PRAGMA optimize` recomputes them.
const SQLITE_TABLES: [&str; 3] = ["sqlite_sequence", "sqlite_stat1", "sqlite_stat4"];

const PAGE_SIZE: u32 = 4096;

/// One installed package.
#[derive(Clone, Debug)]
pub struct Package {
    /// Its number in the `Packages` table (rpm's header number).
    pub hnum: i64,
    /// `RPMTAG_NAME`.
    pub name: String,
    /// `RPMTAG_ARCH`; empty when the header has none (`gpg-pubkey`).
    pub arch: String,
    /// `[epoch:]version-release`
    pub evr: String,
    /// The header blob exactly as stored in `Packages`.
    pub blob: Vec<u8>,
    /// The parsed header.
    pub header: Header,
}

/// A database as read: its packages in `hnum` order, and its schema (rpm's SQL, in order).
#[derive(Clone, Debug)]
pub struct RpmDb {
    /// In `hnum` order.
    pub packages: Vec<Package>,
    schema: Vec<(String, String, String)>,
    /// How this database's `Installtid` keys are encoded (rpm writes the host's byte order).
    big_endian_tid: bool,
}

fn sql_err(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

/// Opens database bytes in memory, read-only. A WAL-mode header is read as rollback mode: only
/// the main file is read (a pending `-wal` is refused by the caller).
fn open(bytes: &[u8]) -> Result<Connection, String> {
    if bytes.len() < 100 || !bytes.starts_with(b"SQLite format 3\0") {
        return Err("not an SQLite 3 database".into());
    }
    let mut copy = bytes.to_vec();
    copy[18] = 1;
    copy[19] = 1;
    let mut conn = Connection::open_in_memory().map_err(sql_err)?;
    conn.deserialize_read_exact(MAIN_DB, &copy[..], copy.len(), true)
        .map_err(sql_err)?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("corrupt database: {e}"))?;
    if check != "ok" {
        return Err(format!("corrupt database: {check}"));
    }
    Ok(conn)
}

/// Reads a database: schema checked against what rpm writes, every header parsed.
pub fn read(bytes: &[u8]) -> Result<RpmDb, String> {
    let conn = open(bytes)?;
    let mut schema = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
            .map_err(|e| format!("corrupt database: {e}"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(sql_err)?;
        for row in rows {
            let (ty, name, table, sql) = row.map_err(sql_err)?;
            let known = table == "Packages"
                || INDEXES.iter().any(|(n, _, _)| *n == table)
                || SQLITE_TABLES.contains(&table.as_str());
            if !known {
                return Err(format!(
                    "{ty} {name:?} on table {table:?} is not one rpm 4.16-4.20 writes (a database of another rpm version?)"
                ));
            }
            if !SQLITE_TABLES.contains(&table.as_str()) {
                // Automatic indexes have no SQL and are recreated with their table.
                if let Some(sql) = sql {
                    schema.push((ty, name, sql));
                }
            }
        }
    }
    if !schema
        .iter()
        .any(|(ty, name, _)| ty == "table" && name == "Packages")
    {
        return Err("no Packages table (not an rpm database?)".into());
    }
    let mut packages = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
            .map_err(|e| format!("Packages table is not rpm's: {e}"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(sql_err)?;
        for row in rows {
            let (hnum, blob) = row.map_err(|e| format!("Packages table is not rpm's: {e}"))?;
            let header = rpmheader::parse(&blob).map_err(|e| format!("package #{hnum}: {e}"))?;
            let name = header
                .string(TAG_NAME)
                .ok_or_else(|| format!("package #{hnum}: header has no name"))?;
            let version = header.string(TAG_VERSION).unwrap_or_default();
            let release = header.string(TAG_RELEASE).unwrap_or_default();
            let evr = match header.u32s(TAG_EPOCH).and_then(|e| e.first()) {
                Some(e) => format!("{e}:{version}-{release}"),
                None => format!("{version}-{release}"),
            };
            let arch = header.string(TAG_ARCH).unwrap_or_default();
            packages.push(Package {
                hnum,
                name,
                arch,
                evr,
                blob,
                header,
            });
        }
    }
    let big_endian_tid = installtid_is_big_endian(&conn, &packages);
    Ok(RpmDb {
        packages,
        schema,
        big_endian_tid,
    })
}

/// rpm keys `Installtid` by the integer in the host's byte order; an image of a big-endian
/// architecture has big-endian keys. Decided from the rows the database already has
/// (little-endian when nothing tells).
fn installtid_is_big_endian(conn: &Connection, packages: &[Package]) -> bool {
    let Ok(mut stmt) = conn.prepare("SELECT key, hnum FROM Installtid") else {
        return false;
    };
    let Ok(rows) = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
    else {
        return false;
    };
    let by_hnum: HashMap<i64, &Package> = packages.iter().map(|p| (p.hnum, p)).collect();
    for (key, hnum) in rows.flatten() {
        let Some(tid) = by_hnum
            .get(&hnum)
            .and_then(|p| p.header.u32s(TAG_INSTALLTID))
            .and_then(|v| v.first())
        else {
            continue;
        };
        if tid.to_be_bytes() != tid.to_le_bytes() {
            return key == tid.to_be_bytes();
        }
    }
    false
}

/// One row of an index table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexRow {
    /// The index key: the tag's value (a name, a digest, a big- or little-endian number).
    pub key: Vec<u8>,
    /// The position of the value in the tag's array.
    pub idx: u32,
}

/// rpm's `isTransientReq`: install-time-only requirements (rpmlib(), pre/post scriptlets,
/// pretrans/posttrans, keyring) are not indexed.
pub(crate) fn is_transient_req(flags: u32) -> bool {
    const PREREQ: u32 = 1 << 6;
    let notpre = |x: u32| x & !PREREQ;
    let install_only = notpre(
        (1 << 9) | (1 << 10) | (1 << 24) | (1 << 26) | (1 << 7) | (1 << 5), // pre post rpmlib keyring pretrans posttrans
    );
    let erase_only = notpre((1 << 11) | (1 << 12)); // preun postun
    const META: u32 = 1 << 29;
    flags & install_only != 0 && flags & erase_only == 0 && flags & META == 0
}

/// The rows rpm's `tag2index` writes for one header and one index tag.
pub fn index_rows(
    header: &Header,
    tag: u32,
    big_endian_tid: bool,
) -> Result<Vec<IndexRow>, String> {
    let mut rows = Vec::new();
    let keys: Vec<Vec<u8>> = match header.get(tag) {
        None if tag == TAG_GROUP => vec![b"Unknown".to_vec()],
        None => return Ok(rows),
        // rpm reads an I18N string in the C locale: the first one.
        Some(Value::Strings(s)) if header.type_of(tag) == Some(rpmheader::TYPE_I18NSTRING) => {
            s.iter().take(1).cloned().collect()
        }
        Some(Value::Strings(s)) => s.clone(),
        // A BIN value is one key (rpm counts it as one entry).
        Some(Value::Bytes(b)) if header.type_of(tag) == Some(rpmheader::TYPE_BIN) => {
            vec![b.clone()]
        }
        Some(Value::Bytes(b)) => b.iter().map(|x| vec![*x]).collect(),
        Some(Value::Int16(v)) => v.iter().map(|x| x.to_le_bytes().to_vec()).collect(),
        Some(Value::Int32(v)) => v
            .iter()
            .map(|x| {
                if big_endian_tid {
                    x.to_be_bytes().to_vec()
                } else {
                    x.to_le_bytes().to_vec()
                }
            })
            .collect(),
        Some(Value::Int64(v)) => v.iter().map(|x| x.to_le_bytes().to_vec()).collect(),
    };
    let trigger_index = match tag {
        TAG_FILETRIGGERNAME => Some(TAG_FILETRIGGERINDEX),
        TAG_TRANSFILETRIGGERNAME => Some(TAG_TRANSFILETRIGGERINDEX),
        _ => None,
    };
    let trigger_index = match trigger_index {
        Some(t) => Some(
            header
                .u32s(t)
                .filter(|v| v.len() >= keys.len())
                .ok_or_else(|| format!("tag {tag} has no matching trigger index (tag {t})"))?,
        ),
        None => None,
    };
    let req_flags = (tag == TAG_REQUIRENAME)
        .then(|| header.u32s(TAG_REQUIREFLAGS))
        .flatten();
    for (i, key) in keys.iter().enumerate() {
        let idx = trigger_index.map_or(i as u32, |t| t[i]);
        if let Some(f) = req_flags.and_then(|f| f.get(i)) {
            if is_transient_req(*f) {
                continue;
            }
        }
        if tag == TAG_TRIGGERNAME && keys[..i].contains(key) {
            continue;
        }
        rows.push(IndexRow {
            key: key.clone(),
            idx,
        });
        let rich_tags = [
            TAG_REQUIRENAME,
            TAG_CONFLICTNAME,
            TAG_SUGGESTNAME,
            TAG_SUPPLEMENTNAME,
            TAG_RECOMMENDNAME,
            TAG_ENHANCENAME,
        ];
        if key.first() == Some(&b'(')
            && rich_tags.contains(&tag)
            && header.type_of(tag) == Some(rpmheader::TYPE_STRING_ARRAY)
        {
            for name in rich_names(key) {
                rows.push(IndexRow { key: name, idx });
            }
        }
    }
    Ok(rows)
}

/// The names rpm indexes for a rich dependency (`updateRichDep`): every simple dependency's
/// name except `rpmlib(...)`, prefixed with `!` where negated by `if`/`unless`, sorted, without
/// duplicates. Nothing when the dependency does not parse (rpm then indexes only the whole).
pub fn rich_names(dep: &[u8]) -> Vec<Vec<u8>> {
    let mut st = Rich {
        argv: Vec::new(),
        neg: false,
        levels: Vec::new(),
    };
    let mut p = 0;
    if st.parse(dep, &mut p, &mut 0).is_none() {
        return Vec::new();
    }
    st.argv.sort();
    st.argv.dedup();
    st.argv
        .into_iter()
        .map(|mut n| {
            if n[0] == b' ' {
                n.remove(0);
            }
            n
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Single,
    And,
    Or,
    If,
    Unless,
    Else,
    With,
    Without,
}

const NO_WITH: u32 = 1 << 1;

struct Rich {
    argv: Vec<Vec<u8>>,
    neg: bool,
    /// Per open parenthesis: where its current condition block starts in `argv`.
    levels: Vec<usize>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn skip_white(s: &[u8], p: &mut usize) {
    while *p < s.len() && (is_space(s[*p]) || s[*p] == b',') {
        *p += 1;
    }
}

/// rpm's SKIPNONWHITEX: a token, where parentheses nest (`perl(Foo)`).
fn skip_nonwhite(s: &[u8], p: &mut usize) {
    let mut bl = 0i32;
    while *p < s.len() {
        let c = s[*p];
        if is_space(c) || c == b',' {
            break;
        }
        if c == b')' {
            let stop = bl <= 0;
            bl -= 1;
            if stop {
                break;
            }
        }
        *p += 1;
        if c == b'(' {
            bl += 1;
        }
    }
}

impl Rich {
    /// `rpmrichParseInternal` with the callback of `updateRichDep`; `None`: does not parse.
    fn parse(&mut self, s: &[u8], p: &mut usize, checkp: &mut u32) -> Option<()> {
        // ENTER
        self.levels.push(self.argv.len());
        if s.get(*p) != Some(&b'(') {
            return None;
        }
        *p += 1;
        let (mut op, mut firstop, mut chainop) = (Op::Single, Op::Single, None::<Op>);
        let mut check = *checkp;
        loop {
            skip_white(s, p);
            match s.get(*p) {
                Some(b')') | None => return None,
                Some(b'(') => {
                    let mut sub = 0;
                    self.parse(s, p, &mut sub)?;
                    check |= sub;
                }
                Some(_) => self.simple(s, p)?,
            }
            skip_white(s, p);
            match s.get(*p) {
                None => return None,
                Some(b')') => break,
                Some(_) => {}
            }
            let start = *p;
            while *p < s.len() && !is_space(s[*p]) && s[*p] != b')' {
                *p += 1;
            }
            op = match &s[start..*p] {
                b"and" => Op::And,
                b"or" => Op::Or,
                b"if" => Op::If,
                b"unless" => Op::Unless,
                b"else" => Op::Else,
                b"with" => Op::With,
                b"without" => Op::Without,
                _ => return None,
            };
            if firstop == Op::Single {
                firstop = op;
            }
            if op == Op::Else && matches!(chainop, Some(Op::If | Op::Unless)) {
                chainop = None;
            }
            if let Some(c) = chainop {
                if op != c || !matches!(op, Op::And | Op::Or | Op::With) {
                    return None;
                }
            }
            // OP callback
            let level = self.levels.len() - 1;
            match op {
                Op::If | Op::Unless => {
                    self.levels[level] = self.argv.len();
                    self.neg = !self.neg;
                }
                Op::Else => {
                    let block: Vec<Vec<u8>> = self.argv[self.levels[level]..]
                        .iter()
                        .map(|n| {
                            let mut n = n.clone();
                            n[0] = if n[0] == b' ' { b'!' } else { b' ' };
                            n
                        })
                        .collect();
                    self.argv.extend(block);
                    self.neg = !self.neg;
                }
                _ => {}
            }
            chainop = Some(op);
        }
        if matches!(firstop, Op::With | Op::Without) && check & NO_WITH != 0 {
            return None;
        }
        if !matches!(op, Op::Single | Op::With | Op::Without | Op::Or) {
            check |= NO_WITH;
        }
        *p += 1;
        // LEAVE
        self.levels.pop();
        if matches!(op, Op::If | Op::Unless) {
            self.neg = !self.neg;
        }
        *checkp |= check;
        Some(())
    }

    fn simple(&mut self, s: &[u8], p: &mut usize) -> Option<()> {
        let n = *p;
        skip_nonwhite(s, p);
        let name = &s[n..*p];
        if name.is_empty() {
            return None;
        }
        skip_white(s, p);
        if *p < s.len() {
            let mut pe = *p;
            skip_nonwhite(s, &mut pe);
            let sense = matches!(
                &s[*p..pe],
                b"<=" | b"=<" | b"<" | b"==" | b"=" | b">=" | b"=>" | b">"
            );
            if sense {
                *p = pe;
                skip_white(s, p);
                let e = *p;
                skip_nonwhite(s, p);
                if *p == e {
                    return None;
                }
            }
        }
        if !(name.len() > 7 && name.starts_with(b"rpmlib(")) {
            let mut entry = vec![if self.neg { b'!' } else { b' ' }];
            entry.extend_from_slice(name);
            self.argv.push(entry);
        }
        Some(())
    }
}

/// The merged database and what changed, as [`super::Merged`] says it for text databases.
#[derive(Clone, Debug)]
pub struct RpmMerged {
    /// The database file to write.
    pub bytes: Vec<u8>,
    /// The result holds exactly the application's headers: its file can stay as it is.
    pub same_as_app: bool,
    /// How many packages (headers) the result holds.
    pub packages: usize,
    /// Packages whose version differs from the application's copy (what the image had).
    pub changes: Vec<PackageChange>,
    /// In the result, not in the application's copy (added by the new base).
    pub added: Vec<PackageEntry>,
    /// In the application's copy, not in the result (removed by the new base).
    pub removed: Vec<PackageEntry>,
    /// Packages both the application and the new base changed: the application's version is kept.
    pub pins: Vec<Pin>,
}

type Group<'a> = Vec<&'a Package>;

fn groups(db: Option<&RpmDb>) -> BTreeMap<(&str, &str), Group<'_>> {
    let mut m: BTreeMap<(&str, &str), Group> = BTreeMap::new();
    for p in db.map_or(&[][..], |d| &d.packages) {
        m.entry((&p.name, &p.arch)).or_default().push(p);
    }
    m
}

fn blobs<'a>(g: Option<&Group<'a>>) -> BTreeSet<&'a [u8]> {
    g.map_or_else(BTreeSet::new, |g| g.iter().map(|p| &p.blob[..]).collect())
}

fn versions(g: Option<&Group>) -> Option<String> {
    let g = g.filter(|g| !g.is_empty())?;
    let mut v: Vec<&str> = g.iter().map(|p| p.evr.as_str()).collect();
    v.sort();
    Some(v.join(", "))
}

/// Merges the application's database with the old and new base's (`None`: that image has
/// none) and writes the result.
pub fn merge(old: Option<&RpmDb>, new: Option<&RpmDb>, app: &RpmDb) -> Result<RpmMerged, String> {
    let (o, n, a) = (groups(old), groups(new), groups(Some(app)));
    let keys: BTreeSet<(&str, &str)> = o.keys().chain(n.keys()).chain(a.keys()).copied().collect();
    let mut from_new = BTreeSet::new();
    let mut from_app = BTreeSet::new();
    let mut out = RpmMerged {
        bytes: Vec::new(),
        same_as_app: false,
        packages: 0,
        changes: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
        pins: Vec::new(),
    };
    for k in keys {
        let (bo, bn, ba) = (blobs(o.get(&k)), blobs(n.get(&k)), blobs(a.get(&k)));
        let chosen_new = if ba == bo {
            true
        } else if bn == bo || ba == bn {
            false
        } else {
            out.pins.push(Pin {
                package: k.0.to_string(),
                arch: k.1.to_string(),
                app_version: versions(a.get(&k)),
                new_base_version: versions(n.get(&k)),
            });
            false
        };
        let result = if chosen_new { n.get(&k) } else { a.get(&k) };
        if chosen_new {
            from_new.insert(k);
        } else {
            from_app.insert(k);
        }
        let entry = |version: String| PackageEntry {
            package: k.0.to_string(),
            arch: k.1.to_string(),
            version,
        };
        match (versions(a.get(&k)), versions(result)) {
            (Some(f), Some(t)) if f != t => out.changes.push(PackageChange {
                package: k.0.to_string(),
                arch: k.1.to_string(),
                from: f,
                to: t,
            }),
            (None, Some(t)) => out.added.push(entry(t)),
            (Some(f), None) => out.removed.push(entry(f)),
            _ => {}
        }
    }
    // rpm lists packages in hnum order: the new base's first (as a rebuild on it would), then
    // the application's own.
    let mut chosen: Vec<&Package> = Vec::new();
    for p in new.map_or(&[][..], |d| &d.packages) {
        if from_new.contains(&(p.name.as_str(), p.arch.as_str())) {
            chosen.push(p);
        }
    }
    for p in &app.packages {
        if from_app.contains(&(p.name.as_str(), p.arch.as_str())) {
            chosen.push(p);
        }
    }
    out.packages = chosen.len();
    let mut chosen_blobs: Vec<&[u8]> = chosen.iter().map(|p| &p.blob[..]).collect();
    let mut app_blobs: Vec<&[u8]> = app.packages.iter().map(|p| &p.blob[..]).collect();
    chosen_blobs.sort();
    app_blobs.sort();
    out.same_as_app = chosen_blobs == app_blobs;
    out.bytes = write(app, &chosen)?;
    Ok(out)
}

struct KeyParam<'a>(&'a [u8], bool);

impl rusqlite::ToSql for KeyParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(if self.1 {
            ValueRef::Text(self.0)
        } else {
            ValueRef::Blob(self.0)
        }))
    }
}

/// A fresh database with `schema_of`'s schema holding `packages`, numbered 1..n.
pub fn write(schema_of: &RpmDb, packages: &[&Package]) -> Result<Vec<u8>, String> {
    let mut conn = Connection::open_in_memory().map_err(sql_err)?;
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))
        .map_err(sql_err)?;
    let tx = conn.transaction().map_err(sql_err)?;
    for (_, _, sql) in &schema_of.schema {
        tx.execute_batch(sql).map_err(sql_err)?;
    }
    let tables: Vec<String> = schema_of
        .schema
        .iter()
        .filter(|(ty, _, _)| ty == "table")
        .map(|(_, name, _)| name.clone())
        .collect();
    {
        let mut put = tx
            .prepare("INSERT INTO Packages (hnum, blob) VALUES (?, ?)")
            .map_err(sql_err)?;
        for (i, p) in packages.iter().enumerate() {
            put.execute(params![i as i64 + 1, p.blob])
                .map_err(sql_err)?;
        }
        for (table, tag, text) in INDEXES {
            if !tables.iter().any(|t| t == table) {
                continue;
            }
            let mut put = tx
                .prepare(&format!("INSERT INTO '{table}' VALUES (?, ?, ?)"))
                .map_err(sql_err)?;
            for (i, p) in packages.iter().enumerate() {
                let rows = index_rows(&p.header, tag, schema_of.big_endian_tid)
                    .map_err(|e| format!("package {}-{}.{}: {e}", p.name, p.evr, p.arch))?;
                for r in rows {
                    put.execute(params![KeyParam(&r.key, text), i as i64 + 1, r.idx])
                        .map_err(sql_err)?;
                }
            }
        }
    }
    tx.commit().map_err(sql_err)?;
    conn.execute_batch("VACUUM").map_err(sql_err)?;
    let mut bytes = conn.serialize(MAIN_DB).map_err(sql_err)?.to_vec();
    // Rollback-journal mode: readers need no -wal/-shm; rpm switches to WAL when it writes.
    bytes[18] = 1;
    bytes[19] = 1;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::rpmheader::tests::{build, ints, s, strs};
    use super::super::rpmheader::{TYPE_BIN, TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY};
    use super::*;

    const RPM_SCHEMA: &str = "
        CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);
        CREATE TABLE 'Name' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
        CREATE INDEX 'Name_key_idx' ON 'Name'(key ASC);
        CREATE TABLE 'Requirename' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
        CREATE TABLE 'Installtid' (key 'BLOB' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));";

    fn header(name: &str, version: &str, release: &str, requires: &[(&str, u32)]) -> Vec<u8> {
        let mut e = vec![
            (TAG_NAME, TYPE_STRING, 1, s(name)),
            (TAG_VERSION, TYPE_STRING, 1, s(version)),
            (TAG_RELEASE, TYPE_STRING, 1, s(release)),
            (TAG_ARCH, TYPE_STRING, 1, s("x86_64")),
            (TAG_INSTALLTID, TYPE_INT32, 1, ints(&[0x01020304])),
        ];
        if !requires.is_empty() {
            let names: Vec<&str> = requires.iter().map(|r| r.0).collect();
            let flags: Vec<u32> = requires.iter().map(|r| r.1).collect();
            e.push((
                TAG_REQUIREFLAGS,
                TYPE_INT32,
                flags.len() as u32,
                ints(&flags),
            ));
            e.push((
                TAG_REQUIRENAME,
                TYPE_STRING_ARRAY,
                names.len() as u32,
                strs(&names),
            ));
        }
        e.sort_by_key(|x| x.0);
        build(&e)
    }

    /// A database as rpm lays it out (its SQL), holding `blobs` as packages 1..n.
    fn db(blobs: &[Vec<u8>]) -> Vec<u8> {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(RPM_SCHEMA).unwrap();
        for b in blobs {
            c.execute("INSERT INTO Packages (blob) VALUES (?)", [b])
                .unwrap();
        }
        c.serialize(MAIN_DB).unwrap().to_vec()
    }

    fn rows(bytes: &[u8], table: &str) -> Vec<(Vec<u8>, i64, i64)> {
        let c = open(bytes).unwrap();
        let mut st = c
            .prepare(&format!(
                "SELECT CAST(key AS BLOB), hnum, idx FROM '{table}' ORDER BY 2, 3, 1"
            ))
            .unwrap();
        let r = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        r.map(|x| x.unwrap()).collect()
    }

    #[test]
    fn rich_dependencies_index_like_rpm() {
        let names = |d: &str| -> Vec<String> {
            rich_names(d.as_bytes())
                .into_iter()
                .map(|n| String::from_utf8(n).unwrap())
                .collect()
        };
        assert_eq!(names("(osslite or basefs)"), ["basefs", "osslite"]);
        assert_eq!(
            names("(a >= 1.0 and perl(Foo::Bar))"),
            ["a", "perl(Foo::Bar)"]
        );
        // `if` negates the condition; `else` adds the condition again, inverted.
        assert_eq!(names("(a if b)"), ["a", "!b"]);
        // Sorted with the prefixes (' ' before '!'), positive names then without theirs.
        assert_eq!(names("(a if b else c)"), ["a", "b", "c", "!b"]);
        assert_eq!(names("(a unless (b and c))"), ["a", "!b", "!c"]);
        assert_eq!(names("(rpmlib(X) or a)"), ["a"]);
        assert_eq!(names("(a and a)"), ["a"]);
        // Does not parse: rpm indexes only the whole string.
        for bad in [
            "(a",
            "(a foo b)",
            "(a and b or c)",
            "()",
            "(a >=)",
            "((a and b) with c)",
        ] {
            assert!(names(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn index_rows_follow_tag2index() {
        // rpmlib() and %pre requirements are install-time only: not indexed; PREREQ alone is.
        let h = rpmheader::parse(&header(
            "curl",
            "8.0",
            "1",
            &[
                ("rpmlib(X)", 1 << 24),
                ("/bin/sh", 1 << 9),
                ("libssl.so.3", 0),
                ("pre", 1 << 6),
            ],
        ))
        .unwrap();
        let keys = |tag| -> Vec<(String, u32)> {
            index_rows(&h, tag, false)
                .unwrap()
                .into_iter()
                .map(|r| (String::from_utf8_lossy(&r.key).into_owned(), r.idx))
                .collect()
        };
        assert_eq!(
            keys(TAG_REQUIRENAME),
            [("libssl.so.3".to_string(), 2), ("pre".into(), 3)]
        );
        assert_eq!(keys(TAG_GROUP), [("Unknown".to_string(), 0)]);
        assert!(keys(TAG_PROVIDENAME).is_empty());
        let tid = index_rows(&h, TAG_INSTALLTID, false).unwrap();
        assert_eq!(tid[0].key, vec![4, 3, 2, 1]);
        assert_eq!(
            index_rows(&h, TAG_INSTALLTID, true).unwrap()[0].key,
            vec![1, 2, 3, 4]
        );
        // Sigmd5 is one BIN key; trigger names are deduplicated.
        let h = rpmheader::parse(&build(&[
            (TAG_SIGMD5, TYPE_BIN, 4, vec![9, 8, 7, 6]),
            (
                TAG_TRIGGERNAME,
                TYPE_STRING_ARRAY,
                3,
                strs(&["a", "b", "a"]),
            ),
        ]))
        .unwrap();
        assert_eq!(
            index_rows(&h, TAG_SIGMD5, false).unwrap(),
            [IndexRow {
                key: vec![9, 8, 7, 6],
                idx: 0
            }]
        );
        let t: Vec<u32> = index_rows(&h, TAG_TRIGGERNAME, false)
            .unwrap()
            .iter()
            .map(|r| r.idx)
            .collect();
        assert_eq!(t, [0, 1]);
    }

    #[test]
    fn merge_takes_new_base_upgrades_and_keeps_app_packages() {
        let (ssl1, ssl2) = (
            header("openssl", "3.0", "1", &[]),
            header("openssl", "3.0", "2", &[]),
        );
        let base = header("basefs", "1", "1", &[]);
        let curl = header("curl", "8.0", "1", &[("openssl", 0)]);
        let old = read(&db(&[base.clone(), ssl1.clone()])).unwrap();
        let new = read(&db(&[base.clone(), ssl2.clone()])).unwrap();
        let app = read(&db(&[base.clone(), ssl1.clone(), curl.clone()])).unwrap();
        let m = merge(Some(&old), Some(&new), &app).unwrap();
        assert!(!m.same_as_app);
        assert_eq!(m.packages, 3);
        assert_eq!(
            m.changes,
            [PackageChange {
                package: "openssl".into(),
                arch: "x86_64".into(),
                from: "3.0-1".into(),
                to: "3.0-2".into()
            }]
        );
        assert!(m.pins.is_empty() && m.added.is_empty() && m.removed.is_empty());
        let out = read(&m.bytes).unwrap();
        let got: Vec<(&str, &str, i64)> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.evr.as_str(), p.hnum))
            .collect();
        assert_eq!(
            got,
            [
                ("basefs", "1-1", 1),
                ("openssl", "3.0-2", 2),
                ("curl", "8.0-1", 3)
            ]
        );
        assert_eq!(
            rows(&m.bytes, "Name")
                .iter()
                .map(|r| (r.0.clone(), r.1))
                .collect::<Vec<_>>(),
            [
                (b"basefs".to_vec(), 1),
                (b"openssl".to_vec(), 2),
                (b"curl".to_vec(), 3)
            ]
        );
        assert_eq!(rows(&m.bytes, "Requirename"), [(b"openssl".to_vec(), 3, 0)]);
        // Tables the application's database lacks are not invented.
        assert!(open(&m.bytes)
            .unwrap()
            .prepare("SELECT 1 FROM Basenames")
            .is_err());

        // Reproducible: same inputs, same bytes; rollback-journal header.
        let again = merge(Some(&old), Some(&new), &app).unwrap();
        assert_eq!(m.bytes, again.bytes);
        assert_eq!((m.bytes[18], m.bytes[19]), (1, 1));
        assert_eq!(u16::from_be_bytes([m.bytes[16], m.bytes[17]]), 4096);

        // Onto the same base: nothing to change.
        assert!(merge(Some(&old), Some(&old), &app).unwrap().same_as_app);

        // Both changed openssl: the application's stays, as a pin.
        let ssl3 = header("openssl", "3.0", "3", &[]);
        let app = read(&db(&[base.clone(), ssl3, curl])).unwrap();
        let m = merge(Some(&old), Some(&new), &app).unwrap();
        assert_eq!(m.pins.len(), 1);
        assert_eq!(
            m.pins[0].to_string(),
            "the application pins openssl 3.0-3 over the new base's 3.0-2"
        );
        let names: Vec<String> = read(&m.bytes)
            .unwrap()
            .packages
            .iter()
            .map(|p| format!("{}-{}", p.name, p.evr))
            .collect();
        assert_eq!(names, ["basefs-1-1", "openssl-3.0-3", "curl-8.0-1"]);
    }

    #[test]
    fn bad_databases_are_errors() {
        assert!(read(b"not a database")
            .unwrap_err()
            .contains("not an SQLite 3 database"));
        let good = db(&[header("a", "1", "1", &[])]);
        // Corrupt pages.
        let mut bad = good.clone();
        for b in &mut bad[100..] {
            *b = 0xff;
        }
        assert!(read(&bad).is_err());
        // A header with lying offsets.
        let mut lying = header("a", "1", "1", &[]);
        lying[8 + 8..8 + 12].copy_from_slice(&9999u32.to_be_bytes());
        let e = read(&db(&[lying])).unwrap_err();
        assert!(e.contains("package #1") && e.contains("outside"), "{e}");
        // A table rpm does not write: another rpm version's database.
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(RPM_SCHEMA).unwrap();
        c.execute_batch("CREATE TABLE 'Futurename' (key TEXT)")
            .unwrap();
        let other = c.serialize(MAIN_DB).unwrap().to_vec();
        assert!(read(&other).unwrap_err().contains("another rpm version"));
        // Not rpm's at all.
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE 'Name' (key TEXT)").unwrap();
        let other = c.serialize(MAIN_DB).unwrap().to_vec();
        assert!(read(&other).unwrap_err().contains("no Packages table"));
    }
}
