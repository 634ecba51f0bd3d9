//! A zstd bomb (100 MB of zeros in a few KB) is refused under a 1 MB limit
//! without the decoder's output buffer ever growing past the limit.

// A global allocator is the only way to observe the buffer sizes decode
// allocates; this file is its own test binary so nothing else is counted.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use switchyard_common::bundle::{Bundle, BundleError, digest_of};

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
static ALLOC: Counting = Counting;

const LIMIT: usize = 1 << 20;
const BOMB: usize = 100 << 20;

fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (out, LARGEST.with(Cell::get))
}

/// Streams zeros into an encoder so the test itself never holds 100 MB.
fn bomb(level: i32, pledge: bool) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level).expect("encoder");
    if pledge {
        // The header then declares 100 MB: decode must not size buffers by it.
        encoder
            .set_pledged_src_size(Some(BOMB as u64))
            .expect("pledge");
    }
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..BOMB / zeros.len() {
        encoder.write_all(&zeros).expect("write");
    }
    encoder.finish().expect("finish")
}

#[test]
fn a_bomb_is_refused_without_allocating_it() {
    // Level 1 keeps the window (512 KiB) under the 1 MiB cap, so decoding
    // really runs and it is the output bound that stops it.
    for compressed in [bomb(1, false), bomb(1, true)] {
        assert!(compressed.len() < 64 * 1024, "{}", compressed.len());
        let (result, largest) = measure(|| Bundle::decode(&compressed, &digest_of(b"[]"), LIMIT));
        assert!(
            matches!(result, Err(BundleError::TooLarge { limit: LIMIT })),
            "{result:?}"
        );
        assert!(largest <= 2 * LIMIT + 4096, "largest allocation {largest}");
    }
}

#[test]
fn a_frame_demanding_a_big_window_is_refused() {
    // An 8 MiB window (level 19, 4 MiB of data) is more than a 1 MiB limit
    // allows: the capped decoder refuses the frame before decompressing.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 19).expect("encoder");
    encoder.window_log(23).expect("window");
    encoder.write_all(&vec![7u8; 4 << 20]).expect("write");
    let compressed = encoder.finish().expect("finish");
    let (result, largest) = measure(|| Bundle::decode(&compressed, &digest_of(b"[]"), LIMIT));
    assert!(
        matches!(
            result,
            Err(BundleError::Corrupt(_) | BundleError::TooLarge { .. })
        ),
        "{result:?}"
    );
    assert!(largest <= 2 * LIMIT + 4096, "largest allocation {largest}");
}
