//! Frames as they arrive on a stream: a buffer holding any number of whole or partial frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_common::proto::{Decoded, HEADER_LEN, Kind, decode_frame, encode_frame};

fuzz_target!(|data: &[u8]| {
    let largest = Kind::ALL
        .iter()
        .map(|k| k.limit() as usize)
        .max()
        .unwrap_or(0);
    let mut rest = data;
    // Each round consumes at least one byte or stops, so this ends.
    while let Ok(decoded) = decode_frame(rest) {
        match decoded {
            Decoded::Incomplete(more) => {
                // Asking for more is only right when the frame fits its limit.
                assert!(more > 0 && rest.len() + more <= HEADER_LEN + largest);
                break;
            }
            Decoded::Message(message, used) => {
                assert!((HEADER_LEN..=rest.len()).contains(&used));
                // What was accepted re-encodes to a frame that decodes to it.
                let frame = encode_frame(&message).expect("a decoded message re-encodes");
                match decode_frame(&frame) {
                    Ok(Decoded::Message(again, n)) => {
                        assert_eq!(again, message);
                        assert_eq!(n, frame.len());
                    }
                    other => panic!("re-encoded {message:?} decodes to {other:?}"),
                }
                rest = &rest[used..];
            }
        }
    }
});
