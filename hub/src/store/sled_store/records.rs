//! Typed tables: a sled tree of JSON records of one type, keyed by name,
//! and the encoding and error mapping every tree shares.

use super::super::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::TransactionError;
use std::marker::PhantomData;

/// A sled tree of JSON records of one type, keyed by name.
pub(super) struct Table<T> {
    pub(super) tree: sled::Tree,
    _record: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    pub(super) fn open(db: &sled::Db, name: &str) -> Result<Self> {
        Ok(Self {
            tree: db.open_tree(name).map_err(backend)?,
            _record: PhantomData,
        })
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<T>> {
        match self.tree.get(key.as_bytes()).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    pub(super) fn list(&self) -> Result<Vec<T>> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                decode(&key, &value)
            })
            .collect()
    }

    /// Insert unless the key exists; `false` if it did.
    pub(super) fn insert_new(&self, key: &str, value: &T) -> Result<bool> {
        let swapped = self
            .tree
            .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(encode(value)))
            .map_err(backend)?;
        Ok(swapped.is_ok())
    }

    /// Compare-and-swap loop: a concurrent removal wins and is never undone.
    pub(super) fn update(&self, key: &str, change: &mut dyn FnMut(&mut T)) -> Result<Option<T>> {
        loop {
            let Some(old) = self.tree.get(key.as_bytes()).map_err(backend)? else {
                return Ok(None);
            };
            let mut record: T = decode(key.as_bytes(), &old)?;
            change(&mut record);
            let new = encode(&record);
            if self
                .tree
                .compare_and_swap(key.as_bytes(), Some(&old), Some(new))
                .map_err(backend)?
                .is_ok()
            {
                return Ok(Some(record));
            }
        }
    }

    pub(super) fn remove(&self, key: &str) -> Result<Option<T>> {
        match self.tree.remove(key.as_bytes()).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }
}

pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Backend(Box::new(e))
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records always serialize")
}

pub(super) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

/// Turn a transaction's outcome into the store's error.
pub(super) fn settle<T>(result: Result<T, TransactionError<Error>>) -> Result<T> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}
