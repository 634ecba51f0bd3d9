//! Bundles: the rendered objects of one app for one cluster, in a canonical, content-addressed, zstd-compressed form.
//!
//! The hub renders once per commit and may hand the same bundle to many
//! clusters, so a bundle is named by the SHA-256 of its canonical bytes: the
//! same objects, in any order, give the same bytes and so the same digest.
//! The agent decodes bundles received from the network, so decoding bounds
//! the decompressed size and checks the digest before any JSON is parsed.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;

/// The prefix of every bundle digest.
pub const DIGEST_PREFIX: &str = "sha256:";

/// Why a bundle could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is larger than {limit} bytes when decompressed")]
    TooLarge { limit: usize },
    #[error("bundle is corrupt: {0}")]
    Corrupt(String),
    #[error("bundle digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("invalid bundle digest {0:?}: expected \"sha256:\" and 64 lowercase hex digits")]
    InvalidDigest(String),
    #[error("bundle is not a JSON array of objects: {0}")]
    NotObjects(String),
    #[error("cannot compress bundle: {0}")]
    Compress(String),
}

/// The rendered Kubernetes objects of one app for one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bundle {
    pub objects: Vec<Value>,
}

/// A bundle as stored and sent: its digest, compressed bytes and the size of
/// its canonical (decompressed) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBundle {
    pub digest: String,
    pub compressed: Vec<u8>,
    pub canonical_len: usize,
}

impl Bundle {
    pub fn new(objects: Vec<Value>) -> Self {
        Self { objects }
    }

    /// The canonical encoding: a JSON array of the objects, each with its
    /// object keys sorted and no insignificant whitespace, ordered by
    /// (API group, kind, namespace, name) and then by their own bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut items: Vec<(SortKey<'_>, Vec<u8>)> = self
            .objects
            .iter()
            .map(|o| {
                let mut bytes = Vec::new();
                write_canonical(o, &mut bytes);
                (SortKey::of(o), bytes)
            })
            .collect();
        items.sort_unstable();
        let len = items.iter().map(|(_, b)| b.len() + 1).sum::<usize>() + 2;
        let mut out = Vec::with_capacity(len);
        out.push(b'[');
        for (i, (_, bytes)) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(bytes);
        }
        out.push(b']');
        out
    }

    /// `sha256:<64 hex>` of the canonical bytes.
    pub fn digest(&self) -> String {
        digest_of(&self.canonical_bytes())
    }

    /// The canonical bytes compressed with zstd at `level` (1..=22; 3 is
    /// zstd's default). The frame records its content size and its window
    /// never exceeds it, so decoders may bound their memory tightly.
    pub fn compress(&self, level: i32) -> Result<Vec<u8>, BundleError> {
        compress_bytes(&self.canonical_bytes(), level)
    }

    /// Digest and compressed bytes in one pass over the canonical form.
    pub fn encode(&self, level: i32) -> Result<EncodedBundle, BundleError> {
        let canonical = self.canonical_bytes();
        Ok(EncodedBundle {
            digest: digest_of(&canonical),
            compressed: compress_bytes(&canonical, level)?,
            canonical_len: canonical.len(),
        })
    }

    /// Decompress at most `max_decompressed` bytes, check them against
    /// `expected_digest` and only then parse them.
    ///
    /// The frame's declared content size is never trusted: the decoder
    /// streams into a buffer that stops one byte past the limit, and the
    /// decoder's window is capped to the limit so a hostile header cannot
    /// make it reserve more either.
    pub fn decode(
        compressed: &[u8],
        expected_digest: &str,
        max_decompressed: usize,
    ) -> Result<Bundle, BundleError> {
        validate_digest(expected_digest)?;
        let bytes = decompress_bounded(compressed, max_decompressed)?;
        let actual = digest_of(&bytes);
        if actual != expected_digest {
            return Err(BundleError::DigestMismatch {
                expected: expected_digest.to_owned(),
                actual,
            });
        }
        let objects: Vec<Value> =
            serde_json::from_slice(&bytes).map_err(|e| BundleError::NotObjects(e.to_string()))?;
        if let Some(i) = objects.iter().position(|o| !o.is_object()) {
            return Err(BundleError::NotObjects(format!(
                "item {i} is not an object"
            )));
        }
        Ok(Bundle { objects })
    }
}

/// `sha256:<64 hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("{DIGEST_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

fn validate_digest(digest: &str) -> Result<(), BundleError> {
    let ok = digest.strip_prefix(DIGEST_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(BundleError::InvalidDigest(digest.to_owned()))
    }
}

fn compress_bytes(bytes: &[u8], level: i32) -> Result<Vec<u8>, BundleError> {
    // The one-shot API knows the source size, so the frame header carries
    // it and zstd shrinks the window to it (see `decode`'s window cap).
    zstd::bulk::compress(bytes, level).map_err(|e| BundleError::Compress(e.to_string()))
}

fn decompress_bounded(compressed: &[u8], max: usize) -> Result<Vec<u8>, BundleError> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed).map_err(corrupt)?;
    // Smallest window that still fits `max` bytes: a frame written by
    // `compress` for a bundle within the limit never needs more.
    let window_log = usize::BITS - max.max(1).saturating_sub(1).leading_zeros();
    decoder
        .window_log_max(window_log.clamp(10, 31))
        .map_err(corrupt)?;
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(max.min(compressed.len().saturating_mul(4)).min(1 << 20));
    decoder.take(limit).read_to_end(&mut out).map_err(corrupt)?;
    if out.len() > max {
        return Err(BundleError::TooLarge { limit: max });
    }
    Ok(out)
}

fn corrupt(e: std::io::Error) -> BundleError {
    BundleError::Corrupt(e.to_string())
}

/// The order of objects in the canonical form. Missing fields sort as "".
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SortKey<'a> {
    group: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl<'a> SortKey<'a> {
    fn of(o: &'a Value) -> Self {
        let s = |v: &'a Value| v.as_str().unwrap_or("");
        let api_version = s(&o["apiVersion"]);
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Self {
            group,
            kind: s(&o["kind"]),
            namespace: s(&o["metadata"]["namespace"]),
            name: s(&o["metadata"]["name"]),
        }
    }
}

/// JSON with object keys sorted by their UTF-8 bytes and no whitespace.
///
/// Written by hand rather than trusting `serde_json::Map`'s order, which
/// becomes insertion order if any crate in a build enables serde_json's
/// `preserve_order` feature: the digest must not depend on feature
/// unification.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // Without `preserve_order` the map iterates sorted already;
            // only an insertion-ordered map pays for sorting.
            if map.keys().is_sorted() {
                write_entries(map.iter(), out);
            } else {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                write_entries(entries.into_iter(), out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_entries<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    for (i, (k, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_scalar(k, out);
        out.push(b':');
        write_canonical(item, out);
    }
}

fn write_scalar<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Serializing a scalar into a Vec cannot fail; should it ever, the
    // output would be visibly broken JSON that decoding refuses.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Vec<Value> {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"}, "spec": {"replicas": 2}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "a"}, "data": {"z": "1", "a": "2"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
        ]
    }

    #[test]
    fn canonical_bytes_are_sorted_and_compact() {
        let b = Bundle::new(sample());
        let text = String::from_utf8(b.canonical_bytes()).unwrap_or_default();
        assert_eq!(
            text,
            concat!(
                r#"[{"apiVersion":"v1","data":{"a":"2","z":"1"},"kind":"ConfigMap","metadata":{"name":"cfg","namespace":"a"}},"#,
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}},"#,
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"a"},"spec":{"replicas":2}}]"#
            )
        );
        assert_eq!(Bundle::default().canonical_bytes(), b"[]");
    }

    #[test]
    fn escapes_survive_canonical_form() {
        let o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "q"}, "data": {"k\"ey": "line\n\u{1}é"}});
        let bytes = Bundle::new(vec![o.clone()]).canonical_bytes();
        let back: Vec<Value> = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(back, vec![o]);
    }

    #[test]
    fn round_trip_and_digest_checks() {
        let b = Bundle::new(sample());
        let encoded = b.encode(3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encoded.digest, b.digest());
        assert!(encoded.digest.starts_with("sha256:") && encoded.digest.len() == 71);
        let back = Bundle::decode(&encoded.compressed, &encoded.digest, 1 << 20)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.digest(), encoded.digest);

        let other = digest_of(b"x");
        match Bundle::decode(&encoded.compressed, &other, 1 << 20) {
            Err(BundleError::DigestMismatch { expected, actual }) => {
                assert_eq!((expected, actual), (other, encoded.digest.clone()));
            }
            r => panic!("{r:?}"),
        }
        assert!(matches!(
            Bundle::decode(&encoded.compressed, "sha256:ABC", 1 << 20),
            Err(BundleError::InvalidDigest(_))
        ));
        assert!(matches!(
            Bundle::decode(
                &encoded.compressed,
                &encoded.digest,
                encoded.canonical_len - 1
            ),
            Err(BundleError::TooLarge { .. })
        ));
        assert!(
            Bundle::decode(&encoded.compressed, &encoded.digest, encoded.canonical_len).is_ok()
        );
    }

    #[test]
    fn flipped_bytes_in_the_compressed_payload_are_refused() {
        // Incompressible data is stored in raw blocks, so every payload bit
        // is content: any flip there must be caught by the digest.
        let noise: String = (0u32..400)
            .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
            .collect();
        let b = Bundle::new(vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": {"k": noise}}),
        ]);
        let encoded = b.encode(1).unwrap_or_else(|e| panic!("{e}"));
        let mut refused = 0;
        for i in 6..encoded.compressed.len() {
            for bit in 0..8 {
                let mut damaged = encoded.compressed.clone();
                damaged[i] ^= 1 << bit;
                match Bundle::decode(&damaged, &encoded.digest, 1 << 20) {
                    Ok(back) => assert_eq!(back.canonical_bytes(), b.canonical_bytes()),
                    Err(_) => refused += 1,
                }
            }
        }
        assert!(
            refused > (encoded.compressed.len() - 6) * 8 * 9 / 10,
            "{refused}"
        );
    }

    #[test]
    fn refuses_what_is_not_an_array_of_objects() {
        for text in [&b"{}"[..], b"[1]", b"[{}, null]", b"nope"] {
            let compressed = compress_bytes(text, 3).unwrap_or_default();
            let r = Bundle::decode(&compressed, &digest_of(text), 1024);
            assert!(matches!(r, Err(BundleError::NotObjects(_))), "{r:?}");
        }
        let r = Bundle::decode(b"not zstd at all", &digest_of(b""), 1024);
        assert!(matches!(r, Err(BundleError::Corrupt(_))), "{r:?}");
    }
}
