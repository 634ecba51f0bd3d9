//! The protocol between agent and hub (version [`PROTOCOL_VERSION`]): messages, the versioned envelope and framing.
//!
//! Every message travels as one frame:
//!
//! ```text
//! +----------------+----------------+-----------+------------------------+
//! | body length    | version        | kind      | body (bincode, serde)  |
//! | u32 big-endian | u16 big-endian | u8        | `body length` bytes    |
//! +----------------+----------------+-----------+------------------------+
//! ```
//!
//! The seven header bytes never change between protocol versions, so a peer
//! speaking another version is recognised from the header alone and answered
//! with a clear error instead of a decode failure. Each kind has its own size
//! limit, checked against the header before any body byte is read, and the
//! body decoder runs with the same limit, so a hostile length prefix inside
//! the body cannot make us allocate more than the kind allows.

mod messages;
#[cfg(feature = "tokio")]
mod stream;

pub use messages::*;
#[cfg(feature = "tokio")]
pub use stream::{StreamError, read_message, write_message};

use bincode::config::{self, Config};

/// The protocol version this build speaks. Bodies are bincode, which is
/// positional: any change to a message's fields changes the version, and a
/// peer on another version is refused with a clear error from the header
/// alone. v2: `AssignmentItem::ownership`; v3:
/// `AssignmentItem::ignore_differences`; v4: `Notification::DiffRequested`
/// and the `ReportDiff` kind (`switchyard app diff`),
/// `AssignmentItem::prune_confirmed`, `AssignmentItem::create_namespace`,
/// `AssignmentItem::prune_last`, `IgnoreRule::managed_fields_managers`.
pub const PROTOCOL_VERSION: u16 = 4;
/// Length of the fixed frame header.
pub const HEADER_LEN: usize = 7;

const KIB: u32 = 1024;
const MIB: u32 = 1024 * KIB;

/// Error while decoding a frame.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "peer speaks protocol version {got}, this side speaks version {supported}; upgrade the older side"
    )]
    UnsupportedVersion { got: u16, supported: u16 },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("{kind:?} frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { kind: Kind, len: u32, limit: u32 },
    #[error("malformed {kind:?} body")]
    Malformed {
        kind: Kind,
        #[source]
        source: bincode::error::DecodeError,
    },
    #[error("{kind:?} body has {extra} trailing bytes")]
    TrailingBytes { kind: Kind, extra: usize },
}

/// Error while encoding a frame.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding {kind:?} body")]
    Encode {
        kind: Kind,
        #[source]
        source: bincode::error::EncodeError,
    },
    #[error("{kind:?} frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { kind: Kind, len: usize, limit: u32 },
}

/// The kind byte of a frame; its numbering is frozen across protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Hello = 1,
    Welcome = 2,
    Enroll = 3,
    Enrolled = 4,
    Notify = 5,
    GetAssignment = 6,
    Assignment = 7,
    GetBundle = 8,
    Bundle = 9,
    ReportStatus = 10,
    StatusAccepted = 11,
    RenewCertificate = 12,
    CertificateRenewed = 13,
    Error = 14,
    ReportDiff = 15,
}

/// Size tiers; the decoder's allocation limit is chosen by tier because
/// bincode takes its limit as a const generic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Small,
    /// A diff report: bounded by the agent ([`DIFF_MAX_BYTES`]), so a
    /// tier of its own rather than the status reports' 8 MiB.
    Diff,
    Medium,
    Large,
}

impl Tier {
    const fn limit(self) -> u32 {
        match self {
            Tier::Small => 64 * KIB,
            Tier::Diff => MIB,
            Tier::Medium => 8 * MIB,
            Tier::Large => 64 * MIB,
        }
    }
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Hello,
        Kind::Welcome,
        Kind::Enroll,
        Kind::Enrolled,
        Kind::Notify,
        Kind::GetAssignment,
        Kind::Assignment,
        Kind::GetBundle,
        Kind::Bundle,
        Kind::ReportStatus,
        Kind::StatusAccepted,
        Kind::RenewCertificate,
        Kind::CertificateRenewed,
        Kind::Error,
        Kind::ReportDiff,
    ];

    pub fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == byte)
    }

    fn tier(self) -> Tier {
        match self {
            // Assignments list every app of a cluster; status reports carry a
            // row per resource. Both grow with the fleet's apps, not with bytes
            // of manifests.
            Kind::Assignment | Kind::ReportStatus => Tier::Medium,
            // Compressed rendered manifests.
            Kind::Bundle => Tier::Large,
            Kind::ReportDiff => Tier::Diff,
            _ => Tier::Small,
        }
    }

    /// Largest body accepted for this kind, in bytes.
    pub fn limit(self) -> u32 {
        self.tier().limit()
    }
}

/// A parsed, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: Kind,
    pub body_len: u32,
}

impl FrameHeader {
    /// Parse and validate the fixed header: version, kind and size limit.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<FrameHeader, DecodeError> {
        let body_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                got: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let kind = Kind::from_byte(bytes[6]).ok_or(DecodeError::UnknownKind(bytes[6]))?;
        let limit = kind.limit();
        if body_len > limit {
            return Err(DecodeError::TooLarge {
                kind,
                len: body_len,
                limit,
            });
        }
        Ok(FrameHeader { kind, body_len })
    }
}

fn config_for<const N: usize>() -> impl Config {
    config::standard().with_big_endian().with_limit::<N>()
}

fn decode_with<T: serde::de::DeserializeOwned>(kind: Kind, body: &[u8]) -> Result<T, DecodeError> {
    let result = match kind.tier() {
        Tier::Small => bincode::serde::decode_from_slice(
            body,
            config_for::<{ Tier::Small.limit() as usize }>(),
        ),
        Tier::Diff => {
            bincode::serde::decode_from_slice(body, config_for::<{ Tier::Diff.limit() as usize }>())
        }
        Tier::Medium => bincode::serde::decode_from_slice(
            body,
            config_for::<{ Tier::Medium.limit() as usize }>(),
        ),
        Tier::Large => bincode::serde::decode_from_slice(
            body,
            config_for::<{ Tier::Large.limit() as usize }>(),
        ),
    };
    let (value, used) = result.map_err(|source| DecodeError::Malformed { kind, source })?;
    if used != body.len() {
        return Err(DecodeError::TrailingBytes {
            kind,
            extra: body.len() - used,
        });
    }
    Ok(value)
}

/// Decode the body of a frame whose header was already parsed.
pub fn decode_body(header: FrameHeader, body: &[u8]) -> Result<Message, DecodeError> {
    debug_assert_eq!(body.len(), header.body_len as usize);
    let kind = header.kind;
    Ok(match kind {
        Kind::Hello => Message::Hello(decode_with(kind, body)?),
        Kind::Welcome => Message::Welcome(decode_with(kind, body)?),
        Kind::Enroll => Message::Enroll(decode_with(kind, body)?),
        Kind::Enrolled => Message::Enrolled(decode_with(kind, body)?),
        Kind::Notify => Message::Notify(decode_with(kind, body)?),
        Kind::GetAssignment => Message::GetAssignment(decode_with(kind, body)?),
        Kind::Assignment => Message::Assignment(decode_with(kind, body)?),
        Kind::GetBundle => Message::GetBundle(decode_with(kind, body)?),
        Kind::Bundle => Message::Bundle(decode_with(kind, body)?),
        Kind::ReportStatus => Message::ReportStatus(decode_with(kind, body)?),
        Kind::StatusAccepted => Message::StatusAccepted(decode_with(kind, body)?),
        Kind::RenewCertificate => Message::RenewCertificate(decode_with(kind, body)?),
        Kind::CertificateRenewed => Message::CertificateRenewed(decode_with(kind, body)?),
        Kind::Error => Message::Error(decode_with(kind, body)?),
        Kind::ReportDiff => Message::ReportDiff(decode_with(kind, body)?),
    })
}

/// Outcome of [`decode_frame`] on a buffer that may hold a partial frame.
#[derive(Debug)]
pub enum Decoded {
    /// A whole message, and how many bytes of the buffer it used.
    Message(Message, usize),
    /// The buffer holds the start of a frame; read at least this many more bytes.
    Incomplete(usize),
}

/// Decode one frame from the front of `buf`.
pub fn decode_frame(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let Some(header_bytes) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Decoded::Incomplete(HEADER_LEN - buf.len()));
    };
    let header = FrameHeader::parse(header_bytes)?;
    let total = HEADER_LEN + header.body_len as usize;
    if buf.len() < total {
        return Ok(Decoded::Incomplete(total - buf.len()));
    }
    let message = decode_body(header, &buf[HEADER_LEN..total])?;
    Ok(Decoded::Message(message, total))
}

/// Encode `message` as one frame.
pub fn encode_frame(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let kind = message.kind();
    let mut frame = vec![0u8; HEADER_LEN];
    let cfg = config::standard().with_big_endian();
    let encoded = match message {
        Message::Hello(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Welcome(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Enroll(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Enrolled(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Notify(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::GetAssignment(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Assignment(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::GetBundle(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Bundle(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::ReportStatus(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::StatusAccepted(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::RenewCertificate(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::CertificateRenewed(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::Error(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
        Message::ReportDiff(m) => bincode::serde::encode_into_std_write(m, &mut frame, cfg),
    };
    encoded.map_err(|source| EncodeError::Encode { kind, source })?;
    let body_len = frame.len() - HEADER_LEN;
    let limit = kind.limit();
    if body_len > limit as usize {
        return Err(EncodeError::TooLarge {
            kind,
            len: body_len,
            limit,
        });
    }
    frame[0..4].copy_from_slice(&(body_len as u32).to_be_bytes());
    frame[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    frame[6] = kind as u8;
    Ok(frame)
}

#[cfg(test)]
mod tests;

/// QUIC application close codes, so each side can tell why a connection ended.
pub mod close_code {
    /// Orderly close (shutdown, agent exit).
    pub const NORMAL: u32 = 0;
    /// The peer sent a frame that could not be decoded or was not expected.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// The hub verified that this certificate is no longer accepted: the
    /// cluster was removed, re-enrolled with another certificate, or the
    /// serial revoked. Agents stop for good on it, so it is sent only after
    /// a successful check, never for a failure to check.
    pub const REVOKED: u32 = 2;
    /// The peer speaks another protocol version.
    pub const UNSUPPORTED_VERSION: u32 = 3;
    /// A newer connection of the same cluster replaced this one.
    pub const SUPERSEDED: u32 = 4;
    /// Only enrollment is allowed without a client certificate.
    pub const UNAUTHENTICATED: u32 = 5;
    /// The hub is shutting down; reconnect later.
    pub const SHUTDOWN: u32 = 6;
    /// The peer went past one of the hub's limits (too many connections from
    /// its address, too slow to send a request or read a reply).
    pub const LIMIT_EXCEEDED: u32 = 7;
    /// The hub could not check the peer's certificate (its store failed);
    /// reconnect later. Agents older than this code treat any code they do
    /// not know as a reason to reconnect, so they retry too.
    pub const UNAVAILABLE: u32 = 8;
}
