//! Exit codes shared by every command, documented in docs/OPERATIONS.md
//! ("Exit codes"): scripts tell a missing object from a refused token from
//! a timeout without reading the message.

use super::client::HttpError;

/// The codes besides 0 (success).
pub(crate) mod code {
    /// The command failed: the hub refused the change as invalid, a render
    /// failed, the hub could not be reached, …
    pub(crate) const FAILED: u8 = 1;
    /// The command line itself is wrong (clap uses 2 as well).
    pub(crate) const USAGE: u8 = 2;
    /// The cluster, repo, app, group or token named does not exist.
    pub(crate) const NOT_FOUND: u8 = 3;
    /// A wait (`app wait`, `repo add --wait`) timed out.
    pub(crate) const TIMEOUT: u8 = 4;
    /// The hub refused the request: bad token, or a role that may not do it.
    pub(crate) const REFUSED: u8 = 5;
    /// `app diff` could not compare every cluster it asked (no answer in
    /// time, agent not connected, the agent's live view not ready), or the
    /// hub could not be asked: its 1 means "differences", as `kubectl diff`.
    pub(crate) const INCOMPLETE: u8 = 6;
}

/// An error that ends the process with a chosen exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// An error with a chosen exit code.
pub(crate) fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        message: message.into(),
    }
    .into()
}

/// The exit code for an error: the one it chose, else one from the hub's
/// HTTP status, else 1.
pub(crate) fn code_of(error: &anyhow::Error) -> u8 {
    if let Some(exit) = error.downcast_ref::<Exit>() {
        return exit.code;
    }
    match error.downcast_ref::<HttpError>().map(|e| e.status) {
        Some(404) => code::NOT_FOUND,
        Some(401 | 403) => code::REFUSED,
        _ => code::FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_follow_the_error_through_context() {
        let http = |status| -> anyhow::Error {
            HttpError {
                status,
                message: "x".into(),
            }
            .into()
        };
        assert_eq!(code_of(&http(404)), code::NOT_FOUND);
        assert_eq!(code_of(&http(403)), code::REFUSED);
        assert_eq!(code_of(&http(401)), code::REFUSED);
        assert_eq!(code_of(&http(400)), code::FAILED);
        assert_eq!(code_of(&http(500)), code::FAILED);
        let wrapped = Err::<(), _>(http(404))
            .context("showing app web")
            .unwrap_err();
        assert_eq!(code_of(&wrapped), code::NOT_FOUND);
        assert_eq!(code_of(&exit(code::TIMEOUT, "late")), code::TIMEOUT);
        assert_eq!(code_of(&anyhow::anyhow!("other")), code::FAILED);
    }
}
