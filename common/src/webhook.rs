//! Push webhooks from Git forges: which forge sent it, whether its
//! signature is good, and which repository it is about. Pure functions over
//! headers and body; the HTTP handler lives in the hub's admin API. It lives
//! in `common`, behind the `webhook` feature, so that the fuzz targets in
//! `fuzz/` can reach it without building the whole hub.

use http::HeaderMap;
use serde_json::Value;

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "not a webhook from GitHub, GitLab or Gitea/Forgejo (no X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event header)"
    )]
    UnknownForge,
    #[error("{0} delivery without its signature header {1}")]
    MissingSignature(Forge, &'static str),
    #[error("{0} signature does not match the shared secret")]
    BadSignature(Forge),
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    #[error("payload names no repository URL")]
    NoRepository,
}

/// The sender of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    GitHub,
    GitLab,
    Gitea,
}

impl std::fmt::Display for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Forge::GitHub => "GitHub",
            Forge::GitLab => "GitLab",
            Forge::Gitea => "Gitea",
        })
    }
}

/// A parsed (not yet verified) delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub forge: Forge,
    pub event: String,
    /// Every URL the payload gives for the repository.
    pub repo_urls: Vec<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Identify the forge and read the repository URLs.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, WebhookError> {
    // Gitea also sends GitHub's headers for compatibility, so it is checked first.
    let (forge, event) = if let Some(e) = header(headers, "x-gitea-event") {
        (Forge::Gitea, e)
    } else if let Some(e) = header(headers, "x-gitlab-event") {
        (Forge::GitLab, e)
    } else if let Some(e) = header(headers, "x-github-event") {
        (Forge::GitHub, e)
    } else {
        return Err(WebhookError::UnknownForge);
    };
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let fields: &[&str] = match forge {
        Forge::GitLab => &[
            "git_http_url",
            "git_ssh_url",
            "web_url",
            "http_url",
            "ssh_url",
            "url",
        ],
        Forge::GitHub | Forge::Gitea => &["clone_url", "html_url", "ssh_url", "git_url", "url"],
    };
    let mut repo_urls = Vec::new();
    for object in ["repository", "project"] {
        for field in fields {
            if let Some(url) = payload[object][field].as_str()
                && !repo_urls.iter().any(|u| u == url)
            {
                repo_urls.push(url.to_owned());
            }
        }
    }
    if repo_urls.is_empty() {
        return Err(WebhookError::NoRepository);
    }
    Ok(Delivery {
        forge,
        event: event.to_owned(),
        repo_urls,
    })
}

/// Check the delivery against `secret` the way its forge signs.
pub fn verify(
    forge: Forge,
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
) -> Result<(), WebhookError> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    match forge {
        Forge::GitHub => {
            let signature = header(headers, "x-hub-signature-256")
                .ok_or(WebhookError::MissingSignature(forge, "X-Hub-Signature-256"))?;
            let hex_signature = signature
                .strip_prefix("sha256=")
                .ok_or(WebhookError::BadSignature(forge))?;
            let mac = hex::decode(hex_signature).map_err(|_| WebhookError::BadSignature(forge))?;
            ring::hmac::verify(&key, body, &mac).map_err(|_| WebhookError::BadSignature(forge))
        }
        Forge::Gitea => {
            let signature = header(headers, "x-gitea-signature")
                .ok_or(WebhookError::MissingSignature(forge, "X-Gitea-Signature"))?;
            let mac = hex::decode(signature).map_err(|_| WebhookError::BadSignature(forge))?;
            ring::hmac::verify(&key, body, &mac).map_err(|_| WebhookError::BadSignature(forge))
        }
        Forge::GitLab => {
            let token = header(headers, "x-gitlab-token")
                .ok_or(WebhookError::MissingSignature(forge, "X-Gitlab-Token"))?;
            // GitLab sends the secret itself; compare MACs of both so the
            // comparison takes the same time wherever they differ.
            let expected = ring::hmac::sign(&key, secret);
            ring::hmac::verify(&key, token.as_bytes(), expected.as_ref())
                .map_err(|_| WebhookError::BadSignature(forge))
        }
    }
}

/// `host/path` of a Git URL: scheme, credentials, port of ssh, trailing `/`
/// and `.git` removed, host lowercased; scp-like `git@host:path` understood.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        None => match url.split_once(':') {
            // scp-like: user@host:path
            Some((host, path)) if !host.contains('/') => format!("{host}/{path}"),
            _ => url.to_owned(),
        },
    };
    let rest = rest.rsplit_once('@').map_or(rest.as_str(), |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{}/{}", host.to_lowercase(), path.trim_start_matches('/'))
}

/// Whether two URLs name the same repository (ignoring scheme, port and
/// credentials, which differ between clone and web URLs).
pub fn same_repo(a: &str, b: &str) -> bool {
    let strip_port = |s: String| {
        let (host, path) = s.split_once('/').unwrap_or((&s, ""));
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
        format!("{host}/{path}")
    };
    strip_port(normalize_url(a)) == strip_port(normalize_url(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn github_signature(secret: &[u8], body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, body).as_ref())
        )
    }

    #[test]
    fn github_push_is_parsed_and_verified() {
        let body = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/acme/fleet.git","ssh_url":"git@github.com:acme/fleet.git"}}"#;
        let h = headers(&[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &github_signature(b"s3cret", body)),
        ]);
        let delivery = parse(&h, body).unwrap();
        assert_eq!(delivery.forge, Forge::GitHub);
        assert_eq!(delivery.event, "push");
        assert_eq!(delivery.repo_urls.len(), 2);
        assert!(verify(Forge::GitHub, &h, body, b"s3cret").is_ok());
        assert!(matches!(
            verify(Forge::GitHub, &h, body, b"other"),
            Err(WebhookError::BadSignature(_))
        ));
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert!(verify(Forge::GitHub, &h, &tampered, b"s3cret").is_err());
    }

    #[test]
    fn gitlab_token_and_gitea_signature() {
        let body = br#"{"project":{"git_http_url":"https://gitlab.example.com/ops/fleet.git"}}"#;
        let h = headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "tok")]);
        assert_eq!(parse(&h, body).unwrap().forge, Forge::GitLab);
        assert!(verify(Forge::GitLab, &h, body, b"tok").is_ok());
        assert!(verify(Forge::GitLab, &h, body, b"tok2").is_err());

        let body = br#"{"repository":{"clone_url":"http://gitea.local:3000/ops/fleet.git"}}"#;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let sig = hex::encode(ring::hmac::sign(&key, body).as_ref());
        // Gitea sends GitHub's event header too; its own wins.
        let h = headers(&[
            ("x-github-event", "push"),
            ("x-gitea-event", "push"),
            ("x-gitea-signature", &sig),
        ]);
        assert_eq!(parse(&h, body).unwrap().forge, Forge::Gitea);
        assert!(verify(Forge::Gitea, &h, body, b"k").is_ok());
        let unsigned = headers(&[("x-gitea-event", "push")]);
        assert!(matches!(
            verify(Forge::Gitea, &unsigned, body, b"k"),
            Err(WebhookError::MissingSignature(..))
        ));
    }

    #[test]
    fn unknown_senders_and_bad_payloads_are_refused() {
        assert!(matches!(
            parse(&HeaderMap::new(), b"{}"),
            Err(WebhookError::UnknownForge)
        ));
        let h = headers(&[("x-github-event", "push")]);
        assert!(matches!(
            parse(&h, b"not json"),
            Err(WebhookError::NotJson(_))
        ));
        assert!(matches!(parse(&h, b"{}"), Err(WebhookError::NoRepository)));
    }

    #[test]
    fn urls_of_one_repo_compare_equal() {
        let forms = [
            "https://github.com/acme/fleet.git",
            "https://github.com/acme/fleet",
            "https://user:token@GitHub.com/acme/fleet/",
            "git@github.com:acme/fleet.git",
            "ssh://git@github.com:22/acme/fleet.git",
        ];
        for a in forms {
            for b in forms {
                assert!(same_repo(a, b), "{a} vs {b}");
            }
        }
        assert!(!same_repo(
            "https://github.com/acme/fleet",
            "https://github.com/acme/fleet2"
        ));
        assert!(!same_repo(
            "https://github.com/acme/fleet",
            "https://gitlab.com/acme/fleet"
        ));
    }
}
