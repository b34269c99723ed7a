//! The ld.so.cache reader (verdict::ldso::read_cache): any bytes give entries or an error,
//! never a panic or an allocation past the input's size; what it reads writes back to a file
//! that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::verdict::ldso::{read_cache, write_cache, CacheOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(cache) = read_cache(data) else {
        return;
    };
    let opts = CacheOptions {
        generator: cache.generator.clone(),
        big_endian: cache.big_endian,
    };
    let again = read_cache(&write_cache(&cache.entries, &opts)).expect("what we write reads");
    assert_eq!(again, cache);
});
