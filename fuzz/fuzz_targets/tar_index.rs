//! The archive transports' tar index (transport/tar_index.rs): any file gives an index or an
//! error, and every member it lists can be read within its bounds.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use ocipatch::transport::tar_index::TarIndex;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, data).expect("write temp file");
    let Ok(index) = TarIndex::open(file.path()) else {
        return;
    };
    let names: Vec<String> = index.names().map(str::to_string).collect();
    for name in names.iter().take(64) {
        let Some(member) = index.get(name) else {
            continue;
        };
        let _ = index.head(member);
        if let Ok(mut r) = index.open_member(member) {
            let mut buf = Vec::new();
            let _ = r.by_ref().take(1 << 20).read_to_end(&mut buf);
        }
        let _ = index.read_member(name, 1 << 16);
    }
});
