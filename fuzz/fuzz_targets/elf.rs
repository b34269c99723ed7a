//! The streaming ELF summary (verdict::elf): any bytes, fed in any chunking, give a summary, "not
//! ELF" or an error, never a panic, a hang or unbounded memory; and the chunking never changes
//! the answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::verdict::elf::ElfScanner;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the chunk sizes; the rest is the file.
    if data.len() < 8 {
        return;
    }
    let (seed, file) = data.split_at(8);
    let mut whole = ElfScanner::new(file.len() as u64);
    whole.feed(file);
    let expected = whole.finish();

    let mut chunked = ElfScanner::new(file.len() as u64);
    let mut rest = file;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (usize::from(seed[i % 8]) + 1).min(rest.len());
        chunked.feed(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    assert_eq!(chunked.finish(), expected);
});
