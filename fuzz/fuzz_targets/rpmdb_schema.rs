//! rpm's sqlite reader (pkgdb::rpm::read) on databases built from fuzz input: any schema the
//! input makes gives a database or an error, promptly (libFuzzer's -timeout catches a hang),
//! never a panic; a database it accepts has nothing but rpm's and sqlite's own tables and
//! indexes, and what merging it writes reads back with the same packages.
//!
//! Input: a flags byte, then SQL, one statement (or batch) per line, run into a fresh
//! in-memory database by this harness (errors skipped), which is then serialized and read.
//! Flags: bits 0-1 the starting schema (none, rpm's whole schema, rpm's tables only, rpm's
//! Packages only), bit 2 three rpm-like packages inserted first, bit 3 a WAL-mode header, bit 4
//! one byte of the file flipped (offset and mask: the first line, as two numbers), bit 5 pages
//! of 512 bytes. The harness
//! runs the input's SQL with writable_schema allowed (so sqlite_master rows can be forged),
//! under a work bound, with no ATTACH (VACUUM INTO, other files) and no directory pragmas.
//! Run with the SQL dictionary: `-dict=fuzz/rpmdb_schema.dict`.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ocipatch::pkgdb::rpm::{merge, read, RpmDbError};
use ocipatch::pkgdb::rpmschema::{rpm_objects, Kind};
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::{Connection, MAIN_DB};

/// A header blob with name, version, release, arch and install time (rpm's layout: index
/// entries sorted by tag, then the data store).
fn header(name: &str, version: &str, release: &str, tid: u32) -> Vec<u8> {
    let mut entries: Vec<(u32, u32, Vec<u8>)> = Vec::new();
    let string = |s: &str| {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    };
    entries.push((1000, 6, string(name)));
    entries.push((1001, 6, string(version)));
    entries.push((1002, 6, string(release)));
    entries.push((1022, 6, string("x86_64")));
    entries.push((1128, 4, tid.to_be_bytes().to_vec()));
    let mut index = Vec::new();
    let mut store: Vec<u8> = Vec::new();
    for (tag, ty, data) in &entries {
        if *ty == 4 {
            while store.len() % 4 != 0 {
                store.push(0);
            }
        }
        for v in [*tag, *ty, store.len() as u32, 1] {
            index.extend_from_slice(&v.to_be_bytes());
        }
        store.extend_from_slice(data);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&store);
    blob
}

/// The harness's own connection: the input's SQL may do anything to the in-memory database,
/// nothing outside it, and not for long.
fn harness() -> Option<(Connection, Arc<AtomicU64>)> {
    let mut c = Connection::open_in_memory().ok()?;
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, false)
        .ok()?;
    c.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0).ok()?;
    c.set_limit(Limit::SQLITE_LIMIT_LENGTH, 1 << 20).ok()?;
    let steps = Arc::new(AtomicU64::new(0));
    let s = steps.clone();
    c.progress_handler(100, Some(move || s.fetch_add(1, Ordering::Relaxed) > 200))
        .ok()?;
    c.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.contains("directory") || pragma_name == "mmap_size" =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }))
    .ok()?;
    Some((c, steps))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((mut c, steps)) = harness() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.lines();
    let flip = if flags & 16 != 0 {
        let first = lines.next().unwrap_or("");
        let mut nums = first
            .split_whitespace()
            .map(|n| n.parse::<usize>().unwrap_or(0));
        Some((nums.next().unwrap_or(0), nums.next().unwrap_or(1) as u8))
    } else {
        None
    };
    if flags & 32 != 0 {
        let _ = c.execute_batch("PRAGMA page_size = 512");
    }
    let _ = c.execute_batch("BEGIN");
    for o in rpm_objects() {
        let wanted = match flags & 3 {
            1 => true,
            2 => o.kind == Kind::Table,
            3 => o.name == "Packages",
            _ => false,
        };
        if wanted {
            let _ = c.execute_batch(&o.sql);
        }
    }
    if flags & 4 != 0 {
        for (i, (name, release)) in [("basefs", "1"), ("osslite", "1"), ("curlite", "2")]
            .iter()
            .enumerate()
        {
            let blob = header(name, "1.0", release, 1_700_000_000 + i as u32);
            let _ = c.execute("INSERT INTO Packages (blob) VALUES (?)", [blob]);
            let _ = c.execute(
                "INSERT INTO Installtid VALUES (?, ?, 0)",
                rusqlite::params![(1_700_000_000u32 + i as u32).to_le_bytes(), i as i64 + 1],
            );
        }
    }
    let _ = c.execute_batch("COMMIT");
    for line in lines.take(64) {
        steps.store(0, Ordering::Relaxed);
        let _ = c.execute_batch(line);
    }
    let _ = c.execute_batch("PRAGMA writable_schema = OFF");
    let Ok(bytes) = c.serialize(MAIN_DB) else {
        return;
    };
    let mut bytes = bytes.to_vec();
    if flags & 8 != 0 && bytes.len() > 19 {
        bytes[18] = 2;
        bytes[19] = 2;
    }
    if let Some((at, mask)) = flip {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] ^= mask.max(1);
        }
    }
    let Ok(db) = read(&bytes) else {
        return;
    };
    // Accepted: only rpm's tables and indexes and sqlite's own, as a plain look says.
    let rpm: Vec<String> = rpm_objects().into_iter().map(|o| o.name).collect();
    let sqlite_own = ["sqlite_sequence", "sqlite_stat1", "sqlite_stat4"];
    if let Ok(mut plain) = Connection::open_in_memory() {
        let mut b = bytes.clone();
        b[18] = 1;
        b[19] = 1;
        if plain
            .deserialize_read_exact(MAIN_DB, &b[..], b.len(), true)
            .is_ok()
        {
            if let Ok(mut st) = plain.prepare("SELECT type, name FROM sqlite_master") {
                let rows: Vec<(String, String)> = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map(|rows| rows.filter_map(Result::ok).collect())
                    .unwrap_or_default();
                for (ty, name) in rows {
                    assert!(
                        (ty == "table" || ty == "index")
                            && (rpm.contains(&name) || sqlite_own.contains(&name.as_str())),
                        "read accepted a database with {ty} {name:?}"
                    );
                }
            }
        }
    }
    let merged = match merge(Some(&db), Some(&db), &db) {
        Ok(m) => m,
        // A header rpm's index rows cannot be built from: refused, by package.
        Err(RpmDbError::Header { .. }) => return,
        Err(e) => panic!("merging an accepted database: {e}"),
    };
    let again = read(&merged.bytes).expect("what merge writes reads back");
    assert_eq!(again.packages.len(), db.packages.len());
    assert!(merged.same_as_app && merged.changes.is_empty());
});
