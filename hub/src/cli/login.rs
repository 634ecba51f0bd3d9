//! `switchyard login` and `logout`: sign in with the hub's OpenID provider
//! through the device authorization flow (RFC 8628) and keep the tokens in
//! a kubectl-like config file (contexts with server, CA, token, refresh
//! token); later client commands use the stored token when neither
//! SWITCHYARD_TOKEN nor a local hub's admin token applies, refreshing it
//! when it has expired.

use super::Target;
use anyhow::{Context as _, anyhow, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use switchyard_hub::oidc::CliSettings;

/// Environment variable naming the client config file. Not
/// SWITCHYARD_CONFIG: `serve --config` reads that one.
pub(crate) const CONFIG_ENV: &str = "SWITCHYARD_CLIENT_CONFIG";

/// A token this close to expiry is refreshed before use.
const REFRESH_MARGIN_SECS: u64 = 30;

/// The grant type of RFC 8628's token polling.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The client config file: one context per hub signed in to.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct ClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) current_context: Option<String>,
    #[serde(default)]
    pub(crate) contexts: Vec<LoginContext>,
}

/// One hub signed in to, named by its server URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct LoginContext {
    pub(crate) name: String,
    pub(crate) server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server_ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_sha256: Option<String>,
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) user: String,
    pub(crate) token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// Unix seconds when `token` expires.
    pub(crate) expires_at: u64,
}

/// `$SWITCHYARD_CLIENT_CONFIG`, else `$XDG_CONFIG_HOME/switchyard/config.yaml`,
/// else `~/.config/switchyard/config.yaml`.
pub(crate) fn config_path() -> PathBuf {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("switchyard").join("config.yaml")
}

impl ClientConfig {
    pub(crate) fn load() -> anyhow::Result<Self> {
        let path = config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Ok(Self::default()),
            Ok(text) => {
                serde_saphyr::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Write the file, readable by its owner only (it holds tokens).
    pub(crate) fn save(&self) -> anyhow::Result<PathBuf> {
        let path = config_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_saphyr::to_string(self).context("writing the client config")?;
        switchyard_certs::write_private_file(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub(crate) fn context(&self, server: &str) -> Option<&LoginContext> {
        let server = server.trim_end_matches('/');
        self.contexts.iter().find(|c| c.server == server)
    }

    pub(crate) fn current(&self) -> Option<&LoginContext> {
        let name = self.current_context.as_deref()?;
        self.contexts.iter().find(|c| c.name == name)
    }

    fn upsert(&mut self, context: LoginContext) {
        self.contexts.retain(|c| c.name != context.name);
        self.current_context = Some(context.name.clone());
        self.contexts.push(context);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HTTP client for the provider: https with the system's roots, or
/// http to a loopback address only (as the hub itself allows).
fn provider_client(issuer: &str) -> anyhow::Result<reqwest::Client> {
    switchyard_hub::oidc::check_issuer(issuer)?;
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    // Preconfigured even for http:// on loopback, so no process-wide
    // crypto provider is needed.
    {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        builder = builder.tls_backend_preconfigured(config);
    }
    Ok(builder.build()?)
}

#[derive(Debug, Deserialize)]
struct Discovery {
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<Discovery> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("reaching the OpenID provider at {url}"))?;
    if !response.status().is_success() {
        bail!(
            "the OpenID provider answered {url} with {}",
            response.status()
        );
    }
    response
        .json()
        .await
        .with_context(|| format!("{url} is not a discovery document"))
}

/// A form POST to the provider: the JSON answer and the HTTP status.
async fn post_form<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
) -> anyhow::Result<(u16, T)> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form.finish())
        .send()
        .await
        .with_context(|| format!("reaching the OpenID provider at {url}"))?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    let value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "the OpenID provider answered {url} with HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    Ok((status, value))
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The user and expiry an ID token names, read without checking it (the
/// hub checks it on every request; this is for display and refresh timing).
fn unverified_claims(token: &str) -> (String, Option<u64>) {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let user = ["preferred_username", "email", "sub"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("unknown")
        .to_owned();
    (user, payload.get("exp").and_then(|v| v.as_u64()))
}

/// `switchyard login`.
pub(crate) async fn login(target: &Target) -> anyhow::Result<()> {
    let server = target
        .server
        .as_deref()
        .ok_or_else(|| {
            anyhow!("login needs --server URL (the hub's admin API, https://HOST:7701)")
        })?
        .trim_end_matches('/')
        .to_owned();
    let hub = super::client::hub_http(&server, target)?;
    let url = format!("{server}/api/v1/auth/oidc");
    let response = hub
        .get(&url)
        .send()
        .await
        .with_context(|| format!("reaching the hub at {server}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        bail!(
            "the hub at {server} has no single sign-on configured (switchyard serve --oidc-issuer …); \
             use SWITCHYARD_TOKEN with a token from `switchyard token create` instead"
        );
    }
    if !response.status().is_success() {
        bail!("the hub answered {url} with {}", response.status());
    }
    let settings: CliSettings = response
        .json()
        .await
        .context("reading the hub's OIDC settings")?;
    let idp = provider_client(&settings.issuer)?;
    let discovery = discover(&idp, &settings.issuer).await?;
    let device_endpoint = discovery.device_authorization_endpoint.ok_or_else(|| {
        anyhow!(
            "the OpenID provider {} offers no device authorization endpoint; enable the device flow for client {}",
            settings.issuer,
            settings.client_id
        )
    })?;
    let scope = format!("{} offline_access", settings.scopes);
    #[derive(Deserialize)]
    struct DeviceAnswer {
        device_code: Option<String>,
        user_code: Option<String>,
        verification_uri: Option<String>,
        verification_uri_complete: Option<String>,
        expires_in: Option<u64>,
        interval: Option<u64>,
        error: Option<String>,
        error_description: Option<String>,
    }
    let (_, device): (u16, DeviceAnswer) = post_form(
        &idp,
        &device_endpoint,
        &[("client_id", &settings.client_id), ("scope", &scope)],
    )
    .await?;
    let (Some(device_code), Some(user_code), Some(verification_uri)) = (
        device.device_code,
        device.user_code,
        device.verification_uri,
    ) else {
        bail!(
            "the OpenID provider refused the device sign-in: {} {}",
            device.error.unwrap_or_default(),
            device.error_description.unwrap_or_default()
        );
    };
    let expires_in = device.expires_in.unwrap_or(600).min(3600);
    println!("To sign in, open {verification_uri}");
    println!("and enter the code {user_code}");
    if let Some(complete) = &device.verification_uri_complete {
        println!("(or open {complete})");
    }
    println!(
        "Waiting for the sign-in (expires in {})…",
        humantime::format_duration(Duration::from_secs(expires_in))
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(expires_in);
    // RFC 8628 3.5: 5 seconds unless the provider says otherwise.
    let mut interval = Duration::from_secs(device.interval.unwrap_or(5).max(1));
    let tokens = loop {
        if std::time::Instant::now() + interval > deadline {
            bail!(
                "the code {user_code} expired before the sign-in completed; run `switchyard login` again"
            );
        }
        tokio::time::sleep(interval).await;
        let (_, answer): (u16, TokenAnswer) = post_form(
            &idp,
            &discovery.token_endpoint,
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", &device_code),
                ("client_id", &settings.client_id),
            ],
        )
        .await?;
        match answer.error.as_deref() {
            None => break answer,
            Some("authorization_pending") => {}
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("access_denied") => bail!("the sign-in was refused at the provider"),
            Some("expired_token") => {
                bail!("the code {user_code} expired; run `switchyard login` again")
            }
            Some(other) => bail!(
                "the OpenID provider refused the sign-in: {other} {}",
                answer.error_description.unwrap_or_default()
            ),
        }
    };
    let token = tokens
        .id_token
        .ok_or_else(|| anyhow!("the provider sent no ID token (is `openid` among the scopes?)"))?;
    let (user, exp) = unverified_claims(&token);
    let expires_at = exp.unwrap_or_else(|| unix_now() + tokens.expires_in.unwrap_or(300));
    let mut config = ClientConfig::load()?;
    config.upsert(LoginContext {
        name: server.clone(),
        server: server.clone(),
        server_ca_file: target.server_ca_file.clone(),
        ca_sha256: target.ca_sha256.clone(),
        issuer: settings.issuer,
        client_id: settings.client_id,
        user: user.clone(),
        token,
        refresh_token: tokens.refresh_token,
        expires_at,
    });
    let path = config.save()?;
    println!(
        "Signed in to {server} as oidc:{user}; token saved in {}",
        path.display()
    );
    Ok(())
}

/// `switchyard logout`: forget the tokens of `--server` (or of the
/// current context).
pub(crate) fn logout(target: &Target) -> anyhow::Result<()> {
    let mut config = ClientConfig::load()?;
    let name = match &target.server {
        Some(server) => config.context(server).map(|c| c.name.clone()),
        None => config.current().map(|c| c.name.clone()),
    };
    let Some(name) = name else {
        println!(
            "Not signed in{}",
            target
                .server
                .as_deref()
                .map(|s| format!(" to {s}"))
                .unwrap_or_default()
        );
        return Ok(());
    };
    config.contexts.retain(|c| c.name != name);
    if config.current_context.as_deref() == Some(name.as_str()) {
        config.current_context = None;
    }
    let path = config.save()?;
    println!(
        "Signed out of {name}; removed its tokens from {}",
        path.display()
    );
    Ok(())
}

/// The token of a stored context, refreshed first when it has expired
/// (and saved again). Blocks the calling thread of the multi-threaded
/// runtime for the refresh, which happens before the first request.
pub(crate) fn usable_token(context: &LoginContext) -> anyhow::Result<String> {
    if context.expires_at > unix_now() + REFRESH_MARGIN_SECS {
        return Ok(context.token.clone());
    }
    let Some(refresh_token) = context.refresh_token.clone() else {
        bail!(
            "your sign-in to {} expired; run `switchyard login --server {}`",
            context.server,
            context.server
        );
    };
    let context = context.clone();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(refresh(context, refresh_token))
    })
}

async fn refresh(mut context: LoginContext, refresh_token: String) -> anyhow::Result<String> {
    let idp = provider_client(&context.issuer)?;
    let discovery = discover(&idp, &context.issuer).await?;
    let (_, answer): (u16, TokenAnswer) = post_form(
        &idp,
        &discovery.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &context.client_id),
        ],
    )
    .await?;
    let Some(token) = answer.id_token else {
        bail!(
            "refreshing your sign-in to {} failed ({}); run `switchyard login --server {}`",
            context.server,
            answer.error.unwrap_or_else(|| "no ID token".into()),
            context.server
        );
    };
    let (_, exp) = unverified_claims(&token);
    context.expires_at = exp.unwrap_or_else(|| unix_now() + answer.expires_in.unwrap_or(300));
    context.token = token.clone();
    if let Some(rotated) = answer.refresh_token {
        context.refresh_token = Some(rotated);
    }
    let mut config = ClientConfig::load()?;
    config.contexts.retain(|c| c.name != context.name);
    config.contexts.push(context);
    config.save()?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_round_trips_and_contexts_are_replaced_by_server() {
        let context = LoginContext {
            name: "https://hub:7701".into(),
            server: "https://hub:7701".into(),
            server_ca_file: Some("/etc/hub-ca.pem".into()),
            ca_sha256: None,
            issuer: "https://idp".into(),
            client_id: "cli".into(),
            user: "alice".into(),
            token: "ey.a.b".into(),
            refresh_token: Some("r".into()),
            expires_at: 1,
        };
        let mut config = ClientConfig::default();
        config.upsert(context.clone());
        config.upsert(LoginContext {
            token: "ey.c.d".into(),
            ..context.clone()
        });
        assert_eq!(config.contexts.len(), 1);
        let text = serde_saphyr::to_string(&config).unwrap();
        assert!(text.contains("current-context"), "{text}");
        let back: ClientConfig = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.context("https://hub:7701/").unwrap().token, "ey.c.d");
        assert_eq!(back.current().unwrap().user, "alice");
    }

    #[test]
    fn an_expired_token_without_refresh_token_asks_for_login() {
        let context = LoginContext {
            name: "https://hub:7701".into(),
            server: "https://hub:7701".into(),
            server_ca_file: None,
            ca_sha256: None,
            issuer: "https://idp".into(),
            client_id: "cli".into(),
            user: "alice".into(),
            token: "t".into(),
            refresh_token: None,
            expires_at: 1,
        };
        let error = usable_token(&context).unwrap_err().to_string();
        assert!(
            error.contains("switchyard login --server https://hub:7701"),
            "{error}"
        );
        let fresh = LoginContext {
            expires_at: unix_now() + 3600,
            ..context
        };
        assert_eq!(usable_token(&fresh).unwrap(), "t");
    }
}
