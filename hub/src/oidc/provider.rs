//! The provider as the hub knows it: its discovery document and signing
//! keys. Fetched at start and, while the provider is down, again in the
//! background (the hub serves meanwhile; sign-in answers 503). Keys are
//! fetched again when a token names a key the hub has not seen, at most
//! once per [`KEY_REFETCH_INTERVAL`], so forged `kid`s cannot make the hub
//! hammer the provider.

use super::jwt::{self, Expected, Identity, JwkSet};
use super::{Error, Settings};
use crate::auth::{BearerVerifier, Principal};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Least time between two key fetches caused by unknown `kid`s.
pub(super) const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Longest wait between two discovery attempts while the provider is down.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The parts of `.well-known/openid-configuration` the hub uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
}

#[derive(Debug)]
struct Known {
    metadata: Metadata,
    keys: JwkSet,
}

/// The configured provider: settings, an HTTP client that trusts its CA,
/// and what discovery found.
pub struct Provider {
    settings: Settings,
    http: reqwest::Client,
    known: RwLock<Option<Arc<Known>>>,
    last_key_fetch: Mutex<Option<Instant>>,
    last_error: Mutex<String>,
    this: Weak<Provider>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

fn http_client(settings: &Settings) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    // Always a preconfigured TLS backend, even for an http:// issuer on
    // loopback: reqwest would otherwise need a process-wide crypto provider.
    {
        let config = match &settings.ca_pem {
            Some(pem) => switchyard_certs::admin_client_config(pem).map_err(|e| Error::Ca {
                path: "--oidc-ca-file".into(),
                message: e.to_string(),
            })?,
            None => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    // A system certificate rustls cannot use is skipped, as
                    // browsers do.
                    let _ = roots.add(cert);
                }
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Ca {
                    path: "system roots".into(),
                    message: e.to_string(),
                })?
                .with_root_certificates(roots)
                .with_no_client_auth()
            }
        };
        builder = builder.tls_backend_preconfigured(config);
    }
    builder.build().map_err(|e| Error::Provider {
        url: settings.issuer.clone(),
        message: format!("building the HTTP client: {e}"),
    })
}

impl Provider {
    /// The provider of `settings`, not yet contacted: call [`Provider::start`].
    pub fn new(settings: Settings) -> Result<Arc<Self>, Error> {
        let http = http_client(&settings)?;
        Ok(Arc::new_cyclic(|this| Provider {
            settings,
            http,
            known: RwLock::new(None),
            last_key_fetch: Mutex::new(None),
            last_error: Mutex::new("discovery has not run yet".to_owned()),
            this: this.clone(),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Discover the provider in the background, retrying with backoff (1s
    /// doubling to 60s) until it answers; the task ends with the provider.
    pub fn start(&self) {
        let this = self.this.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                let Some(provider) = this.upgrade() else {
                    return;
                };
                match provider.discover().await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(issuer = %provider.settings.issuer, error = %e, retry_in = ?wait, "OpenID provider discovery failed");
                        *provider.last_error.lock().expect("not poisoned") = e.to_string();
                    }
                }
                drop(provider);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
        });
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        let failed = |message: String| Error::Provider {
            url: url.to_owned(),
            message,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(switchyard_common::error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("HTTP {status}")));
        }
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(failed(format!("more than {MAX_DOCUMENT_BYTES} bytes")));
        }
        serde_json::from_slice(&body).map_err(|e| failed(format!("not the expected JSON: {e}")))
    }

    /// Fetch the discovery document and the keys.
    pub async fn discover(&self) -> Result<(), Error> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = self.get_json(&url).await?;
        // OpenID Connect Discovery 1.0, section 4.3: the document must name
        // the issuer it was fetched for, or tokens could claim another.
        if metadata.issuer != self.settings.issuer {
            return Err(Error::Provider {
                url,
                message: format!(
                    "the document names issuer {:?}, not {:?} (--oidc-issuer must match it exactly)",
                    metadata.issuer, self.settings.issuer
                ),
            });
        }
        let keys: JwkSet = self.get_json(&metadata.jwks_uri).await?;
        *self.last_key_fetch.lock().expect("not poisoned") = Some(Instant::now());
        tracing::info!(issuer = %metadata.issuer, keys = keys.keys.len(), "OpenID provider discovered");
        *self.known.write().expect("not poisoned") = Some(Arc::new(Known { metadata, keys }));
        Ok(())
    }

    fn known(&self) -> Result<Arc<Known>, Error> {
        self.known
            .read()
            .expect("not poisoned")
            .clone()
            .ok_or_else(|| {
                Error::Unavailable(self.last_error.lock().expect("not poisoned").clone())
            })
    }

    /// The discovery document, once fetched.
    pub fn metadata(&self) -> Result<Metadata, Error> {
        Ok(self.known()?.metadata.clone())
    }

    /// Fetch the keys again unless that was done within
    /// [`KEY_REFETCH_INTERVAL`]; true when they were fetched.
    async fn refetch_keys(&self) -> Result<bool, Error> {
        {
            let mut last = self.last_key_fetch.lock().expect("not poisoned");
            if last.is_some_and(|at| at.elapsed() < KEY_REFETCH_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let known = self.known()?;
        let keys: JwkSet = self.get_json(&known.metadata.jwks_uri).await?;
        tracing::info!(keys = keys.keys.len(), "OpenID provider keys fetched again");
        *self.known.write().expect("not poisoned") = Some(Arc::new(Known {
            metadata: known.metadata.clone(),
            keys,
        }));
        Ok(true)
    }

    fn check(
        &self,
        token: &str,
        audiences: &[&str],
        nonce: Option<&str>,
        now: u64,
    ) -> Result<Identity, Error> {
        let known = self.known()?;
        let payload = jwt::parse(token)?.verify(&known.keys)?;
        let expected = Expected {
            issuer: &known.metadata.issuer,
            audiences,
            nonce,
            now,
        };
        jwt::check_claims(&payload, &expected, &self.settings.groups_claim)
    }

    /// Check an ID token of the browser flow (audience: the hub's client),
    /// fetching the keys again once if it names an unknown one.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        now: u64,
    ) -> Result<Identity, Error> {
        let audiences = [self.settings.client_id.as_str()];
        match self.check(token, &audiences, Some(nonce), now) {
            Err(Error::UnknownKey(_)) if self.refetch_keys().await? => {
                self.check(token, &audiences, Some(nonce), now)
            }
            other => other,
        }
    }

    /// The principal an identity signs in as, by the role map.
    pub fn principal(&self, identity: &Identity) -> Result<Principal, Error> {
        let role = self
            .settings
            .role_map
            .role_for(&identity.groups)
            .ok_or_else(|| Error::NoRole {
                user: identity.user.clone(),
                groups: if identity.groups.is_empty() {
                    "none".to_owned()
                } else {
                    identity.groups.join(", ")
                },
            })?;
        Ok(Principal {
            name: format!("oidc:{}", identity.user),
            role,
        })
    }

    /// Token endpoint call of the authorization code flow: the ID token.
    pub(super) async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, Error> {
        let metadata = self.metadata()?;
        let url = metadata.token_endpoint;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier)
            .finish();
        // RFC 6749 2.3.1: id and secret are form-encoded inside Basic.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                enc(&self.settings.client_id),
                enc(&self.settings.client_secret)
            ),
        );
        let failed = |message: String| Error::Provider {
            url: url.clone(),
            message,
        };
        let response = self
            .http
            .post(&url)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(switchyard_common::error_chain(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let answer: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| failed(format!("HTTP {status}, not a token response")))?;
        if let Some(error) = answer.error {
            let detail = answer.error_description.unwrap_or_default();
            return Err(failed(format!("{error} {detail}").trim_end().to_owned()));
        }
        answer.id_token.ok_or_else(|| {
            failed("no id_token in the answer (is `openid` among the scopes?)".into())
        })
    }
}

impl BearerVerifier for Provider {
    fn accepts(&self, token: &str) -> bool {
        jwt::looks_like_jwt(token)
    }

    fn verify(&self, token: &str, now: u64) -> Result<Principal, String> {
        let audiences = [
            self.settings.client_id.as_str(),
            self.settings.cli_client_id.as_str(),
        ];
        let checked = self.check(token, &audiences, None, now);
        if let Err(Error::UnknownKey(_)) = &checked {
            // Fetch the keys for the next attempt; this one is answered now.
            if let (Some(this), Ok(runtime)) =
                (self.this.upgrade(), tokio::runtime::Handle::try_current())
            {
                runtime.spawn(async move {
                    if let Err(e) = this.refetch_keys().await {
                        tracing::warn!(error = %e, "fetching the OpenID provider's keys failed");
                    }
                });
            }
        }
        checked
            .and_then(|identity| self.principal(&identity))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::RoleMap;
    use super::super::jwt::tests::TestKey;
    use super::*;
    use axum::routing::get;

    /// A provider on loopback that serves, under `ISSUER_SUFFIX`, a
    /// discovery document naming issuer `/realm`, and whatever keys `keys`
    /// holds at the time, counting key fetches.
    struct FakeProvider {
        issuer: String,
        keys: Arc<Mutex<Vec<serde_json::Value>>>,
        fetches: Arc<std::sync::atomic::AtomicUsize>,
    }

    fn jwk_json(key: &TestKey) -> serde_json::Value {
        key.jwk_json()
    }

    async fn fake_provider(issuer_suffix: &str) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}{issuer_suffix}");
        let keys = Arc::new(Mutex::new(Vec::new()));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let discovery = serde_json::json!({
            "issuer": format!("{base}/realm"),
            "authorization_endpoint": format!("{base}/auth"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
        });
        let (served_keys, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new()
            .route(
                &format!("{issuer_suffix}/.well-known/openid-configuration"),
                get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let keys = served_keys.lock().unwrap().clone();
                    axum::Json(serde_json::json!({ "keys": keys }))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeProvider {
            issuer,
            keys,
            fetches,
        }
    }

    fn settings(issuer: &str) -> Settings {
        Settings {
            issuer: issuer.to_owned(),
            client_id: "hub".into(),
            client_secret: "s".into(),
            cli_client_id: "cli".into(),
            role_map: RoleMap::parse("ops=admin").unwrap(),
            groups_claim: "groups".into(),
            ca_pem: None,
            scopes: super::super::DEFAULT_SCOPES.into(),
            redirect_uri: None,
        }
    }

    fn token(key: &TestKey, issuer: &str, now: u64) -> String {
        key.sign(&serde_json::json!({
            "iss": issuer, "aud": "hub", "sub": "u", "preferred_username": "alice",
            "groups": ["ops"], "exp": now + 300, "nonce": "n",
        }))
    }

    fn now() -> u64 {
        crate::unix_now()
    }

    #[tokio::test]
    async fn rotated_keys_are_fetched_again_at_most_once_per_interval() {
        let fake = fake_provider("/realm").await;
        let first = TestKey::new("k1");
        fake.keys.lock().unwrap().push(jwk_json(&first));
        let provider = Provider::new(settings(&fake.issuer)).unwrap();
        assert!(matches!(provider.metadata(), Err(Error::Unavailable(_))));
        provider.discover().await.unwrap();
        let count = || fake.fetches.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(count(), 1);
        let id = provider
            .verify_id_token(&token(&first, &fake.issuer, now()), "n", now())
            .await
            .unwrap();
        assert_eq!(provider.principal(&id).unwrap().name, "oidc:alice");

        // The provider rotates to k2; the hub learned its keys just now, so
        // the first unknown kid within the interval does not fetch again.
        let second = TestKey::new("k2");
        fake.keys.lock().unwrap().push(jwk_json(&second));
        let rotated = token(&second, &fake.issuer, now());
        assert!(matches!(
            provider.verify_id_token(&rotated, "n", now()).await,
            Err(Error::UnknownKey(_))
        ));
        assert_eq!(count(), 1, "rate-limited");
        // Once the interval has passed, an unknown kid fetches the keys.
        *provider.last_key_fetch.lock().unwrap() = Some(Instant::now() - KEY_REFETCH_INTERVAL);
        provider
            .verify_id_token(&rotated, "n", now())
            .await
            .unwrap();
        assert_eq!(count(), 2);
        // A kid no key has is refused without another fetch.
        let stranger = token(&TestKey::new("k3"), &fake.issuer, now());
        assert!(matches!(
            provider.verify_id_token(&stranger, "n", now()).await,
            Err(Error::UnknownKey(_))
        ));
        assert_eq!(count(), 2);
    }

    #[tokio::test]
    async fn a_discovery_document_for_another_issuer_is_refused() {
        let fake = fake_provider("/other").await;
        let provider = Provider::new(settings(&fake.issuer)).unwrap();
        let error = provider.discover().await.unwrap_err().to_string();
        assert!(error.contains("must match it exactly"), "{error}");
        assert!(matches!(provider.metadata(), Err(Error::Unavailable(_))));
    }
}
