//! The reference parser (skopeo syntax) and fleet pattern expansion: any string gives a
//! reference or an error, never a panic; a parsed reference prints to something that parses
//! back to the same reference (or, when it may hold a password, prints redacted).
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
    // What may be a password is shown redacted (`oci-archive:x.tar:user:***@x`): such a display
    // is not meant to parse back; the text as written must.
    let printed = if reference.to_string() == reference.as_written() {
        reference.to_string()
    } else {
        assert!(reference.to_string().contains("***"), "{input:?}");
        reference.as_written().to_string()
    };
    let again = Reference::parse(&printed)
        .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again.as_written(), printed, "{input:?}");
    let _ = reference.place();
    let _ = reference.transport();
    let _ = Reference::expand(pattern, &reference, 1);
});
