//! Proves that decoding never allocates more than the frame kind's limit,
//! whatever the bytes, by counting every allocation made while decoding.

mod support;

use proptest::prelude::*;
use support::{Counting, measure};
use switchyard_common::proto::{Kind, PROTOCOL_VERSION, decode_frame};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Largest single allocation made by `f` on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    measure(f).1
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    f.push(kind);
    f.extend_from_slice(body);
    f
}

/// bincode (big-endian varint) prefix claiming `n` elements.
fn claim(n: u64) -> Vec<u8> {
    let mut v = vec![253u8];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

#[test]
fn hostile_claims_stay_under_each_kind_limit() {
    let mut measured_something = false;
    for kind in Kind::ALL {
        // Claims of every size up to far beyond the limit, at the first and
        // the second field of a body.
        for shift in [10u32, 16, 20, 26, 30, 40, 62] {
            let mut body = claim(1u64 << shift);
            body.extend_from_slice(&[7u8; 64]);
            let mut nested = vec![1u8];
            nested.extend_from_slice(&body);
            for body in [body, nested] {
                let bytes = frame(kind as u8, &body);
                let largest = largest_allocation(|| {
                    let _ = decode_frame(&bytes);
                });
                measured_something |= largest > 0;
                assert!(
                    largest <= kind.limit() as usize,
                    "{kind:?}: claim 2^{shift} allocated {largest} bytes, limit {}",
                    kind.limit()
                );
            }
        }
    }
    // Guard against the counter silently not counting.
    assert!(measured_something, "the allocation counter saw nothing");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_frames_stay_under_the_limit(kind in 1u8..=14, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let bytes = frame(kind, &body);
        let limit = Kind::from_byte(kind).unwrap().limit() as usize;
        let largest = largest_allocation(|| {
            let _ = decode_frame(&bytes);
        });
        prop_assert!(largest <= limit, "allocated {} > {}", largest, limit);
    }
}
