//! Switchyard's wire protocol and shared domain types: codecs and rules only, no I/O.
//!
//! This crate is to Switchyard what `quinn-proto` is to quinn: the hub and the
//! agent both speak through it, and it never touches a socket or a clock.

pub mod bundle;
pub mod ignore_rules;
#[cfg(feature = "jq")]
pub mod jq_paths;
#[cfg(feature = "manifest")]
pub mod manifest;
mod names;
pub mod proto;
pub mod selector;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use names::{ClusterName, MAX_NAME_LEN, NameError, NameKind, validate_name};

/// An error and all its sources on one line (`a: b: c`), for logs and for
/// messages sent to a peer, where `Display` alone would drop the cause.
///
/// A source whose text the chain already holds is left out: some errors
/// (reqwest's and hyper's among them) repeat their source in their own
/// message, which would otherwise print every cause twice.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// ALPN protocol identifier negotiated on every QUIC connection between agent and hub.
pub const ALPN: &[u8] = b"switchyard/1";

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// An error with a message and an optional source.
    #[derive(Debug)]
    struct E(String, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(parts: &[&str]) -> E {
        parts
            .iter()
            .rev()
            .fold(None, |source, part| {
                Some(E(part.to_string(), source.map(Box::new)))
            })
            .unwrap()
    }

    #[test]
    fn every_cause_appears_once() {
        assert_eq!(error_chain(&chain(&["a", "b", "c"])), "a: b: c");
        // A message that already carries its source's text.
        let repeated = chain(&[
            "error sending request: operation timed out",
            "operation timed out",
            "operation timed out",
        ]);
        assert_eq!(
            error_chain(&repeated),
            "error sending request: operation timed out"
        );
        assert_eq!(
            error_chain(&chain(&[
                "connect",
                "tcp connect error",
                "tcp connect error"
            ])),
            "connect: tcp connect error"
        );
    }
}
