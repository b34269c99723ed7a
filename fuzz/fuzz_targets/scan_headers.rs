//! The layer header scan (layer::scan_headers): any stream gives entries or an error, with
//! memory bounded by the caps (a huge GNU long name or pax member is refused, not buffered),
//! and every path it returns is canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::layer::{path, scan_headers, EntryKind};

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = scan_headers(data) else {
        return;
    };
    for e in entries {
        assert!(e.path.len() <= path::MAX_PATH_BYTES, "{}", e.path);
        if e.kind == EntryKind::OpaqueDir && e.path.is_empty() {
            continue;
        }
        assert_eq!(
            path::normalize(&e.path).ok().flatten().as_deref(),
            Some(e.path.as_str()),
            "not canonical: {:?}",
            e.path
        );
    }
});
