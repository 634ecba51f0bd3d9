//! Bundles as the agent receives them: zstd bytes checked against a digest, then parsed as objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_common::bundle::{Bundle, BundleError, digest_of};

/// Small, so the fuzzer also meets the size limit.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // As compressed bytes. A frame that decompresses within the limit to
    // other bytes fails the digest check; the error names the real digest,
    // so decode again with it to reach the JSON check.
    let wrong = digest_of(b"");
    if let Err(BundleError::DigestMismatch { actual, .. }) = Bundle::decode(data, &wrong, LIMIT) {
        if let Ok(bundle) = Bundle::decode(data, &actual, LIMIT) {
            round_trip(&bundle);
        }
    }
    // As decompressed bytes, so the JSON check is reached without the
    // fuzzer having to produce valid zstd.
    let compressed = zstd::bulk::compress(data, 1).expect("zstd compresses any bytes");
    if let Ok(bundle) = Bundle::decode(&compressed, &digest_of(data), LIMIT) {
        round_trip(&bundle);
    }
});

/// An accepted bundle holds only objects and re-encodes to bytes that
/// decode to the same canonical form.
fn round_trip(bundle: &Bundle) {
    assert!(bundle.objects.iter().all(|o| o.is_object()));
    let encoded = bundle.encode(1).expect("an accepted bundle encodes");
    let back = Bundle::decode(&encoded.compressed, &encoded.digest, usize::MAX)
        .expect("a re-encoded bundle decodes");
    assert_eq!(back.canonical_bytes(), bundle.canonical_bytes());
}
