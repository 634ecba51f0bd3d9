//! Switchyard wire protocol and shared domain types.
