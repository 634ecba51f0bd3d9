//! The one form in which the hub stores a secret it hands out (bootstrap
//! tokens, admin API tokens): its hex SHA-256. Below the store, so the store,
//! the fleet and the authenticator share one rule.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of a token secret: the only form in which it is stored.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
