//! A zstd bomb (100 MB of zeros in a few KB) is refused under a 1 MB limit
//! without the decoder's output buffer ever growing past the limit.

mod support;

use std::io::Write;
use support::{Counting, measure};
use switchyard_common::bundle::{Bundle, BundleError, digest_of};

#[global_allocator]
static ALLOC: Counting = Counting;

const LIMIT: usize = 1 << 20;
const BOMB: usize = 100 << 20;

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
