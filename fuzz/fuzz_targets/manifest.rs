//! Rendered manifests as the hub parses them: multi-document YAML or JSON, with and without top-level arrays.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_common::manifest::parse_objects;

fuzz_target!(|data: &[u8]| {
    let strict = parse_objects(data, false);
    let arrays = parse_objects(data, true);
    for objects in [&strict, &arrays].into_iter().flatten() {
        for o in objects {
            let named = |v: &serde_json::Value| v.as_str().is_some_and(|s| !s.is_empty());
            assert!(named(&o["apiVersion"]) && named(&o["kind"]) && named(&o["metadata"]["name"]));
        }
    }
    // Allowing arrays only adds what was refused without them.
    if let Ok(objects) = strict {
        assert_eq!(arrays.ok(), Some(objects));
    }
});
