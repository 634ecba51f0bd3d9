//! Label selectors as an operator types them (`app create --selector`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use switchyard_common::selector::Selector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = Selector::parse(text) else {
        return;
    };
    // The canonical text parses back to the same selector.
    let canonical = selector.to_string();
    let again = Selector::parse(&canonical).expect("canonical text parses");
    assert_eq!(again, selector, "{text:?} -> {canonical:?}");
    assert_eq!(again.to_string(), canonical);
    selector.matches(&BTreeMap::new());
});
