//! Push webhook deliveries: `name: value` header lines, an empty line, then the body (as HTTP sends them).
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard_common::webhook::{normalize_url, parse, verify};

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Ok(delivery) = parse(&headers, body) {
        assert!(!delivery.repo_urls.is_empty());
        for url in &delivery.repo_urls {
            normalize_url(url);
        }
        let _ = verify(delivery.forge, &headers, body, b"fuzz-secret");
    }
});
