//! Protocol v1.
