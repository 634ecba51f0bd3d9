//! Proves that decoding never allocates more than the frame kind's limit,
//! whatever the bytes, by counting every allocation made while decoding.

// A global allocator is the only way to observe allocations made inside
// bincode; this file is its own test binary so nothing else is counted.
#![allow(unsafe_code)]

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use switchyard_common::proto::{Kind, PROTOCOL_VERSION, decode_frame};

struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Largest single allocation made by `f` on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    LARGEST.with(|l| l.get())
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
