//! Names of clusters, repos, apps and cluster groups: one rule for all of
//! them, an RFC 1123 DNS label (what Kubernetes uses for object names), so a
//! name that works for one works for every other and in every place it ends
//! up (certificates, directory names, URLs, labels).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest name: a DNS label's limit.
pub const MAX_NAME_LEN: usize = 63;

/// What a name names; it leads every refusal so the user knows which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Cluster,
    Repo,
    App,
    Group,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Cluster => "cluster",
            NameKind::Repo => "repo",
            NameKind::App => "app",
            NameKind::Group => "cluster group",
        })
    }
}

/// Why a proposed name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty: a name is a DNS label of 1 to 63 characters")]
    Empty { kind: NameKind },
    #[error("{kind} name {name:?}: a name is a DNS label of at most 63 characters, got {len}")]
    TooLong {
        kind: NameKind,
        name: String,
        len: usize,
    },
    #[error(
        "{kind} name {name:?}: a name is a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
    )]
    Invalid { kind: NameKind, name: String },
}

/// Check `name` as the name of a `kind`: the one rule every name follows.
pub fn validate_name(kind: NameKind, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    // Characters before length: a name that breaks both needs a new
    // spelling anyway, and this message says what a name may contain.
    let bytes = name.as_bytes();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(|&b| allowed(b)) || !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1])
    {
        return Err(NameError::Invalid {
            kind,
            name: name.to_owned(),
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            name: name.to_owned(),
            len: name.chars().count(),
        });
    }
    Ok(())
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
        validate_name(NameKind::Cluster, &name)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
            for kind in [NameKind::Repo, NameKind::App, NameKind::Group] {
                assert_eq!(validate_name(kind, ok), Ok(()), "{kind} {ok}");
            }
        }
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        assert_eq!(
            ClusterName::new(""),
            Err(NameError::Empty {
                kind: NameKind::Cluster
            })
        );
        assert!(matches!(
            ClusterName::new("x".repeat(64)),
            Err(NameError::TooLong { len: 64, .. })
        ));
        for bad in ["-a", "a-", "A", "a_b", "a.b", "a b", "cn=x,o=y", "é"] {
            assert!(
                matches!(ClusterName::new(bad), Err(NameError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn refusals_name_the_kind_and_the_real_reason() {
        assert_eq!(
            validate_name(NameKind::App, "Web_App")
                .unwrap_err()
                .to_string(),
            "app name \"Web_App\": a name is a DNS label: lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        );
        let long = "a".repeat(100);
        assert_eq!(
            validate_name(NameKind::Repo, &long)
                .unwrap_err()
                .to_string(),
            format!("repo name {long:?}: a name is a DNS label of at most 63 characters, got 100")
        );
        // Far past 100 the reason stays the length.
        let longer = "a".repeat(300);
        assert!(matches!(
            validate_name(NameKind::Group, &longer),
            Err(NameError::TooLong { len: 300, .. })
        ));
        assert_eq!(
            validate_name(NameKind::Group, "").unwrap_err().to_string(),
            "cluster group name is empty: a name is a DNS label of 1 to 63 characters"
        );
    }
}
