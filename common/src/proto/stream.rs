//! Reading and writing whole frames on async byte streams (QUIC streams).
//!
//! The only I/O in this crate, behind the `tokio` feature: it is the framing
//! codec's glue, kept here so the hub and the agent cannot disagree about it.

use super::{
    DecodeError, EncodeError, FrameHeader, HEADER_LEN, Message, decode_body, encode_frame,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Error reading or writing a frame on a stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("stream closed before a whole frame arrived")]
    Truncated,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("stream i/o")]
    Io(#[source] std::io::Error),
}

/// Read one frame. `Ok(None)` means the stream ended cleanly before a frame began.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Message>, StreamError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = reader
            .read(&mut header[filled..])
            .await
            .map_err(StreamError::Io)?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(StreamError::Truncated)
            };
        }
        filled += n;
    }
    let header = FrameHeader::parse(&header)?;
    // The header was checked against the kind's limit, so this allocation is bounded.
    let mut body = vec![0u8; header.body_len as usize];
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            StreamError::Truncated
        } else {
            StreamError::Io(e)
        }
    })?;
    Ok(Some(decode_body(header, &body)?))
}

/// Write one frame.
pub async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
) -> Result<(), StreamError> {
    let frame = encode_frame(message)?;
    writer.write_all(&frame).await.map_err(StreamError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GetAssignment, Kind, PROTOCOL_VERSION};

    #[tokio::test]
    async fn frames_survive_a_byte_at_a_time() {
        let message = Message::GetAssignment(GetAssignment {
            known_generation: 42,
        });
        let frame = encode_frame(&message).unwrap();
        let (mut client, mut server) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            for byte in frame {
                client.write_all(&[byte]).await.unwrap();
            }
        });
        let got = read_message(&mut server).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, Some(message));
        assert!(read_message(&mut server).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_are_errors() {
        let frame = encode_frame(&Message::GetAssignment(GetAssignment {
            known_generation: 1,
        }))
        .unwrap();
        let mut cut = &frame[..frame.len() - 1];
        assert!(matches!(
            read_message(&mut cut).await,
            Err(StreamError::Truncated)
        ));
        let mut cut = &frame[..3];
        assert!(matches!(
            read_message(&mut cut).await,
            Err(StreamError::Truncated)
        ));

        let mut header = Vec::new();
        header.extend_from_slice(&u32::MAX.to_be_bytes());
        header.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        header.push(Kind::Bundle as u8);
        let mut reader = &header[..];
        assert!(matches!(
            read_message(&mut reader).await,
            Err(StreamError::Decode(DecodeError::TooLarge { .. }))
        ));
    }
}
