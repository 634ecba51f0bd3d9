//! Ordered keys: a prefix (an app's name, NUL) followed by a big-endian
//! sequence number, so a prefix scan returns entries in the order written.

use super::super::{Error, Result};
use super::records::backend;

/// `name` and a NUL: the prefix of every key under one app or cluster.
pub(super) fn revision_prefix(app: &str) -> Vec<u8> {
    let mut prefix = app.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

/// Insert `value` under `prefix` followed by the next sequence number
/// after the last key with that prefix, so entries keep their order.
///
/// The number continues from what is stored rather than from sled's
/// `generate_id`, whose counter is persisted separately from the entries:
/// order then survives kills, restarts and restores by construction.
/// Concurrent appends under one prefix race on the same number; the loser
/// of the compare-and-swap takes the next one.
pub(super) fn append_sequenced(tree: &sled::Tree, prefix: &[u8], value: &[u8]) -> Result<()> {
    loop {
        let next = match tree.scan_prefix(prefix).next_back() {
            None => 0,
            Some(entry) => {
                let (key, _) = entry.map_err(backend)?;
                let last = key
                    .len()
                    .checked_sub(8)
                    .filter(|&start| start == prefix.len())
                    .and_then(|start| <[u8; 8]>::try_from(&key[start..]).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| {
                        Error::Backend(
                            format!(
                                "key {:?} does not end in a sequence number",
                                String::from_utf8_lossy(&key)
                            )
                            .into(),
                        )
                    })?;
                last.checked_add(1).ok_or_else(|| {
                    Error::Backend("sequence numbers exhausted under one key".into())
                })?
            }
        };
        let mut key = prefix.to_vec();
        key.extend_from_slice(&next.to_be_bytes());
        let swapped = tree
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(backend)?;
        if swapped.is_ok() {
            return Ok(());
        }
    }
}
