//! One message body of every kind: the envelope's kind byte first, then the body, its length taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_common::proto::{FrameHeader, PROTOCOL_VERSION, decode_body, encode_frame};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let Ok(len) = u32::try_from(body.len()) else {
        return;
    };
    let mut header = [0u8; 7];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    header[6] = kind;
    let Ok(header) = FrameHeader::parse(&header) else {
        return;
    };
    if let Ok(message) = decode_body(header, body) {
        assert_eq!(message.kind(), header.kind);
        let frame = encode_frame(&message).expect("a decoded message re-encodes");
        let again = FrameHeader::parse(frame[..7].try_into().expect("7 bytes"))
            .and_then(|h| decode_body(h, &frame[7..]))
            .expect("a re-encoded message decodes");
        assert_eq!(again, message);
    }
});
