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
    if settings.issuer.starts_with("https://") {
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
