//! Registry token auth, as OCI registries answer (Docker Hub, ghcr.io,
//! the CNCF distribution registry's `auth: token`): a request refused with
//! `401` and `WWW-Authenticate: Bearer realm=…,service=…,scope=…` is
//! retried with a token the realm issues for that scope, anonymously or
//! with the repository's user name and password.
//!
//! Tokens are kept until they expire (`expires_in`, 60 s when the realm
//! does not say, as the distribution spec has it), so a fetch asks the
//! realm once per scope, not once per request.

use super::Source;
use reqwest::Url;
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest token response read.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
/// A token's life when the realm does not say (the spec's default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire: a request started
/// just before expiry must not arrive after it.
const MARGIN: Duration = Duration::from_secs(5);
/// Most tokens kept (one per realm, service, scope and user).
const MAX_CACHED: usize = 1024;

/// A `Bearer` challenge's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Challenge {
    pub(super) realm: String,
    pub(super) service: Option<String>,
    pub(super) scope: Option<String>,
}

impl Challenge {
    /// The parameters of `Bearer realm="…",service="…",scope="…"`; `None`
    /// for any other scheme or without a realm. Values may be quoted
    /// (commas inside quotes belong to the value, as in a scope listing
    /// `pull,push`).
    pub(super) fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut params = HashMap::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let key = key.trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            };
            params.insert(key, value.to_owned());
            rest = next.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge {
            realm: params.remove("realm").filter(|r| !r.is_empty())?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        })
    }

    /// The realm's URL with the service and scope asked for.
    fn url(&self) -> Result<Url, String> {
        let mut url = Url::parse(&self.realm).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("the realm is not an HTTP URL".into());
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &self.service {
                query.append_pair("service", service);
            }
            if let Some(scope) = &self.scope {
                query.append_pair("scope", scope);
            }
        }
        Ok(url)
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

type Key = (Challenge, Option<String>);

fn cache() -> &'static Mutex<HashMap<Key, (String, Instant)>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<Key, (String, Instant)>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Whether the repository's credentials go to the realm: over HTTPS (the
/// registry named it; Docker and Helm send them there too), or to the
/// registry's own origin.
fn credentials_go_to(realm: &Url, source: &Source) -> bool {
    let registry = Url::parse(&source.http_url());
    realm.scheme() == "https" || registry.is_ok_and(|r| r.origin() == realm.origin())
}

/// A token for `challenge`: the cached one while it lasts, else the realm's.
pub(super) fn token(
    client: &reqwest::blocking::Client,
    source: &Source,
    challenge: &Challenge,
) -> Result<String, String> {
    let url = challenge.url()?;
    let credentials = source
        .credentials
        .as_ref()
        .filter(|_| credentials_go_to(&url, source));
    let key = (challenge.clone(), credentials.map(|(user, _)| user.clone()));
    let now = Instant::now();
    if let Some((token, until)) = cache().lock().expect("token cache").get(&key)
        && *until > now
    {
        return Ok(token.clone());
    }
    let mut request = client.get(url.as_str());
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().map_err(|e| super::reqwest_detail(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the realm answered HTTP {}", status.as_u16()));
    }
    let mut body = Vec::new();
    response
        .take(MAX_TOKEN_RESPONSE)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    let answer: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| format!("not a token response: {e}"))?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("the realm's answer has no token")?;
    let life = answer
        .expires_in
        .map_or(DEFAULT_LIFETIME, Duration::from_secs)
        .saturating_sub(MARGIN);
    let mut cached = cache().lock().expect("token cache");
    cached.retain(|_, (_, until)| *until > now);
    if cached.len() < MAX_CACHED {
        cached.insert(key, (token.clone(), now + life));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:library/nginx:pull,push")
        );
        assert_eq!(
            c.url().unwrap().as_str(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fnginx%3Apull%2Cpush"
        );
        let bare = Challenge::parse("bearer realm=https://ghcr.io/token").unwrap();
        assert_eq!(bare.realm, "https://ghcr.io/token");
        assert_eq!(bare.service, None);
        assert!(Challenge::parse(r#"Basic realm="registry""#).is_none());
        assert!(Challenge::parse(r#"Bearer service="x""#).is_none());
        assert!(Challenge::parse(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn credentials_go_only_over_https_or_to_the_registry_itself() {
        let source = Source {
            url: "oci://registry.example.com/charts".into(),
            credentials: Some(("u".into(), "p".into())),
            ca_file: None,
            plain_http: false,
        };
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(credentials_go_to(
            &url("https://auth.example.org/token"),
            &source
        ));
        assert!(credentials_go_to(
            &url("https://registry.example.com/token"),
            &source
        ));
        assert!(!credentials_go_to(
            &url("http://auth.example.org/token"),
            &source
        ));
        assert!(!credentials_go_to(
            &url("http://registry.example.com/token"),
            &source
        ));
        // A plain-HTTP registry's own origin is http://.
        let plain = Source {
            plain_http: true,
            ..source
        };
        assert!(credentials_go_to(
            &url("http://registry.example.com/token"),
            &plain
        ));
        assert!(!credentials_go_to(
            &url("http://auth.example.org/token"),
            &plain
        ));
    }
}
