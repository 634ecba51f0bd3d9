//! Push deliveries from forges: which followed repos they name, whether
//! they are signed with the right secret, and waking those repos' pollers.

use super::{GitOps, webhook};
use crate::store::RepoRecord;
use std::path::PathBuf;
use tracing::{info, warn};

/// Why a webhook delivery was not acted on.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRefusal {
    #[error(transparent)]
    Invalid(webhook::WebhookError),
    #[error("no repo is registered for {0}")]
    NoRepo(String),
    #[error("{0}")]
    Internal(String),
}

impl GitOps {
    /// Check a forge's push delivery and fetch every repo it names now;
    /// returns the repos woken. A delivery is refused (401) unless signed with the secret of
    /// a repo it names, or, when it names none the hub follows, with the
    /// hub's own secret: the answer never tells an unsigned caller whether
    /// a repository is followed.
    pub fn handle_webhook(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<Vec<String>, WebhookRefusal> {
        let delivery = webhook::parse(headers, body).map_err(WebhookRefusal::Invalid)?;
        let repos = self
            .store
            .repos()
            .map_err(|e| WebhookRefusal::Internal(e.to_string()))?;
        let candidates: Vec<&RepoRecord> = repos
            .iter()
            .filter(|r| {
                delivery
                    .repo_urls
                    .iter()
                    .any(|u| webhook::same_repo(u, &r.url))
            })
            .collect();
        if candidates.is_empty() {
            // Check the signature against the hub's own secret first, and
            // refuse a bad one exactly as for a followed repo: otherwise
            // anyone could probe which repositories this hub follows.
            let secret = read_webhook_secret(&self.webhook_secret_file).map_err(|e| {
                warn!(file = %self.webhook_secret_file.display(), error = %e, "webhook secret unreadable");
                WebhookRefusal::Internal("no webhook secret readable".into())
            })?;
            webhook::verify(delivery.forge, headers, body, &secret).map_err(|e| {
                warn!(forge = %delivery.forge, error = %e, "webhook refused");
                WebhookRefusal::Invalid(e)
            })?;
            return Err(WebhookRefusal::NoRepo(delivery.repo_urls.join(", ")));
        }
        let mut woken = Vec::new();
        let mut last_error = None;
        for repo in candidates {
            let secret_file = repo
                .webhook_secret_file
                .as_ref()
                .map_or_else(|| self.webhook_secret_file.clone(), PathBuf::from);
            let secret = match read_webhook_secret(&secret_file) {
                Ok(s) => s,
                Err(e) => {
                    warn!(repo = %repo.name, file = %secret_file.display(), error = %e, "webhook secret unreadable");
                    continue;
                }
            };
            match webhook::verify(delivery.forge, headers, body, &secret) {
                Ok(()) => {
                    info!(repo = %repo.name, forge = %delivery.forge, event = %delivery.event, "webhook accepted; fetching now");
                    if self.fetch_soon(&repo.name) {
                        woken.push(repo.name.clone());
                    }
                }
                Err(e) => {
                    warn!(repo = %repo.name, forge = %delivery.forge, error = %e, "webhook refused");
                    last_error = Some(e);
                }
            }
        }
        match (woken.is_empty(), last_error) {
            (true, Some(e)) => Err(WebhookRefusal::Invalid(e)),
            (true, None) => Err(WebhookRefusal::Internal(
                "no webhook secret readable".into(),
            )),
            (false, _) => Ok(woken),
        }
    }
}

/// A webhook secret file's contents, without surrounding whitespace. An
/// empty secret is an error: anyone can sign a delivery with an empty key.
pub(super) fn read_webhook_secret(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let secret = std::fs::read(path)?;
    let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
    if secret.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the webhook secret is empty, so anyone could sign a delivery; write a secret into it",
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_webhook_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, " \n").unwrap();
        let error = read_webhook_secret(&file).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(read_webhook_secret(&file).unwrap(), b"s3cret");
    }
}
