//! Validated names for clusters (and, later, apps and repos).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a proposed name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name {0:?} is longer than 63 characters")]
    TooLong(String),
    #[error(
        "name {0:?} is not a DNS label: use lowercase letters, digits and '-', starting and ending with a letter or digit"
    )]
    Invalid(String),
}

/// A cluster name: an RFC 1123 DNS label, as Kubernetes uses for object names.
///
/// It is bound into the cluster's certificate, so it must never contain
/// characters that could be misread in a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    /// Validate `name` as a cluster name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        validate_dns_label(&name)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn validate_dns_label(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 63 {
        return Err(NameError::TooLong(name.to_owned()));
    }
    let bytes = name.as_bytes();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(|&b| allowed(b)) || !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1])
    {
        return Err(NameError::Invalid(name.to_owned()));
    }
    Ok(())
}

impl TryFrom<String> for ClusterName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ClusterName> for String {
    fn from(value: ClusterName) -> Self {
        value.0
    }
}

impl std::str::FromStr for ClusterName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "edge-01", "shop42", "x".repeat(63).as_str()] {
            assert!(ClusterName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        assert_eq!(ClusterName::new(""), Err(NameError::Empty));
        assert!(matches!(
            ClusterName::new("x".repeat(64)),
            Err(NameError::TooLong(_))
        ));
        for bad in ["-a", "a-", "A", "a_b", "a.b", "a b", "cn=x,o=y"] {
            assert!(
                matches!(ClusterName::new(bad), Err(NameError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
