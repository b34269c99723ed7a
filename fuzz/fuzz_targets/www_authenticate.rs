//! The WWW-Authenticate parser (transport/registry/auth.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::transport::registry::auth::Challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(c) = Challenge::parse(header) {
        let _ = (
            c.is_bearer(),
            c.is_basic(),
            c.param("realm"),
            c.param("scope"),
        );
    }
});
