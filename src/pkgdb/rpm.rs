//! rpm's sqlite database (`rpmdb.sqlite`, rpm 4.16+): read, 3-way merge by package, write.
//!
//! A package is identified by name and arch, its unit is the set of header blobs installed
//! under that name and arch (one, or several for install-only packages such as kernels), and
//! the merge rules are the common ones (see `merge`): untouched by the application ->
//! the new base's; changed by the application only -> the application's; both -> the
//! application's and a [`Pin`].
//!
//! A database from an image is data, never code. sqlite runs what a file's schema says
//! (views, triggers, CHECK and DEFAULT expressions, generated columns), so an input is opened
//! in memory read-only, with `trusted_schema` off, defensive mode on, views and triggers off,
//! no extension loading, `PRAGMA query_only`, an authorizer that lets statements read only
//! what ocipatch reads, tight sqlite limits, and a bound on the work of every statement
//! ([`WORK_PER_PAGE`]). Its schema must be exactly what rpm creates ([`super::rpmschema`]),
//! checked from `sqlite_master` before any statement touches one of its tables: a database
//! with anything else is refused, naming it.
//!
//! The result is a fresh database with rpm's own schema, created by ocipatch as rpm creates it
//! (rpm's SQL, rpm's order; never SQL from an input), the chosen headers numbered 1..n in
//! `Packages`, and every index table rebuilt from the headers as rpm's `tag2index`
//! (lib/rpmdb.c, rpm 4.16-4.20) builds it: `key` = the tag's value, `hnum` = the package
//! number, `idx` = the index in the tag's array.
//!
//! PURE: bytes in, bytes out; sqlite runs in memory (`sqlite3_deserialize`). Memory: the three
//! input databases and the output are each held once in memory, so at most about four times the
//! size cap ([`super::MAX_DB_SIZE`]).
//!
//! Reproducible: fixed page size (4096), every table filled in order and every index built
//! after its table is full (compact b-trees, no free pages: what `VACUUM` would give, without
//! its reordering of `sqlite_master`), rollback-journal header (no WAL), no timestamps; the
//! same inputs give the same bytes.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ffi, params, Connection, ErrorCode, MAIN_DB};

use super::rpmheader::{self, Header, Value};
use super::rpmschema::{self, Column, Kind, MasterRow};
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

/// sqlite pages of the written database (rpm's default and sqlite's).
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

/// A database as read: its packages in `hnum` order.
#[derive(Clone, Debug)]
pub struct RpmDb {
    /// In `hnum` order.
    pub packages: Vec<Package>,
    /// How this database's `Installtid` keys are encoded (rpm writes the host's byte order).
    pub big_endian_tid: bool,
}

/// Why an rpm database cannot be read or written, in words; the caller names the file and
/// the layer. sqlite's own error, when there is one, is the source, never the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpmDbError {
    /// The bytes are not an SQLite 3 database file.
    #[error("it is not an SQLite 3 database (no \"SQLite format 3\" header)")]
    NotSqlite,

    /// sqlite finds the file damaged: pages that do not form a database, rows that break
    /// rpm's NOT NULL rules, a schema that does not parse.
    #[error("the file is damaged: {detail}")]
    Corrupt {
        /// What is damaged, in words.
        detail: String,
    },

    /// The schema has what rpm 4.16-4.20 does not create: a view, a trigger, another table,
    /// index or column, another definition of one of rpm's.
    #[error(
        "the database has {what}; ocipatch reads only the tables and indexes rpm 4.16-4.20 creates, and runs no SQL from an image"
    )]
    ForeignSchema {
        /// The object, in words (`a view "Installtid"`, `a trigger "t" on "Packages"`,
        /// `a column "x" of table Packages that rpm does not create`).
        what: String,
    },

    /// No `Packages` table.
    #[error("it has no Packages table: not an rpm database")]
    NotRpm,

    /// A statement needed more work than the bound ocipatch gives it ([`WORK_PER_PAGE`]).
    #[error(
        "sqlite was stopped while {during}: more than {limit} steps, the bound for a file of this size (reading an rpm database takes far fewer)"
    )]
    TooMuchWork {
        /// What ocipatch was reading.
        during: &'static str,
        /// The bound, in sqlite virtual-machine instructions.
        limit: u64,
    },

    /// A package's header blob does not parse, or lacks what an index row needs.
    #[error("package #{hnum}{}: {source}", .package.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    Header {
        /// Its number in the database it came from.
        hnum: i64,
        /// `name-[epoch:]version-release.arch`, when the header parsed that far.
        package: Option<String>,
        /// What is wrong with it.
        #[source]
        source: HeaderProblem,
    },

    /// A file-trigger name without the trigger index rpm pairs it with.
    #[error("tag {tag} has no matching trigger index (tag {index_tag})")]
    TriggerIndex {
        /// The name tag.
        tag: u32,
        /// The index tag it needs.
        index_tag: u32,
    },

    /// ocipatch's guard on an input database (an authorizer) stopped one of ocipatch's own
    /// statements from using what ocipatch does not read: a bug in ocipatch, or a way around
    /// the schema check.
    #[error("ocipatch's guard stopped a statement while {during}: it would have used {what}")]
    Denied {
        /// What ocipatch was reading.
        during: &'static str,
        /// What the statement would have used (`function "load_extension"`).
        what: String,
    },

    /// sqlite failed otherwise (out of memory, a value over a limit, a bug in ocipatch).
    #[error("sqlite failed while {during}: {}", in_words(.source))]
    Sqlite {
        /// What ocipatch was doing.
        during: &'static str,
        /// sqlite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// What is wrong with one package's header ([`RpmDbError::Header`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The header blob does not parse.
    #[error(transparent)]
    Parse(#[from] rpmheader::HeaderError),
    /// The `blob` column holds something else than a blob (`text`, `an integer`…).
    #[error("its blob is {0}, not a header")]
    NotABlob(&'static str),
    /// The header has no name.
    #[error("header has no name")]
    NoName,
    /// The header lacks what an index row needs.
    #[error(transparent)]
    Index(Box<RpmDbError>),
}

/// sqlite's error in words: no bare codes, no "FOREIGN KEY constraint failed".
fn in_words(e: &rusqlite::Error) -> String {
    let words = match e {
        rusqlite::Error::SqliteFailure(f, _) | rusqlite::Error::SqlInputError { error: f, .. } => {
            match f.code {
                ErrorCode::ConstraintViolation => match f.extended_code {
                    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                        "an index row names a package number that Packages does not have"
                    }
                    ffi::SQLITE_CONSTRAINT_NOTNULL => "a value rpm requires is missing",
                    ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                        "two packages have the same number"
                    }
                    _ => "a row breaks a rule of rpm's schema",
                },
                ErrorCode::OutOfMemory => "out of memory",
                ErrorCode::TooBig => {
                    "a value or statement is larger than ocipatch lets sqlite handle"
                }
                ErrorCode::DatabaseCorrupt => "its pages do not form a valid database",
                ErrorCode::NotADatabase => "it is not an SQLite 3 database",
                ErrorCode::OperationInterrupted => "the bound on its work stopped it",
                ErrorCode::ReadOnly => "it tried to write to a database opened read-only",
                ErrorCode::TypeMismatch => "a value has another type than rpm stores",
                ErrorCode::OperationAborted => "sqlite gave up on it",
                // sqlite's own words for the code, never the code.
                _ => {
                    return format!(
                        "an unexpected failure ({})",
                        ffi::code_to_str(f.extended_code)
                    )
                }
            }
        }
        rusqlite::Error::InvalidColumnType(_, name, ty) => {
            return format!("column {name:?} holds a value of type {ty}, not what rpm stores")
        }
        rusqlite::Error::IntegralValueOutOfRange(_, v) => {
            return format!("a number out of range ({v})")
        }
        _ => "an unexpected failure in ocipatch's use of sqlite (a bug in ocipatch)",
    };
    words.to_string()
}

/// sqlite's code and message of an error sqlite raised.
fn failure(e: &rusqlite::Error) -> Option<(ErrorCode, Option<&str>)> {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => Some((f.code, msg.as_deref())),
        rusqlite::Error::SqlInputError { error, msg, .. } => Some((error.code, Some(msg))),
        _ => None,
    }
}

/// Work bound of a statement on a whole input database, in sqlite virtual-machine
/// instructions per 4 KiB of the file (at least [`WORK_FLOOR`]).
///
/// What ocipatch runs on a whole database is linear in its size: `PRAGMA quick_check` (its
/// b-tree walk is one instruction; its NOT NULL check of every row of every table about ten
/// per row) and one pass over `Packages` (a few per row; headers are big, so few rows per
/// page). Measured (`cargo test --lib pkgdb::rpm`): a Fedora-like database of 118 MB (2500
/// packages, 100 files each, every rpm index) takes 108 instructions per 4 KiB, a 9 MB one
/// 165, and the densest rpm database there is (short file names, no header padding) 470.
/// 8192 per 4 KiB leaves 17 to 75 times that, and still stops a runaway statement on a file at
/// the 128 MiB cap after about 270 million instructions (seconds). Counted in instructions,
/// not time, so the verdict does not depend on the machine or its load.
pub const WORK_PER_PAGE: u64 = 8192;

/// The least work bound of a statement on a whole database (small files).
pub const WORK_FLOOR: u64 = 1_000_000;

/// Work bound of a statement that reads the schema or a bounded number of rows: about a
/// thousand times what rpm's 50 schema objects (and the statistics sqlite loads with them)
/// take.
const WORK_SMALL: u64 = 1_000_000;

/// The most tables, indexes, views and triggers sqlite loads of an input's schema (rpm
/// creates 49, sqlite up to 3 more): a schema of millions costs its parse, refused sooner.
const SCHEMA_OBJECTS: i32 = 1000;

/// The progress handler runs every this many instructions.
const WORK_CHUNK: u64 = 1000;

/// Installtid rows read to tell its byte order ([`installtid_is_big_endian`]).
const TID_SAMPLE: u32 = 16;

/// An input database, opened as data. Every statement runs through [`Untrusted::run`]: a
/// fresh work bound, errors said in words.
struct Untrusted {
    conn: Connection,
    used: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
    /// The bound of a statement on the whole database (by its size).
    whole: u64,
    /// The work each statement took, in instructions (rounded up to [`WORK_CHUNK`]).
    work: RefCell<Vec<(&'static str, u64)>>,
    /// What the authorizer last denied.
    denied: Arc<Mutex<Option<String>>>,
}

impl Untrusted {
    /// Opens database bytes in memory, read-only, hardened before sqlite reads a byte of them.
    /// A WAL-mode header is read as rollback mode: only the main file is read (a pending
    /// `-wal` is refused by the caller).
    fn open(bytes: &[u8]) -> Result<Untrusted, RpmDbError> {
        if bytes.len() < 100 || !bytes.starts_with(b"SQLite format 3\0") {
            return Err(RpmDbError::NotSqlite);
        }
        let setup = |source| RpmDbError::Sqlite {
            during: "opening the database",
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(setup)?;
        for (config, on) in [
            (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
            (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false),
            (DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA, false),
        ] {
            conn.set_db_config(config, on).map_err(setup)?;
        }
        // Extension loading stays off: sqlite's default, never enabled here, and the
        // authorizer below denies every function call anyway.
        let max_len = i32::try_from(super::MAX_DB_SIZE).unwrap_or(i32::MAX);
        for (limit, value) in [
            (Limit::SQLITE_LIMIT_LENGTH, max_len),
            (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
            (Limit::SQLITE_LIMIT_SCHEMA, SCHEMA_OBJECTS),
            (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
            (Limit::SQLITE_LIMIT_ATTACHED, 0),
        ] {
            conn.set_limit(limit, value).map_err(setup)?;
        }
        let used = Arc::new(AtomicU64::new(0));
        let limit = Arc::new(AtomicU64::new(WORK_SMALL));
        let (u, l) = (used.clone(), limit.clone());
        conn.progress_handler(
            WORK_CHUNK as i32,
            Some(move || {
                u.fetch_add(WORK_CHUNK, Ordering::Relaxed) + WORK_CHUNK > l.load(Ordering::Relaxed)
            }),
        )
        .map_err(setup)?;
        // Bytes 18 and 19 (the WAL marks) read as 1: rollback mode, no `-wal` looked for.
        let rollback = bytes[..18].chain(&[1u8, 1][..]).chain(&bytes[20..]);
        conn.deserialize_read_exact(MAIN_DB, rollback, bytes.len(), true)
            .map_err(setup)?;
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(setup)?;
        let denied = Arc::new(Mutex::new(None));
        let d = denied.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if allowed(&ctx.action) {
                Authorization::Allow
            } else {
                *d.lock().unwrap_or_else(|e| e.into_inner()) = Some(describe(&ctx.action));
                Authorization::Deny
            }
        }))
        .map_err(setup)?;
        let pages = (bytes.len() as u64).div_ceil(4096);
        Ok(Untrusted {
            conn,
            used,
            limit,
            whole: WORK_FLOOR.max(pages.saturating_mul(WORK_PER_PAGE)),
            work: RefCell::new(Vec::new()),
            denied,
        })
    }

    /// Runs statements under a fresh bound of `limit` instructions.
    fn run<T>(
        &self,
        during: &'static str,
        limit: u64,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RpmDbError> {
        self.used.store(0, Ordering::Relaxed);
        self.limit.store(limit, Ordering::Relaxed);
        let denied = || self.denied.lock().unwrap_or_else(|e| e.into_inner()).take();
        denied();
        let result = f(&self.conn);
        self.work
            .borrow_mut()
            .push((during, self.used.load(Ordering::Relaxed)));
        if result.is_err() {
            if let Some(what) = denied() {
                return Err(RpmDbError::Denied { during, what });
            }
        }
        result.map_err(|source| {
            let Some((code, msg)) = failure(&source) else {
                return RpmDbError::Sqlite { during, source };
            };
            match code {
                ErrorCode::OperationInterrupted => RpmDbError::TooMuchWork { during, limit },
                ErrorCode::DatabaseCorrupt => RpmDbError::Corrupt {
                    detail: match msg {
                        // The schema's own SQL does not parse: sqlite's message names the
                        // object (escaped: it comes from the file).
                        Some(m) if m.starts_with("malformed database schema") => {
                            format!("its schema does not parse ({})", cut(m))
                        }
                        _ => "its pages do not form a valid database".into(),
                    },
                },
                ErrorCode::OperationAborted
                    if msg.is_some_and(|m| m.contains("too many schema objects")) =>
                {
                    RpmDbError::ForeignSchema {
                        what: format!(
                            "more than {SCHEMA_OBJECTS} schema objects (rpm creates {})",
                            rpmschema::rpm_objects().len() + 1
                        ),
                    }
                }
                ErrorCode::NotADatabase => RpmDbError::Corrupt {
                    detail: "its header is not a valid SQLite 3 header".into(),
                },
                _ => RpmDbError::Sqlite { during, source },
            }
        })
    }

    /// The rows of `sqlite_master`. Safe on any file: sqlite parses the schema's SQL (parsing
    /// runs none of it) and this reads no table of the database.
    fn schema(&self) -> Result<Vec<MasterRow>, RpmDbError> {
        self.run("reading the schema", WORK_SMALL, |c| {
            let mut st = c.prepare(
                "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY rowid",
            )?;
            let rows = st.query_map([], |r| {
                let text = |i| -> rusqlite::Result<Option<String>> {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string()),
                        ValueRef::Real(x) => Some(x.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                };
                let rootpage = match r.get_ref(3)? {
                    ValueRef::Integer(n) => n,
                    ValueRef::Null => 0,
                    _ => text(3)?.and_then(|t| t.trim().parse().ok()).unwrap_or(-1),
                };
                Ok(MasterRow {
                    kind: text(0)?.unwrap_or_default(),
                    name: text(1)?.unwrap_or_default(),
                    table: text(2)?.unwrap_or_default(),
                    rootpage,
                    sql: text(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// `PRAGMA table_xinfo` of one of rpm's tables: the parsed schema, not the table.
    fn columns(&self, table: &str) -> Result<Vec<Column>, RpmDbError> {
        self.run("reading the schema", WORK_SMALL, |c| table_xinfo(c, table))
    }

    /// `PRAGMA quick_check`: only once the schema is rpm's (it evaluates CHECK constraints).
    fn quick_check(&self) -> Result<(), RpmDbError> {
        let first: String = self.run("checking the file", self.whole, |c| {
            c.query_row("PRAGMA quick_check", [], |r| r.get(0))
        })?;
        if first == "ok" {
            return Ok(());
        }
        Err(RpmDbError::Corrupt {
            detail: format!("sqlite's check finds {}", cut(&first)),
        })
    }
}

/// Text from sqlite about the file (it may quote the file): escaped and cut.
fn cut(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// What a statement on an input database may use: reads of `sqlite_master`, of
/// `Packages (hnum, blob)` and `Installtid (key, hnum)`, and two pragmas. Everything else (a
/// function, a recursive query, a write, another table, whatever a view or trigger would pull
/// in) fails at prepare time ([`describe`] says what it was).
fn allowed(action: &AuthAction<'_>) -> bool {
    match *action {
        AuthAction::Select => true,
        AuthAction::Read {
            table_name,
            column_name,
        } => match table_name {
            "sqlite_master" | "sqlite_schema" => matches!(
                column_name,
                "type" | "name" | "tbl_name" | "rootpage" | "sql" | "ROWID"
            ),
            // "": the table is read for its rows only, no column.
            "Packages" => matches!(column_name, "hnum" | "blob" | ""),
            "Installtid" => matches!(column_name, "key" | "hnum" | ""),
            _ => false,
        },
        AuthAction::Pragma { pragma_name, .. } => {
            matches!(pragma_name, "quick_check" | "table_xinfo")
        }
        _ => false,
    }
}

/// A denied action in words, for [`RpmDbError::Denied`].
fn describe(action: &AuthAction<'_>) -> String {
    match *action {
        AuthAction::Read {
            table_name,
            column_name,
        } => format!("column {column_name:?} of table {table_name:?}"),
        AuthAction::Pragma { pragma_name, .. } => format!("PRAGMA {pragma_name}"),
        AuthAction::Function { function_name } => format!("function {function_name:?}"),
        AuthAction::Recursive => "a recursive query".into(),
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => format!("a write to table {table_name:?}"),
        AuthAction::Attach { .. } => "ATTACH".into(),
        AuthAction::Transaction { .. } => "a transaction".into(),
        ref other => format!("{other:?}"),
    }
}

fn table_xinfo(c: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    // `table` is one of rpm's names (a constant), never a name from the file.
    let mut st = c.prepare(&format!("PRAGMA table_xinfo('{table}')"))?;
    let rows = st.query_map([], |r| {
        Ok(Column {
            name: r.get(1)?,
            decl_type: r.get(2)?,
            not_null: r.get(3)?,
            default: r.get(4)?,
            pk: r.get(5)?,
            hidden: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The columns of rpm's own `table`, as sqlite describes them.
fn rpm_columns(table: &str) -> Vec<Column> {
    let build = || -> rusqlite::Result<Vec<Column>> {
        let c = Connection::open_in_memory()?;
        for o in rpmschema::rpm_objects() {
            if o.kind == Kind::Table {
                c.execute_batch(&o.sql)?;
            }
        }
        table_xinfo(&c, table)
    };
    build().unwrap_or_default()
}

/// Reads a database: schema checked against rpm's, every header parsed.
pub fn read(bytes: &[u8]) -> Result<RpmDb, RpmDbError> {
    read_from(&Untrusted::open(bytes)?)
}

fn read_from(db: &Untrusted) -> Result<RpmDb, RpmDbError> {
    let schema = db.schema()?;
    rpmschema::check(&schema, |t| db.columns(t), rpm_columns)?;
    db.quick_check()?;
    let rows = db.run("reading Packages", db.whole, |c| {
        let mut st = c.prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")?;
        let rows = st.query_map([], |r| {
            let blob = match r.get_ref(1)? {
                ValueRef::Blob(b) => Ok(b.to_vec()),
                ValueRef::Null => Err("NULL"),
                ValueRef::Integer(_) => Err("an integer"),
                ValueRef::Real(_) => Err("a real number"),
                ValueRef::Text(_) => Err("text"),
            };
            Ok((r.get::<_, i64>(0)?, blob))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })?;
    let mut packages = Vec::with_capacity(rows.len());
    for (hnum, blob) in rows {
        let header_error = |source: HeaderProblem| RpmDbError::Header {
            hnum,
            package: None,
            source,
        };
        let blob = blob.map_err(|ty| header_error(HeaderProblem::NotABlob(ty)))?;
        let header = rpmheader::parse(&blob).map_err(|e| header_error(e.into()))?;
        let name = header
            .string(TAG_NAME)
            .ok_or_else(|| header_error(HeaderProblem::NoName))?;
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
    let has_installtid = schema
        .iter()
        .any(|r| r.kind == "table" && r.name == "Installtid");
    let sample = if has_installtid {
        db.run("reading Installtid", WORK_SMALL, |c| {
            let mut st = c.prepare(&format!(
                "SELECT key, hnum FROM Installtid LIMIT {TID_SAMPLE}"
            ))?;
            let rows = st.query_map([], |r| {
                let key = match r.get_ref(0)? {
                    ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
                    _ => Vec::new(),
                };
                Ok((key, r.get::<_, i64>(1)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?
    } else {
        Vec::new()
    };
    let big_endian_tid = installtid_is_big_endian(&sample, &packages);
    Ok(RpmDb {
        packages,
        big_endian_tid,
    })
}

/// Architectures whose rpm writes big-endian `Installtid` keys.
const BIG_ENDIAN_ARCHES: [&str; 10] = [
    "s390x", "s390", "ppc64", "ppc", "sparc", "sparcv9", "sparc64", "mips", "mips64", "m68k",
];

/// rpm keys `Installtid` by the integer in the host's byte order; an image of a big-endian
/// architecture has big-endian keys (rpm run under emulation or with `--root` from another
/// host writes that host's order, so the keys decide, not the architecture).
///
/// Bounded: `sample` is the first [`TID_SAMPLE`] rows of `Installtid` in storage order
/// (`LIMIT`, so sqlite stops there whatever the table holds; the table has no index on
/// `hnum` or `key`, so a `WHERE` on either would scan it). The first row whose package's tid
/// reads differently in the two byte orders decides; tids are times in seconds, so that is
/// the first row. Without one, the packages' architectures decide; without those,
/// little-endian.
fn installtid_is_big_endian(sample: &[(Vec<u8>, i64)], packages: &[Package]) -> bool {
    for (key, hnum) in sample {
        let Ok(i) = packages.binary_search_by_key(hnum, |p| p.hnum) else {
            continue;
        };
        let Some(tid) = packages[i]
            .header
            .u32s(TAG_INSTALLTID)
            .and_then(|v| v.first())
        else {
            continue;
        };
        let (be, le) = (tid.to_be_bytes(), tid.to_le_bytes());
        if be == le {
            continue;
        }
        if *key == be {
            return true;
        }
        if *key == le {
            return false;
        }
    }
    packages
        .iter()
        .any(|p| BIG_ENDIAN_ARCHES.contains(&p.arch.as_str()))
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
) -> Result<Vec<IndexRow>, RpmDbError> {
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
                .ok_or(RpmDbError::TriggerIndex { tag, index_tag: t })?,
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
pub fn merge(
    old: Option<&RpmDb>,
    new: Option<&RpmDb>,
    app: &RpmDb,
) -> Result<RpmMerged, RpmDbError> {
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
    out.bytes = write(&chosen, app.big_endian_tid)?;
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

/// A fresh database with rpm's schema holding `packages`, numbered 1..n, with `Installtid`
/// keys in the byte order `big_endian_tid` says.
///
/// Every object is created with rpm's statement and in rpm's order ([`rpmschema::rpm_objects`]);
/// a table is filled before the next object is created and an index is built on its full
/// table, so `sqlite_master` lists what rpm's `sqlite_init` creates, in its order, and every
/// b-tree is as compact as `VACUUM` makes it.
pub fn write(packages: &[&Package], big_endian_tid: bool) -> Result<Vec<u8>, RpmDbError> {
    let during = "writing the merged database";
    let sql = |source| RpmDbError::Sqlite { during, source };
    let mut conn = Connection::open_in_memory().map_err(sql)?;
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))
        .map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    for obj in rpmschema::rpm_objects() {
        tx.execute_batch(&obj.sql).map_err(sql)?;
        if obj.kind == Kind::Index {
            continue;
        }
        if obj.table == "Packages" {
            let mut put = tx
                .prepare("INSERT INTO Packages (hnum, blob) VALUES (?, ?)")
                .map_err(sql)?;
            for (i, p) in packages.iter().enumerate() {
                put.execute(params![i as i64 + 1, p.blob]).map_err(sql)?;
            }
            continue;
        }
        let Some((table, tag, text)) = INDEXES.iter().find(|(t, _, _)| *t == obj.table) else {
            continue;
        };
        let mut put = tx
            .prepare(&format!("INSERT INTO '{table}' VALUES (?, ?, ?)"))
            .map_err(sql)?;
        for (i, p) in packages.iter().enumerate() {
            let rows =
                index_rows(&p.header, *tag, big_endian_tid).map_err(|e| RpmDbError::Header {
                    hnum: p.hnum,
                    package: Some(format!("{}-{}.{}", p.name, p.evr, p.arch)),
                    source: HeaderProblem::Index(Box::new(e)),
                })?;
            for r in rows {
                put.execute(params![KeyParam(&r.key, *text), i as i64 + 1, r.idx])
                    .map_err(sql)?;
            }
        }
    }
    tx.commit().map_err(sql)?;
    let mut bytes = conn.serialize(MAIN_DB).map_err(sql)?.to_vec();
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

    /// A database with `RPM_SCHEMA` holding `blobs`, then `more` SQL run on it (a hostile
    /// change, in the tests that need one).
    fn db_then(blobs: &[Vec<u8>], more: &str) -> Vec<u8> {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(RPM_SCHEMA).unwrap();
        for b in blobs {
            c.execute("INSERT INTO Packages (blob) VALUES (?)", [b])
                .unwrap();
        }
        c.execute_batch(more).unwrap();
        c.serialize(MAIN_DB).unwrap().to_vec()
    }

    /// A database made by `schema` (any SQL) holding `blobs` in `Packages`.
    fn db_with_schema(schema: &str, blobs: &[Vec<u8>]) -> Vec<u8> {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(schema).unwrap();
        for b in blobs {
            c.execute("INSERT INTO Packages (blob) VALUES (?)", [b])
                .unwrap();
        }
        c.serialize(MAIN_DB).unwrap().to_vec()
    }

    /// Database bytes opened plainly, for looking at what ocipatch wrote.
    fn plain(bytes: &[u8]) -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.deserialize_read_exact(MAIN_DB, bytes, bytes.len(), true)
            .unwrap();
        c
    }

    /// `f()` on another thread; fails the test when it takes longer than `secs` (a hang
    /// fails instead of blocking the run).
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
            Ok(v) => v,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("still running after {secs} s")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the thread panicked"),
        }
    }

    fn rows(bytes: &[u8], table: &str) -> Vec<(Vec<u8>, i64, i64)> {
        let c = plain(bytes);
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
        // rpm's schema, whatever the application's had (it lacks Basenames): rpm's SQL in
        // rpm's order, sqlite_sequence where AUTOINCREMENT puts it.
        let c = plain(&m.bytes);
        let mut st = c
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
            .unwrap();
        let got: Vec<(String, String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let mut want: Vec<(String, String, String, String)> = rpmschema::rpm_objects()
            .into_iter()
            .map(|o| {
                let ty = if o.kind == Kind::Table {
                    "table"
                } else {
                    "index"
                };
                (
                    ty.to_string(),
                    o.name.clone(),
                    o.table.to_string(),
                    o.stored_sql(),
                )
            })
            .collect();
        want.insert(
            1,
            (
                "table".into(),
                "sqlite_sequence".into(),
                "sqlite_sequence".into(),
                "CREATE TABLE sqlite_sequence(name,seq)".into(),
            ),
        );
        assert_eq!(got, want);
        assert_eq!(rows(&m.bytes, "Basenames"), []);
        // As compact as VACUUM makes it: no free page, no page more than a vacuumed copy.
        let count = |c: &Connection, what: &str| -> i64 {
            c.query_row(&format!("PRAGMA {what}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&c, "freelist_count"), 0);
        let mut vacuumed = Connection::open_in_memory().unwrap();
        vacuumed
            .deserialize_read_exact(MAIN_DB, &m.bytes[..], m.bytes.len(), false)
            .unwrap();
        vacuumed.execute_batch("VACUUM").unwrap();
        assert!(count(&c, "page_count") <= count(&vacuumed, "page_count"));

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
        let err = |bytes: &[u8]| read(bytes).unwrap_err();
        assert!(matches!(err(b"not a database"), RpmDbError::NotSqlite));
        let good = db(&[header("a", "1", "1", &[])]);
        // Corrupt pages.
        let mut bad = good.clone();
        for b in &mut bad[100..] {
            *b = 0xff;
        }
        let e = err(&bad);
        assert!(matches!(e, RpmDbError::Corrupt { .. }), "{e}");
        assert!(e.to_string().starts_with("the file is damaged: "), "{e}");
        // A header with lying offsets.
        let mut lying = header("a", "1", "1", &[]);
        lying[8 + 8..8 + 12].copy_from_slice(&9999u32.to_be_bytes());
        let e = err(&db(&[lying])).to_string();
        assert!(e.contains("package #1") && e.contains("outside"), "{e}");
        // A blob that is not one.
        let e = err(&db_then(&[], "INSERT INTO Packages (blob) VALUES ('text')"));
        assert_eq!(
            e.to_string(),
            "package #1: its blob is text, not a header",
            "{e:?}"
        );
        // A table rpm does not write: another rpm version's database.
        let e = err(&db_then(&[], "CREATE TABLE 'Futurename' (key TEXT)"));
        assert_eq!(
            e.to_string(),
            "the database has a table \"Futurename\" that rpm does not create; ocipatch reads \
             only the tables and indexes rpm 4.16-4.20 creates, and runs no SQL from an image"
        );
        // A schema row forged to hold what does not parse.
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(RPM_SCHEMA).unwrap();
        c.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, false)
            .unwrap();
        c.execute_batch(
            "PRAGMA writable_schema = ON; \
             INSERT INTO sqlite_master VALUES ('table', 'x', 'x', 5, 'garbage');",
        )
        .unwrap();
        let e = err(&c.serialize(MAIN_DB).unwrap());
        assert!(
            matches!(&e, RpmDbError::Corrupt { detail } if detail.starts_with("its schema does not parse")),
            "{e:?}"
        );
        // Not rpm's at all.
        let other = db_with_schema(
            "CREATE TABLE 'Name' (key TEXT); CREATE TABLE Packages2 (blob)",
            &[],
        );
        assert!(matches!(err(&other), RpmDbError::NotRpm));
        assert!(err(&other).to_string().contains("no Packages table"));
    }

    /// Every way a schema can carry code or data rpm does not write is refused, naming it,
    /// before sqlite runs any of it: none of these may hang or fire (each runs under a
    /// timeout).
    #[test]
    fn hostile_schemas_are_refused_naming_what_is_wrong() {
        let blobs = vec![
            header("basefs", "1", "1", &[]),
            header("osslite", "3.0.1", "1", &[]),
        ];
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT x AS key, 1 AS hnum, 0 AS idx FROM c";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                db_then(
                    &blobs,
                    "CREATE TRIGGER rewrite AFTER INSERT ON Packages BEGIN \
                     UPDATE Packages SET blob = (SELECT blob FROM Packages ORDER BY hnum LIMIT 1) \
                     WHERE hnum = NEW.hnum; END;",
                ),
                "a trigger \"rewrite\" on \"Packages\"",
            ),
            (
                db_then(
                    &blobs,
                    &format!("DROP TABLE Installtid; CREATE VIEW Installtid AS {endless}"),
                ),
                "a view \"Installtid\"",
            ),
            (
                db_then(&blobs, &format!("CREATE VIEW Basenames AS {endless}")),
                "a view \"Basenames\"",
            ),
            (
                db_then(&blobs, "CREATE TABLE Extra (x)"),
                "a table \"Extra\" that rpm does not create",
            ),
            (
                db_then(&blobs, "ALTER TABLE Packages ADD COLUMN evil TEXT"),
                "a column \"evil\" of table Packages that rpm does not create",
            ),
            (
                db_then(&blobs, "CREATE INDEX evil ON Packages (blob)"),
                "an index \"evil\" on \"Packages\" that rpm does not create",
            ),
            (
                db_then(
                    &blobs,
                    "DROP INDEX Name_key_idx; CREATE INDEX Name_key_idx ON Name (lower(key))",
                ),
                "an index \"Name_key_idx\" on \"Name\" defined otherwise than rpm's",
            ),
            (
                db_then(&blobs, "CREATE VIRTUAL TABLE Dirnames USING fts5(key)"),
                "a virtual table \"Dirnames\"",
            ),
            (
                db_with_schema(
                    &RPM_SCHEMA.replace(
                        "blob BLOB NOT NULL)",
                        "blob BLOB NOT NULL CHECK (length(blob) > 0))",
                    ),
                    &blobs,
                ),
                "a table Packages with constraints rpm does not create",
            ),
            (
                db_with_schema(
                    &RPM_SCHEMA.replace(
                        "blob BLOB NOT NULL)",
                        "blob BLOB NOT NULL DEFAULT (randomblob(16)))",
                    ),
                    &blobs,
                ),
                "a default value for column blob of table Packages (\"randomblob(16)\")",
            ),
            (
                db_with_schema(
                    &RPM_SCHEMA.replace(
                        "blob BLOB NOT NULL)",
                        "blob BLOB NOT NULL, evil AS (hex(blob)))",
                    ),
                    &blobs,
                ),
                "a generated column \"evil\" of table Packages that rpm does not create",
            ),
            (
                db_with_schema(
                    &RPM_SCHEMA.replace("key 'BLOB' NOT NULL", "key 'BLOB' NOT NULL DEFAULT 0"),
                    &blobs,
                ),
                "a default value for column key of table Installtid (\"0\")",
            ),
            (
                db_with_schema(
                    &RPM_SCHEMA.replacen("key 'TEXT' NOT NULL", "key INT NOT NULL", 1),
                    &blobs,
                ),
                "a column key of table Name declared otherwise than rpm's (\"INT\" NOT NULL)",
            ),
            (
                db_with_schema(
                    &RPM_SCHEMA.replace("idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));\n        CREATE TABLE 'Installtid'", "FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));\n        CREATE TABLE 'Installtid'"),
                    &blobs,
                ),
                "a table Requirename without rpm's column idx",
            ),
        ];
        for (bytes, what) in cases {
            let e = within(10, move || read(&bytes).unwrap_err());
            let text = e.to_string();
            assert!(
                matches!(e, RpmDbError::ForeignSchema { .. }) && text.contains(what),
                "want {what:?}, got {text:?}"
            );
        }
    }

    /// What rpm and sqlite leave in a real database is not foreign: `sqlite_sequence`, the
    /// statistics of `PRAGMA optimize` (`sqlite_stat1`, and `sqlite_stat4` where sqlite is
    /// built with it, as here), rpm's indexes, a WAL-mode header.
    #[test]
    fn what_rpm_and_sqlite_leave_is_read() {
        let blobs = vec![
            header("basefs", "1", "1", &[]),
            header("curl", "8", "1", &[]),
        ];
        let mut bytes = db_then(&blobs, "ANALYZE");
        let c = plain(&bytes);
        let stats: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('sqlite_stat1', 'sqlite_stat4')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stats, 2);
        bytes[18] = 2;
        bytes[19] = 2;
        let got = read(&bytes).unwrap();
        assert_eq!(got.packages.len(), 2);
        // What ocipatch writes reads back.
        let all: Vec<&Package> = got.packages.iter().collect();
        assert_eq!(
            read(&write(&all, false).unwrap()).unwrap().packages.len(),
            2
        );
    }

    /// The connection on an input lets statements read only what ocipatch reads, and no
    /// statement runs longer than its bound.
    #[test]
    fn input_connections_are_fenced_and_bounded() {
        let blobs: Vec<Vec<u8>> = (0..300)
            .map(|i| header(&format!("p{i}"), "1", "1", &[]))
            .collect();
        let db = Untrusted::open(&db(&blobs)).unwrap();
        for (sql, what) in [
            (
                "SELECT load_extension('/nonexistent')",
                "function \"load_extension\"",
            ),
            (
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
                "a recursive query",
            ),
            ("SELECT key FROM Name", "column \"key\" of table \"Name\""),
            ("SELECT hex(blob) FROM Packages", "function \"hex\""),
            (
                "INSERT INTO Packages (blob) VALUES (x'00')",
                "a write to table \"Packages\"",
            ),
            ("PRAGMA writable_schema = ON", "PRAGMA writable_schema"),
            ("PRAGMA query_only = OFF", "PRAGMA query_only"),
            ("ATTACH ':memory:' AS other", "ATTACH"),
        ] {
            let e = db
                .run("testing", WORK_SMALL, |c| c.execute_batch(sql))
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "ocipatch's guard stopped a statement while testing: it would have used {what}"
                ),
                "{sql}"
            );
        }
        // 300^4 rows of allowed reads: stopped at the bound, promptly.
        let e = within(30, move || {
            db.run("testing", WORK_SMALL, |c| {
                let mut st =
                    c.prepare("SELECT a.hnum FROM Packages a, Packages b, Packages c, Packages d")?;
                let rows = st.query_map([], |r| r.get::<_, i64>(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?.len())
            })
            .unwrap_err()
        });
        assert!(
            matches!(
                e,
                RpmDbError::TooMuchWork {
                    during: "testing",
                    limit: WORK_SMALL
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("more than 1000000 steps"), "{e}");
    }

    /// Headers as big as Fedora's (file lists, dependencies, a long description), written
    /// with every index rpm keeps.
    fn fedora_like(packages: usize, files: usize, pad: usize) -> Vec<u8> {
        let pad = "x".repeat(pad);
        let heads: Vec<Package> = (0..packages)
            .map(|i| {
                let base: Vec<String> = (0..files).map(|f| format!("file{f}-{i}.so")).collect();
                let dirs: Vec<String> = (0..files / 10 + 1)
                    .map(|d| format!("/usr/lib64/pkg{i}/d{d}/"))
                    .collect();
                let provides: Vec<String> = (0..10).map(|p| format!("lib{i}-{p}.so")).collect();
                let requires: Vec<String> = (0..15)
                    .map(|r| format!("lib{}-{}.so", (i + r) % packages, r % 10))
                    .collect();
                fn refs(v: &[String]) -> Vec<&str> {
                    v.iter().map(String::as_str).collect()
                }
                let mut e = vec![
                    (TAG_NAME, TYPE_STRING, 1, s(&format!("package-{i}"))),
                    (TAG_VERSION, TYPE_STRING, 1, s("1.0")),
                    (TAG_RELEASE, TYPE_STRING, 1, s("1.fc40")),
                    (1005, TYPE_STRING, 1, s(&pad)),
                    (TAG_ARCH, TYPE_STRING, 1, s("x86_64")),
                    (
                        TAG_PROVIDENAME,
                        TYPE_STRING_ARRAY,
                        10,
                        strs(&refs(&provides)),
                    ),
                    (TAG_REQUIREFLAGS, TYPE_INT32, 15, ints(&[0; 15])),
                    (
                        TAG_REQUIRENAME,
                        TYPE_STRING_ARRAY,
                        15,
                        strs(&refs(&requires)),
                    ),
                    (
                        TAG_BASENAMES,
                        TYPE_STRING_ARRAY,
                        files as u32,
                        strs(&refs(&base)),
                    ),
                    (
                        TAG_DIRNAMES,
                        TYPE_STRING_ARRAY,
                        dirs.len() as u32,
                        strs(&refs(&dirs)),
                    ),
                    (
                        TAG_INSTALLTID,
                        TYPE_INT32,
                        1,
                        ints(&[1_700_000_000 + i as u32]),
                    ),
                ];
                e.sort_by_key(|x| x.0);
                let blob = build(&e);
                Package {
                    hnum: i as i64 + 1,
                    name: format!("package-{i}"),
                    arch: "x86_64".into(),
                    evr: "1.0-1.fc40".into(),
                    header: rpmheader::parse(&blob).unwrap(),
                    blob,
                }
            })
            .collect();
        write(&heads.iter().collect::<Vec<_>>(), false).unwrap()
    }

    /// Reads `bytes`; returns the most work a whole-file statement took, per 4 KiB of file.
    fn work_per_4k(bytes: &[u8]) -> (RpmDb, u64) {
        let db = Untrusted::open(bytes).unwrap();
        let read = read_from(&db).unwrap();
        let most = db
            .work
            .borrow()
            .iter()
            .filter(|(during, _)| matches!(*during, "checking the file" | "reading Packages"))
            .map(|(_, w)| *w)
            .max()
            .unwrap();
        (read, most / (bytes.len() as u64).div_ceil(4096))
    }

    /// A big legit database reads, with its work far below the bound. (The bound is per 4 KiB,
    /// so what matters is how much work a page of a real database takes.)
    #[test]
    fn a_big_legit_database_reads_far_below_its_bound() {
        let bytes = fedora_like(300, 100, 20_000);
        assert!(bytes.len() > 6 << 20, "{}", bytes.len());
        let (read, per_4k) = within(120, move || work_per_4k(&bytes));
        assert_eq!(read.packages.len(), 300);
        assert!(
            per_4k * 40 < WORK_PER_PAGE,
            "{per_4k} instructions per 4 KiB"
        );
        // Small rows only: the densest an rpm database gets (no header padding).
        let bytes = fedora_like(300, 400, 0);
        let (_, per_4k) = within(120, move || work_per_4k(&bytes));
        assert!(
            per_4k * 10 < WORK_PER_PAGE,
            "{per_4k} instructions per 4 KiB"
        );
    }

    /// The size: a 100 MB Fedora-like database (2500 packages). Slow in a debug
    /// build: `cargo test --release --lib -- --ignored hundred_mb`.
    #[test]
    #[ignore]
    #[allow(clippy::disallowed_macros)] // it prints what it measured
    fn a_hundred_mb_fedora_like_database_reads() {
        let t = std::time::Instant::now();
        let bytes = fedora_like(2500, 100, 36_000);
        let size = bytes.len();
        let built = t.elapsed();
        let t = std::time::Instant::now();
        let (read, per_4k) = work_per_4k(&bytes);
        eprintln!(
            "{size} bytes, built in {built:?}, read in {:?}: {per_4k} instructions per 4 KiB (bound {WORK_PER_PAGE})",
            t.elapsed()
        );
        assert!(size > 100_000_000);
        assert_eq!(read.packages.len(), 2500);
        assert!(per_4k * 50 < WORK_PER_PAGE);
    }

    /// The Installtid byte order comes from the first rows, whatever the table holds: the
    /// same small work for 10 rows as for 100 000.
    #[test]
    fn installtid_order_is_decided_from_a_bounded_sample() {
        let work = |rows: usize, big: bool| {
            let blobs = vec![header("a", "1", "1", &[])];
            let key: Vec<u8> = if big {
                0x01020304u32.to_be_bytes().to_vec()
            } else {
                0x01020304u32.to_le_bytes().to_vec()
            };
            let mut c = Connection::open_in_memory().unwrap();
            c.execute_batch(RPM_SCHEMA).unwrap();
            for b in &blobs {
                c.execute("INSERT INTO Packages (blob) VALUES (?)", [b])
                    .unwrap();
            }
            {
                let tx = c.transaction().unwrap();
                for _ in 0..rows {
                    tx.execute("INSERT INTO Installtid VALUES (?, 1, 0)", [&key])
                        .unwrap();
                }
                tx.commit().unwrap();
            }
            let bytes = c.serialize(MAIN_DB).unwrap().to_vec();
            let db = Untrusted::open(&bytes).unwrap();
            let read = read_from(&db).unwrap();
            let w = db
                .work
                .borrow()
                .iter()
                .find(|(d, _)| *d == "reading Installtid")
                .unwrap()
                .1;
            (read.big_endian_tid, w)
        };
        let (small_be, small) = work(10, true);
        let (big_be, big) = work(100_000, true);
        assert!(small_be && big_be);
        assert!(!work(10, false).0);
        assert_eq!(small, big);
        assert!(big <= 10 * WORK_CHUNK, "{big}");
        // Nothing decides: the architecture does.
        let h = |arch: &str| {
            let blob = build(&[
                (TAG_NAME, TYPE_STRING, 1, s("a")),
                (TAG_ARCH, TYPE_STRING, 1, s(arch)),
            ]);
            Package {
                hnum: 1,
                name: "a".into(),
                arch: arch.into(),
                evr: String::new(),
                header: rpmheader::parse(&blob).unwrap(),
                blob,
            }
        };
        assert!(installtid_is_big_endian(&[], &[h("s390x")]));
        assert!(!installtid_is_big_endian(&[], &[h("x86_64"), h("noarch")]));
    }

    /// sqlite's errors reach people in words, never as codes or constraint names.
    #[test]
    fn sqlite_errors_are_said_in_words() {
        // A schema over sqlite's limit on objects.
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(RPM_SCHEMA).unwrap();
        for i in 0..1100 {
            c.execute_batch(&format!("CREATE TABLE t{i} (x)")).unwrap();
        }
        let e = read(&c.serialize(MAIN_DB).unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("the database has more than 1000 schema objects (rpm creates 49)"),
            "{e}"
        );
        let unknown = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_IOERR), None);
        assert_eq!(in_words(&unknown), "an unexpected failure (disk I/O error)");

        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for o in rpmschema::rpm_objects() {
            c.execute_batch(&o.sql).unwrap();
        }
        let source = c
            .execute("INSERT INTO Name VALUES ('a', 7, 0)", [])
            .unwrap_err();
        let e = RpmDbError::Sqlite {
            during: "writing the merged database",
            source,
        };
        assert_eq!(
            e.to_string(),
            "sqlite failed while writing the merged database: an index row names a package \
             number that Packages does not have"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = RpmDbError::Header {
            hnum: 3,
            package: Some("curl-8.0-1.x86_64".into()),
            source: HeaderProblem::Index(Box::new(RpmDbError::TriggerIndex {
                tag: 5069,
                index_tag: 5070,
            })),
        };
        assert_eq!(
            e.to_string(),
            "package #3 (curl-8.0-1.x86_64): tag 5069 has no matching trigger index (tag 5070)"
        );
    }

    /// sqlite stores rpm's statements as [`rpmschema::SchemaObject::stored_sql`] says (what the
    /// schema check compares with).
    #[test]
    fn stored_sql_is_what_sqlite_stores() {
        let bytes = write(&[], false).unwrap();
        let c = plain(&bytes);
        for o in rpmschema::rpm_objects() {
            let sql: String = c
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = ?",
                    [&o.name],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(sql, o.stored_sql());
        }
        assert_eq!(read(&bytes).unwrap().packages.len(), 0);
    }
}
