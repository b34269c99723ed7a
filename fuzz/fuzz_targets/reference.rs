//! The reference parser (skopeo syntax) and fleet pattern expansion: any string gives a
//! reference or an error, never a panic; a parsed reference prints to something that parses
//! back to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::model::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is a reference, the rest a destination pattern.
    let (input, pattern) = text
        .split_once('\n')
        .unwrap_or((text, "oci:out:{name}-{tag}"));
    let Ok(reference) = Reference::parse(input) else {
        return;
    };
    let printed = reference.to_string();
    let again = Reference::parse(&printed)
        .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again.to_string(), printed, "{input:?}");
    let _ = reference.place();
    let _ = reference.transport();
    let _ = Reference::expand(pattern, &reference, 1);
});
