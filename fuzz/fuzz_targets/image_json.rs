//! Manifest, index and config parsing (model/image.rs): any bytes give a value or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::model::{Config, Descriptor, Index, Manifest};

const MEDIA_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
    if let Ok(m) = Manifest::parse(json, media_type) {
        let _ = (m.family(), m.annotations(), m.digest(), m.is_image());
    }
    if let Ok(i) = Index::parse(json, media_type) {
        let _ = i.annotations();
    }
    if let Ok(c) = Config::parse(json) {
        let _ = c.digest();
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
        if let Ok(d) = Descriptor::from_json(&v) {
            let _ = (d.to_json(), d.platform(), d.urls());
        }
    }
});
