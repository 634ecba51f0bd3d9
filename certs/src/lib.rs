//! The hub certificate authority.
