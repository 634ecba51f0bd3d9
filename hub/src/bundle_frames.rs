//! `Bundle` replies encoded once and shared. After a commit every agent the
//! app targets asks for the same digest within seconds; each reply is a
//! reference-counted view of one encoded frame instead of a fresh read from
//! the store and a fresh encoding (two copies of the bundle per agent).
//!
//! The cache holds at most a byte budget of frames and forgets the oldest
//! first: a new commit makes the previous bundle cold, and a frame that is
//! evicted is simply read and encoded again.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use switchyard_common::proto::{self, Bundle, Message};

/// Frames kept by default: room for a few large bundles at once.
pub(crate) const DEFAULT_BUDGET: usize = 64 << 20;

/// Why a bundle could not be had as a frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError<E> {
    #[error(transparent)]
    Load(E),
    #[error("stored bundle cannot be sent")]
    Unsendable(#[source] proto::EncodeError),
}

pub(crate) struct BundleFrames {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    frames: HashMap<String, Bytes>,
    /// Digests in the order they were cached, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

impl BundleFrames {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::default(),
        }
    }

    /// The encoded `Bundle` reply for `digest`, from the cache or from
    /// `load` (the compressed bundle, `None` if the store lacks it).
    pub(crate) fn get_or_load<E>(
        &self,
        digest: &str,
        load: impl FnOnce() -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Option<Bytes>, LoadError<E>> {
        if let Some(frame) = self.lock().frames.get(digest) {
            return Ok(Some(frame.clone()));
        }
        // Loaded and encoded without the lock: agents fetching other
        // digests do not wait. Two agents missing at once both encode; the
        // second insert is dropped.
        let Some(compressed) = load().map_err(LoadError::Load)? else {
            return Ok(None);
        };
        let message = Message::Bundle(Bundle {
            digest: digest.to_owned(),
            compressed,
        });
        // Too large to be a frame: stored bundles are checked against the
        // same limit when rendered, so this is a stored bundle the current
        // limits refuse.
        let frame = Bytes::from(proto::encode_frame(&message).map_err(LoadError::Unsendable)?);
        self.insert(digest, frame.clone());
        Ok(Some(frame))
    }

    fn insert(&self, digest: &str, frame: Bytes) {
        if frame.len() > self.budget {
            return;
        }
        let mut inner = self.lock();
        if inner.frames.contains_key(digest) {
            return;
        }
        while inner.bytes + frame.len() > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.frames.remove(&oldest) {
                inner.bytes -= evicted.len();
            }
        }
        inner.bytes += frame.len();
        inner.order.push_back(digest.to_owned());
        inner.frames.insert(digest.to_owned(), frame);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("bundle frame cache lock")
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn load(loads: &Cell<u32>, size: usize) -> Result<Option<Vec<u8>>, ()> {
        loads.set(loads.get() + 1);
        Ok(Some(vec![7; size]))
    }

    #[test]
    fn a_digest_is_loaded_and_encoded_once_and_decodes_as_the_bundle() {
        let frames = BundleFrames::new(DEFAULT_BUDGET);
        let loads = Cell::new(0);
        let first = frames
            .get_or_load("sha256:a", || load(&loads, 100))
            .unwrap();
        let second = frames
            .get_or_load("sha256:a", || load(&loads, 100))
            .unwrap();
        assert_eq!(loads.get(), 1);
        let (first, second) = (first.unwrap(), second.unwrap());
        // The same bytes, not a copy.
        assert_eq!(first.as_ptr(), second.as_ptr());
        let proto::Decoded::Message(decoded, used) = proto::decode_frame(&first).unwrap() else {
            panic!("a whole frame was cached");
        };
        assert_eq!(used, first.len());
        assert_eq!(
            decoded,
            Message::Bundle(Bundle {
                digest: "sha256:a".into(),
                compressed: vec![7; 100],
            })
        );
    }

    #[test]
    fn the_oldest_frames_go_first_and_the_budget_holds() {
        let frames = BundleFrames::new(1000);
        let loads = Cell::new(0);
        // Frames of a 400-byte bundle: two fit in 1000 bytes, three do not.
        for digest in ["a", "b", "c"] {
            frames.get_or_load(digest, || load(&loads, 400)).unwrap();
        }
        assert_eq!(loads.get(), 3);
        assert!(frames.cached_bytes() <= 1000);
        // "a" was evicted to make room for "c"; "c" is still there.
        frames.get_or_load("c", || load(&loads, 400)).unwrap();
        assert_eq!(loads.get(), 3);
        frames.get_or_load("a", || load(&loads, 400)).unwrap();
        assert_eq!(loads.get(), 4);
        assert!(frames.cached_bytes() <= 1000);
        // Larger than the whole budget: served, never cached.
        let big = frames.get_or_load("big", || load(&loads, 5000)).unwrap();
        assert!(big.unwrap().len() > 5000);
        frames.get_or_load("big", || load(&loads, 5000)).unwrap();
        assert_eq!(loads.get(), 6);
    }

    #[test]
    fn a_bundle_beyond_the_frame_limit_is_an_error_not_a_missing_bundle() {
        let frames = BundleFrames::new(DEFAULT_BUDGET);
        let too_big = proto::Kind::Bundle.limit() as usize + 1;
        let result = frames.get_or_load("sha256:big", || Ok::<_, ()>(Some(vec![0; too_big])));
        assert!(
            matches!(result, Err(LoadError::Unsendable(_))),
            "{result:?}"
        );
        assert_eq!(frames.cached_bytes(), 0);
    }

    #[test]
    fn a_missing_bundle_is_none_and_not_cached() {
        let frames = BundleFrames::new(DEFAULT_BUDGET);
        let missing = frames
            .get_or_load("sha256:x", || Ok::<_, ()>(None))
            .unwrap();
        assert!(missing.is_none());
        assert_eq!(frames.cached_bytes(), 0);
    }
}
