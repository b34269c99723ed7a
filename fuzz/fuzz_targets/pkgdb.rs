//! The package-database parsers and merge (pkgdb): any bytes give a database or an error with
//! a line number, never a panic; a parsed database merged with itself writes a file that parses
//! again to the same packages (what a rebase onto the same base relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::pkgdb::{merge, parse, Format};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[selector as usize % Format::ALL.len()];
    let Ok(db) = parse(format, bytes) else {
        return;
    };
    let merged = merge(Some(&db), Some(&db), &db);
    let again = parse(format, &merged.bytes).expect("what merge writes parses");
    assert_eq!(again.records.len(), db.records.len());
    assert!(merged.changes.is_empty() && merged.pins.is_empty());
});
