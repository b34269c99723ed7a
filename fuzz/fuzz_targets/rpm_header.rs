//! rpm's header blob parser and the index rows built from it: lying counts, offsets and
//! types give an error, never a panic or an allocation the blob cannot back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::pkgdb::rpm::{index_rows, TAG_NAME, TAG_PROVIDENAME, TAG_REQUIRENAME};
use ocipatch::pkgdb::rpmheader::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = parse(data) else {
        return;
    };
    for tag in [TAG_NAME, TAG_PROVIDENAME, TAG_REQUIRENAME] {
        let _ = index_rows(&header, tag, false);
    }
});
